using System.Globalization;
using System.Text.RegularExpressions;

namespace WarpGrid.LoadDriver;

/// <summary>One wrk run, parsed.</summary>
/// <param name="RequestsPerSecond">The "Requests/sec:" line.</param>
/// <param name="Requests">Completed requests ("N requests in ...").</param>
/// <param name="LatencyP50Ms">50% of the latency distribution (<c>--latency</c>), in ms.</param>
/// <param name="LatencyP90Ms">90%, in ms.</param>
/// <param name="LatencyP99Ms">99%, in ms.</param>
/// <param name="Non2xx">The "Non-2xx or 3xx responses:" count (0 when absent).</param>
/// <param name="SocketErrors">Sum of the "Socket errors:" counts (0 when absent).</param>
internal sealed record WrkResult(double RequestsPerSecond, long Requests, double LatencyP50Ms, double LatencyP90Ms, double LatencyP99Ms, long Non2xx, long SocketErrors)
{
    /// <summary>Server CPU time per request during the measured run, in µs (set by the caller).</summary>
    public double ServerCpuMicrosPerRequest { get; init; } = double.NaN;
}

/// <summary>Runs wrk and parses its report.</summary>
internal static partial class Wrk
{
    /// <summary>Runs <c>wrk -t -c -d --latency url</c> as a tracked child; killed if it overruns the duration by 30 s.</summary>
    public static async Task<WrkResult> RunAsync(DriverOptions options, string url, TimeSpan duration, string logPath, CancellationToken cancellationToken)
    {
        var arguments = new[]
        {
            "-t" + options.Threads.ToString(CultureInfo.InvariantCulture),
            "-c" + options.Connections.ToString(CultureInfo.InvariantCulture),
            "-d" + DriverOptions.WrkDuration(duration),
            "--timeout", "5s",
            "--latency",
            url,
        };
        using var wrk = ChildProcess.Start("wrk", options.Wrk, arguments, options.Repo, logPath, capture: true);
        if (!await wrk.WaitForExitAsync(duration + TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false))
        {
            throw new TimeoutException($"wrk did not finish within {duration.TotalSeconds + 30} s; log: {logPath}");
        }

        var output = wrk.CapturedOutput;
        if (wrk.ExitCode != 0)
        {
            throw new InvalidOperationException($"wrk exited with code {wrk.ExitCode}:\n{output}");
        }

        return Parse(output);
    }

    /// <summary>Parses wrk's text report; throws when the "Requests/sec:" line is missing.</summary>
    public static WrkResult Parse(string output)
    {
        var rps = RequestsPerSecondLine().Match(output);
        if (!rps.Success)
        {
            throw new FormatException("wrk's output has no \"Requests/sec:\" line:\n" + output);
        }

        var requests = RequestsLine().Match(output);
        var non2xx = Non2xxLine().Match(output);
        var socket = SocketErrorsLine().Match(output);
        long socketErrors = 0;
        if (socket.Success)
        {
            for (var g = 1; g <= 4; g++)
            {
                socketErrors += long.Parse(socket.Groups[g].Value, CultureInfo.InvariantCulture);
            }
        }

        return new WrkResult(
            double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture),
            requests.Success ? long.Parse(requests.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
            Percentile(output, "50"),
            Percentile(output, "90"),
            Percentile(output, "99"),
            non2xx.Success ? long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
            socketErrors);
    }

    private static double Percentile(string output, string percent)
    {
        var match = Regex.Match(output, @"^\s+" + percent + @"%\s+([0-9.]+)(us|ms|s|m)\s*$", RegexOptions.Multiline | RegexOptions.CultureInvariant);
        if (!match.Success)
        {
            return double.NaN;
        }

        var value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch
        {
            "us" => value / 1000,
            "ms" => value,
            "s" => value * 1000,
            _ => value * 60_000,
        };
    }

    [GeneratedRegex(@"^Requests/sec:\s+([0-9.]+)\s*$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex RequestsPerSecondLine();

    [GeneratedRegex(@"^\s*([0-9]+) requests in ", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex RequestsLine();

    [GeneratedRegex(@"^\s*Non-2xx or 3xx responses:\s+([0-9]+)\s*$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex Non2xxLine();

    [GeneratedRegex(@"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", RegexOptions.CultureInvariant)]
    private static partial Regex SocketErrorsLine();
}
