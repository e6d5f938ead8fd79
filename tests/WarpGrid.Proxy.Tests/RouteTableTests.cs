using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Proxy;

namespace WarpGrid.Proxy.Tests;

public sealed class RouteTableTests
{
    private static ActiveDeployment Deployment(string name, string route, string? host = null)
    {
        var manifest = WarpManifest.CreateDefault(name) with
        {
            Runtime = WarpManifest.CreateDefault(name).Runtime with { Route = route, Host = host },
        };
        var record = new DeploymentRecord { Name = name, Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('0', 64), Revision = 1 };
        return new ActiveDeployment(record, manifest, Pool: null, DeploymentState.Running, null, 1);
    }

    private static RouteTable Table(params ActiveDeployment[] deployments) =>
        RouteTable.Build(deployments.Select(d => d), 1, includeWithoutPool: true);

    [Theory]
    [InlineData("/hello", "hello")]
    [InlineData("/hello/", "hello")]
    [InlineData("/hello/world", "hello")]
    [InlineData("/hello/world/deeper", "world")]
    [InlineData("/helloworld", "root")]
    [InlineData("/", "root")]
    public void Longest_prefix_on_segment_boundaries_wins(string path, string expected)
    {
        var table = Table(Deployment("root", "/"), Deployment("hello", "/hello"), Deployment("world", "/hello/world/deeper"));
        Assert.Equal(expected, table.Match("example.com", path)!.Deployment.Name);
    }

    [Theory]
    [InlineData("/hello/...", "/hello")]
    [InlineData("/hello/", "/hello")]
    [InlineData("/hello", "/hello")]
    [InlineData("/...", "/")]
    [InlineData("/", "/")]
    [InlineData("", "/")]
    [InlineData("/a/b//", "/a/b")]
    public void Routes_normalise_to_a_prefix_without_trailing_slash_or_wildcard(string route, string expected) =>
        Assert.Equal(expected, DeploymentManager.NormalizeRoute(route));

    [Fact]
    public void A_spin_style_wildcard_route_matches_its_prefix()
    {
        var table = Table(Deployment("c", "/c/..."), Deployment("root", "/..."));
        Assert.Equal("c", table.Match("example.com", "/c/hello")!.Deployment.Name);
        Assert.Equal("c", table.Match("example.com", "/c")!.Deployment.Name);
        Assert.Equal("root", table.Match("example.com", "/cc")!.Deployment.Name);
    }

    [Fact]
    public void No_match_without_a_root_route()
    {
        var table = Table(Deployment("hello", "/hello"));
        Assert.Null(table.Match("example.com", "/other"));
        Assert.Null(table.Match("example.com", "/hell"));
    }

    [Fact]
    public void Host_routes_win_over_any_host_and_exact_over_wildcard()
    {
        var table = Table(
            Deployment("any", "/api"),
            Deployment("wild", "/api", "*.example.com"),
            Deployment("exact", "/api", "shop.example.com"));
        Assert.Equal("exact", table.Match("shop.example.com", "/api/cart")!.Deployment.Name);
        Assert.Equal("wild", table.Match("blog.example.com", "/api")!.Deployment.Name);
        Assert.Equal("any", table.Match("example.com", "/api")!.Deployment.Name);
        Assert.Equal("any", table.Match("other.test", "/api")!.Deployment.Name);
    }

    [Fact]
    public void Wildcard_does_not_match_the_bare_domain()
    {
        var table = Table(Deployment("wild", "/", "*.example.com"));
        Assert.Null(table.Match("example.com", "/"));
        Assert.NotNull(table.Match("a.example.com", "/"));
    }

    [Fact]
    public void Matched_route_pattern_follows_wagi()
    {
        Assert.Equal("/hello/...", Table(Deployment("hello", "/hello")).Routes[0].Pattern);
        Assert.Equal("/...", Table(Deployment("root", "/")).Routes[0].Pattern);
    }

    [Fact]
    public void Deployments_without_a_pool_are_not_routed()
    {
        var table = RouteTable.Build([Deployment("hello", "/hello")], 1);
        Assert.Null(table.Match("example.com", "/hello"));
    }
}
