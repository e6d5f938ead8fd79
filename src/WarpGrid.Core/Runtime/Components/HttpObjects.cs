using System.Collections.Frozen;
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

    /// <summary>
    /// The request's trailer fields, once the body has been read to its end (HTTP/1.1 chunked or HTTP/2 trailers);
    /// none before that, or when the request had none.
    /// </summary>
    IEnumerable<KeyValuePair<string, string>> RequestTrailers => [];

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
internal sealed record HttpErrorCode(string Case, string? Message = null, ulong? Size = null)
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
    private OutgoingResponse? _sent;

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

    /// <summary>
    /// Why the response body is not the one its head announced (a <c>content-length</c> exceeded or not reached), once
    /// it is not: the request then ends as a fault and the connection is aborted.
    /// </summary>
    public string? BodyFault { get; private set; }

    /// <summary>True when a response to <paramref name="method"/> with <paramref name="status"/> carries no body (its content-length is not the length of what follows).</summary>
    public static bool HasNoBody(string method, int status) => string.Equals(method, "HEAD", StringComparison.OrdinalIgnoreCase) || status is 204 or 205 or 304;

    /// <summary>Records why the response body broke its <c>content-length</c> (the first cause is kept).</summary>
    public void FailBody(string reason) => BodyFault ??= reason;

    /// <summary>
    /// After the guest returned: a response whose body was never finished to the length its head declared (dropped
    /// short, or never created) is a fault too, as Kestrel could not complete it.
    /// </summary>
    public void CheckComplete()
    {
        if (BodyFault is null && ResponseError is null && _sent is { } head && !HasNoBody(Exchange.Method, head.Status)
            && head.Headers.ContentLengthValue() is { } declared && (ulong)_written != declared)
        {
            BodyFault = $"the guest's response declared a content-length of {declared} bytes but its body ended after {_written} bytes without outgoing-body.finish";
        }
    }

    /// <summary><c>response-outparam.set</c> with a response: send the head and whatever was written before.</summary>
    public void SetResponse(OutgoingResponse response)
    {
        if (ResponseSet)
        {
            throw new HostTrapException("response-outparam.set was called twice");
        }

        ResponseSet = true;
        _sent = response;
        if (response.Status < 200)
        {
            // set-status-code takes 100..999 (as the WIT and Wasmtime do), but HTTP has no final 1xx response; Wasmtime's
            // server (hyper) answers 500 then. Here it is a response the guest broke.
            throw new HttpProtocolException($"the guest's response has the informational status {response.Status}; a final response needs 200-999");
        }

        var headers = response.Headers.Entries.Select(e => new KeyValuePair<string, string>(e.Key, Encoding.Latin1.GetString(e.Value))).ToList();
        try
        {
            Exchange.StartResponse(response.Status, headers);
        }
        catch (InvalidOperationException ex)
        {
            // Names and values passed the fields checks; what is left is a header the server cannot send as given,
            // e.g. a content-length that is not a number.
            throw new HttpProtocolException("the server refused the guest's response head: " + ex.Message);
        }

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

/// <summary>A <c>wasi:http/types.header-error</c> case.</summary>
internal enum HeaderError
{
    /// <summary><c>invalid-syntax</c>: the name is not an HTTP token, or a value holds a control character.</summary>
    InvalidSyntax,

    /// <summary><c>forbidden</c>: a name the host manages itself (hop-by-hop and connection headers).</summary>
    Forbidden,

    /// <summary><c>immutable</c>: the fields belong to a request or response (incoming, or already given to an outgoing one).</summary>
    Immutable,
}

/// <summary>
/// <c>wasi:http/types.fields</c>: HTTP header (or trailer) fields with the validation of the WIT and of Wasmtime's
/// reference host (wasmtime-wasi-http): names are RFC 9110 tokens compared case-insensitively, values may hold any byte
/// but controls (HTAB allowed, as <c>http::HeaderValue</c>), the names of <see cref="ForbiddenNames"/> are refused,
/// and fields owned by a request or response are immutable. Entries keep the case they were given and the order they
/// go out in: values of one name stay together, names in the order they were first added.
/// </summary>
internal sealed class Fields
{
    /// <summary>
    /// At most this many bytes of names and values (plus <see cref="EntryOverhead"/> each) in fields a guest builds;
    /// more is a trap of the call, as in Wasmtime (whose default <c>field_size_limit</c> is also 128 KiB).
    /// </summary>
    public const int MaxBytes = 128 * 1024;

    /// <summary>What each entry counts on top of its bytes, so that empty values are not free.</summary>
    public const int EntryOverhead = 32;

    /// <summary>Names a guest may not set: Wasmtime's <c>DEFAULT_FORBIDDEN_HEADERS</c> for wasi:http 0.2.</summary>
    public static readonly FrozenSet<string> ForbiddenNames = new[]
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "transfer-encoding", "upgrade", "host", "http2-settings",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    private const int MaxNameLength = ushort.MaxValue;

    private readonly List<KeyValuePair<string, byte[]>> _entries;
    private long _size;

    public Fields()
    {
        _entries = [];
    }

    private Fields(List<KeyValuePair<string, byte[]>> entries, long size)
    {
        _entries = entries;
        _size = size;
    }

    /// <summary>Every name-value pair, in the order they are serialized.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Entries => _entries;

    /// <summary>
    /// True for the headers of an incoming request or response and for fields given to an outgoing request or
    /// response: <c>set</c>, <c>append</c> and <c>delete</c> answer <c>immutable</c>.
    /// </summary>
    public bool Immutable { get; set; }

    /// <summary>True when <paramref name="name"/> is an RFC 9110 <c>token</c> (what <c>http::HeaderName</c> accepts).</summary>
    public static bool IsValidName(string name) => name.Length <= MaxNameLength && HttpSyntax.IsToken(name);

    /// <summary>True when no byte is a control character other than HTAB (what <c>http::HeaderValue</c> accepts; obs-text is allowed).</summary>
    public static bool IsValidValue(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The WIT name of a header-error case.</summary>
    public static string CaseName(HeaderError error) => error switch
    {
        HeaderError.InvalidSyntax => "invalid-syntax",
        HeaderError.Forbidden => "forbidden",
        _ => "immutable",
    };

    /// <summary><c>from-list</c>: new mutable fields, or the first error (nothing is created then).</summary>
    public static HeaderError? FromList(IReadOnlyList<KeyValuePair<string, byte[]>> entries, out Fields? fields)
    {
        fields = null;
        var created = new Fields();
        foreach (var (name, value) in entries)
        {
            if (Check(name) is { } error)
            {
                return error;
            }

            if (!IsValidValue(value))
            {
                return HeaderError.InvalidSyntax;
            }

            created.Insert(name, value);
        }

        created.EnsureWithinLimit(0);
        fields = created;
        return null;
    }

    /// <summary><c>get</c>: every value of <paramref name="name"/> (none when the name is invalid or absent).</summary>
    public List<byte[]> Get(string name)
    {
        var values = new List<byte[]>();
        foreach (var (key, value) in _entries)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                values.Add(value);
            }
        }

        return values;
    }

    /// <summary><c>has</c>: false when the name is invalid or absent.</summary>
    public bool Has(string name) => IndexOf(name) >= 0;

    /// <summary><c>set</c>: replaces every value of <paramref name="name"/>, in place; all or nothing. No values deletes the name.</summary>
    public HeaderError? Set(string name, IReadOnlyList<byte[]> values)
    {
        if (Check(name) is { } error)
        {
            return error;
        }

        foreach (var value in values)
        {
            if (!IsValidValue(value))
            {
                return HeaderError.InvalidSyntax;
            }
        }

        if (Immutable)
        {
            return HeaderError.Immutable;
        }

        long removed = 0;
        var at = -1;
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (string.Equals(_entries[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                removed += Size(_entries[i]);
                at = i;
            }
        }

        long added = 0;
        foreach (var value in values)
        {
            added += EntryOverhead + name.Length + value.Length;
        }

        EnsureWithinLimit(added - removed);
        if (at < 0)
        {
            at = _entries.Count;
        }
        else
        {
            _entries.RemoveAll(e => string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase));
        }

        _entries.InsertRange(at, values.Select(v => new KeyValuePair<string, byte[]>(name, v)));
        _size += added - removed;
        return null;
    }

    /// <summary><c>delete</c>: removes every value of <paramref name="name"/> (nothing to remove is fine).</summary>
    public HeaderError? Delete(string name)
    {
        if (Check(name) is { } error)
        {
            return error;
        }

        if (Immutable)
        {
            return HeaderError.Immutable;
        }

        foreach (var entry in _entries)
        {
            if (string.Equals(entry.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                _size -= Size(entry);
            }
        }

        _entries.RemoveAll(e => string.Equals(e.Key, name, StringComparison.OrdinalIgnoreCase));
        return null;
    }

    /// <summary><c>append</c>: adds one value after the ones <paramref name="name"/> already has.</summary>
    public HeaderError? Append(string name, byte[] value)
    {
        if (Check(name) is { } error)
        {
            return error;
        }

        if (!IsValidValue(value))
        {
            return HeaderError.InvalidSyntax;
        }

        if (Immutable)
        {
            return HeaderError.Immutable;
        }

        EnsureWithinLimit(EntryOverhead + name.Length + value.Length);
        Insert(name, value);
        return null;
    }

    /// <summary>
    /// False when the first <c>content-length</c> is not <c>1*DIGIT</c> fitting a u64: Wasmtime's <c>body()</c> of a
    /// request or response then answers <c>err</c>.
    /// </summary>
    public bool HasValidContentLength()
    {
        var values = Get("content-length");
        if (values.Count == 0)
        {
            return true;
        }

        var value = values[0];
        return value.Length > 0 && !value.AsSpan().ContainsAnyExceptInRange((byte)'0', (byte)'9') && ulong.TryParse(value, out _);
    }

    /// <summary>The first <c>content-length</c> as a number (what Wasmtime enforces on a body), or null without a valid one.</summary>
    public ulong? ContentLengthValue()
    {
        var values = Get("content-length");
        return values.Count > 0 && HasValidContentLength() && ulong.TryParse(values[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    /// <summary><c>clone</c>: a mutable deep copy (values are never changed in place, so the arrays are shared).</summary>
    public Fields Clone() => new([.. _entries], _size);

    /// <summary>
    /// Adds a header the host received (from the client or an upstream), which the guest sees in an immutable
    /// fields: as Wasmtime, forbidden names are left out and names are lower case; not counted against <see cref="MaxBytes"/>.
    /// </summary>
    public void AddReceived(string name, byte[] value)
    {
        if (!ForbiddenNames.Contains(name))
        {
            Insert(name.ToLowerInvariant(), value);
        }
    }

    private static HeaderError? Check(string name) =>
        !IsValidName(name) ? HeaderError.InvalidSyntax
        : ForbiddenNames.Contains(name) ? HeaderError.Forbidden
        : null;

    private static long Size(KeyValuePair<string, byte[]> entry) => EntryOverhead + entry.Key.Length + entry.Value.Length;

    private int IndexOf(string name)
    {
        for (var i = 0; i < _entries.Count; i++)
        {
            if (string.Equals(_entries[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Adds after the last value of the same name (or at the end).</summary>
    private void Insert(string name, byte[] value)
    {
        var at = _entries.Count;
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (string.Equals(_entries[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                at = i + 1;
                break;
            }
        }

        _entries.Insert(at, new(name, value));
        _size += EntryOverhead + name.Length + value.Length;
    }

    private void EnsureWithinLimit(long delta)
    {
        if (_size + delta > MaxBytes)
        {
            throw new HostTrapException($"wasi:http fields would hold more than {MaxBytes} bytes of names and values");
        }
    }
}

internal sealed class IncomingRequest(string method, string pathWithQuery, string scheme, string? authority, Fields headers, InputStream body, IComponentHttpExchange? exchange = null)
{
    /// <summary>The request's trailers, read once its body has ended (null: none). No delegate per request: only a guest that consumes the body asks.</summary>
    public Fields? ReadTrailers() => exchange is null ? null : FutureTrailers.From(exchange.RequestTrailers);

    public string Method { get; } = method;

    public string PathWithQuery { get; } = pathWithQuery;

    public string Scheme { get; } = scheme;

    public string? Authority { get; } = authority;

    public Fields Headers { get; } = headers;

    public InputStream Body { get; } = body;

    public bool Consumed { get; set; }
}

internal sealed class IncomingBody(InputStream stream, Func<Fields?>? trailers = null)
{
    public InputStream Stream { get; } = stream;

    public bool StreamTaken { get; set; }

    /// <summary>Reads the body's trailers (immutable fields) once it has ended; null or none: no trailers.</summary>
    public Func<Fields?>? Trailers { get; } = trailers;
}

/// <summary>
/// <c>future-trailers</c> of an incoming body, resolved when the body is finished: the trailers the peer sent after
/// the last chunk (only seen if the guest read the body to its end), or none.
/// </summary>
internal sealed class FutureTrailers(Fields? trailers)
{
    public Fields? Trailers { get; } = trailers;

    public bool Taken { get; set; }

    /// <summary>Received trailer fields as immutable <c>fields</c>, lower-case names as for headers; null when there are none.</summary>
    public static Fields? From(IEnumerable<KeyValuePair<string, string>> trailers)
    {
        Fields? fields = null;
        foreach (var (name, value) in trailers)
        {
            fields ??= new Fields();
            fields.AddReceived(name, Encoding.Latin1.GetBytes(value));
        }

        if (fields is not null)
        {
            fields.Immutable = true;
        }

        return fields;
    }
}

internal sealed class ResponseOutparam;

internal sealed class OutgoingResponse(Fields headers)
{
    public int Status { get; set; } = 200;

    public Fields Headers { get; } = headers;

    public OutgoingBody? Body { get; set; }
}

/// <summary>
/// An outgoing body: of the response (written through to the client) or of an outbound request (streamed to the
/// connection, see <see cref="OutboundRequestBody"/>).
/// </summary>
internal sealed class OutgoingBody : IDisposable
{
    private long _responseWritten;

    public OutgoingBody(HttpCallState response, OutgoingResponse head)
    {
        Response = response;
        Head = head;
        ContentLength = head.Headers.ContentLengthValue();
    }

    public OutgoingBody(OutboundRequestBody outbound)
    {
        Outbound = outbound;
    }

    public HttpCallState? Response { get; }

    /// <summary>The response this body belongs to (null for an outbound request body).</summary>
    public OutgoingResponse? Head { get; }

    /// <summary>The response's declared <c>content-length</c>, enforced as Wasmtime does: no write past it, no finish short of it.</summary>
    public ulong? ContentLength { get; }

    /// <summary>The <c>HTTP-response-body-size</c> error this response body failed with, if it did.</summary>
    public HttpErrorCode? ResponseError { get; private set; }

    public OutboundRequestBody? Outbound { get; }

    public bool StreamTaken { get; set; }

    public bool Finished { get; set; }

    /// <summary>
    /// A write to a response body: refused whole (nothing of it reaches the client) when it would take the body past
    /// its <c>content-length</c>; the stream error carries <c>HTTP-response-body-size(some(written))</c>, and the
    /// response can then only end as a fault.
    /// </summary>
    public void WriteResponse(ReadOnlySpan<byte> bytes)
    {
        var response = Response!;
        if (ResponseError is { } failed)
        {
            throw new StreamFailedException("the response body already exceeded its content-length") { Code = failed };
        }

        _responseWritten += bytes.Length;
        if (ContentLength is { } declared && (ulong)_responseWritten > declared && !HttpCallState.HasNoBody(response.Exchange.Method, Head!.Status))
        {
            ResponseError = new HttpErrorCode("HTTP-response-body-size", Size: (ulong)_responseWritten);
            response.FailBody($"the guest wrote {_responseWritten} bytes of response body, more than its content-length of {declared}");
            throw new StreamFailedException($"response body: {_responseWritten} bytes written, more than the content-length of {declared}") { Code = ResponseError };
        }

        response.WriteBody(bytes);
    }

    /// <summary><c>outgoing-body.finish</c> of a response body: the error when the body is not its declared length.</summary>
    public HttpErrorCode? FinishResponse()
    {
        if (ResponseError is { } failed)
        {
            return failed;
        }

        if (ContentLength is { } declared && (ulong)_responseWritten != declared && !HttpCallState.HasNoBody(Response!.Exchange.Method, Head!.Status))
        {
            ResponseError = new HttpErrorCode("HTTP-response-body-size", Size: (ulong)_responseWritten);
            Response.FailBody($"the guest finished its response body after {_responseWritten} of its content-length of {declared} bytes");
            return ResponseError;
        }

        return null;
    }

    /// <summary>Dropped by the guest (or left at the end of the request) without <c>finish</c>: an outbound request is aborted.</summary>
    public void Dispose()
    {
        if (!Finished)
        {
            Outbound?.Abort(new HttpErrorCode("HTTP-protocol-error"), "the guest dropped the outgoing-body without calling outgoing-body.finish");
        }
    }
}

internal sealed class OutgoingBodyStream(OutgoingBody body) : OutputStream
{
    public override long CheckWrite() => body.Outbound?.CheckWrite() ?? base.CheckWrite();

    public override void Write(ReadOnlySpan<byte> bytes)
    {
        if (body.Finished)
        {
            throw new HttpProtocolException("the guest wrote to a body after finishing it");
        }

        if (body.Response is not null)
        {
            body.WriteResponse(bytes);
            return;
        }

        body.Outbound!.Write(bytes);
    }

    public override void Flush() => body.Response?.FlushBody();

    public override Pollable Subscribe() => body.Outbound?.Subscribe() ?? base.Subscribe();
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

    /// <summary><c>request-options.between-bytes-timeout</c>, for the response body's stream.</summary>
    public TimeSpan? BetweenBytes { get; init; }
}

internal sealed class IncomingResponse(HttpResponseMessage message) : IDisposable
{
    public HttpResponseMessage Message { get; } = message;

    public Fields Headers { get; } = ToFields(message);

    public bool Consumed { get; set; }

    /// <summary><c>request-options.between-bytes-timeout</c> of the request this answers: each body read waits at most this long.</summary>
    public TimeSpan? BetweenBytes { get; init; }

    public void Dispose()
    {
        // The body stream may still be read through an incoming-body; the message is disposed with the store.
    }

    private static Fields ToFields(HttpResponseMessage message)
    {
        var fields = new Fields();
        Add(fields, message.Headers);
        Add(fields, message.Content.Headers);
        fields.Immutable = true;
        return fields;
    }

    private static void Add(Fields fields, HttpHeaders headers)
    {
        foreach (var header in headers)
        {
            foreach (var value in header.Value)
            {
                fields.AddReceived(header.Key, Encoding.Latin1.GetBytes(value));
            }
        }
    }
}
