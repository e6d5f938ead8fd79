using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Security;

/// <summary>Thrown for an access-control change that is refused (bad name, missing subject, escalation).</summary>
public sealed class AccessControlException(string field, string message, int status = 400) : Exception(message)
{
    /// <summary>The field at fault.</summary>
    public string Field { get; } = field;

    /// <summary>The HTTP status that fits (400, 403, 404, 409).</summary>
    public int Status { get; } = status;
}

/// <summary>
/// The cluster's identities and permissions, kept in the <see cref="IClusterStore"/> under <c>auth/</c> (replicated
/// with the rest of the cluster state): service accounts and their tokens (hashed), roles, role bindings, namespaces
/// and revoked certificates. Reads are served from an in-memory snapshot that a store watch keeps current; a token
/// not in the snapshot yet (just created on another member) is read from the store.
/// </summary>
public sealed partial class AccessControl : IAsyncDisposable
{
    private const string Prefix = "auth/";
    private readonly IClusterStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _loadLock = new(1, 1);
    private volatile Snapshot? _snapshot;
    private Task? _watch;

    /// <summary>Creates the access control over <paramref name="store"/>.</summary>
    public AccessControl(IClusterStore store, TimeProvider? timeProvider = null, ILogger<AccessControl>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Loads the snapshot (once) and starts following changes.</summary>
    public async ValueTask EnsureLoadedAsync(CancellationToken cancellationToken = default)
    {
        if (_snapshot is not null)
        {
            return;
        }

        await _loadLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_snapshot is not null)
            {
                return;
            }

            var revision = _store.Revision;
            var entries = await _store.ListAsync(Prefix, cancellationToken).ConfigureAwait(false);
            var map = entries.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            _snapshot = Snapshot.Build(map, _logger);
            _watch ??= Task.Run(() => WatchAsync(map, revision, _stop.Token), CancellationToken.None);
        }
        finally
        {
            _loadLock.Release();
        }
    }

    private async Task WatchAsync(Dictionary<string, ReadOnlyMemory<byte>> map, long revision, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var change in _store.WatchAsync(Prefix, revision, cancellationToken).ConfigureAwait(false))
                {
                    revision = Math.Max(revision, change.Entry.ModRevision);
                    if (change.Kind == StoreEventKind.Delete)
                    {
                        map.Remove(change.Entry.Key);
                    }
                    else
                    {
                        map[change.Entry.Key] = change.Entry.Value.ToArray();
                    }

                    _snapshot = Snapshot.Build(map, _logger);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A watch that fell behind compaction or lost its store: list again.
                Log.WatchRestart(_logger, ex.Message);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), _time, cancellationToken).ConfigureAwait(false);
                    revision = _store.Revision;
                    var entries = await _store.ListAsync(Prefix, cancellationToken).ConfigureAwait(false);
                    map = entries.ToDictionary(e => e.Key, e => (ReadOnlyMemory<byte>)e.Value.ToArray(), StringComparer.Ordinal);
                    _snapshot = Snapshot.Build(map, _logger);
                }
                catch (Exception again) when (again is not OperationCanceledException)
                {
                    Log.WatchRestart(_logger, again.Message);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async ValueTask<Snapshot> CurrentAsync(CancellationToken cancellationToken)
    {
        if (_snapshot is { } s)
        {
            return s;
        }

        await EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
        return _snapshot!;
    }

    /// <summary>
    /// Checks a bearer token: well formed, known, secret matching (constant time), not expired, its service account
    /// present. Returns the identity, or the reason it is refused (never containing the secret).
    /// </summary>
    public async ValueTask<(WarpIdentity? Identity, string? Refusal)> AuthenticateTokenAsync(string? bearer, CancellationToken cancellationToken = default)
    {
        if (!ApiToken.TryParse(bearer, out var token))
        {
            return (null, "the bearer token is not a WarpGrid token (wgt.<id>.<secret>)");
        }

        var snapshot = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        if (!snapshot.Tokens.TryGetValue(token!.Id, out var record))
        {
            var entry = await _store.GetAsync(ApiTokenRecord.KeyPrefix + token.Id, cancellationToken).ConfigureAwait(false);
            if (entry is null)
            {
                return (null, $"token {token.Id} is unknown or revoked");
            }

            record = SecurityJson.Read<ApiTokenRecord>(entry.Value.Span);
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(token.SecretHash), Encoding.ASCII.GetBytes(record.SecretHash)))
        {
            return (null, $"token {token.Id}: wrong secret");
        }

        if (record.ExpiresAt is { } expires && expires <= _time.GetUtcNow())
        {
            return (null, $"token {token.Id} expired at {expires:O}");
        }

        return (new WarpIdentity(WarpIdentity.ServiceAccountKind, $"{record.Namespace}:{record.ServiceAccount}", [], "token", record.Id), null);
    }

    /// <summary>Whether the certificate with this serial (hex) was revoked.</summary>
    public async ValueTask<bool> IsRevokedAsync(string serial, CancellationToken cancellationToken = default) =>
        _revokedHere.ContainsKey(serial.ToUpperInvariant()) || (await CurrentAsync(cancellationToken).ConfigureAwait(false)).Revoked.Contains(serial.ToUpperInvariant());

    // Revoked through this instance: refused at once, before the store watch brings the deny-list entry back.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _revokedHere = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="identity"/> holds <paramref name="permission"/> in <paramref name="ns"/> (null: cluster scope).</summary>
    public async ValueTask<bool> IsAllowedAsync(WarpIdentity identity, Permission permission, string? ns, CancellationToken cancellationToken = default) =>
        (await CurrentAsync(cancellationToken).ConfigureAwait(false)).IsAllowed(identity, permission, ns);

    /// <summary>
    /// The namespaces in which <paramref name="identity"/> holds <paramref name="permission"/>; null when it holds it
    /// cluster-wide (every namespace).
    /// </summary>
    public async ValueTask<IReadOnlySet<string>?> AllowedNamespacesAsync(WarpIdentity identity, Permission permission, CancellationToken cancellationToken = default) =>
        (await CurrentAsync(cancellationToken).ConfigureAwait(false)).AllowedNamespaces(identity, permission);

    // ---- namespaces

    /// <summary>Every namespace (<c>default</c> and <c>warp-system</c> included).</summary>
    public async Task<IReadOnlyList<NamespaceRecord>> ListNamespacesAsync(CancellationToken cancellationToken = default)
    {
        var stored = (await _store.ListAsync(NamespaceRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
            .Select(e => SecurityJson.Read<NamespaceRecord>(e.Value.Span)).ToDictionary(n => n.Name, StringComparer.Ordinal);
        foreach (var builtIn in new[] { NamespaceRecord.Default, NamespaceRecord.System })
        {
            stored.TryAdd(builtIn, new NamespaceRecord { Name = builtIn });
        }

        return [.. stored.Values.OrderBy(n => n.Name, StringComparer.Ordinal)];
    }

    /// <summary>One namespace, or null (<c>default</c> and <c>warp-system</c> exist without a record).</summary>
    public async Task<NamespaceRecord?> GetNamespaceAsync(string name, CancellationToken cancellationToken = default)
    {
        var entry = await _store.GetAsync(NamespaceRecord.KeyFor(name), cancellationToken).ConfigureAwait(false);
        return entry is not null ? SecurityJson.Read<NamespaceRecord>(entry.Value.Span)
            : name is NamespaceRecord.Default or NamespaceRecord.System ? new NamespaceRecord { Name = name } : null;
    }

    /// <summary>Creates or replaces a namespace record (quota, signing policy).</summary>
    public async Task<NamespaceRecord> PutNamespaceAsync(NamespaceRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!Names.IsValid(record.Name))
        {
            throw new AccessControlException("name", Names.Describe("namespace", record.Name));
        }

        var existing = await GetNamespaceAsync(record.Name, cancellationToken).ConfigureAwait(false);
        record = record with { CreatedAt = existing?.CreatedAt is { } at && at != default ? at : _time.GetUtcNow() };
        await _store.PutAsync(NamespaceRecord.KeyFor(record.Name), SecurityJson.Bytes(record), cancellationToken: cancellationToken).ConfigureAwait(false);
        return record;
    }

    /// <summary>Deletes a namespace record with its service accounts, tokens and role bindings; false when it did not exist.</summary>
    public async Task<bool> DeleteNamespaceAsync(string name, CancellationToken cancellationToken = default)
    {
        if (name is NamespaceRecord.Default or NamespaceRecord.System)
        {
            throw new AccessControlException("name", $"namespace '{name}' is built in and cannot be deleted", 409);
        }

        var existed = await _store.DeleteAsync(NamespaceRecord.KeyFor(name), cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var sa in await ListServiceAccountsAsync(name, cancellationToken).ConfigureAwait(false))
        {
            await DeleteServiceAccountAsync(name, sa.Name, cancellationToken).ConfigureAwait(false);
        }

        foreach (var binding in await ListRoleBindingsAsync(name, cancellationToken).ConfigureAwait(false))
        {
            await _store.DeleteAsync(RoleBindingRecord.KeyFor(name, binding.Name), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return existed;
    }

    /// <summary>Refuses a namespace that does not exist (404).</summary>
    public async Task RequireNamespaceAsync(string ns, CancellationToken cancellationToken = default)
    {
        if (!Names.IsValid(ns))
        {
            throw new AccessControlException("namespace", Names.Describe("namespace", ns));
        }

        if (await GetNamespaceAsync(ns, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new AccessControlException("namespace", $"namespace '{ns}' does not exist (create it with: warp namespaces create {ns})", 404);
        }
    }

    // ---- service accounts and tokens

    /// <summary>Creates a service account (409 when it exists).</summary>
    public async Task<ServiceAccountRecord> CreateServiceAccountAsync(string ns, string name, string? description, CancellationToken cancellationToken = default)
    {
        await RequireNamespaceAsync(ns, cancellationToken).ConfigureAwait(false);
        if (!Names.IsValid(name))
        {
            throw new AccessControlException("name", Names.Describe("service account", name));
        }

        var record = new ServiceAccountRecord { Namespace = ns, Name = name, Description = description, CreatedAt = _time.GetUtcNow() };
        try
        {
            await _store.PutAsync(ServiceAccountRecord.KeyFor(ns, name), SecurityJson.Bytes(record), expectedModRevision: 0, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreConflictException)
        {
            throw new AccessControlException("name", $"service account '{ns}:{name}' already exists", 409);
        }

        return record;
    }

    /// <summary>The service accounts of a namespace (every namespace when null).</summary>
    public async Task<IReadOnlyList<ServiceAccountRecord>> ListServiceAccountsAsync(string? ns, CancellationToken cancellationToken = default) =>
        [.. (await _store.ListAsync(ServiceAccountRecord.KeyPrefix + (ns is null ? string.Empty : ns + "/"), cancellationToken).ConfigureAwait(false))
            .Select(e => SecurityJson.Read<ServiceAccountRecord>(e.Value.Span))];

    /// <summary>Deletes a service account and revokes its tokens; false when it did not exist.</summary>
    public async Task<bool> DeleteServiceAccountAsync(string ns, string name, CancellationToken cancellationToken = default)
    {
        var existed = await _store.DeleteAsync(ServiceAccountRecord.KeyFor(ns, name), cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var token in await ListTokensAsync(ns, cancellationToken).ConfigureAwait(false))
        {
            if (token.ServiceAccount == name)
            {
                await _store.DeleteAsync(ApiTokenRecord.KeyPrefix + token.Id, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }

        return existed;
    }

    /// <summary>Creates a token for a service account; returns the token (shown once) and its record (hash only).</summary>
    public async Task<(ApiToken Token, ApiTokenRecord Record)> CreateTokenAsync(string ns, string serviceAccount, TimeSpan? lifetime, string? description, CancellationToken cancellationToken = default)
    {
        if (lifetime is { } l && l <= TimeSpan.Zero)
        {
            throw new AccessControlException("ttl", "a token lifetime must be positive");
        }

        if (await _store.GetAsync(ServiceAccountRecord.KeyFor(ns, serviceAccount), cancellationToken).ConfigureAwait(false) is null)
        {
            throw new AccessControlException("serviceAccount", $"service account '{ns}:{serviceAccount}' does not exist (create it with: warp serviceaccounts create {serviceAccount} -n {ns})", 404);
        }

        var token = ApiToken.Create();
        var now = _time.GetUtcNow();
        var record = new ApiTokenRecord
        {
            Id = token.Id,
            SecretHash = token.SecretHash,
            Namespace = ns,
            ServiceAccount = serviceAccount,
            CreatedAt = now,
            ExpiresAt = lifetime is { } ttl ? now + ttl : null,
            Description = description,
        };
        await _store.PutAsync(ApiTokenRecord.KeyPrefix + token.Id, SecurityJson.Bytes(record), expectedModRevision: 0, cancellationToken).ConfigureAwait(false);
        Log.TokenCreated(_logger, token.Id, $"{ns}:{serviceAccount}");
        return (token, record);
    }

    /// <summary>The tokens (records, hashes only) of a namespace, or of every namespace when null.</summary>
    public async Task<IReadOnlyList<ApiTokenRecord>> ListTokensAsync(string? ns, CancellationToken cancellationToken = default) =>
        [.. (await _store.ListAsync(ApiTokenRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
            .Select(e => SecurityJson.Read<ApiTokenRecord>(e.Value.Span))
            .Where(t => ns is null || t.Namespace == ns)];

    /// <summary>One token record, or null.</summary>
    public async Task<ApiTokenRecord?> GetTokenAsync(string id, CancellationToken cancellationToken = default) =>
        await _store.GetAsync(ApiTokenRecord.KeyPrefix + id, cancellationToken).ConfigureAwait(false) is { } e ? SecurityJson.Read<ApiTokenRecord>(e.Value.Span) : null;

    /// <summary>Revokes a token; false when it did not exist.</summary>
    public async Task<bool> RevokeTokenAsync(string id, CancellationToken cancellationToken = default)
    {
        var done = await _store.DeleteAsync(ApiTokenRecord.KeyPrefix + id, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (done)
        {
            Log.TokenRevoked(_logger, id);
        }

        return done;
    }

    // ---- roles and bindings

    /// <summary>Built-in and stored roles.</summary>
    public async Task<IReadOnlyList<RoleRecord>> ListRolesAsync(CancellationToken cancellationToken = default) =>
        [.. Rbac.BuiltInRoles.Values.Concat((await _store.ListAsync(RoleRecord.KeyPrefix, cancellationToken).ConfigureAwait(false)).Select(e => SecurityJson.Read<RoleRecord>(e.Value.Span)))];

    /// <summary>Creates or replaces a custom role; the caller must hold every permission it grants (no escalation).</summary>
    public async Task<RoleRecord> PutRoleAsync(RoleRecord role, WarpIdentity caller, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(role);
        ArgumentNullException.ThrowIfNull(caller);
        if (!Names.IsValid(role.Name))
        {
            throw new AccessControlException("name", Names.Describe("role", role.Name));
        }

        if (Rbac.BuiltInRoles.ContainsKey(role.Name))
        {
            throw new AccessControlException("name", $"role '{role.Name}' is built in and cannot be changed", 409);
        }

        for (int i = 0; i < role.Rules.Count; i++)
        {
            var rule = role.Rules[i];
            if (rule.Verbs.Count == 0 || rule.Verbs.Any(v => v != Rbac.Any && !Rbac.Verbs.Contains(v)))
            {
                throw new AccessControlException($"rules[{i}].verbs", $"verbs must be some of: {string.Join(", ", Rbac.Verbs.Order(StringComparer.Ordinal))} (or *)");
            }

            if (rule.Resources.Count == 0 || rule.Resources.Any(r => r != Rbac.Any && !Rbac.IsResource(r)))
            {
                throw new AccessControlException($"rules[{i}].resources", $"resources must be some of: {string.Join(", ", Rbac.NamespacedResources.Concat(Rbac.ClusterResources).Order(StringComparer.Ordinal))} (or *)");
            }
        }

        var snapshot = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        if (snapshot.Escalation(caller, role, null) is { } missing)
        {
            throw new AccessControlException("rules", $"you cannot create a role granting '{missing}', which you do not hold cluster-wide", 403);
        }

        var stored = role with { BuiltIn = false };
        await _store.PutAsync(RoleRecord.KeyPrefix + role.Name, SecurityJson.Bytes(stored), cancellationToken: cancellationToken).ConfigureAwait(false);
        return stored;
    }

    /// <summary>Deletes a custom role; false when it did not exist.</summary>
    public async Task<bool> DeleteRoleAsync(string name, CancellationToken cancellationToken = default)
    {
        if (Rbac.BuiltInRoles.ContainsKey(name))
        {
            throw new AccessControlException("name", $"role '{name}' is built in and cannot be deleted", 409);
        }

        return await _store.DeleteAsync(RoleRecord.KeyPrefix + name, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates a role binding. Refused (403) when the caller does not hold every permission the role grants in that
    /// scope: nobody grants what they do not have.
    /// </summary>
    public async Task<RoleBindingRecord> CreateRoleBindingAsync(RoleBindingRecord binding, WarpIdentity caller, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(binding);
        ArgumentNullException.ThrowIfNull(caller);
        if (!Names.IsValid(binding.Name))
        {
            throw new AccessControlException("name", Names.Describe("role binding", binding.Name));
        }

        if (binding.Namespace is { } ns)
        {
            await RequireNamespaceAsync(ns, cancellationToken).ConfigureAwait(false);
        }

        if (binding.Subjects.Count == 0)
        {
            throw new AccessControlException("subjects", "a role binding needs at least one subject (serviceaccount:NS:NAME, user:NAME or group:NAME)");
        }

        var snapshot = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        var role = snapshot.Role(binding.Role) ?? throw new AccessControlException("role", $"role '{binding.Role}' does not exist (built in: {string.Join(", ", Rbac.BuiltInRoles.Keys)})", 404);
        if (snapshot.Escalation(caller, role, binding.Namespace) is { } missing)
        {
            throw new AccessControlException("role", $"you cannot grant role '{role.Name}'{(binding.Namespace is null ? " cluster-wide" : $" in namespace '{binding.Namespace}'")}: it grants '{missing}', which you do not hold there", 403);
        }

        var record = binding with { CreatedAt = _time.GetUtcNow() };
        try
        {
            await _store.PutAsync(RoleBindingRecord.KeyFor(binding.Namespace, binding.Name), SecurityJson.Bytes(record), expectedModRevision: 0, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreConflictException)
        {
            throw new AccessControlException("name", $"role binding '{binding.Name}' already exists{(binding.Namespace is null ? string.Empty : $" in namespace '{binding.Namespace}'")}", 409);
        }

        return record;
    }

    /// <summary>Role bindings of a namespace; cluster-wide ones when <paramref name="ns"/> is null.</summary>
    public async Task<IReadOnlyList<RoleBindingRecord>> ListRoleBindingsAsync(string? ns, CancellationToken cancellationToken = default) =>
        [.. (await _store.ListAsync($"{RoleBindingRecord.KeyPrefix}{ns ?? "_cluster"}/", cancellationToken).ConfigureAwait(false))
            .Select(e => SecurityJson.Read<RoleBindingRecord>(e.Value.Span))];

    /// <summary>Deletes a role binding; false when it did not exist.</summary>
    public async Task<bool> DeleteRoleBindingAsync(string? ns, string name, CancellationToken cancellationToken = default) =>
        await _store.DeleteAsync(RoleBindingRecord.KeyFor(ns, name), cancellationToken: cancellationToken).ConfigureAwait(false);

    // ---- certificates

    /// <summary>Puts a certificate on the replicated deny list until it would have expired.</summary>
    public async Task RevokeCertificateAsync(string serial, string subject, DateTimeOffset notAfter, CancellationToken cancellationToken = default)
    {
        var record = new RevokedCertificateRecord { Serial = serial.ToUpperInvariant(), Subject = subject, RevokedAt = _time.GetUtcNow(), NotAfter = notAfter };
        _revokedHere[record.Serial] = true;
        await _store.PutAsync(RevokedCertificateRecord.KeyPrefix + record.Serial, SecurityJson.Bytes(record), cancellationToken: cancellationToken).ConfigureAwait(false);
        Log.CertificateRevoked(_logger, record.Serial, subject);
    }

    // ---- bootstrap

    /// <summary>The service account of the bootstrap administrator.</summary>
    public const string BootstrapServiceAccount = "admin";

    /// <summary>
    /// Makes sure the node's bootstrap administrator exists: service account <c>warp-system:admin</c>, bound to
    /// <c>cluster-admin</c>, with a token kept in <paramref name="tokenFile"/> (mode 0600). When the file holds a token
    /// the store still accepts, nothing happens and null is returned; otherwise a new token is created, written, and
    /// returned (for the caller to show once).
    /// </summary>
    public async Task<string?> EnsureBootstrapAdminAsync(string tokenFile, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenFile);
        if (File.Exists(tokenFile))
        {
            var existing = (await File.ReadAllTextAsync(tokenFile, cancellationToken).ConfigureAwait(false)).Trim();
            if (ApiToken.TryParse(existing, out var parsed) && await GetTokenAsync(parsed!.Id, cancellationToken).ConfigureAwait(false) is not null)
            {
                return null;
            }
        }

        var ns = NamespaceRecord.System;
        if (await _store.GetAsync(ServiceAccountRecord.KeyFor(ns, BootstrapServiceAccount), cancellationToken).ConfigureAwait(false) is null)
        {
            var sa = new ServiceAccountRecord { Namespace = ns, Name = BootstrapServiceAccount, Description = "bootstrap administrator", CreatedAt = _time.GetUtcNow() };
            await _store.PutAsync(ServiceAccountRecord.KeyFor(ns, BootstrapServiceAccount), SecurityJson.Bytes(sa), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        var bindingKey = RoleBindingRecord.KeyFor(null, "bootstrap-admin");
        if (await _store.GetAsync(bindingKey, cancellationToken).ConfigureAwait(false) is null)
        {
            var binding = new RoleBindingRecord
            {
                Name = "bootstrap-admin",
                Role = Rbac.ClusterAdmin,
                Subjects = [new RbacSubject(WarpIdentity.ServiceAccountKind, $"{ns}:{BootstrapServiceAccount}")],
                CreatedAt = _time.GetUtcNow(),
            };
            await _store.PutAsync(bindingKey, SecurityJson.Bytes(binding), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        var (token, _) = await CreateTokenAsync(ns, BootstrapServiceAccount, null, $"bootstrap admin of {Environment.MachineName}", cancellationToken).ConfigureAwait(false);
        var directory = Path.GetDirectoryName(Path.GetFullPath(tokenFile));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        WarpGrid.Core.Clustering.ClusterCertificateAuthority.WritePrivate(tokenFile, token + Environment.NewLine);
        return token.ToString();
    }

    /// <summary>Stops following the store.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_watch is { } watch)
        {
            try
            {
                await watch.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stop.Dispose();
        _loadLock.Dispose();
    }

    /// <summary>An immutable view of <c>auth/</c>.</summary>
    private sealed class Snapshot
    {
        public Dictionary<string, ApiTokenRecord> Tokens { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Revoked { get; } = new(StringComparer.Ordinal);

        private readonly Dictionary<string, RoleRecord> _roles = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<RoleBindingRecord>> _bindingsBySubject = new(StringComparer.Ordinal);

        public static Snapshot Build(Dictionary<string, ReadOnlyMemory<byte>> entries, ILogger logger)
        {
            var s = new Snapshot();
            foreach (var (key, value) in entries)
            {
                try
                {
                    if (key.StartsWith(ApiTokenRecord.KeyPrefix, StringComparison.Ordinal))
                    {
                        var t = SecurityJson.Read<ApiTokenRecord>(value.Span);
                        s.Tokens[t.Id] = t;
                    }
                    else if (key.StartsWith(RevokedCertificateRecord.KeyPrefix, StringComparison.Ordinal))
                    {
                        s.Revoked.Add(SecurityJson.Read<RevokedCertificateRecord>(value.Span).Serial);
                    }
                    else if (key.StartsWith(RoleRecord.KeyPrefix, StringComparison.Ordinal))
                    {
                        var r = SecurityJson.Read<RoleRecord>(value.Span);
                        s._roles[r.Name] = r;
                    }
                    else if (key.StartsWith(RoleBindingRecord.KeyPrefix, StringComparison.Ordinal))
                    {
                        var b = SecurityJson.Read<RoleBindingRecord>(value.Span);
                        foreach (var subject in b.Subjects)
                        {
                            var k = subject.ToString();
                            if (!s._bindingsBySubject.TryGetValue(k, out var list))
                            {
                                s._bindingsBySubject[k] = list = [];
                            }

                            list.Add(b);
                        }
                    }
                }
                catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidDataException)
                {
                    Log.BadRecord(logger, key, ex.Message);
                }
            }

            return s;
        }

        public RoleRecord? Role(string name) =>
            Rbac.BuiltInRoles.TryGetValue(name, out var builtIn) ? builtIn : _roles.GetValueOrDefault(name);

        private IEnumerable<RoleBindingRecord> BindingsOf(WarpIdentity identity)
        {
            if (_bindingsBySubject.TryGetValue(identity.Subject, out var direct))
            {
                foreach (var b in direct)
                {
                    yield return b;
                }
            }

            foreach (var group in identity.Groups)
            {
                if (_bindingsBySubject.TryGetValue("group:" + group, out var viaGroup))
                {
                    foreach (var b in viaGroup)
                    {
                        yield return b;
                    }
                }
            }
        }

        public bool IsAllowed(WarpIdentity identity, Permission permission, string? ns)
        {
            bool namespaced = Rbac.NamespacedResources.Contains(permission.Resource);
            foreach (var binding in BindingsOf(identity))
            {
                // A cluster-wide binding grants in every namespace; a namespaced one only namespaced resources there.
                if (binding.Namespace is not null && (!namespaced || binding.Namespace != ns))
                {
                    if (!(permission.Resource == "namespaces" && binding.Namespace == ns))
                    {
                        continue;
                    }
                }

                if (Role(binding.Role)?.Grants(permission) == true)
                {
                    return true;
                }
            }

            return false;
        }

        public IReadOnlySet<string>? AllowedNamespaces(WarpIdentity identity, Permission permission)
        {
            var result = new HashSet<string>(StringComparer.Ordinal);
            foreach (var binding in BindingsOf(identity))
            {
                if (Role(binding.Role)?.Grants(permission) != true)
                {
                    continue;
                }

                if (binding.Namespace is null)
                {
                    return null;
                }

                result.Add(binding.Namespace);
            }

            return result;
        }

        /// <summary>A permission <paramref name="role"/> grants that <paramref name="caller"/> lacks in the scope, or null.</summary>
        public Permission? Escalation(WarpIdentity caller, RoleRecord role, string? ns)
        {
            foreach (var rule in role.Rules)
            {
                var verbs = rule.Verbs.Contains(Rbac.Any) ? [.. Rbac.Verbs] : rule.Verbs;
                var resources = rule.Resources.Contains(Rbac.Any) ? [.. Rbac.NamespacedResources, .. Rbac.ClusterResources] : rule.Resources;
                foreach (var verb in verbs)
                {
                    foreach (var resource in resources)
                    {
                        var p = new Permission(verb, resource);
                        if (ns is not null && !Rbac.NamespacedResources.Contains(resource))
                        {
                            continue; // a namespaced binding grants no cluster resources
                        }

                        if (!IsAllowed(caller, p, ns))
                        {
                            return p;
                        }
                    }
                }
            }

            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 600, Level = LogLevel.Warning, Message = "Access-control watch restarted: {Reason}")]
        public static partial void WatchRestart(ILogger logger, string reason);

        [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "Unreadable access-control record {Key}: {Reason}")]
        public static partial void BadRecord(ILogger logger, string key, string reason);

        [LoggerMessage(EventId = 602, Level = LogLevel.Information, Message = "Token {TokenId} created for {Subject}")]
        public static partial void TokenCreated(ILogger logger, string tokenId, string subject);

        [LoggerMessage(EventId = 603, Level = LogLevel.Information, Message = "Token {TokenId} revoked")]
        public static partial void TokenRevoked(ILogger logger, string tokenId);

        [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "Certificate {Serial} of {Subject} revoked")]
        public static partial void CertificateRevoked(ILogger logger, string serial, string subject);
    }
}
