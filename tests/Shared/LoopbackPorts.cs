using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace WarpGrid.Testing;

/// <summary>
/// Hands out loopback TCP ports for servers that tests start (warpd, registries, Raft members) and that must be
/// known before the server binds.
/// </summary>
/// <remarks>
/// "Bind port 0, read it, close it" races: the kernel hands the same ephemeral port to the next outgoing
/// connection of any process, and test projects run in parallel. Ports here come from below the kernel's
/// ephemeral range (so no outgoing connection ever takes one), and each is reserved across processes with an
/// exclusive lock file held for the life of the test process, so two test processes never get the same port.
/// </remarks>
internal static class LoopbackPorts
{
    private const int First = 20_000;
    private const int Last = 32_000; // Linux's ip_local_port_range starts at 32768

    private static readonly string LockDirectory = Path.Combine(Path.GetTempPath(), "warpgrid-test-ports");
    private static readonly ConcurrentBag<FileStream> Held = [];
    private static readonly Lock Gate = new();
    private static int _next = First + Random.Shared.Next(Last - First);

    /// <summary>Returns a loopback port nobody listens on and no other test process has been given.</summary>
    public static int Next()
    {
        Directory.CreateDirectory(LockDirectory);
        lock (Gate)
        {
            for (int attempt = 0; attempt < Last - First; attempt++)
            {
                int port = _next;
                _next = _next >= Last ? First : _next + 1;
                if (TryReserve(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException($"no free loopback port in {First}-{Last}");
    }

    private static bool TryReserve(int port)
    {
        FileStream? reservation = null;
        try
        {
            reservation = new FileStream(Path.Combine(LockDirectory, port.ToString(System.Globalization.CultureInfo.InvariantCulture)), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return false; // another test process holds it
        }

        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch (SocketException)
        {
            reservation.Dispose();
            return false; // something outside the tests listens there
        }

        Held.Add(reservation);
        return true;
    }
}
