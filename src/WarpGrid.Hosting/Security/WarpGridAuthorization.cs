using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Security;
using WarpGrid.Core.Storage;

namespace WarpGrid.Hosting.Security;

/// <summary>Where the namespace of a permission check comes from.</summary>
public enum PermissionScope
{
    /// <summary>A cluster-scoped resource: no namespace.</summary>
    Cluster,

    /// <summary>The route value <c>namespace</c>, else the query parameter <c>namespace</c>, else <c>default</c>.</summary>
    Namespace,

    /// <summary>
    /// The namespace of the deployment named by the route value <c>name</c>, whatever the query says (for a name no
    /// deployment has: as <see cref="Namespace"/>).
    /// </summary>
    Deployment,

    /// <summary>Held in at least one namespace; the endpoint shows only what the caller may see.</summary>
    AnyNamespace,

    /// <summary>Any authenticated caller (the endpoint answers about the caller itself).</summary>
    Authenticated,
}

/// <summary>
/// The permission an endpoint needs, as endpoint metadata: read by the authorization middleware (it supplies the
/// requirement and the WarpGrid authentication scheme) and by the audit log and the route table listing.
/// </summary>
public sealed class PermissionMetadata(string verb, string resource, PermissionScope scope) : IAuthorizeData, IAuthorizationRequirementData
{
    /// <summary>The permission.</summary>
    public Permission Permission { get; } = new(verb, resource);

    /// <summary>Where its namespace comes from.</summary>
    public PermissionScope Scope { get; } = scope;

    /// <inheritdoc />
    public string? Policy { get; set; }

    /// <inheritdoc />
    public string? Roles { get; set; }

    /// <inheritdoc />
    public string? AuthenticationSchemes { get; set; } = WarpGridAuthenticationHandler.SchemeName;

    /// <inheritdoc />
    public IEnumerable<IAuthorizationRequirement> GetRequirements() => [new PermissionRequirement(this)];
}

/// <summary>The requirement of one <see cref="PermissionMetadata"/>.</summary>
public sealed class PermissionRequirement(PermissionMetadata metadata) : IAuthorizationRequirement
{
    /// <summary>The permission and its scope.</summary>
    public PermissionMetadata Metadata { get; } = metadata;
}

/// <summary>Endpoint conventions that declare permissions.</summary>
public static class WarpGridPermissionExtensions
{
    /// <summary>The endpoint needs <paramref name="verb"/> on <paramref name="resource"/>, in the namespace <paramref name="scope"/> names.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, string verb, string resource, PermissionScope scope)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (!Rbac.Verbs.Contains(verb) || !Rbac.IsResource(resource))
        {
            throw new ArgumentException($"'{verb} {resource}' is not a WarpGrid permission");
        }

        builder.Add(b => b.Metadata.Add(new PermissionMetadata(verb, resource, scope)));
        return builder;
    }

    /// <summary>The endpoint needs only an authenticated caller.</summary>
    public static TBuilder RequireWarpGridIdentity<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.RequirePermission("get", "cluster", PermissionScope.Authenticated);

    /// <summary>
    /// Refuses to build an endpoint of this group that declares no permission and is not explicitly anonymous: a
    /// route without a policy cannot be mapped.
    /// </summary>
    public static TBuilder RequirePolicyOnEveryEndpoint<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Finally(b =>
        {
            if (!b.Metadata.OfType<PermissionMetadata>().Any() && !b.Metadata.OfType<IAllowAnonymous>().Any())
            {
                throw new InvalidOperationException($"the WarpGrid endpoint '{b.DisplayName}' declares no permission: add .RequirePermission(verb, resource, scope) or .AllowAnonymous()");
            }
        });
        return builder;
    }

    /// <summary>The caller's identity (set by the WarpGrid authentication handler), or null.</summary>
    public static WarpIdentity? WarpIdentity(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items.TryGetValue(typeof(WarpIdentity), out var value) ? value as WarpIdentity : null;
    }

    internal const string NamespaceItem = "warpgrid.namespace";
    internal const string ReasonItem = "warpgrid.authz.reason";
}

