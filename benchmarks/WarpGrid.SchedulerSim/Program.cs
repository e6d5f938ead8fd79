// Scale simulation of the WarpGrid placement engine (docs/benchmarks.md, "Scheduler at scale").
// Generates a deterministic cluster and workload from --seed, places every deployment through PipelineScheduler into a
// ClusterState (bind after each request), on one core, and reports throughput, memory and placement quality.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Scheduling;

var o = SimOptions.Parse(args);
if (o is null)
{
    Console.WriteLine("""
        WarpGrid.SchedulerSim [--nodes 5000] [--deployments 100000] [--instances 1000000] [--seed 42]
                              [--time-limit 600] [--slice 100000] [--percentage 0] [--no-pin] [--out artifacts/bench]
        Places every deployment through PipelineScheduler on one core (process affinity = CPU 0 unless --no-pin);
        stops after --time-limit seconds and reports how far it got. Writes a JSON report to --out.
        """);
    return 2;
}

bool pinned = false;
if (!o.NoPin && (OperatingSystem.IsLinux() || OperatingSystem.IsWindows()))
{
    try
    {
        Process.GetCurrentProcess().ProcessorAffinity = 1;
        pinned = true;
    }
    catch (Exception e) when (e is PlatformNotSupportedException or System.ComponentModel.Win32Exception)
    {
        Console.Error.WriteLine($"Could not pin to one CPU ({e.Message}); the scheduler runs single-threaded anyway.");
    }
}

var genWatch = Stopwatch.StartNew();
var workload = Workload.Generate(o);
var state = new ClusterState(workload.Nodes);
genWatch.Stop();
var scheduler = PipelineScheduler.CreateDefault(new SchedulerOptions { PercentageOfNodesToScore = o.Percentage });

Console.WriteLine($"nodes {o.Nodes:N0}, deployments {o.Deployments:N0}, instances {workload.TotalInstances:N0}, seed {o.Seed}, " +
    $"pinned {pinned}, generated in {genWatch.Elapsed.TotalSeconds:F1} s");

// Warm-up on a throw-away copy of a small cluster so the JIT is not in the first slice.
{
    var warm = new ClusterState(workload.Nodes.Take(Math.Min(200, workload.Nodes.Length)));
    foreach (var r in workload.Requests.Take(200))
    {
        warm.Bind(scheduler.Schedule(warm.Snapshot, r));
    }
}

GC.Collect();
long heapBefore = GC.GetTotalMemory(true);
var slices = new List<SliceReport>();
long placed = 0, pending = 0, requested = 0, victims = 0, preempted = 0;
int deploymentsDone = 0;
var total = Stopwatch.StartNew();
var slice = Stopwatch.StartNew();
long sliceStartPlaced = 0, sliceStartRequested = 0;
long nextSlice = o.Slice;
bool timedOut = false;
var pendingReasons = new Dictionary<string, int>(StringComparer.Ordinal);
long gcCountBefore = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2);
foreach (var request in workload.Requests)
{
    var result = scheduler.Schedule(state.Snapshot, request);
    state.Bind(result);
    deploymentsDone++;
    requested += request.Instances;
    victims += result.Victims.Count;
    foreach (var p in result.Instances)
    {
        if (p.NodeName is not null)
        {
            placed++;
            if (p.Preempted)
            {
                preempted++;
            }
        }
        else
        {
            pending++;
        }
    }

    if (result.Pending is { } why)
    {
        var first = why.Reasons.Count > 0 ? why.Reasons[0].Reason : "no nodes";
        pendingReasons[first] = pendingReasons.GetValueOrDefault(first) + 1;
    }

    if (requested >= nextSlice)
    {
        double s = slice.Elapsed.TotalSeconds;
        slices.Add(new SliceReport(sliceStartRequested, requested, placed - sliceStartPlaced, s, (placed - sliceStartPlaced) / s));
        Console.WriteLine($"  instances {sliceStartRequested,9:N0}..{requested,9:N0}: {(placed - sliceStartPlaced) / s,9:N0} placements/s  ({s:F1} s)");
        sliceStartPlaced = placed;
        sliceStartRequested = requested;
        nextSlice += o.Slice;
        slice.Restart();
    }

    if (total.Elapsed.TotalSeconds > o.TimeLimitSeconds)
    {
        timedOut = true;
        break;
    }
}

total.Stop();
if (requested > sliceStartRequested)
{
    double s = slice.Elapsed.TotalSeconds;
    slices.Add(new SliceReport(sliceStartRequested, requested, placed - sliceStartPlaced, s, (placed - sliceStartPlaced) / s));
}

