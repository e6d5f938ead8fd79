using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using WarpGrid.Testing;

namespace WarpGrid.Hosting.Tests;

public sealed class ApiTlsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wg-api-tls-").FullName;
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create();

    private string CertFile => Path.Combine(_dir, "api.crt");

    private string KeyFile => Path.Combine(_dir, "api.key");

    public void Dispose()
    {
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void A_certificate_pair_with_its_chain_is_valid()
    {
        using var intermediate = _ca.IssueIntermediate();
        var issued = intermediate.WriteServerPair(CertFile, KeyFile, "api-1", withChain: true);
        Assert.Empty(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile, KeyFile = KeyFile }, ClusterRole.Standalone));

        Assert.True(ApiCertificateFiles.TryLoad(CertFile, KeyFile, out var context, out var problem), problem);
        Assert.Equal(issued.Thumbprint, context.TargetCertificate.Thumbprint);
        Assert.True(context.TargetCertificate.HasPrivateKey);
        // The intermediate from the file is served with the certificate, so clients that trust only the root can build the chain.
        Assert.Contains(context.IntermediateCertificates, c => c.Thumbprint == intermediate.Certificate.Thumbprint);
    }

    [Fact]
    public void A_key_file_readable_by_others_is_refused_with_the_chmod_fix()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        _ca.WriteServerPair(CertFile, KeyFile, "api-1");
        File.SetUnixFileMode(KeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var errors = WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile, KeyFile = KeyFile }, ClusterRole.Standalone);

        var error = Assert.Single(errors);
        Assert.Contains("WarpGrid:Api:Tls:KeyFile (--api-tls-key)", error);
        Assert.Contains("0644", error);
        Assert.EndsWith($"chmod 600 {KeyFile}", error);
    }

    [Fact]
    public void Half_a_pair_a_missing_file_a_wrong_key_and_both_sources_are_refused_naming_the_setting()
    {
        Assert.Contains("go together", Assert.Single(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile }, ClusterRole.Standalone)));
        Assert.Contains("exclude each other", Assert.Single(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile, KeyFile = KeyFile, SelfIssued = true }, ClusterRole.Standalone)));
        var missing = WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile, KeyFile = KeyFile }, ClusterRole.Standalone);
        Assert.Contains(missing, e => e.Contains("WarpGrid:Api:Tls:CertificateFile (--api-tls-cert)", StringComparison.Ordinal) && e.Contains("does not exist", StringComparison.Ordinal));

        _ca.WriteServerPair(CertFile, KeyFile, "api-1");
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        TestCertificateAuthority.WriteKey(KeyFile, other.ExportPkcs8PrivateKeyPem());
        var wrongKey = Assert.Single(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { CertificateFile = CertFile, KeyFile = KeyFile }, ClusterRole.Standalone));
        Assert.StartsWith("WarpGrid:Api:Tls:CertificateFile/KeyFile (--api-tls-cert/--api-tls-key):", wrongKey);
    }

    [Fact]
    public void A_self_issued_certificate_is_refused_on_an_agent_only()
    {
        var error = Assert.Single(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { SelfIssued = true }, ClusterRole.Agent));
        Assert.Contains("WarpGrid:Api:Tls:SelfIssued (--api-tls-self) is not supported on a node agent", error);
        Assert.Empty(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { SelfIssued = true }, ClusterRole.Standalone));
        Assert.Empty(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { SelfIssued = true }, ClusterRole.ControlPlane));
        Assert.Contains("SelfIssuedLifetime", Assert.Single(WarpGridApiTlsOptionsValidator.Check(new WarpGridApiTlsOptions { SelfIssued = true, SelfIssuedLifetime = TimeSpan.FromSeconds(5) }, ClusterRole.Standalone)));
    }

    [Fact]
    public void Changed_files_are_seen_within_a_second_and_a_broken_pair_keeps_the_old_certificate_logging_once()
    {
        var first = _ca.WriteServerPair(CertFile, KeyFile, "api-1");
        var time = new FakeTimeProvider();
        var logger = new ListLogger();
        using var files = new ApiCertificateFiles(CertFile, KeyFile, time, logger);
        Assert.Equal(first.Thumbprint, files.Current.TargetCertificate.Thumbprint);

        var second = _ca.WriteServerPair(CertFile, KeyFile, "api-2");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(second.Thumbprint, files.Current.TargetCertificate.Thumbprint);

        // A new certificate whose key has not been written yet: the pair does not match.
        var (third, thirdKey) = _ca.IssueServer("api-3");
        File.WriteAllText(CertFile, third.ExportCertificatePem());
        for (int i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(second.Thumbprint, files.Current.TargetCertificate.Thumbprint);
        }

        Assert.Single(logger.Entries, e => e.Level == LogLevel.Error);

        TestCertificateAuthority.WriteKey(KeyFile, thirdKey);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(third.Thumbprint, files.Current.TargetCertificate.Thumbprint);
        Assert.Single(logger.Entries, e => e.Level == LogLevel.Error);
    }

    [Fact]
    public void A_self_issued_certificate_names_loopback_the_host_and_the_listener_and_is_renewed_after_two_thirds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (authority, _) = WarpGrid.Core.Clustering.ClusterCertificateAuthority.LoadOrCreate(Path.Combine(_dir, "cluster"), "test", time);
        using (authority)
        {
            var options = new WarpGridApiTlsOptions { SelfIssued = true, SelfIssuedLifetime = TimeSpan.FromHours(3) };
            options.ServerNames.Add("api.example.test");
            var source = new ApiSelfIssuedCertificate(authority, new IPEndPoint(IPAddress.Parse("10.1.2.3"), 9090), options, time, new ListLogger());
            var certificate = source.Current.TargetCertificate;
            Assert.True(authority.IsSignedByThisCa(certificate));
            var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains("localhost", san.EnumerateDnsNames());
            Assert.Contains(Environment.MachineName, san.EnumerateDnsNames());
            Assert.Contains("api.example.test", san.EnumerateDnsNames());
            Assert.Contains(IPAddress.Loopback, san.EnumerateIPAddresses());
            Assert.Contains(IPAddress.IPv6Loopback, san.EnumerateIPAddresses());
            Assert.Contains(IPAddress.Parse("10.1.2.3"), san.EnumerateIPAddresses());

            time.Advance(TimeSpan.FromHours(1.5));
            Assert.Equal(certificate.SerialNumber, source.Current.TargetCertificate.SerialNumber);
            time.Advance(TimeSpan.FromHours(0.6));
            Assert.NotEqual(certificate.SerialNumber, source.Current.TargetCertificate.SerialNumber);
        }
    }

    [Fact]
    public async Task The_listener_serves_http1_and_http2_and_asks_for_a_client_certificate_without_requiring_one()
    {
        var issued = _ca.WriteServerPair(CertFile, KeyFile, "api-1");
        var port = LoopbackPorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.Services.AddWarpGridNode(o => o.DataDirectory = Path.Combine(_dir, "data")).AddApiTls(o =>
        {
            o.CertificateFile = CertFile;
            o.KeyFile = KeyFile;
        });
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenForApi(
            new IPEndPoint(IPAddress.Loopback, port),
            kestrel.ApplicationServices.GetRequiredService<IOptions<WarpGridApiTlsOptions>>().Value));
        await using var app = builder.Build();
        app.MapGet("/who", (HttpContext context) => $"{context.Request.Protocol} {context.Connection.ClientCertificate?.Subject ?? "anonymous"}");
        await app.StartAsync();

        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var clientCertificate = new CertificateRequest("CN=someone", clientKey, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1));
        foreach (var version in new[] { HttpVersion.Version11, HttpVersion.Version20 })
        {
            foreach (var withCertificate in new[] { false, true })
            {
                X509Certificate2? seen = null;
                var tls = TestCertificateAuthority.TrustOnly(_ca.Certificate, c => seen = c);
                if (withCertificate)
                {
                    tls.ClientCertificates = [clientCertificate];
                }

                using var client = new HttpClient(new SocketsHttpHandler { SslOptions = tls, UseProxy = false });
                using var request = new HttpRequestMessage(HttpMethod.Get, $"https://127.0.0.1:{port}/who") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
                using var response = await client.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                Assert.Equal(version == HttpVersion.Version20 ? "HTTP/2" : "HTTP/1.1", body.Split(' ')[0]);
                Assert.EndsWith(withCertificate ? "CN=someone" : "anonymous", body);
                Assert.Equal(issued.Thumbprint, seen?.Thumbprint);
            }
        }

        await app.StopAsync();
    }

    private sealed class ListLogger : ILogger
    {
        private readonly Lock _lock = new();
        private readonly List<(LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Entries
        {
            get
            {
                lock (_lock)
                {
                    return [.. _entries];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lock)
            {
                _entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}
