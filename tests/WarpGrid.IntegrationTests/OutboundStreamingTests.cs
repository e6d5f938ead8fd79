using System.Net;
using System.Net.Sockets;
using System.Text;
using WarpGrid.IntegrationTests.Infrastructure;
using WarpGrid.Testing;

namespace WarpGrid.IntegrationTests;

/// <summary>What a <see cref="BodySink"/> saw of one request with a body.</summary>
/// <param name="Head">The request line and headers.</param>
/// <param name="Bytes">Body bytes received (decoded, without chunk framing).</param>
/// <param name="Complete">True when the body ended as HTTP says a complete one does (last chunk, or content-length reached).</param>
/// <param name="Intact">True when every byte received was the guest's pattern (byte i is i % 251).</param>
/// <param name="Ending">How it ended: "complete", "reset by the server", or the cause of a truncation.</param>
internal sealed record SinkRecord(string Head, long Bytes, bool Complete, bool Intact, string Ending);

/// <summary>
/// A raw HTTP/1.1 server on 127.0.0.1 for outbound request bodies (one request with a body per instance):
/// <c>POST /sink</c> reads the body (chunked or content-length), checks the pattern and answers
/// <c>received=N intact=B</c>; <c>GET /progress</c> answers once body bytes of the sink request have arrived (waiting
/// at most a minute: a body that is not streamed answers <c>received=0</c>); <c>POST /reset</c> reads 64 KiB of body
/// and resets the connection.
/// </summary>
internal sealed class BodySink : LoopbackServer
{
    private const int ResetAfter = 64 * 1024;
    private readonly TaskCompletionSource _firstBytes = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<SinkRecord> _record = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _received;

    public BodySink() => Start();

    /// <summary>Body bytes of the sink request received so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Completes when the request with a body ended, however it ended.</summary>
    public Task<SinkRecord> Record => _record.Task;

