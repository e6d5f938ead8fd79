using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Oci.Signing;
using WarpGrid.Core.Security;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting.Security;

namespace Microsoft.AspNetCore.Builder;

/// <summary>
/// The access-control endpoints: namespaces (with quotas and signing keys), service accounts and their tokens, roles,
/// role bindings, <c>auth/whoami</c>, <c>auth/can-i</c>, <c>auth/routes</c>, user certificates and the audit log.
/// </summary>
public static class WarpGridAuthApiExtensions
{
    private const string NsRoute = "/namespaces/{namespace}";

    /// <summary>Maps the access-control endpoints under an API group (called by <c>MapWarpGridApi</c>).</summary>
    public static RouteGroupBuilder MapWarpGridAuthApi(this RouteGroupBuilder api)
    {
        ArgumentNullException.ThrowIfNull(api);
        const PermissionScope C = PermissionScope.Cluster, N = PermissionScope.Namespace;

        // ---- who am I, what may I do, what does each endpoint need
        api.MapGet("/auth/whoami", async (HttpContext http, AccessControl access) =>
        {
            var identity = http.WarpIdentity()!;
            var namespaces = await access.AllowedNamespacesAsync(identity, new Permission("get", "deployments"), http.RequestAborted).ConfigureAwait(false);
            return Results.Json(new { subject = identity.Subject, kind = identity.Kind, name = identity.Name, groups = identity.Groups, method = identity.Method, credential = identity.CredentialId, namespaces = namespaces?.Order(StringComparer.Ordinal).ToList(), clusterWide = namespaces is null }, Json);
        }).RequireWarpGridIdentity();
        api.MapPost("/auth/can-i", async (HttpContext http, AccessControl access) =>
        {
            var (root, error) = await BodyAsync(http).ConfigureAwait(false);
            if (error is not null)
            {
                return error;
            }

            var verb = Str(root, "verb");
            var resource = Str(root, "resource");
            var ns = Str(root, "namespace");
            if (verb is null || !Rbac.Verbs.Contains(verb))
            {
                return Bad("verb", $"'verb' must be one of: {string.Join(", ", Rbac.Verbs.Order(StringComparer.Ordinal))}");
            }

            if (resource is null || !Rbac.IsResource(resource))
            {
                return Bad("resource", $"'resource' must be one of: {string.Join(", ", Rbac.NamespacedResources.Concat(Rbac.ClusterResources).Order(StringComparer.Ordinal))}");
            }

            var scoped = Rbac.NamespacedResources.Contains(resource) ? ns ?? NamespaceRecord.Default : null;
            var allowed = await access.IsAllowedAsync(http.WarpIdentity()!, new Permission(verb, resource), scoped, http.RequestAborted).ConfigureAwait(false);
            return Results.Json(new { allowed, verb, resource, @namespace = scoped, subject = http.WarpIdentity()!.Subject }, Json);
        }).RequireWarpGridIdentity();
        api.MapGet("/auth/routes", (EndpointDataSource data) => Results.Json(
            data.Endpoints.OfType<RouteEndpoint>()
                .Select(e => (Endpoint: e, Permission: e.Metadata.GetMetadata<PermissionMetadata>(), Anonymous: e.Metadata.GetMetadata<Microsoft.AspNetCore.Authorization.IAllowAnonymous>() is not null))
                .Where(e => e.Permission is not null || e.Anonymous)
                .Select(e => new
                {
                    methods = e.Endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods,
                    route = "/" + e.Endpoint.RoutePattern.RawText?.TrimStart('/'),
                    permission = e.Permission?.Scope == PermissionScope.Authenticated ? "authenticated" : e.Permission?.Permission.ToString() ?? "anonymous",
                    scope = e.Permission?.Scope.ToString().ToLowerInvariant(),
                })
                .OrderBy(e => e.route, StringComparer.Ordinal).ToList(),
            Json)).RequireWarpGridIdentity();

        // ---- namespaces
        api.MapGet("/namespaces", async (HttpContext http, AccessControl access, IClusterStore store) =>
        {
            var visible = await access.AllowedNamespacesAsync(http.WarpIdentity()!, new Permission("get", "namespaces"), http.RequestAborted).ConfigureAwait(false);
            var all = await access.ListNamespacesAsync(http.RequestAborted).ConfigureAwait(false);
            var records = await DeploymentsAsync(store, http.RequestAborted).ConfigureAwait(false);
            return Results.Json(all.Where(n => visible is null || visible.Contains(n.Name)).Select(n => NamespaceView(n, records)).ToList(), Json);
        }).RequirePermission("get", "namespaces", PermissionScope.AnyNamespace);
        api.MapGet(NsRoute, async (string @namespace, HttpContext http, AccessControl access, IClusterStore store) =>
            await access.GetNamespaceAsync(@namespace, http.RequestAborted).ConfigureAwait(false) is { } record
                ? Results.Json(NamespaceView(record, await DeploymentsAsync(store, http.RequestAborted).ConfigureAwait(false)), Json)
                : NotFound("namespace", @namespace))
            .RequirePermission("get", "namespaces", N);
        api.MapPost("/namespaces", (HttpContext http, AccessControl access) => PutNamespaceAsync(http, access, null)).RequirePermission("create", "namespaces", C);
        api.MapPut(NsRoute, (string @namespace, HttpContext http, AccessControl access) => PutNamespaceAsync(http, access, @namespace)).RequirePermission("update", "namespaces", C);
        api.MapDelete(NsRoute, async (string @namespace, HttpContext http, AccessControl access, IClusterStore store) =>
        {
            if ((await DeploymentsAsync(store, http.RequestAborted).ConfigureAwait(false)).Any(d => d.Namespace == @namespace))
            {
                return Problem(409, "not_empty", "Namespace not empty", $"namespace '{@namespace}' still has deployments; delete them first");
            }

            return await CallAsync(async () => await access.DeleteNamespaceAsync(@namespace, http.RequestAborted).ConfigureAwait(false) ? Results.NoContent() : NotFound("namespace", @namespace)).ConfigureAwait(false);
        }).RequirePermission("delete", "namespaces", C);

        // ---- service accounts and their tokens
        api.MapGet(NsRoute + "/serviceaccounts", async (string @namespace, AccessControl access, CancellationToken ct) =>
            Results.Json((await access.ListServiceAccountsAsync(@namespace, ct).ConfigureAwait(false)).Select(a => new { @namespace = a.Namespace, name = a.Name, subject = $"serviceaccount:{a.Namespace}:{a.Name}", description = a.Description, createdAt = a.CreatedAt }).ToList(), Json))
            .RequirePermission("list", "serviceaccounts", N);
        api.MapPost(NsRoute + "/serviceaccounts", async (string @namespace, HttpContext http, AccessControl access) =>
        {
            var (root, error) = await BodyAsync(http).ConfigureAwait(false);
            return error ?? await CallAsync(async () =>
            {
                var created = await access.CreateServiceAccountAsync(@namespace, Str(root, "name") ?? string.Empty, Str(root, "description"), http.RequestAborted).ConfigureAwait(false);
                return Results.Json(new { @namespace = created.Namespace, name = created.Name, subject = $"serviceaccount:{created.Namespace}:{created.Name}", createdAt = created.CreatedAt }, Json, statusCode: 201);
            }).ConfigureAwait(false);
        }).RequirePermission("create", "serviceaccounts", N);
        api.MapDelete(NsRoute + "/serviceaccounts/{name}", async (string @namespace, string name, AccessControl access, CancellationToken ct) =>
            await access.DeleteServiceAccountAsync(@namespace, name, ct).ConfigureAwait(false) ? Results.NoContent() : NotFound("service account", $"{@namespace}:{name}"))
            .RequirePermission("delete", "serviceaccounts", N);
        api.MapGet(NsRoute + "/tokens", async (string @namespace, AccessControl access, CancellationToken ct) =>
            Results.Json((await access.ListTokensAsync(@namespace, ct).ConfigureAwait(false)).Select(TokenView).ToList(), Json))
            .RequirePermission("list", "tokens", N);
        api.MapPost(NsRoute + "/serviceaccounts/{name}/tokens", async (string @namespace, string name, HttpContext http, AccessControl access) =>
        {
            var (root, error) = await BodyAsync(http, allowEmpty: true).ConfigureAwait(false);
            if (error is not null)
            {
                return error;
            }

            TimeSpan? ttl = null;
            if (Str(root, "ttl") is { } text)
            {
                if (!DurationParser.TryParse(text, out var parsed, out _) || parsed <= TimeSpan.Zero)
                {
                    return Bad("ttl", "'ttl' must be a positive duration such as \"24h\" (omit it for a token that does not expire)");
                }

                ttl = parsed;
            }

            return await CallAsync(async () =>
            {
                var (token, record) = await access.CreateTokenAsync(@namespace, name, ttl, Str(root, "description"), http.RequestAborted).ConfigureAwait(false);
                return Results.Json(new { token = token.ToString(), id = record.Id, @namespace = record.Namespace, serviceAccount = record.ServiceAccount, expiresAt = record.ExpiresAt, note = "the token is shown only now; the node keeps only its hash" }, Json, statusCode: 201);
            }).ConfigureAwait(false);
        }).RequirePermission("create", "tokens", N);
        api.MapDelete(NsRoute + "/tokens/{id}", async (string @namespace, string id, AccessControl access, CancellationToken ct) =>
            await access.GetTokenAsync(id, ct).ConfigureAwait(false) is { } t && t.Namespace == @namespace && await access.RevokeTokenAsync(id, ct).ConfigureAwait(false)
                ? Results.NoContent()
                : NotFound("token", id))
            .RequirePermission("delete", "tokens", N);

        // ---- roles and bindings
        api.MapGet("/roles", async (AccessControl access, CancellationToken ct) => Results.Json(await access.ListRolesAsync(ct).ConfigureAwait(false), Json))
            .RequirePermission("list", "roles", C);
        api.MapPut("/roles/{name}", async (string name, HttpContext http, AccessControl access) =>
        {
            RoleBody? body;
            try
            {
                body = await JsonSerializer.DeserializeAsync<RoleBody>(http.Request.Body, Json, http.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return Bad("body", "send {\"rules\": [{\"verbs\": [\"get\"], \"resources\": [\"deployments\"]}]}: " + ex.Message);
            }

            var rules = (body?.Rules ?? []).Select(r => new RbacRule(r.Verbs ?? [], r.Resources ?? [])).ToList();
            return await CallAsync(async () => Results.Json(await access.PutRoleAsync(new RoleRecord { Name = name, Rules = rules }, http.WarpIdentity()!, http.RequestAborted).ConfigureAwait(false), Json)).ConfigureAwait(false);
        }).RequirePermission("update", "roles", C);
        api.MapDelete("/roles/{name}", async (string name, AccessControl access, CancellationToken ct) =>
            await CallAsync(async () => await access.DeleteRoleAsync(name, ct).ConfigureAwait(false) ? Results.NoContent() : NotFound("role", name)).ConfigureAwait(false))
            .RequirePermission("delete", "roles", C);
        MapBindings(api, "/rolebindings", namespaced: false);
        MapBindings(api, NsRoute + "/rolebindings", namespaced: true);

        // ---- user certificates
        api.MapPost("/certificates", async (HttpContext http, LocalCertificateAuthority authority, IOptions<WarpGridSecurityOptions> options) =>
        {
            var (root, error) = await BodyAsync(http).ConfigureAwait(false);
            if (error is not null)
            {
                return error;
            }

            if (authority.Get() is not { } ca)
            {
                return Problem(409, "no_ca", "No certificate authority", "an agent signs no certificates: send this request to the control plane");
            }

            var user = Str(root, "user");
            if (user is null || user.Length is 0 or > 128 || user.Any(c => char.IsControl(c) || c is ',' or '=' or '+'))
            {
                return Bad("user", "'user' must be 1-128 printable characters without ',', '=' or '+' (the certificate's CN)");
            }

            var groups = root!.Value.TryGetProperty("groups", out var g) && g.ValueKind == JsonValueKind.Array ? g.EnumerateArray().Select(e => e.GetString() ?? string.Empty).ToList() : [];
            if (groups.Any(x => x.Length is 0 or > 64 || x.Any(c => char.IsControl(c) || c is ',' or '=' or '+')))
            {
                return Bad("groups", "each group must be 1-64 printable characters without ',', '=' or '+'");
            }

            var lifetime = options.Value.UserCertificateLifetime;
            if (Str(root, "ttl") is { } ttl && (!DurationParser.TryParse(ttl, out lifetime, out _) || lifetime <= TimeSpan.Zero || lifetime > TimeSpan.FromDays(366)))
            {
                return Bad("ttl", "'ttl' must be a duration between 1s and 366d, e.g. \"24h\"");
            }

            byte[] der;
            try
            {
                var pem = Str(root, "csr") ?? throw new FormatException("'csr' is missing");
                der = PemEncoding.TryFind(pem, out var fields) && pem[fields.Label] is "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"
                    ? Convert.FromBase64String(pem[fields.Base64Data])
                    : throw new FormatException("'csr' must be a PEM 'CERTIFICATE REQUEST'");
            }
            catch (FormatException ex)
            {
                return Bad("csr", ex.Message + " (make one with: warp certificate request --user NAME, or openssl req -new -key user.key -subj /CN=NAME)");
            }

            try
            {
                using var cert = ca.SignUser(der, user, groups, lifetime);
                return Results.Json(new { certificate = cert.ExportCertificatePem(), ca = ca.Certificate.ExportCertificatePem(), subject = $"user:{user}", serial = cert.SerialNumber, notAfter = cert.NotAfter.ToUniversalTime() }, Json, statusCode: 201);
            }
            catch (CertificateRejectedException ex)
            {
                return Bad("csr", ex.Message);
            }
        }).RequirePermission("create", "certificates", C);

        // ---- audit
        api.MapGet("/audit", async (HttpContext http, AuditLog audit, AccessControl access) =>
        {
            var q = http.Request.Query;
            int limit = 100;
            if (q.TryGetValue("limit", out var l) && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
            {
                return Bad("limit", "'limit' must be a whole number from 1 to 10000");
            }

            DateTimeOffset? since = null;
            if (q.TryGetValue("since", out var s))
            {
                if (DurationParser.TryParse(s.ToString(), out var ago, out _))
                {
                    since = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow() - ago;
                }
                else if (DateTimeOffset.TryParse(s.ToString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                {
                    since = at;
                }
                else
                {
                    return Bad("since", "'since' must be a duration back from now (\"1h\") or an ISO 8601 time");
                }
            }

            var visible = await access.AllowedNamespacesAsync(http.WarpIdentity()!, new Permission("list", "audit"), http.RequestAborted).ConfigureAwait(false);
            var records = await audit.QueryAsync(
                new AuditQuery
                {
                    Since = since,
                    Identity = q["identity"].FirstOrDefault(),
                    Namespace = q["namespace"].FirstOrDefault(),
                    Resource = q["resource"].FirstOrDefault(),
                    Verb = q["verb"].FirstOrDefault(),
                    Outcome = q["outcome"].FirstOrDefault(),
                    Limit = limit,
                    VisibleNamespaces = visible,
                },
                http.RequestAborted).ConfigureAwait(false);
            return Results.Json(records, Json);
        }).RequirePermission("list", "audit", C);
        return api;
    }

    private static void MapBindings(RouteGroupBuilder api, string route, bool namespaced)
    {
        var scope = namespaced ? PermissionScope.Namespace : PermissionScope.Cluster;
        api.MapGet(route, async (HttpContext http, AccessControl access) =>
            Results.Json(await access.ListRoleBindingsAsync(namespaced ? (string)http.GetRouteValue("namespace")! : null, http.RequestAborted).ConfigureAwait(false), Json))
            .RequirePermission("list", "rolebindings", scope);
        api.MapPost(route, async (HttpContext http, AccessControl access) =>
        {
            var (root, error) = await BodyAsync(http).ConfigureAwait(false);
            if (error is not null)
            {
                return error;
            }

            var subjects = new List<RbacSubject>();
            if (!root!.Value.TryGetProperty("subjects", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                return Bad("subjects", "'subjects' must be an array like [\"serviceaccount:team-a:ci\", \"user:alice\", \"group:ops\"]");
            }

            foreach (var item in list.EnumerateArray())
            {
                if (!RbacSubject.TryParse(item.ValueKind == JsonValueKind.String ? item.GetString() : null, out var subject, out var why))
                {
                    return Bad("subjects", why!);
                }

                subjects.Add(subject!);
            }

            var binding = new RoleBindingRecord
            {
                Name = Str(root, "name") ?? string.Empty,
                Role = Str(root, "role") ?? string.Empty,
                Namespace = namespaced ? (string)http.GetRouteValue("namespace")! : null,
                Subjects = subjects,
            };
            return await CallAsync(async () => Results.Json(await access.CreateRoleBindingAsync(binding, http.WarpIdentity()!, http.RequestAborted).ConfigureAwait(false), Json, statusCode: 201)).ConfigureAwait(false);
        }).RequirePermission("create", "rolebindings", scope);
        api.MapDelete(route + "/{name}", async (string name, HttpContext http, AccessControl access) =>
            await access.DeleteRoleBindingAsync(namespaced ? (string)http.GetRouteValue("namespace")! : null, name, http.RequestAborted).ConfigureAwait(false) ? Results.NoContent() : NotFound("role binding", name))
            .RequirePermission("delete", "rolebindings", scope);
    }

    private static async Task<IResult> PutNamespaceAsync(HttpContext http, AccessControl access, string? name)
    {
        var (root, error) = await BodyAsync(http, allowEmpty: name is not null).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        name ??= Str(root, "name");
        if (name is null)
        {
            return Bad("name", "'name' is required: a DNS label such as \"team-a\"");
        }

        if (name is not null && http.Request.Method == HttpMethods.Post && await access.GetNamespaceAsync(name, http.RequestAborted).ConfigureAwait(false) is not null)
        {
            return Problem(409, "exists", "Namespace exists", $"namespace '{name}' already exists; change it with PUT /v1/namespaces/{name}");
        }

        NamespaceQuota? quota = null;
        if (root is { } r && r.TryGetProperty("quota", out var q))
        {
            if (q.ValueKind != JsonValueKind.Object)
            {
                return Bad("quota", "'quota' must be an object {\"memory\": \"2GiB\", \"instances\": 20, \"deployments\": 10, \"moduleBytes\": \"64MiB\"}");
            }

            long? memory = null, moduleBytes = null;
            int? instances = null, deployments = null;
            foreach (var p in q.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "memory" or "moduleBytes":
                        long bytes;
                        if (p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out bytes) && bytes >= 0)
                        {
                        }
                        else if (p.Value.ValueKind != JsonValueKind.String || !ByteSize.TryParse(p.Value.GetString()!, out bytes, out _))
                        {
                            return Bad($"quota.{p.Name}", $"'quota.{p.Name}' must be a size such as \"2GiB\" or a number of bytes");
                        }

                        if (p.Name == "memory")
                        {
                            memory = bytes;
                        }
                        else
                        {
                            moduleBytes = bytes;
                        }

                        break;
                    case "instances" or "deployments":
                        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var count) || count < 0)
                        {
                            return Bad($"quota.{p.Name}", $"'quota.{p.Name}' must be a whole number, 0 or more");
                        }

                        if (p.Name == "instances")
                        {
                            instances = count;
                        }
                        else
                        {
                            deployments = count;
                        }

                        break;
                    default:
                        return Bad($"quota.{p.Name}", $"unknown quota '{p.Name}' (memory, instances, deployments, moduleBytes)");
                }
            }

            quota = new NamespaceQuota { MemoryBytes = memory, Instances = instances, Deployments = deployments, ModuleBytes = moduleBytes };
        }

        var keys = new List<string>();
        if (root is { } rk && rk.TryGetProperty("signingKeys", out var k))
        {
            if (k.ValueKind != JsonValueKind.Array)
            {
                return Bad("signingKeys", "'signingKeys' must be an array of PEM public keys (ECDSA P-256, as in cosign.pub)");
            }

            int i = 0;
            foreach (var item in k.EnumerateArray())
            {
                try
                {
                    // The loader signature admission uses: a PUBLIC KEY PEM on P-256 (not a private key, not another 256-bit curve).
                    using var key = CosignKeys.LoadPublic(item.GetString() ?? throw new FormatException("not a string"));
                }
                catch (Exception ex) when (ex is FormatException or InvalidOperationException)
                {
                    return Bad($"signingKeys[{i}]", $"not an ECDSA P-256 public key in PEM: {ex.Message}");
                }

                keys.Add(item.GetString()!);
                i++;
            }
        }

        bool require = root is { } rr && rr.TryGetProperty("requireSignatures", out var rs) && rs.ValueKind == JsonValueKind.True;
        if (require && keys.Count == 0)
        {
            return Bad("requireSignatures", "requireSignatures needs at least one key in 'signingKeys'");
        }

        return await CallAsync(async () =>
        {
            var record = await access.PutNamespaceAsync(new NamespaceRecord { Name = name!, Quota = quota, SigningKeys = keys, RequireSignatures = require }, http.RequestAborted).ConfigureAwait(false);
            return Results.Json(record, Json, statusCode: http.Request.Method == HttpMethods.Post ? 201 : 200);
        }).ConfigureAwait(false);
    }

    private static object NamespaceView(NamespaceRecord record, IReadOnlyList<DeploymentRecord> deployments)
    {
        var used = NamespaceUsage.Of(record.Name, deployments);
        var q = record.Quota;
        return new
        {
            name = record.Name,
            createdAt = record.CreatedAt == default ? (DateTimeOffset?)null : record.CreatedAt,
            requireSignatures = record.RequireSignatures,
            signingKeys = record.SigningKeys.Count,
            quota = new
            {
                memory = new { used = used.MemoryBytes, limit = q?.MemoryBytes },
                instances = new { used = used.Instances, limit = q?.Instances },
                deployments = new { used = used.Deployments, limit = q?.Deployments },
                moduleBytes = new { used = used.ModuleBytes, limit = q?.ModuleBytes },
            },
        };
    }

    private static object TokenView(ApiTokenRecord t) => new { id = t.Id, @namespace = t.Namespace, serviceAccount = t.ServiceAccount, createdAt = t.CreatedAt, expiresAt = t.ExpiresAt, description = t.Description };

    private static async Task<IReadOnlyList<DeploymentRecord>> DeploymentsAsync(IClusterStore store, CancellationToken cancellationToken) =>
        [.. (await store.ListAsync(DeploymentRecord.KeyPrefix, cancellationToken).ConfigureAwait(false)).Select(e => DeploymentRecord.FromBytes(e.Value.Span, e.ModRevision))];

    private static async Task<IResult> CallAsync(Func<Task<IResult>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AccessControlException ex)
        {
            var body = WarpGrid.Proxy.WarpGridProblem.Create(ex.Status, ex.Status switch { 403 => "forbidden", 404 => "not_found", 409 => "conflict", _ => "invalid_request" }, ex.Status switch { 403 => "Forbidden", 404 => "Not found", 409 => "Conflict", _ => "Invalid request" }, ex.Message);
            body["errors"] = new[] { new DeploymentError(ex.Field, ex.Message) };
            return Results.Json(body, Json, WarpGrid.Proxy.WarpGridProblem.ContentType, ex.Status);
        }
    }

    private static async Task<(JsonElement? Root, IResult? Error)> BodyAsync(HttpContext http, bool allowEmpty = false)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(http.Request.Body, default, http.RequestAborted).ConfigureAwait(false);
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? (document.RootElement.Clone(), null)
                : (null, Bad("body", "the body must be a JSON object"));
        }
        catch (JsonException) when (allowEmpty && http.Request.ContentLength is null or 0)
        {
            return (null, null);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or DecoderFallbackException)
        {
            return (null, Bad("body", "the body must be a JSON object: " + ex.Message));
        }
    }

    private static string? Str(JsonElement? root, string name) =>
        root is { } r && r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static JsonSerializerOptions Json => WarpGridApplicationExtensions.Json;

    private static IResult Bad(string field, string message) =>
        WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid request", $"{field}: {message}", errors: [new DeploymentError(field, message)]);

    private static IResult Problem(int status, string code, string title, string detail) => WarpGridApplicationExtensions.Problem(status, code, title, detail);

    private static IResult NotFound(string what, string name) => Problem(404, "not_found", "Not found", $"no {what} '{name}'");

    private sealed record RoleBody(List<RuleBody>? Rules);

    private sealed record RuleBody(List<string>? Verbs, List<string>? Resources);
}
