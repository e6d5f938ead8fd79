using System.Net;

namespace WarpGrid.Core.Oci;

/// <summary>One entry of a registry's JSON error body (<c>{"errors":[{"code","message","detail"}]}</c>).</summary>
/// <param name="Code">The error code, such as <c>MANIFEST_UNKNOWN</c>.</param>
/// <param name="Message">The registry's message.</param>
/// <param name="Detail">The raw JSON of <c>detail</c>, if any.</param>
public sealed record OciError(string Code, string Message, string? Detail)
{
    /// <summary><c>CODE: message</c>.</summary>
    public override string ToString() => string.IsNullOrEmpty(Code) ? Message : string.IsNullOrEmpty(Message) ? Code : Code + ": " + Message;
}

/// <summary>Base of the errors raised by the OCI client. The message names the registry and the cause.</summary>
public class OciException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OciException(string message, string? registry = null, HttpStatusCode? statusCode = null, IReadOnlyList<OciError>? errors = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Registry = registry;
        StatusCode = statusCode;
        Errors = errors ?? [];
    }

    /// <summary>The registry (<c>host[:port]</c>) involved, when there is one.</summary>
    public string? Registry { get; }

    /// <summary>The HTTP status the registry answered with, when there was an answer.</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>The errors from the registry's JSON error body (empty when it sent none).</summary>
    public IReadOnlyList<OciError> Errors { get; }
}

/// <summary>A manifest, tag, blob or repository does not exist (HTTP 404, <c>MANIFEST_UNKNOWN</c>, <c>NAME_UNKNOWN</c>, <c>BLOB_UNKNOWN</c>).</summary>
public sealed class OciNotFoundException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciNotFoundException(string message, string? registry, IReadOnlyList<OciError>? errors = null)
        : base(message, registry, HttpStatusCode.NotFound, errors)
    {
    }
}

/// <summary>
/// The registry (or its token service) refused the request: credentials missing or wrong (401), or not allowed (403).
/// </summary>
public sealed class OciAuthenticationException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciAuthenticationException(string message, string registry, HttpStatusCode? statusCode = null, IReadOnlyList<OciError>? errors = null)
        : base(message, registry, statusCode, errors)
    {
    }
}

/// <summary>
/// Content does not hash to the digest it was asked for or declared with. Nothing of it has been handed to the caller.
/// </summary>
public sealed class OciDigestMismatchException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciDigestMismatchException(string message, string expectedDigest, string actualDigest, string? registry = null)
        : base(message, registry)
    {
        ExpectedDigest = expectedDigest;
        ActualDigest = actualDigest;
    }

    /// <summary>The digest the content should have.</summary>
    public string ExpectedDigest { get; }

    /// <summary>The digest of the content actually received or read.</summary>
    public string ActualDigest { get; }
}

/// <summary>Content is (or declares itself) larger than the limit the caller set; the transfer was stopped.</summary>
public sealed class OciSizeLimitException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciSizeLimitException(string message, long limitBytes, long? actualBytes, string? registry = null)
        : base(message, registry)
    {
        LimitBytes = limitBytes;
        ActualBytes = actualBytes;
    }

    /// <summary>The limit.</summary>
    public long LimitBytes { get; }

    /// <summary>The declared or observed size that exceeded it (a lower bound when the transfer was cut off).</summary>
    public long? ActualBytes { get; }
}

/// <summary>
/// The registry could not be reached, or kept answering 429/5xx, after the configured retries
/// (<see cref="OciClientOptions.MaxRetries"/>).
/// </summary>
public sealed class OciRegistryUnavailableException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciRegistryUnavailableException(string message, string registry, int attempts, HttpStatusCode? statusCode = null, IReadOnlyList<OciError>? errors = null, Exception? innerException = null)
        : base(message, registry, statusCode, errors, innerException)
    {
        Attempts = attempts;
    }

    /// <summary>How many attempts were made in a row without progress.</summary>
    public int Attempts { get; }
}

/// <summary>
/// An artifact is not what was asked for: not a CNCF Wasm artifact (config media type, layers), a layer that is not
/// WebAssembly, or a manifest or image layout that is not valid JSON of the expected shape.
/// </summary>
public sealed class OciInvalidArtifactException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciInvalidArtifactException(string message, string? registry = null, Exception? innerException = null)
        : base(message, registry, null, null, innerException)
    {
    }
}

/// <summary>
/// Credentials could not be obtained: the Docker config is unreadable or malformed, or a credential helper is missing,
/// failed or did not answer in time. The message names the file or the helper, never a secret.
/// </summary>
public sealed class OciCredentialException : OciException
{
    /// <summary>Creates the exception.</summary>
    public OciCredentialException(string message, string? registry = null, Exception? innerException = null)
        : base(message, registry, null, null, innerException)
    {
    }
}
