using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using WarpGrid.Benchmarks.Shared;

// WarpGrid cluster store benchmark: write throughput and latency at 1 and 64 concurrent writers on a 3-member warpd
// Raft control plane and on a 3-member etcd 3.4 cluster (the baseline, measured in the same run), then the leader
// failover time (SIGKILL the leader, time until a write through a survivor succeeds). Everything on 127.0.0.1; every
// phase is bounded in time; children are killed on exit.
var settings = Settings.Parse(args);
if (settings is null)
{
    Console.WriteLine("usage: WarpGrid.ClusterBench [--duration SECONDS] [--rounds N] [--value-bytes N] [--writers 1,64] [--failovers N] [--json FILE] [--skip-etcd]");
    return 2;
}

var root = Path.Combine(Path.GetTempPath(), "warpgrid-clusterbench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(root);
var children = new List<Process>();
AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll(children);
Console.CancelKeyPress += (_, _) => KillAll(children);
var results = new JsonObject
{
    ["utc"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
    ["valueBytes"] = settings.ValueBytes,
    ["durationSeconds"] = settings.Duration.TotalSeconds,
    ["rounds"] = settings.Rounds,
    ["processors"] = Environment.ProcessorCount,
};
using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(30));
try
{
    var warp = new WarpCluster(root, children);
    await warp.StartAsync(deadline.Token);
    EtcdCluster? etcd = null;
    if (!settings.SkipEtcd)
    {
        etcd = new EtcdCluster(root, children);
        await etcd.StartAsync(deadline.Token);
    }

    byte[] value = new byte[settings.ValueBytes];
    Random.Shared.NextBytes(value);
    foreach (int writers in settings.Writers)
    {
        var warpRuns = new List<RunResult>();
        var etcdRuns = new List<RunResult>();
        for (int round = 0; round < settings.Rounds; round++)
        {
            warpRuns.Add(await RunWritesAsync("warpgrid", await warp.LeaderClientAsync(deadline.Token), writers, settings.Duration, value, WarpCluster.PutAsync, deadline.Token));
            if (etcd is not null)
            {
                etcdRuns.Add(await RunWritesAsync("etcd", await etcd.LeaderClientAsync(deadline.Token), writers, settings.Duration, value, EtcdCluster.PutAsync, deadline.Token));
            }
        }

        results[$"writers{writers}"] = new JsonObject
        {
            ["warpgrid"] = Summary(warpRuns),
            ["etcd"] = etcd is null ? null : Summary(etcdRuns),
            ["throughputRatio"] = etcd is null ? null : Median(warpRuns.Select(r => r.OpsPerSecond)) / Median(etcdRuns.Select(r => r.OpsPerSecond)),
        };
        Console.WriteLine($"  tail (requests >= p99) overlapping a driver stall >= {StallProbe.StallMs} ms, per round: warpgrid {string.Join(" / ", warpRuns.Select(r => r.Tail.Describe()))}"
            + (etcd is null ? "" : $" | etcd {string.Join(" / ", etcdRuns.Select(r => r.Tail.Describe()))}"));
        Console.WriteLine($"{writers} writers: warpgrid {Describe(warpRuns)}" + (etcd is null ? "" : $" | etcd {Describe(etcdRuns)} | throughput ratio {Median(warpRuns.Select(r => r.OpsPerSecond)) / Median(etcdRuns.Select(r => r.OpsPerSecond)):0.00}x"));
    }

    if (settings.Failovers > 0)
    {
        var warpFailovers = new List<double>();
        var etcdFailovers = new List<double>();
        for (int i = 0; i < settings.Failovers; i++)
        {
            warpFailovers.Add(await warp.FailoverAsync(value, deadline.Token));
            if (etcd is not null)
            {
                etcdFailovers.Add(await etcd.FailoverAsync(value, deadline.Token));
            }
        }

        results["failover"] = new JsonObject
        {
            ["warpgridSeconds"] = new JsonArray([.. warpFailovers.Select(f => JsonValue.Create(f))]),
            ["warpgridMedianSeconds"] = Median(warpFailovers),
            ["etcdSeconds"] = etcd is null ? null : new JsonArray([.. etcdFailovers.Select(f => JsonValue.Create(f))]),
            ["etcdMedianSeconds"] = etcd is null ? null : Median(etcdFailovers),
        };
        Console.WriteLine($"leader failover (kill -9 → first acknowledged write through a survivor): warpgrid median {Median(warpFailovers):0.000} s [{string.Join(", ", warpFailovers.Select(f => f.ToString("0.000", CultureInfo.InvariantCulture)))}]"
            + (etcd is null ? "" : $" | etcd median {Median(etcdFailovers):0.000} s [{string.Join(", ", etcdFailovers.Select(f => f.ToString("0.000", CultureInfo.InvariantCulture)))}]"));
    }

    if (settings.Json is { } json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(json))!);
        await File.WriteAllTextAsync(json, results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"results: {json}");
    }

    return 0;
}
finally
{
    KillAll(children);
    try
    {
        Directory.Delete(root, recursive: true);
    }
    catch (IOException)
    {
    }
}

