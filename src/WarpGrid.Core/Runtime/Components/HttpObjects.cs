using System.Net.Http.Headers;
using System.Text;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>
/// One incoming HTTP request as the component HTTP trigger sees it, implemented by the ingress over the real
/// connection. Calls come on the guest's thread and may block it (the guest runs synchronously).
/// </summary>
public interface IComponentHttpExchange
{
    /// <summary>The request method, upper case.</summary>
    string Method { get; }

    /// <summary>Path and query as the client sent them.</summary>
    string PathWithQuery { get; }

    /// <summary><c>http</c> or <c>https</c>.</summary>
    string Scheme { get; }

    /// <summary>The Host header (authority), if any.</summary>
    string? Authority { get; }

    /// <summary>Every request header value, one entry per value.</summary>
    IEnumerable<KeyValuePair<string, string>> RequestHeaders { get; }

    /// <summary>The request body, read as the guest reads it (never buffered whole).</summary>
    Stream RequestBody { get; }

    /// <summary>True once <see cref="StartResponse"/> was called.</summary>
    bool ResponseStarted { get; }

    /// <summary>Sends the status and headers.</summary>
    void StartResponse(int status, IReadOnlyList<KeyValuePair<string, string>> headers);

    /// <summary>Writes response body bytes (after <see cref="StartResponse"/>).</summary>
    void WriteResponseBody(ReadOnlySpan<byte> bytes);

    /// <summary>Flushes what was written.</summary>
    void FlushResponseBody();
}

/// <summary>Which outbound hosts a guest may call (<c>[capabilities] http_outbound</c>).</summary>
public sealed class OutboundHttpPolicy
{
    private readonly string[] _patterns;

    /// <summary>Creates a policy from host globs (<c>*</c> matches any run of characters, <c>host:port</c> pins a port).</summary>
    public OutboundHttpPolicy(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        _patterns = [.. patterns.Select(p => p.Trim().ToLowerInvariant()).Where(p => p.Length > 0)];
    }

    /// <summary>A policy that allows nothing.</summary>
    public static OutboundHttpPolicy DenyAll { get; } = new([]);

