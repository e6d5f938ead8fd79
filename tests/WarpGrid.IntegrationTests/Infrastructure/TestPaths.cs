using System.Reflection;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>Where the tests find the built <c>warpd.dll</c> and the test guests.</summary>
internal static class TestPaths
{
    private static readonly Lazy<string> Root = new(FindRepoRoot);

    /// <summary>The repository root (the directory holding <c>Directory.Packages.props</c>).</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>The configuration this test assembly was built with (Debug or Release).</summary>
    public static string Configuration => Metadata("WarpGridConfiguration") ?? "Debug";

    /// <summary>
    /// The warpd entry assembly built by the project reference in the same configuration as the tests;
    /// <c>WARPD_DLL</c> overrides it.
    /// </summary>
    public static string WarpdDll
    {
        get
        {
            var overridden = Environment.GetEnvironmentVariable("WARPD_DLL");
            if (!string.IsNullOrEmpty(overridden))
            {
                return overridden;
            }

            var path = Path.Combine(RepoRoot, "src", "WarpGrid.Daemon", "bin", Configuration, "net10.0", "warpd.dll");
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"warpd.dll not found at {path}; build the solution (dotnet build tests/WarpGrid.IntegrationTests -c {Configuration}) or set WARPD_DLL", path);
            }

            return path;
        }
    }

    /// <summary>The <c>dotnet</c> host that runs this test process (the SDK sets DOTNET_HOST_PATH under dotnet test).</summary>
    public static string DotnetHost
    {
        get
        {
            var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(host) && File.Exists(host))
            {
                return host;
            }

            var self = Environment.ProcessPath;
            return self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
        }
    }

    public static string Testbed => Path.Combine(RepoRoot, "tests", "guests", "testbed.wasm");

    public static string NotWasm => Path.Combine(RepoRoot, "tests", "guests", "not-wasm.wasm");

    public static string HelloDir => Path.Combine(RepoRoot, "samples", "hello");

    public static string Hello => Path.Combine(HelloDir, "hello.wasm");

    public static string HelloManifest => Path.Combine(HelloDir, "warp.toml");

    /// <summary>A guest of this project, under <c>tests/WarpGrid.IntegrationTests/guests</c>.</summary>
    public static string Guest(string fileName) => Path.Combine(RepoRoot, "tests", "WarpGrid.IntegrationTests", "guests", fileName);

    private static string? Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;

    private static string FindRepoRoot()
    {
        var fromBuild = Metadata("WarpGridRepoRoot");
        if (fromBuild is not null && File.Exists(Path.Combine(fromBuild, "Directory.Packages.props")))
        {
            return fromBuild;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")) && Directory.Exists(Path.Combine(dir.FullName, "src", "WarpGrid.Daemon")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("could not find the WarpGrid repository root above " + AppContext.BaseDirectory);
    }
}
