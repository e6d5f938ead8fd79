using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wasmtime;

namespace WarpGrid.Core.Runtime;

/// <summary>
/// The node's single Wasmtime engine: pooling allocator sized from <see cref="WasmRuntimeOptions"/>, epoch interruption
/// driven by a background ticker, and the fingerprint of its settings that keys the compiled-code cache.
/// </summary>
public sealed partial class WasmEngineHost : IDisposable
{
    /// <summary>Pool slots kept beyond the node instance cap for deploy-time validation.</summary>
    internal const int ReservedSlots = 16;

    /// <summary>Core instances (and tables) the pooling allocator provides per instance slot, for components.</summary>
    internal const int CoreInstancesPerComponent = 6;

    private readonly Thread _ticker;
    private readonly ManualResetEventSlim _stop = new();
    private readonly ILogger _logger;
    private long _epoch;
    private int _disposed;

    public WasmEngineHost(WasmRuntimeOptions options, ILogger<WasmEngineHost>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(options));
        }

        Options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        var slots = (uint)(options.MaxInstancesPerNode + ReservedSlots);
        var memoryBytes = (ulong)options.MaxMemoryPerInstanceBytes;
        var keepResident = (nuint)options.KeepResidentBytes;

        // A component instance is several core instances (its main module, wit-component's shim and fixup modules, a
        // preview 1 adapter: 3 for a C guest, 4 for StarlingMonkey), each taking a core-instance and a table slot; one
        // slot per component ran out after a quarter of the node budget with Wasmtime's "maximum concurrent limit of N
        // for core instances reached". Memories stay one per instance (they reserve address space).
        var pooling = new PoolingAllocationConfig()
            .WithTotalComponentInstances(slots)
            .WithMaxCoreInstances(slots * CoreInstancesPerComponent)
            .WithMaxMemories(slots)
            .WithMaxTables(slots * CoreInstancesPerComponent)
            .WithMaxMemorySize((nuint)memoryBytes)
            .WithMaxTableElements(100_000)
            .WithLinearMemoryKeepResidentBytes(keepResident)
            .WithTableKeepResidentBytes(keepResident)
            .WithMaxUnusedWarmSlots((uint)Math.Min(slots, 256));
        WithoutFiberStacks(pooling);

        var config = new Config()
            .WithEpochInterruption(true)
            .WithMaximumStackSize(options.MaxWasmStackBytes)
            .WithPoolingAllocationStrategy(pooling)
            .WithCraneliftDebugVerifier(false)
            .WithOptimizationLevel(OptimizationLevel.Speed);

        Engine = new Engine(config);
        Fingerprint = string.Join(
            ";",
            "wasmtime=" + typeof(Engine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion,
            "arch=" + RuntimeInformation.ProcessArchitecture,
            "os=" + RuntimeInformation.OSDescription.Split(' ')[0],
            "epoch=1",
            "stack=" + options.MaxWasmStackBytes,
            "pool=" + slots + "/" + memoryBytes,
            "opt=speed");
        // A dedicated thread, not a timer: timers run on the thread pool, which busy guests can starve, and the
        // ticker is what ends a runaway guest.
        _ticker = new Thread(TickLoop) { IsBackground = true, Name = "warpgrid-epoch", Priority = ThreadPriority.AboveNormal };
        _ticker.Start();
    }

    /// <summary>The engine every module and store on this node uses.</summary>
    public Engine Engine { get; }

    /// <summary>The runtime settings.</summary>
    public WasmRuntimeOptions Options { get; }

    /// <summary>A string naming every engine setting that affects compiled code; part of the compiled-cache key.</summary>
    public string Fingerprint { get; }

    /// <summary>Epochs elapsed since start.</summary>
    public long Epoch => Volatile.Read(ref _epoch);

    /// <summary>Converts a timeout to an epoch deadline (ticks from now), rounding up and adding one tick of slack.</summary>
    public ulong TicksFor(TimeSpan timeout)
    {
        var tick = Options.EpochTick.Ticks;
        return (ulong)((timeout.Ticks + tick - 1) / tick) + 1;
    }

    private void TickLoop()
    {
        // Epochs follow wall-clock time, not wake-ups: on a busy machine the thread wakes late, and counting wake-ups
        // would stretch every deadline. Each wake-up catches up on all the ticks that have elapsed.
        var tick = Options.EpochTick;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        long done = 0;
        while (!_stop.Wait(tick))
        {
            var due = System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks / tick.Ticks;
            for (; done < due; done++)
            {
                Engine.IncrementEpoch();
            }

            Volatile.Write(ref _epoch, done);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Set();
        _ticker.Join();
        _stop.Dispose();
        Log.EngineStopped(_logger, Epoch);
        Engine.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Wasm engine stopped after {Epochs} epochs")]
        public static partial void EngineStopped(ILogger logger, long epochs);
    }

    /// <summary>
    /// Sets the pool's fiber stacks (<c>total_stacks</c>) to none: every call into a guest here is synchronous, on the
    /// calling thread's own stack. Wasmtime's default reserves 1000 async stacks of 2 MiB per engine, each with its guard
    /// page: 2000 memory mappings per engine whatever the node's size, which put a process with a dozen engines (the
    /// test suites) past <c>vm.max_map_count</c> (65530), so that instantiation failed and engine creation panicked
    /// ("failed to protect stack guard page … Cannot allocate memory"). The managed binding has the setter but keeps it
    /// internal, so it is called by name; if a later binding renames it, the default stays (and this logs nothing: the
    /// node works, with Wasmtime's default mappings).
    /// </summary>
    private static void WithoutFiberStacks(PoolingAllocationConfig pooling) =>
        typeof(PoolingAllocationConfig)
            .GetMethod("WithMaxStacks", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public, [typeof(uint)])
            ?.Invoke(pooling, [0u]);
}