    /// <summary>True when a request to <paramref name="host"/>:<paramref name="port"/> is allowed.</summary>
    public bool Allows(string host, int port)
    {
        host = host.ToLowerInvariant();
        foreach (var pattern in _patterns)
        {
            var colon = pattern.LastIndexOf(':');
            string hostPattern = pattern;
            if (colon > 0 && int.TryParse(pattern.AsSpan(colon + 1), out var pinned))
            {
                if (pinned != port)
                {
                    continue;
                }

                hostPattern = pattern[..colon];
            }

            if (Glob(hostPattern, host))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        while (!pattern.IsEmpty)
        {
            if (pattern[0] == '*')
            {
                var rest = pattern[1..];
                for (var i = 0; i <= text.Length; i++)
                {
                    if (Glob(rest, text[i..]))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (text.IsEmpty || pattern[0] != text[0])
            {
                return false;
            }

            pattern = pattern[1..];
            text = text[1..];
        }

        return text.IsEmpty;
    }
}

/// <summary>A <c>wasi:http</c> error-code case.</summary>
internal sealed record HttpErrorCode(string Case, string? Message = null)
{
    public static HttpErrorCode Internal(string message) => new("internal-error", message);
}

/// <summary>Thrown by response writers when the guest breaks the protocol in a way that must end the request.</summary>
internal sealed class HttpProtocolException(string message) : Exception(message);

/// <summary>The state of one HTTP request inside a component store.</summary>
internal sealed class HttpCallState(IComponentHttpExchange exchange, long maxResponseBytes, long maxRequestBytes, long deadline, OutboundHttpPolicy outbound, HttpMessageInvoker? client)
{
    private MemoryStream? _pending;
    private long _written;

    public IComponentHttpExchange Exchange { get; } = exchange;

    public long MaxRequestBytes { get; } = maxRequestBytes;

    public long Deadline { get; } = deadline;

    public OutboundHttpPolicy Outbound { get; } = outbound;

    public HttpMessageInvoker? Client { get; } = client;

    /// <summary>The W3C id of the guest's span (when tracing is on): the guest's incoming <c>traceparent</c>, and injected on its outbound requests that have none.</summary>
    public string? TraceParent { get; set; }

    /// <summary>The guest span's <c>tracestate</c>, passed along with <see cref="TraceParent"/>.</summary>
    public string? TraceState { get; set; }

    public bool ResponseSet { get; private set; }

    public HttpErrorCode? ResponseError { get; private set; }

    public bool BodyFinished { get; set; }

    public long BytesWritten => _written;

    /// <summary><c>response-outparam.set</c> with a response: send the head and whatever was written before.</summary>
    public void SetResponse(OutgoingResponse response)
    {
        if (ResponseSet)
        {
            throw new HostTrapException("response-outparam.set was called twice");
        }

        ResponseSet = true;
        var headers = response.Headers.Entries.Select(e => new KeyValuePair<string, string>(e.Key, Encoding.Latin1.GetString(e.Value))).ToList();
        Exchange.StartResponse(response.Status, headers);
        if (_pending is { Length: > 0 } pending)
        {
            Exchange.WriteResponseBody(pending.GetBuffer().AsSpan(0, (int)pending.Length));
        }

        _pending = null;
    }

    /// <summary><c>response-outparam.set</c> with an error code.</summary>
    public void SetError(HttpErrorCode code)
    {
        if (ResponseSet)
        {
            throw new HostTrapException("response-outparam.set was called twice");
        }

        ResponseSet = true;
        ResponseError = code;
    }

    public void WriteBody(ReadOnlySpan<byte> bytes)
    {
        if (BodyFinished)
        {
            throw new HttpProtocolException("the guest wrote to the response body after finishing it");
        }

        _written += bytes.Length;
        if (_written > maxResponseBytes)
        {
            throw new HttpProtocolException($"the guest wrote more than {maxResponseBytes} bytes of response body (WarpGrid:Runtime:MaxResponseBytes)");
        }

        if (!ResponseSet)
        {
            (_pending ??= new MemoryStream()).Write(bytes);
            return;
        }

        if (ResponseError is not null)
        {
            return;
        }

        Exchange.WriteResponseBody(bytes);
    }

    public void FlushBody()
    {
        if (ResponseSet && ResponseError is null)
        {
            Exchange.FlushResponseBody();
        }
    }
}

/// <summary><c>wasi:http/types.fields</c>.</summary>
internal sealed class Fields
{
    public List<KeyValuePair<string, byte[]>> Entries { get; } = [];

    public bool Immutable { get; init; }

    public Fields Clone()
    {
        var clone = new Fields();
        clone.Entries.AddRange(Entries);
        return clone;
    }
}

internal sealed class IncomingRequest(string method, string pathWithQuery, string scheme, string? authority, Fields headers, InputStream body)
{
    public string Method { get; } = method;

    public string PathWithQuery { get; } = pathWithQuery;

    public string Scheme { get; } = scheme;

    public string? Authority { get; } = authority;

    public Fields Headers { get; } = headers;

    public InputStream Body { get; } = body;

    public bool Consumed { get; set; }
}

internal sealed class IncomingBody(InputStream stream)
{
    public InputStream Stream { get; } = stream;

    public bool StreamTaken { get; set; }
}

internal sealed class FutureTrailers;

internal sealed class ResponseOutparam;

internal sealed class OutgoingResponse(Fields headers)
{
    public int Status { get; set; } = 200;

    public Fields Headers { get; } = headers;

    public OutgoingBody? Body { get; set; }
}

/// <summary>An outgoing body: of the response (written through to the client) or of an outbound request (buffered).</summary>
internal sealed class OutgoingBody
{
    public OutgoingBody(HttpCallState response)
    {
        Response = response;
    }

    public OutgoingBody(long maxBytes)
    {
        Buffer = new MemoryStream();
        MaxBytes = maxBytes;
    }

    public HttpCallState? Response { get; }

    public MemoryStream? Buffer { get; }

    public long MaxBytes { get; }

    public bool StreamTaken { get; set; }

    public bool Finished { get; set; }

    /// <summary>Called when an outbound request body is finished.</summary>
    public Action? OnFinished { get; set; }
}

internal sealed class OutgoingBodyStream(OutgoingBody body) : OutputStream
{
    public override void Write(ReadOnlySpan<byte> bytes)
    {
        if (body.Finished)
        {
            throw new HttpProtocolException("the guest wrote to a body after finishing it");
        }

        if (body.Response is { } response)
        {
            response.WriteBody(bytes);
            return;
        }

        if (body.Buffer!.Length + bytes.Length > body.MaxBytes)
        {
            throw new StreamFailedException($"outbound request body is larger than {body.MaxBytes} bytes");
        }

        body.Buffer.Write(bytes);
    }

    public override void Flush() => body.Response?.FlushBody();
}

internal sealed class OutgoingRequest(Fields headers)
{
    public string Method { get; set; } = "GET";

    public string? PathWithQuery { get; set; }

    public string? Scheme { get; set; }

    public string? Authority { get; set; }

    public Fields Headers { get; } = headers;

    public OutgoingBody? Body { get; set; }
}

internal sealed class RequestOptions
{
    public ulong? ConnectTimeoutNs { get; set; }

    public ulong? FirstByteTimeoutNs { get; set; }

    public ulong? BetweenBytesTimeoutNs { get; set; }
}

internal sealed class FutureIncomingResponse
{
    public FutureIncomingResponse(HttpErrorCode error)
    {
        Error = error;
        Task = System.Threading.Tasks.Task.FromResult<HttpResponseMessage?>(null);
    }

    public FutureIncomingResponse(Task<HttpResponseMessage?> task)
    {
        Task = task;
    }

    public HttpErrorCode? Error { get; }

    public Task<HttpResponseMessage?> Task { get; }

    public bool Taken { get; set; }
}

internal sealed class IncomingResponse(HttpResponseMessage message) : IDisposable
{
    public HttpResponseMessage Message { get; } = message;

    public Fields Headers { get; } = ToFields(message);

    public bool Consumed { get; set; }

    public void Dispose()
    {
        // The body stream may still be read through an incoming-body; the message is disposed with the store.
    }

    private static Fields ToFields(HttpResponseMessage message)
    {
        var fields = new Fields { Immutable = true };
        Add(fields, message.Headers);
        Add(fields, message.Content.Headers);
        return fields;
    }

    private static void Add(Fields fields, HttpHeaders headers)
    {
        foreach (var header in headers)
        {
            foreach (var value in header.Value)
            {
                fields.Entries.Add(new(header.Key.ToLowerInvariant(), Encoding.Latin1.GetBytes(value)));
            }
        }
    }
}
