using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Security;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting;
using WarpGrid.Hosting.Security;

namespace WarpGrid.Benchmarks;

/// <summary>
/// What the API pays per call to identify the caller and check one permission, without HTTP: a bearer token
/// (<see cref="AccessControl.AuthenticateTokenAsync"/>) or a client certificate of the cluster CA
/// (<see cref="ClientCertificateTrust.AuthenticateAsync"/>), then <c>IsAllowedAsync(create deployments, default)</c>.
/// The store is an embedded <see cref="FileClusterStore"/> in a temporary directory holding the bootstrap admin and 50
/// service accounts, each with a token and a role binding in <c>default</c>; the access snapshot is loaded before the
/// measurement, as on a running node.
/// </summary>
[MemoryDiagnoser]
public class ApiAuthenticationBenchmark
{
    private static readonly Permission CreateDeployments = new("create", "deployments");

    private string _dir = null!;
    private FileClusterStore _store = null!;
    private AccessControl _access = null!;
    private ClusterCertificateAuthority _ca = null!;
    private ClientCertificateTrust _trust = null!;
    private string _adminToken = null!;
    private string _serviceAccountToken = null!;
    private X509Certificate2 _userCertificate = null!;

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        _dir = Directory.CreateTempSubdirectory("warpgrid-authbench-").FullName;
        _store = new FileClusterStore(Path.Combine(_dir, "store"));
        var tokenFile = Path.Combine(_dir, "admin-token");
        await using (var writer = new AccessControl(_store))
        {
            await writer.EnsureLoadedAsync().ConfigureAwait(false);
            await writer.EnsureBootstrapAdminAsync(tokenFile).ConfigureAwait(false);
            _adminToken = (await File.ReadAllTextAsync(tokenFile).ConfigureAwait(false)).Trim();
            var admin = (await writer.AuthenticateTokenAsync(_adminToken).ConfigureAwait(false)).Identity
                ?? throw new InvalidOperationException("the bootstrap admin token does not authenticate");
            if (await writer.GetNamespaceAsync(NamespaceRecord.Default).ConfigureAwait(false) is null)
            {
                await writer.PutNamespaceAsync(new NamespaceRecord { Name = NamespaceRecord.Default }).ConfigureAwait(false);
            }

            for (int i = 0; i < 50; i++)
            {
                var name = $"sa-{i:D2}";
                await writer.CreateServiceAccountAsync(NamespaceRecord.Default, name, "benchmark").ConfigureAwait(false);
                var (token, _) = await writer.CreateTokenAsync(NamespaceRecord.Default, name, null, null).ConfigureAwait(false);
                await writer.CreateRoleBindingAsync(
                    new RoleBindingRecord
                    {
                        Name = name + "-binding",
                        Namespace = NamespaceRecord.Default,
                        Role = i % 2 == 0 ? "edit" : "view",
                        Subjects = [new RbacSubject(WarpIdentity.ServiceAccountKind, $"{NamespaceRecord.Default}:{name}")],
                    },
                    admin).ConfigureAwait(false);
                if (i == 24)
                {
                    _serviceAccountToken = token.ToString(); // bound to "edit": may create deployments in default
                }
            }

            await writer.CreateRoleBindingAsync(
                new RoleBindingRecord { Name = "developers-edit", Namespace = NamespaceRecord.Default, Role = "edit", Subjects = [new RbacSubject("group", "developers")] },
                admin).ConfigureAwait(false);
        }

        // A fresh instance loads everything written above into its snapshot at once (no watch lag in the measurement).
        _access = new AccessControl(_store);
        await _access.EnsureLoadedAsync().ConfigureAwait(false);

        _ca = ClusterCertificateAuthority.LoadOrCreate(Path.Combine(_dir, "ca"), "bench").Authority;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=bench-user", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        _userCertificate = _ca.SignUser(csr, "bench-user", ["developers"], TimeSpan.FromHours(1));
        _trust = new ClientCertificateTrust(() => _ca.Certificate, _access, TimeProvider.System);

