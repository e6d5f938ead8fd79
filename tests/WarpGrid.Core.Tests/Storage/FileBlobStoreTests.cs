using System.Text;
using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Tests.Storage;

public sealed class FileBlobStoreTests : IDisposable
{
    // SHA-256 of "abc" (FIPS 180-2 test vector).
    private const string AbcDigest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string TempFolder => Path.Combine(_dir.Path, "blobs", "tmp");

    [Fact]
    public async Task Put_ThenRead_RoundTrips_AtTheContentAddressedPath()
    {
        var store = new FileBlobStore(_dir.Path);

        string digest = await store.PutAsync("abc"u8.ToArray());

        Assert.Equal(AbcDigest, digest);
        Assert.True(store.Exists(digest));
        Assert.Equal("abc", Encoding.UTF8.GetString((await store.ReadAsync(digest))!));
        string expectedPath = Path.Combine(_dir.Path, "blobs", "sha256", "ba", AbcDigest["sha256:".Length..]);
        Assert.Equal(expectedPath, store.GetPath(digest));
        Assert.Equal("abc", await File.ReadAllTextAsync(expectedPath));
        Assert.Equal([digest], store.List());
        Assert.Empty(Directory.GetFiles(TempFolder));
    }

    [Fact]
    public async Task Put_EmptyContent_Works()
    {
        var store = new FileBlobStore(_dir.Path);

        string digest = await store.PutAsync(ReadOnlyMemory<byte>.Empty);

        Assert.Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", digest);
        Assert.Empty((await store.ReadAsync(digest))!);
    }

