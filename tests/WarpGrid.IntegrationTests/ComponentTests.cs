using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// A loopback HTTP server that answers every request with a fixed body, counts connections and keeps the last request
/// head; while <see cref="Down"/> it closes every connection at once (a dependency that is down).
/// </summary>
internal sealed class LoopbackHttpServer : LoopbackServer
{
    private readonly string _body;
    private int _connections;
    private string? _lastRequestHead;
    private volatile bool _down;

    public LoopbackHttpServer(string body)
    {
        _body = body;
        Start();
    }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>While true, connections are closed without an answer.</summary>
    public bool Down
    {
        get => _down;
        set => _down = value;
    }

    /// <summary>The request line and headers of the last request read, or null.</summary>
    public string? LastRequestHead => Volatile.Read(ref _lastRequestHead);

    protected override async Task Serve(Socket socket)
    {
        if (_down)
        {
            return;
        }

        Interlocked.Increment(ref _connections);
        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var buffer = new byte[8192];
            var seen = new StringBuilder();
            while (!seen.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer, Stopping);
                if (n == 0)
                {
                    return;
                }

                seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            Volatile.Write(ref _lastRequestHead, seen.ToString());
            var payload = Encoding.UTF8.GetBytes(_body);
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n"), Stopping);
            await stream.WriteAsync(payload, Stopping);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
        {
        }
    }
}

/// <summary>warpd (tracing on) with the JS components (hello-js, the echo-js test guest) and a C command wrapped as a component.</summary>
public sealed class ComponentFixture : WarpdFixture, IAsyncLifetime
{
    internal LoopbackHttpServer Allowed { get; } = new("hello from the allowed upstream");

    internal LoopbackHttpServer Denied { get; } = new("this must never be read");

    /// <summary>Tracing on (no exporter): spans are recorded, so trace context reaches guests and their outbound calls.</summary>
    internal override IEnumerable<string> ExtraArguments => ["--WarpGrid:Telemetry:Tracing=true"];

    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var hello = Path.Combine(TestPaths.RepoRoot, "samples", "hello-js");
        await warpd.DeployAsync("hello-js", await File.ReadAllTextAsync(Path.Combine(hello, "warp.toml")), await File.ReadAllBytesAsync(Path.Combine(hello, "hello-js.wasm")), "hello-js.wasm").ConfigureAwait(false);
        var echo = WarpApi.Manifest("echo-js", route: "/echo-js", minInstances: 2, maxInstances: 4, requestTimeout: "20s", memoryLimit: "256MB", extra: $"[capabilities]\nhttp_outbound = [\"127.0.0.1\"]");
        await warpd.DeployAsync("echo-js", echo, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "echo-js", "echo-js.wasm")), "echo-js.wasm").ConfigureAwait(false);
        var cli = "[package]\nname = \"hello-cli\"\n\n[runtime]\ntrigger = \"cli\"\nroute = \"/hello-cli\"\n\n[capabilities]\nenvironment = { WHO = \"the manifest\" }\n";
        await warpd.DeployAsync("hello-cli", cli, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "hello-cli", "hello-cli.wasm")), "hello-cli.wasm").ConfigureAwait(false);
        var httpC = WarpApi.Manifest("http-c", route: "/http-c", minInstances: 1, maxInstances: 4, requestTimeout: "20s");
        await warpd.DeployAsync("http-c", httpC, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "http-c", "http-c.wasm")), "http-c.wasm").ConfigureAwait(false);
    }

    public new async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Allowed.DisposeAsync();
        await Denied.DisposeAsync();
    }
}

