using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>How a test registry authenticates.</summary>
internal enum RegistryAuthMode
{
    None,
    Htpasswd,
    Token,
}

/// <summary>Settings of a token-auth registry: the token service's realm and the certificate its tokens are signed with.</summary>
internal sealed record TokenAuthSettings(string Realm, string Service, string Issuer, string RootCertBundlePath);

/// <summary>
/// A real CNCF distribution registry (<c>docker-registry serve</c>) on 127.0.0.1 and a free port, with filesystem storage
/// in a temporary directory. Killed and cleaned up on dispose.
/// </summary>
internal sealed class RegistryServer : IAsyncDisposable
{
    public const string BinaryPath = "/usr/bin/docker-registry";
    public const string HtpasswdUser = "warp";
    public const string HtpasswdPassword = "s3cret-pass";

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log;

    private RegistryServer(Process process, ConcurrentQueue<string> log, string workDirectory, int port)
    {
        _process = process;
        _log = log;
        WorkDirectory = workDirectory;
        Port = port;
    }

    /// <summary><c>127.0.0.1:port</c>.</summary>
    public string Address => "127.0.0.1:" + Port;

    public int Port { get; }

    public string WorkDirectory { get; }

    public string StorageRoot => Path.Combine(WorkDirectory, "storage");

    public bool HasExited => _process.HasExited;

    public string RecentLog => string.Join('\n', _log);

    /// <summary>Where the registry keeps a blob's bytes (distribution's filesystem driver layout).</summary>
    public string BlobDataPath(string digest)
    {
        string hex = digest["sha256:".Length..];
        return Path.Combine(StorageRoot, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    public static async Task<RegistryServer> StartAsync(RegistryAuthMode auth = RegistryAuthMode.None, TokenAuthSettings? token = null)
    {
        // WARPGRID_DOCKER_REGISTRY points at another build of the registry binary.
        string wanted = Environment.GetEnvironmentVariable("WARPGRID_DOCKER_REGISTRY") is { Length: > 0 } overridden ? overridden : BinaryPath;
        string binary = File.Exists(wanted) ? wanted : (wanted == BinaryPath ? FindOnPath("docker-registry") : null) ??
            throw new InvalidOperationException(
                $"The OCI tests need the CNCF distribution registry, and '{wanted}' (docker-registry) is not installed. " +
                "Run `bash scripts/install-deps.sh` (it installs the docker-registry and apache2-utils apt packages), then run the tests again.");

        string work = Path.Combine(Path.GetTempPath(), "warpgrid-registry-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(Path.Combine(work, "storage"));
        string authSection = auth switch
        {
            RegistryAuthMode.Htpasswd => $"""
                auth:
                  htpasswd:
                    realm: warpgrid-test
                    path: {await WriteHtpasswdAsync(work)}
                """,
            RegistryAuthMode.Token => $"""
                auth:
                  token:
                    realm: {token!.Realm}
                    service: {token.Service}
                    issuer: {token.Issuer}
                    rootcertbundle: {token.RootCertBundlePath}
                """,
            _ => "",
        };

        for (int attempt = 0; ; attempt++)
        {
            int port = FreePort();
            string config = Path.Combine(work, "config.yml");
            await File.WriteAllTextAsync(config, $"""
                version: 0.1
                log:
                  level: info
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: {Path.Combine(work, "storage")}
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:{port}
                  secret: {Guid.NewGuid():N}
                {authSection}
                """);

            var log = new ConcurrentQueue<string>();
            var process = new Process
            {
                StartInfo = new ProcessStartInfo(binary)
                {
                    ArgumentList = { "serve", config },
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                },
                EnableRaisingEvents = true,
            };
            void Capture(object? _, DataReceivedEventArgs e)
            {
                if (e.Data is null)
                {
                    return;
                }

                log.Enqueue(e.Data);
                while (log.Count > 200 && log.TryDequeue(out string? _))
                {
                }
            }

            process.OutputDataReceived += Capture;
            process.ErrorDataReceived += Capture;
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            var server = new RegistryServer(process, log, work, port);
            if (await server.WaitReadyAsync(TimeSpan.FromSeconds(30)))
            {
                return server;
            }

            string output = server.RecentLog;
            await server.StopAsync();
            if (attempt < 3 && output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            Directory.Delete(work, recursive: true);
            throw new InvalidOperationException($"docker-registry did not become ready on 127.0.0.1:{port} within 30 s. Its output:\n{output}");
        }
    }

    private async Task<bool> WaitReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                return false;
            }

            try
            {
                using HttpResponseMessage response = await http.GetAsync($"http://{Address}/v2/");
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return true;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException)
            {
                // slow start
            }

            await Task.Delay(50);
        }

        return false;
    }

    /// <summary>Kills the registry process (SIGKILL) and waits for it to be gone.</summary>
    public async Task StopAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
            // left for the OS to clean
        }
    }

    private static async Task<string> WriteHtpasswdAsync(string work)
    {
        string htpasswd = FindOnPath("htpasswd") ?? throw new InvalidOperationException(
            "The basic-auth registry tests need 'htpasswd' (apache2-utils), which is not installed. Run `bash scripts/install-deps.sh`, then run the tests again.");
        var psi = new ProcessStartInfo(htpasswd) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "-Bbn", HtpasswdUser, HtpasswdPassword })
        {
            psi.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(psi)!;
        string output = await process.StandardOutput.ReadToEndAsync();
        string error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0 || !output.StartsWith(HtpasswdUser + ":$2", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"htpasswd -Bbn failed (exit {process.ExitCode}): {error}");
        }

        string path = Path.Combine(work, "htpasswd");
        await File.WriteAllTextAsync(path, output.Trim() + "\n", Encoding.ASCII);
        return path;
    }

    internal static int FreePort() => WarpGrid.Testing.LoopbackPorts.Next();

    internal static string? FindOnPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>An anonymous registry shared by a test class.</summary>
public sealed class AnonymousRegistryFixture : IAsyncLifetime
{
    internal RegistryServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await RegistryServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }
}

/// <summary>A registry with htpasswd (bcrypt) basic auth, shared by a test class.</summary>
public sealed class BasicAuthRegistryFixture : IAsyncLifetime
{
    internal RegistryServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await RegistryServer.StartAsync(RegistryAuthMode.Htpasswd);

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }
}

/// <summary>A registry with token auth, and the token service that signs its JWTs.</summary>
public sealed class TokenAuthRegistryFixture : IAsyncLifetime
{
    internal TokenServer Tokens { get; private set; } = null!;

    internal RegistryServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Tokens = TokenServer.Start();
        Server = await RegistryServer.StartAsync(RegistryAuthMode.Token, Tokens.Settings);
    }

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Tokens?.Dispose();
    }
}