    protected override async Task Serve(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = new HeadReader(stream);
        string head;
        try
        {
            head = await reader.ReadHeadAsync(Stopping);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
        {
            return;
        }

        var target = head.Split(' ', 3)[1];
        if (target.StartsWith("/progress", StringComparison.Ordinal))
        {
            try
            {
                await _firstBytes.Task.WaitAsync(TimeSpan.FromSeconds(60), Stopping);
            }
            catch (TimeoutException)
            {
            }

            await Answer(stream, $"received={Received}");
            return;
        }

        var headers = head.Split("\r\n").Skip(1).Where(l => l.Contains(':', StringComparison.Ordinal))
            .Select(l => (Name: l[..l.IndexOf(':', StringComparison.Ordinal)].Trim().ToLowerInvariant(), Value: l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()))
            .ToList();
        var chunked = headers.Any(h => h.Name == "transfer-encoding" && h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase));
        long? length = headers.Where(h => h.Name == "content-length").Select(h => (long?)long.Parse(h.Value, System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
        var reset = target.StartsWith("/reset", StringComparison.Ordinal);
        var intact = true;
        long offset = 0;
        void Take(ReadOnlySpan<byte> data)
        {
            for (var i = 0; i < data.Length; i++)
            {
                if (data[i] != (byte)((offset + i) % 251))
                {
                    intact = false;
                    break;
                }
            }

            offset += data.Length;
            Interlocked.Add(ref _received, data.Length);
            _firstBytes.TrySetResult();
        }

        try
        {
            if (reset)
            {
                await reader.ReadRawAsync(ResetAfter, Take, Stopping);
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
                _record.TrySetResult(new SinkRecord(head, offset, false, intact, "reset by the server"));
                return;
            }

            if (chunked)
            {
                await reader.ReadChunkedAsync(Take, Stopping);
            }
            else
            {
                await reader.ReadRawAsync(length ?? 0, Take, Stopping);
                if (offset < (length ?? 0))
                {
                    throw new EndOfStreamException($"the connection ended after {offset} of {length} content-length bytes");
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or FormatException)
        {
            _record.TrySetResult(new SinkRecord(head, offset, false, intact, ex.GetType().Name + ": " + ex.Message));
            return;
        }

        _record.TrySetResult(new SinkRecord(head, offset, true, intact, "complete"));
        try
        {
            await Answer(stream, $"received={offset} intact={(intact ? "true" : "false")}");
        }
        catch (IOException)
        {
        }
    }

    private static async Task Answer(Stream stream, string body)
    {
        var payload = Encoding.ASCII.GetBytes(body);
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n"));
        await stream.WriteAsync(payload);
    }

    /// <summary>Buffered reads of a request: the head, then a chunked or length-delimited body.</summary>
    private sealed class HeadReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public async Task<string> ReadHeadAsync(CancellationToken cancel)
        {
            var head = new StringBuilder();
            while (true)
            {
                var line = await ReadLineAsync(cancel);
                if (line.Length == 0)
                {
                    return head.ToString();
                }

                head.Append(line).Append("\r\n");
            }
        }

        /// <summary>Reads up to <paramref name="count"/> body bytes (fewer if the connection ends).</summary>
        public async Task ReadRawAsync(long count, Action<ReadOnlySpan<byte>> take, CancellationToken cancel)
        {
            while (count > 0)
            {
                if (_start == _end && !await FillAsync(cancel))
                {
                    return;
                }

                var n = (int)Math.Min(count, _end - _start);
                take(_buffer.AsSpan(_start, n));
                _start += n;
                count -= n;
            }
        }

        public async Task ReadChunkedAsync(Action<ReadOnlySpan<byte>> take, CancellationToken cancel)
        {
            while (true)
            {
                var line = await ReadLineAsync(cancel);
                var size = Convert.ToInt64(line.Split(';')[0].Trim(), 16);
                if (size == 0)
                {
                    while ((await ReadLineAsync(cancel)).Length > 0)
                    {
                    }

                    return;
                }

                var left = size;
                while (left > 0)
                {
                    if (_start == _end && !await FillAsync(cancel))
                    {
                        throw new EndOfStreamException("the connection ended inside a chunk");
                    }

                    var n = (int)Math.Min(left, _end - _start);
                    take(_buffer.AsSpan(_start, n));
                    _start += n;
                    left -= n;
                }

                if ((await ReadLineAsync(cancel)).Length != 0)
                {
                    throw new FormatException("a chunk did not end with CRLF");
                }
            }
        }

        private async Task<string> ReadLineAsync(CancellationToken cancel)
        {
            var line = new StringBuilder();
            while (true)
            {
                if (_start == _end && !await FillAsync(cancel))
                {
                    throw new EndOfStreamException("the connection ended before the end of a line (the request was cut off)");
                }

                var b = _buffer[_start++];
                if (b == '\n')
                {
                    return line.ToString().TrimEnd('\r');
                }

                line.Append((char)b);
            }
        }

        private async Task<bool> FillAsync(CancellationToken cancel)
        {
            _start = 0;
            _end = await stream.ReadAsync(_buffer, cancel);
            return _end > 0;
        }
    }
}

/// <summary>warpd with the C guest allowed to call 127.0.0.1.</summary>
public sealed class OutboundStreamingFixture : WarpdFixture
{
    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var manifest = WarpApi.Manifest("http-c-out", route: "/http-c-out", minInstances: 1, maxInstances: 4, requestTimeout: "60s", extra: "[capabilities]\nhttp_outbound = [\"127.0.0.1\"]");
        await warpd.DeployAsync("http-c-out", manifest, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "http-c", "http-c.wasm")), "http-c.wasm").ConfigureAwait(false);
    }
}

/// <summary>
/// Outbound request bodies (<c>wasi:http/outgoing-handler</c>) on a real warpd, sent by the C guest's <c>/outbound</c>
/// route to a raw HTTP server on loopback: streamed while the guest writes, aborted when the guest drops the body
/// unfinished, checked against content-length, failing cleanly when the server resets the connection.
/// </summary>
public sealed class OutboundStreamingTests(OutboundStreamingFixture fixture) : IClassFixture<OutboundStreamingFixture>
{
    private static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(90);

    private WarpdProcess Warpd => fixture.Warpd;

    private async Task<string> Outbound(BodySink sink, string mode, long kib)
    {
        using var response = await Warpd.Ingress.GetAsync($"http-c-out/outbound?to={sink.Authority}&mode={mode}&kib={kib}");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/outbound {mode} answered {(int)response.StatusCode}: {body}\n{Warpd.Tail()}");
        return body;
    }

