using System.Text.Json;
using System.Text.Json.Serialization;

namespace WarpGrid.Core.Security;

/// <summary>The verbs and resources that permissions are made of, and which resources live in a namespace.</summary>
public static class Rbac
{
    /// <summary>Matches every verb or every resource in a rule.</summary>
    public const string Any = "*";

    /// <summary>The verbs a rule may name.</summary>
    public static readonly IReadOnlySet<string> Verbs = new HashSet<string>(StringComparer.Ordinal)
    {
        "get", "list", "watch", "create", "update", "delete", "run", "logs", "cordon", "drain", "sign", "impersonate",
    };

    /// <summary>Resources that belong to one namespace; a namespaced role binding grants them in its namespace only.</summary>
    public static readonly IReadOnlySet<string> NamespacedResources = new HashSet<string>(StringComparer.Ordinal)
    {
        "deployments", "serviceaccounts", "tokens", "rolebindings", "secrets",
    };

    /// <summary>Resources of the whole cluster.</summary>
    public static readonly IReadOnlySet<string> ClusterResources = new HashSet<string>(StringComparer.Ordinal)
    {
        "nodes", "jointokens", "namespaces", "roles", "kv", "audit", "members", "cluster", "certificates", "metrics",
    };

    /// <summary>Whether <paramref name="resource"/> is a known resource.</summary>
    public static bool IsResource(string resource) => NamespacedResources.Contains(resource) || ClusterResources.Contains(resource);

    /// <summary>The built-in cluster-wide superuser role.</summary>
    public const string ClusterAdmin = "cluster-admin";

    /// <summary>
    /// The built-in roles, with Kubernetes' meanings: <c>cluster-admin</c> may do everything; <c>admin</c> everything in a
    /// namespace, its service accounts, tokens and role bindings included; <c>edit</c> deployments and secrets, no
    /// access control; <c>view</c> reads deployments and their logs.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, RoleRecord> BuiltInRoles = new Dictionary<string, RoleRecord>(StringComparer.Ordinal)
    {
        [ClusterAdmin] = new RoleRecord { Name = ClusterAdmin, BuiltIn = true, Rules = [new RbacRule([Any], [Any])] },
        ["admin"] = new RoleRecord
        {
            Name = "admin",
            BuiltIn = true,
            Rules =
            [
                new RbacRule([Any], ["deployments", "serviceaccounts", "tokens", "rolebindings", "secrets"]),
                new RbacRule(["get"], ["namespaces"]),
            ],
        },
        ["edit"] = new RoleRecord
        {
            Name = "edit",
            BuiltIn = true,
            Rules =
            [
                new RbacRule([Any], ["deployments", "secrets"]),
                new RbacRule(["get", "list"], ["serviceaccounts"]),
                new RbacRule(["get"], ["namespaces"]),
            ],
        },
        ["view"] = new RoleRecord
        {
            Name = "view",
            BuiltIn = true,
            Rules =
            [
                new RbacRule(["get", "list", "watch", "logs"], ["deployments"]),
                new RbacRule(["get", "list"], ["serviceaccounts"]),
                new RbacRule(["get"], ["namespaces"]),
            ],
        },
    };
}

/// <summary>A permission: a verb on a resource (e.g. <c>create deployments</c>).</summary>
/// <param name="Verb">The verb.</param>
/// <param name="Resource">The resource.</param>
public readonly record struct Permission(string Verb, string Resource)
{
    /// <inheritdoc />
    public override string ToString() => $"{Verb} {Resource}";
}

/// <summary>One rule of a role: these verbs on these resources (<c>*</c> for all).</summary>
/// <param name="Verbs">Verbs, or <c>*</c>.</param>
/// <param name="Resources">Resources, or <c>*</c>.</param>
public sealed record RbacRule(IReadOnlyList<string> Verbs, IReadOnlyList<string> Resources)
{
    /// <summary>Whether the rule grants <paramref name="permission"/>.</summary>
    public bool Grants(Permission permission) =>
        (Verbs.Contains(Rbac.Any) || Verbs.Contains(permission.Verb)) && (Resources.Contains(Rbac.Any) || Resources.Contains(permission.Resource));
}

