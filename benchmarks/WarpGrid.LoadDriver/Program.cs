using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace WarpGrid.LoadDriver;

/// <summary>
/// End-to-end benchmark: requests/s of warpd serving samples/hello against a plain ASP.NET Core app (PlainHello), both
/// driven by wrk on loopback, and the time from deploying an already-compiled module to its first 200.
/// </summary>
internal static class Program
{
    private const double ThroughputTarget = 0.5;
    private const double DeployTargetMs = 10;

    public static async Task<int> Main(string[] args)
    {
        DriverOptions options;
        try
        {
            options = DriverOptions.Parse(args);
        }
        catch (ArgumentException ex)
        {
            await Console.Error.WriteLineAsync("bench: " + ex.Message).ConfigureAwait(false);
            return 2;
        }

        if (options.Help)
        {
            Console.WriteLine(DriverOptions.Usage);
            return 0;
        }

        // Children die with the driver: on the normal path, on exceptions, on Ctrl+C, SIGTERM, SIGHUP, and the time limit.
        using var cts = new CancellationTokenSource(options.TimeLimit);
        void Interrupt(PosixSignalContext context)
        {
            context.Cancel = true;
            Console.Error.WriteLine($"bench: {context.Signal}: stopping children");
            cts.Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Interrupt);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => ChildProcess.KillAll();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => ChildProcess.KillAll();

        try
        {
            Driver.Preflight(options);
        }
        catch (InvalidOperationException ex)
        {
            await Console.Error.WriteLineAsync("bench: " + ex.Message).ConfigureAwait(false);
            return 1;
        }

        var work = Directory.CreateTempSubdirectory("warpgrid-bench-").FullName;
        try
        {
            var driver = new Driver(options, work);
            return await driver.RunAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync($"bench: stopped (interrupted, or the time limit of {options.TimeLimit.TotalMinutes:0.#} min passed); logs in {work}").ConfigureAwait(false);
            options.KeepLogsOnFailure();
            return 130;
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or IOException or HttpRequestException or FormatException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync("bench: " + ex.Message).ConfigureAwait(false);
            await Console.Error.WriteLineAsync("bench: logs in " + work).ConfigureAwait(false);
            options.KeepLogsOnFailure();
            return 1;
        }
        finally
        {
            ChildProcess.KillAll();
            if (options.KeepLogs)
            {
                Console.WriteLine("Logs and data directories kept in " + work);
            }
            else
            {
                TryDeleteDirectory(work);
            }
        }
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private sealed class Driver
    {
        private readonly DriverOptions _options;
        private readonly string _work;
        private readonly HttpClient _http;
        private readonly ServerLauncher _launcher;

        private static readonly TimeSpan DeleteAnswerTimeout = TimeSpan.FromSeconds(2);

        public Driver(DriverOptions options, string work)
        {
            _options = options;
            _work = work;
            _http = new HttpClient(new SocketsHttpHandler
            {
                ConnectTimeout = TimeSpan.FromSeconds(2),
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                UseProxy = false,
                AllowAutoRedirect = false,
            })
            {
                Timeout = TimeSpan.FromSeconds(5),
            };
            _launcher = new ServerLauncher(options, work, _http);
        }

        public async Task<int> RunAsync(CancellationToken cancellationToken)
        {
            var report = new BenchReport
            {
                Date = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
                Machine = $"{Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, .NET {Environment.Version}",
                Command = "WarpGrid.LoadDriver " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                LoadAverageBefore = LoadAverage(),
                Wrk = $"wrk -t{_options.Threads} -c{_options.Connections} -d{DriverOptions.WrkDuration(_options.Duration)} --timeout 5s --latency"
                    + (_options.Warmup > TimeSpan.Zero ? $" (after a discarded {DriverOptions.WrkDuration(_options.Warmup)} warm-up run)" : " (no warm-up run)"),
            };
            Console.WriteLine($"WarpGrid end-to-end benchmark, {report.Date}");
            Console.WriteLine($"  machine: {report.Machine}");
            Console.WriteLine($"  load: {report.Wrk}; the load generator shares the machine with the server");
            Console.WriteLine($"  load average before: {report.LoadAverageBefore}");

            if (_options.RunThroughput)
            {
                report.Throughput = await ThroughputAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_options.RunDeploy)
            {
                report.Deploy = await DeployLatencyAsync(cancellationToken).ConfigureAwait(false);
            }

            report.LoadAverageAfter = LoadAverage();
            PrintSummary(report);
            if (_options.JsonPath is not null)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(_options.JsonPath)!);
                await File.WriteAllTextAsync(_options.JsonPath, JsonSerializer.Serialize(report, JsonOptions), cancellationToken).ConfigureAwait(false);
                Console.WriteLine("Results written to " + _options.JsonPath);
            }

            return report.Valid ? 0 : 1;
        }

