using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace WarpGrid.Cli.Build;

/// <summary>The outcome of a child process.</summary>
internal sealed record ProcessResult(int ExitCode, string Output, TimeSpan Elapsed);

/// <summary>Runs toolchain processes: output captured (bounded), optional progress on standard error, killed with its children on cancellation.</summary>
internal static class ProcessRunner
{
    private const int MaxCapturedChars = 256 * 1024;
    private static readonly char[] Spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

    /// <summary>
    /// Runs <paramref name="fileName"/> and waits for it; throws <see cref="Win32Exception"/> when it cannot start. With
    /// <paramref name="progress"/> and <paramref name="label"/>, a spinner with the elapsed time (interactive) or a start line (plain) goes to standard error.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        string workingDirectory,
        IReadOnlyDictionary<string, string?>? environment,
        CliContext? progress,
        string? label,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                if (value is null)
                {
                    info.Environment.Remove(key);
                }
                else
                {
                    info.Environment[key] = value;
                }
            }
        }

        var output = new StringBuilder();
        void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                if (output.Length < MaxCapturedChars)
                {
                    output.AppendLine(line);
                }
            }
        }

        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        var stopwatch = Stopwatch.StartNew();
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        if (progress is not null && label is not null && !progress.Interactive)
        {
            progress.Err.WriteLine(label + " ...");
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        var exited = process.WaitForExitAsync(timeoutSource.Token);
        try
        {
            if (progress is { Interactive: true } && label is not null)
            {
                var frame = 0;
                using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
                while (!exited.IsCompleted)
                {
                    progress.Err.Write($"\r{Spinner[frame++ % Spinner.Length]} {label} {stopwatch.Elapsed.TotalSeconds:0.0}s ");
                    await Task.WhenAny(exited, ticker.WaitForNextTickAsync(timeoutSource.Token).AsTask()).ConfigureAwait(false);
                }

                progress.Err.Write("\r" + new string(' ', label.Length + 12) + "\r");
            }

            await exited.ConfigureAwait(false);
            process.WaitForExit(); // drains the redirected streams
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already exited
            }

            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            Append($"(killed after {timeout.TotalSeconds:0} s)");
            return new ProcessResult(-1, output.ToString(), stopwatch.Elapsed);
        }

        lock (output)
        {
            return new ProcessResult(process.ExitCode, output.ToString(), stopwatch.Elapsed);
        }
    }

    /// <summary>Runs a short probe (e.g. <c>--version</c>) and returns its first output line, or <see langword="null"/>.</summary>
    public static async Task<string?> ProbeAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        try
        {
            var result = await RunAsync(fileName, arguments, Directory.GetCurrentDirectory(), null, null, null, TimeSpan.FromSeconds(20), cancellationToken).ConfigureAwait(false);
            return result.ExitCode == 0
                ? result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault()
                : null;
        }
        catch (Win32Exception)
        {
            return null;
        }
    }
}
