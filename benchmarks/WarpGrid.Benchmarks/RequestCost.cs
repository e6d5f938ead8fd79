using System.Diagnostics;
using System.Globalization;

namespace WarpGrid.Benchmarks;

/// <summary>
/// What a request costs the node (<c>--request-cost</c>), measured as process CPU time per request rather than only
/// the caller's wall time: BenchmarkDotNet times the call, but a component pool may recycle the used instance on a
/// thread-pool thread after the call returns, and that work is part of the price of a request too. Each case runs
/// <c>--parallel</c> closed loops (1 and 2 by default: one request at a time, and one per core on a two-core node) for
/// <c>--seconds</c> (default 5) per round, <c>--rounds</c> rounds (default 3), and prints the medians of requests/s,
/// wall µs per request per loop, and process CPU µs per request (all threads, so it includes recycling and the GC).
/// <c>--keep-resident MiB</c> overrides <c>KeepResidentBytes</c> to compare settings in one build. The calls are the
/// ones <see cref="ComponentHelloBenchmark"/> times, on the same pools.
/// </summary>
internal static class RequestCost
{
    public static int Run(string[] args)
    {
        var seconds = Option(args, "--seconds", 5);
        var rounds = Option(args, "--rounds", 3);
        var parallel = args.Contains("--parallel", StringComparer.Ordinal) ? [Option(args, "--parallel", 1)] : new[] { 1, 2 };
        var bench = new ComponentHelloBenchmark();
        if (args.Contains("--keep-resident", StringComparer.Ordinal))
        {
            bench.KeepResidentBytes = (long)Option(args, "--keep-resident", 16) << 20;
        }

        bench.Setup();
        try
        {
            (string Name, Func<ValueTask> Call)[] cases =
            [
                ("WAGI hello (C)", async () => await bench.WagiHello().ConfigureAwait(false)),
                ("component hello (C, wasi:http)", async () => await bench.ComponentHelloC().ConfigureAwait(false)),
                ("component hello (C test guest http-c)", async () => await bench.ComponentHttpC().ConfigureAwait(false)),
                ("component hello-js (wasi:http)", async () => await bench.ComponentHello().ConfigureAwait(false)),
            ];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"keep-resident {bench.KeepResidentBytes >> 20} MiB, {Environment.ProcessorCount} cores, {seconds} s x {rounds} rounds per case; medians"));
            Console.WriteLine($"{"case",-40} {"loops",5} {"req/s",10} {"wall µs",9} {"CPU µs",9} {"CPU vs WAGI",12}");
            foreach (var loops in parallel)
            {
                double? baseline = null;
                foreach (var (name, call) in cases)
                {
                    var samples = Enumerable.Range(0, rounds).Select(_ => Measure(call, loops, TimeSpan.FromSeconds(seconds))).ToList();
                    var rate = Median(samples.Select(s => s.Rate));
                    var cpu = Median(samples.Select(s => s.CpuMicros));
                    baseline ??= cpu;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-40} {loops,5} {rate,10:0} {loops * 1e6 / rate,9:0.0} {cpu,9:0.0} {cpu / baseline,11:0.00}x"));
                }
            }

            return 0;
        }
        finally
        {
            bench.Cleanup();
        }
    }

    private static (double Rate, double CpuMicros) Measure(Func<ValueTask> call, int loops, TimeSpan duration)
    {
        // Warm up (JIT, pool at its steady size), then settle the GC so one case's garbage is not charged to the next.
        var warmUntil = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 2);
        while (Stopwatch.GetTimestamp() < warmUntil)
        {
            call().AsTask().GetAwaiter().GetResult();
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpuBefore = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var counts = new long[loops];
        var workers = Enumerable.Range(0, loops).Select(i => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < deadline)
            {
                await call().ConfigureAwait(false);
                counts[i]++;
            }
        })).ToArray();
        Task.WaitAll(workers);
        var elapsed = wall.Elapsed;
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpuBefore;
        var requests = counts.Sum();
        return (requests / elapsed.TotalSeconds, cpu.TotalMicroseconds / requests);
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        if (at < 0)
        {
            return fallback;
        }

        if (at + 1 >= args.Length || !int.TryParse(args[at + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            throw new ArgumentException($"{name} needs a positive whole number after it.", nameof(args));
        }

        return value;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
