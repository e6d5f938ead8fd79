namespace WarpGrid.Core.Clustering;

/// <summary>
/// Checks that a file holding a secret (a private key, the cluster secret, a token) is readable by its owner only,
/// as ssh does with its keys: a key that others could read is refused rather than used.
/// </summary>
public static class SecretFiles
{
    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// Null when the file at <paramref name="path"/> has no group or other permission bits (or on Windows, which has
    /// no Unix modes); otherwise why it is refused, naming <paramref name="what"/>, the mode found and the fix
    /// (<c>chmod 600 &lt;path&gt;</c>).
    /// </summary>
    /// <param name="path">The secret file.</param>
    /// <param name="what">What the file holds, for the message (e.g. "the cluster secret file").</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static string? Check(string path, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(what);
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{what} '{path}' does not exist", path);
        }

        var mode = File.GetUnixFileMode(path);
        if ((mode & GroupOrOther) == 0)
        {
            return null;
        }

        return $"{what} '{path}' is readable or writable by others (mode {Octal(mode)}); it must be readable by its owner only: chmod 600 {path}";
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0xFFF, 8).PadLeft(4, '0');
}
