using System.Globalization;
using System.Net;
using System.Text;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>warpd with the C wasi:http guest tests/guests/http-c deployed at <c>/fields</c>.</summary>
public sealed class ComponentFieldsFixture : WarpdFixture
{
    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var manifest = WarpApi.Manifest("fields", route: "/fields", minInstances: 1, maxInstances: 2, requestTimeout: "20s");
        await warpd.DeployAsync("fields", manifest, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "http-c", "http-c.wasm")), "http-c.wasm").ConfigureAwait(false);
    }
}

/// <summary>
/// <c>wasi:http/types</c> as a guest we did not write would use it, through the real canonical ABI: the C guest's
/// <c>/header-checks</c> calls each <c>fields</c> function (and the status and outgoing-request setters) and reports one
/// <c>"&lt;check&gt; &lt;outcome&gt;"</c> line per call; the outcomes are those of the WIT and of Wasmtime's reference host.
/// </summary>
public sealed class ComponentFieldsTests(ComponentFieldsFixture fixture) : IClassFixture<ComponentFieldsFixture>
{
    private Task<Dictionary<string, string>>? _report;

    private WarpdProcess Warpd => fixture.Warpd;

    private Task<Dictionary<string, string>> Report => _report ??= FetchReportAsync();

    private async Task<Dictionary<string, string>> FetchReportAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "fields/header-checks");
        request.Headers.TryAddWithoutValidation("X-Client", "hello");
        using var response = await Warpd.Ingress.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var report = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            Assert.True(space > 0, $"not a report line: '{line}'");
            Assert.True(report.TryAdd(line[..space], line[(space + 1)..]), $"check reported twice: {line}");
        }

        return report;
    }

    private async Task AssertOutcomes(params (string Check, string Outcome)[] expected)
    {
        var report = await Report;
        foreach (var (check, outcome) in expected)
        {
            Assert.True(report.TryGetValue(check, out var actual), $"check '{check}' is missing from the report");
            Assert.True(outcome == actual, $"{check}: expected '{outcome}', got '{actual}'");
        }
    }

    [Fact]
    public Task Names_must_be_tokens_and_values_free_of_control_characters() => AssertOutcomes(
        ("append-valid", "ok"),
        ("append-name-space", "invalid-syntax"),
        ("append-name-empty", "invalid-syntax"),
        ("append-name-colon", "invalid-syntax"),
        ("append-name-non-ascii", "invalid-syntax"),
        ("append-value-lf", "invalid-syntax"),
        ("append-value-cr", "invalid-syntax"),
        ("append-value-nul", "invalid-syntax"),
        ("append-value-del", "invalid-syntax"),
        ("append-value-ctl", "invalid-syntax"),
        ("append-value-tab", "ok"),
        ("append-value-obs-text", "ok"),
        ("append-value-empty", "ok"),
        ("get-value-empty", string.Empty),
        ("get-value-obs-text", "caf\\xe9"));

    [Fact]
    public Task Wasmtimes_forbidden_names_are_refused_in_any_case_and_te_is_allowed() => AssertOutcomes(
        ("append-forbidden-Connection", "forbidden"),
        ("append-forbidden-KEEP-ALIVE", "forbidden"),
        ("append-forbidden-Proxy-Authenticate", "forbidden"),
        ("append-forbidden-proxy-authorization", "forbidden"),
        ("append-forbidden-Proxy-Connection", "forbidden"),
        ("append-forbidden-Transfer-Encoding", "forbidden"),
        ("append-forbidden-upgrade", "forbidden"),
        ("append-forbidden-Host", "forbidden"),
        ("append-forbidden-HTTP2-Settings", "forbidden"),
        ("set-forbidden", "forbidden"),
        ("delete-forbidden", "forbidden"),
        ("append-te", "ok"));

    [Fact]
    public Task Set_is_all_or_nothing_and_names_compare_without_case() => AssertOutcomes(
        ("set-bad-value", "invalid-syntax"),
        ("get-after-bad-set", "one"),
        ("set-bad-name", "invalid-syntax"),
        ("set-valid", "ok"),
        ("get-after-set", "two|three"),
        ("has-other-case", "true"),
        ("has-absent", "false"),
        ("has-invalid-name", "false"),
        ("get-invalid-name", "(none)"),
        ("delete-bad-name", "invalid-syntax"));

    [Fact]
    public Task Entries_keep_the_case_given_and_group_the_values_of_a_name_in_first_added_order() => AssertOutcomes(
        ("entries-order", "x-a=1;X-A=3;X-B=5;X-B=6;x-c=4"),
        ("delete-valid", "ok"),
        ("delete-absent", "ok"),
        ("set-no-values", "ok"),
        ("entries-after-delete", "X-B=5;X-B=6"),
        ("clone-append", "ok"),
        ("clone-entries", "X-B=5;X-B=6;x-clone=7"),
        ("clone-original-entries", "X-B=5;X-B=6"));

    [Fact]
    public Task From_list_validates_every_entry_and_fails_as_a_whole() => AssertOutcomes(
        ("from-list-valid", "ok"),
        ("from-list-valid-entries", "a=1;a=3;B=2"),
        ("from-list-bad-value", "invalid-syntax"),
        ("from-list-bad-name", "invalid-syntax"),
        ("from-list-forbidden", "forbidden"));

    [Fact]
    public Task Request_headers_and_fields_given_to_a_request_or_response_are_immutable() => AssertOutcomes(
        ("request-append", "immutable"),
        ("request-set", "immutable"),
        ("request-delete", "immutable"),
        ("request-append-forbidden", "forbidden"),
        ("request-append-bad-name", "invalid-syntax"),
        ("request-get", "hello"),
        ("request-has-host", "false"),
        ("request-clone-append", "ok"),
        ("response-headers-append", "immutable"),
        ("response-headers-delete", "immutable"),
        ("response-headers-get", "1"),
        ("request-headers-set", "immutable"));

    [Fact]
    public Task Set_status_code_takes_100_to_999_only() => AssertOutcomes(
        ("status-99", "err"),
        ("status-1000", "err"),
        ("status-0", "err"),
        ("status-65535", "err"),
        ("status-599", "ok"),
        ("status-100", "ok"),
        ("status-after", "100"));

    [Fact]
    public Task Outgoing_request_setters_refuse_malformed_values() => AssertOutcomes(
        ("method-get", "ok"),
        ("method-other-token", "ok"),
        ("method-other-space", "err"),
        ("method-other-empty", "err"),
        ("method-other-newline", "err"),
        ("path-valid", "ok"),
        ("path-none", "ok"),
        ("path-space", "err"),
        ("path-newline", "err"),
        ("path-fragment", "ok"),
        ("path-no-leading-slash", "err"),
        ("scheme-http", "ok"),
        ("scheme-none", "ok"),
        ("scheme-other-valid", "ok"),
        ("scheme-other-digit-first", "err"),
        ("scheme-other-space", "err"),
        ("scheme-other-empty", "err"),
        ("authority-valid", "ok"),
        ("authority-ipv6", "ok"),
        ("authority-userinfo", "ok"),
        ("authority-none", "ok"),
        ("authority-slash", "err"),
        ("authority-space", "err"),
        ("authority-port-too-big", "err"),
        ("authority-port-empty", "err"),
        ("authority-port-letters", "err"));

    [Theory]
    [InlineData("599", HttpStatusCode.OK + 399, "status 599\n")]
    [InlineData("99", HttpStatusCode.OK, "refused\n")]
    [InlineData("1000", HttpStatusCode.OK, "refused\n")]
    public async Task A_status_the_guest_sets_reaches_the_client_and_an_invalid_one_is_refused_to_the_guest(string status, HttpStatusCode expected, string body)
    {
        using var response = await Warpd.Ingress.GetAsync("fields/status-" + status);
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("204")]
    [InlineData("205")]
    [InlineData("304")]
    public async Task A_status_without_a_body_drops_what_the_guest_writes(string status)
    {
        using var response = await Warpd.Ingress.GetAsync("fields/status-" + status);
        Assert.Equal(int.Parse(status, CultureInfo.InvariantCulture), (int)response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());

        using var next = await Warpd.Ingress.GetAsync("fields/hello");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Theory]
    [InlineData("status-100", "informational status 100")]
    [InlineData("status-101", "informational status 101")]
    [InlineData("status-150", "informational status 150")]
    public async Task A_response_head_http_cannot_carry_is_a_bad_response_not_a_host_error(string path, string detail)
    {
        using var response = await Warpd.Ingress.GetAsync("fields/" + path);
        var problem = (await response.ReadJsonAsync()).AsObject();
        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, $"{path} answered {(int)response.StatusCode}: {problem.ToJsonString()}");
        Assert.Equal("bad_response", response.Headers.GetValues("X-WarpGrid-Error").Single());
        Assert.Contains(detail, (string?)problem["detail"], StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("x-latin1"));
    }

    [Fact]
    public async Task An_obs_text_byte_in_a_response_header_reaches_the_client_as_that_byte()
    {
        var (response, body) = await RawHttp.GetAsync(Warpd.IngressPort, "/fields/obs-text", TimeSpan.FromSeconds(30));
        Assert.True(response.Status == 200, response.Head);
        Assert.Equal("caf\u00e9", response.Headers["x-latin1"]); // the single byte E9 the guest set, not UTF-8 C3 A9
        Assert.Empty(body);
    }

    [Fact]
    public async Task Outgoing_response_body_is_refused_when_content_length_is_not_a_number()
    {
        using var response = await Warpd.Ingress.GetAsync("fields/bad-content-length");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("outgoing-response.body refused\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task More_than_128_KiB_of_fields_ends_the_request_as_a_host_error_and_the_next_request_is_served()
    {
        using (var response = await Warpd.Ingress.GetAsync("fields/fields-too-large"))
        {
            var problem = (await response.ReadJsonAsync()).AsObject();
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("host_error", response.Headers.GetValues("X-WarpGrid-Error").Single());
            Assert.Contains("more than 131072 bytes", (string?)problem["detail"], StringComparison.Ordinal);
        }

        using var next = await Warpd.Ingress.GetAsync("fields/hello");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal("Hello from C on WarpGrid (wasi:http)!\n", Encoding.UTF8.GetString(await next.Content.ReadAsByteArrayAsync()));
    }
}
