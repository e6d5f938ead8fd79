using System.Diagnostics;
using System.Net;
using WarpGrid.Core.Oci;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>Retries, backoff and outages, with faults injected in front of a real registry or the registry killed.</summary>
public sealed class RegistryFaultTests(AnonymousRegistryFixture fixture) : IClassFixture<AnonymousRegistryFixture>
{
    private RegistryServer Registry => fixture.Server;

    private OciReference Ref(string repositoryAndTag) => OciReference.Parse($"{Registry.Address}/{repositoryAndTag}");

    private static bool IsManifestGet(HttpRequestMessage r) =>
        r.Method == HttpMethod.Get && r.RequestUri!.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal);

    [Fact]
    public async Task The_registry_killed_mid_pull_is_an_unavailable_error_after_bounded_retries()
    {
        await using RegistryServer registry = await RegistryServer.StartAsync();
        OciRepository repository = OciRepository.Parse($"{registry.Address}/outage");
        byte[] blob = OciTestSupport.RandomBytes(24 * 1024 * 1024);
        string digest;
        using (OciRegistryClient pusher = OciTestSupport.Client())
        {
            digest = (await pusher.PushBlobAsync(repository, blob)).Digest;
        }

        var handler = new GatedDownloadHandler(passBytes: 1024 * 1024);
        using OciRegistryClient client = OciTestSupport.Client(o => o.MaxRetries = 3, handler);
        var destination = new MemoryStream();
        Task<long> pull = client.PullBlobAsync(repository, digest, destination);

        await handler.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await registry.StopAsync();
        Assert.True(registry.HasExited);
        var clock = Stopwatch.StartNew();
        handler.Gate.SetResult();

        var ex = await Assert.ThrowsAsync<OciRegistryUnavailableException>(() => pull.WaitAsync(TimeSpan.FromSeconds(60)));

        Assert.Equal(registry.Address, ex.Registry);
        Assert.Contains($"Registry {registry.Address} is unavailable", ex.Message, StringComparison.Ordinal);
        Assert.Equal(4, ex.Attempts); // the broken body, then 3 retries that cannot connect
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"gave up after {clock.Elapsed}");
        Assert.Equal(4, handler.BlobRequests); // the first GET and three Range GETs
        Assert.Equal(0, destination.Length);
    }

    [Fact]
    public async Task A_stalled_download_times_out_and_resumes_with_a_range_request()
    {
        OciRepository repository = OciRepository.Parse($"{Registry.Address}/{OciTestSupport.UniqueRepository("stall")}");
        byte[] blob = OciTestSupport.RandomBytes(4 * 1024 * 1024);
        string digest;
        using (OciRegistryClient pusher = OciTestSupport.Client())
        {
            digest = (await pusher.PushBlobAsync(repository, blob)).Digest;
        }

        var handler = new GatedDownloadHandler(passBytes: 1024 * 1024); // the gate never opens: the body stalls
        using OciRegistryClient client = OciTestSupport.Client(o => o.ReadIdleTimeout = TimeSpan.FromMilliseconds(500), handler);

        byte[] pulled = await client.PullBlobBytesAsync(repository, digest, blob.Length);

        Assert.Equal(blob, pulled);
        Assert.Equal([null, "bytes=1048576-"], handler.Ranges);
    }

    [Fact]
    public async Task A_registry_that_stores_a_blob_under_another_digest_is_caught()
    {
        string wrong = OciDigest.Compute("not the content"u8);
        var handler = new FaultInjectingHandler(
            r => r.Method == HttpMethod.Put && r.RequestUri!.Query.Contains("digest=", StringComparison.Ordinal),
            respond: (_, _) =>
            {
                HttpResponseMessage response = FaultInjectingHandler.Status(HttpStatusCode.Created);
                response.Headers.TryAddWithoutValidation("Docker-Content-Digest", wrong);
                return response;
            });
        using OciRegistryClient client = OciTestSupport.Client(handler: handler);
        OciRepository repository = OciRepository.Parse($"{Registry.Address}/{OciTestSupport.UniqueRepository("liar")}");

        var ex = await Assert.ThrowsAsync<OciDigestMismatchException>(() => client.PushBlobAsync(repository, OciTestSupport.RandomBytes(1000)));

        Assert.Equal(wrong, ex.ActualDigest);
        Assert.Contains($"stored the blob pushed to {repository} as {wrong}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transient_5xx_answers_are_retried_until_the_request_succeeds()
    {
        OciReference reference = Ref(OciTestSupport.UniqueRepository("flaky") + ":1");
        using (OciRegistryClient pusher = OciTestSupport.Client())
        {
            await pusher.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        }

        var handler = new FaultInjectingHandler(IsManifestGet, respond: (_, i) => i <= 2
            ? FaultInjectingHandler.Status(HttpStatusCode.ServiceUnavailable, """{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}""")
            : null);
        using OciRegistryClient client = OciTestSupport.Client(handler: handler);

        WasmArtifactContent pulled = await client.PullWasmAsync(reference);

        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
        Assert.Equal(3, handler.Matched);
    }

    [Fact]
    public async Task Persistent_5xx_gives_up_after_max_retries_with_the_registry_error()
    {
        var handler = new FaultInjectingHandler(IsManifestGet, respond: (_, _) =>
            FaultInjectingHandler.Status(HttpStatusCode.BadGateway, """{"errors":[{"code":"UNAVAILABLE","message":"backend down"}]}"""));
        using OciRegistryClient client = OciTestSupport.Client(o => o.MaxRetries = 2, handler);

        var ex = await Assert.ThrowsAsync<OciRegistryUnavailableException>(() => client.GetManifestAsync(Ref("x:1")));

        Assert.Equal(3, handler.Matched);
        Assert.Equal(3, ex.Attempts);
        Assert.Equal(HttpStatusCode.BadGateway, ex.StatusCode);
        Assert.Contains("502", ex.Message, StringComparison.Ordinal);
        Assert.Contains("UNAVAILABLE: backend down", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_errors_other_than_429_are_never_retried()
    {
        var handler = new FaultInjectingHandler(IsManifestGet, respond: (_, _) =>
            FaultInjectingHandler.Status(HttpStatusCode.BadRequest, """{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}"""));
        using OciRegistryClient client = OciTestSupport.Client(handler: handler);

        var ex = await Assert.ThrowsAsync<OciException>(() => client.GetManifestAsync(Ref("x:1")));

        Assert.Equal(1, handler.Matched);
        Assert.Equal(HttpStatusCode.BadRequest, ex.StatusCode);
        Assert.Contains("MANIFEST_INVALID: bad", ex.Message, StringComparison.Ordinal);
        Assert.Equal("MANIFEST_INVALID", Assert.Single(ex.Errors).Code);
    }

    [Fact]
    public async Task Retry_after_on_429_is_honoured()
    {
        OciReference reference = Ref(OciTestSupport.UniqueRepository("ratelimit") + ":1");
        using (OciRegistryClient pusher = OciTestSupport.Client())
        {
            await pusher.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        }

        var handler = new FaultInjectingHandler(IsManifestGet, respond: (_, i) => i == 1
            ? FaultInjectingHandler.Status(HttpStatusCode.TooManyRequests, retryAfter: TimeSpan.FromSeconds(1))
            : null);
        using OciRegistryClient client = OciTestSupport.Client(o => o.RetryBaseDelay = TimeSpan.FromMilliseconds(1), handler);
        var clock = Stopwatch.StartNew();

        await client.GetManifestAsync(reference);

        Assert.Equal(2, handler.Matched);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"retried after {clock.Elapsed}, before the Retry-After of 1 s");
    }

    [Fact]
    public async Task Connection_failures_are_retried()
    {
        OciReference reference = Ref(OciTestSupport.UniqueRepository("reset") + ":1");
        using (OciRegistryClient pusher = OciTestSupport.Client())
        {
            await pusher.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        }

        var handler = new FaultInjectingHandler(r => r.Method == HttpMethod.Get, fail: (_, i) => i % 2 == 1);
        using OciRegistryClient client = OciTestSupport.Client(handler: handler);

        WasmArtifactContent pulled = await client.PullWasmAsync(reference);

        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
    }

    [Fact]
    public async Task A_chunk_upload_that_fails_resumes_from_the_offset_the_registry_reports()
    {
        var handler = new FaultInjectingHandler(r => r.Method == HttpMethod.Patch, fail: (_, i) => i == 2);
        using OciRegistryClient client = OciTestSupport.Client(o => o.UploadChunkSize = 256 * 1024, handler);
        OciRepository repository = OciRepository.Parse($"{Registry.Address}/{OciTestSupport.UniqueRepository("resume")}");
        byte[] blob = OciTestSupport.RandomBytes(1024 * 1024 + 17);

        OciBlobPushResult pushed = await client.PushBlobAsync(repository, blob, mode: OciUploadMode.Chunked);

        Assert.True(pushed.Chunked);
        Assert.Equal(6, handler.Matched); // 5 chunks, one of them sent twice
        Assert.Contains(handler.Seen, s => s.StartsWith("GET", StringComparison.Ordinal) && s.Contains("/blobs/uploads/", StringComparison.Ordinal));
        Assert.Equal(blob, await client.PullBlobBytesAsync(repository, pushed.Digest, blob.Length));
    }

    [Fact]
    public async Task An_unreachable_registry_is_unavailable_after_retries()
    {
        int port = RegistryServer.FreePort(); // nothing listens there
        using OciRegistryClient client = OciTestSupport.Client(o => o.MaxRetries = 2);

        var ex = await Assert.ThrowsAsync<OciRegistryUnavailableException>(() => client.ResolveAsync(OciReference.Parse($"127.0.0.1:{port}/x:1")));

        Assert.Equal(3, ex.Attempts);
        Assert.Contains($"Registry 127.0.0.1:{port} is unavailable", ex.Message, StringComparison.Ordinal);
        Assert.Contains("refused", ex.Message, StringComparison.OrdinalIgnoreCase);
    }
}