static async Task<RunResult> RunWritesAsync(string system, HttpClient client, int writers, TimeSpan duration, byte[] value,
    Func<HttpClient, string, byte[], CancellationToken, Task<bool>> put, CancellationToken cancellationToken)
{
    string prefix = $"bench/{system}/{Guid.NewGuid():N}"[..30];
    int failures = 0;
    using var warm = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    warm.CancelAfter(TimeSpan.FromSeconds(1));
    await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Loop(w, warm.Token, null))); // warm-up, not measured

    var latencies = new List<(long Start, double Ms)>[writers];
    failures = 0;
    using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    run.CancelAfter(duration);
    DateTime utcStart = DateTime.UtcNow;
    long ticksStart = Stopwatch.GetTimestamp();
    using var probe = new StallProbe();
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Loop(w, run.Token, latencies[w] = [])));
    double elapsed = clock.Elapsed.TotalSeconds;
    probe.Stop();
    double[] all = [.. latencies.SelectMany(l => l).Select(l => l.Ms).Order()];
    double p99 = Percentile(all, 0.99);
    return new RunResult(all.Length / elapsed, Percentile(all, 0.50), p99, all.Length, failures,
        TailDiagnostics.Of([.. latencies.SelectMany(l => l)], p99, probe.Gaps, utcStart, ticksStart));

    async Task Loop(int writer, CancellationToken stop, List<(long Start, double Ms)>? record)
    {
        for (long i = 0; !stop.IsCancellationRequested; i++)
        {
            long start = Stopwatch.GetTimestamp();
            bool ok;
            try
            {
                ok = await put(client, $"{prefix}/{writer}/{i}", value, CancellationToken.None);
            }
            catch (HttpRequestException)
            {
                ok = false;
            }

            if (!ok)
            {
                Interlocked.Increment(ref failures);
            }
            else
            {
                record?.Add((start, Stopwatch.GetElapsedTime(start).TotalMilliseconds));
            }
        }
    }
}

static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

static double Median(IEnumerable<double> values)
{
    double[] sorted = [.. values.Order()];
    return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}

static JsonObject Summary(List<RunResult> runs) => new()
{
    ["opsPerSecondMedian"] = Median(runs.Select(r => r.OpsPerSecond)),
    ["p50MsMedian"] = Median(runs.Select(r => r.P50)),
    ["p99MsMedian"] = Median(runs.Select(r => r.P99)),
    ["runs"] = new JsonArray([.. runs.Select(r => (JsonNode)new JsonObject
    {
        ["opsPerSecond"] = r.OpsPerSecond,
        ["p50Ms"] = r.P50,
        ["p99Ms"] = r.P99,
        ["ops"] = r.Ops,
        ["failures"] = r.Failures,
        ["tail"] = r.Tail.ToJson(),
    })]),
};

static string Describe(List<RunResult> runs) =>
    string.Create(CultureInfo.InvariantCulture, $"{Median(runs.Select(r => r.OpsPerSecond)):0} ops/s, p50 {Median(runs.Select(r => r.P50)):0.00} ms, p99 {Median(runs.Select(r => r.P99)):0.00} ms (failures {runs.Sum(r => r.Failures)})");

