using System.Net;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>A deployment at its instance cap sheds load with 503 and Retry-After instead of queueing forever. Owns its warpd.</summary>
public sealed class OverloadTests
{
    private const int Concurrent = 12;

    [Fact]
    public async Task Requests_beyond_capacity_get_503_with_retry_after_and_the_rest_time_out()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path);
        await warpd.DeployAsync(
            "single",
            WarpApi.Manifest("single", route: "/single", minInstances: 1, maxInstances: 1, requestTimeout: "1s", memoryLimit: "16MB"),
            await File.ReadAllBytesAsync(TestPaths.Testbed));

        // One instance, each /loop holds it for the 1 s timeout; a waiting request gives up after at most the
        // request timeout. Twelve at once cannot all be served in time.
        using var client = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{warpd.IngressPort}/"));
        var responses = await Task.WhenAll(Enumerable.Range(0, Concurrent).Select(async _ =>
        {
            using var response = await client.GetAsync("single/loop");
            var body = await response.Content.ReadAsStringAsync();
            return (Status: response.StatusCode, Error: response.Header("X-WarpGrid-Error"), RetryAfter: response.Headers.RetryAfter?.Delta, Body: body);
        }));

        var summary = string.Join(" | ", responses.Select(r => $"{(int)r.Status} {r.Error}"));
        var overloaded = responses.Where(r => r.Status == HttpStatusCode.ServiceUnavailable).ToList();
        var timedOut = responses.Where(r => r.Status == HttpStatusCode.GatewayTimeout).ToList();
        Assert.True(overloaded.Count + timedOut.Count == Concurrent, "every response is 503 or 504: " + summary);
        Assert.True(overloaded.Count >= 1, "at least one request is shed with 503: " + summary);
        Assert.True(timedOut.Count >= 1, "the request that got the instance runs into its timeout (504): " + summary);
        Assert.All(overloaded, r =>
        {
            Assert.Equal("overloaded", r.Error);
            Assert.True(r.RetryAfter is { } delay && delay > TimeSpan.Zero, "503 carries Retry-After: " + r.Body);
        });
        Assert.All(timedOut, r => Assert.Equal("timeout", r.Error));

        // The shed requests are counted, and the deployment serves again once the load is gone.
        var stats = (await warpd.GetDeploymentAsync("single"))!["instances"]!;
        Assert.Equal(overloaded.Count, (long)stats["rejected"]!);
        using var status = await client.GetAsync("single/status");
        Assert.Equal((HttpStatusCode)418, status.StatusCode);
        Assert.False(warpd.HasExited);
    }
}