        /// <summary>Checks that everything the run needs exists, before anything starts.</summary>
        public static void Preflight(DriverOptions options)
        {
            var problems = new List<string>();
            var needWarpd = options.RunDeploy || (options.RunThroughput && !options.PlainOnly);
            if (needWarpd && !File.Exists(options.WarpdDll))
            {
                problems.Add($"warpd not found at {options.WarpdDll}: build it with 'dotnet build -c Release src/WarpGrid.Daemon' (scripts/bench.sh does) or pass --warpd");
            }

            if (options.RunThroughput && !File.Exists(options.PlainDll))
            {
                problems.Add($"PlainHello not found at {options.PlainDll}: build it with 'dotnet build -c Release benchmarks/PlainHello' or pass --plain");
            }

            if (options.RunThroughput && !IsOnPath(options.Wrk))
            {
                problems.Add($"{options.Wrk} not found: run scripts/install-deps.sh or pass --wrk");
            }

            foreach (var sample in new[] { Path.Combine(options.Repo, "samples", "hello", "warp.toml"), Path.Combine(options.Repo, "samples", "hello", "hello.wasm") })
            {
                if (!File.Exists(sample))
                {
                    problems.Add(sample + " is missing");
                }
            }

            if (problems.Count > 0)
            {
                throw new InvalidOperationException(string.Join(Environment.NewLine, problems));
            }
        }

        private string HelloManifestPath => Path.Combine(_options.Repo, "samples", "hello", "warp.toml");

        private string HelloModulePath => Path.Combine(_options.Repo, "samples", "hello", "hello.wasm");

        private async Task<ThroughputReport> ThroughputAsync(CancellationToken cancellationToken)
        {
            var rounds = new List<RoundResult>();
            for (var round = 1; round <= _options.Rounds; round++)
            {
                Console.WriteLine($"Round {round}/{_options.Rounds}");
                if (!_options.PlainOnly)
                {
                    rounds.Add(await MeasureAsync(round, "warpd", ct => _launcher.StartWarpdAsync("warpd", ct), cancellationToken).ConfigureAwait(false));
                }

                rounds.Add(await MeasureAsync(round, "plain", ct => _launcher.StartPlainAsync("plain", ct), cancellationToken).ConfigureAwait(false));
            }

            double MedianOf(string server) => Stats.Median(rounds.Where(r => r.Server == server).Select(r => r.Result.RequestsPerSecond).ToList());
            var warpd = _options.PlainOnly ? double.NaN : MedianOf("warpd");
            var plain = MedianOf("plain");
            var perRound = _options.PlainOnly
                ? []
                : rounds.GroupBy(r => r.Round).Select(g => g.Single(r => r.Server == "warpd").Result.RequestsPerSecond / g.Single(r => r.Server == "plain").Result.RequestsPerSecond).ToList();
            return new ThroughputReport
            {
                Rounds = rounds,
                WarpdMedianRps = warpd,
                PlainMedianRps = plain,
                Ratio = warpd / plain,
                MedianOfRoundRatios = Stats.Median(perRound),
                Target = ThroughputTarget,
                WarpdMedianP99Ms = _options.PlainOnly ? double.NaN : Stats.Median(rounds.Where(r => r.Server == "warpd").Select(r => r.Result.LatencyP99Ms).ToList()),
                PlainMedianP99Ms = Stats.Median(rounds.Where(r => r.Server == "plain").Select(r => r.Result.LatencyP99Ms).ToList()),
                Valid = rounds.All(r => r.Result.Non2xx == 0),
            };
        }

