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

/// <summary>How long a host-side wait may last: a guest's own timeout, bounded by the request's deadline.</summary>
internal static class WaitLimit
{
    /// <summary>
    /// The wait for <paramref name="timeout"/> (none: only the deadline) and <paramref name="deadline"/> (a
    /// <see cref="Stopwatch"/> timestamp; <see cref="long.MaxValue"/>: none): <see cref="Timeout.InfiniteTimeSpan"/>
    /// when neither bounds it (a deadline more than a day away counts as none: a timer takes at most ~24 days, a
    /// request deadline at most an hour), else at least one tick; and whether the timeout, not the deadline, set it.
    /// </summary>
    public static (TimeSpan Wait, bool ByTimeout) Of(TimeSpan? timeout, long deadline)
    {
        var left = deadline == long.MaxValue ? Timeout.InfiniteTimeSpan : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
        if (left > TimeSpan.FromDays(1))
        {
            left = Timeout.InfiniteTimeSpan;
        }
        else if (left != Timeout.InfiniteTimeSpan && left <= TimeSpan.Zero)
        {
            left = TimeSpan.FromTicks(1);
        }

        return timeout is { } t && (left == Timeout.InfiniteTimeSpan || t < left)
            ? (t > TimeSpan.Zero ? t : TimeSpan.FromTicks(1), true)
            : (left, false);
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

    /// <summary>
    /// <c>read</c> without waiting: bytes that are there now, 0 when closed, or -1 when none is there yet (the guest
    /// then waits on <see cref="Subscribe"/>). The default is a stream that never has to wait.
    /// </summary>
    public virtual int TryRead(byte[] buffer, int count, long deadline) => Read(buffer, count, deadline);

    /// <summary>A pollable that is ready once <see cref="TryRead"/> would not answer -1.</summary>
    public virtual Pollable Subscribe(long deadline) => Pollable.Ready;
}

/// <summary>
/// An input stream over a .NET stream (a request or response body), read on the guest's thread. A read waits at most
/// until the request's deadline, and at most <c>betweenBytes</c> (<c>request-options.between-bytes-timeout</c>) for
/// the next byte; a read that runs out of time is cancelled (the connection is aborted) and fails with
/// <c>connection-read-timeout</c> (as Wasmtime's wasi:http) or, at the deadline, <c>HTTP-response-timeout</c>.
/// A non-blocking <c>read</c> (or <c>subscribe</c>) with nothing there starts a read into a buffer of its own, which
/// later reads take from first.
/// </summary>
internal sealed class DotnetInputStream(Stream stream, long maxBytes, string what, TimeSpan? betweenBytes = null) : InputStream
{
    private const int AheadBytes = 16 * 1024;
    private long _read;
    private byte[]? _ahead;
    private int _aheadStart;
    private int _aheadEnd;
    private Task<int>? _pending;
    private CancellationTokenSource? _pendingTimeout;
    private bool _pendingGapLimited;
    private bool _closed;

    public override int Read(byte[] buffer, int count, long deadline)
    {
        if (TakeAhead(buffer, count) is var taken and > 0)
        {
            return taken;
        }

        if (_closed)
        {
            return 0;
        }

        if (_pending is not null)
        {
            ((IAsyncResult)_pending).AsyncWaitHandle.WaitOne(); // the pending read has its own timeouts
            return Complete(buffer, count);
        }

        var (wait, gapLimited) = WaitLimit.Of(betweenBytes, deadline);
        int n;
        try
        {
            if (wait == Timeout.InfiniteTimeSpan)
            {
                n = stream.Read(buffer, 0, count);
            }
            else
            {
                using var timeout = new CancellationTokenSource(wait);
                var pending = stream.ReadAsync(buffer.AsMemory(0, count), timeout.Token);
                n = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
            }
        }
        catch (Exception ex)
        {
            throw Failure(ex, gapLimited);
        }

        return Count(n);
    }

    public override int TryRead(byte[] buffer, int count, long deadline)
    {
        if (TakeAhead(buffer, count) is var taken and > 0)
        {
            return taken;
        }

        if (_closed)
        {
            return 0;
        }

        Start(deadline);
        return _pending!.IsCompleted ? Complete(buffer, count) : -1;
    }

    public override Pollable Subscribe(long deadline)
    {
        if (_aheadEnd > _aheadStart || _closed)
        {
            return Pollable.Ready;
        }

        Start(deadline);
        return new TaskPollable(_pending!);
    }

    /// <summary>Starts a read into the look-ahead buffer, unless one is under way.</summary>
    private void Start(long deadline)
    {
        if (_pending is not null)
        {
            return;
        }

        _ahead ??= new byte[AheadBytes]; // not pooled: a read still pending when the request ends may write to it later
        var (wait, gapLimited) = WaitLimit.Of(betweenBytes, deadline);
        _pendingGapLimited = gapLimited;
        _pendingTimeout = wait == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(wait);
        try
        {
            _pending = stream.ReadAsync(_ahead.AsMemory(), _pendingTimeout?.Token ?? CancellationToken.None).AsTask();
        }
        catch (Exception ex)
        {
            _pending = Task.FromException<int>(ex);
        }
    }

    /// <summary>Takes the result of the finished look-ahead read.</summary>
    private int Complete(byte[] buffer, int count)
    {
        var pending = _pending!;
        _pending = null;
        var timeout = _pendingTimeout;
        _pendingTimeout = null;
        int n;
        try
        {
            n = pending.GetAwaiter().GetResult();
        }
        catch (Exception ex)
        {
            throw Failure(ex, _pendingGapLimited);
        }
        finally
        {
            timeout?.Dispose();
        }

        if (Count(n) == 0)
        {
            return 0;
        }

        _aheadStart = 0;
        _aheadEnd = n;
        return TakeAhead(buffer, count);
    }

    private int TakeAhead(byte[] buffer, int count)
    {
        var n = Math.Min(count, _aheadEnd - _aheadStart);
        if (n <= 0)
        {
            return 0;
        }

        _ahead.AsSpan(_aheadStart, n).CopyTo(buffer);
        _aheadStart += n;
        return n;
    }

    private int Count(int n)
    {
        if (n == 0)
        {
            _closed = true;
            return 0;
        }

        _read += n;
        if (_read > maxBytes)
        {
            throw new StreamFailedException($"the {what} is larger than {maxBytes} bytes");
        }

        return n;
    }

    private Exception Failure(Exception ex, bool gapLimited) => ex switch
    {
        StreamFailedException failed => failed,
        OperationCanceledException when gapLimited => new StreamFailedException($"no byte of the {what} came within the between-bytes-timeout of {betweenBytes!.Value.TotalMilliseconds:0} ms", ex) { Code = new HttpErrorCode("connection-read-timeout") },
        OperationCanceledException => new StreamFailedException($"the request's deadline passed while reading the {what}", ex) { Code = new HttpErrorCode("HTTP-response-timeout") },
        IOException or InvalidOperationException or HttpRequestException or ObjectDisposedException => new StreamFailedException($"reading the {what} failed: {ex.Message}", ex),
        _ => ex,
    };
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
