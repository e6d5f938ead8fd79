using System.Collections.Concurrent;
using System.Text;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Raft.Tests;

/// <summary>
/// Member-to-member mutual TLS with certificates from the cluster CA (derived from the cluster secret), and 5-member
/// control planes.
/// </summary>
public sealed class RaftMemberTlsTests
{
    private static readonly byte[] SecretA = Encoding.UTF8.GetBytes("cluster-secret-A-0123456789abcdefghijklmnop");
    private static readonly byte[] SecretB = Encoding.UTF8.GetBytes("cluster-secret-B-0123456789abcdefghijklmnop");

    private static void UseTls(RaftStoreOptions options, ClusterCertificateAuthority ca, ConcurrentQueue<string>? refusals = null)
    {
        var tls = new ClusterMemberTls(ca, options.Listen, TimeSpan.FromHours(1), onRefused: r => refusals?.Enqueue(r));
        options.ServerTls = tls.ServerOptions();
        options.ClientTls = tls.ClientOptions();
    }

    [Theory]
    [InlineData("127.0.0.1:7000", false, false)]
    [InlineData("127.0.0.2:7000", false, false)]
    [InlineData("localhost:7000", false, false)]
    [InlineData("[::1]:7000", false, false)]
    [InlineData("0.0.0.0:7000", false, true)]
    [InlineData("10.1.2.3:7000", false, true)]
    [InlineData("[::]:7000", false, true)]
    [InlineData("10.1.2.3:7000", true, false)]
    public void PlainTcpBeyondLoopback_IsWarnedAbout_LoopbackOrTlsIsNot(string listen, bool tls, bool warned)
    {
        // Started members log warning 3226 exactly when this holds (not started here: tests bind to 127.0.0.1 only).
        Assert.True(RaftStoreOptions.TryParseEndPoint(listen, out System.Net.IPEndPoint endPoint));
        Assert.Equal(warned, RaftClusterStore.IsPlainTcpOffLoopback(endPoint, tls));
    }

    [Fact]
    public async Task Members_replicate_over_mTLS_and_a_member_whose_certificate_comes_from_another_CA_is_refused()
    {
        using var caA = ClusterCertificateAuthority.FromSecret(SecretA, "test");
        using var caB = ClusterCertificateAuthority.FromSecret(SecretB, "test");
        var refusedByGood = new ConcurrentQueue<string>();
        await using var cluster = new RaftTestCluster(3);
        var options = Enumerable.Range(0, 3).Select(i =>
        {
            var o = cluster.Options(i);
            UseTls(o, i < 2 ? caA : caB, i < 2 ? refusedByGood : null);
            return o;
        }).ToArray();
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => cluster.StartAsync(i, options[i])));

        // Members 0 and 1 (same CA) are a majority of 3: they elect a leader among themselves and commit writes.
        await RaftTestCluster.WaitUntilAsync(
            () => (cluster[0].IsLeader || cluster[1].IsLeader) && cluster[0].Leader is { } l && l == cluster[1].Leader,
            "members 0 and 1 to agree on a leader",
            TimeSpan.FromSeconds(30));
        int leader = cluster[0].IsLeader ? 0 : 1;
        for (int i = 0; i < 10; i++)
        {
            await cluster[leader].PutAsync($"k/{i}", Bytes($"v{i}"));
        }

        await cluster[1 - leader].PutAsync("k/forwarded", Bytes("f")); // a follower forwards over the mTLS forwarding link
        Assert.Equal(11, (await cluster[1 - leader].ListAsync("k/")).Count);

        // Member 2 presents a certificate of another CA: refused, with the reason; it never sees the writes or a leader.
        await RaftTestCluster.WaitUntilAsync(() => refusedByGood.Any(r => r.Contains("not signed by this cluster's CA", StringComparison.Ordinal)), "a refusal of member 2's certificate");
        Assert.Equal(0, cluster[2].Revision);
        Assert.True(cluster[2].Leader is null || cluster[2].Leader == cluster.Addresses[2], $"member 2 sees leader {cluster[2].Leader}");
        Assert.Equal(cluster.Addresses[leader], cluster[1 - leader].Leader);
    }

    [Fact]
    public void Only_member_certificates_of_the_same_CA_are_accepted_on_member_links()
    {
        using var caA = ClusterCertificateAuthority.FromSecret(SecretA, "test");
        using var caA2 = ClusterCertificateAuthority.FromSecret(SecretA, "test");
        using var caB = ClusterCertificateAuthority.FromSecret(SecretB, "test");

        // Every member derives the same CA from the secret: same pinned key, and one member's certificates verify on another.
        Assert.Equal(caA.PinnedHash, caA2.PinnedHash);
        Assert.NotEqual(caA.PinnedHash, caB.PinnedHash);
        using var member = caA.IssueMember("127.0.0.1:7401", TimeSpan.FromHours(1));
        Assert.Null(caA2.MemberRefusal(member));
        Assert.Contains("not signed by this cluster's CA", caB.MemberRefusal(member), StringComparison.Ordinal);

        // A node (agent) certificate of the same CA cannot join the Raft cluster.
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var csr = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=agent-a", key, System.Security.Cryptography.HashAlgorithmName.SHA256).CreateSigningRequest();
        using var node = caA.SignNode(csr, "agent-a", TimeSpan.FromHours(1));
        Assert.Contains("not a control-plane member certificate", caA.MemberRefusal(node), StringComparison.Ordinal);
        Assert.NotNull(caA.MemberRefusal(null));

        // A secret too short to derive a CA from is refused with the minimum.
        var error = Assert.Throws<ArgumentException>(() => ClusterCertificateAuthority.FromSecret("short"u8, "test"));
        Assert.Contains("at least 32 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Five_members_over_mTLS_elect_a_leader_and_keep_committing_after_two_members_die()
    {
        using var ca = ClusterCertificateAuthority.FromSecret(SecretA, "test");
        await using var cluster = new RaftTestCluster(5, o => UseTls(o, ca));
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        for (int i = 0; i < 20; i++)
        {
            await cluster[(leader + i) % 5].PutAsync($"k/before/{i:D2}", Bytes($"{i}"));
        }

        // Stop the leader and one follower: 3 of 5 remain, still a majority.
        int follower = (leader + 1) % 5;
        await cluster.StopAsync(leader);
        await cluster.StopAsync(follower);
        int next = await cluster.WaitForLeaderAsync();
        Assert.NotEqual(leader, next);
        var survivors = Enumerable.Range(0, 5).Where(cluster.IsRunning).ToArray();
        Assert.Equal(3, survivors.Length);
        for (int i = 0; i < 20; i++)
        {
            await cluster[survivors[i % 3]].PutAsync($"k/after/{i:D2}", Bytes($"{i}"));
        }

        foreach (int member in survivors)
        {
            Assert.Equal(40, (await cluster[member].ListAsync("k/")).Count);
        }
    }
}
