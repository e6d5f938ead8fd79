using System.Buffers;
using System.Net;
using System.Security.Cryptography;

namespace WarpGrid.Core.Oci;

public sealed partial class OciRegistryClient
{
    private const int DownloadBufferSize = 128 * 1024;

    /// <summary>True when the repository has the blob (<c>HEAD /v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>).</summary>
    public async Task<bool> BlobExistsAsync(OciRepository repository, string digest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        OciDigest.Validate(digest, nameof(digest));
        return await BlobSizeAsync(repository, digest, PullScope(repository.Name), cancellationToken).ConfigureAwait(false) is not null;
    }

    private async Task<long?> BlobSizeAsync(OciRepository repository, string digest, string scope, CancellationToken cancellationToken)
    {
        var request = new OciRequest(repository.Registry, HttpMethod.Head, BlobUri(repository, digest), scope);
        using HttpResponseMessage response = await SendAsync(request, new RetryState(), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw await UnexpectedAsync(request, response, $"check blob {digest} in {repository}", cancellationToken).ConfigureAwait(false);
        }

        return response.Content.Headers.ContentLength ?? -1;
    }

    /// <summary>
    /// Uploads a blob held in memory, unless the repository already has it. Monolithic (POST, then PUT with
    /// <c>?digest=</c>) or chunked (POST, PATCH chunks with <c>Content-Range</c>, final PUT), chosen by
    /// <paramref name="mode"/> and <see cref="OciClientOptions.ChunkedUploadThreshold"/>.
    /// </summary>
    /// <param name="repository">The target repository.</param>
    /// <param name="content">The blob.</param>
    /// <param name="digest">The expected digest, or null to compute it. A mismatch fails before anything is uploaded.</param>
    /// <param name="progress">Receives bytes sent.</param>
    /// <param name="mode">Monolithic, chunked, or by size.</param>
    /// <param name="cancellationToken">Cancels the upload.</param>
    /// <exception cref="OciDigestMismatchException">The content does not hash to <paramref name="digest"/>, or the registry stored it under another digest.</exception>
    public async Task<OciBlobPushResult> PushBlobAsync(OciRepository repository, ReadOnlyMemory<byte> content, string? digest = null, IProgress<OciTransferProgress>? progress = null, OciUploadMode mode = OciUploadMode.Auto, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        string actual = OciDigest.Compute(content.Span);
        if (digest is not null)
        {
            OciDigest.Validate(digest, nameof(digest));
            if (!string.Equals(digest, actual, StringComparison.Ordinal))
            {
                throw new OciDigestMismatchException($"The content to push to {repository} hashes to {actual}, not to the declared {digest}; nothing was uploaded.", digest, actual, repository.Registry);
            }
        }

        if (await BlobSizeAsync(repository, actual, PushScope(repository.Name), cancellationToken).ConfigureAwait(false) is not null)
        {
            Log.BlobExists(_logger, actual, repository.ToString());
            progress?.Report(new OciTransferProgress(content.Length, content.Length));
            return new OciBlobPushResult(actual, content.Length, AlreadyExisted: true, Chunked: false);
        }

        bool chunked = mode == OciUploadMode.Chunked || (mode == OciUploadMode.Auto && content.Length >= _options.ChunkedUploadThreshold);
        if (chunked)
        {
            using var source = new PrefixedReadStream(content, Stream.Null);
            return await UploadChunkedAsync(repository, source, actual, content.Length, progress, cancellationToken).ConfigureAwait(false);
        }

        return await UploadMonolithicAsync(repository, content, actual, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Uploads a blob from a stream, unless <paramref name="digest"/> is given and the repository already has it. A
    /// seekable stream's remaining length picks the mode; a non-seekable one is read up to the threshold first. Chunked
    /// uploads hold one chunk in memory at a time and hash while reading.
    /// </summary>
    /// <param name="repository">The target repository.</param>
    /// <param name="content">The blob, read from its current position to its end.</param>
    /// <param name="digest">The expected digest, or null to compute it while uploading. On a mismatch the upload is cancelled before it is committed.</param>
    /// <param name="progress">Receives bytes sent.</param>
    /// <param name="mode">Monolithic (reads the whole stream into memory), chunked, or by size.</param>
    /// <param name="cancellationToken">Cancels the upload.</param>
    public async Task<OciBlobPushResult> PushBlobAsync(OciRepository repository, Stream content, string? digest = null, IProgress<OciTransferProgress>? progress = null, OciUploadMode mode = OciUploadMode.Auto, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(content);
        if (digest is not null)
        {
            OciDigest.Validate(digest, nameof(digest));
            if (await BlobSizeAsync(repository, digest, PushScope(repository.Name), cancellationToken).ConfigureAwait(false) is { } size)
            {
                Log.BlobExists(_logger, digest, repository.ToString());
                progress?.Report(new OciTransferProgress(Math.Max(size, 0), size >= 0 ? size : null));
                return new OciBlobPushResult(digest, size, AlreadyExisted: true, Chunked: false);
            }
        }

        long? length = content.CanSeek ? content.Length - content.Position : null;
        bool chunked = mode switch
        {
            OciUploadMode.Chunked => true,
            OciUploadMode.Monolithic => false,
            _ => length is { } l ? l >= _options.ChunkedUploadThreshold : (bool?)null,
        } ?? false;

        if (mode == OciUploadMode.Auto && length is null)
        {
            // Unknown length: read up to the threshold; if the stream ends first, it is small enough for one PUT.
            byte[] head = new byte[(int)Math.Min(_options.ChunkedUploadThreshold, Array.MaxLength)];
            int read = await content.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read < head.Length || head.Length == 0)
            {
                return await PushBlobAsync(repository, head.AsMemory(0, read), digest, progress, OciUploadMode.Monolithic, cancellationToken).ConfigureAwait(false);
            }

            using var prefixed = new PrefixedReadStream(head, content);
            return await UploadChunkedAsync(repository, prefixed, digest, null, progress, cancellationToken).ConfigureAwait(false);
        }

        if (!chunked)
        {
            if (length > Array.MaxLength)
            {
                throw new ArgumentException($"The stream holds {length} bytes, too many for a monolithic upload; use OciUploadMode.Chunked.", nameof(content));
            }

            var buffer = new MemoryStream(length is { } known ? (int)known : 0);
            await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return await PushBlobAsync(repository, buffer.GetBuffer().AsMemory(0, (int)buffer.Length), digest, progress, OciUploadMode.Monolithic, cancellationToken).ConfigureAwait(false);
        }

        return await UploadChunkedAsync(repository, content, digest, length, progress, cancellationToken).ConfigureAwait(false);
    }

    private async Task<Uri> StartUploadAsync(OciRepository repository, RetryState retry, CancellationToken cancellationToken)
    {
        var request = new OciRequest(repository.Registry, HttpMethod.Post, new Uri(BaseUrl(repository.Registry) + repository.Name + "/blobs/uploads/"), PushScope(repository.Name))
        {
            Content = () => new ByteArrayContent([]),
        };
        using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw await UnexpectedAsync(request, response, $"start a blob upload to {repository}", cancellationToken).ConfigureAwait(false);
        }

        return ResolveLocation(request, response, $"a blob upload to {repository}");
    }