/// <summary>Evaluates <see cref="PermissionRequirement"/>s with the cluster's RBAC and the node authorizer.</summary>
internal sealed class PermissionAuthorizationHandler(AccessControl access) : AuthorizationHandler<PermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        if (context.Resource is not HttpContext http || http.WarpIdentity() is not { } identity)
        {
            return; // unauthenticated: the middleware challenges
        }

        var meta = requirement.Metadata;
        var permission = meta.Permission;
        var cancellationToken = http.RequestAborted;
        switch (meta.Scope)
        {
            case PermissionScope.Authenticated:
                context.Succeed(requirement);
                return;
            case PermissionScope.AnyNamespace:
                var namespaces = await access.AllowedNamespacesAsync(identity, permission, cancellationToken).ConfigureAwait(false);
                if (namespaces is null || namespaces.Count > 0)
                {
                    context.Succeed(requirement);
                    return;
                }

                Deny(context, http, $"missing permission '{permission}' in any namespace");
                return;
        }

        var ns = meta.Scope == PermissionScope.Cluster ? null : await ResolveNamespaceAsync(http, meta.Scope, cancellationToken).ConfigureAwait(false);
        if (ns is not null)
        {
            http.Items[WarpGridPermissionExtensions.NamespaceItem] = ns;
        }

        if (identity.Kind == WarpIdentity.NodeKind)
        {
            // The node authorizer: a node reads its own node record and the cluster's status, nothing else.
            if ((permission is { Verb: "get", Resource: "nodes" } && http.GetRouteValue("name") as string == identity.Name)
                || permission is { Verb: "get", Resource: "cluster" })
            {
                context.Succeed(requirement);
                return;
            }

            Deny(context, http, $"node '{identity.Name}' may read only its own node record; '{permission}' is not allowed to nodes");
            return;
        }

        if (await access.IsAllowedAsync(identity, permission, ns, cancellationToken).ConfigureAwait(false))
        {
            context.Succeed(requirement);
            return;
        }

        Deny(context, http, ns is null ? $"missing permission '{permission}' (cluster-wide)" : $"missing permission '{permission}' in namespace '{ns}'");
    }

    private void Deny(AuthorizationHandlerContext context, HttpContext http, string reason)
    {
        http.Items[WarpGridPermissionExtensions.ReasonItem] = reason;
        context.Fail(new AuthorizationFailureReason(this, reason));
    }

    /// <summary>The namespace a request is about.</summary>
    internal static async ValueTask<string> ResolveNamespaceAsync(HttpContext http, PermissionScope scope, CancellationToken cancellationToken)
    {
        if (http.GetRouteValue("namespace") is string routed)
        {
            return routed;
        }

        string? query = http.Request.Query.TryGetValue("namespace", out var q) && q.Count > 0 ? q.ToString() : null;
        if (scope == PermissionScope.Deployment && http.GetRouteValue("name") is string name)
        {
            var services = http.RequestServices;
            if (services.GetRequiredService<DeploymentRegistry>().Get(name) is { } active)
            {
                return active.Record.Namespace;
            }

            var store = services.GetRequiredService<IClusterStore>();
            if (await store.GetAsync(DeploymentRecord.KeyFor(name), cancellationToken).ConfigureAwait(false) is { } entry)
            {
                return DeploymentRecord.FromBytes(entry.Value.Span, entry.ModRevision).Namespace;
            }
        }

        return query ?? NamespaceRecord.Default;
    }
}

/// <summary>Writes 401 and 403 as problem+json (naming the missing permission) instead of empty bodies.</summary>
internal sealed class WarpGridAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden && context.WarpIdentity() is { } identity)
        {
            var reason = context.Items.TryGetValue(WarpGridPermissionExtensions.ReasonItem, out var r) && r is string s
                ? s
                : string.Join("; ", authorizeResult.AuthorizationFailure?.FailureReasons.Select(f => f.Message) ?? []);
            var body = WarpGrid.Proxy.WarpGridProblem.Create(403, "forbidden", "Forbidden", $"{identity.Subject} is not allowed to do this: {reason}");
            var missing = policy.Requirements.OfType<PermissionRequirement>().FirstOrDefault()?.Metadata.Permission;
            if (missing is { } p)
            {
                body["permission"] = p.ToString();
            }

            await Results.Json(body, WarpGridApplicationJson.Options, WarpGrid.Proxy.WarpGridProblem.ContentType, 403).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        await _default.HandleAsync(next, context, policy, authorizeResult).ConfigureAwait(false);
    }
}

/// <summary>The JSON options of the REST API, reachable from the security classes.</summary>
internal static class WarpGridApplicationJson
{
    public static System.Text.Json.JsonSerializerOptions Options => WarpGridApplicationExtensions.Json;
}
