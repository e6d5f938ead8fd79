using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace WarpGrid.Raft;

/// <summary>Message types on the member-to-member forwarding link.</summary>
internal enum ForwardMessage : byte
{
    /// <summary>A batch of store operations (<see cref="KvCommand"/> format); answered with one result per operation.</summary>
    Operations = 1,

    /// <summary>Add the member whose address follows (UTF-8); answered with one result.</summary>
    AddMember = 2,

    /// <summary>Remove the member whose address follows (UTF-8); answered with one result.</summary>
    RemoveMember = 3,
}

/// <summary>
/// Accepts writes forwarded by followers. Frames are <c>length:i32, id:i64, type:u8, payload</c>; responses are
/// <c>length:i32, id:i64, results</c>. Requests on one connection are served concurrently.
/// </summary>
internal sealed partial class ForwardServer : IAsyncDisposable
{
    private const int MaxFrameBytes = 64 * 1024 * 1024;
    private readonly TcpListener _listener;
    private readonly Func<ForwardMessage, byte[], CancellationToken, Task<byte[]>> _handler;
    private readonly SslServerAuthenticationOptions? _tls;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Socket, byte> _connections = new();
    private Task _acceptLoop = Task.CompletedTask;

    public ForwardServer(IPEndPoint endPoint, SslServerAuthenticationOptions? tls, Func<ForwardMessage, byte[], CancellationToken, Task<byte[]>> handler, ILogger logger)
    {
        _listener = new TcpListener(endPoint);
        _tls = tls;
        _handler = handler;
        _logger = logger;
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public void Start()
    {
        _listener.Start(128);
        _acceptLoop = AcceptLoopAsync();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                Log.AcceptFailed(_logger, ex);
                continue;
            }

            socket.NoDelay = true;
            _connections[socket] = 0;
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        using var writeLock = new SemaphoreSlim(1, 1);
        try
        {
            if (_tls is not null)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                await ssl.AuthenticateAsServerAsync(_tls, _stop.Token).ConfigureAwait(false);
                stream = ssl;
            }

            byte[] header = new byte[13];
            while (!_stop.IsCancellationRequested)
            {
                await stream.ReadExactlyAsync(header, _stop.Token).ConfigureAwait(false);
                int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                long id = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(4));
                var type = (ForwardMessage)header[12];
                if (length is < 0 or > MaxFrameBytes)
                {
                    throw new InvalidDataException($"A forwarded frame of {length} bytes exceeds the limit of {MaxFrameBytes}.");
                }

                byte[] payload = new byte[length];
                await stream.ReadExactlyAsync(payload, _stop.Token).ConfigureAwait(false);
                _ = RespondAsync(stream, writeLock, id, type, payload);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or InvalidDataException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested && ex is not EndOfStreamException)
            {
                Log.ConnectionFailed(_logger, ex);
            }
        }
        finally
        {
            _connections.TryRemove(socket, out _);
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task RespondAsync(Stream stream, SemaphoreSlim writeLock, long id, ForwardMessage type, byte[] payload)
    {
        byte[] response;
        try
        {
            response = await _handler(type, payload, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.RequestFailed(_logger, ex);
            response = KvCommand.EncodeResults([new KvResult(KvOutcome.Failed, 0, ex.Message)]);
        }

        byte[] frame = new byte[12 + response.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, response.Length);
        BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(4), id);
        response.CopyTo(frame, 12);
        try
        {
            await writeLock.WaitAsync(_stop.Token).ConfigureAwait(false);
            try
            {
                await stream.WriteAsync(frame, _stop.Token).ConfigureAwait(false);
                await stream.FlushAsync(_stop.Token).ConfigureAwait(false);
            }
            finally
            {
                writeLock.Release();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // the follower sees the connection drop and reports the outcome as unknown
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        foreach (Socket socket in _connections.Keys)
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }

        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3210, Level = LogLevel.Warning, Message = "Accepting a forwarding connection failed.")]
        public static partial void AcceptFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 3211, Level = LogLevel.Debug, Message = "A forwarding connection from a member ended.")]
        public static partial void ConnectionFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 3212, Level = LogLevel.Warning, Message = "Serving a forwarded request failed.")]
        public static partial void RequestFailed(ILogger logger, Exception exception);
    }
}

/// <summary>Thrown when a request was not written to the forwarding connection at all, so sending it again is safe.</summary>
internal sealed class ForwardNotSentException(string message) : IOException(message);

