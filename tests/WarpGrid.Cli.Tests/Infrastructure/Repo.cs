using System.Reflection;

namespace WarpGrid.Cli.Tests.Infrastructure;

/// <summary>Paths of the repository the tests run in.</summary>
internal static class Repo
{
    public static string Root { get; } = Metadata("WarpGridRepoRoot") is { } root && File.Exists(Path.Combine(root, "WarpGrid.sln"))
        ? Path.GetFullPath(root)
        : FindUp(AppContext.BaseDirectory);

    public static string Configuration => Metadata("WarpGridConfiguration") ?? "Debug";

    public static string Samples => Path.Combine(Root, "samples");

    /// <summary>The repository's tools directory (npm packages, Zig) from scripts/install-toolchains.sh.</summary>
    public static string Tools => Path.Combine(Root, ".tools");

    public static string WarpdDll
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("WARPD_DLL");
            if (!string.IsNullOrEmpty(overridden))
            {
                return overridden;
            }

            var path = Path.Combine(Root, "src", "WarpGrid.Daemon", "bin", Configuration, "net10.0", "warpd.dll");
            return File.Exists(path)
                ? path
                : throw new FileNotFoundException($"warpd.dll not found at {path}; build tests/WarpGrid.Cli.Tests -c {Configuration} (it builds warpd) or set WARPD_DLL", path);
        }
    }

    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string? Metadata(string key) =>
        typeof(Repo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;

    private static string FindUp(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (WarpGrid.sln) not found above " + start);
    }
}

/// <summary>A temporary directory deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "warp-cli-")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }
}

internal static class Samples
{
    private static readonly string[] Skipped = [".warp", "node_modules", "target", "bin", "obj"];

    /// <summary>Copies samples/<paramref name="name"/> into <paramref name="parent"/> (never build in the source tree); returns the copy.</summary>
    public static string CopyTo(string name, string parent)
    {
        var target = System.IO.Path.Combine(parent, name);
        Copy(System.IO.Path.Combine(Repo.Samples, name), target);
        return target;
    }

    private static void Copy(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            File.Copy(file, System.IO.Path.Combine(target, System.IO.Path.GetFileName(file)));
        }

        foreach (var dir in Directory.EnumerateDirectories(source))
        {
            if (!Skipped.Contains(System.IO.Path.GetFileName(dir)))
            {
                Copy(dir, System.IO.Path.Combine(target, System.IO.Path.GetFileName(dir)));
            }
        }
    }
}
