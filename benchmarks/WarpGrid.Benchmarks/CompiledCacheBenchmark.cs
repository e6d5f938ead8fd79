using BenchmarkDotNet.Attributes;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Runtime;

namespace WarpGrid.Benchmarks;

/// <summary>
/// Loading <c>tests/guests/testbed.wasm</c> (20 KB) into a node that has never seen it: compiling it (and writing the
/// compiled-cache entry) against deserializing the entry a previous run wrote. Each operation gets a fresh
/// <see cref="WasmNodeRuntime"/> (so its in-memory cache is empty) created in <c>[IterationSetup]</c>: engine
/// construction is not measured, only <see cref="ModuleCache.LoadFile"/>.
/// </summary>
/// <remarks>
/// Iteration setup forces one invocation per iteration, so each measurement is a single load: the numbers are
/// milliseconds and microseconds, well above the timer's resolution.
/// </remarks>
public class CompiledCacheBenchmark
{
    private string _testbed = null!;
    private string _root = null!;
    private string _coldDirectory = null!;
    private string _warmDirectory = null!;
    private WasmNodeRuntime? _runtime;

    [GlobalSetup]
    public void Setup()
    {
        _testbed = RepoPaths.Combine("tests", "guests", "testbed.wasm");
        _root = Path.Combine(Path.GetTempPath(), "warpgrid-bench-cache-" + Environment.ProcessId);
        _coldDirectory = Path.Combine(_root, "cold");
        _warmDirectory = Path.Combine(_root, "warm");
        Directory.CreateDirectory(_root);

        // Fill the warm cache once; every DiskCacheHit iteration then deserializes this entry.
        using var runtime = NewRuntime(_warmDirectory);
        var module = runtime.Modules.LoadFile(_testbed);
        if (module.FromCache)
        {
            throw new InvalidOperationException("the warm cache directory was not empty before the benchmark filled it");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _runtime?.Dispose();
        _runtime = null;
        Directory.Delete(_root, recursive: true);
    }

    [IterationSetup(Targets = [nameof(Compile)])]
    public void EmptyCache()
    {
        if (Directory.Exists(_coldDirectory))
        {
            Directory.Delete(_coldDirectory, recursive: true);
        }

        _runtime = NewRuntime(_coldDirectory);
    }

    [IterationSetup(Targets = [nameof(CompileWithoutDiskCache)])]
    public void NoCache() => _runtime = NewRuntime(null);

    [IterationSetup(Targets = [nameof(DiskCacheHit)])]
    public void WarmCache() => _runtime = NewRuntime(_warmDirectory);

    [IterationCleanup]
    public void DisposeRuntime()
    {
        _runtime?.Dispose();
        _runtime = null;
    }

    /// <summary>Cold: validate, compile with Cranelift, serialize and write the cache entry (with fsync).</summary>
    [Benchmark(Baseline = true, Description = "compile + write cache entry")]
    public CompiledModule Compile() => Load(expectFromCache: false);

    /// <summary>Cold, no disk cache configured: validate and compile only.</summary>
    [Benchmark(Description = "compile, no disk cache")]
    public CompiledModule CompileWithoutDiskCache() => Load(expectFromCache: false);

    /// <summary>Warm: read the entry, check its HMAC, deserialize the native code.</summary>
    [Benchmark(Description = "disk cache hit")]
    public CompiledModule DiskCacheHit() => Load(expectFromCache: true);

    private CompiledModule Load(bool expectFromCache)
    {
        var module = _runtime!.Modules.LoadFile(_testbed);
        if (module.FromCache != expectFromCache)
        {
            throw new InvalidOperationException(expectFromCache ? "expected a disk cache hit but the module was compiled" : "expected a compile but the module came from the cache");
        }

        return module;
    }

    // Small pool: engine construction reserves address space for every slot, and the fingerprint (part of the cache
    // key) includes the pool size, so cold and warm runtimes must be built alike.
    private static WasmNodeRuntime NewRuntime(string? cacheDirectory) => new(new WasmRuntimeOptions
    {
        MaxInstancesPerNode = 16,
        MaxMemoryPerInstanceBytes = 64L << 20,
        CompiledCacheDirectory = cacheDirectory,
    });
}