long gcCount = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2) - gcCountBefore;
long heapLive = GC.GetTotalMemory(false);
var proc = Process.GetCurrentProcess();
var quality = Quality.Measure(state.Snapshot, workload);
long heapAfter = GC.GetTotalMemory(true);
GC.KeepAlive(state);
GC.KeepAlive(workload);
proc.Refresh();

var report = new SimReport(
    Timestamp: TimeProvider.System.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
    Command: "dotnet " + string.Join(' ', Environment.GetCommandLineArgs()),
    Machine: $"{Environment.ProcessorCount} logical CPUs, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}",
    Pinned: pinned,
    Seed: o.Seed,
    Nodes: o.Nodes,
    Deployments: workload.Requests.Length,
    DeploymentsScheduled: deploymentsDone,
    InstancesTotal: workload.TotalInstances,
    InstancesRequested: requested,
    Placed: placed,
    Pending: pending,
    PlacedWithPreemption: preempted,
    Victims: victims,
    TimedOut: timedOut,
    Seconds: total.Elapsed.TotalSeconds,
    PlacementsPerSecond: placed / total.Elapsed.TotalSeconds,
    Slices: slices,
    ManagedHeapBytesBefore: heapBefore,
    ManagedHeapBytesAfterRun: heapLive,
    ManagedHeapBytesLiveAfterGc: heapAfter,
    WorkingSetBytes: proc.WorkingSet64,
    PeakWorkingSetBytes: proc.PeakWorkingSet64,
    GcCollections: gcCount,
    PendingFirstReasons: pendingReasons,
    Quality: quality);

Console.WriteLine();
Console.WriteLine("| metric | value |");
Console.WriteLine("|---|---|");
Row("scheduled", $"{deploymentsDone:N0} / {workload.Requests.Length:N0} deployments, {requested:N0} / {workload.TotalInstances:N0} instances{(timedOut ? " (time limit hit)" : "")}");
Row("placed / pending", $"{placed:N0} / {pending:N0} (with preemption {preempted:N0}, victims {victims:N0})");
Row("time", $"{total.Elapsed.TotalSeconds:F1} s");
Row("placements/s overall", $"{report.PlacementsPerSecond:N0}");
Row("placements/s per slice (min / median / max)", slices.Count == 0 ? "-" : $"{slices.Min(x => x.PlacementsPerSecond):N0} / {Median(slices.Select(x => x.PlacementsPerSecond)):N0} / {slices.Max(x => x.PlacementsPerSecond):N0}");
Row("managed heap: before / after run / live after GC", $"{Mb(heapBefore)} / {Mb(heapLive)} / {Mb(heapAfter)} MB");
Row("working set / peak", $"{Mb(proc.WorkingSet64)} / {Mb(proc.PeakWorkingSet64)} MB");
Row("GC collections during run", gcCount.ToString(CultureInfo.InvariantCulture));
Row("memory / cpu / slot utilisation", $"{quality.MemoryUtilisation:P1} / {quality.CpuUtilisation:P1} / {quality.SlotUtilisation:P1}");
Row("CV of per-node utilisation (memory / slots)", $"{quality.MemoryUtilisationCv:F3} / {quality.SlotUtilisationCv:F3}");
Row("fragmentation: free memory on nodes that cannot fit a median instance", $"{quality.FreeMemoryUnusableShare:P1} ({quality.StrandedMemoryBytes / (1024.0 * 1024 * 1024):N0} GiB stranded)");
Row("nodes that cannot fit a median instance", $"{quality.NodesFull:N0} / {o.Nodes:N0}");
Row("per-deployment max instances per node (mean / p99 / max, deployments ≥ 2)", $"{quality.MaxPerNodeMean:F2} / {quality.MaxPerNodeP99} / {quality.MaxPerNodeMax}");
Row("invariant violations (over-commit, taints, selectors, required anti-affinity)", quality.Violations.ToString(CultureInfo.InvariantCulture));
if (pendingReasons.Count > 0)
{
    Row("pending deployments by first reason", string.Join("; ", pendingReasons.OrderByDescending(p => p.Value).Take(4).Select(p => $"{p.Value:N0}: {p.Key}")));
}

