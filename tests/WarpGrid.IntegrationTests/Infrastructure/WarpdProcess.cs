using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>
/// A real <c>warpd</c> process on loopback ports: started with <c>dotnet warpd.dll</c>, ready when
/// <c>GET /v1/health</c> answers 200, its stdout and stderr captured line by line. Stop it gracefully with
/// <see cref="StopAsync"/> (SIGTERM) or crash it with <see cref="KillAsync"/> (SIGKILL); disposing kills it if it
/// still runs. Every wait is bounded.
/// </summary>
internal sealed partial class WarpdProcess : IAsyncDisposable
{
    /// <summary>How long warpd may take to become healthy (JIT, module compilation, loaded machine).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    /// <summary>How long a graceful stop may take before the process is killed.</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(45);

    private const int SigKill = 9;
    private const int SigTerm = 15;
    private const int StartAttempts = 5;

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Lock _linesLock = new();
    private bool _disposed;

    private WarpdProcess(Process process, int apiPort, int ingressPort, string dataDirectory, string? apiCaFile = null)
    {
        _process = process;
        ApiPort = apiPort;
        IngressPort = ingressPort;
        DataDirectory = dataDirectory;
        Api = CreateClient(new Uri($"{(apiCaFile is null ? "http" : "https")}://127.0.0.1:{apiPort}/"), apiCaFile);
        Ingress = CreateClient(new Uri($"http://127.0.0.1:{ingressPort}/"));
    }

    public int ApiPort { get; }

    public int IngressPort { get; }

    public string DataDirectory { get; }

    public int Pid => _process.Id;

    /// <summary>Client for the REST API (base address <c>http://127.0.0.1:api/</c>).</summary>
    public HttpClient Api { get; }

    /// <summary>Client for the ingress (no automatic redirects).</summary>
    public HttpClient Ingress { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Everything warpd wrote so far, one entry per line (stdout and stderr interleaved as received).</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_linesLock)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>The captured output as one string, for assertion messages.</summary>
    public string Output => string.Join(Environment.NewLine, Lines);

    /// <summary>The last <paramref name="count"/> lines, for assertion messages.</summary>
    public string Tail(int count = 60)
    {
        var lines = Lines;
        return "--- warpd output (last " + Math.Min(count, lines.Count) + " lines) ---" + Environment.NewLine
            + string.Join(Environment.NewLine, lines.Skip(Math.Max(0, lines.Count - count)));
    }

    /// <summary>
    /// Starts warpd on two free loopback ports with <paramref name="dataDirectory"/> and waits until it is healthy.
    /// Retries with other ports when a port was taken between choosing and binding it. With
    /// <paramref name="apiCaFile"/> the API is reached over https, trusting only the CA certificate in that PEM file
    /// (read at each handshake, so it may be a file warpd writes at start, such as <c>data/api-ca.crt</c>).
    /// </summary>
    public static async Task<WarpdProcess> StartAsync(string dataDirectory, IEnumerable<string>? deployDirectories = null, IEnumerable<string>? extraArguments = null, string? apiCaFile = null)
    {
        var deploy = deployDirectories?.ToList() ?? [];
        var extra = extraArguments?.ToList() ?? [];
        string? lastFailure = null;
        for (var attempt = 1; attempt <= StartAttempts; attempt++)
        {
            var (apiPort, ingressPort) = FreePorts();
            var warpd = Launch(dataDirectory, apiPort, ingressPort, deploy, extra, apiCaFile);
            try
            {
                if (await warpd.WaitHealthyAsync().ConfigureAwait(false))
                {
                    await warpd.UseAdminCredentialAsync().ConfigureAwait(false);
                    return warpd;
                }

                lastFailure = warpd.Tail();
                if (!lastFailure.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
                {
                    throw new InvalidOperationException($"warpd exited with code {warpd._process.ExitCode} before it was healthy" + Environment.NewLine + lastFailure);
                }
            }
            catch
            {
                await warpd.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            await warpd.DisposeAsync().ConfigureAwait(false);
        }

        throw new InvalidOperationException($"warpd could not bind free ports in {StartAttempts} attempts" + Environment.NewLine + lastFailure);
    }

    private static WarpdProcess Launch(string dataDirectory, int apiPort, int ingressPort, List<string> deploy, List<string> extra, string? apiCaFile)
    {
        var info = new ProcessStartInfo(TestPaths.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            WorkingDirectory = dataDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(TestPaths.WarpdDll);
        info.ArgumentList.Add("--data-dir");
        info.ArgumentList.Add(dataDirectory);
        info.ArgumentList.Add("--api");
        info.ArgumentList.Add($"127.0.0.1:{apiPort}");
        info.ArgumentList.Add("--ingress");
        info.ArgumentList.Add($"127.0.0.1:{ingressPort}");
        foreach (var dir in deploy)
        {
            info.ArgumentList.Add("--deploy");
            info.ArgumentList.Add(dir);
        }

        foreach (var arg in extra)
        {
            info.ArgumentList.Add(arg);
        }

        // Keep the child's configuration to what the test passes: no inherited URLs or environment-specific settings.
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("ASPNETCORE_HTTP_PORTS");
        info.Environment.Remove("DOTNET_URLS");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var warpd = new WarpdProcess(process, apiPort, ingressPort, dataDirectory, apiCaFile);
        process.OutputDataReceived += (_, e) => warpd.Append(e.Data);
        process.ErrorDataReceived += (_, e) => warpd.Append(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException("could not start " + info.FileName);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return warpd;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_linesLock)
        {
            _lines.Add(line);
        }
    }

    /// <summary>Polls the health endpoint; false when the process exited first.</summary>
    private async Task<bool> WaitHealthyAsync()
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < StartTimeout)
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); // flush output
                return false;
            }

