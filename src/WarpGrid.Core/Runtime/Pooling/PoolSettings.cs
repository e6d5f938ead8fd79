namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>How a deployment's instance pool behaves; derived from its manifest.</summary>
public sealed record PoolSettings
{
    /// <summary>The deployment name (used in instance ids and logs).</summary>
    public required string Deployment { get; init; }

    /// <summary>The deployment version (for logs).</summary>
    public string Version { get; init; } = "0.1.0";

    /// <summary>Instances kept ready even when idle.</summary>
    public int MinInstances { get; init; } = 1;

    /// <summary>Most instances running at once; one request per instance at a time.</summary>
    public int MaxInstances { get; init; } = 10;

    /// <summary>Deadline of one request; past it the guest is interrupted and the client gets 504.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest linear memory of one instance.</summary>
    public long MemoryLimitBytes { get; init; } = 128L << 20;

    /// <summary>Environment variables given to every invocation before the request's own.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; init; } = [];

    /// <summary>Whether the guest may use the log import (<c>[capabilities] logging</c>); default true.</summary>
    public bool Logging { get; init; } = true;

    /// <summary>Requests that may wait for a free instance when all are busy; past it requests get 503.</summary>
    public int QueueLimit { get; init; } = 256;

    /// <summary>How long a request may wait for a free instance before it gets 503.</summary>
    public TimeSpan QueueTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
