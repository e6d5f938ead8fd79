using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace WarpGrid.Cli.Tests.Infrastructure;

/// <summary>A real warpd process on free loopback ports with a temporary data directory; killed on dispose.</summary>
public sealed class Warpd : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly List<string> _lines = [];
    private readonly Lock _lock = new();
    private TempDir? _data;
    private Process? _process;

    /// <summary>Extra environment variables for the warpd process (for example WarpGrid__Oci__DockerConfig).</summary>
    public IReadOnlyDictionary<string, string> ExtraEnvironment { get; init; } = new Dictionary<string, string>();

    public int ApiPort { get; private set; }

    public int IngressPort { get; private set; }

    public string ApiUrl => $"http://127.0.0.1:{ApiPort}";

    /// <summary>The node's data directory (it holds the bootstrap admin token, <c>admin-token</c>).</summary>
    public string DataDirectory => _data!.Path;

    /// <summary>The bootstrap cluster-admin token the node wrote on its first start (for tests that call the API directly).</summary>
    public string AdminToken => File.ReadAllText(Path.Combine(DataDirectory, "admin-token")).Trim();

    /// <summary>An HTTP client of the API authenticated with <see cref="AdminToken"/>.</summary>
    public HttpClient CreateAdminApi()
    {
        var client = new HttpClient { BaseAddress = new Uri(ApiUrl), Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }

    public HttpClient Ingress { get; private set; } = null!;

    public string Tail
    {
        get
        {
            lock (_lock)
            {
                return "--- warpd output ---\n" + string.Join('\n', _lines.TakeLast(60));
            }
        }
    }

    public async Task InitializeAsync()
    {
        _data = new TempDir("warp-cli-warpd-");
        for (var attempt = 1; ; attempt++)
        {
            (ApiPort, IngressPort) = (FreePort(), FreePort());
            Start();
            if (await WaitHealthyAsync().ConfigureAwait(false))
            {
                break;
            }

            var tail = Tail;
            Kill();
            if (attempt == 3 || !tail.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException("warpd did not become healthy\n" + tail);
            }
        }

        Ingress = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{IngressPort}/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    private void Start()
    {
        var info = new ProcessStartInfo(Repo.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _data!.Path,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in new[] { Repo.WarpdDll, "--data-dir", _data.Path, "--api", $"127.0.0.1:{ApiPort}", "--ingress", $"127.0.0.1:{IngressPort}" })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("ASPNETCORE_HTTP_PORTS");
        foreach (var (key, value) in ExtraEnvironment)
        {
            info.Environment[key] = value;
        }

        _process = new Process { StartInfo = info };
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_lock)
            {
                _lines.Add(line);
            }
        }
    }

    private async Task<bool> WaitHealthyAsync()
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartTimeout)
        {
            if (_process!.HasExited)
            {
                return false;
            }

            try
            {
                using var response = await client.GetAsync($"{ApiUrl}/v1/health").ConfigureAwait(false);
                // Healthy, and the bootstrap admin token written (a background step right after start).
                if (response.StatusCode == HttpStatusCode.OK && File.Exists(Path.Combine(_data!.Path, "admin-token")))
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

            await Task.Delay(100).ConfigureAwait(false); // poll interval, bounded by StartTimeout
        }

        return false;
    }

    /// <summary>GETs <paramref name="path"/> on the ingress until it answers 200 or the deadline passes; returns the last answer.</summary>
    public async Task<(HttpStatusCode Status, string Body)> GetUntilOkAsync(string path, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        (HttpStatusCode, string) last = (0, "(no answer)");
        while (true)
        {
            try
            {
                using var response = await Ingress.GetAsync(path.TrimStart('/')).ConfigureAwait(false);
                last = (response.StatusCode, await response.Content.ReadAsStringAsync().ConfigureAwait(false));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return last;
                }
            }
            catch (HttpRequestException ex)
            {
                last = (0, ex.Message);
            }

            if (clock.Elapsed > timeout)
            {
                return last;
            }

            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    private static int FreePort() => WarpGrid.Testing.LoopbackPorts.Next();

    private void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(30_000);
        }

        _process?.Dispose();
        _process = null;
    }

    public Task DisposeAsync()
    {
        Kill();
        Ingress?.Dispose();
        _data?.Dispose();
        return Task.CompletedTask;
    }
}
