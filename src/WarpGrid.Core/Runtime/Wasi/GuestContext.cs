using System.Buffers;
using System.Text;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Wasi;

/// <summary>Thrown inside a host call to end the guest when it calls <c>proc_exit</c>.</summary>
public sealed class GuestExitException(int exitCode) : Exception("guest exited with code " + exitCode)
{
    /// <summary>The code passed to <c>proc_exit</c>.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>Receives the lines a guest writes to stderr.</summary>
public delegate void GuestLogSink(object? state, ReadOnlySpan<byte> line);

/// <summary>
/// Per-store state of a WASI preview 1 guest: its memory, environment, arguments and in-memory standard streams.
/// One instance per pooled slot, reset between requests; never shared between threads at the same time.
/// </summary>
public sealed class GuestContext
{
    private byte[] _env = [];
    private int _envCount;
    private int _envLength;
    private byte[] _args = [];
    private int _argCount;
    private int _argLength;
    private byte[] _stderr = new byte[256];
    private int _stderrLength;
    private int _stderrDropped;
    private int _recordBytes;
    private int _recordsDropped;

    /// <summary>The exported linear memory named <c>memory</c>, set after instantiation.</summary>
    public Memory? Memory { get; set; }

    /// <summary>Standard input: the request body.</summary>
    public ReadOnlyMemory<byte> Stdin { get; private set; }

    /// <summary>Bytes of <see cref="Stdin"/> already read by the guest.</summary>
    public int StdinPosition { get; set; }

    /// <summary>Standard output collected so far (the CGI response).</summary>
    public GuestOutput Stdout { get; } = new();

    /// <summary>The code the guest passed to <c>proc_exit</c>, if it did.</summary>
    public int? ExitCode { get; set; }

    /// <summary>Maximum stderr bytes kept per request.</summary>
    public int MaxStderrBytes { get; set; } = 64 * 1024;

    /// <summary>Where complete stderr lines go.</summary>
    public GuestLogSink? LogSink { get; set; }

    /// <summary>
    /// Where records written through the log import go (<see cref="GuestLogging"/>); null when the deployment is not
    /// granted <c>[capabilities] logging</c> (a call then traps).
    /// </summary>
    public GuestRecordSink? RecordSink { get; set; }

    /// <summary>State passed to <see cref="LogSink"/> and <see cref="RecordSink"/>.</summary>
    public object? LogState { get; set; }

    /// <summary>When the current run must end, as a <see cref="System.Diagnostics.Stopwatch"/> timestamp; host calls never block past it.</summary>
    public long DeadlineTimestamp { get; set; } = long.MaxValue;

    /// <summary>Wall clock for <c>clock_time_get(realtime)</c>.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    internal int EnvCount => _envCount;

    internal ReadOnlySpan<byte> EnvBlock => _env.AsSpan(0, _envLength);

    internal int ArgCount => _argCount;

    internal ReadOnlySpan<byte> ArgBlock => _args.AsSpan(0, _argLength);

    /// <summary>Prepares the context for one run.</summary>
    public void Begin(ReadOnlyMemory<byte> stdin, long maxStdout)
    {
        Stdin = stdin;
        StdinPosition = 0;
        ExitCode = null;
        _stderrLength = 0;
        _stderrDropped = 0;
        _recordBytes = 0;
        _recordsDropped = 0;
        Stdout.Reset(maxStdout);
        _envCount = 0;
        _envLength = 0;
        _argCount = 0;
        _argLength = 0;
    }

    /// <summary>Adds one environment variable (<c>name=value</c>).</summary>
    public void AddEnvironment(string name, string value) => Append(ref _env, ref _envLength, ref _envCount, name, value.AsSpan());

    /// <summary>Adds one environment variable with an integer value.</summary>
    public void AddEnvironment(string name, long value)
    {
        Span<char> digits = stackalloc char[20];
        value.TryFormat(digits, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
        Append(ref _env, ref _envLength, ref _envCount, name, digits[..written]);
    }

    /// <summary>Adds one environment variable from spans (no intermediate strings).</summary>
    public void AddEnvironment(ReadOnlySpan<char> name, ReadOnlySpan<char> value) => Append(ref _env, ref _envLength, ref _envCount, name, value);

    /// <summary>Adds one command-line argument.</summary>
    public void AddArgument(string value) => Append(ref _args, ref _argLength, ref _argCount, value, default, separator: false);

    /// <summary>The environment as <c>name=value</c> strings (for diagnostics and tests).</summary>
    public IEnumerable<string> Environment()
    {
        var text = Encoding.UTF8.GetString(EnvBlock);
        return text.Split('\0', StringSplitOptions.RemoveEmptyEntries);
    }

    internal void WriteStderr(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var newline = data.IndexOf((byte)'\n');
            var chunk = newline < 0 ? data : data[..newline];
            AppendStderr(chunk);
            if (newline < 0)
            {
                return;
            }

            FlushStderrLine();
            data = data[(newline + 1)..];
        }
    }

