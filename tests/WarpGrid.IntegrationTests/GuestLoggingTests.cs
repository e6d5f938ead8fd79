using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// The log import (<c>wasi:logging/logging</c> <c>log</c>) on a real warpd with tracing on: a C guest's records
/// reach the logs API with level, context, deployment, version, instance and the request's trace id; the
/// capability gates the import at deploy time. Owns its warpd.
/// </summary>
public sealed class GuestLoggingTests
{
    private const string TraceId = "5bf92f3577b34da6a3ce929d0e0e4737";
    private const string ClientSpanId = "01f067aa0ba902b8";

    private static string Logbed => Path.Combine(TestPaths.RepoRoot, "tests", "guests", "logbed.wasm");

    [Fact]
    public async Task Log_import_records_reach_the_logs_api_with_level_context_and_trace_ids_and_the_capability_gates_it()
    {
        using var data = new TempDirectory();
        await using var warpd = await WarpdProcess.StartAsync(data.Path, extraArguments: ["--WarpGrid:Telemetry:Tracing=true"]);
        var module = await File.ReadAllBytesAsync(Logbed);
        await warpd.DeployAsync("lg", WarpApi.Manifest("lg", route: "/lg", minInstances: 1, version: "1.2.3"), module);

        using (var request = new HttpRequestMessage(HttpMethod.Get, "lg/log"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", $"00-{TraceId}-{ClientSpanId}-01");
            using var response = await warpd.Ingress.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("logged", await response.Content.ReadAsStringAsync());
        }

        var records = (await warpd.LogRecordsAsync("lg", 10)).Where(r => (string?)r["stream"] == "log").ToList();
        Assert.Equal(2, records.Count);
        Assert.Equal(["hello from wasi:logging", "payment provider slow"], records.Select(r => (string)r["message"]!));
        Assert.Equal(["info", "warn"], records.Select(r => (string)r["level"]!));
        Assert.Null(records[0]["context"]);
        Assert.Equal("checkout", (string?)records[1]["context"]);
        Assert.All(records, r =>
        {
            Assert.Equal("lg", (string?)r["deployment"]);
            Assert.Equal("1.2.3", (string?)r["version"]);
            Assert.StartsWith("lg-", (string)r["instance"]!, StringComparison.Ordinal);
            Assert.Equal(TraceId, (string?)r["trace_id"]);
            var span = (string)r["span_id"]!;
            Assert.Matches("^[0-9a-f]{16}$", span);
            Assert.NotEqual(ClientSpanId, span);
        });

        // A level outside the enum traps that request only (500 naming it); the node keeps serving.
        using (var bad = await warpd.Ingress.GetAsync("lg/bad-level"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, bad.StatusCode);
            Assert.Contains("level 9", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var again = await warpd.Ingress.GetAsync("lg/log"))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        // Denied capability: the deploy is refused with a 400 naming the import; nothing is created.
        using var denied = await warpd.PutDeploymentAsync("lg-denied", WarpApi.Manifest("lg-denied", route: "/lgd", extra: "[capabilities]\nlogging = false"), module);
        var problem = await denied.AssertProblemAsync(HttpStatusCode.BadRequest);
        var error = Assert.Single(problem.Errors());
        Assert.Equal("module", error.Field);
        Assert.Contains("wasi:logging/logging@0.1.0-draft.log", error.Message, StringComparison.Ordinal);
        Assert.Contains("logging = false", error.Message, StringComparison.Ordinal);
        Assert.Null(await warpd.GetDeploymentAsync("lg-denied"));
    }
}
