using System.Net;
using System.Net.Sockets;
using System.Text;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>The head of an HTTP/1.1 response read off a raw socket.</summary>
internal sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, string Head);

/// <summary>
/// HTTP/1.1 over a raw socket, for requests HttpClient cannot make observable: a huge declared body whose early
/// response must be read before (or instead of) sending the body.
/// </summary>
internal static class RawHttp
{
    private const int MaxHeadBytes = 64 * 1024;

    /// <summary>
    /// Sends a request head declaring <paramref name="contentLength"/> body bytes, sends none of them, and reads the
    /// response head the server sends early.
    /// </summary>
    public static async Task<RawResponse> SendHeadOnlyAsync(int port, string method, string path, long contentLength, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
        var head = $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {contentLength}\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cts.Token).ConfigureAwait(false);
        return await ReadHeadAsync(socket, cts.Token).ConfigureAwait(false);
    }

    /// <summary>A plain <c>GET</c>, with the response head as bytes (Latin-1 chars) rather than HttpClient's parsed view.</summary>
    public static Task<(RawResponse Response, byte[] Body)> GetAsync(int port, string path, TimeSpan timeout) =>
        SendAsync(port, $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", timeout);

    /// <summary>Sends <paramref name="request"/> as written (head and body, e.g. a chunked body with trailers) and reads the response.</summary>
    public static async Task<(RawResponse Response, byte[] Body)> SendAsync(int port, string request, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
        await socket.SendAsync(Encoding.Latin1.GetBytes(request), SocketFlags.None, cts.Token).ConfigureAwait(false);
        var pending = new List<byte>();
        var response = await ReadHeadAsync(socket, cts.Token, pending).ConfigureAwait(false);
        return (response, await ReadBodyAsync(socket, response, pending, cts.Token).ConfigureAwait(false));
    }

    /// <summary>
    /// Streams a chunked body of up to <paramref name="totalBytes"/> while reading the response concurrently; stops
    /// sending as soon as the response head arrives or the server stops reading.
    /// </summary>
    public static async Task<RawResponse> SendChunkedAsync(int port, string method, string path, long totalBytes, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
        var head = $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cts.Token).ConfigureAwait(false);

        using var sending = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var reader = ReadHeadAsync(socket, cts.Token);
        var writer = Task.Run(
            async () =>
            {
                var chunk = new byte[256 * 1024];
                var framed = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n").Concat(chunk).Concat("\r\n"u8.ToArray()).ToArray();
                try
                {
                    for (long sent = 0; sent < totalBytes && !reader.IsCompleted; sent += chunk.Length)
                    {
                        await socket.SendAsync(framed, SocketFlags.None, sending.Token).ConfigureAwait(false);
                    }

                    await socket.SendAsync("0\r\n\r\n"u8.ToArray(), SocketFlags.None, sending.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
                {
                    // the server closed the connection after answering: expected
                }
            },
            CancellationToken.None);

        try
        {
            return await reader.ConfigureAwait(false);
        }
        finally
        {
            await sending.CancelAsync().ConfigureAwait(false);
            await writer.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends a request head with <c>Expect: 100-continue</c>, waits for the server's <c>100 Continue</c> (the ingress
    /// has matched the route and started reading the body), runs <paramref name="beforeBody"/>, then sends the body
    /// and reads the whole response.
    /// </summary>
    public static async Task<(RawResponse Response, byte[] Body)> SendAfterContinueAsync(int port, string method, string path, byte[] body, Func<Task> beforeBody, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token).ConfigureAwait(false);
        var head = $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {body.Length}\r\nExpect: 100-continue\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head), SocketFlags.None, cts.Token).ConfigureAwait(false);
        var pending = new List<byte>();
        var interim = await ReadHeadAsync(socket, cts.Token, pending).ConfigureAwait(false);
        if (interim.Status != 100)
        {
            throw new IOException("expected 100 Continue before sending the body, got: " + interim.Head);
        }

        await beforeBody().ConfigureAwait(false);
        await socket.SendAsync(body, SocketFlags.None, cts.Token).ConfigureAwait(false);
        var response = await ReadHeadAsync(socket, cts.Token, pending).ConfigureAwait(false);
        return (response, await ReadBodyAsync(socket, response, pending, cts.Token).ConfigureAwait(false));
    }

    private static async Task<byte[]> ReadBodyAsync(Socket socket, RawResponse response, List<byte> pending, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        async Task<bool> FillAsync()
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            pending.AddRange(buffer.AsSpan(0, read).ToArray());
            return read > 0;
        }

        if (response.Headers.TryGetValue("Content-Length", out var lengthText))
        {
            var length = int.Parse(lengthText, System.Globalization.CultureInfo.InvariantCulture);
            while (pending.Count < length)
            {
                if (!await FillAsync().ConfigureAwait(false))
                {
                    throw new IOException($"connection closed after {pending.Count} of {length} body bytes");
                }
            }

            return [.. pending.Take(length)];
        }

        if (response.Headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            var body = new List<byte>();
            while (true)
            {
                int lineEnd;
                while ((lineEnd = IndexOfCrLf(pending)) < 0)
                {
                    if (!await FillAsync().ConfigureAwait(false))
                    {
                        throw new IOException("connection closed inside a chunked body");
                    }
                }

                var size = Convert.ToInt32(Encoding.ASCII.GetString([.. pending.Take(lineEnd)]).Split(';')[0].Trim(), 16);
                pending.RemoveRange(0, lineEnd + 2);
                while (pending.Count < size + 2)
                {
                    if (!await FillAsync().ConfigureAwait(false))
                    {
                        throw new IOException("connection closed inside a chunk");
                    }
                }

                body.AddRange(pending.Take(size));
                pending.RemoveRange(0, size + 2);
                if (size == 0)
                {
                    return [.. body];
                }
            }
        }

        return [];
    }

    private static int IndexOfCrLf(List<byte> bytes)
    {
        for (var i = 0; i + 1 < bytes.Count; i++)
        {
            if (bytes[i] == '\r' && bytes[i + 1] == '\n')
            {
                return i;
            }
        }

        return -1;
    }

    private static async Task<RawResponse> ReadHeadAsync(Socket socket, CancellationToken cancellationToken, List<byte>? pending = null)
    {
        // Bytes after the head (the start of a body, or the next response) go back to the caller in pending.
        var buffer = new byte[MaxHeadBytes];
        var length = 0;
        if (pending is { Count: > 0 })
        {
            pending.CopyTo(buffer);
            length = pending.Count;
            pending.Clear();
        }

        int end;
        while ((end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (length == buffer.Length)
            {
                throw new IOException("response head larger than " + MaxHeadBytes + " bytes");
            }

            var read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException($"the server closed the connection before a complete response head; got: {Encoding.ASCII.GetString(buffer, 0, length)}");
            }

            length += read;
        }

        pending?.AddRange(buffer.AsSpan(end + 4, length - end - 4).ToArray());
        // Latin-1: one char a byte, so a test sees header bytes above 0x7F exactly as the server sent them.
        var text = Encoding.Latin1.GetString(buffer, 0, end);
        var lines = text.Split("\r\n");
        var statusParts = lines[0].Split(' ', 3);
        if (statusParts.Length < 2 || !statusParts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(statusParts[1], out var status))
        {
            throw new IOException("not an HTTP/1.x status line: " + lines[0]);
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
            }
        }

        return new RawResponse(status, headers, text);
    }
}
