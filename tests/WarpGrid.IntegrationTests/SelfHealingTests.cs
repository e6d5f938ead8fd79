using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// Health probes, crash-loop back-off and autoscaling with scale-to-zero on a real warpd with short supervisor
/// timings. The testbed's <c>/healthz</c> fails for the instance ids listed in <c>UNHEALTHY_INSTANCES</c> (instance
/// ids are the deployment name and a per-pool sequence, so the first instance is <c>NAME-0001</c>) or for every
/// instance with <c>HEALTH=fail</c>. Owns its warpd.
/// </summary>
public sealed class SelfHealingTests
{
    private static readonly string[] FastSupervisor =
    [
        "--WarpGrid:Supervisor:Tick=00:00:00.050",
        "--WarpGrid:Supervisor:ScalingInterval=00:00:00.200",
        "--WarpGrid:Supervisor:RestartBackoffInitial=00:00:00.500",
        "--WarpGrid:Supervisor:RestartBackoffMax=00:00:04",
    ];

    [Fact]
    public async Task An_instance_failing_its_probe_gets_no_traffic_once_unready_and_is_replaced_and_a_crash_loop_backs_off()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path, extraArguments: FastSupervisor);
        var module = await File.ReadAllBytesAsync(TestPaths.Testbed);
        const string Probe = "[health]\nendpoint = \"/healthz\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\nunhealthy_threshold = 3\n";
        await warpd.DeployAsync("hx", WarpApi.Manifest("hx", route: "/hx", minInstances: 2, maxInstances: 2, extra: "[capabilities]\nenvironment = { UNHEALTHY_INSTANCES = \"hx-0001\" }\n\n" + Probe), module);

        // Traffic all along, one request at a time; both instances serve before the first probe.
        var served = new List<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await warpd.Ingress.GetAsync("hx/whoami", stop.Token);
                    var body = await response.Content.ReadAsStringAsync(stop.Token);
                    lock (served)
                    {
                        served.Add(response.IsSuccessStatusCode ? body : $"{(int)response.StatusCode}");
                    }
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        });

        // Wait until hx-0001 is out of rotation (or already gone); from then on (skipping the one request that may be in flight) it serves nothing.
        var markedAt = 0;
        await Poll.UntilAsync(
            async () =>
            {
                var instances = JsonNode.Parse(await warpd.Api.GetStringAsync("v1/deployments/hx/instances"))!.AsArray();
                var first = instances.FirstOrDefault(i => (string?)i!["id"] == "hx-0001");
                if (first is null || (string?)first["state"] == "unready")
                {
                    lock (served)
                    {
                        markedAt = served.Count + 1;
                    }

                    return true;
                }

                return false;
            },
            "hx-0001 to be marked unready",
            diagnostics: () => warpd.Tail());

        await Poll.UntilAsync(
            async () =>
            {
                var instances = JsonNode.Parse(await warpd.Api.GetStringAsync("v1/deployments/hx/instances"))!.AsArray().Select(i => (string)i!["id"]!).ToList();
                return !instances.Contains("hx-0001") && instances.Count == 2;
            },
            "hx-0001 to be replaced",
            diagnostics: () => warpd.Tail());
        await Poll.UntilAsync(() => { lock (served) { return served.Count >= markedAt + 20; } }, "traffic after the replacement");
        await stop.CancelAsync();
        await traffic;

        List<string> before, after;
        lock (served)
        {
            before = served.Take(markedAt).ToList();
            after = served.Skip(markedAt).ToList();
        }

        Assert.All(before, id => Assert.StartsWith("hx-", id, StringComparison.Ordinal));
        Assert.DoesNotContain("hx-0001", after);
        Assert.All(after, id => Assert.StartsWith("hx-", id, StringComparison.Ordinal)); // and nothing failed meanwhile
        var hx = (await warpd.GetDeploymentAsync("hx"))!;
        Assert.Equal(1, (long)hx["health"]!["restarts"]!);
        Assert.Contains("hx-0001", (string)hx["health"]!["lastError"]!, StringComparison.Ordinal);
        var logs = await warpd.Api.GetStringAsync("v1/deployments/hx/logs?tail=1000");
        Assert.Contains("\"stream\": \"system\"", logs.Replace("\":\"", "\": \"", StringComparison.Ordinal), StringComparison.Ordinal);

        // Every instance failing: replaced again and again with growing waits; the API shows the crash loop.
        await warpd.DeployAsync("cl", WarpApi.Manifest("cl", route: "/cl", minInstances: 1, maxInstances: 1, extra: "[capabilities]\nenvironment = { HEALTH = \"fail\" }\n\n" + Probe.Replace("unhealthy_threshold = 3", "unhealthy_threshold = 1", StringComparison.Ordinal)), module);
        JsonObject? health = null;
        await Poll.UntilAsync(
            async () =>
            {
                health = (await warpd.GetDeploymentAsync("cl"))!["health"] as JsonObject;
                return health is not null && (string?)health["state"] == "crash_loop_back_off" && (long)health["restarts"]! >= 3;
            },
            "cl to be in crash-loop back-off after 3 restarts",
            diagnostics: () => health?.ToJsonString() + Environment.NewLine + warpd.Tail());
        Assert.Contains("failed its liveness probe", (string)health!["lastError"]!, StringComparison.Ordinal);
        var next = DateTimeOffset.Parse((string)health["nextRetryAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        var last = DateTimeOffset.Parse((string)health["lastRestartAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        var restarts = (long)health["restarts"]!;
        Assert.True(next - last >= TimeSpan.FromSeconds(0.5 * Math.Pow(2, restarts - 2)) - TimeSpan.FromMilliseconds(1) || next - last == TimeSpan.FromSeconds(4), $"wait doubles per restart: {health.ToJsonString()}");

        // While it waits with no instance, a request is answered at once with 503, not queued.
        using var refused = await warpd.Ingress.GetAsync("cl/status");
        if (refused.StatusCode != (HttpStatusCode)418)
        {
            var problem = await refused.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
            Assert.Contains("crash-loop", (string)problem["detail"]!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_burst_scales_up_the_quiet_scales_to_zero_and_the_next_request_is_held_and_served()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path, extraArguments: FastSupervisor);
        await warpd.DeployAsync(
            "auto",
            WarpApi.Manifest("auto", route: "/auto", minInstances: 0, maxInstances: 6, requestTimeout: "10s",
                extra: "[runtime.scaling]\nmetric = \"request_concurrency\"\ntarget_value = 1\nscale_up_window = \"0s\"\nscale_down_window = \"2s\"\n"),
            await File.ReadAllBytesAsync(TestPaths.Testbed));
        Assert.Equal(0, (long)(await warpd.GetDeploymentAsync("auto"))!["instances"]!["live"]!);

        // A burst: 6 concurrent clients for ~2 s of 300 ms requests.
        var peakDesired = 0L;
        var peakLive = 0L;
        using var burst = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var clients = Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            var ok = 0;
            while (!burst.IsCancellationRequested)
            {
                using var response = await warpd.Ingress.GetAsync("auto/spin?ms=300");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                ok++;
            }

            return ok;
        })).ToList();
        while (!burst.IsCancellationRequested)
        {
            var view = (await warpd.GetDeploymentAsync("auto"))!;
            peakDesired = Math.Max(peakDesired, (long?)view["scaling"]?["desiredInstances"] ?? 0);
            peakLive = Math.Max(peakLive, (long)view["instances"]!["live"]!);
            await Task.Delay(100);
        }

        var served = (await Task.WhenAll(clients)).Sum();
        Assert.True(served >= 6, $"the burst was served ({served})");
        Assert.True(peakDesired >= 4, $"the autoscaler followed the burst up (peak desired {peakDesired}, live {peakLive})");

        // Quiet: after the 2 s scale-down window the deployment goes to zero instances.
        var quietFrom = Stopwatch.StartNew();
        await Poll.UntilAsync(
            async () => (long)(await warpd.GetDeploymentAsync("auto"))!["instances"]!["live"]! == 0,
            "auto to scale to zero",
            diagnostics: () => warpd.Tail());
        Assert.True(quietFrom.Elapsed >= TimeSpan.FromSeconds(1.5), $"scale-down waited for its window ({quietFrom.Elapsed})");
        var metrics = await warpd.ScrapeAsync();
        Assert.Equal(0, metrics.Value("warpgrid_autoscaler_desired_instances", ("warpgrid_deployment", "auto")));

        // The next request wakes it: held while an instance starts, then served.
        using var wake = await warpd.Ingress.GetAsync("auto/status");
        Assert.Equal((HttpStatusCode)418, wake.StatusCode);
        Assert.True((long)(await warpd.GetDeploymentAsync("auto"))!["instances"]!["coldStarts"]! >= 1);
    }
}
