namespace WarpGrid.Core.Oci;

/// <summary>A user name and password (or token) for one registry.</summary>
public sealed class OciCredential
{
    /// <summary>Creates an empty credential (for configuration binding).</summary>
    public OciCredential()
    {
    }

    /// <summary>Creates a credential.</summary>
    public OciCredential(string username, string password)
    {
        Username = username;
        Password = password;
    }

    /// <summary>The user name.</summary>
    public string Username { get; set; } = "";

    /// <summary>The password or access token.</summary>
    public string Password { get; set; } = "";

    /// <summary>Never prints the password.</summary>
    public override string ToString() => $"{Username}:***";
}

/// <summary>Supplies credentials per registry host (for example from a credential store or a secret manager).</summary>
public interface IOciCredentialProvider
{
    /// <summary>Returns the credential for <paramref name="registry"/> (<c>host[:port]</c>), or null for anonymous access.</summary>
    ValueTask<OciCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken);
}

/// <summary>How a blob is uploaded.</summary>
public enum OciUploadMode
{
    /// <summary>Monolithic below <see cref="OciClientOptions.ChunkedUploadThreshold"/>, chunked from there on.</summary>
    Auto,

    /// <summary>POST to open an upload session, then one PUT with the whole content.</summary>
    Monolithic,

    /// <summary>POST, PATCH chunks of <see cref="OciClientOptions.UploadChunkSize"/> with <c>Content-Range</c>, then a final PUT.</summary>
    Chunked,
}

/// <summary>Settings of <see cref="OciRegistryClient"/>. Bind from configuration or set in code; checked when the client is created.</summary>
public sealed class OciClientOptions
{
    /// <summary>Credentials by registry host (<c>host[:port]</c>, case-insensitive). Used for Basic auth and for the token service of Bearer auth.</summary>
    public Dictionary<string, OciCredential> Credentials { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Consulted when <see cref="Credentials"/> has no entry for a registry.</summary>
    public IOciCredentialProvider? CredentialProvider { get; set; }

    /// <summary>
    /// Registries (<c>host[:port]</c>) reached over plain http. Loopback hosts (<c>localhost</c>, <c>127.0.0.1</c>,
    /// <c>[::1]</c>) always use http; every other registry uses https unless it is listed here.
    /// </summary>
    public HashSet<string> InsecureRegistries { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Retries after a connection failure, a stalled body, 429 or 5xx, in a row without progress (0–10, default 3). Other 4xx are never retried.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The first backoff delay; it doubles each retry, with ±50% jitter (default 250 ms).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between attempts, including one asked for by <c>Retry-After</c> (default 30 s).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Blobs at least this large are uploaded in chunks when the mode is <see cref="OciUploadMode.Auto"/> (default 16 MiB).</summary>
    public long ChunkedUploadThreshold { get; set; } = 16L * 1024 * 1024;

    /// <summary>The size of each PATCH in a chunked upload (64 KiB–1 GiB, default 8 MiB). Each chunk is held in memory once.</summary>
    public int UploadChunkSize { get; set; } = 8 * 1024 * 1024;

    /// <summary>The largest manifest accepted (default 4 MiB, the size registries are required to accept).</summary>
    public int MaxManifestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>A response body that delivers no data for this long is treated as a connection failure (default 60 s).</summary>
    public TimeSpan ReadIdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Page size asked for when listing tags (the <c>n</c> parameter); 0 lets the registry choose.</summary>
    public int TagsPageSize { get; set; }

    /// <summary>Where blobs pulled into a caller's stream are staged until verified; the system temp directory when null.</summary>
    public string? TempDirectory { get; set; }

    /// <summary>The <c>User-Agent</c> header.</summary>
    public string UserAgent { get; set; } = "WarpGrid-OciClient/0.1";

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        static void Check(bool ok, string setting, string rule)
        {
            if (!ok)
            {
                throw new ArgumentException($"OciClientOptions.{setting} {rule}.", setting);
            }
        }

        Check(Credentials is not null, nameof(Credentials), "must not be null");
        Check(InsecureRegistries is not null, nameof(InsecureRegistries), "must not be null");
        Check(MaxRetries is >= 0 and <= 10, nameof(MaxRetries), $"must be between 0 and 10 (is {MaxRetries})");
        Check(RetryBaseDelay >= TimeSpan.Zero && RetryBaseDelay <= TimeSpan.FromMinutes(1), nameof(RetryBaseDelay), $"must be between 0 and 1 minute (is {RetryBaseDelay})");
        Check(MaxRetryDelay >= RetryBaseDelay && MaxRetryDelay <= TimeSpan.FromMinutes(10), nameof(MaxRetryDelay), $"must be between RetryBaseDelay and 10 minutes (is {MaxRetryDelay})");
        Check(ChunkedUploadThreshold >= 0, nameof(ChunkedUploadThreshold), $"must not be negative (is {ChunkedUploadThreshold})");
        Check(UploadChunkSize is >= 64 * 1024 and <= 1024 * 1024 * 1024, nameof(UploadChunkSize), $"must be between 64 KiB and 1 GiB (is {UploadChunkSize})");
        Check(MaxManifestBytes is >= 1024 and <= 64 * 1024 * 1024, nameof(MaxManifestBytes), $"must be between 1 KiB and 64 MiB (is {MaxManifestBytes})");
        Check(ReadIdleTimeout > TimeSpan.Zero || ReadIdleTimeout == Timeout.InfiniteTimeSpan, nameof(ReadIdleTimeout), $"must be positive or infinite (is {ReadIdleTimeout})");
        Check(TagsPageSize >= 0, nameof(TagsPageSize), $"must not be negative (is {TagsPageSize})");
        Check(!string.IsNullOrWhiteSpace(UserAgent), nameof(UserAgent), "must not be empty");
        foreach (KeyValuePair<string, OciCredential> entry in Credentials!)
        {
            Check(entry.Value is not null && !string.IsNullOrEmpty(entry.Value.Username), $"{nameof(Credentials)}[{entry.Key}]", "must have a Username");
        }
    }

    internal bool UsesPlainHttp(string registry) =>
        OciReference.IsLoopbackRegistry(registry) || InsecureRegistries.Contains(registry) ||
        InsecureRegistries.Contains(OciReference.HostWithoutPort(registry));
}
