using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>
/// The body of an outbound request (<c>outgoing-request.body</c>), streamed to the connection as the guest writes it.
/// Bytes written before <c>outgoing-handler.handle</c> are held (at most <see cref="_earlyLimit"/>, the node's
/// outbound body cap) and go first; after <c>handle</c> the guest writes into a bounded pipe that the
/// <see cref="HttpContent"/> of the request drains onto the connection. <c>check-write</c> reports the room in that
/// pipe, the stream's pollable is ready when there is room again, and a write that overfills it waits (never past the
/// request deadline): a guest can never make the host hold more than about twice <see cref="Window"/>.
/// The guest writes on its own thread; the connection reads on the thread pool.
/// </summary>
internal sealed class OutboundRequestBody
{
    /// <summary>Bytes the guest may have in flight (written, not yet handed to the connection) before check-write reports 0.</summary>
    public const int Window = 1 << 20;

    private const int SegmentSize = 64 * 1024;

    private readonly long _earlyLimit;
    private readonly ManualResetEventSlim _room = new(true);
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MemoryStream? _early = new();
    private Pipe? _pipe;
    private long _buffered;
    private long _written;
    private long _deadline = long.MaxValue;
    private volatile Exception? _failure;
    private volatile HttpErrorCode? _error;
    private bool _finishedBeforeStart;
    private long _earlyLength;

    public OutboundRequestBody(long earlyLimit, long? contentLength)
    {
        _earlyLimit = earlyLimit;
        ContentLength = contentLength;
    }

    /// <summary>The length the guest declared with a <c>content-length</c> header, if any.</summary>
    public long? ContentLength { get; }

    /// <summary>True once <c>outgoing-handler.handle</c> started sending.</summary>
    public bool Started => _pipe is not null;

    /// <summary>True after <c>finish</c> or an abort: the guest can write no more.</summary>
    public bool Completed { get; private set; }

    /// <summary>Why the body is not a valid request body (content-length mismatch, dropped unfinished), if it is not.</summary>
    public HttpErrorCode? Error => _error;

    /// <summary>Bytes the guest wrote (counting a write that was refused for exceeding <c>content-length</c>).</summary>
    public long Written => _written;

    /// <summary>Starts sending: the content of the outbound request. <paramref name="deadline"/> bounds every wait of a write.</summary>
    public HttpContent Start(long deadline)
    {
        if (_pipe is not null)
        {
            throw new InvalidOperationException("the outbound body was already started");
        }

        _deadline = deadline;
        _finishedBeforeStart = Completed;
        _earlyLength = _early?.Length ?? 0;
        _pipe = new Pipe(new PipeOptions(
            pauseWriterThreshold: 2L * Window,
            resumeWriterThreshold: Window,
            minimumSegmentSize: SegmentSize,
            useSynchronizationContext: false));
        return new Content(this);
    }

    /// <summary><c>check-write</c>: how many bytes the guest may write now without waiting.</summary>
    public long CheckWrite()
    {
        ThrowIfFailed();
        if (_pipe is null)
        {
            var left = _earlyLimit - _written;
            if (left <= 0)
            {
                throw EarlyLimitExceeded();
            }

            return Math.Min(left, Window);
        }

        return Math.Max(0, Window - Interlocked.Read(ref _buffered));
    }

    /// <summary>A pollable that is ready when <see cref="CheckWrite"/> would report room (or the body failed).</summary>
    public Pollable Subscribe() => _pipe is null ? Pollable.Ready : new RoomPollable(this);

    /// <summary>Takes the guest's bytes: into the early buffer before <c>handle</c>, into the pipe after it.</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        ThrowIfFailed();
        if (Completed)
        {
            throw new StreamClosedException();
        }

        _written += bytes.Length;
        if (ContentLength is { } declared && _written > declared)
        {
            var code = new HttpErrorCode("HTTP-request-body-size", Size: (ulong)_written);
            Abort(code, $"the guest wrote {_written} bytes of outbound request body, more than its content-length {declared}");
            throw new StreamFailedException($"outbound request body: {_written} bytes written, more than the content-length of {declared}") { Code = code };
        }

        if (_pipe is null)
        {
            if (_written > _earlyLimit)
            {
                throw EarlyLimitExceeded();
            }

            _early!.Write(bytes);
            return;
        }

        if (bytes.IsEmpty)
        {
            return;
        }

        var writer = _pipe.Writer;
        writer.Write(bytes);
        if (Interlocked.Add(ref _buffered, bytes.Length) >= Window)
        {
            _room.Reset();
        }

        var flush = writer.FlushAsync();
        if (!flush.IsCompleted)
        {
            // Over the pause threshold (the guest wrote more than check-write allowed): wait for the connection to take
            // bytes, for a failure, or for the request deadline.
            var pending = flush.AsTask();
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _deadline);
            if (wait <= TimeSpan.Zero || Task.WaitAny([pending, _failed.Task], wait) < 0)
            {
                Fail(new TimeoutException("the outbound request body was not taken by the connection before the request deadline"));
                throw new StreamFailedException("outbound request body: the connection took no more bytes before the request deadline") { Code = new HttpErrorCode("connection-write-timeout") };
            }