static void KillAll(List<Process> children)
{
    lock (children)
    {
        foreach (Process child in children)
        {
            try
            {
                if (!child.HasExited)
                {
                    child.Kill(entireProcessTree: true);
                    child.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}

internal sealed record RunResult(double OpsPerSecond, double P50, double P99, int Ops, int Failures, TailDiagnostics Tail);

/// <summary>
/// A dedicated thread in the driver that sleeps 1 ms at a time and records each wake-up that came late by at least
/// <see cref="StallMs"/>: while it is late, the driver process (and usually the whole 2-core machine) did not run, so
/// requests in flight then were delayed whatever system served them.
/// </summary>
internal sealed class StallProbe : IDisposable
{
    public const double StallMs = 20;
    private readonly Thread _thread;
    private readonly List<(long Start, long End)> _gaps = [];
    private volatile bool _stop;

    public StallProbe()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "stall-probe", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    public IReadOnlyList<(long Start, long End)> Gaps
    {
        get
        {
            lock (_gaps)
            {
                return [.. _gaps];
            }
        }
    }

    public void Stop()
    {
        _stop = true;
        _thread.Join();
    }

    public void Dispose()
    {
        if (!_stop)
        {
            Stop();
        }
    }

    private void Run()
    {
        while (!_stop)
        {
            long before = Stopwatch.GetTimestamp();
            Thread.Sleep(1);
            long after = Stopwatch.GetTimestamp();
            if (Stopwatch.GetElapsedTime(before, after).TotalMilliseconds >= StallMs)
            {
                lock (_gaps)
                {
                    _gaps.Add((before, after));
                }
            }
        }
    }
}

/// <summary>Where a round's slowest requests (at or above its p99) fell: inside driver stalls, and in which 250 ms windows.</summary>
internal sealed record TailDiagnostics(int TailCount, int TailInStall, int Stalls, double StalledMs, double MaxStallMs, IReadOnlyList<(DateTime Utc, int Count, double MaxMs)> Windows)
{
    public static TailDiagnostics Of(IReadOnlyList<(long Start, double Ms)> requests, double p99, IReadOnlyList<(long Start, long End)> gaps, DateTime utcStart, long ticksStart)
    {
        var tail = requests.Where(r => r.Ms >= p99).ToList();
        int inStall = tail.Count(r =>
        {
            long end = r.Start + (long)(r.Ms * Stopwatch.Frequency / 1000);
            return gaps.Any(g => g.Start < end && g.End > r.Start);
        });
        double[] stalls = [.. gaps.Select(g => Stopwatch.GetElapsedTime(g.Start, g.End).TotalMilliseconds)];
        long window = Stopwatch.Frequency / 4;
        var windows = tail
            .GroupBy(r => (r.Start + (long)(r.Ms * Stopwatch.Frequency / 1000) - ticksStart) / window)
            .OrderByDescending(g => g.Count())
            .Take(3)
            .Select(g => (utcStart + Stopwatch.GetElapsedTime(ticksStart, ticksStart + (g.Key * window)), g.Count(), g.Max(r => r.Ms)))
            .ToList();
        return new TailDiagnostics(tail.Count, inStall, stalls.Length, stalls.Sum(), stalls.Length == 0 ? 0 : stalls.Max(), windows);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture, $"{TailInStall}/{TailCount} (stalls {Stalls}, max {MaxStallMs:0} ms)");

    public JsonObject ToJson() => new()
    {
        ["count"] = TailCount,
        ["inDriverStall"] = TailInStall,
        ["driverStalls"] = Stalls,
        ["driverStalledMs"] = StalledMs,
        ["maxDriverStallMs"] = MaxStallMs,
        ["busiestWindows"] = new JsonArray([.. Windows.Select(w => (JsonNode)new JsonObject
        {
            ["utc"] = w.Utc.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture),
            ["tailRequests"] = w.Count,
            ["maxMs"] = w.MaxMs,
        })]),
    };
}

internal sealed record Settings(TimeSpan Duration, int Rounds, int ValueBytes, int[] Writers, int Failovers, string? Json, bool SkipEtcd)
{
    public static Settings? Parse(string[] args)
    {
        var s = new Settings(TimeSpan.FromSeconds(8), 3, 256, [1, 64], 5, null, false);
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--duration": s = s with { Duration = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture)) }; break;
                case "--rounds": s = s with { Rounds = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--value-bytes": s = s with { ValueBytes = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--writers": s = s with { Writers = [.. Next().Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture))] }; break;
                case "--failovers": s = s with { Failovers = int.Parse(Next(), CultureInfo.InvariantCulture) }; break;
                case "--json": s = s with { Json = Next() }; break;
                case "--skip-etcd": s = s with { SkipEtcd = true }; break;
                default: return null;
            }
        }

        return s.Duration > TimeSpan.Zero && s.Duration <= TimeSpan.FromMinutes(2) && s.Rounds is > 0 and <= 10 && s.Writers.All(w => w is > 0 and <= 256) && s.Failovers is >= 0 and <= 20 ? s : null;
    }
}

