using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace WarpGrid.LoadDriver;

/// <summary>A server under test, running as a child process.</summary>
internal sealed class Server(string label, ChildProcess process, string helloUrl, string? apiBase, string? ingressBase, string? adminToken = null) : IDisposable
{
    public const string HelloBody = "Hello from WarpGrid!\n";

    public string Label { get; } = label;

    public ChildProcess Process { get; } = process;

    /// <summary>The URL wrk hits.</summary>
    public string HelloUrl { get; } = helloUrl;

    /// <summary>warpd's REST API, e.g. <c>http://127.0.0.1:5000</c>.</summary>
    public string? ApiBase { get; } = apiBase;

    /// <summary>warpd's ingress, e.g. <c>http://127.0.0.1:5001</c>.</summary>
    public string? IngressBase { get; } = ingressBase;

    /// <summary>warpd's bootstrap admin token (<c>&lt;data-dir&gt;/admin-token</c>), sent as <c>Authorization: Bearer</c> to the API only.</summary>
    public string? AdminToken { get; } = adminToken;

    public void Dispose() => Process.Dispose();
}

/// <summary>Starts warpd and the PlainHello baseline on free loopback ports and waits until they answer.</summary>
internal sealed class ServerLauncher(DriverOptions options, string workDirectory, HttpClient http)
{
    private static readonly string DotnetHost = FindDotnet();
    private int _started;

    public async Task<Server> StartWarpdAsync(string label, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _started);
        var dataDirectory = Path.Combine(workDirectory, $"{id:D2}-{label}-data");
        Directory.CreateDirectory(dataDirectory);
        var (api, ingress) = (FreeLoopbackPort(), FreeLoopbackPort());
        while (ingress == api)
        {
            ingress = FreeLoopbackPort();
        }

        var apiBase = $"http://127.0.0.1:{api}";
        var ingressBase = $"http://127.0.0.1:{ingress}";
        var child = ChildProcess.Start(
            label,
            DotnetHost,
            [options.WarpdDll, "--data-dir", dataDirectory, "--api", $"127.0.0.1:{api}", "--ingress", $"127.0.0.1:{ingress}", "--deploy", Path.Combine(options.Repo, "samples", "hello")],
            options.Repo,
            Path.Combine(workDirectory, $"{id:D2}-{label}.log"));
        try
        {
            var started = Stopwatch.GetTimestamp();
            await WaitUntilAsync(child, apiBase + "/v1/health", expectedBody: null, cancellationToken).ConfigureAwait(false);
            await WaitUntilAsync(child, ingressBase + "/hello", Server.HelloBody, cancellationToken).ConfigureAwait(false);
            var token = await ReadAdminTokenAsync(child, Path.Combine(dataDirectory, "admin-token"), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"  {label}: pid {child.Id}, api {apiBase}, ingress {ingressBase}, ready in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
            return new Server(label, child, ingressBase + "/hello", apiBase, ingressBase, token);
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    public async Task<Server> StartPlainAsync(string label, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _started);
        var port = FreeLoopbackPort();
        var baseUrl = $"http://127.0.0.1:{port}";
        var child = ChildProcess.Start(label, DotnetHost, [options.PlainDll, "--urls", baseUrl], options.Repo, Path.Combine(workDirectory, $"{id:D2}-{label}.log"));
        try
        {
            var started = Stopwatch.GetTimestamp();
            await WaitUntilAsync(child, baseUrl + "/hello", Server.HelloBody, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"  {label}: pid {child.Id}, {baseUrl}, ready in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
            return new Server(label, child, baseUrl + "/hello", null, null);
        }
        catch
        {
            child.Dispose();
            throw;
        }
    }

    /// <summary>Polls <paramref name="url"/> until it answers 200 (with <paramref name="expectedBody"/>, if given), the child exits, or the startup timeout passes.</summary>
    private async Task WaitUntilAsync(ChildProcess child, string url, string? expectedBody, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(options.StartupTimeout.TotalSeconds * Stopwatch.Frequency);
        var last = "no answer";
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (child.HasExited)
            {
                throw new InvalidOperationException($"{child.Name} exited with code {child.ExitCode} before {url} answered; last lines of {child.LogPath}:\n{child.Tail()}");
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"{url} did not answer 200 within {options.StartupTimeout.TotalSeconds:0} s (last: {last}); last lines of {child.LogPath}:\n{child.Tail()}");
            }

            try
            {
                using var response = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    if (expectedBody is null || body == expectedBody)
                    {
                        return;
                    }

                    throw new InvalidOperationException($"{url} answered 200 with {Quote(body)}, expected {Quote(expectedBody)}");
                }

                last = $"{(int)response.StatusCode} {Quote(body)}";
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = "request timed out";
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for the bootstrap admin token warpd writes to <paramref name="path"/> shortly after start (atomically, so a
    /// file that exists is complete) and returns it; fails when the child exits or the startup timeout passes.
    /// </summary>
    private async Task<string> ReadAdminTokenAsync(ChildProcess child, string path, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(options.StartupTimeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (File.Exists(path))
            {
                var token = (await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)).Trim();
                if (token.Length > 0)
                {
                    return token;
                }
            }

            if (child.HasExited)
            {
                throw new InvalidOperationException($"{child.Name} exited with code {child.ExitCode} before writing {path}; last lines of {child.LogPath}:\n{child.Tail()}");
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"{path} was not written within {options.StartupTimeout.TotalSeconds:0} s; last lines of {child.LogPath}:\n{child.Tail()}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    public static string Quote(string text) => "\"" + (text.Length > 200 ? text[..200] + "…" : text).ReplaceLineEndings("\\n") + "\"";

    /// <summary>A port the kernel just handed out on 127.0.0.1 (released at once; a small race, bounded by the retry in the caller's startup wait).</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string FindDotnet()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(host) && File.Exists(host))
        {
            return host;
        }

        var self = Environment.ProcessPath;
        return self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
    }

    /// <summary>Reads a response body as text, for messages.</summary>
    public static async Task<string> BodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(bytes);
    }
}
