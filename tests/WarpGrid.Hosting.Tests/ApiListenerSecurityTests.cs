using System.Net;

namespace WarpGrid.Hosting.Tests;

public sealed class ApiListenerSecurityTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.2")]
    [InlineData("127.255.255.254")]
    [InlineData("::1")]
    [InlineData("::ffff:127.0.0.1")]
    public void Plain_http_on_loopback_is_served(string address)
    {
        var listener = new IPEndPoint(IPAddress.Parse(address), 9090);
        Assert.True(ApiListenerSecurity.IsLoopback(listener.Address));
        Assert.Equal(ApiListenerDecision.Serve, ApiListenerSecurity.Decide(listener, tls: false, allowInsecure: false));
    }

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    [InlineData("10.0.0.5")]
    [InlineData("192.168.1.20")]
    [InlineData("128.0.0.1")]
    [InlineData("::2")]
    [InlineData("fe80::1")]
    [InlineData("::ffff:10.0.0.1")]
    public void Plain_http_beyond_loopback_is_refused_unless_accepted(string address)
    {
        var listener = new IPEndPoint(IPAddress.Parse(address), 9090);
        Assert.False(ApiListenerSecurity.IsLoopback(listener.Address));
        Assert.Equal(ApiListenerDecision.Refuse, ApiListenerSecurity.Decide(listener, tls: false, allowInsecure: false));
        Assert.Equal(ApiListenerDecision.ServeInsecure, ApiListenerSecurity.Decide(listener, tls: false, allowInsecure: true));
    }

    [Theory]
    [InlineData("0.0.0.0", false)]
    [InlineData("::", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.0.0.5", true)]
    public void Tls_is_served_on_any_address(string address, bool allowInsecure)
    {
        Assert.Equal(ApiListenerDecision.Serve, ApiListenerSecurity.Decide(new IPEndPoint(IPAddress.Parse(address), 9090), tls: true, allowInsecure));
    }

    [Fact]
    public void The_refusal_is_one_line_naming_the_listener_and_the_fix()
    {
        var message = ApiListenerSecurity.RefusalMessage(new IPEndPoint(IPAddress.Any, 9090));
        Assert.Equal(
            "warpd: refusing to serve the API on http://0.0.0.0:9090 without TLS: give --api-tls-cert/--api-tls-key or --api-tls-self, or --insecure-api to accept that credentials cross the network in clear text",
            message);
        Assert.DoesNotContain('\n', message);
        Assert.Contains("http://[::]:9443", ApiListenerSecurity.RefusalMessage(new IPEndPoint(IPAddress.IPv6Any, 9443)));
    }
}