/// <summary>A role: a named set of rules. Stored under <c>auth/roles/&lt;name&gt;</c> (built-in roles are not stored).</summary>
public sealed record RoleRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/roles/";

    /// <summary>The role name.</summary>
    public required string Name { get; init; }

    /// <summary>The rules.</summary>
    public IReadOnlyList<RbacRule> Rules { get; init; } = [];

    /// <summary>Whether WarpGrid defines it (cannot be changed or deleted).</summary>
    public bool BuiltIn { get; init; }

    /// <summary>Whether the role grants <paramref name="permission"/>.</summary>
    public bool Grants(Permission permission) => Rules.Any(r => r.Grants(permission));
}

/// <summary>What a binding binds a role to.</summary>
/// <param name="Kind"><c>serviceaccount</c>, <c>user</c> (a client-certificate user) or <c>group</c>.</param>
/// <param name="Name">The name; for a service account <c>namespace:name</c>.</param>
public sealed record RbacSubject(string Kind, string Name)
{
    /// <summary>The subject as written in the API and the audit log: <c>serviceaccount:ns:name</c>, <c>user:alice</c>.</summary>
    public override string ToString() => $"{Kind}:{Name}";

    /// <summary>Parses <c>serviceaccount:ns:name</c>, <c>user:name</c> or <c>group:name</c>.</summary>
    public static bool TryParse(string? text, out RbacSubject? subject, out string? error)
    {
        subject = null;
        error = null;
        var colon = text?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (text is null || colon <= 0 || colon == text.Length - 1)
        {
            error = "a subject is serviceaccount:NAMESPACE:NAME, user:NAME or group:NAME";
            return false;
        }

        var kind = text[..colon];
        var name = text[(colon + 1)..];
        switch (kind)
        {
            case "serviceaccount":
                var parts = name.Split(':');
                if (parts.Length != 2 || !Names.IsValid(parts[0]) || !Names.IsValid(parts[1]))
                {
                    error = $"'{text}': a service account subject is serviceaccount:NAMESPACE:NAME (DNS labels)";
                    return false;
                }

                break;
            case "user" or "group":
                if (name.Length > 128 || name.Any(char.IsControl))
                {
                    error = $"'{text}': a {kind} name is at most 128 printable characters";
                    return false;
                }

                break;
            default:
                error = $"'{text}': unknown subject kind '{kind}' (serviceaccount, user or group)";
                return false;
        }

        subject = new RbacSubject(kind, name);
        return true;
    }
}

/// <summary>
/// Grants a role to subjects, across the cluster (<see cref="Namespace"/> null) or in one namespace. Stored under
/// <c>auth/rolebindings/&lt;namespace or _cluster&gt;/&lt;name&gt;</c>.
/// </summary>
public sealed record RoleBindingRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/rolebindings/";

    /// <summary>The binding name.</summary>
    public required string Name { get; init; }

    /// <summary>The namespace it grants in, or null for the whole cluster.</summary>
    public string? Namespace { get; init; }

    /// <summary>The role granted.</summary>
    public required string Role { get; init; }

    /// <summary>Who gets it.</summary>
    public IReadOnlyList<RbacSubject> Subjects { get; init; } = [];

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The store key of a binding.</summary>
    public static string KeyFor(string? ns, string name) => $"{KeyPrefix}{ns ?? "_cluster"}/{name}";
}

/// <summary>A service account: a non-human identity in a namespace, authenticated by its tokens. Stored under <c>auth/serviceaccounts/&lt;ns&gt;/&lt;name&gt;</c>.</summary>
public sealed record ServiceAccountRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/serviceaccounts/";

    /// <summary>The namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The name.</summary>
    public required string Name { get; init; }

    /// <summary>A note.</summary>
    public string? Description { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The store key.</summary>
    public static string KeyFor(string ns, string name) => $"{KeyPrefix}{ns}/{name}";
}

