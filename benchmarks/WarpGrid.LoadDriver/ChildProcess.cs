using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace WarpGrid.LoadDriver;

/// <summary>
/// A child process whose output goes to a log file. Every child is registered so that <see cref="KillAll"/> (called on
/// normal exit, exceptions, Ctrl+C, SIGTERM and process exit) never leaves one behind.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private static readonly ConcurrentDictionary<ChildProcess, byte> Live = new();

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logLock = new();
    private readonly StringBuilder? _captured;
    private int _disposed;

    private ChildProcess(Process process, string name, string logPath, bool capture)
    {
        _process = process;
        Name = name;
        LogPath = logPath;
        _log = new StreamWriter(logPath, append: false, Encoding.UTF8) { AutoFlush = true };
        _captured = capture ? new StringBuilder() : null;
    }

    /// <summary>A short name for messages.</summary>
    public string Name { get; }

    /// <summary>Where stdout and stderr go.</summary>
    public string LogPath { get; }

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>CPU time the process has used so far (user + kernel).</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>Stdout and stderr so far, when started with <c>capture: true</c>.</summary>
    public string CapturedOutput
    {
        get
        {
            lock (_logLock)
            {
                return _captured?.ToString() ?? string.Empty;
            }
        }
    }

    /// <summary>Starts a child process.</summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, string workingDirectory, string logPath, bool capture = false, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(process, name, logPath, capture);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        child._log.WriteLine($"# {fileName} {string.Join(' ', info.ArgumentList)}");
        if (!process.Start())
        {
            child.Dispose();
            throw new InvalidOperationException($"could not start {fileName}");
        }

        Live[child] = 0;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return child;
    }

    /// <summary>Waits for the process to exit by itself; kills it when <paramref name="timeout"/> passes or on cancellation.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);

            // Let the asynchronous readers drain the last lines.
            _process.WaitForExit();
            return true;
        }
        catch (OperationCanceledException)
        {
            Kill();
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }

    /// <summary>The last lines of the log, for error messages.</summary>
    public string Tail(int lines = 30)
    {
        try
        {
            lock (_logLock)
            {
                _log.Flush();
            }

            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines)).TrimEnd();
        }
        catch (IOException ex)
        {
            return $"(could not read {LogPath}: {ex.Message})";
        }
    }

    /// <summary>Kills the process and its descendants, and waits (bounded) for it to go.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Not started or already gone.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Exited between the check and the kill.
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Kill();
        Live.TryRemove(this, out _);
        lock (_logLock)
        {
            _log.Dispose();
        }

        _process.Dispose();
    }

    /// <summary>Kills every child still alive. Safe to call from signal handlers and more than once.</summary>
    public static void KillAll()
    {
        foreach (var child in Live.Keys)
        {
            child.Kill();
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logLock)
        {
            if (_disposed != 0)
            {
                return;
            }

            _log.WriteLine(line);
            _captured?.AppendLine(line);
        }
    }
}
