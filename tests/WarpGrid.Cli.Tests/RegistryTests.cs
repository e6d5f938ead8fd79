using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

/// <summary><c>warp push</c> / <c>warp pull</c> against a real CNCF distribution registry (Debian's docker-registry, scripts/install-deps.sh).</summary>
public sealed class RegistryTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("warp-cli-registry-");
    private Process? _registry;
    private int _port;

    public async Task InitializeAsync()
    {
        const string binary = "/usr/bin/docker-registry";
        Assert.True(File.Exists(binary), "docker-registry is missing: run scripts/install-deps.sh");
        _port = WarpGrid.Testing.LoopbackPorts.Next();

        var config = Path.Combine(_dir.Path, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            storage:
              filesystem:
                rootdirectory: {Path.Combine(_dir.Path, "storage")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{_port}
            log:
              level: warn
            """);
        var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add(config);
        _registry = Process.Start(info)!;
        _registry.OutputDataReceived += (_, _) => { };
        _registry.ErrorDataReceived += (_, _) => { };
        _registry.BeginOutputReadLine();
        _registry.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.GetAsync($"http://127.0.0.1:{_port}/v2/");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // starting
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30) && !_registry.HasExited, "docker-registry did not start");
            await Task.Delay(50);
        }
    }

    public Task DisposeAsync()
    {
        if (_registry is { HasExited: false })
        {
            _registry.Kill(entireProcessTree: true);
            _registry.WaitForExit(10_000);
        }

        _registry?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Push_then_pull_round_trips_the_artifact_with_the_same_digest()
    {
        var dir = Samples.CopyTo("hello-zig", _dir.Path);
        var pack = await Warp.RunAsync("pack", dir, "--json");
        Assert.True(pack.ExitCode == 0, pack.ToString());
        var packedDigest = pack.Json.GetProperty("artifact").GetProperty("digest").GetString();

        var push = await Warp.RunAsync("push", $"127.0.0.1:{_port}/demo/hello-zig", dir, "--json");
        Assert.True(push.ExitCode == 0, push.ToString());
        Assert.Equal($"127.0.0.1:{_port}/demo/hello-zig:0.1.0", push.Json.GetProperty("reference").GetString());
        Assert.Equal(packedDigest, push.Json.GetProperty("digest").GetString());

        var target = Path.Combine(_dir.Path, "pulled.wasm");
        var pull = await Warp.RunAsync("pull", $"127.0.0.1:{_port}/demo/hello-zig:0.1.0", "--out", target, "--json");
        Assert.True(pull.ExitCode == 0, pull.ToString());
        Assert.Equal(packedDigest, pull.Json.GetProperty("digest").GetString());
        Assert.Equal("module", pull.Json.GetProperty("kind").GetString());
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(dir, "hello-zig.wasm")), await File.ReadAllBytesAsync(target));
        Assert.Equal("hello-zig", pull.Json.GetProperty("annotations").GetProperty("org.opencontainers.image.title").GetString());
    }

    [Fact]
    public async Task Pull_of_a_missing_tag_exits_5_and_an_unreachable_registry_exits_4()
    {
        var missing = await Warp.RunAsync("pull", $"127.0.0.1:{_port}/demo/nothing:1.0", "--out", Path.Combine(_dir.Path, "x.wasm"));
        Assert.True(missing.ExitCode == 5, missing.ToString());

        int closed = WarpGrid.Testing.LoopbackPorts.Next(); // reserved for this process, nothing listens there

        var unreachable = await Warp.RunAsync("pull", $"127.0.0.1:{closed}/demo/nothing:1.0", "--json");
        Assert.True(unreachable.ExitCode == 4, unreachable.ToString());

        var bad = await Warp.RunAsync("pull", "not a reference");
        Assert.Equal(1, bad.ExitCode);
    }

    [Fact]
    public async Task A_node_deploys_a_pushed_reference_and_pins_its_digest()
    {
        var dir = Samples.CopyTo("hello", _dir.Path);
        var push = await Warp.RunAsync("push", $"127.0.0.1:{_port}/demo/hello:1.0", dir, "--json");
        Assert.True(push.ExitCode == 0, push.ToString());
        var manifestDigest = push.Json.GetProperty("digest").GetString();

        var warpd = new Warpd();
        await warpd.InitializeAsync();
        try
        {
            await DeployAndCheckAsync(warpd, dir, manifestDigest);
        }
        finally
        {
            await warpd.DisposeAsync();
        }
    }

    private async Task DeployAndCheckAsync(Warpd warpd, string dir, string? manifestDigest)
    {
        var deploy = await Warp.RunAsync("deploy", $"127.0.0.1:{_port}/demo/hello:1.0", "--manifest", Path.Combine(dir, "warp.toml"), "--node", warpd.ApiUrl, "--json");
        Assert.True(deploy.ExitCode == 0, deploy.ToString() + warpd.Tail);

        var (status, body) = await warpd.GetUntilOkAsync("hello", TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Hello from WarpGrid!\n", body);

        using var api = warpd.CreateAdminApi();
        var view = System.Text.Json.JsonDocument.Parse(await api.GetStringAsync($"{warpd.ApiUrl}/v1/deployments/hello")).RootElement;
        Assert.Equal(manifestDigest, view.GetProperty("manifestDigest").GetString());
        Assert.Equal($"127.0.0.1:{_port}/demo/hello:1.0", view.GetProperty("reference").GetString());
        Assert.Equal("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(dir, "hello.wasm")))), view.GetProperty("digest").GetString());
    }
}
