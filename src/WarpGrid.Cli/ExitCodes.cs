namespace WarpGrid.Cli;

/// <summary>The exit codes of <c>warp</c>; scripts can rely on them (docs/cli.md).</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Bad command line: unknown command or option, missing argument.</summary>
    public const int Usage = 1;

    /// <summary>The input is invalid: manifest errors, compile errors, a module that fails validation.</summary>
    public const int Invalid = 2;

    /// <summary>A toolchain the build needs is missing or not available here (Python).</summary>
    public const int ToolchainMissing = 3;

    /// <summary>The node (or registry) could not be reached.</summary>
    public const int Unreachable = 4;

    /// <summary>The node (or registry) answered with an error.</summary>
    public const int Rejected = 5;
}
