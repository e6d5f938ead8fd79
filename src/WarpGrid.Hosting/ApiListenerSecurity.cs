using System.Net;

namespace WarpGrid.Hosting;

/// <summary>What to do with an API listener, given its address and whether it has TLS.</summary>
public enum ApiListenerDecision
{
    /// <summary>Serve it: it has TLS, or it is plain HTTP on a loopback address.</summary>
    Serve,

    /// <summary>Serve plain HTTP beyond loopback because the operator accepted it (warpd's <c>--insecure-api</c>); warn at start.</summary>
    ServeInsecure,

    /// <summary>Refuse to start: plain HTTP beyond loopback would send credentials across the network in clear text.</summary>
    Refuse,
}

/// <summary>The rule that keeps credentials off the network in clear text: plain HTTP is for loopback only.</summary>
public static class ApiListenerSecurity
{
    /// <summary>
    /// Whether <paramref name="address"/> is a loopback address: 127.0.0.0/8, <c>::1</c>, or an IPv4-mapped IPv6
    /// form of 127.0.0.0/8. The wildcard addresses (<c>0.0.0.0</c>, <c>::</c>) are not: they listen on every interface.
    /// </summary>
    public static bool IsLoopback(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return IPAddress.IsLoopback(address);
    }

    /// <summary>The decision for an API listener on <paramref name="listener"/>.</summary>
    /// <param name="listener">The listener's address and port.</param>
    /// <param name="tls">Whether the listener serves TLS.</param>
    /// <param name="allowInsecure">Whether the operator accepted plain HTTP beyond loopback.</param>
    public static ApiListenerDecision Decide(IPEndPoint listener, bool tls, bool allowInsecure)
    {
        ArgumentNullException.ThrowIfNull(listener);
        if (tls || IsLoopback(listener.Address))
        {
            return ApiListenerDecision.Serve;
        }

        return allowInsecure ? ApiListenerDecision.ServeInsecure : ApiListenerDecision.Refuse;
    }

    /// <summary>warpd's one-line refusal for <see cref="ApiListenerDecision.Refuse"/>: the listener and the fix.</summary>
    public static string RefusalMessage(IPEndPoint listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        return $"warpd: refusing to serve the API on http://{listener} without TLS: give --api-tls-cert/--api-tls-key or --api-tls-self, or --insecure-api to accept that credentials cross the network in clear text";
    }
}
