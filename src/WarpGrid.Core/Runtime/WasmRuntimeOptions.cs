namespace WarpGrid.Core.Runtime;

/// <summary>Settings of the node's WebAssembly runtime. Validated when the node starts.</summary>
public sealed class WasmRuntimeOptions
{
    /// <summary>The most instances (sandboxes) alive at once on this node, across all deployments. Default 1000, at most 20,000.</summary>
    /// <remarks>Every pooled instance reserves address space for its linear memory; the cap keeps the node far below the
    /// point where the kernel's map count or address space runs out, and refuses the next instance with a clear error.</remarks>
    public int MaxInstancesPerNode { get; set; } = 1000;

    /// <summary>The largest <c>memory_limit</c> a deployment may ask for on this node. Default 1 GiB, at most 4 GiB.</summary>
    public long MaxMemoryPerInstanceBytes { get; set; } = 1L << 30;

    /// <summary>How often the epoch ticker advances; request deadlines are enforced at this granularity. Default 5 ms.</summary>
    public TimeSpan EpochTick { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The maximum native stack a guest may use before it traps with a stack overflow. Default 512 KiB.</summary>
    public int MaxWasmStackBytes { get; set; } = 512 * 1024;

    /// <summary>
    /// Bytes of linear memory (and of tables) a recycled pooled slot keeps resident: reset in place (zeroed, or copied
    /// back from the module's memory image) instead of released with <c>madvise</c> and faulted in again by the next
    /// instance. Default 16 MiB, at most 64 MiB.
    /// </summary>
    /// <remarks>
    /// Released pages cost the next instance a page fault each, and on a node with more than one core every
    /// copy-on-write fault and every release also interrupts the other cores (TLB shootdown): with 1 MiB, two
    /// StarlingMonkey requests at once on two cores cost 2.5× the CPU of one alone. 16 MiB keeps such a guest's memory
    /// resident, so requests scale across cores; the price is that a used slot keeps up to this much memory resident
    /// after its instance is gone, and that each recycle rewrites up to this much memory (docs/benchmarks.md).
    /// </remarks>
    public long KeepResidentBytes { get; set; } = 16L << 20;

    /// <summary>Directory of the compiled-code cache. Null disables the disk cache.</summary>
    public string? CompiledCacheDirectory { get; set; }

    /// <summary>Largest request body the HTTP trigger accepts; larger requests get 413. Default 16 MiB.</summary>
    public long MaxRequestBodyBytes { get; set; } = 16L << 20;

    /// <summary>Largest response (headers and body) a guest may write to stdout. Default 64 MiB.</summary>
    public long MaxResponseBytes { get; set; } = 64L << 20;

    /// <summary>Largest amount of stderr kept per request for logs; the rest is dropped with a note. Default 64 KiB.</summary>
    public int MaxStderrBytesPerRequest { get; set; } = 64 * 1024;

    /// <summary>Guest log records kept in memory per deployment for <c>GET /v1/deployments/{name}/logs</c>. Default 1000.</summary>
    public int LogRecordsPerDeployment { get; set; } = 1000;

    /// <summary>Returns every problem with these settings, each naming the setting.</summary>
    public IReadOnlyList<string> Validate(string prefix = "WarpGrid:Runtime")
    {
        var errors = new List<string>();
        if (MaxInstancesPerNode is < 1 or > 20_000)
        {
            errors.Add($"{prefix}:MaxInstancesPerNode must be between 1 and 20000 (got {MaxInstancesPerNode}); each instance reserves address space and the kernel map limit is near 32000.");
        }

        if (MaxMemoryPerInstanceBytes < 64 * 1024 || MaxMemoryPerInstanceBytes > 4L << 30)
        {
            errors.Add($"{prefix}:MaxMemoryPerInstanceBytes must be between 65536 and 4294967296 (got {MaxMemoryPerInstanceBytes}).");
        }

        if (EpochTick < TimeSpan.FromMilliseconds(1) || EpochTick > TimeSpan.FromSeconds(1))
        {
            errors.Add($"{prefix}:EpochTick must be between 1 ms and 1 s (got {EpochTick}).");
        }

        if (MaxWasmStackBytes is < 64 * 1024 or > 16 * 1024 * 1024)
        {
            errors.Add($"{prefix}:MaxWasmStackBytes must be between 65536 and 16777216 (got {MaxWasmStackBytes}).");
        }

        if (KeepResidentBytes < 0 || KeepResidentBytes > 64L << 20)
        {
            errors.Add($"{prefix}:KeepResidentBytes must be between 0 and 67108864 (got {KeepResidentBytes}).");
        }

        if (MaxRequestBodyBytes < 0)
        {
            errors.Add($"{prefix}:MaxRequestBodyBytes must not be negative (got {MaxRequestBodyBytes}).");
        }

        if (MaxResponseBytes < 1024 || MaxResponseBytes > int.MaxValue)
        {
            errors.Add($"{prefix}:MaxResponseBytes must be between 1024 and {int.MaxValue} (got {MaxResponseBytes}).");
        }

        if (MaxStderrBytesPerRequest < 0)
        {
            errors.Add($"{prefix}:MaxStderrBytesPerRequest must not be negative (got {MaxStderrBytesPerRequest}).");
        }

        if (LogRecordsPerDeployment is < 1 or > 1_000_000)
        {
            errors.Add($"{prefix}:LogRecordsPerDeployment must be between 1 and 1000000 (got {LogRecordsPerDeployment}).");
        }

        return errors;
    }
}
