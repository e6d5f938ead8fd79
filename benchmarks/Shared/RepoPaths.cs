namespace WarpGrid.Benchmarks.Shared;

/// <summary>Finds the repository root (the directory holding <c>WarpGrid.sln</c>) and files relative to it.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The repository root.</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>A path under the repository root.</summary>
    public static string Combine(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Walks up from <paramref name="start"/> until a directory holds <c>WarpGrid.sln</c>.</summary>
    public static string? FindRootFrom(string start)
    {
        var dir = new DirectoryInfo(start);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName;
    }

    private static string FindRoot()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("WARPGRID_REPO");
        if (!string.IsNullOrEmpty(fromEnvironment) && File.Exists(Path.Combine(fromEnvironment, "WarpGrid.sln")))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        // BenchmarkDotNet runs the benchmarks from a generated project under bin/, still below the repository.
        return FindRootFrom(AppContext.BaseDirectory)
            ?? FindRootFrom(Environment.CurrentDirectory)
            ?? throw new InvalidOperationException(
                $"WarpGrid.sln not found above {AppContext.BaseDirectory} or {Environment.CurrentDirectory}; run from the repository or set WARPGRID_REPO.");
    }
}
