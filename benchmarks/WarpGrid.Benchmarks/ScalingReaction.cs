using System.Diagnostics;
using System.Globalization;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Health;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Benchmarks;

/// <summary>
/// Autoscaler reaction time to a step in load (<c>--scaling-reaction</c>): a deployment at zero instances
/// (<c>min_instances = 0</c>, <c>target_value = 1</c>, no scale-up window, sampling every 100 ms) suddenly gets
/// <c>N</c> clients in a closed loop of 50 ms requests (testbed <c>/spin?ms=50</c>). Measured: time from the step to
/// the autoscaler's decision reaching N, and (scale-down window 1 s) from the end of the load to zero instances.
/// Real clock, real pool, real supervisor; bounded: 5 rounds, each at most 20 s.
/// </summary>
internal static class ScalingReaction
{
    public static int Run(int clients = 4, int rounds = 5)
    {
        using var runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 64L << 20 });
        var module = runtime.Modules.LoadFile(RepoPaths.Combine("tests", "guests", "testbed.wasm"));
        var up = new List<double>();
        var down = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            var manifest = ManifestParser.ParseOrThrow($"""
                [package]
                name = "step{round}"

                [runtime]
                min_instances = 0
                max_instances = {clients * 2}

                [runtime.scaling]
                target_value = 1
                scale_up_window = "0s"
                scale_down_window = "1s"
                """);
            var pool = runtime.CreatePool(DeploymentManager.ToPoolSettings(manifest) with { MemoryLimitBytes = 16L << 20 }, module);
            var registry = new DeploymentRegistry();
            registry.Set(new ActiveDeployment(new DeploymentRecord { Name = manifest.Package.Name, Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('0', 64), Revision = 1 }, manifest, pool, DeploymentState.Running, null, 1));
            var supervisor = new DeploymentSupervisor(registry, runtime, new SupervisorOptions { Tick = TimeSpan.FromMilliseconds(10), ScalingInterval = TimeSpan.FromMilliseconds(100) });
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var supervising = Task.Run(() => supervisor.RunAsync(stop.Token));
            while (supervisor.GetScaling(manifest.Package.Name) is null && !stop.IsCancellationRequested)
            {
                Thread.Sleep(5); // poll: the supervisor has seen the idle deployment
            }

            using var load = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            var step = Stopwatch.StartNew();
            var request = new WagiRequest { PathInfo = "/spin", QueryString = "ms=50" };
            var workers = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                while (!load.IsCancellationRequested)
                {
                    using var result = await pool.InvokeAsync(request).ConfigureAwait(false);
                }
            })).ToArray();
            double? reached = null;
            while (!stop.IsCancellationRequested && reached is null)
            {
                if (supervisor.GetScaling(manifest.Package.Name) is { DesiredInstances: var d } && d >= clients)
                {
                    reached = step.Elapsed.TotalMilliseconds;
                }

                Thread.Sleep(1);
            }

            Task.WaitAll(workers);
            var quiet = Stopwatch.StartNew();
            double? zero = null;
            while (!stop.IsCancellationRequested && zero is null)
            {
                if (pool.Stats.Live == 0)
                {
                    zero = quiet.Elapsed.TotalMilliseconds;
                }

                Thread.Sleep(5);
            }

            stop.Cancel();
            supervising.Wait(TimeSpan.FromSeconds(10));
            pool.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
            if (reached is null || zero is null)
            {
                Console.Error.WriteLine($"round {round}: did not converge (up {reached}, down {zero})");
                return 1;
            }

            up.Add(reached.Value);
            down.Add(zero.Value);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}: 0 -> {clients} desired in {reached:0.0} ms; quiet -> 0 live in {zero:0} ms"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median scale-up reaction {Median(up):0.0} ms (sampling every 100 ms), median scale-down to zero {Median(down):0} ms (1 s window), {clients} clients, {rounds} rounds"));
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
