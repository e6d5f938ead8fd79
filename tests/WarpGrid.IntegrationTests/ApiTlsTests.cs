using System.Diagnostics;
using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using WarpGrid.IntegrationTests.Infrastructure;
using WarpGrid.Testing;

namespace WarpGrid.IntegrationTests;

/// <summary>
/// TLS on warpd's API listener with real processes: certificate files (reloaded when they change), a certificate
/// from the node-local CA (<c>--api-tls-self</c>), the refusal of plain HTTP beyond loopback, and the refusal of a
/// cluster secret that others can read. No test binds a server beyond loopback: the refusals happen before anything
/// binds.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes; warpd's tests run on Linux
public sealed class ApiTlsTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Api_over_tls_with_certificate_files_and_new_connections_get_a_replaced_certificate()
    {
        using var dir = new TempDirectory("warpgrid-api-tls");
        using var ca = TestCertificateAuthority.Create();
        var caFile = Path.Combine(dir.Path, "test-ca.crt");
        await File.WriteAllTextAsync(caFile, ca.Certificate.ExportCertificatePem());
        var certFile = Path.Combine(dir.Path, "api.crt");
        var keyFile = Path.Combine(dir.Path, "api.key");
        var first = ca.WriteServerPair(certFile, keyFile, "warpd-api-1");
        var data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(data);

        await using var warpd = await WarpdProcess.StartAsync(data, extraArguments: ["--api-tls-cert", certFile, "--api-tls-key", keyFile], apiCaFile: caFile);

        Assert.Equal("https", warpd.Api.BaseAddress!.Scheme);
        using (var health = await warpd.Api.GetAsync("v1/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(warpd.ApiPort, ca.Certificate));

        var second = ca.WriteServerPair(certFile, keyFile, "warpd-api-2");
        Assert.NotEqual(first.Thumbprint, second.Thumbprint);
        string? seen = null;
        await Poll.UntilAsync(
            async () => (seen = await ServedThumbprintAsync(warpd.ApiPort, ca.Certificate)) == second.Thumbprint,
            $"new connections to get the replaced certificate (serial {second.SerialNumber})",
            diagnostics: () => $"last seen {seen}" + Environment.NewLine + warpd.Tail());
        await warpd.WaitForLineAsync(l => l.Contains("API certificate reloaded", StringComparison.Ordinal) && l.Contains(second.SerialNumber, StringComparison.Ordinal), "the reload log line");

        // Plain HTTP on the TLS port gets nothing useful.
        using var plain = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{warpd.ApiPort}/"));
        plain.Timeout = TimeSpan.FromSeconds(20);
        try
        {
            using var response = await plain.GetAsync("v1/health");
            Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        }
        catch (HttpRequestException)
        {
            // Kestrel closes a connection that does not start with a TLS handshake
        }
    }

    [Fact]
    public async Task Api_tls_self_on_a_standalone_node_is_trusted_through_data_api_ca_crt()
    {
        using var dir = new TempDirectory("warpgrid-api-tls-self");
        var caFile = Path.Combine(dir.Path, "api-ca.crt");

        await using var warpd = await WarpdProcess.StartAsync(dir.Path, extraArguments: ["--api-tls-self"], apiCaFile: caFile);

        using (var health = await warpd.Api.GetAsync("v1/health"))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        using var apiCa = X509Certificate2.CreateFromPem(File.ReadAllText(caFile));
        using var nodeCa = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(dir.Path, "cluster", "ca.crt")));
        Assert.Equal(nodeCa.Thumbprint, apiCa.Thumbprint); // the node-local CA a control plane would also use
        Assert.NotNull(await ServedThumbprintAsync(warpd.ApiPort, apiCa)); // chains to api-ca.crt, names 127.0.0.1
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir.Path, "cluster", "ca.key")));

        // A client that does not trust that CA is refused at the handshake.
        using var untrusting = new HttpClient(new System.Net.Http.SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(20) };
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync($"https://127.0.0.1:{warpd.ApiPort}/v1/health"));
        Assert.IsType<AuthenticationException>(refused.InnerException);
    }

    [Fact]
    public async Task Plain_http_api_on_all_addresses_is_refused_before_binding_with_one_line_and_code_2()
    {
        using var dir = new TempDirectory("warpgrid-api-refuse");
        var port = LoopbackPorts.Next();

        var (code, stdout, stderr) = await RunToExitAsync(dir.Path, "--api", $"0.0.0.0:{port}", "--ingress", $"127.0.0.1:{LoopbackPorts.Next()}");

        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal($"warpd: refusing to serve the API on http://0.0.0.0:{port} without TLS: give --api-tls-cert/--api-tls-key or --api-tls-self, or --insecure-api to accept that credentials cross the network in clear text", line.TrimEnd('\r'));
        Assert.DoesNotContain("Now listening", stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "store")), "warpd opened its store before refusing");
    }

    [Fact]
    public async Task A_cluster_secret_file_others_can_read_is_refused_with_the_chmod_fix()
    {
        using var dir = new TempDirectory("warpgrid-secret-mode");
        var secret = Path.Combine(dir.Path, "cluster-secret");
        await File.WriteAllTextAsync(secret, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(data);

        var (code, stdout, stderr) = await RunToExitAsync(
            data,
            "--api", $"127.0.0.1:{LoopbackPorts.Next()}",
            "--ingress", $"127.0.0.1:{LoopbackPorts.Next()}",
            "--cluster", $"127.0.0.1:{LoopbackPorts.Next()}",
            "--cluster-secret-file", secret);

        Assert.Equal(2, code);
        Assert.Contains($"chmod 600 {secret}", stderr, StringComparison.Ordinal);
        Assert.Contains("WarpGrid:Cluster:SecretFile (--cluster-secret-file)", stderr, StringComparison.Ordinal);
        Assert.Contains("(mode 0644)", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal); // no stack trace
        Assert.DoesNotContain("Now listening", stdout, StringComparison.Ordinal);
    }

    /// <summary>The thumbprint of the certificate a new connection to the API is served (it must chain to <paramref name="root"/>).</summary>
    private static async Task<string?> ServedThumbprintAsync(int port, X509Certificate2 root)
    {
        X509Certificate2? seen = null;
        using var client = new HttpClient(new System.Net.Http.SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = TestCertificateAuthority.TrustOnly(root, c => seen = c),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
        using var response = await client.GetAsync($"https://127.0.0.1:{port}/v1/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return seen?.Thumbprint;
    }

    /// <summary>Runs warpd with <paramref name="arguments"/> until it exits on its own (bounded); returns its exit code and output.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> RunToExitAsync(string dataDirectory, params string[] arguments)
    {
        var info = new ProcessStartInfo(TestPaths.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(TestPaths.WarpdDll);
        info.ArgumentList.Add("--data-dir");
        info.ArgumentList.Add(dataDirectory);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("ASPNETCORE_HTTP_PORTS");
        info.Environment.Remove("DOTNET_URLS");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(ExitTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"warpd did not exit within {ExitTimeout.TotalSeconds:0} s: {await stdout}{await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
