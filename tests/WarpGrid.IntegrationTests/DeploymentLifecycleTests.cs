using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>warpd with a small node-wide instance cap, so that a revision asking for more cannot start.</summary>
public sealed class LifecycleFixture : WarpdFixture
{
    internal const int NodeInstanceLimit = 64;

    internal override IEnumerable<string> ExtraArguments => [$"--WarpGrid:Runtime:MaxInstancesPerNode={NodeInstanceLimit}"];
}

/// <summary>The deployment lifecycle through the REST API of a real warpd: create, serve, update, delete.</summary>
public sealed class DeploymentLifecycleTests(LifecycleFixture fixture) : IClassFixture<LifecycleFixture>
{
    private const string HelloBody = "Hello from WarpGrid!\n";

    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task Deploy_serve_update_and_delete_without_dropping_a_request()
    {
        var helloManifest = await File.ReadAllTextAsync(TestPaths.HelloManifest);
        var helloModule = await File.ReadAllBytesAsync(TestPaths.Hello);

        // Create: 201, generation 1, serving as soon as the PUT returns.
        using (var created = await Warpd.PutDeploymentAsync("hello", helloManifest, helloModule, "hello.wasm"))
        {
            var body = await created.Content.ReadAsStringAsync();
            Assert.True(created.StatusCode == HttpStatusCode.Created, $"PUT answered {(int)created.StatusCode}: {body}");
            var v1 = JsonNode.Parse(body)!;
            Assert.Equal("hello", (string?)v1["name"]);
            Assert.Equal(1, (long)v1["generation"]!);
            Assert.Equal("running", (string?)v1["status"]);
            Assert.Equal("/hello", (string?)v1["route"]);
            Assert.Equal(16L << 20, (long)v1["memoryLimitBytes"]!);
            Assert.Equal(Sha256(helloModule), (string?)v1["digest"]);
        }

        using (var first = await Warpd.Ingress.GetAsync("hello"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(HelloBody, await first.Content.ReadAsStringAsync());
        }

        // Applying the same manifest and module again is a no-op: 200, still generation 1.
        using (var again = await Warpd.PutDeploymentAsync("hello", helloManifest, helloModule, "hello.wasm"))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal(1, (long)(await again.ReadJsonAsync())["generation"]!);
        }

        // Update to the testbed module on the same route while traffic flows: every request is answered by
        // the old revision (200 hello) or the new one (418 from /status), none fails.
        var testbed = await File.ReadAllBytesAsync(TestPaths.Testbed);
        var updatedManifest = WarpApi.Manifest("hello", route: "/hello", version: "0.2.0", minInstances: 2, maxInstances: 4, requestTimeout: "5s", memoryLimit: "32MB");
        var outcomes = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await Warpd.Ingress.GetAsync("hello/status", CancellationToken.None);
                    var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    outcomes.Enqueue($"{(int)response.StatusCode} {text}");
                }
                catch (HttpRequestException ex)
                {
                    outcomes.Enqueue("error " + ex.Message);
                }
            }
        });

        await Poll.UntilAsync(() => outcomes.Count >= 5, "traffic to /hello/status before the update");
        JsonNode v2;
        using (var updated = await Warpd.PutDeploymentAsync("hello", updatedManifest, testbed, "testbed.wasm"))
        {
            var body = await updated.Content.ReadAsStringAsync();
            Assert.True(updated.StatusCode == HttpStatusCode.OK, $"update answered {(int)updated.StatusCode}: {body}");
            v2 = JsonNode.Parse(body)!;
        }

        // The PUT returns once the node serves the new revision: the very next request sees it.
        using (var teapot = await Warpd.Ingress.GetAsync("hello/status"))
        {
            Assert.Equal((HttpStatusCode)418, teapot.StatusCode);
            Assert.Equal("short and stout", await teapot.Content.ReadAsStringAsync());
        }

        var countAtUpdate = outcomes.Count;
        await Poll.UntilAsync(() => outcomes.Count >= countAtUpdate + 5, "traffic to /hello/status after the update");
        await stop.CancelAsync();
        await traffic.WaitAsync(TimeSpan.FromSeconds(60));

        var unexpected = outcomes.Where(o => o != "200 " + HelloBody && o != "418 short and stout").ToList();
        Assert.True(unexpected.Count == 0, $"{unexpected.Count} of {outcomes.Count} requests during the update were neither the old nor the new revision: {string.Join(" | ", unexpected.Take(5))}");
        Assert.Contains("200 " + HelloBody, outcomes);
        Assert.Contains("418 short and stout", outcomes);

        Assert.Equal(2, (long)v2["generation"]!);
        Assert.Equal("0.2.0", (string?)v2["version"]);
        Assert.Equal(Sha256(testbed), (string?)v2["digest"]);
        Assert.Equal(2, (int)v2["minInstances"]!);
        Assert.Equal(32L << 20, (long)v2["memoryLimitBytes"]!);
        Assert.Equal(updatedManifest, (string?)v2["manifest"]);

        // Listed, with at least min_instances live instances.
        using (var list = await Warpd.Api.GetAsync("v1/deployments"))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
            var hello = (await list.ReadJsonAsync()).AsArray().SingleOrDefault(d => (string?)d!["name"] == "hello");
            Assert.NotNull(hello);
            Assert.Equal(2, (long)hello["generation"]!);
            Assert.True((int)hello["instances"]!["live"]! >= 2, "live instances >= min_instances: " + hello.ToJsonString());
        }

        using (var instances = await Warpd.Api.GetAsync("v1/deployments/hello/instances"))
        {
            Assert.Equal(HttpStatusCode.OK, instances.StatusCode);
            var array = (await instances.ReadJsonAsync()).AsArray();
            Assert.True(array.Count >= 2, "instances endpoint lists at least min_instances: " + array.ToJsonString());
            Assert.All(array, i =>
            {
                Assert.StartsWith("hello-", (string?)i!["id"]);
                Assert.Contains((string?)i["state"], new[] { "idle", "busy" });
            });
        }

        // Delete: 204, then the route is gone and the deployment is unknown.
        using (var deleted = await Warpd.Api.DeleteAsync("v1/deployments/hello"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        await Poll.UntilAsync(
            async () =>
            {
                using var response = await Warpd.Ingress.GetAsync("hello/status");
                return response.StatusCode == HttpStatusCode.NotFound && response.Header("X-WarpGrid-Error") == "no_route";
            },
            "/hello to answer 404 no_route after the delete");
        using (var gone = await Warpd.Api.GetAsync("v1/deployments/hello"))
        {
            var problem = await gone.AssertProblemAsync(HttpStatusCode.NotFound);
            Assert.Contains("hello", (string?)problem["detail"]);
        }

        using (var again = await Warpd.Api.DeleteAsync("v1/deployments/hello"))
        {
            await again.AssertProblemAsync(HttpStatusCode.NotFound);
        }

        using (var list = await Warpd.Api.GetAsync("v1/deployments"))
        {
            Assert.DoesNotContain((await list.ReadJsonAsync()).AsArray(), d => (string?)d!["name"] == "hello");
        }
    }

    [Fact]
    public async Task A_module_uploaded_as_wat_text_is_compiled_and_served()
    {
        var wat = await File.ReadAllBytesAsync(TestPaths.Guest("greeting.wat"));
        var deployment = await Warpd.DeployAsync("greeting", WarpApi.Manifest("greeting"), wat, "greeting.wat");
        Assert.Equal("running", (string?)deployment["status"]);
        Assert.Equal("/greeting", (string?)deployment["route"]);

        using var response = await Warpd.Ingress.GetAsync("greeting");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("hello from wat\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Json_body_with_base64_module_creates_a_deployment()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        var manifest = WarpApi.Manifest("json-hello", route: "/json-hello");
        using var response = await Warpd.Api.PostAsJsonAsync("v1/deployments", new { manifest, module = Convert.ToBase64String(module) });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST answered {(int)response.StatusCode}: {body}");
        Assert.Equal(Sha256(module), (string?)JsonNode.Parse(body)!["digest"]);

        using var served = await Warpd.Ingress.GetAsync("json-hello");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HelloBody, await served.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Ingress_answers_unknown_routes_with_a_problem_listing_the_routes()
    {
        await Warpd.DeployAsync("listed", WarpApi.Manifest("listed", route: "/listed/app"), await File.ReadAllBytesAsync(TestPaths.Hello));

        // Path prefixes match whole segments only, and the API is not reachable on the ingress port.
        foreach (var path in new[] { "nowhere", "listed", "listed/application", "v1/health" })
        {
            using var response = await Warpd.Ingress.GetAsync(path);
            var problem = await response.AssertProblemAsync(HttpStatusCode.NotFound);
            Assert.Equal("no_route", response.Header("X-WarpGrid-Error"));
            Assert.Contains(problem["routes"]!.AsArray(), r => (string?)r == "*/listed/app -> listed");
        }

        using var below = await Warpd.Ingress.GetAsync("listed/app/anything/below");
        Assert.Equal(HttpStatusCode.OK, below.StatusCode);
        Assert.Equal(HelloBody, await below.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_revision_that_cannot_start_leaves_the_previous_one_serving()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Testbed);
        await Warpd.DeployAsync("steady", WarpApi.Manifest("steady", version: "1.0.0"), module);

        // Generation 2 asks for more instances than the node may run: stored, but it cannot start.
        var tooBig = LifecycleFixture.NodeInstanceLimit + 1;
        using (var failed = await Warpd.PutDeploymentAsync("steady", WarpApi.Manifest("steady", version: "2.0.0", minInstances: tooBig, maxInstances: tooBig), module))
        {
            var problem = await failed.AssertProblemAsync(HttpStatusCode.ServiceUnavailable);
            Assert.Equal("failed", (string?)problem["deployment"]?["status"]);
        }

        var state = await Warpd.GetDeploymentAsync("steady");
        Assert.Equal("failed", (string?)state!["status"]);
        Assert.Equal(2, (long)state["generation"]!);
        Assert.False(string.IsNullOrWhiteSpace((string?)state["message"]), "a failed deployment says why: " + state.ToJsonString());

        // The previous revision still answers.
        using (var served = await Warpd.Ingress.GetAsync("steady/status"))
        {
            Assert.Equal((HttpStatusCode)418, served.StatusCode);
        }

        // Fixing the manifest brings it back to running.
        var fixedUp = await Warpd.DeployAsync("steady", WarpApi.Manifest("steady", version: "3.0.0", minInstances: 2), module);
        Assert.Equal("running", (string?)fixedUp["status"]);
        Assert.Equal(3, (long)fixedUp["generation"]!);
        using (var served = await Warpd.Ingress.GetAsync("steady/status"))
        {
            Assert.Equal((HttpStatusCode)418, served.StatusCode);
        }
    }

    /// <summary>
    /// Regression: DELETE raced the controller (when the controller removed the deployment before the API handler
    /// started waiting for the delete's revision, the handler waited 30 s and answered an empty 500). Fixed in
    /// 48a5592; this failed about 1 in 5 deletes before.
    /// </summary>
    [Fact]
    public async Task Delete_answers_204_every_time()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        for (var i = 0; i < 12; i++)
        {
            await Warpd.DeployAsync("churn", WarpApi.Manifest("churn"), module);
            using var deleted = await Warpd.Api.DeleteAsync("v1/deployments/churn");
            var body = await deleted.Content.ReadAsStringAsync();
            Assert.True(deleted.StatusCode == HttpStatusCode.NoContent, $"DELETE #{i + 1} answered {(int)deleted.StatusCode} '{body}'" + Environment.NewLine + Warpd.Tail(10));
            Assert.Null(await Warpd.GetDeploymentAsync("churn"));
        }
    }

    /// <summary>
    /// A request the ingress has already matched to the old revision, whose body is still arriving when an update
    /// lands, is served (by either revision), never dropped: the ingress admits it to the pool before reading the body
    /// and a draining pool serves every admitted request. (Regression: it used to get 503 "the deployment is shutting
    /// down".)
    /// </summary>
    [Fact]
    public async Task A_request_received_before_an_update_is_served_not_dropped()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Testbed);
        await Warpd.DeployAsync("inflight", WarpApi.Manifest("inflight", version: "1.0.0"), module);
        var payload = "received before the update, finished after it"u8.ToArray();
        for (var i = 1; i <= 5; i++)
        {
            // 100 Continue means the ingress matched the route and is reading the body; the update lands before the body.
            var version = $"1.0.{i}";
            var (response, body) = await RawHttp.SendAfterContinueAsync(
                Warpd.IngressPort,
                "POST",
                "/inflight/echo",
                payload,
                () => Warpd.DeployAsync("inflight", WarpApi.Manifest("inflight", version: version), module),
                TimeSpan.FromSeconds(120));
            Assert.True(response.Status == 200, $"update #{i}: the request received before the update was answered {response.Status}: {System.Text.Encoding.UTF8.GetString(body)}");
            Assert.Equal(payload, body);
        }
    }

    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
}
