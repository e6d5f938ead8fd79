using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Scheduling;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting;
using WarpGrid.Hosting.Security;

namespace Microsoft.AspNetCore.Builder;

/// <summary>The nodes, join-token and placement endpoints of the REST API (cluster half of issue 6/7).</summary>
public static class WarpGridNodesApiExtensions
{
    /// <summary>
    /// Maps, under an API group: <c>GET /nodes</c>, <c>GET|DELETE /nodes/{name}</c>,
    /// <c>POST /nodes/{name}/labels|taints|cordon|uncordon|drain</c>, <c>GET|POST /tokens</c>,
    /// <c>GET /deployments/{name}/placement[?explain=true]</c>. Called by <c>MapWarpGridApi</c>.
    /// </summary>
    public static RouteGroupBuilder MapWarpGridNodesApi(this RouteGroupBuilder api)
    {
        ArgumentNullException.ThrowIfNull(api);
        api.MapGet("/nodes", async (HttpContext http, CancellationToken cancellationToken) =>
        {
            if (Plane(http) is not { } plane)
            {
                return LocalNodes(http);
            }

            var nodes = await plane.ListNodesAsync(cancellationToken).ConfigureAwait(false);
            var allocations = await Allocations(http, cancellationToken).ConfigureAwait(false);
            return Results.Json(nodes.Select(n => NodeView.From(n, plane, allocations)).ToList(), Json);
        }).RequirePermission("list", "nodes", PermissionScope.Cluster);
        api.MapGet("/nodes/{name}", async (string name, HttpContext http, CancellationToken cancellationToken) =>
        {
            if (Plane(http) is not { } plane)
            {
                return LocalNodes(http, name);
            }

            var node = await plane.GetNodeAsync(name, cancellationToken).ConfigureAwait(false);
            return node is null ? NodeNotFound(name) : Results.Json(NodeView.From(node, plane, await Allocations(http, cancellationToken).ConfigureAwait(false)), Json);
        }).RequirePermission("get", "nodes", PermissionScope.Cluster);
        api.MapDelete("/nodes/{name}", async (string name, HttpContext http, CancellationToken cancellationToken) =>
        {
            if (Plane(http) is not { } plane)
            {
                return NotControlPlane(http);
            }

            return await plane.RemoveNodeAsync(name, cancellationToken).ConfigureAwait(false) ? Results.NoContent() : NodeNotFound(name);
        }).RequirePermission("delete", "nodes", PermissionScope.Cluster);
        api.MapPost("/nodes/{name}/labels", (string name, HttpContext http) => UpdateAsync(http, name, LabelsChange)).RequirePermission("update", "nodes", PermissionScope.Cluster);
        api.MapPost("/nodes/{name}/taints", (string name, HttpContext http) => UpdateAsync(http, name, TaintsChange)).RequirePermission("update", "nodes", PermissionScope.Cluster);
        api.MapPost("/nodes/{name}/cordon", (string name, HttpContext http) => UpdateAsync(http, name, (_, _) => (r => r with { Cordoned = true }, null))).RequirePermission("cordon", "nodes", PermissionScope.Cluster);
        api.MapPost("/nodes/{name}/uncordon", (string name, HttpContext http) => UpdateAsync(http, name, (_, _) => (r => r with { Cordoned = false, Draining = false }, null))).RequirePermission("cordon", "nodes", PermissionScope.Cluster);
        api.MapPost("/nodes/{name}/drain", (string name, HttpContext http) => UpdateAsync(http, name, (_, _) => (r => r with { Cordoned = true, Draining = true }, null))).RequirePermission("drain", "nodes", PermissionScope.Cluster);

        api.MapGet("/tokens", async (HttpContext http, CancellationToken cancellationToken) =>
            Plane(http) is { } plane
                ? Results.Json((await plane.Tokens.ListAsync(cancellationToken).ConfigureAwait(false)).Select(t => new { id = t.Id, createdAt = t.CreatedAt, expiresAt = t.ExpiresAt, usesRemaining = t.UsesRemaining, description = t.Description }).ToList(), Json)
                : NotControlPlane(http)).RequirePermission("list", "jointokens", PermissionScope.Cluster);
        api.MapPost("/tokens", async (HttpContext http, CancellationToken cancellationToken) =>
        {
            if (Plane(http) is not { } plane)
            {
                return NotControlPlane(http);
            }

            var body = await ReadBodyAsync(http, cancellationToken).ConfigureAwait(false);
            if (body.Error is not null)
            {
                return body.Error;
            }

            var lifetime = http.RequestServices.GetRequiredService<IOptions<WarpGridClusterOptions>>().Value.TokenLifetime;
            string? description = null;
            int? uses = null;
            if (body.Root is { } root)
            {
                if (root.TryGetProperty("ttl", out var ttl))
                {
                    if (ttl.ValueKind != JsonValueKind.String || !DurationParser.TryParse(ttl.GetString()!, out var parsed, out _) || parsed <= TimeSpan.Zero)
                    {
                        return Bad("ttl", "'ttl' must be a positive duration such as \"1h\" or \"30m\"");
                    }

                    lifetime = parsed;
                }

                if (root.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String)
                {
                    description = d.GetString();
                }

                if (root.TryGetProperty("uses", out var u))
                {
                    if (u.ValueKind != JsonValueKind.Number || !u.TryGetInt32(out var n) || n <= 0)
                    {
                        return Bad("uses", "'uses' must be a positive whole number: how many joins the token allows");
                    }

                    uses = n;
                }
            }

            var (token, record) = await plane.Tokens.CreateAsync(plane.Authority.PinnedHash, lifetime, description, cancellationToken, uses).ConfigureAwait(false);
            return Results.Json(new { token = token.ToString(), id = record.Id, expiresAt = record.ExpiresAt, usesRemaining = record.UsesRemaining, caHash = plane.Authority.PinnedHash }, Json, statusCode: 201);
        }).RequirePermission("create", "jointokens", PermissionScope.Cluster);

        api.MapDelete("/tokens/{id}", async (string id, HttpContext http, CancellationToken cancellationToken) =>
            Plane(http) is not { } plane
                ? NotControlPlane(http)
                : await plane.Tokens.DeleteAsync(id, cancellationToken).ConfigureAwait(false)
                    ? Results.NoContent()
                    : Problem(404, "not_found", "Token not found", $"no join token with id '{id}' (list them with: warp tokens list)"))
            .RequirePermission("delete", "jointokens", PermissionScope.Cluster);

        api.MapGet("/deployments/{name}/placement", async (string name, bool? explain, HttpContext http, CancellationToken cancellationToken) =>
        {
            if (Plane(http) is not { } plane)
            {
                var registry = http.RequestServices.GetRequiredService<DeploymentRegistry>();
                return registry.Get(name) is { } local
                    ? Results.Json(new { deployment = name, desired = local.Manifest.Runtime.MinInstances, placed = local.Pool is null ? 0 : 1, nodes = new Dictionary<string, int> { [LocalName] = local.Pool is null ? 0 : 1 }, pending = (string?)null }, Json)
                    : DeploymentNotFound(name);
            }

            if (!plane.Placements.TryGetValue(name, out var placement))
            {
                return DeploymentNotFound(name);
            }

            object? explanation = null;
            if (explain == true && await plane.ExplainAsync(name, cancellationToken).ConfigureAwait(false) is { } e)
            {
                explanation = new
                {
                    chosen = e.Result.Instances[0].NodeName,
                    pending = e.Result.Pending?.ToString(),
                    nodes = e.Nodes.Select(n => new
                    {
                        node = n.NodeName,
                        feasible = n.Feasible,
                        totalScore = n.TotalScore,
                        filters = n.Filters.Select(f => new { plugin = f.Plugin, passed = f.Passed, reason = f.Reason }),
                        scores = n.Scores.Select(s => new { plugin = s.Plugin, score = s.Score, weight = s.Weight }),
                    }),
                };
            }

            return Results.Json(new
            {
                deployment = placement.Deployment,
                revision = placement.Revision,
                desired = placement.Desired,
                placed = placement.Placed,
                draining = placement.Draining,
                nodes = placement.Nodes,
                pending = placement.Pending?.ToString(),
                reasons = placement.Pending?.Reasons.Select(r => new { reason = r.Reason, nodes = r.NodeCount }),
                message = placement.Message,
                constraints = placement.Constraints,
                explain = explanation,
            }, Json);
        }).RequirePermission("get", "deployments", PermissionScope.Deployment);
        return api;
    }

