namespace WarpGrid.Core.Oci;

/// <summary>Progress of a blob transfer.</summary>
/// <param name="BytesTransferred">Bytes sent or received so far (after a resumed transfer restarts, it counts from 0 again).</param>
/// <param name="TotalBytes">The total when known.</param>
public readonly record struct OciTransferProgress(long BytesTransferred, long? TotalBytes);

/// <summary>The outcome of <see cref="OciRegistryClient.PushBlobAsync(OciRepository, Stream, string?, IProgress{OciTransferProgress}?, OciUploadMode, CancellationToken)"/>.</summary>
/// <param name="Digest">The blob's digest.</param>
/// <param name="Size">The blob's size in bytes.</param>
/// <param name="AlreadyExisted">True when the registry had the blob and nothing was uploaded.</param>
/// <param name="Chunked">True when it was uploaded in chunks.</param>
public sealed record OciBlobPushResult(string Digest, long Size, bool AlreadyExisted, bool Chunked);

/// <summary>A manifest as fetched: its exact bytes, media type and digest.</summary>
/// <param name="Content">The bytes, exactly as served (the digest is over these bytes).</param>
/// <param name="MediaType">The media type (the <c>Content-Type</c> the registry sent, else the manifest's <c>mediaType</c> field).</param>
/// <param name="Digest">The sha256 digest of <paramref name="Content"/>, computed by the client.</param>
public sealed record OciManifestResult(byte[] Content, string MediaType, string Digest);