    [Fact]
    public async Task Put_SameContentTwice_StoresItOnce()
    {
        var store = new FileBlobStore(_dir.Path);
        byte[] module = RandomBytes(100_000);

        string first = await store.PutAsync(module);
        string second = await store.PutAsync(new MemoryStream(module));
        string[] concurrent = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => store.PutAsync(module).AsTask()));

        Assert.Equal(first, second);
        Assert.All(concurrent, d => Assert.Equal(first, d));
        Assert.Single(store.List());
        Assert.Single(Directory.GetFiles(Path.Combine(_dir.Path, "blobs", "sha256"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(TempFolder));
    }

    [Fact]
    public async Task PutStream_MatchesPutBytes_ForNonSeekableStreams()
    {
        var store = new FileBlobStore(_dir.Path);
        byte[] content = RandomBytes(1_000_003);

        string fromStream = await store.PutAsync(new NonSeekableStream(content), maxBytes: content.Length);

        Assert.Equal(Digest.Compute(content).Value, fromStream);
        Assert.Equal(content, await store.ReadAsync(fromStream));
    }

    [Fact]
    public async Task Read_DetectsCorruption()
    {
        var store = new FileBlobStore(_dir.Path);
        string digest = await store.PutAsync(RandomBytes(4096));
        string path = store.GetPath(digest);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        bytes[1234] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes);

        var ex = await Assert.ThrowsAsync<BlobCorruptedException>(() => store.ReadAsync(digest).AsTask());

        Assert.Equal(digest, ex.Digest);
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(digest, ex.Message, StringComparison.Ordinal);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Put_RepairsATruncatedBlob()
    {
        var store = new FileBlobStore(_dir.Path);
        byte[] content = RandomBytes(4096);
        string digest = await store.PutAsync(content);
        await File.WriteAllBytesAsync(store.GetPath(digest), content.AsSpan(0, 100).ToArray());

        await store.PutAsync(content);

        Assert.Equal(content, await store.ReadAsync(digest));
    }

    [Fact]
    public async Task OversizeStream_IsRejected_AndLeavesNoFiles()
    {
        var store = new FileBlobStore(_dir.Path);
        byte[] content = RandomBytes(300_000);

        var streamed = await Assert.ThrowsAsync<BlobTooLargeException>(() => store.PutAsync(new NonSeekableStream(content), maxBytes: 200_000).AsTask());
        var seekable = await Assert.ThrowsAsync<BlobTooLargeException>(() => store.PutAsync(new MemoryStream(content), maxBytes: 299_999).AsTask());

        Assert.Equal(200_000, streamed.MaxBytes);
        Assert.Contains("200000", streamed.Message, StringComparison.Ordinal);
        Assert.Equal(299_999, seekable.MaxBytes);
        Assert.Empty(store.List());
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "blobs"), "*", SearchOption.AllDirectories));
        Assert.False(store.Exists(Digest.Compute(content).Value));
    }

    [Fact]
    public async Task CancelledStreamPut_LeavesNoFiles()
    {
        var store = new FileBlobStore(_dir.Path);
        using var cts = new CancellationTokenSource();
        var stream = new NonSeekableStream(RandomBytes(1_000_000), afterFirstRead: cts.Cancel);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.PutAsync(stream, cancellationToken: cts.Token).AsTask());

        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.Path, "blobs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Delete_RemovesBlob_AndReportsWhetherItExisted()
    {
        var store = new FileBlobStore(_dir.Path);
        string a = await store.PutAsync("a"u8.ToArray());
        string b = await store.PutAsync("b"u8.ToArray());

        Assert.True(await store.DeleteAsync(a));
        Assert.False(await store.DeleteAsync(a));

        Assert.False(store.Exists(a));
        Assert.Null(await store.ReadAsync(a));
        Assert.Equal([b], store.List());
    }

    [Fact]
    public async Task List_IgnoresForeignFiles()
    {
        var store = new FileBlobStore(_dir.Path);
        string digest = await store.PutAsync("x"u8.ToArray());
        string folder = Path.GetDirectoryName(store.GetPath(digest))!;
        await File.WriteAllTextAsync(Path.Combine(folder, "notes.txt"), "not a blob");
        Directory.CreateDirectory(Path.Combine(_dir.Path, "blobs", "sha256", "zz"));

        Assert.Equal([digest], store.List());
    }

    [Fact]
    public async Task Read_OfMissingBlob_ReturnsNull()
    {
        var store = new FileBlobStore(_dir.Path);

        Assert.Null(await store.ReadAsync(AbcDigest));
        Assert.False(store.Exists(AbcDigest));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("sha256:")]
    [InlineData("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")]
    [InlineData("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a")]
    [InlineData("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adX")]
    [InlineData("sha256:../../../../../../../../../../../../../../../../../../../../etc/passwd")]
    public async Task InvalidDigest_ThrowsArgumentExceptionNamingTheValue(string digest)
    {
        var store = new FileBlobStore(_dir.Path);

        var ex = Assert.Throws<ArgumentException>(() => store.GetPath(digest));
        Assert.Equal("digest", ex.ParamName);
        Assert.Contains($"'{digest}'", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => store.Exists(digest));
        await Assert.ThrowsAsync<ArgumentException>(() => store.ReadAsync(digest).AsTask());
        Assert.Throws<ArgumentException>(() => store.DeleteAsync(digest));
        Assert.False(Digest.TryParse(digest, out _));
    }

    [Fact]
    public void Digest_ParseAndCompute()
    {
        Digest computed = Digest.Compute("abc"u8);

        Assert.Equal(AbcDigest, computed.ToString());
        Assert.True(Digest.TryParse(AbcDigest, out Digest parsed));
        Assert.Equal(computed, parsed);
        Assert.Equal(AbcDigest["sha256:".Length..], parsed.Hex);
        Assert.False(Digest.TryParse(null, out _));
        Assert.Equal("value", Assert.Throws<ArgumentException>(() => Digest.Parse("nope")).ParamName);
    }

    [Fact]
    public async Task StaleTemporaryFiles_AreRemovedOnStartup_FreshOnesKept()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero));
        Directory.CreateDirectory(TempFolder);
        string stale = Path.Combine(TempFolder, "stale.tmp");
        string fresh = Path.Combine(TempFolder, "fresh.tmp");
        await File.WriteAllTextAsync(stale, "half-written");
        await File.WriteAllTextAsync(fresh, "being written by another process");
        File.SetLastWriteTimeUtc(stale, clock.GetUtcNow().UtcDateTime.AddHours(-2));
        File.SetLastWriteTimeUtc(fresh, clock.GetUtcNow().UtcDateTime.AddMinutes(-10));

        _ = new FileBlobStore(_dir.Path, timeProvider: clock);

        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh));
    }

    private static byte[] RandomBytes(int count)
    {
        byte[] bytes = new byte[count];
        new Random(count).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A read-only stream that cannot seek, so the store must count bytes as they arrive.</summary>
    private sealed class NonSeekableStream(byte[] content, Action? afterFirstRead = null) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = Math.Min(Math.Min(count, 8192), content.Length - _position);
            content.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset));
            if (_position == 0)
            {
                afterFirstRead?.Invoke();
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
