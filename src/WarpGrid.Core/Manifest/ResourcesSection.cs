namespace WarpGrid.Core.Manifest;

/// <summary>The <c>[runtime.resources]</c> section: per-instance limits.</summary>
public sealed record ResourcesSection
{
    /// <summary>Default of <see cref="MemoryLimitBytes"/>: 128 MiB.</summary>
    public const long DefaultMemoryLimitBytes = 128L * 1024 * 1024;

    /// <summary>Smallest allowed memory limit: 64 KiB (one WebAssembly page).</summary>
    public const long MinMemoryLimitBytes = 64L * 1024;

    /// <summary>Largest allowed memory limit: 4 GiB (the 32-bit WebAssembly address space).</summary>
    public const long MaxMemoryLimitBytes = 4L * 1024 * 1024 * 1024;

    /// <summary>Default of <see cref="CpuWeight"/>.</summary>
    public const int DefaultCpuWeight = 100;

    /// <summary>Smallest allowed <see cref="CpuWeight"/>.</summary>
    public const int MinCpuWeight = 1;

    /// <summary>Largest allowed <see cref="CpuWeight"/>.</summary>
    public const int MaxCpuWeight = 10_000;

    /// <summary>Linear memory limit of one instance in bytes, 64 KiB..4 GiB; default 128 MiB.</summary>
    public long MemoryLimitBytes { get; init; } = DefaultMemoryLimitBytes;

    /// <summary>Relative CPU share, 1..10000; default 100.</summary>
    public int CpuWeight { get; init; } = DefaultCpuWeight;
}