var dir = Path.IsPathRooted(o.Out) ? o.Out : RepoPaths.Combine(o.Out);
Directory.CreateDirectory(dir);
var file = Path.Combine(dir, $"scheduler-sim-{TimeProvider.System.GetUtcNow():yyyyMMdd-HHmmss}.json");
File.WriteAllText(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine();
Console.WriteLine($"wrote {file}");
return quality.Violations == 0 ? 0 : 1;

static void Row(string name, string value) => Console.WriteLine($"| {name} | {value} |");

static string Mb(long bytes) => (bytes / (1024.0 * 1024)).ToString("N0", CultureInfo.InvariantCulture);

static double Median(IEnumerable<double> values)
{
    var a = values.Order().ToArray();
    return a.Length == 0 ? 0 : a.Length % 2 == 1 ? a[a.Length / 2] : (a[(a.Length / 2) - 1] + a[a.Length / 2]) / 2;
}

internal sealed record SimOptions(int Nodes, int Deployments, int Instances, int Seed, double TimeLimitSeconds, int Slice, int Percentage, bool NoPin, string Out)
{
    public static SimOptions? Parse(string[] args)
    {
        var o = new SimOptions(5000, 100_000, 1_000_000, 42, 600, 100_000, 0, false, Path.Combine("artifacts", "bench"));
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            o = args[i] switch
            {
                "--nodes" => o with { Nodes = Int() },
                "--deployments" => o with { Deployments = Int() },
                "--instances" => o with { Instances = Int() },
                "--seed" => o with { Seed = Int() },
                "--time-limit" => o with { TimeLimitSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--slice" => o with { Slice = Int() },
                "--percentage" => o with { Percentage = Int() },
                "--no-pin" => o with { NoPin = true },
                "--out" => o with { Out = Next() },
                _ => null,
            };
            if (o is null)
            {
                return null;
            }
        }

        return o.Instances < o.Deployments || o.Nodes < 1 ? null : o;
    }
}

internal sealed record SliceReport(long FromInstance, long ToInstance, long Placed, double Seconds, double PlacementsPerSecond);

internal sealed record SimReport(
    string Timestamp, string Command, string Machine, bool Pinned, int Seed, int Nodes, int Deployments, int DeploymentsScheduled,
    long InstancesTotal, long InstancesRequested, long Placed, long Pending, long PlacedWithPreemption, long Victims, bool TimedOut,
    double Seconds, double PlacementsPerSecond, List<SliceReport> Slices, long ManagedHeapBytesBefore, long ManagedHeapBytesAfterRun,
    long ManagedHeapBytesLiveAfterGc, long WorkingSetBytes, long PeakWorkingSetBytes, long GcCollections,
    Dictionary<string, int> PendingFirstReasons, QualityReport Quality);

internal sealed record QualityReport(
    double MemoryUtilisation, double CpuUtilisation, double SlotUtilisation, double MemoryUtilisationCv, double SlotUtilisationCv,
    long MedianInstanceMemoryBytes, int MedianInstanceCpu, double FreeMemoryUnusableShare, long StrandedMemoryBytes, int NodesFull,
    double MaxPerNodeMean, int MaxPerNodeP99, int MaxPerNodeMax, long Violations);

internal sealed class Workload
{
    private const long Mi = 1L << 20;
    private const long Gi = 1L << 30;

    public required SchedulerNode[] Nodes { get; init; }

    public required PlacementRequest[] Requests { get; init; }

    public long TotalInstances { get; init; }

    public static Workload Generate(SimOptions o)
    {
        var rng = new Random(o.Seed);
        string[] regions = ["eu", "us", "ap"];
        int zones = 12;
        var gpuTaint = new Taint("gpu", "true", TaintEffect.NoSchedule);
        var spotTaint = new Taint("spot", "true", TaintEffect.PreferNoSchedule);
        var nodes = new SchedulerNode[o.Nodes];
        for (int i = 0; i < nodes.Length; i++)
        {
            int zone = rng.Next(zones);
            double r = rng.NextDouble();
            (string type, NodeCapacity cap) = r switch
            {
                < 0.40 => ("small", new NodeCapacity(16 * Gi, 16_000, 128)),
                < 0.75 => ("medium", new NodeCapacity(32 * Gi, 32_000, 256)),
                < 0.95 => ("large", new NodeCapacity(64 * Gi, 64_000, 512)),
                _ => ("gpu", new NodeCapacity(64 * Gi, 64_000, 256)),
            };
            var taints = new List<Taint>();
            if (type == "gpu")
            {
                taints.Add(gpuTaint);
            }

            bool spot = rng.NextDouble() < 0.10;
            if (spot)
            {
                taints.Add(spotTaint);
            }

            nodes[i] = new SchedulerNode
            {
                Name = "node-" + i.ToString("D5", CultureInfo.InvariantCulture),
                Labels = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["zone"] = "z" + zone.ToString(CultureInfo.InvariantCulture),
                    ["region"] = regions[zone % regions.Length],
                    ["type"] = type,
                    ["lifecycle"] = spot ? "spot" : "on-demand",
                },
                Taints = taints.ToArray(),
                Capacity = cap,
            };
        }

        // Instance counts: skewed (half of the deployments have 1..5), scaled to exactly o.Instances.
        var raw = new double[o.Deployments];
        double sum = 0;
        for (int d = 0; d < raw.Length; d++)
        {
            double r = rng.NextDouble();
            raw[d] = r switch
            {
                < 0.50 => rng.Next(1, 6),
                < 0.85 => rng.Next(6, 16),
                < 0.98 => rng.Next(16, 41),
                _ => rng.Next(41, 151),
            };
            sum += raw[d];
        }

        var counts = new int[o.Deployments];
        long assigned = 0;
        for (int d = 0; d < counts.Length; d++)
        {
            counts[d] = Math.Max(1, (int)Math.Round(raw[d] * o.Instances / sum));
            assigned += counts[d];
        }

        for (int d = 0; assigned != o.Instances; d = (d + 1) % counts.Length)
        {
            if (assigned < o.Instances)
            {
                counts[d]++;
                assigned++;
            }
            else if (counts[d] > 1)
            {
                counts[d]--;
                assigned--;
            }
        }

        long[] memSizes = [32 * Mi, 64 * Mi, 128 * Mi, 256 * Mi, 512 * Mi];
        double[] memCdf = [0.40, 0.70, 0.90, 0.98, 1.0];
        int[] cpuSizes = [25, 50, 100, 200];
        var tolerateGpu = new Toleration("gpu", "true", TaintEffect.NoSchedule);
        var tolerateSpot = new Toleration("spot", "true");
        var requests = new PlacementRequest[o.Deployments];
        for (int d = 0; d < requests.Length; d++)
        {
            string name = "dep-" + d.ToString("D6", CultureInfo.InvariantCulture);
            var labels = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["app"] = name,
                ["team"] = "t" + rng.Next(50).ToString(CultureInfo.InvariantCulture),
            };
            double m = rng.NextDouble();
            long mem = memSizes[Array.FindIndex(memCdf, c => m < c)];
            int cpu = cpuSizes[rng.Next(cpuSizes.Length)];
            double p = rng.NextDouble();
            int priority = p < 0.70 ? 0 : p < 0.95 ? 100 : 1000;
            var selector = new Dictionary<string, string>(StringComparer.Ordinal);
            var tolerations = new List<Toleration>();
            double s = rng.NextDouble();
            if (s < 0.03)
            {
                selector["type"] = "gpu";
                tolerations.Add(tolerateGpu);
            }
            else if (s < 0.13)
            {
                selector["zone"] = "z" + rng.Next(zones).ToString(CultureInfo.InvariantCulture);
            }
            else if (s < 0.18)
            {
                selector["region"] = regions[rng.Next(regions.Length)];
            }

            if (rng.NextDouble() < 0.10)
            {
                tolerations.Add(tolerateSpot);
            }

            var anti = new List<AffinityTerm>();
            var affinity = new List<AffinityTerm>();
            double a = rng.NextDouble();
            var own = new Dictionary<string, string>(StringComparer.Ordinal) { ["app"] = name };
            if (a < 0.10)
            {
                anti.Add(new AffinityTerm { MatchLabels = own, TopologyKey = TopologyKeys.Node, Required = true });
            }
            else if (a < 0.15)
            {
                anti.Add(new AffinityTerm { MatchLabels = own, TopologyKey = TopologyKeys.Zone, Required = false, Weight = 50 });
            }
            else if (a < 0.17 && d > 0)
            {
                string target = "dep-" + rng.Next(d).ToString("D6", CultureInfo.InvariantCulture);
                affinity.Add(new AffinityTerm
                {
                    MatchLabels = new Dictionary<string, string>(StringComparer.Ordinal) { ["app"] = target },
                    TopologyKey = TopologyKeys.Zone,
                    Required = false,
                    Weight = 50,
                });
            }

            requests[d] = new PlacementRequest
            {
                Deployment = name,
                Labels = labels,
                MemoryBytes = mem,
                CpuWeight = cpu,
                Instances = counts[d],
                Priority = priority,
                NodeSelector = selector,
                Tolerations = tolerations.ToArray(),
                Affinity = affinity.ToArray(),
                AntiAffinity = anti.ToArray(),
                Strategy = rng.NextDouble() < 0.2 ? ScoringStrategy.BinPack : ScoringStrategy.Default,
                MinAvailable = counts[d] / 2,
            };
        }

        return new Workload { Nodes = nodes, Requests = requests, TotalInstances = o.Instances };
    }
}

