using System.Diagnostics;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>A <c>wasi:io/poll</c> pollable.</summary>
internal abstract class Pollable
{
    public static readonly Pollable Ready = new ReadyPollable();

    public abstract bool IsReady { get; }

    /// <summary>Blocks until ready or until <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public abstract void Block(long deadline);

    private sealed class ReadyPollable : Pollable
    {
        public override bool IsReady => true;

        public override void Block(long deadline)
        {
        }
    }
}

/// <summary>Ready at a monotonic instant (a <see cref="Stopwatch"/> timestamp).</summary>
internal sealed class TimerPollable(long readyAt) : Pollable
{
    public override bool IsReady => Stopwatch.GetTimestamp() >= readyAt;

    public override void Block(long deadline)
    {
        var until = Math.Min(readyAt, deadline);
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), until);
        if (wait > TimeSpan.Zero)
        {
            Thread.Sleep(wait);
        }
    }
}

/// <summary>Ready when a task completes.</summary>
internal sealed class TaskPollable(Task task) : Pollable
{
    public override bool IsReady => task.IsCompleted;

    public override void Block(long deadline)
    {
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
        if (wait > TimeSpan.Zero)
        {
            ((IAsyncResult)task).AsyncWaitHandle.WaitOne(wait);
        }
    }
}

/// <summary>A <c>wasi:io/error</c> error.</summary>
internal sealed class IoError(string message, Exception? exception = null)
{
    public string Message { get; } = message;

    public Exception? Exception { get; } = exception;
}

/// <summary>Thrown inside stream implementations for <c>stream-error::last-operation-failed</c>.</summary>
internal sealed class StreamFailedException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The <c>wasi:http</c> error behind the failure (what <c>http-error-code</c> reports for its io-error), if any.</summary>
    public HttpErrorCode? Code { get; init; }
}

/// <summary>A <c>wasi:io/streams</c> input-stream.</summary>
internal abstract class InputStream
{
    /// <summary>
    /// Reads up to <paramref name="count"/> bytes into <paramref name="buffer"/>, waiting for at least one but not past
    /// <paramref name="deadline"/> (a <see cref="Stopwatch"/> timestamp: the request's); 0 means closed (end of stream).
    /// </summary>
    /// <exception cref="StreamFailedException">The read failed, or no byte came in time.</exception>
    public abstract int Read(byte[] buffer, int count, long deadline);

    public virtual Pollable Subscribe() => Pollable.Ready;
}

/// <summary>
/// An input stream over a .NET stream (a request or response body), read on the guest's thread. A read waits at most
/// until the request's deadline, and at most <c>betweenBytes</c> (<c>request-options.between-bytes-timeout</c>) for
/// the next byte; a read that runs out of time is cancelled (the connection is aborted) and fails with
/// <c>connection-read-timeout</c> (as Wasmtime's wasi:http) or, at the deadline, <c>HTTP-response-timeout</c>.
/// </summary>
internal sealed class DotnetInputStream(Stream stream, long maxBytes, string what, TimeSpan? betweenBytes = null) : InputStream
{
    private long _read;

    public override int Read(byte[] buffer, int count, long deadline)
    {
        var untilDeadline = deadline == long.MaxValue ? Timeout.InfiniteTimeSpan : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
        if (untilDeadline > TimeSpan.FromDays(1))
        {
            untilDeadline = Timeout.InfiniteTimeSpan; // past any request timeout; a timer takes at most ~24 days
        }

        var gapLimited = betweenBytes is { } gap && (untilDeadline == Timeout.InfiniteTimeSpan || gap < untilDeadline);
        var wait = gapLimited ? betweenBytes!.Value : untilDeadline;
        int n;
        try
        {
            if (wait == Timeout.InfiniteTimeSpan)
            {
                n = stream.Read(buffer, 0, count);
            }
            else
            {
                using var timeout = new CancellationTokenSource(wait > TimeSpan.Zero ? wait : TimeSpan.FromTicks(1));
                var pending = stream.ReadAsync(buffer.AsMemory(0, count), timeout.Token);
                n = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
            }
        }
        catch (OperationCanceledException ex)
        {
            throw gapLimited
                ? new StreamFailedException($"no byte of the {what} came within the between-bytes-timeout of {betweenBytes!.Value.TotalMilliseconds:0} ms", ex) { Code = new HttpErrorCode("connection-read-timeout") }
                : new StreamFailedException($"the request's deadline passed while reading the {what}", ex) { Code = new HttpErrorCode("HTTP-response-timeout") };
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or HttpRequestException)
        {
            throw new StreamFailedException($"reading the {what} failed: {ex.Message}", ex);
        }

        _read += n;
        if (_read > maxBytes)
        {
            throw new StreamFailedException($"the {what} is larger than {maxBytes} bytes");
        }

        return n;
    }
}

/// <summary>An input stream with nothing in it (stdin of an HTTP handler).</summary>
internal sealed class EmptyInputStream : InputStream
{
    public override int Read(byte[] buffer, int count, long deadline) => 0;
}

/// <summary>A <c>wasi:io/streams</c> output-stream.</summary>
internal abstract class OutputStream
{
    /// <summary>Bytes the guest may write now; 0 would block.</summary>
    public virtual long CheckWrite() => 1 << 20;

    public abstract void Write(ReadOnlySpan<byte> bytes);

    public virtual void Flush()
    {
    }

    public virtual Pollable Subscribe() => Pollable.Ready;
}

/// <summary>Guest stdout/stderr: split into log lines.</summary>
internal sealed class LogOutputStream(ComponentLogSink sink, bool isError, int maxBytes) : OutputStream
{
    private readonly List<byte> _line = [];
    private int _total;

    public override void Write(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (_total >= maxBytes)
            {
                return;
            }

            _total++;
            if (b == (byte)'\n')
            {
                sink(isError, [.. _line]);
                _line.Clear();
            }
            else
            {
                _line.Add(b);
            }
        }
    }

    public override void Flush()
    {
        if (_line.Count > 0)
        {
            sink(isError, [.. _line]);
            _line.Clear();
        }
    }
}

/// <summary>Receives one line of a guest's stdout (<paramref name="isError"/> false) or stderr.</summary>
internal delegate void ComponentLogSink(bool isError, byte[] line);

/// <summary>A terminal handle (never handed out: guests have no terminal).</summary>
internal sealed class Terminal;
