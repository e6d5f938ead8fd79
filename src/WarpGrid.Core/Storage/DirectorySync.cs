using System.Runtime.InteropServices;

namespace WarpGrid.Core.Storage;

/// <summary>
/// Makes a directory's entries (a rename, a newly created file) durable. On Linux and macOS this opens the directory
/// and calls fsync(2) on it; Windows offers no equivalent through .NET and NTFS journals renames, so it is a no-op there.
/// </summary>
internal static partial class DirectorySync
{
    private static volatile bool s_unavailable = !(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD());

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk. Returns false when the platform cannot.</summary>
    /// <exception cref="IOException">The directory could not be synced.</exception>
    public static bool TryFlush(string directory)
    {
        if (s_unavailable)
        {
            return false;
        }

        int fd;
        try
        {
            fd = Open(directory, 0 /* O_RDONLY */);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true;
            return false;
        }

        if (fd < 0)
        {
            throw new IOException($"Could not open directory '{directory}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = Close(fd);
        }

        return true;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