internal static class Quality
{
    public static QualityReport Measure(ClusterSnapshot snapshot, Workload workload)
    {
        var requests = workload.Requests.ToDictionary(r => r.Deployment, StringComparer.Ordinal);
        var mems = workload.Requests.SelectMany(r => Enumerable.Repeat(r.MemoryBytes, r.Instances)).Order().ToArray();
        long medianMem = mems.Length == 0 ? 0 : mems[mems.Length / 2];
        var cpus = workload.Requests.SelectMany(r => Enumerable.Repeat(r.CpuWeight, r.Instances)).Order().ToArray();
        int medianCpu = cpus.Length == 0 ? 0 : cpus[cpus.Length / 2];

        long capMem = 0, capCpu = 0, capSlots = 0, usedMem = 0, usedCpu = 0, usedSlots = 0, freeMem = 0, stranded = 0, violations = 0;
        int full = 0;
        var memUtil = new List<double>();
        var slotUtil = new List<double>();
        var perDeployment = new Dictionary<string, Dictionary<int, int>>(StringComparer.Ordinal);
        for (int i = 0; i < snapshot.Nodes.Count; i++)
        {
            var node = snapshot.Nodes[i];
            long m = node.Allocated.Sum(x => x.MemoryBytes);
            long c = node.Allocated.Sum(x => (long)x.CpuWeight);
            int s = node.Allocated.Count;
            capMem += node.Capacity.MemoryBytes;
            capCpu += node.Capacity.CpuWeight;
            capSlots += node.Capacity.InstanceSlots;
            usedMem += m;
            usedCpu += c;
            usedSlots += s;
            memUtil.Add((double)m / node.Capacity.MemoryBytes);
            slotUtil.Add((double)s / node.Capacity.InstanceSlots);
            long free = node.Capacity.MemoryBytes - m;
            freeMem += free;
            if (s + 1 > node.Capacity.InstanceSlots || m + medianMem > node.Capacity.MemoryBytes || c + medianCpu > node.Capacity.CpuWeight)
            {
                full++;
                stranded += free;
            }

            if (m > node.Capacity.MemoryBytes || c > node.Capacity.CpuWeight || s > node.Capacity.InstanceSlots)
            {
                violations++;
            }

            foreach (var inst in node.Allocated)
            {
                var req = requests[inst.Deployment];
                foreach (var taint in node.Taints)
                {
                    if (taint.Effect != TaintEffect.PreferNoSchedule && !req.Tolerations.Any(t => t.Tolerates(taint)))
                    {
                        violations++;
                    }
                }

                foreach (var (k, v) in req.NodeSelector)
                {
                    if (!node.Labels.TryGetValue(k, out var actual) || actual != v)
                    {
                        violations++;
                    }
                }

                if (!perDeployment.TryGetValue(inst.Deployment, out var per))
                {
                    perDeployment[inst.Deployment] = per = [];
                }

                per[i] = per.GetValueOrDefault(i) + 1;
            }
        }

        var maxima = new List<int>();
        foreach (var (dep, per) in perDeployment)
        {
            var req = requests[dep];
            int max = per.Values.Max();
            if (req.AntiAffinity.Any(t => t.Required && t.TopologyKey == TopologyKeys.Node) && max > 1)
            {
                violations++;
            }

            if (per.Values.Sum() >= 2)
            {
                maxima.Add(max);
            }
        }

        maxima.Sort();
        return new QualityReport(
            MemoryUtilisation: (double)usedMem / capMem,
            CpuUtilisation: (double)usedCpu / capCpu,
            SlotUtilisation: (double)usedSlots / capSlots,
            MemoryUtilisationCv: Cv(memUtil),
            SlotUtilisationCv: Cv(slotUtil),
            MedianInstanceMemoryBytes: medianMem,
            MedianInstanceCpu: medianCpu,
            FreeMemoryUnusableShare: freeMem == 0 ? 0 : (double)stranded / freeMem,
            StrandedMemoryBytes: stranded,
            NodesFull: full,
            MaxPerNodeMean: maxima.Count == 0 ? 0 : maxima.Average(),
            MaxPerNodeP99: maxima.Count == 0 ? 0 : maxima[(int)(maxima.Count * 0.99)],
            MaxPerNodeMax: maxima.Count == 0 ? 0 : maxima[^1],
            Violations: violations);
    }

    private static double Cv(List<double> values)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        double mean = values.Average();
        double var = values.Sum(v => (v - mean) * (v - mean)) / values.Count;
        return mean == 0 ? 0 : Math.Sqrt(var) / mean;
    }
}