        private async Task<RoundResult> MeasureAsync(int round, string name, Func<CancellationToken, Task<Server>> start, CancellationToken cancellationToken)
        {
            using var server = await start(cancellationToken).ConfigureAwait(false);
            var log = Path.Combine(_work, $"wrk-r{round}-{name}");
            if (_options.Warmup > TimeSpan.Zero)
            {
                var warm = await Wrk.RunAsync(_options, server.HelloUrl, _options.Warmup, log + "-warmup.log", cancellationToken).ConfigureAwait(false);
                Console.WriteLine($"    warm-up: {warm.RequestsPerSecond,10:F0} req/s");
            }

            var cpuBefore = server.Process.CpuTime;
            var result = await Wrk.RunAsync(_options, server.HelloUrl, _options.Duration, log + ".log", cancellationToken).ConfigureAwait(false);
            var cpu = server.Process.CpuTime - cpuBefore;
            result = result with { ServerCpuMicrosPerRequest = result.Requests > 0 ? cpu.TotalMicroseconds / result.Requests : double.NaN };
            if (server.Process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited (code {server.Process.ExitCode}) during the run; last lines of {server.Process.LogPath}:\n{server.Process.Tail()}");
            }

            Console.WriteLine($"    {name,-5}: {result.RequestsPerSecond,10:F0} req/s  p50 {result.LatencyP50Ms:F2} ms  p90 {result.LatencyP90Ms:F2} ms  p99 {result.LatencyP99Ms:F2} ms  server CPU {result.ServerCpuMicrosPerRequest:F1} µs/req"
                + (result.Non2xx > 0 ? $"  NON-2xx: {result.Non2xx} (run invalid)" : string.Empty)
                + (result.SocketErrors > 0 ? $"  socket errors: {result.SocketErrors}" : string.Empty));
            return new RoundResult(round, name, result);
        }

        private async Task<DeployReport> DeployLatencyAsync(CancellationToken cancellationToken)
        {
            Console.WriteLine($"Deploy of an already-compiled module to its first 200 ({_options.DeployRuns} timed runs after 1 untimed)");
            using var server = await _launcher.StartWarpdAsync("warpd-deploy", cancellationToken).ConfigureAwait(false);
            var template = await File.ReadAllTextAsync(HelloManifestPath, cancellationToken).ConfigureAwait(false);
            var module = await File.ReadAllBytesAsync(HelloModulePath, cancellationToken).ConfigureAwait(false);

            // Dedicated clients, so that neither waits behind the other's connection; connections stay open across runs.
            using var api = NewClient();
            using var ingress = NewClient();
            var samples = new List<double>();
            var putSamples = new List<double>();
            var polls = new List<double>();
            var deleteTimeouts = 0;
            double first = double.NaN;
            for (var run = 0; run <= _options.DeployRuns; run++)
            {
                // Routes share no prefix with /hello (or with each other), so a prefix-matching router cannot answer
                // them from another deployment.
                var name = $"bench-{run:D3}";
                var route = "/" + name;
                var url = server.IngressBase + route;
                using (var before = await SendAsync(ingress, HttpMethod.Get, url, null, server, cancellationToken).ConfigureAwait(false))
                {
                    if (before.StatusCode == HttpStatusCode.OK)
                    {
                        throw new InvalidOperationException($"{url} answered 200 before {name} was deployed; the measurement would be meaningless");
                    }
                }

                var manifest = ManifestText.WithNameAndRoute(template, name, route);
                using var form = new MultipartFormDataContent();
                var manifestPart = new StringContent(manifest, Encoding.UTF8);
                manifestPart.Headers.ContentType = new MediaTypeHeaderValue("application/toml") { CharSet = "utf-8" };
                form.Add(manifestPart, "manifest");
                var modulePart = new ByteArrayContent(module);
                modulePart.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
                form.Add(modulePart, "module", "hello.wasm");

                var started = Stopwatch.GetTimestamp();
                using (var put = await SendAsync(api, HttpMethod.Put, $"{server.ApiBase}/v1/deployments/{name}", form, server, cancellationToken).ConfigureAwait(false))
                {
                    if (put.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.Created))
                    {
                        throw new InvalidOperationException($"PUT /v1/deployments/{name} answered {(int)put.StatusCode}: {await ServerLauncher.BodyAsync(put, cancellationToken).ConfigureAwait(false)}");
                    }
                }

                var putMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                var attempts = 0;
                var deadline = started + (long)(_options.DeployTimeout.TotalSeconds * Stopwatch.Frequency);
                while (true)
                {
                    attempts++;
                    using (var response = await SendAsync(ingress, HttpMethod.Get, url, null, server, cancellationToken).ConfigureAwait(false))
                    {
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            var body = await ServerLauncher.BodyAsync(response, cancellationToken).ConfigureAwait(false);
                            if (body != Server.HelloBody)
                            {
                                throw new InvalidOperationException($"{url} answered 200 with {ServerLauncher.Quote(body)}, expected {ServerLauncher.Quote(Server.HelloBody)}");
                            }

                            break;
                        }
                    }

                    if (Stopwatch.GetTimestamp() > deadline)
                    {
                        throw new TimeoutException($"{url} did not answer 200 within {_options.DeployTimeout.TotalSeconds:0.#} s of the PUT; last lines of {server.Process.LogPath}:\n{server.Process.Tail()}");
                    }
                }

