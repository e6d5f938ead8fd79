using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// A raw HTTP/1.1 server on 127.0.0.1 that is slow on purpose: <c>/stall-head</c> reads the request and never answers;
/// <c>/stall-body</c> sends a head declaring 100 body bytes and the 7 bytes <c>partial</c>, then nothing more;
/// <c>/slow-ok</c> answers <c>ok</c> after 300 ms; <c>/trailers</c> answers a chunked <c>ok</c> with the trailer field
/// <c>x-checksum: abc</c>. Every connection is closed when the server is disposed.
/// </summary>
internal sealed class StallServer : LoopbackServer
{
    public StallServer() => Start();

    protected override async Task Serve(Socket socket)
    {
        try
        {
            var head = new List<byte>();
            var buffer = new byte[4096];
            while (!EndsWithBlankLine(head))
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, Stopping);
                if (read == 0)
                {
                    return;
                }

                head.AddRange(buffer.AsSpan(0, read).ToArray());
            }

            var target = Encoding.ASCII.GetString([.. head]).Split(' ', 3)[1];
            if (target.StartsWith("/stall-body", StringComparison.Ordinal))
            {
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"u8.ToArray(), SocketFlags.None, Stopping);
            }
            else if (target.StartsWith("/trailers", StringComparison.Ordinal))
            {
                await socket.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n2\r\nok\r\n0\r\nx-checksum: abc\r\n\r\n"u8.ToArray(), SocketFlags.None, Stopping);
                return;
            }
            else if (target.StartsWith("/slow-ok", StringComparison.Ordinal))
            {
                await Task.Delay(300, Stopping); // the server's own pace, not a wait for state
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray(), SocketFlags.None, Stopping);
                return;
            }

            // Hold the connection open, saying nothing more, until the client gives up or the test ends.
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, Stopping) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static bool EndsWithBlankLine(List<byte> bytes) =>
        bytes.Count >= 4 && bytes[^4] == '\r' && bytes[^3] == '\n' && bytes[^2] == '\r' && bytes[^1] == '\n';
}

/// <summary>warpd with the C guest allowed to call 127.0.0.1, once with a long and once with a short request timeout.</summary>
public sealed class HttpCLoopbackFixture : WarpdFixture
{
    internal override async Task SeedAsync(WarpdProcess warpd)
    {
        var guest = await File.ReadAllBytesAsync(Path.Combine(TestPaths.RepoRoot, "tests", "guests", "http-c", "http-c.wasm")).ConfigureAwait(false);
        const string outbound = "[capabilities]\nhttp_outbound = [\"127.0.0.1\"]";
        await warpd.DeployAsync("fetch-slow", WarpApi.Manifest("fetch-slow", route: "/fetch-slow", maxInstances: 4, requestTimeout: "60s", extra: outbound), guest, "http-c.wasm").ConfigureAwait(false);
        await warpd.DeployAsync("fetch-quick", WarpApi.Manifest("fetch-quick", route: "/fetch-quick", maxInstances: 4, requestTimeout: "2s", extra: outbound), guest, "http-c.wasm").ConfigureAwait(false);
    }
}

/// <summary>
/// <c>request-options</c> timeouts of outbound <c>wasi:http</c> requests on a real warpd, against a loopback server that
/// stalls: <c>first-byte-timeout</c> and <c>between-bytes-timeout</c> end the wait with <c>connection-read-timeout</c>
/// (as Wasmtime's wasi:http does) long before the request's own deadline, and a stalled upstream can never hold an
/// instance past that deadline.
/// </summary>
public sealed class OutboundTimeoutTests(HttpCLoopbackFixture fixture) : IClassFixture<HttpCLoopbackFixture>
{
    private WarpdProcess Warpd => fixture.Warpd;

    private async Task<(string Body, TimeSpan Elapsed)> Fetch(string deployment, StallServer server, string path, string options)
    {
        var clock = Stopwatch.StartNew();
        using var response = await Warpd.Ingress.GetAsync($"{deployment}/fetch?to={server.Authority}&path={path}&{options}");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/fetch {path} answered {(int)response.StatusCode}: {body}\n{Warpd.Tail()}");
        return (body, clock.Elapsed);
    }