    [Fact]
    public async Task A_16_MiB_body_reaches_the_server_while_the_guest_is_still_writing_it_and_arrives_intact()
    {
        await using var sink = new BodySink();
        const long total = 16L << 20;

        // The guest calls handle first, writes 8 MiB, then asks the server (GET /progress) how much body it has: the
        // server answers only once body bytes arrived. Buffering until finish would make it answer received=0 after
        // a minute, since the guest writes the second half only after that answer.
        var answer = await Outbound(sink, "stream", total / 1024);
        var progress = long.Parse(answer.Split("progress=status=200 body=received=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(progress > 0 && progress <= total / 2, $"the server had {progress} body bytes when the guest had written half: {answer}");
        Assert.EndsWith($"finished status=200 body=received={total} intact=true", answer, StringComparison.Ordinal);

        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.True(record.Complete && record.Intact && record.Bytes == total, record.ToString());
        Assert.Contains("transfer-encoding: chunked", record.Head, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_body_written_and_finished_before_handle_is_sent_whole_with_its_length()
    {
        await using var sink = new BodySink();
        const long total = 10L << 20;
        var answer = await Outbound(sink, "buffered", total / 1024);
        Assert.Equal($"finished status=200 body=received={total} intact=true", answer);

        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.True(record.Complete && record.Intact && record.Bytes == total, record.ToString());
        Assert.Contains($"content-length: {total}", record.Head, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Dropping_the_body_without_finish_aborts_the_request_and_the_server_sees_it_cut_off()
    {
        await using var sink = new BodySink();
        var answer = await Outbound(sink, "drop", 4096);
        Assert.Equal("error=HTTP-protocol-error", answer);

        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.False(record.Complete, record.ToString());
        Assert.True(record.Intact && record.Bytes <= 2L << 20, record.ToString());
        await AssertNodeServesAsync();
    }

    [Fact]
    public async Task Finishing_short_of_the_content_length_fails_finish_and_the_request()
    {
        await using var sink = new BodySink();
        var answer = await Outbound(sink, "short", 1024);
        Assert.Equal($"finish-error=HTTP-request-body-size size={512 * 1024} error=HTTP-request-body-size size={512 * 1024}", answer);

        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.False(record.Complete, record.ToString());
        Assert.Contains("content-length: 1048576", record.Head, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Writing_past_the_content_length_fails_the_write_finish_and_the_request()
    {
        await using var sink = new BodySink();
        var answer = await Outbound(sink, "long", 1024);

        // The write that crosses the declared length fails (its stream error carries the error code, as Wasmtime's
        // http-error-code reports it), finish reports the same size, and the request fails with it.
        // The guest writes 5 bytes short of the length, then 15 bytes in one write.
        const long declared = 1L << 20;
        Assert.Equal(
            $"write-error=HTTP-request-body-size size={declared + 10} after={declared - 5} finish-error=HTTP-request-body-size size={declared + 10} error=HTTP-request-body-size size={declared + 10}",
            answer);

        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.False(record.Complete, record.ToString());
        Assert.True(record.Intact && record.Bytes <= declared - 5, record.ToString());
    }

    [Fact]
    public async Task A_server_resetting_mid_body_fails_the_guests_writes_and_the_request_with_an_error_code()
    {
        await using var sink = new BodySink();
        const long total = 32L << 20;
        var answer = await Outbound(sink, "reset", total / 1024);
        var record = await sink.Record.WaitAsync(RecordTimeout);
        Assert.Equal("reset by the server", record.Ending);

        // The guest's write fails (with the connection's error code) long before it wrote everything, and the
        // response future reports the broken connection: nothing escapes into the guest as a trap, or into the node.
        Assert.StartsWith("write-error=connection-terminated after=", answer, StringComparison.Ordinal);
        var after = long.Parse(answer.Split("after=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(after < total, answer);
        Assert.EndsWith("error=connection-terminated", answer, StringComparison.Ordinal);
        await AssertNodeServesAsync();
    }

    [Fact]
    public async Task A_refused_connection_fails_the_waiting_writer_and_the_request_with_connection_refused()
    {
        // Nobody listens on the port: the guest fills the window, waits on the stream's pollable, and is woken by the
        // failure instead of waiting for the deadline.
        var closed = $"127.0.0.1:{LoopbackPorts.Next()}";
        using var response = await Warpd.Ingress.GetAsync($"http-c-out/outbound?to={closed}&mode=reset&kib={32 * 1024}");
        var answer = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"answered {(int)response.StatusCode}: {answer}\n{Warpd.Tail()}");
        Assert.Matches(@"^write-error=connection-refused after=\d+ finished error=connection-refused$", answer);
        var after = long.Parse(answer.Split("after=")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(after <= 2L * 1024 * 1024, answer);
    }

    private async Task AssertNodeServesAsync()
    {
        using var hello = await Warpd.Ingress.GetAsync("http-c-out/hello");
        Assert.Equal(HttpStatusCode.OK, hello.StatusCode);
    }
}
