using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Clustering;

/// <summary>
/// A join token: <c>wg1.&lt;id&gt;.&lt;secret&gt;.&lt;ca-hash&gt;</c>. The id names the token in the store, the secret
/// authorises a join (the store keeps only its SHA-256), and the CA hash (hex SHA-256 of the CA's SubjectPublicKeyInfo)
/// lets the agent check that it talks to the right control plane before it sends the secret — like kubeadm's
/// <c>--token</c> plus <c>--discovery-token-ca-cert-hash</c> in one string.
/// </summary>
/// <param name="Id">6 lowercase letters or digits.</param>
/// <param name="Secret">16 lowercase letters or digits.</param>
/// <param name="CaHash">64 lowercase hex digits.</param>
public sealed record JoinToken(string Id, string Secret, string CaHash)
{
    /// <summary>The prefix of every token.</summary>
    public const string Prefix = "wg1";

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>Creates a fresh random token for the CA with hash <paramref name="caHash"/>.</summary>
    public static JoinToken Create(string caHash)
    {
        ArgumentException.ThrowIfNullOrEmpty(caHash);
        return new JoinToken(RandomNumberGenerator.GetString(Alphabet, 6), RandomNumberGenerator.GetString(Alphabet, 16), caHash);
    }

    /// <summary>Parses a token; the error names what is wrong (never echoes the secret).</summary>
    public static bool TryParse(string? text, out JoinToken? token, out string? error)
    {
        token = null;
        error = null;
        var parts = (text ?? string.Empty).Trim().Split('.');
        if (parts.Length != 4 || parts[0] != Prefix)
        {
            error = "a join token has the form wg1.<id>.<secret>.<ca-hash> (print one on the control plane with: warp tokens create)";
            return false;
        }

        if (parts[1].Length != 6 || !parts[1].All(Alphabet.Contains))
        {
            error = "the join token's id must be 6 lowercase letters or digits";
            return false;
        }

        if (parts[2].Length != 16 || !parts[2].All(Alphabet.Contains))
        {
            error = "the join token's secret must be 16 lowercase letters or digits";
            return false;
        }

        if (parts[3].Length != 64 || !parts[3].All(Uri.IsHexDigit))
        {
            error = "the join token's CA hash must be 64 hex digits (SHA-256)";
            return false;
        }

        token = new JoinToken(parts[1], parts[2], parts[3].ToLowerInvariant());
        return true;
    }

    /// <summary>The SHA-256 of the secret, as kept in the store.</summary>
    public string SecretHash => HashSecret(Secret);

    internal static string HashSecret(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <inheritdoc />
    public override string ToString() => $"{Prefix}.{Id}.{Secret}.{CaHash}";
}

/// <summary>A join token as kept in the store under <c>cluster/tokens/&lt;id&gt;</c>: only the secret's hash.</summary>
public sealed record JoinTokenRecord
{
    /// <summary>The store key prefix.</summary>
    public const string KeyPrefix = "cluster/tokens/";

    /// <summary>The token id.</summary>
    public required string Id { get; init; }

    /// <summary>Hex SHA-256 of the secret.</summary>
    public required string SecretHash { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it stops being accepted.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>A free-text note.</summary>
    public string? Description { get; init; }

    /// <summary>Joins it still allows; null = any number until it expires.</summary>
    public int? UsesRemaining { get; init; }

    internal byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, ClusterJson.Default.JoinTokenRecord);

    internal static JoinTokenRecord FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, ClusterJson.Default.JoinTokenRecord) ?? throw new InvalidDataException("empty token record");
}

/// <summary>Creates and checks join tokens kept in an <see cref="IClusterStore"/>.</summary>
public sealed class JoinTokenStore
{
    private readonly IClusterStore _store;
    private readonly TimeProvider _time;

    /// <summary>Creates the token store over <paramref name="store"/>.</summary>
    public JoinTokenStore(IClusterStore store, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates a token valid for <paramref name="lifetime"/> and stores its hash.</summary>
    public async Task<(JoinToken Token, JoinTokenRecord Record)> CreateAsync(string caHash, TimeSpan lifetime, string? description = null, CancellationToken cancellationToken = default, int? uses = null)
    {
        if (lifetime <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(lifetime), lifetime, "a token lifetime must be positive");
        }

        if (uses is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(uses), uses, "a token's usage limit must be positive");
        }

        var token = JoinToken.Create(caHash);
        var now = _time.GetUtcNow();
        var record = new JoinTokenRecord { Id = token.Id, SecretHash = token.SecretHash, CreatedAt = now, ExpiresAt = now + lifetime, Description = description, UsesRemaining = uses };
        await _store.PutAsync(JoinTokenRecord.KeyPrefix + token.Id, record.ToBytes(), expectedModRevision: 0, cancellationToken).ConfigureAwait(false);
        return (token, record);
    }

    /// <summary>Every stored token (hashes only).</summary>
    public async Task<IReadOnlyList<JoinTokenRecord>> ListAsync(CancellationToken cancellationToken = default)
    {
        var entries = await _store.ListAsync(JoinTokenRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
        return [.. entries.Select(e => JoinTokenRecord.FromBytes(e.Value.Span))];
    }

    /// <summary>Deletes a token; false when it did not exist.</summary>
    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return await _store.DeleteAsync(JoinTokenRecord.KeyPrefix + id, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Checks a token presented by a joining agent: well formed, pinned to <paramref name="caHash"/>, known, secret
    /// matching (constant time) and not expired. Returns null when accepted, else the reason.
    /// </summary>
    public async Task<string?> ValidateAsync(string? text, string caHash, CancellationToken cancellationToken = default)
    {
        if (!JoinToken.TryParse(text, out var token, out var error))
        {
            return error;
        }

        if (!string.Equals(token!.CaHash, caHash, StringComparison.Ordinal))
        {
            return "the join token was made for another cluster CA";
        }

        var entry = await _store.GetAsync(JoinTokenRecord.KeyPrefix + token.Id, cancellationToken).ConfigureAwait(false);
        if (entry is null)
        {
            return $"join token {token.Id} is unknown (deleted, or made for another cluster)";
        }

        var record = JoinTokenRecord.FromBytes(entry.Value.Span);
        var presented = Encoding.ASCII.GetBytes(token.SecretHash);
        var expected = Encoding.ASCII.GetBytes(record.SecretHash);
        if (!CryptographicOperations.FixedTimeEquals(presented, expected))
        {
            return $"join token {token.Id}: wrong secret";
        }

        if (record.ExpiresAt <= _time.GetUtcNow())
        {
            return $"join token {token.Id} expired at {record.ExpiresAt:O}; create another with: warp tokens create";
        }

        if (record.UsesRemaining is { } remaining)
        {
            if (remaining <= 0)
            {
                return $"join token {token.Id} has been used as often as it allows; create another with: warp tokens create";
            }

            // Spend one use with compare-and-set, so two joins racing for the last use cannot both win.
            var spent = record with { UsesRemaining = remaining - 1 };
            try
            {
                await _store.PutAsync(JoinTokenRecord.KeyPrefix + token.Id, spent.ToBytes(), entry.ModRevision, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreConflictException)
            {
                return await ValidateAsync(text, caHash, cancellationToken).ConfigureAwait(false);
            }
        }

        return null;
    }
}

[JsonSerializable(typeof(JoinTokenRecord))]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(AllocationRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
internal sealed partial class ClusterJson : JsonSerializerContext;
