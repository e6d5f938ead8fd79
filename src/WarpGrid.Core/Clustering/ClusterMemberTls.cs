using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace WarpGrid.Core.Clustering;

/// <summary>
/// Mutual TLS for the links between control-plane members (Raft and forwarded writes): each member presents a member
/// certificate it issues itself from the cluster CA (every member holds the CA, see
/// <see cref="ClusterCertificateAuthority.FromSecret"/>), reissued in memory after two thirds of its lifetime, and
/// accepts a peer only with a member certificate signed by the same CA (<see cref="ClusterCertificateAuthority.MemberRefusal"/>).
/// A node (agent) certificate of the same CA is refused: agents cannot join the Raft cluster.
/// </summary>
public sealed class ClusterMemberTls
{
    private readonly ClusterCertificateAuthority _authority;
    private readonly string _memberAddress;
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Action<string>? _onRefused;
    private X509Certificate2? _current;

    /// <summary>Creates the TLS settings of the member at <paramref name="memberAddress"/>.</summary>
    /// <param name="authority">The cluster CA.</param>
    /// <param name="memberAddress">This member's Raft address (put in its certificate).</param>
    /// <param name="lifetime">The member certificate's lifetime (reissued after two thirds).</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="onRefused">Told the reason whenever a peer's certificate is refused.</param>
    public ClusterMemberTls(ClusterCertificateAuthority authority, string memberAddress, TimeSpan lifetime, TimeProvider? timeProvider = null, Action<string>? onRefused = null)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentException.ThrowIfNullOrEmpty(memberAddress);
        ArgumentOutOfRangeException.ThrowIfLessThan(lifetime, TimeSpan.FromMinutes(1));
        _authority = authority;
        _memberAddress = memberAddress;
        _lifetime = lifetime;
        _time = timeProvider ?? TimeProvider.System;
        _onRefused = onRefused;
    }

    /// <summary>The member certificate to present now.</summary>
    public X509Certificate2 Current
    {
        get
        {
            lock (_lock)
            {
                if (_current is null || _time.GetUtcNow().UtcDateTime >= RenewAt(_current))
                {
                    _current = _authority.IssueMember(_memberAddress, _lifetime);
                }

                return _current;
            }
        }
    }

    /// <summary>Options for accepting member connections: a member certificate of the cluster CA is required.</summary>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificateSelectionCallback = (_, _) => Current,
        ClientCertificateRequired = true,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => Check(certificate),
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    /// <summary>Options for connecting to a member: present this member's certificate, require the peer's.</summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        TargetHost = "warpgrid-member",
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Current,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => Check(certificate),
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };

    private bool Check(X509Certificate? certificate)
    {
        // The chain is checked against the cluster CA (not the system roots), so the platform's policy errors are ignored.
        var refusal = _authority.MemberRefusal(certificate);
        if (refusal is not null)
        {
            _onRefused?.Invoke(refusal);
            return false;
        }

        return true;
    }

    private static DateTime RenewAt(X509Certificate2 cert)
    {
        var from = cert.NotBefore.ToUniversalTime();
        return from + ((cert.NotAfter.ToUniversalTime() - from) * 2 / 3);
    }
}
