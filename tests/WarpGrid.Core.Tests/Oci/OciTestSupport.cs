using System.Net;
using System.Security.Cryptography;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Tests.Runtime;

namespace WarpGrid.Core.Tests.Oci;

internal static class OciTestSupport
{
    /// <summary>A fixed creation time, so artifacts built in tests have reproducible digests.</summary>
    public const string FixedCreated = "2025-01-02T03:04:05Z";

    public static byte[] HelloWasm => File.ReadAllBytes(Guests.Hello);

    /// <summary>Options with short backoff so failure paths finish quickly.</summary>
    public static OciClientOptions FastOptions(Action<OciClientOptions>? configure = null)
    {
        var options = new OciClientOptions
        {
            RetryBaseDelay = TimeSpan.FromMilliseconds(20),
            MaxRetryDelay = TimeSpan.FromSeconds(2),
            ReadIdleTimeout = TimeSpan.FromSeconds(30),
        };
        configure?.Invoke(options);
        return options;
    }

    public static OciRegistryClient Client(Action<OciClientOptions>? configure = null, HttpMessageHandler? handler = null, TimeProvider? timeProvider = null) =>
        handler is null
            ? new OciRegistryClient(FastOptions(configure), timeProvider: timeProvider)
            : new OciRegistryClient(handler, FastOptions(configure), timeProvider: timeProvider);

    public static string UniqueRepository(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    public static byte[] RandomBytes(int length)
    {
        byte[] bytes = new byte[length];
        RandomNumberGenerator.Fill(bytes);
        return bytes;
    }

    /// <summary>Random bytes that start like a core wasm module (magic + version 1).</summary>
    public static byte[] RandomWasmLike(int length)
    {
        byte[] bytes = RandomBytes(length);
        "\0asm\u0001\0\0\0"u8.CopyTo(bytes);
        return bytes;
    }

    public static Dictionary<string, string> Annotations(string version = "1.0.0") => new()
    {
        [OciAnnotations.Created] = FixedCreated,
        [OciAnnotations.Version] = version,
        [OciAnnotations.Title] = "hello.wasm",
        [OciAnnotations.Description] = "WarpGrid hello sample",
        [OciAnnotations.Source] = "https://github.com/warpgrid/warpgrid/tree/main/samples/hello",
    };
}

/// <summary>A handler in front of the real registry that injects failures into matching requests.</summary>
internal sealed class FaultInjectingHandler : DelegatingHandler
{
    private readonly Func<HttpRequestMessage, int, HttpResponseMessage?>? _respond;
    private readonly Func<HttpRequestMessage, int, bool>? _fail;
    private readonly Func<HttpRequestMessage, bool> _matches;
    private int _matched;
    private int _total;

    /// <param name="matches">Which requests count.</param>
    /// <param name="respond">Given a matching request and its 1-based index among matches, a canned response, or null to pass it on.</param>
    /// <param name="fail">Given a matching request and its index, true to throw a connection failure instead of sending it.</param>
    public FaultInjectingHandler(Func<HttpRequestMessage, bool> matches, Func<HttpRequestMessage, int, HttpResponseMessage?>? respond = null, Func<HttpRequestMessage, int, bool>? fail = null)
        : base(new SocketsHttpHandler())
    {
        _matches = matches;
        _respond = respond;
        _fail = fail;
    }

    /// <summary>Requests that matched.</summary>
    public int Matched => Volatile.Read(ref _matched);

    /// <summary>All requests seen.</summary>
    public int Total => Volatile.Read(ref _total);

    public List<string> Seen { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _total);
        lock (Seen)
        {
            Seen.Add(request.Method + " " + request.RequestUri!.AbsolutePath);
        }

        if (_matches(request))
        {
            int index = Interlocked.Increment(ref _matched);
            if (_fail?.Invoke(request, index) == true)
            {
                throw new HttpRequestException("injected connection failure", new IOException("Connection reset by peer (injected)"));
            }

            if (_respond?.Invoke(request, index) is { } canned)
            {
                canned.RequestMessage = request;
                return canned;
            }
        }

        return await base.SendAsync(request, cancellationToken);
    }

    public static HttpResponseMessage Status(HttpStatusCode status, string? json = null, TimeSpan? retryAfter = null)
    {
        var response = new HttpResponseMessage(status);
        if (json is not null)
        {
            response.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }

        if (retryAfter is { } delay)
        {
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(delay);
        }

        return response;
    }
}

/// <summary>
/// A handler whose first blob download passes <see cref="PassBytes"/> bytes through and then waits at a gate until the
/// test opens it (the test kills the registry in between).
/// </summary>
internal sealed class GatedDownloadHandler(int passBytes) : DelegatingHandler(new SocketsHttpHandler())
{
    private int _gated;

    public int PassBytes { get; } = passBytes;

    /// <summary>Completed when the download has delivered <see cref="PassBytes"/> and waits.</summary>
    public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Complete to let the download continue.</summary>
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int BlobRequests;

    /// <summary>The Range header of each blob GET (null when none).</summary>
    public List<string?> Ranges { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        bool isBlobGet = request.Method == HttpMethod.Get && request.RequestUri!.AbsolutePath.Contains("/blobs/sha256:", StringComparison.Ordinal);
        if (isBlobGet)
        {
            Interlocked.Increment(ref BlobRequests);
            lock (Ranges)
            {
                Ranges.Add(request.Headers.Range?.ToString());
            }
        }

        HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
        if (!isBlobGet || !response.IsSuccessStatusCode || Interlocked.Exchange(ref _gated, 1) == 1)
        {
            return response;
        }

        Stream inner = await response.Content.ReadAsStreamAsync(cancellationToken);
        var gated = new StreamContent(new GatedStream(inner, this));
        foreach (KeyValuePair<string, IEnumerable<string>> header in response.Content.Headers)
        {
            gated.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        response.Content = gated;
        return response;
    }

    private sealed class GatedStream(Stream inner, GatedDownloadHandler owner) : Stream
    {
        private long _passed;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_passed >= owner.PassBytes)
            {
                owner.Reached.TrySetResult();
                await owner.Gate.Task.WaitAsync(cancellationToken);
            }
            else if (buffer.Length > owner.PassBytes - _passed)
            {
                buffer = buffer[..(int)(owner.PassBytes - _passed)];
            }

            int n = await inner.ReadAsync(buffer, cancellationToken);
            _passed += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>A stream that hides its length (as a pipe or a network stream would).</summary>
internal sealed class NonSeekableStream(Stream inner) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