    /// <summary>
    /// Refuses deployment writes on an agent with 409 (deployments are managed by the control plane). Applied to the
    /// write endpoints only: a filter on streaming endpoints (logs follow) changes how their response is written.
    /// </summary>
    internal static async ValueTask<object?> RefuseOnAgent(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (ClusterBuilderExtensions.IsAgentWrite(http))
        {
            var join = http.RequestServices.GetService<IOptions<WarpGridAgentOptions>>()?.Value.Join;
            return Problem(409, "agent", "This node is an agent", $"deployments are managed by the control plane ({join}); send this request to its API");
        }

        return await next(context).ConfigureAwait(false);
    }

    private const string LocalName = "local";

    private static JsonSerializerOptions Json => WarpGridApplicationExtensions.Json;

    private static ClusterControlPlane? Plane(HttpContext http) =>
        ClusterBuilderExtensions.RoleOf(http.RequestServices) == ClusterRole.ControlPlane ? http.RequestServices.GetRequiredService<ClusterControlPlane>() : null;

    private static async Task<IReadOnlyList<AllocationRecord>> Allocations(HttpContext http, CancellationToken cancellationToken)
    {
        var store = http.RequestServices.GetRequiredService<IClusterStore>();
        var entries = await store.ListAsync(AllocationRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
        return [.. entries.Select(e => AllocationRecord.FromBytes(e.Value.Span))];
    }

    /// <summary>A standalone node lists itself: ready, with its instance budget.</summary>
    private static IResult LocalNodes(HttpContext http, string? name = null)
    {
        if (ClusterBuilderExtensions.RoleOf(http.RequestServices) == ClusterRole.Agent)
        {
            return NotControlPlane(http);
        }

        if (name is not null && name != LocalName)
        {
            return NodeNotFound(name);
        }

        var runtime = http.RequestServices.GetRequiredService<WasmNodeRuntime>();
        var registry = http.RequestServices.GetRequiredService<DeploymentRegistry>();
        var view = new
        {
            name = LocalName,
            status = NodeStatus.Ready,
            cordoned = false,
            draining = false,
            labels = new Dictionary<string, string>(),
            taints = Array.Empty<string>(),
            capacity = new { memoryBytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, cpuWeight = Environment.ProcessorCount * 1000L, instanceSlots = runtime.Budget.Limit },
            allocated = new { instances = runtime.Budget.Live },
            deployments = registry.Active.Values.Where(a => a.Pool is not null).ToDictionary(a => a.Name, a => a.Pool!.Stats.Live),
        };
        return name is null ? Results.Json(new[] { view }, Json) : Results.Json(view, Json);
    }

    private delegate (Func<NodeRecord, NodeRecord>? Change, IResult? Error) ChangeBuilder(JsonElement? body, HttpContext http);

    private static async Task<IResult> UpdateAsync(HttpContext http, string name, ChangeBuilder build)
    {
        if (Plane(http) is not { } plane)
        {
            return NotControlPlane(http);
        }

        var cancellationToken = http.RequestAborted;
        var body = await ReadBodyAsync(http, cancellationToken).ConfigureAwait(false);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var (change, error) = build(body.Root, http);
        if (error is not null)
        {
            return error;
        }

        try
        {
            var updated = await plane.UpdateNodeAsync(name, change!, cancellationToken).ConfigureAwait(false);
            return Results.Json(NodeView.From(updated, plane, await Allocations(http, cancellationToken).ConfigureAwait(false)), Json);
        }
        catch (NodeNotFoundException)
        {
            return NodeNotFound(name);
        }
        catch (StoreConflictException)
        {
            return Problem(409, "conflict", "Conflict", $"node '{name}' changed while it was being updated; try again");
        }
    }

    /// <summary><c>{"labels": {"k": "v"}, "remove": ["k2"]}</c>.</summary>
    private static (Func<NodeRecord, NodeRecord>?, IResult?) LabelsChange(JsonElement? body, HttpContext http)
    {
        var set = new Dictionary<string, string>(StringComparer.Ordinal);
        var remove = new List<string>();
        if (body is not { ValueKind: JsonValueKind.Object } root)
        {
            return (null, Bad("body", "send {\"labels\": {\"key\": \"value\"}, \"remove\": [\"key\"]}"));
        }

        if (root.TryGetProperty("labels", out var labels))
        {
            if (labels.ValueKind != JsonValueKind.Object)
            {
                return (null, Bad("labels", "'labels' must be an object of string values"));
            }

            foreach (var p in labels.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String || !NodeNames.IsValidLabelKey(p.Name) || !NodeNames.IsValidLabelValue(p.Value.GetString()))
                {
                    return (null, Bad($"labels.{p.Name}", "label keys are 1-63 letters, digits, '-', '_', '.', '/'; values are strings of at most 63 letters, digits, '-', '_', '.'"));
                }

                set[p.Name] = p.Value.GetString()!;
            }
        }

        if (root.TryGetProperty("remove", out var rm))
        {
            if (rm.ValueKind != JsonValueKind.Array || rm.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            {
                return (null, Bad("remove", "'remove' must be an array of label keys"));
            }

            remove.AddRange(rm.EnumerateArray().Select(e => e.GetString()!));
        }

        return (r =>
        {
            var next = new Dictionary<string, string>(r.Labels, StringComparer.Ordinal);
            foreach (var k in remove)
            {
                next.Remove(k);
            }

            foreach (var (k, v) in set)
            {
                next[k] = v;
            }

            return r with { Labels = next };
        }, null);
    }

    /// <summary><c>{"add": ["k=v:NoSchedule"], "remove": ["k"]}</c> (remove drops every taint with that key).</summary>
    private static (Func<NodeRecord, NodeRecord>?, IResult?) TaintsChange(JsonElement? body, HttpContext http)
    {
        if (body is not { ValueKind: JsonValueKind.Object } root)
        {
            return (null, Bad("body", "send {\"add\": [\"key=value:NoSchedule\"], \"remove\": [\"key\"]}"));
        }

        var add = new List<NodeTaint>();
        var remove = new List<string>();
        if (root.TryGetProperty("add", out var a))
        {
            if (a.ValueKind != JsonValueKind.Array)
            {
                return (null, Bad("add", "'add' must be an array of taints like \"gpu=true:NoSchedule\""));
            }

            int i = 0;
            foreach (var e in a.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String || !NodeTaint.TryParse(e.GetString(), out var taint, out var error))
                {
                    return (null, Bad($"add[{i}]", e.ValueKind == JsonValueKind.String ? NodeTaint.TryParse(e.GetString(), out _, out var why) ? "invalid" : why! : "must be a string"));
                }

                add.Add(taint!);
                i++;
            }
        }

        if (root.TryGetProperty("remove", out var rm))
        {
            if (rm.ValueKind != JsonValueKind.Array || rm.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            {
                return (null, Bad("remove", "'remove' must be an array of taint keys"));
            }

            remove.AddRange(rm.EnumerateArray().Select(e => e.GetString()!));
        }

        return (r => r with
        {
            Taints = [.. r.Taints.Where(t => !remove.Contains(t.Key) && !add.Any(n => n.Key == t.Key && n.Effect == t.Effect)).Concat(add)],
        }, null);
    }

    private static async Task<(JsonElement? Root, IResult? Error)> ReadBodyAsync(HttpContext http, CancellationToken cancellationToken)
    {
        if (http.Request.ContentLength is 0 or null && !http.Request.HasJsonContentType())
        {
            return (null, null);
        }

        try
        {
            using var document = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: cancellationToken).ConfigureAwait(false);
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException ex)
        {
            return (null, Bad("body", $"the JSON body is malformed at line {ex.LineNumber + 1}: {ex.Message}"));
        }
    }

