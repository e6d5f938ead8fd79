using System.Collections.Concurrent;
using System.Net;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// A guest that loops, exhausts memory, overflows its stack, traps, exits with an error, or is sent a huge body gets
/// a clear error, while another tenant on the same node keeps answering and the node stays up. Owns its warpd.
/// </summary>
public sealed class HostileGuestTests
{
    private const string HelloBody = "Hello from WarpGrid!\n";
    private const int Rounds = 2;

    [Fact]
    public async Task Hostile_guests_get_clear_errors_while_a_healthy_deployment_keeps_answering()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path);
        await warpd.DeployAsync("hello", await File.ReadAllTextAsync(TestPaths.HelloManifest), await File.ReadAllBytesAsync(TestPaths.Hello));
        await warpd.DeployAsync(
            "testbed",
            WarpApi.Manifest("testbed", route: "/testbed", minInstances: 1, maxInstances: 8, requestTimeout: "1s", memoryLimit: "32MB"),
            await File.ReadAllBytesAsync(TestPaths.Testbed));

        // The memory bomb gets its own deployment with the same 32 MB limit but a long timeout, so that it is stopped
        // by the memory limit and not by the 1 s timeout when a loaded machine gives it little CPU.
        await warpd.DeployAsync(
            "membomb",
            WarpApi.Manifest("membomb", route: "/membomb", minInstances: 1, maxInstances: 4, requestTimeout: "60s", memoryLimit: "32MB"),
            await File.ReadAllBytesAsync(TestPaths.Testbed));

        // The healthy tenant: GET /hello back to back for the whole hostile phase (bounded by a deadline).
        var helloResults = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        using var healthyClient = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{warpd.IngressPort}/"));
        var healthy = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await healthyClient.GetAsync("hello", CancellationToken.None);
                    var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    helloResults.Enqueue(response.StatusCode == HttpStatusCode.OK && body == HelloBody ? "ok" : $"{(int)response.StatusCode} {body}");
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    helloResults.Enqueue("error " + ex.Message);
                }
            }
        });

        await Poll.UntilAsync(() => !helloResults.IsEmpty, "the first /hello response");

        for (var round = 1; round <= Rounds; round++)
        {
            // All at once: the faults must not interfere with each other either.
            await Task.WhenAll(
                ExpectFaultAsync(warpd, "testbed/loop", HttpStatusCode.GatewayTimeout, "timeout"),
                ExpectFaultAsync(warpd, "membomb/oom", HttpStatusCode.InternalServerError, "out_of_memory"),
                ExpectFaultAsync(warpd, "testbed/recurse", HttpStatusCode.InternalServerError, "stack_overflow"),
                ExpectFaultAsync(warpd, "testbed/trap", HttpStatusCode.InternalServerError, "trap"),
                ExpectFaultAsync(warpd, "testbed/exit3", HttpStatusCode.InternalServerError, "exit"),
                ExpectBodyTooLargeAsync(warpd),
                ExpectGarbageModuleRejectedAsync(warpd));
        }

        var beforeStop = helloResults.Count;
        await Poll.UntilAsync(() => helloResults.Count >= beforeStop + 3, "/hello responses after the hostile phase");
        await stop.CancelAsync();
        await healthy.WaitAsync(TimeSpan.FromSeconds(60));

        var failures = helloResults.Where(r => r != "ok").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {helloResults.Count} /hello requests failed during the hostile phase: {string.Join(" | ", failures.Take(5))}" + Environment.NewLine + warpd.Tail());
        Assert.True(helloResults.Count >= 20, $"expected a steady stream of /hello responses, got {helloResults.Count}");

        // The hostile deployment recovers: its poisoned instances were replaced, the next requests work.
        for (var i = 0; i < 8; i++)
        {
            using var status = await warpd.Ingress.GetAsync("testbed/status");
            Assert.True(status.StatusCode == (HttpStatusCode)418, $"/testbed/status after the faults answered {(int)status.StatusCode}: {await status.Content.ReadAsStringAsync()}");
        }

        using (var membomb = await warpd.Ingress.GetAsync("membomb/status"))
        {
            Assert.Equal((HttpStatusCode)418, membomb.StatusCode);
        }

        // Every fault was counted and its instance replaced; min_instances are live again.
        foreach (var (name, faults) in new[] { ("testbed", 4 * Rounds), ("membomb", Rounds) })
        {
            var deployment = await warpd.GetDeploymentAsync(name);
            var stats = deployment!["instances"]!;
            Assert.Equal("running", (string?)deployment["status"]);
            Assert.True((long)stats["faults"]! == faults && (long)stats["replaced"]! == faults, $"{name}: expected {faults} faults and replaced instances: {stats.ToJsonString()}");
            Assert.True((int)stats["live"]! >= 1, $"{name} keeps min_instances live: {stats.ToJsonString()}");
        }

        Assert.False(warpd.HasExited, "warpd died" + Environment.NewLine + warpd.Tail());
        using var health = await warpd.Api.GetAsync("v1/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    private static async Task ExpectFaultAsync(WarpdProcess warpd, string path, HttpStatusCode status, string code)
    {
        using var response = await warpd.Ingress.GetAsync(path);
        var problem = await response.AssertProblemAsync(status);
        Assert.True(response.Header("X-WarpGrid-Error") == code, $"{path}: expected X-WarpGrid-Error {code}, got {response.Header("X-WarpGrid-Error")}: {problem.ToJsonString()}");
        var deployment = path[..path.IndexOf('/', StringComparison.Ordinal)];
        Assert.Equal(deployment, (string?)problem["deployment"]);
        Assert.StartsWith(deployment + "-", (string?)problem["instance"]);
        Assert.EndsWith("/" + code, (string?)problem["type"]);
    }

    private static async Task ExpectBodyTooLargeAsync(WarpdProcess warpd)
    {
        // 100 MB declared: the node (16 MiB limit) answers 413 from the head alone, before any body is sent.
        var declared = await RawHttp.SendHeadOnlyAsync(warpd.IngressPort, "POST", "/testbed/echo", 100L * 1024 * 1024, TimeSpan.FromSeconds(60));
        Assert.True(declared.Status == 413, "declared 100 MB body: " + declared.Head);
        Assert.Equal("body_too_large", declared.Headers.GetValueOrDefault("X-WarpGrid-Error"));

        // 100 MB streamed without a length: the node stops reading past its limit and answers 413.
        var streamed = await RawHttp.SendChunkedAsync(warpd.IngressPort, "POST", "/testbed/echo", 100L * 1024 * 1024, TimeSpan.FromSeconds(60));
        Assert.True(streamed.Status == 413, "streamed 100 MB body: " + streamed.Head);
        Assert.Equal("body_too_large", streamed.Headers.GetValueOrDefault("X-WarpGrid-Error"));
    }

    private static async Task ExpectGarbageModuleRejectedAsync(WarpdProcess warpd)
    {
        var name = "garbage-" + Guid.NewGuid().ToString("N")[..8];
        using var response = await warpd.PutDeploymentAsync(name, WarpApi.Manifest(name), await File.ReadAllBytesAsync(TestPaths.NotWasm), "not-wasm.wasm");
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var error = Assert.Single(problem.Errors());
        Assert.Equal("module", error.Field);
        Assert.Contains("not a WebAssembly binary", error.Message, StringComparison.Ordinal);
        Assert.Null(await warpd.GetDeploymentAsync(name));
    }
}
