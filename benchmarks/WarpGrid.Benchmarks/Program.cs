using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using WarpGrid.Benchmarks.Shared;

namespace WarpGrid.Benchmarks;

/// <summary>
/// Entry point. Every BenchmarkDotNet switch works (<c>--filter</c>, <c>--job</c>, <c>--list flat</c>...), plus:
/// <list type="bullet">
/// <item><c>--ci</c>: one dry iteration of each benchmark, in process, so the whole suite runs in well under a minute and
/// breaks the build when a benchmark stops working (exit code 1).</item>
/// <item><c>--in-process</c>: run in this process instead of a generated project (for environments where the generated
/// project cannot build).</item>
/// <item><c>--scaling-reaction</c>: the autoscaler's reaction to a step in load (<see cref="ScalingReaction"/>).</item>
/// <item><c>--request-cost</c>: wall and CPU time per request of the component and WAGI hellos, one and two requests at
/// a time (<see cref="RequestCost"/>).</item>
/// </list>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Contains("--scaling-reaction", StringComparer.Ordinal))
        {
            return ScalingReaction.Run();
        }

        if (args.Contains("--request-cost", StringComparer.Ordinal))
        {
            return RequestCost.Run(args);
        }

        var ci = args.Contains("--ci", StringComparer.Ordinal);
        var inProcess = ci || args.Contains("--in-process", StringComparer.Ordinal);
        var rest = args.Where(a => a is not "--ci" and not "--in-process").ToList();
        if (ci && !rest.Contains("--filter", StringComparer.Ordinal))
        {
            // Without a filter the switcher asks on the console which benchmark to run; CI has no one to answer.
            rest.AddRange(["--filter", "*"]);
        }

        var config = ManualConfig.Create(DefaultConfig.Instance)
            .WithArtifactsPath(ci ? Path.Combine(RepoPaths.Root, "BenchmarkDotNet.Artifacts", "ci") : Path.Combine(RepoPaths.Root, "BenchmarkDotNet.Artifacts"))
            .AddColumn(StatisticColumn.Median, StatisticColumn.P90);
        if (ci)
        {
            config = config.AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance).WithId("ci-dry"));
        }
        else if (inProcess)
        {
            config = config.AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithId("in-process"));
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run([.. rest], config).ToList();
        var failed = summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) || (ci && summaries.Sum(s => s.Reports.Length) == 0);
        if (failed)
        {
            Console.Error.WriteLine(ci && summaries.Count == 0 ? "No benchmark ran." : "At least one benchmark failed; see the log above.");
        }

        return failed ? 1 : 0;
    }
}