            ThrowIfFailed();
            if (pending.Result.IsCompleted)
            {
                throw new StreamFailedException("outbound request body: the connection stopped reading it") { Code = new HttpErrorCode("connection-terminated") };
            }
        }
        else if (flush.Result.IsCompleted)
        {
            ThrowIfFailed();
            throw new StreamFailedException("outbound request body: the connection stopped reading it") { Code = new HttpErrorCode("connection-terminated") };
        }
    }

    /// <summary><c>outgoing-body.finish</c>: completes the body, or reports why it is not a valid one.</summary>
    public HttpErrorCode? Finish()
    {
        if (Completed)
        {
            return _error;
        }

        if (ContentLength is { } declared && _written != declared)
        {
            var code = new HttpErrorCode("HTTP-request-body-size", Size: (ulong)_written);
            Abort(code, $"the guest finished the outbound request body after {_written} of its content-length {declared} bytes");
            return code;
        }

        Completed = true;
        _pipe?.Writer.Complete();
        return null;
    }

    /// <summary>
    /// Ends the body as an error (dropped without <c>finish</c>, content-length mismatch): the request fails and the
    /// server sees it cut off, never as a complete request.
    /// </summary>
    public void Abort(HttpErrorCode code, string reason)
    {
        if (Completed)
        {
            return;
        }

        Completed = true;
        _error ??= code;
        _pipe?.Writer.Complete(new IOException(reason));
    }

    /// <summary>The send failed (the connection was refused, reset, timed out): later writes report it.</summary>
    public void Fail(Exception exception)
    {
        // A cancelled copy is often the echo of the real failure (the handler cancels the body when the response
        // side fails): the cause that follows it wins.
        if (_failure is null or OperationCanceledException)
        {
            _failure = exception;
        }

        _failed.TrySetResult();
        _room.Set();
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } failure)
        {
            var code = _error ?? WasiHttp.MapException(failure);
            throw new StreamFailedException($"outbound request failed: {failure.GetBaseException().Message}", failure) { Code = code };
        }
    }

    private StreamFailedException EarlyLimitExceeded() =>
        new($"more than {_earlyLimit} bytes of outbound request body written before outgoing-handler.handle (call handle first to stream a larger body)");

    private bool HasRoom => _failure is not null || Completed || Interlocked.Read(ref _buffered) < Window;

    private void Consumed(long bytes)
    {
        if (Interlocked.Add(ref _buffered, -bytes) < Window)
        {
            _room.Set();
        }
    }

    /// <summary>Ready when the guest may write again.</summary>
    private sealed class RoomPollable(OutboundRequestBody body) : Pollable
    {
        public override bool IsReady => body.HasRoom;

        public override void Block(long deadline)
        {
            while (!body.HasRoom)
            {
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
                if (wait <= TimeSpan.Zero)
                {
                    return;
                }

                // A bounded wait: a set that raced with the writer's reset costs at most this long.
                body._room.Wait(wait < TimeSpan.FromMilliseconds(50) ? wait : TimeSpan.FromMilliseconds(50));
            }
        }
    }

    /// <summary>The request content: the early bytes, then whatever the guest writes into the pipe until finish.</summary>
    private sealed class Content(OutboundRequestBody body) : HttpContent
    {
        private int _serialized;

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref _serialized, 1) != 0)
            {
                throw new InvalidOperationException("an outbound request body streamed from a guest cannot be sent twice");
            }

            var reader = body._pipe!.Reader;
            try
            {
                if (body._early is { Length: > 0 } early)
                {
                    await stream.WriteAsync(early.GetBuffer().AsMemory(0, (int)early.Length), cancellationToken).ConfigureAwait(false);
                }

                body._early = null;
                if (body._finishedBeforeStart)
                {
                    return;
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                while (true)
                {
                    var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    var buffer = result.Buffer;
                    foreach (var segment in buffer)
                    {
                        await stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
                    }

                    var length = buffer.Length;
                    reader.AdvanceTo(buffer.End);
                    body.Consumed(length);
                    if (result.IsCompleted)
                    {
                        break;
                    }

                    await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                await reader.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                body.Fail(ex);
                await reader.CompleteAsync(ex).ConfigureAwait(false);
                throw;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            if (body.ContentLength is { } declared)
            {
                length = declared;
                return true;
            }

            if (body._finishedBeforeStart)
            {
                length = body._earlyLength;
                return true;
            }

            // Unknown: HTTP/1.1 sends it chunked.
            length = 0;
            return false;
        }
    }
}

/// <summary>An outbound request that failed with a specific <c>wasi:http</c> error code.</summary>
internal sealed class OutboundHttpException(HttpErrorCode code, Exception? inner) : Exception(code.Message ?? code.Case, inner)
{
    public HttpErrorCode Code { get; } = code;
}