    private static IResult NotControlPlane(HttpContext http)
    {
        var role = ClusterBuilderExtensions.RoleOf(http.RequestServices);
        return role == ClusterRole.Agent
            ? Problem(409, "agent", "This node is an agent", $"nodes and tokens are managed by the control plane ({http.RequestServices.GetService<IOptions<WarpGridAgentOptions>>()?.Value.Join}); send this request to its API")
            : Problem(409, "standalone", "This node is not a cluster control plane", "start warpd with --cluster ADDR:PORT to let agents join, then manage nodes and tokens here");
    }

    private static IResult NodeNotFound(string name) => Problem(404, "not_found", "Node not found", $"no node named '{name}' (list nodes with: warp nodes list)");

    private static IResult DeploymentNotFound(string name) => Problem(404, "not_found", "Deployment not found", $"no deployment named '{name}'");

    private static IResult Bad(string field, string message) =>
        WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid request", $"{field}: {message}", errors: [new DeploymentError(field, message)]);

    private static IResult Problem(int status, string code, string title, string detail) => WarpGridApplicationExtensions.Problem(status, code, title, detail);

    /// <summary>A node as the API shows it.</summary>
    private sealed record NodeView(
        string Name,
        NodeStatus Status,
        string? StatusReason,
        bool Cordoned,
        bool Draining,
        IReadOnlyDictionary<string, string> Labels,
        IReadOnlyList<string> Taints,
        object Capacity,
        object Allocated,
        IReadOnlyDictionary<string, int> Deployments,
        DateTimeOffset? LastHeartbeat,
        string? ApiUrl,
        string? IngressUrl,
        string? Version,
        DateTimeOffset JoinedAt,
        DateTimeOffset? CertificateNotAfter)
    {
        public static NodeView From(NodeRecord n, ClusterControlPlane plane, IReadOnlyList<AllocationRecord> allocations)
        {
            var mine = allocations.Where(a => a.Node == n.Name).ToList();
            var memory = mine.Sum(a => a.Instances * ManifestMemory(a));
            var cpu = mine.Sum(a => a.Instances * ManifestCpu(a));
            return new NodeView(
                n.Name,
                n.Status,
                n.StatusReason,
                n.Cordoned,
                n.Draining,
                n.Labels,
                [.. n.Taints.Select(t => t.ToString())],
                new { memoryBytes = n.MemoryBytes, cpuWeight = n.CpuWeight, instanceSlots = n.InstanceSlots },
                new { instances = mine.Sum(a => a.Instances), memoryBytes = memory, cpuWeight = cpu },
                mine.ToDictionary(a => a.Deployment, a => a.Instances, StringComparer.Ordinal),
                plane.Health.LastHeartbeatOf(n.Name),
                n.ApiUrl,
                n.IngressUrl,
                n.Version,
                n.JoinedAt,
                n.CertificateNotAfter);
        }

        private static long ManifestMemory(AllocationRecord a) => TryManifest(a)?.Runtime.Resources.MemoryLimitBytes ?? 0;

        private static long ManifestCpu(AllocationRecord a) => TryManifest(a)?.Runtime.Resources.CpuWeight ?? 0;

        private static WarpManifest? TryManifest(AllocationRecord a)
        {
            try
            {
                return DeploymentManager.ParseManifest(a.Record.Manifest);
            }
            catch (DeploymentValidationException)
            {
                return null;
            }
        }
    }
}
