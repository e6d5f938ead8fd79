using WarpGrid.Core.Deployments;

namespace WarpGrid.Proxy;

/// <summary>One ingress route: an optional host (exact or <c>*.suffix</c>) and a path prefix, to a deployment.</summary>
/// <param name="Host">Lower-case host, <c>*.example.com</c>, or null for any host.</param>
/// <param name="Prefix">Path prefix without trailing slash (<c>/</c> for the root).</param>
/// <param name="Deployment">The deployment served.</param>
public sealed record IngressRoute(string? Host, string Prefix, ActiveDeployment Deployment)
{
    /// <summary>The WAGI matched-route pattern, e.g. <c>/hello/...</c>.</summary>
    public string Pattern { get; } = Prefix == "/" ? "/..." : Prefix + "/...";

    /// <summary>The server span name of a <c>GET</c> on this route (<c>GET /prefix</c>), built once.</summary>
    public string GetSpanName { get; } = "GET " + Prefix;

    /// <summary>True when the route applies to <paramref name="host"/> (lower-case, without port).</summary>
    public bool MatchesHost(string host) =>
        Host is null
        || string.Equals(Host, host, StringComparison.Ordinal)
        || (Host.StartsWith("*.", StringComparison.Ordinal) && host.EndsWith(Host.AsSpan(1), StringComparison.Ordinal) && host.Length > Host.Length - 1);

    /// <summary>True when <paramref name="path"/> is the prefix itself or below it (segment boundary).</summary>
    public bool MatchesPath(string path) =>
        Prefix == "/"
        || (path.StartsWith(Prefix, StringComparison.Ordinal) && (path.Length == Prefix.Length || path[Prefix.Length] == '/'));
}

/// <summary>
/// An immutable table of ingress routes, most specific first: host-specific before any-host, exact hosts before
/// wildcards, longer prefixes before shorter. Rebuilt when the deployments change; read without locks.
/// </summary>
public sealed class RouteTable
{
    private readonly IngressRoute[] _routes;

    private RouteTable(IngressRoute[] routes, long version)
    {
        _routes = routes;
        Version = version;
    }

    /// <summary>An empty table.</summary>
    public static RouteTable Empty { get; } = new([], -1);

    /// <summary>The registry version this table was built from.</summary>
    public long Version { get; }

    /// <summary>The routes, most specific first.</summary>
    public IReadOnlyList<IngressRoute> Routes => _routes;

    /// <summary>Builds the table from the deployments that have a serving pool (or from all, for tests and previews).</summary>
    public static RouteTable Build(IEnumerable<ActiveDeployment> deployments, long version, bool includeWithoutPool = false)
    {
        ArgumentNullException.ThrowIfNull(deployments);
        var routes = deployments
            .Where(d => includeWithoutPool || d.IsServing)
            .Select(d => new IngressRoute(d.Manifest.Runtime.Host?.ToLowerInvariant(), DeploymentManager.NormalizeRoute(d.Manifest.Runtime.Route), d))
            .OrderBy(r => r.Host is null ? 2 : r.Host.StartsWith("*.", StringComparison.Ordinal) ? 1 : 0)
            .ThenByDescending(r => r.Host?.Length ?? 0)
            .ThenByDescending(r => r.Prefix.Length)
            .ThenBy(r => r.Deployment.Name, StringComparer.Ordinal)
            .ToArray();
        return new RouteTable(routes, version);
    }

    /// <summary>Finds the route for a host (lower-case, no port) and path, or null.</summary>
    public IngressRoute? Match(string host, string path)
    {
        foreach (var route in _routes)
        {
            if (route.MatchesHost(host) && route.MatchesPath(path))
            {
                return route;
            }
        }

        return null;
    }
}
