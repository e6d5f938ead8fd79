namespace WarpGrid.Core.Tests.Runtime;

/// <summary>Locates the guest modules compiled from source (tests/guests, samples).</summary>
internal static class Guests
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Testbed => Path.Combine(RepoRoot, "tests", "guests", "testbed.wasm");

    public static string NotWasm => Path.Combine(RepoRoot, "tests", "guests", "not-wasm.wasm");

    public static string Hello => Path.Combine(RepoRoot, "samples", "hello", "hello.wasm");

    public static string HelloZig => Path.Combine(RepoRoot, "samples", "hello-zig", "hello-zig.wasm");

    public static string EchoWat => Path.Combine(RepoRoot, "samples", "echo-wat", "echo.wat");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("WarpGrid.sln not found above " + AppContext.BaseDirectory);
    }
}