/// <summary>WASI 0.2 components on a real warpd: wasi:http handlers and wasi:cli/run commands.</summary>
public sealed class ComponentTests(ComponentFixture fixture) : IClassFixture<ComponentFixture>
{
    private const string TraceId = "6cf92f3577b34da6a3ce929d0e0e4738";
    private const string ClientSpanId = "02f067aa0ba902b9";

    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task Hello_js_sample_answers_through_the_ingress_on_every_request()
    {
        for (var i = 0; i < 3; i++)
        {
            using var response = await Warpd.Ingress.GetAsync("hello-js");
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"hello-js answered {(int)response.StatusCode}: {body}\n{Warpd.Tail()}");
            Assert.Equal("Hello from JavaScript on WarpGrid! You asked for /hello-js\n", body);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task Post_round_trips_the_body_and_headers_both_ways()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "echo-js/echo") { Content = new StringContent("twelve bytes", Encoding.UTF8, "text/x-test") };
        request.Headers.Add("X-Echo", "ping 42");
        using var response = await Warpd.Ingress.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"echo answered {(int)response.StatusCode}: {body}\n{Warpd.Tail()}");
        Assert.Equal("twelve bytes", body);
        Assert.Equal("ping 42", response.Headers.GetValues("x-echoed").Single());
        Assert.StartsWith("text/x-test", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);

        using var headers = new HttpRequestMessage(HttpMethod.Put, "echo-js/headers?a=1&b=two");
        headers.Headers.Add("X-Custom", "custom value");
        using var answer = await Warpd.Ingress.SendAsync(headers);
        var json = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal("PUT", (string?)json["method"]);
        Assert.Equal("/echo-js/headers", (string?)json["path"]);
        Assert.Equal("?a=1&b=two", (string?)json["query"]);
        Assert.Equal("custom value", (string?)json["headers"]!["x-custom"]);
        Assert.Equal("echo-js", answer.Headers.GetValues("x-guest").Single());
    }

    [Fact]
    public async Task Ten_megabyte_body_is_echoed_through_the_streams()
    {
        // A raw connection that sends and reads at once: the guest streams the echo while the upload is still
        // going (HttpClient's HTTP/1.1 would not read the response before it finished sending, and both sides stall).
        var payload = RandomNumberGenerator.GetBytes(10 << 20);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Warpd.IngressPort);
        var stream = client.GetStream();
        var head = Encoding.ASCII.GetBytes($"POST /echo-js/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var send = Task.Run(async () =>
        {
            await stream.WriteAsync(head, cts.Token);
            for (var offset = 0; offset < payload.Length; offset += 64 * 1024)
            {
                await stream.WriteAsync(payload.AsMemory(offset, Math.Min(64 * 1024, payload.Length - offset)), cts.Token);
            }
        });
        using var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        await send;
        var raw = received.ToArray();
        var split = raw.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(split > 0, "no HTTP response head");
        var headText = Encoding.ASCII.GetString(raw, 0, split);
        Assert.StartsWith("HTTP/1.1 200", headText, StringComparison.Ordinal);
        var body = headText.Contains("transfer-encoding: chunked", StringComparison.OrdinalIgnoreCase) ? Dechunk(raw.AsSpan(split + 4)) : raw[(split + 4)..];
        Assert.Equal(payload.Length, body.Length);
        Assert.True(payload.AsSpan().SequenceEqual(body), "the echoed body differs from the one sent");
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream();
        while (true)
        {
            var line = data.IndexOf("\r\n"u8);
            var size = Convert.ToInt32(Encoding.ASCII.GetString(data[..line]).Split(';')[0].Trim(), 16);
            data = data[(line + 2)..];
            if (size == 0)
            {
                return output.ToArray();
            }

            output.Write(data[..size]);
            data = data[(size + 2)..];
        }
    }

    [Fact]
    public async Task Guest_that_never_responds_gets_a_clear_error_and_the_next_request_is_served()
    {
        // StarlingMonkey answers for a fetch handler that never calls respondWith: its own 500 naming the cause. (It
        // trapped with "borrow handles still remain" until the host released the borrows of set-status-code; a guest
        // that returns without any response is covered by http-c's no-response below.)
        using var response = await Warpd.Ingress.GetAsync("echo-js/silent");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.InternalServerError, $"silent answered {(int)response.StatusCode}: {body}");
        Assert.Contains("no fetch-event handler triggered", body, StringComparison.Ordinal);

        using var next = await Warpd.Ingress.GetAsync("echo-js/headers");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        using var other = await Warpd.Ingress.GetAsync("hello-js");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task C_component_built_from_source_answers_hello_and_404()
    {
        for (var i = 0; i < 3; i++)
        {
            using var response = await Warpd.Ingress.GetAsync("http-c/hello");
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"http-c answered {(int)response.StatusCode}: {body}\n{Warpd.Tail()}");
            Assert.Equal("Hello from C on WarpGrid (wasi:http)!\n", body);
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        }

        using var missing = await Warpd.Ingress.GetAsync("http-c/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("http-c: unknown path /http-c/nope", await missing.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Deliverable 5 with guests built from C source (tests/guests/http-c): each fault ends its request with a problem
    /// response naming the cause, a system record in the deployment's logs naming the instance, and a fresh instance
    /// for the next request; a request to another deployment running at the same time is unaffected.
    /// </summary>
    [Theory]
    [InlineData("no-response", HttpStatusCode.BadGateway, "bad_response", "without setting a response")]
    [InlineData("write-after-finish", HttpStatusCode.BadGateway, "bad_response", "after finishing it")]
    [InlineData("host-panic", HttpStatusCode.InternalServerError, "host_error", "get-random-bytes asked for 2097152 bytes")]
    [InlineData("bad-handle", HttpStatusCode.InternalServerError, "trap", "unknown handle index")]
    public async Task Fault_ends_the_request_with_a_problem_a_log_record_and_a_fresh_instance(string path, HttpStatusCode status, string code, string detail)
    {
        var fault = Warpd.Ingress.GetAsync("http-c/" + path);
        var other = Warpd.Ingress.GetAsync("hello-js");
        using var response = await fault;
        using var otherResponse = await other;
        var problem = (await response.ReadJsonAsync()).AsObject();
        Assert.True(response.StatusCode == status, $"{path} answered {(int)response.StatusCode}: {problem.ToJsonString()}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, response.Headers.GetValues("X-WarpGrid-Error").Single());
        Assert.Contains(detail, (string?)problem["detail"], StringComparison.Ordinal);
        var instance = (string?)problem["instance"];
        Assert.False(string.IsNullOrEmpty(instance), problem.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, otherResponse.StatusCode);

        await WaitForFaultRecordAsync(instance!, code);

        // The same deployment serves the next request, from another instance.
        using var next = await Warpd.Ingress.GetAsync("http-c/hello");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        using var again = await Warpd.Ingress.GetAsync("http-c/" + path);
        var second = (await again.ReadJsonAsync()).AsObject();
        Assert.Equal(status, again.StatusCode);
        Assert.NotEqual(instance, (string?)second["instance"]);
    }

    /// <summary>
    /// A trap after the head and part of the body went out cannot become a 500 any more: per HTTP semantics the only
    /// honest signal left is an incomplete message, so the connection is aborted and the client sees a truncated body.
    /// </summary>
    [Fact]
    public async Task Trap_mid_response_truncates_the_response_and_the_next_request_is_served()
    {
        // The abort is a reset: the client may see the head and part of the body first, or (when the reset overtakes
        // them in its socket buffer) only the reset. Never a complete response.
        var received = new MemoryStream();
        var failed = false;
        var status = 0;
        try
        {
            using var response = await Warpd.Ingress.GetAsync("http-c/trap-mid", HttpCompletionOption.ResponseHeadersRead);
            status = (int)response.StatusCode;
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[4096];
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            failed = true;
        }

        var text = Encoding.UTF8.GetString(received.ToArray());
        Assert.True(failed, $"the truncated response (status {status}) read to its end without an error: \"{text}\"");
        Assert.True(status is 0 or 200, $"trap-mid answered {status}");
        Assert.StartsWith(text, "partial body, then a trap\n", StringComparison.Ordinal);

        await WaitForFaultRecordAsync(null, "trap", "unreachable instruction executed");

        using var next = await Warpd.Ingress.GetAsync("http-c/hello");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        using var other = await Warpd.Ingress.GetAsync("echo-js/headers");
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    /// <summary>Polls the deployment's logs API for the system record of a failed request; returns its message.</summary>
    private async Task<string> WaitForFaultRecordAsync(string? instance, string code, string? contains = null)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var last = "";
        while (waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            last = await Warpd.Api.GetStringAsync("v1/deployments/http-c/logs?tail=1000");
            foreach (var line in last.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var record = JsonNode.Parse(line)!.AsObject();
                var message = (string?)record["message"] ?? "";
                if (message.StartsWith($"request failed ({code})", StringComparison.Ordinal) && (instance is null || (string?)record["instance"] == instance) && (contains is null || message.Contains(contains, StringComparison.Ordinal)))
                {
                    Assert.Contains("the instance was discarded", message, StringComparison.Ordinal);
                    return message;
                }
            }

            await Task.Delay(100);
        }

        Assert.Fail($"no 'request failed ({code})' record for instance {instance ?? "(any)"} in the logs API; last answer:\n{last}");
        return last;
    }

    [Fact]
    public async Task Outbound_http_reaches_allowed_hosts_and_denies_the_rest_without_connecting()
    {
        using var allowed = await Warpd.Ingress.GetAsync($"echo-js/fetch?url={Uri.EscapeDataString($"http://127.0.0.1:{fixture.Allowed.Port}/x")}");
        var allowedBody = await allowed.Content.ReadAsStringAsync();
        Assert.True(allowed.StatusCode == HttpStatusCode.OK, $"fetch answered {(int)allowed.StatusCode}: {allowedBody}\n{Warpd.Tail()}");
        Assert.Equal("status=200 body=hello from the allowed upstream", allowedBody);

        using var denied = await Warpd.Ingress.GetAsync($"echo-js/fetch?url={Uri.EscapeDataString($"http://localhost:{fixture.Denied.Port}/x")}");
        var deniedBody = await denied.Content.ReadAsStringAsync();
        Assert.NotEqual(HttpStatusCode.OK, denied.StatusCode);
        Assert.DoesNotContain("never be read", deniedBody, StringComparison.Ordinal);
        Assert.Equal(0, fixture.Denied.Connections);
        await Warpd.WaitForLineAsync(l => l.Contains($"outbound request to localhost:{fixture.Denied.Port} denied", StringComparison.Ordinal), "the denial log line");
    }

    [Fact]
    public async Task Cli_command_runs_to_completion_with_args_stdin_env_and_exit_code()
    {
        using var ok = await Warpd.Api.PostAsync("v1/deployments/hello-cli/runs?arg=one", new StringContent("from stdin"));
        var run = JsonNode.Parse(await ok.Content.ReadAsStringAsync())!.AsObject();
        Assert.True(ok.StatusCode == HttpStatusCode.OK, run.ToJsonString());
        Assert.Equal(0, (int?)run["exitCode"]);
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.Equal("hello from a wasi:cli/run command; 2 args: one\nstdin: from stdin\n", (string?)run["stdout"]);
        Assert.Equal("who=the manifest\n", (string?)run["stderr"]);

        using var failing = await Warpd.Api.PostAsync("v1/deployments/hello-cli/runs?arg=a&arg=b", new StringContent(string.Empty));
        var failed = JsonNode.Parse(await failing.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal("failed", (string?)failed["status"]);
        Assert.NotEqual(0, (int?)failed["exitCode"]);

        using var notCommand = await Warpd.Api.PostAsync("v1/deployments/hello-js/runs", new StringContent(string.Empty));
        await notCommand.AssertProblemAsync(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Deploy_rejects_a_component_for_the_wrong_trigger_naming_the_export()
    {
        var command = await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "hello-cli", "hello-cli.wasm"));
        using var response = await Warpd.PutDeploymentAsync("cli-as-http", WarpApi.Manifest("cli-as-http", route: "/cli-as-http"), command, "hello-cli.wasm");
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var errors = problem.Errors();
        Assert.Contains(errors, e => e.Field == "module" && e.Message.Contains("wasi:http/incoming-handler", StringComparison.Ordinal) && e.Message.Contains("wasi:cli/run@0.2.12", StringComparison.Ordinal));

        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        using var wrong = await Warpd.PutDeploymentAsync("module-as-cli", "[package]\nname = \"module-as-cli\"\n\n[runtime]\ntrigger = \"cli\"\nroute = \"/module-as-cli\"\n", module, "hello.wasm");
        var moduleProblem = await wrong.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains(moduleProblem.Errors(), e => e.Field == "module" && e.Message.Contains("jco new", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unsampled_client_trace_context_reaches_the_component_and_its_outbound_calls_unchanged()
    {
        // Tracing is on, but the client's flags say "not sampled": no span is recorded, and the trace goes on as the
        // client's (same trace id and parent, flags 00) into the guest and out of it.
        var clientTraceparent = $"00-{TraceId}-{ClientSpanId}-00";
        using (var request = new HttpRequestMessage(HttpMethod.Get, "echo-js/headers"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
            using var response = await Warpd.Ingress.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.Equal(clientTraceparent, (string)JsonNode.Parse(body)!["headers"]!["traceparent"]!);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, $"echo-js/fetch?url={Uri.EscapeDataString($"http://127.0.0.1:{fixture.Allowed.Port}/unsampled")}"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
            using var response = await Warpd.Ingress.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body + "\n" + Warpd.Tail());
        }

        var head = fixture.Allowed.LastRequestHead;
        Assert.NotNull(head);
        Assert.Contains("/unsampled", head, StringComparison.Ordinal);
        var traceparent = head!.Split("\r\n").Select(l => l.Split(':', 2)).Single(p => p[0].Trim().Equals("traceparent", StringComparison.OrdinalIgnoreCase))[1].Trim();
        Assert.Equal(clientTraceparent, traceparent);
    }

    [Fact]
    public async Task Component_gets_its_span_as_traceparent_propagates_the_trace_on_outbound_calls_and_logs_with_the_trace_id()
    {
        var clientTraceparent = $"00-{TraceId}-{ClientSpanId}-01";

        // The incoming request: the guest's traceparent is in the client's trace, parented on the guest span (not the client's).
        using (var request = new HttpRequestMessage(HttpMethod.Get, "echo-js/headers"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
            using var response = await Warpd.Ingress.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            var seen = (string)JsonNode.Parse(body)!["headers"]!["traceparent"]!;
            Assert.Matches($"^00-{TraceId}-[0-9a-f]{{16}}-01$", seen);
            Assert.NotEqual(clientTraceparent, seen);
        }

        // Outbound: the guest's fetch sets no traceparent; the host injects one in the same trace.
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"echo-js/fetch?url={Uri.EscapeDataString($"http://127.0.0.1:{fixture.Allowed.Port}/x")}"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
            using var response = await Warpd.Ingress.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body + "\n" + Warpd.Tail());
            Assert.Equal("status=200 body=hello from the allowed upstream", body);
        }

        var head = fixture.Allowed.LastRequestHead;
        Assert.NotNull(head);
        var traceparent = head!.Split("\r\n").Select(l => l.Split(':', 2)).Single(p => p[0].Trim().Equals("traceparent", StringComparison.OrdinalIgnoreCase))[1].Trim();
        Assert.Matches($"^00-{TraceId}-[0-9a-f]{{16}}-01$", traceparent);
        Assert.NotEqual(clientTraceparent, traceparent);

        // A denied outbound call: the host's note goes to the component's stderr, which is in the logs API with the trace id.
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"echo-js/fetch?url={Uri.EscapeDataString("http://localhost:9/x")}"))
        {
            request.Headers.TryAddWithoutValidation("traceparent", clientTraceparent);
            using var response = await Warpd.Ingress.SendAsync(request);
            Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        }

        var denial = (await Warpd.LogRecordsAsync("echo-js", 50))
            .Single(r => ((string)r["message"]!).Contains("outbound request to localhost:9 denied", StringComparison.Ordinal));
        Assert.Equal("stderr", (string?)denial["stream"]);
        Assert.StartsWith("echo-js-c", (string)denial["instance"]!, StringComparison.Ordinal);
        Assert.Equal(TraceId, (string?)denial["trace_id"]);

        // The component pool's counters are in /metrics like a module pool's.
        List<PrometheusSample> samples = [];
        await Poll.UntilAsync(
            async () =>
            {
                samples = await Warpd.ScrapeAsync();
                return samples.Value("warpgrid_invocations_total", ("warpgrid_deployment", "echo-js")) >= 3;
            },
            "echo-js invocations in /metrics");
        Assert.NotNull(samples.Value("warpgrid_instances", ("warpgrid_deployment", "echo-js"), ("warpgrid_instance_state", "idle")));
    }
}
