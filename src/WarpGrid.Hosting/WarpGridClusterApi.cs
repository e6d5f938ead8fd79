using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using WarpGrid.Core.Storage;
using WarpGrid.Raft;

using WarpGrid.Hosting.Security;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the cluster endpoints: control-plane status, membership and the <c>/kv</c> store endpoint.</summary>
public static class WarpGridClusterApiExtensions
{
    /// <summary>The store prefix under which <c>/v1/kv/{key}</c> reads and writes; the rest of the store is not reachable through it.</summary>
    public const string KvPrefix = "kv/";

    /// <summary>
    /// Maps under <paramref name="prefix"/> (default <c>/v1</c>): <c>GET /cluster</c> (leader, term, commit index,
    /// members), <c>GET|POST /cluster/members</c>, <c>DELETE /cluster/members/{address}</c>, and
    /// <c>GET|PUT|DELETE /kv/{key}</c> (raw bytes under the store prefix <c>kv/</c>; <c>?expected=REV</c> for
    /// compare-and-set). Without <c>UseRaftStore()</c> the cluster endpoints describe a single embedded member.
    /// </summary>
    public static RouteGroupBuilder MapWarpGridClusterApi(this IEndpointRouteBuilder endpoints, string prefix = "/v1")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        RouteGroupBuilder api = endpoints.MapGroup(prefix);
        api.RequirePolicyOnEveryEndpoint();
        api.MapGet("/cluster", (IServiceProvider services, IClusterStore store) =>
            services.GetService<RaftClusterStore>() is { } raft
                ? Results.Json(StatusView(raft.GetStatus()), WarpGridApplicationExtensions.Json)
                : Results.Json(new { mode = "single", store = "embedded", revision = store.Revision }, WarpGridApplicationExtensions.Json)).RequirePermission("get", "cluster", PermissionScope.Cluster);
        api.MapGet("/cluster/members", (IServiceProvider services) =>
            services.GetService<RaftClusterStore>() is { } raft
                ? Results.Json(raft.GetStatus().Members, WarpGridApplicationExtensions.Json)
                : NoCluster()).RequirePermission("list", "members", PermissionScope.Cluster);
        api.MapPost("/cluster/members", async (HttpContext context, IServiceProvider services) =>
        {
            if (services.GetService<RaftClusterStore>() is not { } raft)
            {
                return NoCluster();
            }

            MemberRequest? request;
            try
            {
                request = await JsonSerializer.DeserializeAsync<MemberRequest>(context.Request.Body, WarpGridApplicationExtensions.Json, context.RequestAborted).ConfigureAwait(false);
            }
            catch (JsonException ex)
            {
                return WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid request", $"the body must be JSON {{\"address\": \"HOST:PORT\"}}: {ex.Message}");
            }

            if (request?.Address is not { Length: > 0 } address || !RaftStoreOptions.TryParseEndPoint(address, out _))
            {
                return WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid member address", "address must be the new member's Raft address, HOST:PORT with an IP address or localhost (e.g. 127.0.0.1:7404)");
            }

            return await MembershipAsync(() => raft.AddMemberAsync(address, context.RequestAborted), raft, address, added: true).ConfigureAwait(false);
        }).RequirePermission("create", "members", PermissionScope.Cluster);
        api.MapDelete("/cluster/members/{address}", async (string address, HttpContext context, IServiceProvider services) =>
        {
            if (services.GetService<RaftClusterStore>() is not { } raft)
            {
                return NoCluster();
            }

            if (!RaftStoreOptions.TryParseEndPoint(address, out _))
            {
                return WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid member address", $"'{address}' is not HOST:PORT with an IP address or localhost");
            }

            return await MembershipAsync(() => raft.RemoveMemberAsync(address, context.RequestAborted), raft, address, added: false).ConfigureAwait(false);
        }).RequirePermission("delete", "members", PermissionScope.Cluster);

        api.MapGet("/kv/{**key}", (string key, IClusterStore store, CancellationToken cancellationToken) => StoreCallAsync(key, async storeKey =>
        {
            StoreEntry? entry = await store.GetAsync(storeKey, cancellationToken).ConfigureAwait(false);
            if (entry is null)
            {
                return WarpGridApplicationExtensions.Problem(404, "not_found", "Key not found", $"no key '{key}'");
            }

            return new KvValueResult(entry);
        })).RequirePermission("get", "kv", PermissionScope.Cluster);
        api.MapPut("/kv/{**key}", async (string key, HttpContext context, IClusterStore store) =>
        {
            if (!TryExpected(context, out long? expected, out IResult? invalid))
            {
                return invalid!;
            }

            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted).ConfigureAwait(false);
            return await StoreCallAsync(key, async storeKey =>
            {
                long revision = await store.PutAsync(storeKey, body.ToArray(), expected, context.RequestAborted).ConfigureAwait(false);
                return Results.Json(new { key, revision }, WarpGridApplicationExtensions.Json);
            }).ConfigureAwait(false);
        }).RequirePermission("update", "kv", PermissionScope.Cluster);
        api.MapDelete("/kv/{**key}", (string key, HttpContext context, IClusterStore store) =>
        {
            if (!TryExpected(context, out long? expected, out IResult? invalid))
            {
                return Task.FromResult(invalid!);
            }

            return StoreCallAsync(key, async storeKey =>
                await store.DeleteAsync(storeKey, expected, context.RequestAborted).ConfigureAwait(false)
                    ? Results.NoContent()
                    : WarpGridApplicationExtensions.Problem(404, "not_found", "Key not found", $"no key '{key}'"));
        }).RequirePermission("delete", "kv", PermissionScope.Cluster);
        return api;
    }

    private static object StatusView(RaftClusterStatus status) => new
    {
        mode = "raft",
        member = status.Member,
        leader = status.Leader,
        isLeader = status.IsLeader,
        term = status.Term,
        commitIndex = status.CommitIndex,
        appliedIndex = status.AppliedIndex,
        revision = status.Revision,
        members = status.Members,
        fault = status.Fault,
    };

    private static IResult NoCluster() =>
        WarpGridApplicationExtensions.Problem(409, "not_clustered", "Not a control-plane member", "this node uses the embedded single-node store; start warpd with --raft-listen (and --raft-peers or --raft-join) to form a cluster");

    private static async Task<IResult> MembershipAsync(Func<Task<bool>> change, RaftClusterStore raft, string address, bool added)
    {
        try
        {
            bool done = await change().ConfigureAwait(false);
            return done
                ? Results.Json(new { address, added, members = raft.GetStatus().Members }, WarpGridApplicationExtensions.Json)
                : WarpGridApplicationExtensions.Problem(409, "membership_unchanged", "Membership not changed", added
                    ? $"{address} is already a member, or it did not catch up with the leader (is it running with --raft-join?)"
                    : $"{address} is not a member");
        }
        catch (ClusterUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static bool TryExpected(HttpContext context, out long? expected, out IResult? invalid)
    {
        expected = null;
        invalid = null;
        if (context.Request.Query.TryGetValue("expected", out var values))
        {
            if (!long.TryParse(values.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long parsed))
            {
                invalid = WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid expected revision", $"expected must be a non-negative integer revision (0: the key must not exist), got '{values}'");
                return false;
            }

            expected = parsed;
        }

        return true;
    }

    private static async Task<IResult> StoreCallAsync(string key, Func<string, Task<IResult>> call)
    {
        try
        {
            return await call(KvPrefix + key).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            return WarpGridApplicationExtensions.Problem(400, "invalid_key", "Invalid key or value", ex.Message);
        }
        catch (StoreConflictException ex)
        {
            return WarpGridApplicationExtensions.Problem(409, "conflict", "Revision conflict", $"'{key}' is at revision {ex.ActualRevision}, not {ex.ExpectedRevision}");
        }
        catch (ClusterUnavailableException ex)
        {
            return Unavailable(ex);
        }
    }

    private static IResult Unavailable(ClusterUnavailableException ex) =>
        WarpGridApplicationExtensions.Problem(503, "cluster_unavailable", "Cluster unavailable", ex.Message);

    private sealed record MemberRequest(string? Address);

    /// <summary>The value as the body, with its revisions in headers.</summary>
    private sealed class KvValueResult(StoreEntry entry) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.ContentType = "application/octet-stream";
            httpContext.Response.Headers["X-WarpGrid-Mod-Revision"] = entry.ModRevision.ToString(System.Globalization.CultureInfo.InvariantCulture);
            httpContext.Response.Headers["X-WarpGrid-Create-Revision"] = entry.CreateRevision.ToString(System.Globalization.CultureInfo.InvariantCulture);
            httpContext.Response.ContentLength = entry.Value.Length;
            await httpContext.Response.Body.WriteAsync(entry.Value, httpContext.RequestAborted).ConfigureAwait(false);
        }
    }
}
