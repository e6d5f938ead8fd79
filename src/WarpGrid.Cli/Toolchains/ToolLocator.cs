namespace WarpGrid.Cli.Toolchains;

/// <summary>
/// Finds the executables and files the guest toolchains need: on <c>PATH</c>, at Debian's fixed locations, and in the
/// repository's <c>.tools</c> directory (npm packages and Zig, installed by <c>scripts/install-toolchains.sh</c>) or a
/// <c>node_modules</c> next to the package. <c>WARP_TOOLS</c> names the tools directory explicitly.
/// </summary>
internal sealed class ToolLocator
{
    private readonly CliContext _context;
    private readonly string _startDirectory;
    private string? _toolsDirectory;
    private bool _toolsSearched;

    public ToolLocator(CliContext context, string startDirectory)
    {
        _context = context;
        _startDirectory = Path.GetFullPath(startDirectory);
    }

    /// <summary>The <c>.tools</c> directory: <c>$WARP_TOOLS</c>, else the nearest <c>.tools</c> above the package or above the CLI's own files.</summary>
    public string? ToolsDirectory
    {
        get
        {
            if (!_toolsSearched)
            {
                _toolsSearched = true;
                var fromEnv = _context.GetEnv("WARP_TOOLS");
                _toolsDirectory = !string.IsNullOrEmpty(fromEnv) && Directory.Exists(fromEnv)
                    ? Path.GetFullPath(fromEnv)
                    : FindUp(_startDirectory, ".tools", directory: true) ?? FindUp(AppContext.BaseDirectory, ".tools", directory: true);
            }

            return _toolsDirectory;
        }
    }

    /// <summary>Looks <paramref name="name"/> up on <c>PATH</c>.</summary>
    public string? OnPath(string name)
    {
        var path = _context.GetEnv("PATH") ?? string.Empty;
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The first of <paramref name="candidates"/> that is an executable file.</summary>
    public static string? FirstExecutable(params string?[] candidates) =>
        candidates.FirstOrDefault(c => c is not null && IsExecutable(c));

    /// <summary>An npm binary: <c>node_modules/.bin/&lt;name&gt;</c> next to or above the package, else in the tools directory.</summary>
    public string? NodeBin(string name) => NodePackagePath(Path.Combine(".bin", name), file: true);

    /// <summary>A path inside an npm package: <c>node_modules/&lt;relative&gt;</c> next to or above the package, else in the tools directory.</summary>
    public string? NodePackagePath(string relative, bool file)
    {
        for (var dir = new DirectoryInfo(_startDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "node_modules", relative);
            if (file ? File.Exists(candidate) : Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        if (ToolsDirectory is { } tools)
        {
            var candidate = Path.Combine(tools, "node_modules", relative);
            if (file ? File.Exists(candidate) : Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Zig 0.11: <c>$ZIG</c>, <c>.tools/bin/zig</c>, or <c>zig</c> on <c>PATH</c>.</summary>
    public string? Zig() =>
        FirstExecutable(_context.GetEnv("ZIG"), ToolsDirectory is { } t ? Path.Combine(t, "bin", "zig") : null, OnPath("zig"));

    /// <summary>The nearest file or directory named <paramref name="name"/> in <paramref name="start"/> or above.</summary>
    public static string? FindUp(string start, string name, bool directory)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(start)); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, name);
            if (directory ? Directory.Exists(candidate) : File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool IsExecutable(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                return false;
            }

            return OperatingSystem.IsWindows()
                || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