/// <summary>Common process handling for the two clusters.</summary>
internal abstract class BenchCluster(string root, List<Process> children)
{
    protected string Root { get; } = root;

    protected Member[] Members { get; } = [.. Enumerable.Range(0, 3).Select(_ => new Member(FreePort(), FreePort()))];

    public abstract Task StartAsync(CancellationToken cancellationToken);

    protected abstract Process Launch(int index);

    protected abstract Task<bool> IsLeaderAsync(int index, CancellationToken cancellationToken);

    protected abstract Task<bool> PutOnceAsync(HttpClient client, string key, byte[] value, CancellationToken cancellationToken);

    protected void StartMember(int index)
    {
        Process process = Launch(index);
        lock (children)
        {
            children.Add(process);
        }

        Members[index].Process = process;
        Members[index].Client ??= new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 512, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{Members[index].ClientPort}/"),
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    protected Process Spawn(string file, IEnumerable<string> arguments, string logFile)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public async Task<HttpClient> LeaderClientAsync(CancellationToken cancellationToken) => Members[await LeaderAsync(-1, cancellationToken)].Client!;

    protected async Task<int> LeaderAsync(int except, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            for (int i = 0; i < Members.Length; i++)
            {
                if (i != except && Members[i].Process is { HasExited: false } && await IsLeaderAsync(i, cancellationToken))
                {
                    return i;
                }
            }

            await Task.Delay(50, cancellationToken);
        }

        throw new TimeoutException($"{GetType().Name}: no leader within 60 s (logs in {Root})");
    }

    /// <summary>SIGKILLs the leader, returns the seconds until a write through a survivor is acknowledged, restarts the member.</summary>
    public async Task<double> FailoverAsync(byte[] value, CancellationToken cancellationToken)
    {
        int leader = await LeaderAsync(-1, cancellationToken);
        HttpClient survivor = Members[(leader + 1) % 3].Client!;
        var clock = Stopwatch.StartNew();
        Members[leader].Process!.Kill();
        await Members[leader].Process!.WaitForExitAsync(cancellationToken);
        int attempt = 0;
        while (true)
        {
            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            attemptTimeout.CancelAfter(TimeSpan.FromSeconds(2));
            bool ok;
            try
            {
                ok = await PutOnceAsync(survivor, $"bench/failover/{Guid.NewGuid():N}/{attempt++}", value, attemptTimeout.Token);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                ok = false;
            }

            if (ok)
            {
                break;
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{GetType().Name}: no write acknowledged within 60 s of killing the leader");
            }

            await Task.Delay(10, cancellationToken);
        }

        double seconds = clock.Elapsed.TotalSeconds;
        StartMember(leader);
        await WaitReadyAsync(leader, cancellationToken);
        return seconds;
    }

    protected abstract Task WaitReadyAsync(int index, CancellationToken cancellationToken);

    protected static async Task PollAsync(Func<Task<bool>> condition, string what, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or JsonException && !cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"timed out waiting for {what}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    protected sealed class Member(int clientPort, int peerPort)
    {
        public int ClientPort { get; } = clientPort;

        public int PeerPort { get; } = peerPort;

        public Process? Process { get; set; }

        public HttpClient? Client { get; set; }
    }
}

/// <summary>Three warpd control-plane members; writes through <c>PUT /v1/kv/{key}</c>.</summary>
internal sealed class WarpCluster(string root, List<Process> children) : BenchCluster(root, children)
{
    public static async Task<bool> PutAsync(HttpClient client, string key, byte[] value, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(value);
        using var response = await client.PutAsync($"v1/kv/{key}", content, cancellationToken);
        return response.StatusCode == HttpStatusCode.OK;
    }

    protected override Task<bool> PutOnceAsync(HttpClient client, string key, byte[] value, CancellationToken cancellationToken) => PutAsync(client, key, value, cancellationToken);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        for (int i = 0; i < 3; i++)
        {
            StartMember(i);
        }

        for (int i = 0; i < 3; i++)
        {
            await WaitReadyAsync(i, cancellationToken);
        }
    }

