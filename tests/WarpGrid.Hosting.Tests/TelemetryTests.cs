using System.Diagnostics;
using System.Diagnostics.Metrics;
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
        await using var app = await StartNodeAsync(spans, samplingRatio: "0.1");
        var client = await TestAdmin.AuthorizeAsync(app.GetTestClient(), _data);
        await DeployTestbedAsync(client);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/tb/env");
        request.Headers.TryAddWithoutValidation("traceparent", $"00-{TraceId}-{ClientSpanId}-01");
        using var response = await client.SendAsync(request);
        var env = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var server = await FindAsync(spans, s => s.Kind == ActivityKind.Server && s.Source.Name == WarpGridTelemetry.SourceName && s.TraceId.ToHexString() == TraceId, "server");
        Assert.Equal(ClientSpanId, server.ParentSpanId.ToHexString());
        Assert.Equal("tb", server.GetTagItem(WarpGridTelemetry.DeploymentTag));
        Assert.Equal(200, server.GetTagItem("http.response.status_code"));

        var guest = await FindAsync(spans, s => s.DisplayName == "guest tb" && s.TraceId.ToHexString() == TraceId, "guest");
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

    [Fact]
    public async Task A_request_without_traceparent_starts_a_new_trace_whose_root_is_the_server_span()
    {
        var spans = new List<Activity>();
        await using var app = await StartNodeAsync(spans, samplingRatio: "1");
        var client = await TestAdmin.AuthorizeAsync(app.GetTestClient(), _data);
        await DeployTestbedAsync(client);

        var env = await client.GetStringAsync("/tb/env");

        // ASP.NET Core's own activity (unexported, created because logging is on) is current here: the server span
        // must be a root of its own trace, not a child of that invisible span.
        var server = await FindAsync(spans, s => s.Kind == ActivityKind.Server && s.Source.Name == WarpGridTelemetry.SourceName, "server");
        Assert.Equal(default, server.ParentSpanId);
        Assert.True(server.Recorded);
        var guest = await FindAsync(spans, s => s.DisplayName == "guest tb" && s.TraceId == server.TraceId, "guest");
        Assert.Equal(server.SpanId, guest.ParentSpanId);
        Assert.Contains($"HTTP_TRACEPARENT=00-{server.TraceId.ToHexString()}-{guest.SpanId.ToHexString()}-01\n", env, StringComparison.Ordinal);
        await app.StopAsync();
    }

    [Fact]
    public async Task An_unsampled_request_creates_no_activity_and_passes_the_client_trace_context_to_the_guest()
    {
        const string UnsampledTraceId = "5bf92f3577b34da6a3ce929d0e0e4737";
        var spans = new List<Activity>();
        var created = 0;
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == WarpGridTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.None, // leaves the node's decision alone
            ActivityStarted = a =>
            {
                if (a.DisplayName is "GET /tb" or "guest tb")
                {
                    Interlocked.Increment(ref created);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using var app = await StartNodeAsync(spans, samplingRatio: "0", asyncBodies: true);
        var client = await TestAdmin.AuthorizeAsync(app.GetTestClient(), _data);
        await DeployTestbedAsync(client);

        // The client's flags say "not sampled": the guest sees the client's own traceparent and tracestate, unchanged.
        var clientTraceparent = $"00-{UnsampledTraceId}-{ClientSpanId}-00";
        using var request = new HttpRequestMessage(HttpMethod.Get, "/tb/env");
        request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
        request.Headers.TryAddWithoutValidation("tracestate", "vendor=value");
        using var response = await client.SendAsync(request);
        var env = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains($"HTTP_TRACEPARENT={clientTraceparent}\n", env, StringComparison.Ordinal);
        Assert.Contains("HTTP_TRACESTATE=vendor=value\n", env, StringComparison.Ordinal);

        // A new trace at SamplingRatio=0 is not sampled either, and the guest gets no traceparent.
        var plain = await client.GetStringAsync("/tb/env");
        Assert.DoesNotContain("HTTP_TRACEPARENT=", plain, StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref created));

        // A client that samples still gets its spans at ratio 0 (parent-based), and the listener sees them.
        using var sampledRequest = new HttpRequestMessage(HttpMethod.Get, "/tb/env");
        sampledRequest.Headers.TryAddWithoutValidation("traceparent", $"00-{TraceId}-{ClientSpanId}-01");
        using var sampled = await client.SendAsync(sampledRequest);
        Assert.Equal(HttpStatusCode.OK, sampled.StatusCode);
        var server = await FindAsync(spans, s => s.Kind == ActivityKind.Server && s.TraceId.ToHexString() == TraceId, "server");
        Assert.Equal(ClientSpanId, server.ParentSpanId.ToHexString());
        Assert.Equal(2, Volatile.Read(ref created));
        lock (spans)
        {
            Assert.DoesNotContain(spans, s => s.TraceId.ToHexString() == UnsampledTraceId);
        }

        await app.StopAsync();
    }

    [Fact]
    public async Task Unsampled_requests_are_measured_with_method_status_and_error_kind_whether_served_synchronously_or_not()
    {
        var spans = new List<Activity>();
        await using var app = await StartNodeAsync(spans, samplingRatio: "0", asyncBodies: true);
        var meter = app.Services.GetRequiredService<WarpGridMetrics>().Meter;
        var durations = new List<(string Method, int Status, string? Error)>();
        var errors = new List<string?>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name is "http.server.request.duration" or "warpgrid.request.errors")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
        {
            var t = ToDictionary(tags);
            lock (durations)
            {
                durations.Add(((string)t["http.request.method"]!, (int)t["http.response.status_code"]!, (string?)t.GetValueOrDefault("error.type")));
            }
        });
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            lock (durations)
            {
                errors.Add((string?)ToDictionary(tags).GetValueOrDefault("error.type"));
            }
        });
        listener.Start();
        var client = await TestAdmin.AuthorizeAsync(app.GetTestClient(), _data);
        await DeployTestbedAsync(client);

        using (var ok = await client.GetAsync("/tb/env"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // A body whose read completes asynchronously: the request is served asynchronously too.
        using (var echoed = await client.PostAsync("/tb/echo", new StringContent("late body")))
        {
            Assert.Equal("late body", await echoed.Content.ReadAsStringAsync());
        }

        using (var trapped = await client.GetAsync("/tb/trap"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, trapped.StatusCode);
        }

        lock (durations)
        {
            Assert.Equal([("GET", 200, null), ("POST", 200, null), ("GET", 500, "trap")], durations.Where(d => d.Method is "GET" or "POST").ToList());
            Assert.Equal(["trap"], errors);
        }

        Assert.DoesNotContain(spans, s => s.Source.Name == WarpGridTelemetry.SourceName); // ratio 0: nothing traced
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

    private async Task<WebApplication> StartNodeAsync(List<Activity> spans, string samplingRatio, bool asyncBodies = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration["WarpGrid:Telemetry:Tracing"] = "true";
        builder.Configuration["WarpGrid:Telemetry:SamplingRatio"] = samplingRatio;
        builder.Services.AddWarpGridNode(o => o.DataDirectory = _data);
        builder.Services.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(spans));
        var app = builder.Build();
        if (asyncBodies)
        {
            app.Use((context, next) =>
            {
                context.Request.Body = new YieldingStream(context.Request.Body);
                return next(context);
            });
        }

        app.UseWarpGridIngress();
        app.MapWarpGridApi();
        await app.StartAsync();
        return app;
    }

    private static async Task<Activity> FindAsync(List<Activity> spans, Func<Activity, bool> predicate, string what)
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

    private static Dictionary<string, object?> ToDictionary(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in tags)
        {
            result[key] = value;
        }

        return result;
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

    /// <summary>A request body whose every read completes asynchronously (yields first), as a body still in transit does.</summary>
    private sealed class YieldingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("read asynchronously");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