                var totalMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!await DeleteAsync(api, server, name, route, cancellationToken).ConfigureAwait(false))
                {
                    deleteTimeouts++;
                }

                if (run == 0)
                {
                    first = totalMs;
                    Console.WriteLine($"    untimed first deploy: {totalMs:F2} ms (PUT {putMs:F2} ms, {attempts} GETs)");
                    continue;
                }

                samples.Add(totalMs);
                putSamples.Add(putMs);
                polls.Add(attempts);
                Console.WriteLine($"    {name}: PUT→first 200 {totalMs,7:F2} ms  (PUT answered after {putMs:F2} ms, {attempts} GETs)");
            }

            return new DeployReport
            {
                Runs = samples.Count,
                FirstUntimedMs = first,
                MedianMs = Stats.Median(samples),
                P90Ms = Stats.Percentile(samples, 90),
                MinMs = samples.Min(),
                MaxMs = samples.Max(),
                PutMedianMs = Stats.Median(putSamples),
                MedianGets = Stats.Median(polls),
                TargetMs = DeployTargetMs,
                DeleteTimeouts = deleteTimeouts,
                SamplesMs = samples,
            };
        }

        /// <summary>
        /// Deletes a deployment between runs (not timed). Returns false when the DELETE did not answer within
        /// <see cref="DeleteAnswerTimeout"/>: the request is then abandoned and the driver polls until the API and the
        /// ingress both say 404, so that a slow or hung DELETE is reported without stalling the measurement.
        /// </summary>
        private async Task<bool> DeleteAsync(HttpClient api, Server server, string name, string route, CancellationToken cancellationToken)
        {
            var deploymentUrl = $"{server.ApiBase}/v1/deployments/{name}";
            var started = Stopwatch.GetTimestamp();
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(DeleteAnswerTimeout);
                try
                {
                    using var deleteRequest = new HttpRequestMessage(HttpMethod.Delete, deploymentUrl);
                    Authorize(deleteRequest, server);
                    using var delete = await api.SendAsync(deleteRequest, timeout.Token).ConfigureAwait(false);
                    if (delete.StatusCode != HttpStatusCode.NoContent)
                    {
                        throw new InvalidOperationException($"DELETE {deploymentUrl} answered {(int)delete.StatusCode}, expected 204: {await ServerLauncher.BodyAsync(delete, cancellationToken).ConfigureAwait(false)}");
                    }

                    return true;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    Console.WriteLine($"    WARNING: DELETE {deploymentUrl} gave no answer within {DeleteAnswerTimeout.TotalSeconds:0} s; abandoned it, waiting for the deployment to be gone");
                }
            }

            var deadline = started + (long)(_options.DeployTimeout.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                using var inApi = await SendAsync(api, HttpMethod.Get, deploymentUrl, null, server, cancellationToken).ConfigureAwait(false);
                using var inIngress = await SendAsync(api, HttpMethod.Get, server.IngressBase + route, null, server, cancellationToken).ConfigureAwait(false);
                if (inApi.StatusCode == HttpStatusCode.NotFound && inIngress.StatusCode == HttpStatusCode.NotFound)
                {
                    return false;
                }

                if (Stopwatch.GetTimestamp() > deadline)
                {
                    throw new TimeoutException($"{name} was still there {_options.DeployTimeout.TotalSeconds:0.#} s after its DELETE (API {(int)inApi.StatusCode}, ingress {(int)inIngress.StatusCode})");
                }

                await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>Sends one request; a timeout or a transport error becomes an exception naming the request and showing warpd's last log lines.</summary>
        private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string url, HttpContent? content, Server server, CancellationToken cancellationToken)
        {
            var request = new HttpRequestMessage(method, url) { Content = content };
            Authorize(request, server);
            var started = Stopwatch.GetTimestamp();
            try
            {
                return await client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{method} {url} got no answer within {client.Timeout.TotalSeconds:0} s; last lines of {server.Process.LogPath}:\n{server.Process.Tail()}", ex);
            }
            catch (HttpRequestException ex)
            {
                throw new InvalidOperationException($"{method} {url} failed after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms: {ex.Message}; last lines of {server.Process.LogPath}:\n{server.Process.Tail()}", ex);
            }
        }

        /// <summary>Adds warpd's admin token to a request for its API; requests for the ingress (anonymous) go without it.</summary>
        private static void Authorize(HttpRequestMessage request, Server server)
        {
            if (server.AdminToken is { } token && server.ApiBase is { } apiBase
                && request.RequestUri is { } uri && uri.AbsoluteUri.StartsWith(apiBase + "/", StringComparison.Ordinal))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }
        }

        private static HttpClient NewClient() => new(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            UseProxy = false,
            AllowAutoRedirect = false,
            MaxConnectionsPerServer = 1,
        })
        {
            Timeout = TimeSpan.FromSeconds(5),
        };

        private static void PrintSummary(BenchReport report)
        {
            Console.WriteLine();
            Console.WriteLine($"Summary (medians; load average before {report.LoadAverageBefore}, after {report.LoadAverageAfter})");
            if (report.Throughput is { } t)
            {
                Console.WriteLine($"  plain ASP.NET Core GET /hello: {t.PlainMedianRps:F0} req/s (p99 {t.PlainMedianP99Ms:F2} ms)");
                if (!double.IsNaN(t.WarpdMedianRps))
                {
                    Console.WriteLine($"  warpd GET /hello:              {t.WarpdMedianRps:F0} req/s (p99 {t.WarpdMedianP99Ms:F2} ms)");
                    Console.WriteLine($"  ratio warpd/plain:             {t.Ratio:F3} (median of per-round ratios {t.MedianOfRoundRatios:F3}); target ≥ {t.Target} → {(t.Ratio >= t.Target ? "met" : "NOT met")}");
                }

                if (!t.Valid)
                {
                    Console.WriteLine("  INVALID: some runs had non-2xx responses");
                }
            }

            if (report.Deploy is { } d)
            {
                Console.WriteLine($"  deploy (cached module) → first 200: median {d.MedianMs:F2} ms, p90 {d.P90Ms:F2} ms, min {d.MinMs:F2}, max {d.MaxMs:F2} over {d.Runs} runs; PUT answered after {d.PutMedianMs:F2} ms (median); target ≤ {d.TargetMs} ms → {(d.MedianMs <= d.TargetMs ? "met" : "NOT met")}");
                if (d.DeleteTimeouts > 0)
                {
                    Console.WriteLine($"  WARNING: {d.DeleteTimeouts} of {d.Runs + 1} DELETEs gave no answer within {DeleteAnswerTimeout.TotalSeconds:0} s (the deployments were gone nonetheless)");
                }
            }
        }

        /// <summary>The 1, 5 and 15 minute load averages (Linux), to show how busy the shared machine was.</summary>
        private static string LoadAverage()
        {
            try
            {
                return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
            }
            catch (IOException)
            {
                return "unknown";
            }
            catch (UnauthorizedAccessException)
            {
                return "unknown";
            }
        }

        private static bool IsOnPath(string executable)
        {
            if (executable.Contains('/', StringComparison.Ordinal))
            {
                return File.Exists(executable);
            }

            return (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
                .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Any(dir => File.Exists(Path.Combine(dir, executable)));
        }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

internal sealed record RoundResult(int Round, string Server, WrkResult Result);

internal sealed class ThroughputReport
{
    public required IReadOnlyList<RoundResult> Rounds { get; init; }

    public double WarpdMedianRps { get; init; }

    public double PlainMedianRps { get; init; }

    /// <summary>median(warpd) / median(plain).</summary>
    public double Ratio { get; init; }

    public double MedianOfRoundRatios { get; init; }

    public double Target { get; init; }

    public double WarpdMedianP99Ms { get; init; }

    public double PlainMedianP99Ms { get; init; }

    public bool Valid { get; init; }
}

internal sealed class DeployReport
{
    public int Runs { get; init; }

    public double FirstUntimedMs { get; init; }

    public double MedianMs { get; init; }

    public double P90Ms { get; init; }

    public double MinMs { get; init; }

    public double MaxMs { get; init; }

    public double PutMedianMs { get; init; }

    public double MedianGets { get; init; }

    public double TargetMs { get; init; }

    /// <summary>DELETEs that did not answer within the delete timeout (the deployment was then confirmed gone by polling).</summary>
    public int DeleteTimeouts { get; init; }

    public required IReadOnlyList<double> SamplesMs { get; init; }
}

internal sealed class BenchReport
{
    public required string Date { get; init; }

    public required string Machine { get; init; }

    public required string Command { get; init; }

    public required string Wrk { get; init; }

    public required string LoadAverageBefore { get; init; }

    public string? LoadAverageAfter { get; set; }

    public ThroughputReport? Throughput { get; set; }

    public DeployReport? Deploy { get; set; }

    public bool Valid => Throughput?.Valid ?? true;
}