/// <summary>One follower-side connection to the leader's <see cref="ForwardServer"/>, multiplexing requests by id.</summary>
internal sealed class ForwardClient : IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, TaskCompletionSource<byte[]>> _pending = new();
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stream _stream;
    private readonly Task _readLoop;
    private long _nextId;
    private volatile bool _broken;
    private volatile bool _retired;

    private ForwardClient(IPEndPoint endPoint, string leader, Stream stream)
    {
        EndPoint = endPoint;
        Leader = leader;
        _stream = stream;
        _readLoop = ReadLoopAsync();
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The Raft address of the member this connection forwards to.</summary>
    public string Leader { get; }

    /// <summary>Whether the connection can no longer take requests (it broke, or it was retired).</summary>
    public bool IsBroken => _broken || _retired;

    /// <summary>
    /// Takes no new requests and closes the connection once the requests in flight are answered (or after
    /// <paramref name="grace"/>). Used when another member becomes leader: the old leader still answers what it was
    /// sent (committed, or "not the leader"), which is better than an outcome made unknown by closing the link.
    /// </summary>
    public async Task RetireAsync(TimeSpan grace)
    {
        _retired = true;
        if (_pending.IsEmpty)
        {
            _drained.TrySetResult();
        }

        await _drained.Task.WaitAsync(grace).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await DisposeAsync().ConfigureAwait(false);
    }

    public static async Task<ForwardClient> ConnectAsync(IPEndPoint endPoint, string leader, SslClientAuthenticationOptions? tls, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            await socket.ConnectAsync(endPoint, cts.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (tls is not null)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                var options = new SslClientAuthenticationOptions
                {
                    TargetHost = tls.TargetHost ?? endPoint.Address.ToString(),
                    ClientCertificates = tls.ClientCertificates,
                    ClientCertificateContext = tls.ClientCertificateContext,
                    RemoteCertificateValidationCallback = tls.RemoteCertificateValidationCallback,
                    LocalCertificateSelectionCallback = tls.LocalCertificateSelectionCallback,
                    EnabledSslProtocols = tls.EnabledSslProtocols,
                    CertificateRevocationCheckMode = tls.CertificateRevocationCheckMode,
                    CertificateChainPolicy = tls.CertificateChainPolicy,
                };
                await ssl.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
                stream = ssl;
            }

            return new ForwardClient(endPoint, leader, stream);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends one request and returns its response; throws <see cref="IOException"/> when the link breaks.</summary>
    public async Task<byte[]> SendAsync(ForwardMessage type, byte[] payload, CancellationToken cancellationToken)
    {
        long id = Interlocked.Increment(ref _nextId);
        var response = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = response;
        try
        {
            byte[] frame = new byte[13 + payload.Length];
            BinaryPrimitives.WriteInt32LittleEndian(frame, payload.Length);
            BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(4), id);
            frame[12] = (byte)type;
            payload.CopyTo(frame, 13);
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_broken || _retired)
                {
                    throw new ForwardNotSentException("The forwarding connection to the leader is closed.");
                }

                await _stream.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
                await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                _broken = true;
                throw new IOException("Writing to the leader's forwarding connection failed.", ex);
            }
            finally
            {
                _writeLock.Release();
            }

            return await response.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _pending.TryRemove(id, out _);
            if (_retired && _pending.IsEmpty)
            {
                _drained.TrySetResult();
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        byte[] header = new byte[12];
        Exception failure;
        try
        {
            while (true)
            {
                await _stream.ReadExactlyAsync(header).ConfigureAwait(false);
                int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                long id = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(4));
                byte[] payload = new byte[length];
                await _stream.ReadExactlyAsync(payload).ConfigureAwait(false);
                if (_pending.TryGetValue(id, out TaskCompletionSource<byte[]>? waiter))
                {
                    waiter.TrySetResult(payload);
                }
            }
        }
        catch (Exception ex)
        {
            failure = new IOException("The forwarding connection to the leader broke; the outcome of requests in flight is unknown.", ex);
        }

        _broken = true;
        foreach (TaskCompletionSource<byte[]> waiter in _pending.Values)
        {
            waiter.TrySetException(failure);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _broken = true;
        await _stream.DisposeAsync().ConfigureAwait(false);
        await _readLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _writeLock.Dispose();
    }
}