    protected override Process Launch(int index)
    {
        string dir = Path.Combine(Root, $"warp{index}");
        Directory.CreateDirectory(dir);
        string peers = string.Join(',', Members.Select(m => $"127.0.0.1:{m.PeerPort}"));
        return Spawn("dotnet",
        [
            RepoPaths.Combine("src", "WarpGrid.Daemon", "bin", "Release", "net10.0", "warpd.dll"),
            "--data-dir", dir,
            "--api", $"127.0.0.1:{Members[index].ClientPort}",
            "--ingress", $"127.0.0.1:{FreeIngressPort()}",
            "--raft-listen", $"127.0.0.1:{Members[index].PeerPort}",
            "--raft-peers", peers,
            "--Logging:LogLevel:Default=Warning",
        ], Path.Combine(Root, $"warp{index}.log"));
    }

    private static int FreeIngressPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    protected override async Task WaitReadyAsync(int index, CancellationToken cancellationToken)
    {
        HttpClient client = Members[index].Client!;
        await PollAsync(async () => (await client.GetAsync("v1/health", cancellationToken)).IsSuccessStatusCode, $"warpd member {index} healthy", cancellationToken);

        // Every API call but /v1/health needs a credential: each member writes a cluster-admin token to its data
        // directory (atomically) once the store has a leader; the member's own token is used for its client.
        string tokenFile = Path.Combine(Root, $"warp{index}", "admin-token");
        await PollAsync(() => Task.FromResult(File.Exists(tokenFile) && new FileInfo(tokenFile).Length > 0), $"{tokenFile} written", cancellationToken);
        string token = (await File.ReadAllTextAsync(tokenFile, cancellationToken)).Trim();
        if (client.DefaultRequestHeaders.Authorization?.Parameter != token)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    protected override async Task<bool> IsLeaderAsync(int index, CancellationToken cancellationToken)
    {
        try
        {
            var status = JsonNode.Parse(await Members[index].Client!.GetStringAsync("v1/cluster", cancellationToken));
            return (bool?)status?["isLeader"] == true;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }
}

/// <summary>Three etcd 3.4 members; writes through the v3 JSON gateway (<c>POST /v3/kv/put</c>).</summary>
internal sealed class EtcdCluster(string root, List<Process> children) : BenchCluster(root, children)
{
    public static async Task<bool> PutAsync(HttpClient client, string key, byte[] value, CancellationToken cancellationToken)
    {
        string body = $"{{\"key\":\"{Convert.ToBase64String(Encoding.UTF8.GetBytes(key))}\",\"value\":\"{Convert.ToBase64String(value)}\"}}";
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync("v3/kv/put", content, cancellationToken);
        return response.StatusCode == HttpStatusCode.OK;
    }

    protected override Task<bool> PutOnceAsync(HttpClient client, string key, byte[] value, CancellationToken cancellationToken) => PutAsync(client, key, value, cancellationToken);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        for (int i = 0; i < 3; i++)
        {
            StartMember(i);
        }

        for (int i = 0; i < 3; i++)
        {
            await WaitReadyAsync(i, cancellationToken);
        }
    }

    protected override Process Launch(int index)
    {
        string cluster = string.Join(',', Members.Select((m, i) => $"e{i}=http://127.0.0.1:{m.PeerPort}"));
        return Spawn("etcd",
        [
            "--name", $"e{index}",
            "--data-dir", Path.Combine(Root, $"etcd{index}"),
            "--listen-client-urls", $"http://127.0.0.1:{Members[index].ClientPort}",
            "--advertise-client-urls", $"http://127.0.0.1:{Members[index].ClientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{Members[index].PeerPort}",
            "--initial-advertise-peer-urls", $"http://127.0.0.1:{Members[index].PeerPort}",
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", "warpgrid-bench",
            "--log-level", "warn",
        ], Path.Combine(Root, $"etcd{index}.log"));
    }

    protected override Task WaitReadyAsync(int index, CancellationToken cancellationToken) =>
        PollAsync(async () => (await Members[index].Client!.GetAsync("health", cancellationToken)).IsSuccessStatusCode, $"etcd member {index} healthy", cancellationToken);

    protected override async Task<bool> IsLeaderAsync(int index, CancellationToken cancellationToken)
    {
        try
        {
            using var content = new StringContent("{}", Encoding.UTF8, "application/json");
            using var response = await Members[index].Client!.PostAsync("v3/maintenance/status", content, cancellationToken);
            var status = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            string? self = (string?)status?["header"]?["member_id"];
            string? leader = (string?)status?["leader"];
            return self is not null && self == leader;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }
}
