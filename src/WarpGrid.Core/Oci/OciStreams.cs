using System.Net;

namespace WarpGrid.Core.Oci;

/// <summary>Request content over bytes in memory that reports upload progress as it is written to the connection.</summary>
internal sealed class ProgressContent : HttpContent
{
    private const int SliceSize = 64 * 1024;
    private readonly ReadOnlyMemory<byte> _data;
    private readonly IProgress<OciTransferProgress>? _progress;
    private readonly long _progressBase;
    private readonly long? _total;

    public ProgressContent(ReadOnlyMemory<byte> data, IProgress<OciTransferProgress>? progress, long progressBase, long? total)
    {
        _data = data;
        _progress = progress;
        _progressBase = progressBase;
        _total = total;
        Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (_progress is null)
        {
            await stream.WriteAsync(_data, cancellationToken).ConfigureAwait(false);
            return;
        }

        for (int offset = 0; offset < _data.Length; offset += SliceSize)
        {
            int count = Math.Min(SliceSize, _data.Length - offset);
            await stream.WriteAsync(_data.Slice(offset, count), cancellationToken).ConfigureAwait(false);
            _progress.Report(new OciTransferProgress(_progressBase + offset + count, _total));
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _data.Length;
        return true;
    }
}

/// <summary>A read-only stream that yields a prefix held in memory, then the rest of another stream.</summary>
internal sealed class PrefixedReadStream(ReadOnlyMemory<byte> prefix, Stream rest) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_prefix.Length > 0)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        return rest.Read(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_prefix.Length > 0)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer.Span);
            _prefix = _prefix[n..];
            return ValueTask.FromResult(n);
        }

        return rest.ReadAsync(buffer, cancellationToken);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
