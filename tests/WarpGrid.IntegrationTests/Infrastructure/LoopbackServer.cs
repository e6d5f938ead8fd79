using System.Net;
using System.Net.Sockets;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>
/// A raw TCP server on 127.0.0.1 (an ephemeral port), for upstreams that must misbehave in ways an ASP.NET Core server
/// will not (stall, reset, read a body at their own pace): each accepted connection is handed to <see cref="Serve"/> on its own task; disposing stops accepting and
/// cancels <see cref="Stopping"/>, which every connection's handler is expected to honour.
/// </summary>
internal abstract class LoopbackServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <summary><c>127.0.0.1:port</c>, for a guest's <c>to=</c> parameter or an <c>http_outbound</c> request.</summary>
    public string Authority => $"127.0.0.1:{Port}";

    /// <summary>The port the server listens on.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Cancelled when the server is disposed.</summary>
    protected CancellationToken Stopping => _stop.Token;

    /// <summary>Starts listening; called by the derived class once its own fields are set.</summary>
    protected void Start()
    {
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    /// <summary>Handles one connection; the socket is disposed when this returns.</summary>
    protected abstract Task Serve(Socket socket);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (socket)
                {
                    await Serve(socket);
                }
            });
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        if (_loop is not null)
        {
            await _loop;
        }

        _stop.Dispose();
    }
}
