using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>warpd with the testbed guest (and a host-routed guest) deployed, for read-only WAGI tests.</summary>
public sealed class WagiFixture : WarpdFixture
{
    internal const string HostedHost = "api.example.test";

    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var manifest = WarpApi.Manifest(
            "testbed",
            route: "/testbed",
            minInstances: 1,
            maxInstances: 4,
            requestTimeout: "10s",
            memoryLimit: "32MB",
            extra: "[capabilities]\nenvironment = { GREETING = \"hi from the manifest\" }");
        await warpd.DeployAsync("testbed", manifest, await File.ReadAllBytesAsync(TestPaths.Testbed)).ConfigureAwait(false);
        await warpd.DeployAsync("hosted", WarpApi.Manifest("hosted", route: "/", host: HostedHost), await File.ReadAllBytesAsync(TestPaths.Guest("greeting.wat")), "greeting.wat").ConfigureAwait(false);
    }
}

/// <summary>The WAGI convention as a client sees it through warpd's ingress over real HTTP.</summary>
public sealed partial class WagiOverHttpTests(WagiFixture fixture) : IClassFixture<WagiFixture>
{
    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task Guest_sees_the_request_as_CGI_environment_variables()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "testbed/env?name=ada&lang=c%2B%2B")
        {
            Content = new StringContent("twelve bytes", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Add("X-Custom", "custom value");
        using var response = await Warpd.Ingress.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/testbed/env answered {(int)response.StatusCode}: {body}");

        var env = body.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv.Length > 1 ? kv[1] : string.Empty);
        string Var(string name) => env.TryGetValue(name, out var value) ? value : throw new Xunit.Sdk.XunitException($"{name} is missing from the guest environment:\n{body}");

        Assert.Equal("POST", Var("REQUEST_METHOD"));
        Assert.Equal("/testbed", Var("SCRIPT_NAME"));
        Assert.Equal("/env", Var("PATH_INFO"));
        Assert.Equal("name=ada&lang=c%2B%2B", Var("QUERY_STRING"));
        Assert.Equal(Warpd.IngressPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Var("SERVER_PORT"));
        Assert.Equal("127.0.0.1", Var("SERVER_NAME"));
        Assert.Equal("custom value", Var("HTTP_X_CUSTOM"));
        Assert.Equal("12", Var("CONTENT_LENGTH"));
        Assert.StartsWith("text/plain", Var("CONTENT_TYPE"), StringComparison.Ordinal);
        Assert.Equal("/testbed/...", Var("X_MATCHED_ROUTE"));
        Assert.Equal("CGI/1.1", Var("GATEWAY_INTERFACE"));
        Assert.Equal("127.0.0.1", Var("REMOTE_ADDR"));
        Assert.Equal("hi from the manifest", Var("GREETING"));

        // Sorted by name, as the guest prints them: proves the body is the whole environment, not a fragment.
        Assert.Equal(env.Keys.Order(StringComparer.Ordinal), env.Keys);
    }

    [Fact]
    public async Task Header_values_reach_the_client_as_the_bytes_the_guest_wrote()
    {
        var (response, body) = await RawHttp.GetAsync(Warpd.IngressPort, "/testbed/bytes-header", TimeSpan.FromSeconds(30));
        Assert.True(response.Status == 200, response.Head);
        Assert.Equal("bytes", Encoding.ASCII.GetString(body));
        // Latin-1 view of the wire: UTF-8 "é" is the two bytes C3 A9, the obs-text byte E9 stays one byte.
        Assert.Equal("attachment; filename=\"caf\u00c3\u00a9.txt\"", response.Headers["Content-Disposition"]);
        Assert.Equal("caf\u00e9", response.Headers["X-Latin1"]);

        using var parsed = await Warpd.Ingress.GetAsync("testbed/bytes-header");
        Assert.Equal("caf\u00e9", parsed.Header("X-Latin1")); // HttpClient reads header bytes as Latin-1 too
    }

    [Fact]
    public async Task A_header_name_that_is_not_a_token_is_a_bad_response_naming_it()
    {
        using var response = await Warpd.Ingress.GetAsync("testbed/bad-header-name");
        var detail = (string?)(await response.ReadJsonAsync())["detail"];
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("bad_response", response.Header("X-WarpGrid-Error"));
        Assert.Contains("header name \"X Bad\" that is not an HTTP token", detail, StringComparison.Ordinal);

        using var next = await Warpd.Ingress.GetAsync("testbed/status");
        Assert.Equal((HttpStatusCode)418, next.StatusCode);
    }

    [Fact]
    public async Task Echo_round_trips_a_one_mebibyte_random_body_byte_exact()
    {
        var payload = new byte[1 << 20];
        new Random(20240601).NextBytes(payload);
        using var content = new ByteArrayContent(payload);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await Warpd.Ingress.PostAsync("testbed/echo", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("1048576", response.Header("X-Echo-Length"));
        Assert.Equal("POST", response.Header("X-Request-Method"));
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        var echoed = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(payload.Length, echoed.Length);
        Assert.True(payload.AsSpan().SequenceEqual(echoed), "the echoed body differs from the request body");
    }

    [Fact]
    public async Task Guest_large_response_arrives_complete()
    {
        using var response = await Warpd.Ingress.GetAsync("testbed/big");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(1 << 20, body.Length);
        Assert.Equal(1 << 20, response.Content.Headers.ContentLength);
        var pattern = "abcdefghijklmnop"u8;
        for (var i = 0; i < body.Length; i += pattern.Length)
        {
            Assert.True(body.AsSpan(i, pattern.Length).SequenceEqual(pattern), $"body differs at offset {i}");
        }
    }

    [Fact]
    public async Task Guest_status_and_headers_reach_the_client()
    {
        using var response = await Warpd.Ingress.GetAsync("testbed/status");
        Assert.Equal((HttpStatusCode)418, response.StatusCode);
        Assert.Equal("yes", response.Header("X-Custom"));
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("short and stout", await response.Content.ReadAsStringAsync());

        // The guest's own 404 for a path it does not know is passed through (not the ingress's no_route).
        using var unknown = await Warpd.Ingress.GetAsync("testbed/nope");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Null(unknown.Header("X-WarpGrid-Error"));
        Assert.Equal("testbed: unknown path /nope", await unknown.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Location_without_status_is_a_302_redirect()
    {
        using var response = await Warpd.Ingress.GetAsync("testbed/redirect");
        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("/testbed/env", response.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Guest_stderr_lines_are_logged_with_deployment_and_instance()
    {
        using var response = await Warpd.Ingress.GetAsync("testbed/log");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("logged", await response.Content.ReadAsStringAsync());

        var lines = new[] { "first log line", "second log line", "third log line" };
        var found = new List<Match>();
        foreach (var text in lines)
        {
            var line = await Warpd.WaitForLineAsync(l => GuestLogLine().Match(l) is { Success: true } m && m.Groups["line"].Value == text, $"the guest log line '{text}'");
            found.Add(GuestLogLine().Match(line));
        }

        // One request, one instance: all three lines carry the same instance id, a live instance of testbed.
        var instance = found[0].Groups["instance"].Value;
        Assert.All(found, m => Assert.Equal(instance, m.Groups["instance"].Value));
        Assert.All(found, m => Assert.Equal("0.1.0", m.Groups["version"].Value));
        using var instances = await Warpd.Api.GetAsync("v1/deployments/testbed/instances");
        Assert.Contains((await instances.ReadJsonAsync()).AsArray(), i => (string?)i!["id"] == instance);

        // In the order the guest wrote them.
        var output = Warpd.Lines.ToList();
        var positions = found.Select(m => output.FindIndex(l => l.Contains(m.Value, StringComparison.Ordinal))).ToList();
        Assert.Equal(positions.Order(), positions);
    }

    [Fact]
    public async Task Host_routes_match_only_their_host()
    {
        using (var hosted = new HttpRequestMessage(HttpMethod.Get, "some/path"))
        {
            hosted.Headers.Host = WagiFixture.HostedHost;
            using var response = await Warpd.Ingress.SendAsync(hosted);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hello from wat\n", await response.Content.ReadAsStringAsync());
        }

        // A host-specific route beats an any-host route on its host (docs/decisions.md), even a longer prefix...
        using (var testbed = new HttpRequestMessage(HttpMethod.Get, "testbed/status"))
        {
            testbed.Headers.Host = WagiFixture.HostedHost;
            using var response = await Warpd.Ingress.SendAsync(testbed);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hello from wat\n", await response.Content.ReadAsStringAsync());
        }

        // ...and does not answer other hosts.
        foreach (var host in new[] { "other.example.test", $"127.0.0.1:{Warpd.IngressPort}" })
        {
            using var other = new HttpRequestMessage(HttpMethod.Get, "some/path");
            other.Headers.Host = host;
            using var response = await Warpd.Ingress.SendAsync(other);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("no_route", response.Header("X-WarpGrid-Error"));
        }
    }

    [GeneratedRegex(@"WarpGrid\.Guest\[23\] testbed@(?<version>[^ ]+) (?<instance>testbed-[0-9a-f]{4,}): (?<line>.*)$")]
    private static partial Regex GuestLogLine();
}
