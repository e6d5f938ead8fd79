using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// Authentication, RBAC, namespaces, quotas, token revocation and the audit log on a real warpd. Tenants are service
/// accounts created through the API: <c>view</c>/<c>edit</c>/<c>admin</c> of namespace <c>team-a</c>, <c>admin</c> of
/// <c>team-b</c>, and the node's bootstrap cluster-admin.
/// </summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private readonly TempDirectory _data = new("warpgrid-security");
    private WarpdProcess _warpd = null!;
    private readonly Dictionary<string, string> _tokens = new(StringComparer.Ordinal);

    public async Task InitializeAsync()
    {
        _warpd = await WarpdProcess.StartAsync(_data.Path);
        Assert.NotNull(_warpd.AdminToken);
        foreach (var ns in new[] { "team-a", "team-b" })
        {
            await SendAsync(HttpMethod.Post, "v1/namespaces", _warpd.AdminToken, new JsonObject { ["name"] = ns }, HttpStatusCode.Created);
        }

        _tokens["view-a"] = await TenantAsync("team-a", "viewer", "view");
        _tokens["edit-a"] = await TenantAsync("team-a", "editor", "edit");
        _tokens["admin-a"] = await TenantAsync("team-a", "boss", "admin");
        _tokens["admin-b"] = await TenantAsync("team-b", "boss", "admin");
        _tokens["edit-b"] = await TenantAsync("team-b", "editor", "edit");
        _tokens["cluster-admin"] = _warpd.AdminToken!;
    }

    public async Task DisposeAsync()
    {
        await _warpd.DisposeAsync();
        _data.Dispose();
    }

    /// <summary>A service account in <paramref name="ns"/> bound to <paramref name="role"/> there; returns its token.</summary>
    private async Task<string> TenantAsync(string ns, string name, string role)
    {
        await SendAsync(HttpMethod.Post, $"v1/namespaces/{ns}/serviceaccounts", _warpd.AdminToken, new JsonObject { ["name"] = name }, HttpStatusCode.Created);
        await SendAsync(HttpMethod.Post, $"v1/namespaces/{ns}/rolebindings", _warpd.AdminToken, new JsonObject { ["name"] = $"{name}-{role}", ["role"] = role, ["subjects"] = new JsonArray($"serviceaccount:{ns}:{name}") }, HttpStatusCode.Created);
        var created = await SendAsync(HttpMethod.Post, $"v1/namespaces/{ns}/serviceaccounts/{name}/tokens", _warpd.AdminToken, new JsonObject(), HttpStatusCode.Created);
        return created!["token"]!.GetValue<string>();
    }

    private async Task<JsonNode?> SendAsync(HttpMethod method, string path, string? token, JsonNode? body, HttpStatusCode expected)
    {
        using var response = await RawAsync(method, path, token, body is null ? null : new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path}: expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return text.Length > 0 && text.TrimStart().StartsWith('{') || text.TrimStart().StartsWith('[') ? JsonNode.Parse(text) : null;
    }

    private async Task<HttpResponseMessage> RawAsync(HttpMethod method, string path, string? token, HttpContent? content = null)
    {
        using var client = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{_warpd.ApiPort}/"));
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        var response = await client.SendAsync(request);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static string Manifest(string name, string ns, string route) => WarpApi.Manifest(name, route: route).Replace("[package]\n", $"[package]\nnamespace = \"{ns}\"\n", StringComparison.Ordinal);

    private async Task<HttpResponseMessage> DeployAsync(string token, string name, string ns, string route)
    {
        using var form = WarpApi.DeploymentForm(Manifest(name, ns, route), await File.ReadAllBytesAsync(TestPaths.Hello));
        return await RawAsync(HttpMethod.Put, $"v1/deployments/{name}?namespace={ns}", token, form);
    }

    [Fact]
    public async Task Anonymous_calls_get_401_problem_with_a_bearer_challenge_and_health_stays_open()
    {
        using var health = await RawAsync(HttpMethod.Get, "v1/health", null);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        using var anonymous = await RawAsync(HttpMethod.Get, "v1/deployments", null);
        var problem = await anonymous.AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Contains("Bearer realm=\"warpgrid\"", anonymous.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Contains("credential", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);

        using var bogus = await RawAsync(HttpMethod.Get, "v1/deployments", "wgt.aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        await bogus.AssertProblemAsync(HttpStatusCode.Unauthorized);
        Assert.Contains("invalid_token", bogus.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        // The ingress is anonymous and unchanged.
        Assert.Equal(HttpStatusCode.NotFound, (await _warpd.Ingress.GetAsync("/nothing")).StatusCode);
    }

    /// <summary>
    /// Every endpoint the node maps (from its own route table) × every identity: anonymous → 401; a caller whose role
    /// lacks the permission in the namespace the call is about → 403 naming it; anyone else gets past authorization.
    /// A new endpoint without a policy cannot even be mapped, and one with a policy is checked here automatically.
    /// </summary>
    [Fact]
    public async Task Authorization_matrix_over_every_mapped_endpoint()
    {
        var routes = (await SendAsync(HttpMethod.Get, "v1/auth/routes", _tokens["view-a"], null, HttpStatusCode.OK))!.AsArray();
        Assert.True(routes.Count > 40, "the route table lists the API: " + routes.ToJsonString());
        var identities = new[] { "anonymous", "view-a", "edit-a", "admin-b", "cluster-admin" };
        var failures = new List<string>();
        var cases = routes.SelectMany(r => (r!["methods"]?.AsArray() ?? new JsonArray("GET")).Select(m => (Method: m!.GetValue<string>(), Route: r!["route"]!.GetValue<string>(), Permission: r["permission"]!.GetValue<string>(), Scope: r["scope"]?.GetValue<string>())))
            .OrderBy(c => c.Method == "DELETE" ? 1 : 0) // deletes last: a cluster-admin's delete must not remove what later calls need
            .ToList();
        foreach (var identity in identities)
        {
            foreach (var (method, route, permission, scope) in cases)
            {
                var path = route.TrimStart('/')
                    .Replace("{namespace}", "team-a", StringComparison.Ordinal)
                    .Replace("{**key}", "matrix-key", StringComparison.Ordinal)
                    .Replace("{address}", "127.0.0.1:1", StringComparison.Ordinal)
                    .Replace("{id}", "nosuchid", StringComparison.Ordinal)
                    .Replace("{name}", "nosuch-x", StringComparison.Ordinal);
                path += (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "namespace=team-a";
                if (identity == "cluster-admin" && method == "DELETE" && route.EndsWith("/namespaces/{namespace}", StringComparison.Ordinal))
                {
                    continue; // would remove the tenants' namespace for the identities after it
                }

                using var response = await RawAsync(new HttpMethod(method), path, identity == "anonymous" ? null : _tokens[identity], method is "POST" or "PUT" ? new StringContent(string.Empty) : null);
                var status = (int)response.StatusCode;
                var expected = Expected(identity, permission, scope);
                bool ok = expected switch
                {
                    401 => status == 401,
                    403 => status == 403 && (await response.Content.ReadAsStringAsync()).Contains(permission, StringComparison.Ordinal),
                    _ => status is not (401 or 403),
                };
                if (!ok)
                {
                    failures.Add($"{identity} {method} /{path} ({permission}, {scope}): expected {(expected == 0 ? "not 401/403" : expected)}, got {status}: {await response.Content.ReadAsStringAsync()}");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    /// <summary>What a built-in role may do (Kubernetes' meanings), as the test's own statement of the rules.</summary>
    private static int Expected(string identity, string permission, string? scope)
    {
        if (permission == "anonymous")
        {
            return 0;
        }

        if (identity == "anonymous")
        {
            return 401;
        }

        if (permission == "authenticated" || identity == "cluster-admin")
        {
            return 0;
        }

        var parts = permission.Split(' ');
        var (verb, resource) = (parts[0], parts[1]);
        var role = identity[..identity.IndexOf('-', StringComparison.Ordinal)];
        bool grants = role switch
        {
            "view" => (resource == "deployments" && verb is "get" or "list" or "watch" or "logs") || (resource == "serviceaccounts" && verb is "get" or "list") || (resource, verb) == ("namespaces", "get"),
            "edit" => resource is "deployments" or "secrets" || (resource == "serviceaccounts" && verb is "get" or "list") || (resource, verb) == ("namespaces", "get"),
            "admin" => resource is "deployments" or "serviceaccounts" or "tokens" or "rolebindings" or "secrets" || (resource, verb) == ("namespaces", "get"),
            _ => false,
        };
        bool inTeamA = identity.EndsWith("-a", StringComparison.Ordinal);
        return scope switch
        {
            "anynamespace" => grants ? 0 : 403,
            "namespace" or "deployment" => grants && inTeamA ? 0 : 403,
            _ => 403, // cluster-scoped: only cluster-wide bindings
        };
    }

    [Fact]
    public async Task Tenants_cannot_see_change_tail_or_steal_routes_of_another_namespace()
    {
        using (var deployed = await DeployAsync(_tokens["edit-a"], "app-a", "team-a", "/app-a"))
        {
            Assert.Equal(HttpStatusCode.Created, deployed.StatusCode);
        }

        Assert.Equal("Hello from WarpGrid!\n", await _warpd.Ingress.GetStringAsync("/app-a"));

        // team-b sees nothing of it, by list or by name, and cannot tail, run, change or delete it.
        var listed = (await SendAsync(HttpMethod.Get, "v1/deployments", _tokens["edit-b"], null, HttpStatusCode.OK))!.AsArray();
        Assert.DoesNotContain(listed, d => d!["name"]!.GetValue<string>() == "app-a");
        foreach (var (method, path) in new[] { ("GET", "v1/deployments/app-a"), ("GET", "v1/deployments/app-a?namespace=team-b"), ("GET", "v1/deployments/app-a/logs"), ("GET", "v1/deployments/app-a/instances"), ("DELETE", "v1/deployments/app-a"), ("DELETE", "v1/deployments/app-a?namespace=team-b") })
        {
            using var refused = await RawAsync(new HttpMethod(method), path, _tokens["admin-b"]);
            var problem = await refused.AssertProblemAsync(HttpStatusCode.Forbidden);
            Assert.Contains("team-a", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        using (var takeover = await DeployAsync(_tokens["edit-b"], "app-a", "team-b", "/other"))
        {
            await takeover.AssertProblemAsync(HttpStatusCode.Forbidden);
        }

        using (var steal = await DeployAsync(_tokens["edit-b"], "app-b", "team-b", "/app-a"))
        {
            var problem = await steal.AssertProblemAsync(HttpStatusCode.Conflict);
            Assert.DoesNotContain("app-a'", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Contains("another namespace", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // A tenant cannot put a deployment into a namespace it has no say in.
        using (var elsewhere = await DeployAsync(_tokens["edit-a"], "sneaky", "team-b", "/sneaky"))
        {
            await elsewhere.AssertProblemAsync(HttpStatusCode.Forbidden);
        }

        // The viewer of team-a sees it; the cluster admin sees everything.
        Assert.Contains((await SendAsync(HttpMethod.Get, "v1/deployments", _tokens["view-a"], null, HttpStatusCode.OK))!.AsArray(), d => d!["name"]!.GetValue<string>() == "app-a");
        Assert.Equal("Hello from WarpGrid!\n", await _warpd.Ingress.GetStringAsync("/app-a"));
    }

    [Fact]
    public async Task Quota_refuses_the_deploy_that_would_exceed_it_and_the_namespace_shows_use_against_limit()
    {
        await SendAsync(HttpMethod.Put, "v1/namespaces/team-b", _warpd.AdminToken, new JsonObject { ["quota"] = new JsonObject { ["deployments"] = 1, ["memory"] = "100GiB" } }, HttpStatusCode.OK);
        using (var first = await DeployAsync(_tokens["edit-b"], "quota-one", "team-b", "/quota-one"))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        using (var second = await DeployAsync(_tokens["edit-b"], "quota-two", "team-b", "/quota-two"))
        {
            var problem = await second.AssertProblemAsync(HttpStatusCode.Forbidden);
            var detail = problem["detail"]!.GetValue<string>();
            Assert.Contains("quota deployments exceeded", detail, StringComparison.Ordinal);
            Assert.Contains("limit 1", detail, StringComparison.Ordinal);
        }

        Assert.Null(await _warpd.GetDeploymentAsync("quota-two"));
        var view = (await SendAsync(HttpMethod.Get, "v1/namespaces/team-b", _tokens["admin-b"], null, HttpStatusCode.OK))!;
        Assert.Equal(1, view["quota"]!["deployments"]!["used"]!.GetValue<int>());
        Assert.Equal(1, view["quota"]!["deployments"]!["limit"]!.GetValue<int>());
        Assert.Equal(100L << 30, view["quota"]!["memory"]!["limit"]!.GetValue<long>());
    }

    [Fact]
    public async Task Revoked_and_expired_tokens_are_refused_and_every_refusal_is_audited()
    {
        var created = await SendAsync(HttpMethod.Post, "v1/namespaces/team-a/serviceaccounts/viewer/tokens", _tokens["admin-a"], new JsonObject { ["ttl"] = "2s" }, HttpStatusCode.Created);
        var shortLived = created!["token"]!.GetValue<string>();
        var id = created["id"]!.GetValue<string>();
        await SendAsync(HttpMethod.Get, "v1/auth/whoami", shortLived, null, HttpStatusCode.OK);
        await Poll.UntilAsync(async () => (await RawAsync(HttpMethod.Get, "v1/auth/whoami", shortLived)).StatusCode == HttpStatusCode.Unauthorized, "the 2 s token to expire");

        var revocable = (await SendAsync(HttpMethod.Post, "v1/namespaces/team-a/serviceaccounts/viewer/tokens", _tokens["admin-a"], new JsonObject(), HttpStatusCode.Created))!;
        var token = revocable["token"]!.GetValue<string>();
        await SendAsync(HttpMethod.Get, "v1/deployments", token, null, HttpStatusCode.OK);
        await SendAsync(HttpMethod.Delete, $"v1/namespaces/team-a/tokens/{revocable["id"]!.GetValue<string>()}", _tokens["admin-a"], null, HttpStatusCode.NoContent);
        using (var after = await RawAsync(HttpMethod.Get, "v1/deployments", token))
        {
            var problem = await after.AssertProblemAsync(HttpStatusCode.Unauthorized);
            Assert.Contains("revoked", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // Listing shows ids only; no token or hash leaves the node.
        var listed = (await SendAsync(HttpMethod.Get, "v1/namespaces/team-a/tokens", _tokens["admin-a"], null, HttpStatusCode.OK))!.ToJsonString();
        Assert.DoesNotContain(token[13..], listed, StringComparison.Ordinal);
        Assert.DoesNotContain("secretHash", listed, StringComparison.Ordinal);

        // A forbidden call and the refused ones are in the audit log, with identity, source and reason, without secrets.
        using (await RawAsync(HttpMethod.Post, "v1/namespaces", _tokens["view-a"], new StringContent("{\"name\":\"nope\"}", Encoding.UTF8, "application/json")))
        {
        }

        JsonArray records = [];
        await Poll.UntilAsync(
            async () =>
            {
                records = (await SendAsync(HttpMethod.Get, "v1/audit?limit=1000", _warpd.AdminToken, null, HttpStatusCode.OK))!.AsArray();
                return records.Any(r => r!["outcome"]!.GetValue<string>() == "forbidden" && r["identity"]!.GetValue<string>() == "serviceaccount:team-a:viewer" && r["resource"]!.GetValue<string>() == "namespaces")
                    && records.Any(r => r!["outcome"]!.GetValue<string>() == "unauthenticated" && (r["reason"]?.GetValue<string>() ?? string.Empty).Contains(id, StringComparison.Ordinal));
            },
            "the audit records of the refusals");
        var forbidden = records.First(r => r!["outcome"]!.GetValue<string>() == "forbidden")!;
        Assert.Equal("127.0.0.1", forbidden["sourceAddress"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(forbidden["requestId"]?.GetValue<string>()));
        var all = records.ToJsonString();
        Assert.DoesNotContain(token[13..], all, StringComparison.Ordinal);
        Assert.DoesNotContain(_warpd.AdminToken![13..], all, StringComparison.Ordinal);
        Assert.Contains(records, r => r!["outcome"]!.GetValue<string>() == "allowed" && r["verb"]!.GetValue<string>() == "create" && r["resource"]!.GetValue<string>() == "namespaces");
    }

    [Fact]
    public async Task Nobody_grants_what_they_do_not_hold()
    {
        // An admin of team-a cannot grant in team-b, nor cluster-wide; an editor cannot bind at all.
        var binding = new JsonObject { ["name"] = "x", ["role"] = "admin", ["subjects"] = new JsonArray("user:mallory") };
        await SendAsync(HttpMethod.Post, "v1/namespaces/team-b/rolebindings", _tokens["admin-a"], binding.DeepClone(), HttpStatusCode.Forbidden);
        await SendAsync(HttpMethod.Post, "v1/rolebindings", _tokens["admin-a"], binding.DeepClone(), HttpStatusCode.Forbidden);
        await SendAsync(HttpMethod.Post, "v1/namespaces/team-a/rolebindings", _tokens["edit-a"], binding.DeepClone(), HttpStatusCode.Forbidden);
        var answer = await SendAsync(HttpMethod.Post, "v1/auth/can-i", _tokens["edit-a"], new JsonObject { ["verb"] = "create", ["resource"] = "deployments", ["namespace"] = "team-a" }, HttpStatusCode.OK);
        Assert.True(answer!["allowed"]!.GetValue<bool>());
        answer = await SendAsync(HttpMethod.Post, "v1/auth/can-i", _tokens["edit-a"], new JsonObject { ["verb"] = "create", ["resource"] = "deployments", ["namespace"] = "team-b" }, HttpStatusCode.OK);
        Assert.False(answer!["allowed"]!.GetValue<bool>());

        // The admin of team-a may grant view there.
        await SendAsync(HttpMethod.Post, "v1/namespaces/team-a/rolebindings", _tokens["admin-a"], new JsonObject { ["name"] = "alice-view", ["role"] = "view", ["subjects"] = new JsonArray("user:alice") }, HttpStatusCode.Created);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_bootstrap_admin_token_is_0600_shown_once_and_survives_a_restart()
    {
        var file = _warpd.AdminTokenFile;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var token = _warpd.AdminToken!;
        Assert.Single(_warpd.Lines, l => l.Contains(token, StringComparison.Ordinal));

        // The health endpoint tells a local caller where the credential is, and nothing more.
        var health = JsonNode.Parse(await (await RawAsync(HttpMethod.Get, "v1/health", null)).Content.ReadAsStringAsync())!;
        Assert.Equal(Path.GetFullPath(file), health["credentialFile"]!.GetValue<string>());
        Assert.DoesNotContain(token, health.ToJsonString(), StringComparison.Ordinal);

        await _warpd.StopAsync();
        await _warpd.DisposeAsync();
        _warpd = await WarpdProcess.StartAsync(_data.Path);
        Assert.Equal(token, _warpd.AdminToken);
        Assert.DoesNotContain(_warpd.Lines, l => l.Contains(token, StringComparison.Ordinal));
        await SendAsync(HttpMethod.Get, "v1/auth/whoami", token, null, HttpStatusCode.OK);
    }
}
