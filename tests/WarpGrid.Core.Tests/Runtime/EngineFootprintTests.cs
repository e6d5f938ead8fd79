using WarpGrid.Core.Runtime;

namespace WarpGrid.Core.Tests.Runtime;

/// <summary>What an engine costs the process in memory mappings (Linux counts them against <c>vm.max_map_count</c>).</summary>
public sealed class EngineFootprintTests
{
    [Fact]
    public void A_small_engine_takes_a_few_hundred_mappings_not_the_two_thousand_of_wasmtime_default_fiber_stacks()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the mappings are read from /proc/self/maps; the CI and the nodes this guards are Linux
        }

        // Other tests create and drop engines in parallel, so the count moves under this test: measure each engine
        // as the smallest growth seen over several tries. With Wasmtime's default of 1000 fiber stacks (a guard page
        // each), one engine added 2000 mappings.
        var smallest = int.MaxValue;
        for (var attempt = 0; attempt < 5 && smallest > 400; attempt++)
        {
            var before = Mappings();
            using var runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 8 });
            smallest = Math.Min(smallest, Mappings() - before);
        }

        Assert.True(smallest <= 400, $"an 8-slot engine added {smallest} memory mappings");
    }

    private static int Mappings() => File.ReadLines("/proc/self/maps").Count();
}
