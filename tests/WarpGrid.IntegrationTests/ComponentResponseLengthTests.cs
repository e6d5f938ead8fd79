using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>warpd with the C wasi:http guest tests/guests/http-c deployed at <c>/clen</c>.</summary>
public sealed class ComponentResponseLengthFixture : WarpdFixture
{
    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var manifest = WarpApi.Manifest("clen", route: "/clen", minInstances: 1, maxInstances: 2, requestTimeout: "20s");
        await warpd.DeployAsync("clen", manifest, await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "http-c", "http-c.wasm")), "http-c.wasm").ConfigureAwait(false);
    }
}

/// <summary>
/// A guest-set <c>content-length</c> on a <c>wasi:http</c> response is enforced as Wasmtime does: a write past it
/// fails with <c>HTTP-response-body-size(some(written))</c> (the guest's <c>/content-length</c> route logs what the
/// host answered), <c>finish</c> short of it returns that error, and the client never gets a complete response from
/// such a body. Neither ends as an exception in the server.
/// </summary>
public sealed class ComponentResponseLengthTests(ComponentResponseLengthFixture fixture) : IClassFixture<ComponentResponseLengthFixture>
{
    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task A_body_of_exactly_the_declared_length_is_served_whole()
    {
        using var response = await Warpd.Ingress.GetAsync("clen/content-length?declared=10&write=10");
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(10, response.Content.Headers.ContentLength);
        Assert.Equal(Pattern(10), body);
        Assert.Equal("content-length declared=10 write=10: finished", await WaitForGuestRecordAsync("declared=10 write=10:"));

        // HEAD: the declared length describes the body a GET would get; none is written and none is expected.
        using var head = await Warpd.Ingress.SendAsync(new HttpRequestMessage(HttpMethod.Head, "clen/content-length?declared=10&write=0"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("content-length declared=10 write=0: finished", await WaitForGuestRecordAsync("declared=10 write=0:"));
        AssertNoServerException();
    }

    [Fact]
    public async Task A_write_past_the_declared_length_fails_in_the_guest_and_none_of_it_reaches_the_client()
    {
        using var response = await Warpd.Ingress.GetAsync("clen/content-length?declared=10&write=11");
        var problem = (await response.ReadJsonAsync()).AsObject();

        // The refused write was the first: the guest's head never went out, so the node answers with a problem.
        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, $"answered {(int)response.StatusCode}: {problem.ToJsonString()}");
        Assert.Equal("bad_response", response.Headers.GetValues("X-WarpGrid-Error").Single());
        Assert.Contains("wrote 11 bytes of response body, more than its content-length of 10", (string?)problem["detail"], StringComparison.Ordinal);

        // The guest saw the error on the write (one write of 11 bytes, nothing of it taken) and again on finish.
        var record = await WaitForGuestRecordAsync("declared=10 write=11:");
        Assert.Equal("content-length declared=10 write=11: write-error=HTTP-response-body-size size=11 after=0 finish-error=HTTP-response-body-size size=11", record);
        var instance = (string?)problem["instance"];
        await WaitForFaultRecordAsync(instance!, "more than its content-length of 10");

        // The instance was replaced: the next request is served by another one.
        using var next = await Warpd.Ingress.GetAsync("clen/content-length?declared=3&write=3");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(Pattern(3), await next.Content.ReadAsByteArrayAsync());
        AssertNoServerException();
    }

    [Fact]
    public async Task Finishing_short_of_the_declared_length_fails_in_the_guest_and_the_client_sees_an_incomplete_response()
    {
        // The head and 4 bytes went out before finish failed: the connection is aborted. The client may see the head
        // and part of the body, or (when the reset overtakes them) only the reset; never a complete response.
        var received = new MemoryStream();
        var failed = false;
        var status = 0;
        try
        {
            using var response = await Warpd.Ingress.GetAsync("clen/content-length?declared=10&write=4", HttpCompletionOption.ResponseHeadersRead);
            status = (int)response.StatusCode;
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64];
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

        Assert.True(failed, $"the short response (status {status}) read to its end without an error: {received.Length} bytes");
        Assert.True(status is 0 or 200, $"answered {status}");
        Assert.True(received.Length <= 4, $"received {received.Length} bytes");
        Assert.Equal(Pattern((int)received.Length), received.ToArray());

        var record = await WaitForGuestRecordAsync("declared=10 write=4:");
        Assert.Equal("content-length declared=10 write=4: finish-error=HTTP-response-body-size size=4", record);
        await WaitForFaultRecordAsync(null, "finished its response body after 4 of its content-length of 10 bytes");

        using var next = await Warpd.Ingress.GetAsync("clen/content-length?declared=5&write=5");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(Pattern(5), await next.Content.ReadAsByteArrayAsync());
        AssertNoServerException();
    }

    /// <summary>Bytes [0, n) of the guest's pattern (byte i is i % 251).</summary>
    private static byte[] Pattern(int n) => [.. Enumerable.Range(0, n).Select(i => (byte)(i % 251))];

    /// <summary>Nothing reached Kestrel as an application exception (a content-length mismatch it had to detect itself).</summary>
    private void AssertNoServerException()
    {
        var lines = Warpd.Lines.Where(l => l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase) || l.Contains("Content-Length mismatch", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(lines.Count == 0, "warpd logged:\n" + string.Join('\n', lines));
    }

    /// <summary>Polls the logs API for the guest's wasi:logging record of one /content-length request; returns its message, trimmed.</summary>
    private async Task<string> WaitForGuestRecordAsync(string contains)
    {
        string? found = null;
        await Poll.UntilAsync(
            async () =>
            {
                var records = await Warpd.LogRecordsAsync("clen", 1000);
                found = records.Where(r => (string?)r["stream"] == "log").Select(r => ((string?)r["message"])?.Trim()).LastOrDefault(m => m is not null && m.Contains(contains, StringComparison.Ordinal));
                return found is not null;
            },
            $"a guest record with '{contains}' in the logs of clen");
        return found!;
    }

    /// <summary>Polls the logs API for the system record of a failed request (bad_response) with <paramref name="contains"/>.</summary>
    private async Task WaitForFaultRecordAsync(string? instance, string contains)
    {
        var last = new List<JsonObject>();
        await Poll.UntilAsync(
            async () =>
            {
                last = await Warpd.LogRecordsAsync("clen", 1000);
                return last.Any(r => ((string?)r["message"] ?? "") is var m
                    && m.StartsWith("request failed (bad_response)", StringComparison.Ordinal)
                    && m.Contains(contains, StringComparison.Ordinal)
                    && m.Contains("the instance was discarded", StringComparison.Ordinal)
                    && (instance is null || (string?)r["instance"] == instance));
            },
            $"a 'request failed (bad_response)' record with '{contains}'",
            diagnostics: () => string.Join('\n', last.Select(r => r.ToJsonString())));
    }
}
