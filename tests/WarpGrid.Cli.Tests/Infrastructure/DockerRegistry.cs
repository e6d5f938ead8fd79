using System.Diagnostics;
using System.Net;

namespace WarpGrid.Cli.Tests.Infrastructure;

/// <summary>A real CNCF distribution registry (<c>docker-registry serve</c>, scripts/install-deps.sh) on 127.0.0.1 and a free port, for one test class.</summary>
internal sealed class DockerRegistry : IAsyncDisposable
{
    private const string Binary = "/usr/bin/docker-registry";

    private readonly Process _process;
    private readonly TempDir _dir;

    private DockerRegistry(Process process, TempDir dir, int port)
    {
        _process = process;
        _dir = dir;
        Address = $"127.0.0.1:{port}";
    }

    /// <summary><c>127.0.0.1:port</c>.</summary>
    public string Address { get; }

    public static async Task<DockerRegistry> StartAsync()
    {
        Assert.True(File.Exists(Binary), "docker-registry is missing: run scripts/install-deps.sh");
        var dir = new TempDir("warp-cli-registry-");
        var port = WarpGrid.Testing.LoopbackPorts.Next();
        var config = System.IO.Path.Combine(dir.Path, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            storage:
              filesystem:
                rootdirectory: {System.IO.Path.Combine(dir.Path, "storage")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            log:
              level: warn
            """);
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("serve");
        info.ArgumentList.Add(config);
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var registry = new DockerRegistry(process, dir, port);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.GetAsync($"http://{registry.Address}/v2/");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return registry;
                }
            }
            catch (HttpRequestException)
            {
                // starting
            }
            catch (TaskCanceledException)
            {
                // slow start
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30) || process.HasExited)
            {
                await registry.DisposeAsync();
                Assert.Fail("docker-registry did not start");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _dir.Dispose();
    }
}
