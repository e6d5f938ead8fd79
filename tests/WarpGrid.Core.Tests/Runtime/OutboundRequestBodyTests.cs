using System.Diagnostics;
using WarpGrid.Core.Runtime.Components;

namespace WarpGrid.Core.Tests.Runtime;

/// <summary>
/// The outbound request body's buffer between the guest (writer) and the connection (the request content, read here
/// by copying it to a memory stream): room, backpressure, the pre-handle cap and content-length checks.
/// </summary>
public sealed class OutboundRequestBodyTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static long DeadlineIn(TimeSpan span) => Stopwatch.GetTimestamp() + (long)(span.TotalSeconds * Stopwatch.Frequency);

    private static byte[] Pattern(long from, int count)
    {
        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            bytes[i] = (byte)((from + i) % 251);
        }

        return bytes;
    }

    [Fact]
    public async Task Check_write_reports_the_room_left_and_the_pollable_becomes_ready_when_the_connection_takes_bytes()
    {
        var body = new OutboundRequestBody(64L << 20, contentLength: null);
        using var content = body.Start(DeadlineIn(Patience));
        long written = 0;
        while (body.CheckWrite() is > 0 and var room)
        {
            var n = (int)Math.Min(room, 64 * 1024);
            body.Write(Pattern(written, n));
            written += n;
        }

        // Nothing reads yet: a window's worth is in flight and the guest is told to wait.
        Assert.Equal(OutboundRequestBody.Window, written);
        var pollable = body.Subscribe();
        Assert.False(pollable.IsReady);

        using var received = new MemoryStream();
        var copy = content.CopyToAsync(received);
        pollable.Block(DeadlineIn(Patience));
        Assert.True(pollable.IsReady, "the pollable did not become ready once the connection read the body");
        Assert.True(body.CheckWrite() > 0);

        body.Write(Pattern(written, 10));
        Assert.Null(body.Finish());
        await copy.WaitAsync(Patience);
        Assert.Equal(Pattern(0, (int)written + 10), received.ToArray());
        Assert.Null(content.Headers.ContentLength);
    }

    [Fact]
    public void A_write_over_the_window_waits_for_the_connection_no_longer_than_the_request_deadline()
    {
        var body = new OutboundRequestBody(64L << 20, contentLength: null);
        using var content = body.Start(DeadlineIn(TimeSpan.FromMilliseconds(300)));

        // More than the pipe holds and nobody reads: the write waits, then fails at the deadline instead of buffering.
        var error = Assert.Throws<StreamFailedException>(() => body.Write(new byte[3 * OutboundRequestBody.Window]));
        Assert.Equal("connection-write-timeout", error.Code?.Case);
        Assert.Throws<StreamFailedException>(() => body.CheckWrite());
    }

    [Fact]
    public async Task Bytes_written_before_handle_go_first_and_a_body_finished_before_handle_has_a_length()
    {
        var body = new OutboundRequestBody(1000, contentLength: null);
        body.Write(Pattern(0, 600));
        Assert.Null(body.Finish());
        using var content = body.Start(DeadlineIn(Patience));
        Assert.Equal(600, content.Headers.ContentLength);
        Assert.Equal(Pattern(0, 600), await content.ReadAsByteArrayAsync().WaitAsync(Patience));

        var streamed = new OutboundRequestBody(1000, contentLength: null);
        streamed.Write(Pattern(0, 600));
        using var streamedContent = streamed.Start(DeadlineIn(Patience));
        using var received = new MemoryStream();
        var copy = streamedContent.CopyToAsync(received);
        streamed.Write(Pattern(600, 5000));
        Assert.Null(streamed.Finish());
        await copy.WaitAsync(Patience);
        Assert.Equal(Pattern(0, 5600), received.ToArray());
    }

    [Fact]
    public void Bytes_written_before_handle_are_capped()
    {
        var body = new OutboundRequestBody(1000, contentLength: null);
        body.Write(new byte[600]);
        Assert.Equal(400, body.CheckWrite());
        var error = Assert.Throws<StreamFailedException>(() => body.Write(new byte[500]));
        Assert.Contains("before outgoing-handler.handle", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Content_length_is_enforced_on_write_and_on_finish()
    {
        var shortBody = new OutboundRequestBody(1000, contentLength: 10);
        shortBody.Write(new byte[4]);
        Assert.Equal(new HttpErrorCode("HTTP-request-body-size", Size: 4), shortBody.Finish());

        var longBody = new OutboundRequestBody(1000, contentLength: 10);
        longBody.Write(new byte[8]);
        var error = Assert.Throws<StreamFailedException>(() => longBody.Write(new byte[3]));
        Assert.Equal(new HttpErrorCode("HTTP-request-body-size", Size: 11), error.Code);
        Assert.Equal(new HttpErrorCode("HTTP-request-body-size", Size: 11), longBody.Finish());

        var exact = new OutboundRequestBody(1000, contentLength: 10);
        exact.Write(new byte[10]);
        Assert.Null(exact.Finish());
    }

    [Fact]
    public async Task An_aborted_body_fails_the_content_instead_of_ending_it()
    {
        var body = new OutboundRequestBody(1000, contentLength: null);
        using var content = body.Start(DeadlineIn(Patience));
        using var received = new MemoryStream();
        var copy = content.CopyToAsync(received);
        body.Write(new byte[100]);
        body.Abort(new HttpErrorCode("HTTP-protocol-error"), "dropped");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => copy.WaitAsync(Patience));
        Assert.Contains("dropped", error.GetBaseException().Message, StringComparison.Ordinal);
        Assert.Equal("HTTP-protocol-error", body.Error?.Case);
    }
}