    private async Task<OciBlobPushResult> UploadMonolithicAsync(OciRepository repository, ReadOnlyMemory<byte> content, string digest, IProgress<OciTransferProgress>? progress, CancellationToken cancellationToken)
    {
        var retry = new RetryState();
        for (int session = 0; ; session++)
        {
            // The registry ignores a body on "POST ?digest=", so: open a session, then PUT everything to it.
            Uri location = await StartUploadAsync(repository, retry, cancellationToken).ConfigureAwait(false);
            var request = new OciRequest(repository.Registry, HttpMethod.Put, AppendQuery(location, "digest", digest), PushScope(repository.Name))
            {
                Content = () => new ProgressContent(content, progress, 0, content.Length),
            };
            using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound && session == 0)
            {
                // A retried PUT finds its session gone: either the first attempt committed, or start again once.
                if (await BlobSizeAsync(repository, digest, PushScope(repository.Name), cancellationToken).ConfigureAwait(false) is not null)
                {
                    return new OciBlobPushResult(digest, content.Length, AlreadyExisted: false, Chunked: false);
                }

                continue;
            }

            await CheckCommittedAsync(request, response, repository, digest, cancellationToken).ConfigureAwait(false);
            Log.BlobPushed(_logger, digest, content.Length, repository.ToString(), "monolithic");
            return new OciBlobPushResult(digest, content.Length, AlreadyExisted: false, Chunked: false);
        }
    }

    private async Task<OciBlobPushResult> UploadChunkedAsync(OciRepository repository, Stream source, string? expectedDigest, long? total, IProgress<OciTransferProgress>? progress, CancellationToken cancellationToken)
    {
        var retry = new RetryState();
        Uri location = await StartUploadAsync(repository, retry, cancellationToken).ConfigureAwait(false);
        int chunkSize = _options.UploadChunkSize;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long offset = 0;
        try
        {
            while (true)
            {
                int filled = await source.ReadAtLeastAsync(buffer.AsMemory(0, chunkSize), chunkSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (filled == 0)
                {
                    break;
                }

                hash.AppendData(buffer, 0, filled);
                location = await PatchChunkAsync(repository, location, buffer.AsMemory(0, filled), offset, total, progress, retry, cancellationToken).ConfigureAwait(false);
                offset += filled;
                if (filled < chunkSize)
                {
                    break;
                }
            }
        }
        catch
        {
            await CancelUploadAsync(repository, location).ConfigureAwait(false);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        string digest = OciDigest.FromHash(hash.GetHashAndReset());
        if (expectedDigest is not null && !string.Equals(expectedDigest, digest, StringComparison.Ordinal))
        {
            await CancelUploadAsync(repository, location).ConfigureAwait(false);
            throw new OciDigestMismatchException($"The content pushed to {repository} hashes to {digest}, not to the declared {expectedDigest}; the upload was cancelled before it was committed.", expectedDigest, digest, repository.Registry);
        }

        var request = new OciRequest(repository.Registry, HttpMethod.Put, AppendQuery(location, "digest", digest), PushScope(repository.Name))
        {
            Content = () => new ByteArrayContent([]),
        };
        using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound &&
            await BlobSizeAsync(repository, digest, PushScope(repository.Name), cancellationToken).ConfigureAwait(false) is not null)
        {
            // A retried final PUT whose first attempt had committed.
            return new OciBlobPushResult(digest, offset, AlreadyExisted: false, Chunked: true);
        }

        await CheckCommittedAsync(request, response, repository, digest, cancellationToken).ConfigureAwait(false);
        Log.BlobPushed(_logger, digest, offset, repository.ToString(), "chunked");
        return new OciBlobPushResult(digest, offset, AlreadyExisted: false, Chunked: true);
    }

    /// <summary>Sends one chunk; after a failure, asks the registry how much it has and sends the rest.</summary>
    private async Task<Uri> PatchChunkAsync(OciRepository repository, Uri location, ReadOnlyMemory<byte> chunk, long offset, long? total, IProgress<OciTransferProgress>? progress, RetryState retry, CancellationToken cancellationToken)
    {
        int sent = 0;
        while (true)
        {
            ReadOnlyMemory<byte> rest = chunk[sent..];
            long start = offset + sent;
            long end = offset + chunk.Length - 1;
            var request = new OciRequest(repository.Registry, HttpMethod.Patch, location, PushScope(repository.Name))
            {
                AllowRetry = false,
                Content = () =>
                {
                    var content = new ProgressContent(rest, progress, start, total);
                    content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{end}");
                    return content;
                },
            };

            Exception? failure = null;
            FailedStatus? failedStatus = null;
            try
            {
                using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    retry.Failures = 0;
                    return ResolveLocation(request, response, $"a chunk of an upload to {repository}");
                }

                if (!IsTransientStatus(response.StatusCode))
                {
                    throw await UnexpectedAsync(request, response, $"upload bytes {start}-{end} to {repository}", cancellationToken).ConfigureAwait(false);
                }

                failedStatus = new FailedStatus(response.StatusCode, response.ReasonPhrase, await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false), RetryAfter(response));
            }
            catch (Exception ex) when (IsTransientFailure(ex, cancellationToken))
            {
                failure = ex;
            }

            await BackOffAsync(request, retry, failure, failedStatus, cancellationToken).ConfigureAwait(false);
            (long committed, location) = await UploadStatusAsync(repository, location, retry, cancellationToken).ConfigureAwait(false);
            if (committed < offset || committed > offset + chunk.Length)
            {
                throw new OciException(
                    $"The upload to {repository} cannot resume: the registry reports {committed} bytes received, but the chunk being sent covers bytes {offset}-{end}.",
                    repository.Registry);
            }

            sent = (int)(committed - offset);
            Log.UploadResumed(_logger, repository.ToString(), committed);
            if (sent == chunk.Length)
            {
                return location;
            }
        }
    }

    /// <summary>Asks an upload session how many bytes it holds (<c>GET</c> the upload URL: 204 with <c>Range: 0-&lt;last&gt;</c>).</summary>
    private async Task<(long Committed, Uri Location)> UploadStatusAsync(OciRepository repository, Uri location, RetryState retry, CancellationToken cancellationToken)
    {
        var request = new OciRequest(repository.Registry, HttpMethod.Get, location, PushScope(repository.Name));
        using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.OK or HttpStatusCode.Accepted))
        {
            throw await UnexpectedAsync(request, response, $"resume the upload to {repository}", cancellationToken).ConfigureAwait(false);
        }

        long committed = 0;
        string? range = HeaderValue(response, "Range");
        if (range is not null)
        {
            string value = range.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) ? range[6..] : range;
            int dash = value.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && long.TryParse(value[(dash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long last))
            {
                // "0-0" is ambiguous (empty, or one byte) in some registries: treat it as empty.
                committed = last == 0 ? 0 : last + 1;
            }
        }

        Uri next = response.Headers.Location is null ? location : ResolveLocation(request, response, $"the upload to {repository}");
        return (committed, next);
    }

    private async Task CheckCommittedAsync(OciRequest request, HttpResponseMessage response, OciRepository repository, string digest, CancellationToken cancellationToken)
    {
        if (response.StatusCode != HttpStatusCode.Created && !response.IsSuccessStatusCode)
        {
            throw await UnexpectedAsync(request, response, $"commit blob {digest} to {repository}", cancellationToken).ConfigureAwait(false);
        }

        string? stated = HeaderValue(response, "Docker-Content-Digest");
        if (stated is not null && stated.StartsWith(OciDigest.Sha256Prefix, StringComparison.Ordinal) && !string.Equals(stated, digest, StringComparison.Ordinal))
        {
            throw new OciDigestMismatchException($"Registry {repository.Registry} stored the blob pushed to {repository} as {stated}, but it hashes to {digest}.", digest, stated, repository.Registry);
        }
    }

    /// <summary>Best effort: tells the registry to drop an upload session.</summary>
    private async Task CancelUploadAsync(OciRepository repository, Uri location)
    {
        try
        {
            var request = new OciRequest(repository.Registry, HttpMethod.Delete, location, PushScope(repository.Name)) { AllowRetry = false };
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), TimeProvider);
            using HttpResponseMessage response = await SendAsync(request, new RetryState(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OciException or HttpRequestException or IOException or OperationCanceledException or TimeoutException)
        {
            // The registry expires abandoned sessions itself.
        }
    }

    /// <summary>
    /// Downloads a blob into <paramref name="destination"/>, verifying its sha256 while streaming. The bytes are staged in
    /// a temporary file (in <see cref="OciClientOptions.TempDirectory"/>) and copied to <paramref name="destination"/>
    /// only after they were verified, so on any error <paramref name="destination"/> has received nothing.
    /// Interrupted downloads resume with a <c>Range</c> request.
    /// </summary>
    /// <param name="repository">The repository.</param>
    /// <param name="digest">The blob's digest.</param>
    /// <param name="destination">Receives the verified bytes.</param>
    /// <param name="maxBytes">The most bytes accepted, or null for no limit.</param>
    /// <param name="progress">Receives bytes downloaded.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    /// <returns>The blob's size.</returns>
    /// <exception cref="OciNotFoundException">The blob or repository does not exist.</exception>
    /// <exception cref="OciDigestMismatchException">The bytes served do not hash to <paramref name="digest"/>.</exception>
    /// <exception cref="OciSizeLimitException">The blob is larger than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="OciRegistryUnavailableException">The registry went away and did not come back within the retries.</exception>
    public async Task<long> PullBlobAsync(OciRepository repository, string digest, Stream destination, long? maxBytes = null, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(destination);
        OciDigest.Validate(digest, nameof(digest));
        string directory = _options.TempDirectory ?? Path.GetTempPath();
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, $"warpgrid-oci-{Guid.NewGuid():N}.partial");
        var staging = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        await using (staging.ConfigureAwait(false))
        {
            long size = await DownloadAsync(repository, digest, staging, maxBytes, null, progress, cancellationToken).ConfigureAwait(false);
            staging.Position = 0;
            await staging.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
            return size;
        }
    }

    /// <summary>
    /// Downloads a blob to <paramref name="path"/>: into a temporary file next to it, verified, then renamed over it.
    /// On any error <paramref name="path"/> is untouched and the temporary file removed.
    /// </summary>
    /// <returns>The blob's size.</returns>
    public async Task<long> PullBlobToFileAsync(OciRepository repository, string digest, string path, long? maxBytes = null, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        OciDigest.Validate(digest, nameof(digest));
        string fullPath = Path.GetFullPath(path);
        string temp = fullPath + "." + Guid.NewGuid().ToString("N")[..8] + ".partial";
        try
        {
            long size;
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                size = await DownloadAsync(repository, digest, file, maxBytes, null, progress, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, fullPath, overwrite: true);
            return size;
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
                // best effort
            }

            throw;
        }
    }

    /// <summary>Downloads a blob into memory, verified; nothing is returned unless all of it hashes to <paramref name="digest"/>.</summary>
    /// <param name="repository">The repository.</param>
    /// <param name="digest">The blob's digest.</param>
    /// <param name="maxBytes">The most bytes accepted (required: the blob is held in memory).</param>
    /// <param name="progress">Receives bytes downloaded.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    public async Task<byte[]> PullBlobBytesAsync(OciRepository repository, string digest, long maxBytes, IProgress<OciTransferProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        OciDigest.Validate(digest, nameof(digest));
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxBytes, (long)Array.MaxLength);
        return await PullBlobBytesCoreAsync(repository, digest, maxBytes, null, progress, cancellationToken).ConfigureAwait(false);
    }

    internal async Task<byte[]> PullBlobBytesCoreAsync(OciRepository repository, string digest, long maxBytes, long? expectedSize, IProgress<OciTransferProgress>? progress, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream(expectedSize is { } size && size <= maxBytes ? (int)size : 0);
        await DownloadAsync(repository, digest, buffer, maxBytes, expectedSize, progress, cancellationToken).ConfigureAwait(false);
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    /// <summary>
    /// The download loop: streams the body into <paramref name="staging"/> (owned by the caller, seekable), hashing as it
    /// goes; resumes with Range after a broken connection, starts over when the registry ignores Range; verifies the digest
    /// at the end.
    /// </summary>
    private async Task<long> DownloadAsync(OciRepository repository, string digest, Stream staging, long? maxBytes, long? expectedSize, IProgress<OciTransferProgress>? progress, CancellationToken cancellationToken)
    {
        var retry = new RetryState();
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(DownloadBufferSize);
        long received = 0;
        try
        {
            while (true)
            {
                long resumeFrom = received;
                var request = new OciRequest(repository.Registry, HttpMethod.Get, BlobUri(repository, digest), PullScope(repository.Name))
                {
                    Configure = resumeFrom > 0 ? m => m.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(resumeFrom, null) : null,
                };

                using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.NotFound)
                {
                    IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
                    string subject = errors.Any(e => e.Code == "NAME_UNKNOWN") ? $"repository {repository} does not exist" : $"blob {digest} not found in {repository}";
                    throw new OciNotFoundException($"OCI blob not found: {subject}{ErrorsText(errors)}.", repository.Registry, errors);
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw await UnexpectedAsync(request, response, $"download blob {digest} from {repository}", cancellationToken).ConfigureAwait(false);
                }

                if (resumeFrom > 0 && !(response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == resumeFrom))
                {
                    Log.DownloadRestarted(_logger, repository.Registry, digest, resumeFrom);
                    hash.GetHashAndReset();
                    staging.SetLength(0);
                    staging.Position = 0;
                    received = 0;
                    resumeFrom = 0;
                }

                long? length = response.Content.Headers.ContentLength;
                long? total = length is { } l ? resumeFrom + l : expectedSize;
                if (maxBytes is { } max && total > max)
                {
                    throw new OciSizeLimitException(
                        $"Blob {digest} in {repository} is {total} bytes, more than the limit of {max} bytes; it was not downloaded.",
                        max, total, repository.Registry);
                }

                if (staging is MemoryStream memory && total is { } expectedTotal && expectedTotal > memory.Capacity && expectedTotal <= (maxBytes ?? Array.MaxLength))
                {
                    memory.Capacity = (int)expectedTotal; // one allocation instead of doubling copies
                }

                Exception? failure = null;
                Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    using var idle = new IdleTimeout(_options.ReadIdleTimeout, TimeProvider, cancellationToken);
                    while (true)
                    {
                        int n;
                        try
                        {
                            n = await idle.ReadAsync(body, buffer.AsMemory(0, DownloadBufferSize)).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (IsTransientFailure(ex, cancellationToken))
                        {
                            failure = ex;
                            break;
                        }

                        if (n == 0)
                        {
                            if (length is { } expected && received - resumeFrom < expected)
                            {
                                failure = new IOException($"The response ended after {received - resumeFrom} of {expected} bytes.");
                            }

                            break;
                        }

                        if (maxBytes is { } limit && received + n > limit)
                        {
                            throw new OciSizeLimitException(
                                $"Blob {digest} in {repository} is larger than the limit of {limit} bytes; the download was stopped.",
                                limit, received + n, repository.Registry);
                        }

                        hash.AppendData(buffer, 0, n);
                        await staging.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                        received += n;
                        retry.Failures = 0;
                        progress?.Report(new OciTransferProgress(received, total));
                    }
                }

                if (failure is null)
                {
                    break;
                }

                await BackOffAsync(request, retry, failure, null, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        string actual = OciDigest.FromHash(hash.GetHashAndReset());
        if (!string.Equals(actual, digest, StringComparison.Ordinal))
        {
            Log.DigestMismatch(_logger, digest, repository.ToString(), actual);
            throw new OciDigestMismatchException(
                $"Blob {digest} from {repository} is corrupt or was tampered with: its {received} bytes hash to {actual}, not to {digest}. Nothing was kept.",
                digest, actual, repository.Registry);
        }

        Log.BlobPulled(_logger, digest, received, repository.ToString());
        return received;
    }
}