            try
            {
                using var probe = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                using var response = await Api.GetAsync("v1/health", probe.Token).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return true;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
                // not listening yet
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        throw new TimeoutException($"warpd did not answer GET /v1/health with 200 within {StartTimeout.TotalSeconds:0} s" + Environment.NewLine + Tail());
    }

    /// <summary>The file in the data directory holding the node's bootstrap admin token (mode 0600).</summary>
    public string AdminTokenFile => Path.Combine(DataDirectory, "admin-token");

    /// <summary>The bootstrap admin token, once the node wrote it.</summary>
    public string? AdminToken { get; private set; }

    /// <summary>
    /// Reads the bootstrap admin credential the node created in its data directory and sends it with every call of
    /// <see cref="Api"/> (the tests act as the node's administrator unless they pass another credential).
    /// </summary>
    private async Task UseAdminCredentialAsync()
    {
        if (!File.Exists(AdminTokenFile))
        {
            return;
        }

        AdminToken = (await File.ReadAllTextAsync(AdminTokenFile).ConfigureAwait(false)).Trim();
        Api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
    }

    /// <summary>The last <paramref name="tail"/> records of a deployment's logs API (NDJSON), parsed.</summary>
    public async Task<List<System.Text.Json.Nodes.JsonObject>> LogRecordsAsync(string deployment, int tail)
    {
        string ndjson = await Api.GetStringAsync($"v1/deployments/{deployment}/logs?tail={tail}").ConfigureAwait(false);
        return ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!.AsObject()).ToList();
    }

    /// <summary>Waits until a captured line satisfies <paramref name="predicate"/>; returns it.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, string what, TimeSpan? timeout = null)
    {
        string? found = null;
        await Poll.UntilAsync(
            () =>
            {
                found = Lines.FirstOrDefault(predicate);
                return found is not null;
            },
            what + " in warpd's output",
            timeout,
            () => Tail()).ConfigureAwait(false);
        return found!;
    }

    /// <summary>Sends SIGTERM and waits for a graceful exit; kills the process if it does not exit in time. Returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Signal(SigTerm);
            if (!await WaitExitAsync(timeout ?? StopTimeout).ConfigureAwait(false))
            {
                Signal(SigKill);
                await WaitExitAsync(StopTimeout).ConfigureAwait(false);
                throw new TimeoutException($"warpd did not exit within {(timeout ?? StopTimeout).TotalSeconds:0} s of SIGTERM and was killed" + Environment.NewLine + Tail());
            }
        }

        return _process.ExitCode;
    }

    /// <summary>Sends SIGKILL (a crash: no shutdown code runs) and waits for the process to be gone.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            Signal(SigKill);
            if (!await WaitExitAsync(StopTimeout).ConfigureAwait(false))
            {
                throw new TimeoutException("warpd did not die after SIGKILL");
            }
        }
    }

    private async Task<bool> WaitExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed with errno {errno}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (!_process.HasExited)
            {
                Signal(SigKill);
                await WaitExitAsync(StopTimeout).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
        finally
        {
            Api.Dispose();
            Ingress.Dispose();
            _process.Dispose();
        }
    }

    /// <summary>Two distinct loopback ports reserved for this test process.</summary>
    private static (int Api, int Ingress) FreePorts() => (WarpGrid.Testing.LoopbackPorts.Next(), WarpGrid.Testing.LoopbackPorts.Next());

    /// <summary>
    /// An HTTP client for loopback tests: no redirects, no proxy, a bounded timeout. With <paramref name="trustedCaFile"/>
    /// a server certificate must chain to the CA certificate in that PEM file (read at each handshake).
    /// </summary>
    public static HttpClient CreateClient(Uri baseAddress, string? trustedCaFile = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        if (trustedCaFile is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                if (!File.Exists(trustedCaFile))
                {
                    return false; // not written yet
                }

                using var ca = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(trustedCaFile));
                return WarpGrid.Testing.TestCertificateAuthority.ChainsTo(ca, certificate);
            };
        }

        return new(handler)
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(180),
        };
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