        foreach (var (what, allowed) in new[] { ("admin token", await TokenAdmin().ConfigureAwait(false)), ("service-account token", await TokenServiceAccount().ConfigureAwait(false)), ("user certificate", await Certificate().ConfigureAwait(false)) })
        {
            if (!allowed)
            {
                throw new InvalidOperationException($"the {what} is not allowed to create deployments in default; the benchmark would measure a refusal");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _userCertificate.Dispose();
        _ca.Dispose();
        _access.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>The bootstrap admin's token (cluster-admin, bound cluster-wide).</summary>
    [Benchmark(Description = "token (bootstrap admin) + IsAllowed")]
    public ValueTask<bool> TokenAdmin() => ViaTokenAsync(_adminToken);

    /// <summary>A service account's token, bound to <c>edit</c> in <c>default</c>.</summary>
    [Benchmark(Description = "token (service account, edit in default) + IsAllowed")]
    public ValueTask<bool> TokenServiceAccount() => ViaTokenAsync(_serviceAccountToken);

    /// <summary>A user certificate signed by the cluster CA (chain built against the CA, deny list, subject parsed), group bound to <c>edit</c>.</summary>
    [Benchmark(Description = "user certificate + IsAllowed")]
    public async ValueTask<bool> Certificate()
    {
        var (identity, _) = await _trust.AuthenticateAsync(_userCertificate, CancellationToken.None).ConfigureAwait(false);
        return identity is not null && await _access.IsAllowedAsync(identity, CreateDeployments, NamespaceRecord.Default).ConfigureAwait(false);
    }

    private async ValueTask<bool> ViaTokenAsync(string token)
    {
        var (identity, _) = await _access.AuthenticateTokenAsync(token).ConfigureAwait(false);
        return identity is not null && await _access.IsAllowedAsync(identity, CreateDeployments, NamespaceRecord.Default).ConfigureAwait(false);
    }
}

/// <summary>
/// One API call through a node's whole ASP.NET Core pipeline in process (<see cref="TestServer"/>: routing, the
/// WarpGrid authentication handler, the permission policy, the audit middleware, the endpoint):
/// <c>GET /v1/auth/whoami</c> with the bootstrap admin token against the anonymous <c>GET /v1/health</c> (baseline).
/// The difference is what authentication and authorization add to a call.
/// </summary>
[MemoryDiagnoser]
public class ApiPipelineAuthenticationBenchmark
{
    private string _dir = null!;
    private WebApplication _app = null!;
    private HttpClient _client = null!;
    private AuthenticationHeaderValue _authorization = null!;

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        _dir = Directory.CreateTempSubdirectory("warpgrid-authbench-node-").FullName;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddWarpGridNode(o => o.DataDirectory = _dir);
        _app = builder.Build();
        _app.UseWarpGridIngress();
        _app.MapWarpGridApi();
        await _app.StartAsync().ConfigureAwait(false);
        _client = _app.GetTestClient();

        // The node writes its bootstrap admin token shortly after start (atomically): wait for it, with a deadline.
        var tokenFile = Path.Combine(_dir, "admin-token");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!File.Exists(tokenFile))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{tokenFile} was not written within 30 s");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        _authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(tokenFile).ConfigureAwait(false)).Trim());
        if (await Health().ConfigureAwait(false) != HttpStatusCode.OK || await WhoAmI().ConfigureAwait(false) != HttpStatusCode.OK)
        {
            throw new InvalidOperationException("GET /v1/health or GET /v1/auth/whoami did not answer 200");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _app.StopAsync().GetAwaiter().GetResult();
        _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "GET /v1/health (anonymous)")]
    public async Task<HttpStatusCode> Health()
    {
        using var response = await _client.GetAsync("/v1/health").ConfigureAwait(false);
        await response.Content.LoadIntoBufferAsync().ConfigureAwait(false);
        return response.StatusCode;
    }

    [Benchmark(Description = "GET /v1/auth/whoami (admin token)")]
    public async Task<HttpStatusCode> WhoAmI()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/auth/whoami");
        request.Headers.Authorization = _authorization;
        using var response = await _client.SendAsync(request).ConfigureAwait(false);
        await response.Content.LoadIntoBufferAsync().ConfigureAwait(false);
        return response.StatusCode;
    }
}