/// <summary>A service-account token as stored under <c>auth/tokens/&lt;id&gt;</c>: the SHA-256 of its secret, never the secret.</summary>
public sealed record ApiTokenRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/tokens/";

    /// <summary>The token id (public; names the token in lists, audit records and logs).</summary>
    public required string Id { get; init; }

    /// <summary>Hex SHA-256 of the secret.</summary>
    public required string SecretHash { get; init; }

    /// <summary>The service account's namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The service account's name.</summary>
    public required string ServiceAccount { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it stops being accepted; null = never.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>A note.</summary>
    public string? Description { get; init; }
}

/// <summary>Limits of a namespace; null = unlimited.</summary>
public sealed record NamespaceQuota
{
    /// <summary>Sum over deployments of memory_limit × max instances, in bytes.</summary>
    public long? MemoryBytes { get; init; }

    /// <summary>Sum over deployments of their maximum instance counts.</summary>
    public int? Instances { get; init; }

    /// <summary>Number of deployments.</summary>
    public int? Deployments { get; init; }

    /// <summary>Sum of the deployments' module sizes, in bytes.</summary>
    public long? ModuleBytes { get; init; }
}

/// <summary>A namespace, stored under <c>auth/namespaces/&lt;name&gt;</c>. <c>default</c> and <c>warp-system</c> always exist.</summary>
public sealed record NamespaceRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/namespaces/";

    /// <summary>The namespace every unnamed deployment belongs to.</summary>
    public const string Default = "default";

    /// <summary>The namespace of WarpGrid's own identities (the bootstrap admin).</summary>
    public const string System = "warp-system";

    /// <summary>The name (a DNS label).</summary>
    public required string Name { get; init; }

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Limits; null = none.</summary>
    public NamespaceQuota? Quota { get; init; }

    /// <summary>Public keys (PEM, ECDSA P-256) that sign its modules.</summary>
    public IReadOnlyList<string> SigningKeys { get; init; } = [];

    /// <summary>Whether a deployment by OCI reference must carry a cosign signature by one of <see cref="SigningKeys"/>.</summary>
    public bool RequireSignatures { get; init; }

    /// <summary>The store key.</summary>
    public static string KeyFor(string name) => KeyPrefix + name;
}

/// <summary>A revoked certificate (a deleted node's), kept until it would have expired. Stored under <c>auth/revoked/&lt;serial&gt;</c>.</summary>
public sealed record RevokedCertificateRecord
{
    /// <summary>Store key prefix.</summary>
    public const string KeyPrefix = "auth/revoked/";

    /// <summary>The serial number, hex.</summary>
    public required string Serial { get; init; }

    /// <summary>Whose it was (<c>node:agent-a</c>).</summary>
    public required string Subject { get; init; }

    /// <summary>When it was revoked.</summary>
    public DateTimeOffset RevokedAt { get; init; }

    /// <summary>When it expires anyway (the entry may be dropped after).</summary>
    public DateTimeOffset NotAfter { get; init; }
}

/// <summary>Names: DNS labels.</summary>
public static class Names
{
    /// <summary>Whether <paramref name="name"/> is a DNS label (1-63 lowercase letters, digits, '-', alphanumeric at both ends).</summary>
    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= 63 } && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    /// <summary>The message for an invalid name of <paramref name="what"/>.</summary>
    public static string Describe(string what, string? name) =>
        $"{what} '{name}' must be a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit";
}

[JsonSerializable(typeof(RoleRecord))]
[JsonSerializable(typeof(RoleBindingRecord))]
[JsonSerializable(typeof(ServiceAccountRecord))]
[JsonSerializable(typeof(ApiTokenRecord))]
[JsonSerializable(typeof(NamespaceRecord))]
[JsonSerializable(typeof(RevokedCertificateRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class SecurityJson : JsonSerializerContext
{
    public static byte[] Bytes<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, typeof(T), Default);

    public static T Read<T>(ReadOnlySpan<byte> bytes) =>
        (T)(JsonSerializer.Deserialize(bytes, typeof(T), Default) ?? throw new InvalidDataException($"empty {typeof(T).Name}"));
}
