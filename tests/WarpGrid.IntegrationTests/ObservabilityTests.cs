using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>Metrics scraped from a real warpd's <c>/metrics</c>, and guest logs tailed and followed over the API. Owns its warpd.</summary>
public sealed class ObservabilityTests
{
    [Fact]
    public async Task Metrics_logs_and_trace_context_are_visible_on_a_real_node()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path);
        await warpd.DeployAsync("obs", WarpApi.Manifest("obs", route: "/obs", minInstances: 1, maxInstances: 4, requestTimeout: "5s"), await File.ReadAllBytesAsync(TestPaths.Testbed));
        (string, string) Deployment = ("warpgrid_deployment", "obs");

        var before = await warpd.ScrapeAsync();
        var okBefore = before.Value("http_server_request_duration_seconds_count", Deployment, ("http_response_status_code", "418")) ?? 0;
        for (var i = 0; i < 5; i++)
        {
            using var ok = await warpd.Ingress.GetAsync("obs/status");
            Assert.Equal((HttpStatusCode)418, ok.StatusCode);
        }

        using (var trap = await warpd.Ingress.GetAsync("obs/trap"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, trap.StatusCode);
        }

        // Counters move: five more 418s, one trap counted by kind, a replaced instance, live instances reported.
        List<PrometheusSample> after = [];
        await Poll.UntilAsync(
            async () =>
            {
                after = await warpd.ScrapeAsync();
                return after.Value("http_server_request_duration_seconds_count", Deployment, ("http_response_status_code", "418")) >= okBefore + 5
                    && after.Value("warpgrid_request_errors_total", Deployment, ("error_type", "trap")) >= 1;
            },
            "request counters to move in /metrics",
            diagnostics: () => string.Join(Environment.NewLine, after.Where(s => s.Name.StartsWith("warpgrid", StringComparison.Ordinal) || s.Name.Contains("count", StringComparison.Ordinal)).Select(s => s.Name + " " + string.Join(",", s.Labels.Select(l => l.Key + "=" + l.Value)) + " " + s.Value)));
        Assert.Equal(okBefore + 5, after.Value("http_server_request_duration_seconds_count", Deployment, ("http_response_status_code", "418")));
        Assert.Equal(1, after.Value("http_server_request_duration_seconds_count", Deployment, ("http_response_status_code", "500"), ("error_type", "trap")));
        Assert.True(after.Value("http_server_request_duration_seconds_bucket", Deployment, ("http_response_status_code", "418"), ("le", "+Inf")) >= 5);
        Assert.True(after.Value("warpgrid_instance_replacements_total", Deployment) >= 1, "the trapped instance was replaced");
        Assert.True(after.Value("warpgrid_instances", Deployment) >= 1, "live instances are reported");
        Assert.True(after.Value("warpgrid_invocations_total", Deployment) >= 6);
        Assert.True(after.Value("warpgrid_node_instances") >= 1);
        Assert.Equal(1, after.Value("warpgrid_store_up"));
        Assert.True(after.Value("warpgrid_module_cache_lookups_total", ("warpgrid_cache_result", "compile")) >= 1);

        // Tracing is off by default: the client's traceparent reaches the guest untouched.
        using var request = new HttpRequestMessage(HttpMethod.Get, "obs/env");
        request.Headers.TryAddWithoutValidation("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        using var envResponse = await warpd.Ingress.SendAsync(request);
        var env = await envResponse.Content.ReadAsStringAsync();
        Assert.Contains("HTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n", env, StringComparison.Ordinal);

        // Logs: follow the deployment, make the guest write three stderr lines, read them as they arrive.
        using var follow = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var logs = await warpd.Api.GetAsync("v1/deployments/obs/logs?follow=true&tail=0", HttpCompletionOption.ResponseHeadersRead, follow.Token);
        Assert.Equal(HttpStatusCode.OK, logs.StatusCode);
        Assert.Equal("application/x-ndjson", logs.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await logs.Content.ReadAsStreamAsync(follow.Token));
        using (var logged = await warpd.Ingress.GetAsync("obs/log"))
        {
            Assert.Equal(HttpStatusCode.OK, logged.StatusCode);
        }

        var followed = new List<JsonObject>();
        while (followed.Count < 3)
        {
            var line = await reader.ReadLineAsync(follow.Token);
            Assert.NotNull(line);
            followed.Add(JsonNode.Parse(line)!.AsObject());
        }

        Assert.Equal(["first log line", "second log line", "third log line"], followed.Select(r => (string)r["message"]!));
        Assert.All(followed, r =>
        {
            Assert.Equal("obs", (string?)r["deployment"]);
            Assert.Equal("0.1.0", (string?)r["version"]);
            Assert.StartsWith("obs-", (string)r["instance"]!, StringComparison.Ordinal);
        });

        // The tail without follow returns the same records from the ring; bad parameters name the field.
        var tail = await warpd.Api.GetStringAsync("v1/deployments/obs/logs?tail=2");
        Assert.Equal(["second log line", "third log line"], tail.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => (string)JsonNode.Parse(l)!["message"]!));
        using var bad = await warpd.Api.GetAsync("v1/deployments/obs/logs?tail=lots");
        var problem = await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("tail", (string)problem["detail"]!, StringComparison.Ordinal);
        using var missing = await warpd.Api.GetAsync("v1/deployments/nope/logs");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }
}
