using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Storage;
using WarpGrid.Raft;

namespace WarpGrid.Hosting.Cluster;

/// <summary>Control-plane leadership of a member of a Raft-replicated control plane: the Raft leader leads.</summary>
internal sealed class RaftControlPlaneLeadership : IControlPlaneLeadership, IDisposable
{
    private readonly RaftClusterStore _store;

    public RaftControlPlaneLeadership(RaftClusterStore store)
    {
        _store = store;
        _store.LeaderChanged += OnLeaderChanged;
    }

    public bool IsLeader => _store.IsLeader;

    public event Action? Changed;

    private void OnLeaderChanged(string? leader) => Changed?.Invoke();

    public void Dispose() => _store.LeaderChanged -= OnLeaderChanged;
}

/// <summary>
/// The agent URLs of the members of an HA control plane, kept in the replicated store under
/// <c>controlplane/members/&lt;raft address&gt;</c> (each member writes its own at start), so that any member can tell
/// agents where every member — and the leader — is. Reads are cached for a few seconds (heartbeats ask often).
/// </summary>
internal sealed partial class ControlPlaneMembers(IClusterStore store, RaftClusterStore? raft, TimeProvider time, ILogger<ControlPlaneMembers> logger)
{
    public const string KeyPrefix = "controlplane/members/";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(3);
    private readonly Lock _lock = new();
    private IReadOnlyDictionary<string, string> _cached = new Dictionary<string, string>();
    private DateTimeOffset _cachedAt = DateTimeOffset.MinValue;

    /// <summary>Whether this is a member of a replicated control plane (otherwise there is nothing to tell agents).</summary>
    public bool Replicated => raft is not null;

    /// <summary>Writes this member's agent URL (retrying until the store answers or <paramref name="cancellationToken"/> fires).</summary>
    public async Task PublishAsync(string url, CancellationToken cancellationToken)
    {
        if (raft is null)
        {
            return;
        }

        var key = KeyPrefix + raft.LocalAddress;
        var value = JsonSerializer.SerializeToUtf8Bytes(new MemberEntry(url));
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (await store.GetAsync(key, cancellationToken).ConfigureAwait(false) is { } existing && existing.Value.Span.SequenceEqual(value))
                {
                    return;
                }

                await store.PutAsync(key, value, cancellationToken: cancellationToken).ConfigureAwait(false);
                Log.Published(logger, raft.LocalAddress, url);
                return;
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                Log.PublishRetry(logger, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Raft address → agent URL of every member that published one.</summary>
    public async Task<IReadOnlyDictionary<string, string>> AllAsync(CancellationToken cancellationToken)
    {
        if (raft is null)
        {
            return new Dictionary<string, string>();
        }

        lock (_lock)
        {
            if (time.GetUtcNow() - _cachedAt < CacheFor)
            {
                return _cached;
            }
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in await store.ListAsync(KeyPrefix, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (JsonSerializer.Deserialize<MemberEntry>(entry.Value.Span) is { Url: { Length: > 0 } url })
                {
                    result[entry.Key[KeyPrefix.Length..]] = url;
                }
            }
            catch (JsonException)
            {
                // an unreadable entry is skipped
            }
        }

        lock (_lock)
        {
            _cached = result;
            _cachedAt = time.GetUtcNow();
        }

        return result;
    }

    /// <summary>The leader's agent URL, when there is a leader and it published one.</summary>
    public async Task<string?> LeaderUrlAsync(CancellationToken cancellationToken)
    {
        if (raft?.Leader is not { } leader)
        {
            return null;
        }

        try
        {
            var all = await AllAsync(cancellationToken).ConfigureAwait(false);
            return all.TryGetValue(leader, out var url) ? url : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private sealed record MemberEntry(string Url);

    private static partial class Log
    {
        [LoggerMessage(EventId = 250, Level = LogLevel.Information, Message = "Control-plane member {Member} serves agents at {Url}")]
        public static partial void Published(ILogger logger, string member, string url);

        [LoggerMessage(EventId = 251, Level = LogLevel.Debug, Message = "Publishing this member's agent URL failed (attempt {Attempt}), retrying: {Reason}")]
        public static partial void PublishRetry(ILogger logger, int attempt, string reason);
    }
}

/// <summary>
/// The blob store of a member of an HA control plane: module bytes given to this member (a deployment applied
/// through its API) are also written to the replicated store under <c>modules/&lt;digest&gt;</c> (up to
/// <see cref="MaxReplicatedBytes"/>), so an agent can fetch them from whichever member leads later, even after the
/// member that received them died. Reads fall back to the replicated copy (verified, then cached locally).
/// </summary>
internal sealed partial class ReplicatedModuleStore(IBlobStore local, IClusterStore store, ILogger<ReplicatedModuleStore> logger) : IBlobStore
{
    public const string KeyPrefix = "modules/";

    /// <summary>Largest module replicated through the store (larger ones stay on the member that received them; deploy those by OCI reference).</summary>
    public const int MaxReplicatedBytes = 16 << 20;

    public async ValueTask<string> PutAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        var digest = await local.PutAsync(bytes, cancellationToken).ConfigureAwait(false);
        await ReplicateAsync(digest, bytes, cancellationToken).ConfigureAwait(false);
        return digest;
    }

    public async ValueTask<string> PutAsync(Stream content, long? maxBytes = null, CancellationToken cancellationToken = default)
    {
        var digest = await local.PutAsync(content, maxBytes, cancellationToken).ConfigureAwait(false);
        if (new FileInfo(local.GetPath(digest)) is { Exists: true, Length: <= MaxReplicatedBytes } && await local.ReadAsync(digest, cancellationToken).ConfigureAwait(false) is { } bytes)
        {
            await ReplicateAsync(digest, bytes, cancellationToken).ConfigureAwait(false);
        }

        return digest;
    }

    private async Task ReplicateAsync(string digest, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (bytes.Length > MaxReplicatedBytes)
        {
            Log.TooLarge(logger, digest, bytes.Length, MaxReplicatedBytes);
            return;
        }

        if (await store.GetAsync(KeyPrefix + digest, cancellationToken).ConfigureAwait(false) is null)
        {
            await store.PutAsync(KeyPrefix + digest, bytes, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public bool Exists(string digest) => local.Exists(digest);

    public async ValueTask<byte[]?> ReadAsync(string digest, CancellationToken cancellationToken = default)
    {
        if (await local.ReadAsync(digest, cancellationToken).ConfigureAwait(false) is { } bytes)
        {
            return bytes;
        }

        if (await store.GetAsync(KeyPrefix + digest, cancellationToken).ConfigureAwait(false) is not { } entry)
        {
            return null;
        }

        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(entry.Value.Span));
        if (!string.Equals(actual, digest, StringComparison.Ordinal))
        {
            throw new BlobCorruptedException(digest, KeyPrefix + digest + " (replicated store)", actual);
        }

        await local.PutAsync(entry.Value, cancellationToken).ConfigureAwait(false);
        return entry.Value.ToArray();
    }

    public string GetPath(string digest) => local.GetPath(digest);

    public ValueTask<bool> DeleteAsync(string digest, CancellationToken cancellationToken = default) => local.DeleteAsync(digest, cancellationToken);

    public IEnumerable<string> List() => local.List();

    private static partial class Log
    {
        [LoggerMessage(EventId = 252, Level = LogLevel.Warning, Message = "Module {Digest} ({Bytes} bytes) is larger than {Max} bytes: not replicated to the other control-plane members (deploy it by OCI reference)")]
        public static partial void TooLarge(ILogger logger, string digest, int bytes, int max);
    }
}