    [Fact]
    public async Task First_byte_timeout_ends_the_wait_for_a_head_that_never_comes()
    {
        await using var server = new StallServer();
        var (body, elapsed) = await Fetch("fetch-slow", server, "stall-head", "first-byte-ms=300");
        Assert.Equal("error=connection-read-timeout", body);
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"took {elapsed}: the 60 s request deadline ended it, not the first-byte timeout");
    }

    [Fact]
    public async Task Between_bytes_timeout_fails_the_read_of_a_body_that_stops()
    {
        await using var server = new StallServer();
        var (body, elapsed) = await Fetch("fetch-slow", server, "stall-body", "between-ms=300");
        Assert.Equal("status=200 body=partial end=connection-read-timeout", body);
        Assert.True(elapsed < TimeSpan.FromSeconds(30), $"took {elapsed}: the 60 s request deadline ended it, not the between-bytes timeout");
    }

    [Fact]
    public async Task Timeouts_longer_than_the_server_takes_do_not_fire()
    {
        await using var server = new StallServer();
        var (body, _) = await Fetch("fetch-slow", server, "slow-ok", "connect-ms=10000&first-byte-ms=10000&between-ms=10000");
        Assert.Equal("status=200 body=ok end=closed trailers=none", body);
    }

    [Fact]
    public async Task Timeouts_near_the_largest_duration_mean_no_timeout_rather_than_an_error()
    {
        await using var server = new StallServer();
        const string huge = "18446744073709"; // ms: times 10^6 is close to the largest u64 of nanoseconds
        var (body, _) = await Fetch("fetch-slow", server, "slow-ok", $"connect-ms={huge}&first-byte-ms={huge}&between-ms={huge}");
        Assert.Equal("status=200 body=ok end=closed trailers=none", body);
    }

    [Fact]
    public async Task A_stalled_upstream_body_cannot_hold_the_instance_past_the_request_deadline()
    {
        await using var server = new StallServer();
        var clock = Stopwatch.StartNew();
        using (var response = await Warpd.Ingress.GetAsync($"fetch-quick/fetch?to={server.Authority}&path=stall-body"))
        {
            // At the deadline the blocked read fails (HTTP-response-timeout); the guest is then interrupted (504), or,
            // when it answers within the same epoch tick, its own answer reports that read error. Either way the
            // request ends at its deadline instead of waiting for the upstream.
            var body = await response.Content.ReadAsStringAsync();
            var interrupted = response.StatusCode == HttpStatusCode.GatewayTimeout && response.Header("X-WarpGrid-Error") == "timeout";
            var reported = response.StatusCode == HttpStatusCode.OK && body == "status=200 body=partial end=HTTP-response-timeout";
            Assert.True(interrupted || reported, $"answered {(int)response.StatusCode} after {clock.Elapsed}: {body}\n{Warpd.Tail()}");
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed} with a 2 s request timeout");
        using var next = await Warpd.Ingress.GetAsync("fetch-quick/hello");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }
}

/// <summary>
/// Trailer fields on a real warpd: those of an outbound response and of an incoming chunked request reach the C guest
/// through <c>incoming-body.finish</c> and <c>future-trailers.get</c> once it has read the body to its end.
/// </summary>
public sealed class TrailerTests(HttpCLoopbackFixture fixture) : IClassFixture<HttpCLoopbackFixture>
{
    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task Trailers_of_an_outbound_response_reach_the_guest()
    {
        await using var server = new StallServer();
        using var response = await Warpd.Ingress.GetAsync($"fetch-slow/fetch?to={server.Authority}&path=trailers");
        Assert.Equal("status=200 body=ok end=closed trailers=x-checksum=abc", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Trailers_of_a_chunked_request_reach_the_guest()
    {
        var request = $"POST /fetch-slow/trailers HTTP/1.1\r\nHost: 127.0.0.1:{Warpd.IngressPort}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n";
        var (head, body) = await RawHttp.SendAsync(Warpd.IngressPort, request, TimeSpan.FromSeconds(30));
        Assert.True(head.Status == 200, head.Head);
        Assert.Equal("read=5 trailers=x-sum=42", Encoding.ASCII.GetString(body));
    }

    [Fact]
    public async Task A_body_without_trailers_has_none()
    {
        using var response = await Warpd.Ingress.PostAsync("fetch-slow/trailers", new StringContent("twelve bytes"));
        Assert.Equal("read=12 trailers=none", await response.Content.ReadAsStringAsync());
    }
}

/// <summary>
/// The non-blocking <c>input-stream.read</c> on a real warpd: with no body byte there yet it answers at once with no
/// bytes (it used to wait for data like <c>blocking-read</c>), and <c>subscribe</c> wakes the guest when data comes.
/// </summary>
public sealed class NonBlockingReadTests(HttpCLoopbackFixture fixture) : IClassFixture<HttpCLoopbackFixture>
{
    [Fact]
    public async Task Read_answers_without_data_until_the_client_sends_then_subscribe_wakes_the_guest()
    {
        var port = fixture.Warpd.IngressPort;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"POST /fetch-slow/nonblocking-read HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\n\r\n"), SocketFlags.None, cts.Token);

        // No body byte is sent before the guest says its read found nothing: a read that waited for data would
        // never say so, and the test would run into its deadline.
        var seen = new StringBuilder();
        async Task Until(string text)
        {
            var buffer = new byte[4096];
            while (!seen.ToString().Contains(text, StringComparison.Ordinal))
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                Assert.True(n > 0, $"the connection closed before \"{text.Trim()}\"; got: {seen}");
                seen.Append(Encoding.Latin1.GetString(buffer, 0, n));
            }
        }

        await Until("empty\n");
        await socket.SendAsync("hello"u8.ToArray(), SocketFlags.None, cts.Token);
        await Until("read=5\n");
        Assert.StartsWith("HTTP/1.1 200", seen.ToString(), StringComparison.Ordinal);
    }
}
