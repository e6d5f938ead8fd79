using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using WarpGrid.Core.Observability;

namespace WarpGrid.Hosting.Tests;

/// <summary>Traces through a real node in-process (TestServer), exported to OpenTelemetry's in-memory exporter.</summary>
public sealed class TelemetryTests : IDisposable
{
    private const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    private const string ClientSpanId = "00f067aa0ba902b7";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "wg-telemetry-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data))
        {
            Directory.Delete(_data, recursive: true);
        }
    }

    [Fact]
    public async Task A_request_with_a_traceparent_yields_spans_under_that_parent_and_the_guest_sees_its_own_span()
    {
        var spans = new List<Activity>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration["WarpGrid:Telemetry:Tracing"] = "true";
        builder.Services.AddWarpGridNode(o => o.DataDirectory = _data);
        builder.Services.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(spans));
        await using var app = builder.Build();
        app.UseWarpGridIngress();
        app.MapWarpGridApi();
        await app.StartAsync();
        var client = app.GetTestClient();
        await DeployTestbedAsync(client);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/tb/env");
        request.Headers.TryAddWithoutValidation("traceparent", $"00-{TraceId}-{ClientSpanId}-01");
        using var response = await client.SendAsync(request);
        var env = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        async Task<Activity> Find(Func<Activity, bool> predicate, string what)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                lock (spans)
                {
                    if (spans.FirstOrDefault(predicate) is { } found)
                    {
                        return found;
                    }
                }

                await Task.Delay(20);
            }

            lock (spans)
            {
                throw new Xunit.Sdk.XunitException($"no {what} span; exported: {string.Join(", ", spans.Select(s => s.DisplayName + " " + s.TraceId + "/" + s.ParentSpanId))}");
            }
        }

        var server = await Find(s => s.Kind == ActivityKind.Server && s.Source.Name == WarpGridTelemetry.SourceName && s.TraceId.ToHexString() == TraceId, "server");
        Assert.Equal(ClientSpanId, server.ParentSpanId.ToHexString());
        Assert.Equal("tb", server.GetTagItem(WarpGridTelemetry.DeploymentTag));
        Assert.Equal(200, server.GetTagItem("http.response.status_code"));

        var guest = await Find(s => s.DisplayName == "guest tb" && s.TraceId.ToHexString() == TraceId, "guest");
        Assert.Equal(server.SpanId, guest.ParentSpanId);
        Assert.StartsWith("tb-", (string)guest.GetTagItem(WarpGridTelemetry.InstanceTag)!, StringComparison.Ordinal);

        // The guest gets the W3C id of its own invocation span, so what it propagates is a child of that span.
        var line = env.Split('\n').Single(l => l.StartsWith("HTTP_TRACEPARENT=", StringComparison.Ordinal));
        Assert.Equal($"HTTP_TRACEPARENT=00-{TraceId}-{guest.SpanId.ToHexString()}-01", line);
        Assert.Contains("WARPGRID_INSTANCE_ID=tb-", env, StringComparison.Ordinal);

        // Guest log lines carry the trace and span of the request that wrote them.
        using var logRequest = new HttpRequestMessage(HttpMethod.Get, "/tb/log");
        logRequest.Headers.TryAddWithoutValidation("traceparent", $"00-{TraceId}-{ClientSpanId}-01");
        using var logged = await client.SendAsync(logRequest);
        Assert.Equal(HttpStatusCode.OK, logged.StatusCode);
        var ndjson = await client.GetStringAsync("/v1/deployments/tb/logs?tail=3");
        var records = ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["first log line", "second log line", "third log line"], records.Select(r => (string)r["message"]!));
        Assert.All(records, r =>
        {
            Assert.Equal(TraceId, (string?)r["trace_id"]);
            Assert.Equal("stderr", (string?)r["stream"]);
            Assert.Equal("tb", (string?)r["deployment"]);
            Assert.StartsWith("tb-", (string)r["instance"]!, StringComparison.Ordinal);
        });
        await app.StopAsync();
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void Sampling_ratio_outside_zero_to_one_fails_naming_the_setting(double ratio)
    {
        var result = new WarpGridTelemetryOptionsValidator().Validate(null, new WarpGridTelemetryOptions { SamplingRatio = ratio });
        Assert.True(result.Failed);
        Assert.Contains("WarpGrid:Telemetry:SamplingRatio", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(new WarpGridTelemetryOptionsValidator().Validate(null, new WarpGridTelemetryOptions { SamplingRatio = 1 }).Succeeded);
        Assert.Equal(0.1, new WarpGridTelemetryOptions().SamplingRatio);
    }

    private static async Task DeployTestbedAsync(HttpClient client)
    {
        var root = FindRoot();
        using var form = new MultipartFormDataContent
        {
            { new StringContent("[package]\nname = \"tb\"\n\n[runtime]\nroute = \"/tb\"\nmin_instances = 1\n"), "manifest" },
        };
        var module = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(root, "tests", "guests", "testbed.wasm")));
        module.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
        form.Add(module, "module", "testbed.wasm");
        using var put = await client.PutAsync("/v1/deployments/tb", form);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }
}