    /// <summary>
    /// Passes one log-import record to <see cref="RecordSink"/>: a message is cut at
    /// <see cref="GuestLogging.MaxRecordBytes"/>, a context at 256 bytes, and records past <see cref="MaxStderrBytes"/>
    /// bytes in one request are dropped (and counted in a note at the end).
    /// </summary>
    internal void WriteRecord(int level, ReadOnlySpan<byte> context, ReadOnlySpan<byte> message)
    {
        if (context.Length > 256)
        {
            context = context[..256];
        }

        if (message.Length > GuestLogging.MaxRecordBytes)
        {
            message = message[..GuestLogging.MaxRecordBytes];
        }

        var size = context.Length + message.Length;
        if (_recordBytes + size > MaxStderrBytes)
        {
            _recordsDropped++;
            return;
        }

        _recordBytes += size;
        RecordSink?.Invoke(LogState, level, context, message);
    }

    /// <summary>Emits any partial stderr line and a note about dropped bytes. Call when the run ends.</summary>
    public void End()
    {
        if (_stderrLength > 0)
        {
            FlushStderrLine();
        }

        if (_stderrDropped > 0)
        {
            var note = Encoding.UTF8.GetBytes("[warpgrid: " + _stderrDropped + " bytes of stderr dropped, limit " + MaxStderrBytes + " per request]");
            LogSink?.Invoke(LogState, note);
            _stderrDropped = 0;
        }

        if (_recordsDropped > 0)
        {
            var note = Encoding.UTF8.GetBytes("[warpgrid: " + _recordsDropped + " log records dropped, limit " + MaxStderrBytes + " bytes of log records per request]");
            LogSink?.Invoke(LogState, note);
            _recordsDropped = 0;
        }

        Stdin = default;
    }

    private void AppendStderr(ReadOnlySpan<byte> chunk)
    {
        var room = MaxStderrBytes - _stderrLength;
        if (chunk.Length > room)
        {
            _stderrDropped += chunk.Length - Math.Max(room, 0);
            chunk = room > 0 ? chunk[..room] : default;
        }

        if (chunk.IsEmpty)
        {
            return;
        }

        if (_stderr.Length < _stderrLength + chunk.Length)
        {
            Array.Resize(ref _stderr, Math.Max(_stderr.Length * 2, _stderrLength + chunk.Length));
        }

        chunk.CopyTo(_stderr.AsSpan(_stderrLength));
        _stderrLength += chunk.Length;
    }

    private void FlushStderrLine()
    {
        var line = _stderr.AsSpan(0, _stderrLength);
        if (line.Length > 0 && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        LogSink?.Invoke(LogState, line);
        _stderrLength = 0;
    }

    private static void Append(ref byte[] buffer, ref int length, ref int count, ReadOnlySpan<char> first, ReadOnlySpan<char> second, bool separator = true)
    {
        var needed = Encoding.UTF8.GetByteCount(first) + (separator ? 1 + Encoding.UTF8.GetByteCount(second) : 0) + 1;
        if (buffer.Length < length + needed)
        {
            Array.Resize(ref buffer, Math.Max(buffer.Length * 2, Math.Max(512, length + needed)));
        }

        var span = buffer.AsSpan(length);
        var written = Encoding.UTF8.GetBytes(first, span);
        if (separator)
        {
            span[written++] = (byte)'=';
            written += Encoding.UTF8.GetBytes(second, span[written..]);
        }

        span[written++] = 0;
        length += written;
        count++;
    }
}

/// <summary>A bounded, growable in-memory buffer for a guest's stdout, backed by pooled arrays.</summary>
public sealed class GuestOutput
{
    private byte[] _buffer = [];
    private int _length;
    private long _max;

    /// <summary>True once the guest tried to write past the limit.</summary>
    public bool Overflowed { get; private set; }

    /// <summary>Bytes written.</summary>
    public int Length => _length;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    internal void Reset(long max)
    {
        _length = 0;
        _max = max;
        Overflowed = false;
    }

    internal bool Write(ReadOnlySpan<byte> data)
    {
        if (_length + (long)data.Length > _max)
        {
            Overflowed = true;
            return false;
        }

        if (_buffer.Length - _length < data.Length)
        {
            var next = ArrayPool<byte>.Shared.Rent((int)Math.Min(_max, Math.Max(_buffer.Length * 2L, _length + (long)data.Length)));
            _buffer.AsSpan(0, _length).CopyTo(next);
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = next;
        }

        data.CopyTo(_buffer.AsSpan(_length));
        _length += data.Length;
        return true;
    }

    /// <summary>
    /// Hands the written bytes to the caller: returns the pooled array holding them (the caller returns it to
    /// <see cref="ArrayPool{T}.Shared"/>) and leaves this buffer empty.
    /// </summary>
    public byte[] Detach(out int length)
    {
        var buffer = _buffer;
        length = _length;
        _buffer = [];
        _length = 0;
        return buffer;
    }
}
