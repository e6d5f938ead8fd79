using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// A node's deployments live in its data directory: a new warpd on the same directory serves them again, after a
/// graceful stop and after a crash. Each test owns its processes and directory.
/// </summary>
public sealed class RestartRecoveryTests
{
    private const string HelloBody = "Hello from WarpGrid!\n";

    [Fact]
    public async Task Deployments_are_served_again_after_a_graceful_restart()
    {
        using var data = new TempDirectory();
        (string Digest, long Generation) hello, testbed;

        await using (var first = await WarpdProcess.StartAsync(data.Path, deployDirectories: [TestPaths.HelloDir]))
        {
            // --deploy put hello in place before the node reported healthy.
            var deployed = await first.GetDeploymentAsync("hello");
            Assert.True(deployed is not null, "warpd --deploy samples/hello deploys hello at start" + Environment.NewLine + first.Tail());
            hello = Identity(deployed);
            testbed = await DeployTestbedTwiceAsync(first);
            await AssertServesBothAsync(first);

            var exitCode = await first.StopAsync();
            Assert.True(exitCode == 0, $"warpd exits with 0 after SIGTERM, got {exitCode}" + Environment.NewLine + first.Tail());
        }

        await using var second = await WarpdProcess.StartAsync(data.Path);
        Assert.Equal(hello, Identity(await second.GetDeploymentAsync("hello")));
        Assert.Equal(testbed, Identity(await second.GetDeploymentAsync("testbed")));
        await AssertServesBothAsync(second);
        using var list = await second.Api.GetAsync("v1/deployments");
        Assert.Equal(["hello", "testbed"], (await list.ReadJsonAsync()).AsArray().Select(d => (string)d!["name"]!).ToArray());
    }

    [Fact]
    public async Task Acknowledged_deployments_survive_a_crash()
    {
        using var data = new TempDirectory();
        (string Digest, long Generation) hello, testbed;

        await using (var first = await WarpdProcess.StartAsync(data.Path))
        {
            hello = Identity(await first.DeployAsync("hello", await File.ReadAllTextAsync(TestPaths.HelloManifest), await File.ReadAllBytesAsync(TestPaths.Hello)));
            testbed = await DeployTestbedTwiceAsync(first);

            // SIGKILL right after the last acknowledgement: no shutdown code runs.
            await first.KillAsync();
        }

        await using var second = await WarpdProcess.StartAsync(data.Path);
        Assert.Equal(hello, Identity(await second.GetDeploymentAsync("hello")));
        Assert.Equal(testbed, Identity(await second.GetDeploymentAsync("testbed")));
        await AssertServesBothAsync(second);
    }

    [Fact]
    public async Task Graceful_stop_lets_an_in_flight_request_finish()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path);
        await warpd.DeployAsync("slow", WarpApi.Manifest("slow", requestTimeout: "3s"), await File.ReadAllBytesAsync(TestPaths.Testbed));

        // /loop runs until the 3 s request timeout: a request that is in flight when SIGTERM arrives.
        using var client = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{warpd.IngressPort}/"));
        var inFlight = client.GetAsync("slow/loop");
        await Poll.UntilAsync(
            async () => (int)(await warpd.GetDeploymentAsync("slow"))!["instances"]!["busy"]! == 1,
            "the /loop request to be running");

        var stopping = warpd.StopAsync();
        HttpResponseMessage response;
        try
        {
            response = await inFlight.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (HttpRequestException ex)
        {
            throw new Xunit.Sdk.XunitException("the in-flight request failed instead of finishing: " + ex.Message + Environment.NewLine + warpd.Tail());
        }

        using var _ = response;
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("timeout", response.Header("X-WarpGrid-Error"));
        Assert.Equal(0, await stopping);

        // It really was in flight: the node began shutting down before the guest's response was produced.
        var lines = warpd.Lines.ToList();
        var shutdown = lines.FindIndex(l => l.Contains("Application is shutting down", StringComparison.Ordinal));
        var answered = lines.FindIndex(l => l.Contains("Ingress answered 504 (timeout) for slow", StringComparison.Ordinal));
        Assert.True(shutdown >= 0 && answered > shutdown, "expected the shutdown to start before the in-flight request was answered" + Environment.NewLine + warpd.Tail());
    }

    /// <summary>Creates testbed, then updates it (generation 2) so that recovery must keep the latest acknowledged write.</summary>
    private static async Task<(string Digest, long Generation)> DeployTestbedTwiceAsync(WarpdProcess warpd)
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Testbed);
        await warpd.DeployAsync("testbed", WarpApi.Manifest("testbed", version: "1.0.0"), module);
        var updated = await warpd.DeployAsync("testbed", WarpApi.Manifest("testbed", version: "1.1.0", minInstances: 2), module);
        Assert.Equal(2, (long)updated["generation"]!);
        Assert.Equal("1.1.0", (string?)updated["version"]);
        return Identity(updated);
    }

    private static async Task AssertServesBothAsync(WarpdProcess warpd)
    {
        using (var hello = await warpd.Ingress.GetAsync("hello"))
        {
            Assert.True(hello.StatusCode == HttpStatusCode.OK, $"/hello answered {(int)hello.StatusCode}" + Environment.NewLine + warpd.Tail());
            Assert.Equal(HelloBody, await hello.Content.ReadAsStringAsync());
        }

        using (var status = await warpd.Ingress.GetAsync("testbed/status"))
        {
            Assert.True(status.StatusCode == (HttpStatusCode)418, $"/testbed/status answered {(int)status.StatusCode}" + Environment.NewLine + warpd.Tail());
        }

        var testbed = await warpd.GetDeploymentAsync("testbed");
        Assert.Equal("1.1.0", (string?)testbed!["version"]);
        Assert.Equal(2, (int)testbed["minInstances"]!);
        Assert.Equal("running", (string?)testbed["status"]);
    }

    private static (string Digest, long Generation) Identity(JsonObject? deployment)
    {
        Assert.NotNull(deployment);
        return ((string)deployment["digest"]!, (long)deployment["generation"]!);
    }
}
