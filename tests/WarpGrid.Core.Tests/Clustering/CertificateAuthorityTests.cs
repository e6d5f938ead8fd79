using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Storage;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Core.Tests.Clustering;

public sealed class CertificateAuthorityTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Csr(string cn, out ECDsa key)
    {
        key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
    }

    [Fact]
    public void The_CA_is_created_once_with_a_private_key_file_and_reloaded_with_the_same_pin()
    {
        var (ca, created) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test");
        using (ca)
        {
            Assert.True(created);
            Assert.True(ca.Certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
            using (var publicKey = ca.Certificate.GetECDsaPublicKey())
            {
                Assert.Equal(256, publicKey!.KeySize);
            }
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir.Path, ClusterCertificateAuthority.KeyFile)));
            }

            var (again, createdAgain) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test");
            using (again)
            {
                Assert.False(createdAgain);
                Assert.Equal(ca.PinnedHash, again.PinnedHash);
                Assert.Matches("^[0-9a-f]{64}$", again.PinnedHash);
            }
        }

        File.Delete(Path.Combine(_dir.Path, ClusterCertificateAuthority.KeyFile));
        var error = Assert.Throws<InvalidDataException>(() => ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test"));
        Assert.Contains("ca.key is missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_node_certificate_from_a_CSR_names_the_node_and_validates_until_it_expires()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (ca, _) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test", time);
        using (ca)
        {
            // The CSR asks for another name: the CA decides the subject.
            var csr = Csr("admin", out var key);
            using (key)
            using (var cert = ca.SignNode(csr, "node-1", TimeSpan.FromMinutes(10)))
            {
                Assert.Equal("node-1", cert.GetNameInfo(X509NameType.SimpleName, false));
                Assert.True(cert.PublicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()));
                var eku = cert.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Select(o => o.Value).ToList();
                Assert.Contains("1.3.6.1.5.5.7.3.2", eku); // client auth
                Assert.Contains("1.3.6.1.5.5.7.3.1", eku); // server auth
                Assert.Equal("node-1", ca.ValidateNode(cert));

                time.Advance(TimeSpan.FromMinutes(11));
                var expired = Assert.Throws<CertificateRejectedException>(() => ca.ValidateNode(cert));
                Assert.Contains("expired", expired.Message, StringComparison.Ordinal);
            }

            Assert.Contains("no client certificate", Assert.Throws<CertificateRejectedException>(() => ca.ValidateNode(null)).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_certificate_from_another_CA_with_the_same_name_is_refused()
    {
        using var other = new TempDirectory();
        var (ca, _) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "same");
        var (foreign, _) = ClusterCertificateAuthority.LoadOrCreate(other.Path, "same");
        using (ca)
        using (foreign)
        {
            Assert.NotEqual(ca.PinnedHash, foreign.PinnedHash);
            var csr = Csr("n", out var key);
            using (key)
            using (var cert = foreign.SignNode(csr, "n", TimeSpan.FromHours(1)))
            {
                var error = Assert.Throws<CertificateRejectedException>(() => ca.ValidateNode(cert));
                Assert.Contains("not signed by this cluster's CA", error.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void A_tampered_or_garbage_CSR_is_refused()
    {
        var (ca, _) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test");
        using (ca)
        {
            var csr = Csr("n", out var key);
            key.Dispose();
            csr[^3] ^= 0x55; // inside the signature
            Assert.Throws<CertificateRejectedException>(() => ca.SignNode(csr, "n", TimeSpan.FromHours(1)));
            Assert.Throws<CertificateRejectedException>(() => ca.SignNode("not a csr"u8, "n", TimeSpan.FromHours(1)));
        }
    }

    [Fact]
    public void The_server_certificate_carries_loopback_and_a_private_key()
    {
        var (ca, _) = ClusterCertificateAuthority.LoadOrCreate(_dir.Path, "test");
        using (ca)
        using (var server = ca.IssueServer("cp", ["localhost"], [System.Net.IPAddress.Loopback], TimeSpan.FromDays(1)))
        {
            Assert.True(server.HasPrivateKey);
            Assert.True(ca.IsSignedByThisCa(server));
            Assert.Contains("127.0.0.1", server.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses().Select(a => a.ToString()));
        }
    }
}

public sealed class JoinTokenTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly FileClusterStore _store;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public JoinTokenTests() => _store = new FileClusterStore(_dir.Path);

    public void Dispose()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _dir.Dispose();
    }

    private const string Hash = "1e365f85e490efb418abd6104aa126d3cfc1a59f3c170a11c28d9e22f661aeb5";

    [Fact]
    public void Tokens_round_trip_and_malformed_ones_say_what_is_wrong()
    {
        var token = JoinToken.Create(Hash);
        Assert.Matches("^wg1\\.[a-z0-9]{6}\\.[a-z0-9]{16}\\.[0-9a-f]{64}$", token.ToString());
        Assert.True(JoinToken.TryParse(token.ToString(), out var parsed, out _));
        Assert.Equal(token, parsed);
        Assert.NotEqual(token.Id, JoinToken.Create(Hash).Id);

        Assert.False(JoinToken.TryParse("abc", out _, out var e1));
        Assert.Contains("wg1.<id>.<secret>.<ca-hash>", e1, StringComparison.Ordinal);
        Assert.False(JoinToken.TryParse($"wg1.ABCDEF.{new string('a', 16)}.{Hash}", out _, out var e2));
        Assert.Contains("id", e2, StringComparison.Ordinal);
        Assert.False(JoinToken.TryParse($"wg1.abcdef.short.{Hash}", out _, out var e3));
        Assert.Contains("secret", e3, StringComparison.Ordinal);
        Assert.False(JoinToken.TryParse($"wg1.abcdef.{new string('a', 16)}.xyz", out _, out var e4));
        Assert.Contains("CA hash", e4, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stored_token_is_accepted_until_it_expires_and_wrong_or_foreign_ones_are_refused()
    {
        var tokens = new JoinTokenStore(_store, _time);
        var (token, record) = await tokens.CreateAsync(Hash, TimeSpan.FromHours(1));
        Assert.Equal(token.SecretHash, record.SecretHash);
        Assert.DoesNotContain(token.Secret, System.Text.Encoding.UTF8.GetString((await _store.GetAsync(JoinTokenRecord.KeyPrefix + token.Id))!.Value.Span), StringComparison.Ordinal);

        Assert.Null(await tokens.ValidateAsync(token.ToString(), Hash));
        Assert.Contains("wrong secret", await tokens.ValidateAsync((token with { Secret = new string('z', 16) }).ToString(), Hash), StringComparison.Ordinal);
        Assert.Contains("another cluster CA", await tokens.ValidateAsync(token.ToString(), new string('0', 64)), StringComparison.Ordinal);
        Assert.Contains("unknown", await tokens.ValidateAsync((token with { Id = "zzzzzz" }).ToString(), Hash), StringComparison.Ordinal);
        Assert.Contains("form", await tokens.ValidateAsync(null, Hash), StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromHours(1));
        Assert.Contains("expired", await tokens.ValidateAsync(token.ToString(), Hash), StringComparison.Ordinal);

        Assert.True(await tokens.DeleteAsync(token.Id));
        Assert.Contains("unknown", await tokens.ValidateAsync(token.ToString(), Hash), StringComparison.Ordinal);
    }
}
