using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>The host functions of <c>wasi:http/types</c> and <c>wasi:http/outgoing-handler</c>.</summary>
internal static unsafe class WasiHttp
{
    private static readonly string[] Methods = ["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"];

    public static Dictionary<string, HostFunction> Types() => new(StringComparer.Ordinal)
    {
        ["http-error-code"] = HttpErrorCodeOf,

        // fields (validation and ordering: Fields)
        ["[constructor]fields"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, new Fields()),
        ["[static]fields.from-list"] = FieldsFromList,
        ["[method]fields.get"] = static (ref HostCall c) =>
        {
            var values = c.Borrow<Fields>(0).Get(c.String(1));
            var items = Val.NewList(c.Result, values.Count);
            for (var i = 0; i < values.Count; i++)
            {
                Val.Bytes(items + i, values[i]);
            }
        },
        ["[method]fields.has"] = static (ref HostCall c) => Val.Bool(c.Result, c.Borrow<Fields>(0).Has(c.String(1))),
        ["[method]fields.set"] = static (ref HostCall c) =>
        {
            var fields = c.Borrow<Fields>(0);
            var name = c.String(1);
            var list = c.Arg(2);
            var items = (CVal*)list->Data;
            var values = new byte[checked((int)list->Size)][];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = Val.ReadBytes(items + i);
            }

            HeaderResult(c.Result, fields.Set(name, values));
        },
        ["[method]fields.delete"] = static (ref HostCall c) => HeaderResult(c.Result, c.Borrow<Fields>(0).Delete(c.String(1))),
        ["[method]fields.append"] = static (ref HostCall c) => HeaderResult(c.Result, c.Borrow<Fields>(0).Append(c.String(1), c.Bytes(2))),
        ["[method]fields.entries"] = static (ref HostCall c) =>
        {
            var entries = c.Borrow<Fields>(0).Entries;
            var items = Val.NewList(c.Result, entries.Count);
            for (var i = 0; i < entries.Count; i++)
            {
                var t = Val.NewTuple(items + i, 2);
                Val.String(&t[0], entries[i].Key);
                Val.Bytes(&t[1], entries[i].Value);
            }
        },
        ["[method]fields.clone"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, c.Borrow<Fields>(0).Clone()),

        // incoming-request
        ["[method]incoming-request.method"] = static (ref HostCall c) => Method(c.Result, c.Borrow<IncomingRequest>(0).Method),
        ["[method]incoming-request.path-with-query"] = static (ref HostCall c) => OptionString(c.Result, c.Borrow<IncomingRequest>(0).PathWithQuery),
        ["[method]incoming-request.scheme"] = static (ref HostCall c) =>
        {
            CVal scheme = default;
            Scheme(&scheme, c.Borrow<IncomingRequest>(0).Scheme);
            Val.Some(c.Result, &scheme);
        },
        ["[method]incoming-request.authority"] = static (ref HostCall c) => OptionString(c.Result, c.Borrow<IncomingRequest>(0).Authority),
        ["[method]incoming-request.headers"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, c.Borrow<IncomingRequest>(0).Headers),
        ["[method]incoming-request.consume"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<IncomingRequest>(0);
            if (request.Consumed)
            {
                Val.Err(c.Result);
                return;
            }

            request.Consumed = true;
            CVal body = default;
            c.NewResource(&body, HostResource.IncomingBody, new IncomingBody(request.Body, request.ReadTrailers));
            Val.Ok(c.Result, &body);
        },

        // incoming-body / future-trailers
        ["[method]incoming-body.stream"] = static (ref HostCall c) =>
        {
            var body = c.Borrow<IncomingBody>(0);
            if (body.StreamTaken)
            {
                Val.Err(c.Result);
                return;
            }

            body.StreamTaken = true;
            CVal stream = default;
            c.NewResource(&stream, HostResource.InputStream, body.Stream);
            Val.Ok(c.Result, &stream);
        },
        ["[static]incoming-body.finish"] = static (ref HostCall c) =>
        {
            // Trailers follow the last chunk: a body the guest read to its end has them by now; one it did not has none.
            var body = c.Take<IncomingBody>(0);
            c.NewResource(c.Result, HostResource.FutureTrailers, new FutureTrailers(body.Trailers?.Invoke()));
        },
        ["[method]future-trailers.subscribe"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, Pollable.Ready),
        ["[method]future-trailers.get"] = static (ref HostCall c) =>
        {
            // some(ok(ok(option<trailers>))) the first time; some(err) once taken.
            var future = c.Borrow<FutureTrailers>(0);
            CVal outer = default;
            if (future.Taken)
            {
                Val.Err(&outer);
                Val.Some(c.Result, &outer);
                return;
            }

            future.Taken = true;
            CVal trailers = default;
            if (future.Trailers is { } fields)
            {
                CVal handle = default;
                c.NewResource(&handle, HostResource.Fields, fields);
                Val.Some(&trailers, &handle);
            }
            else
            {
                Val.None(&trailers);
            }

            CVal inner = default;
            Val.Ok(&inner, &trailers);
            Val.Ok(&outer, &inner);
            Val.Some(c.Result, &outer);
        },

        // outgoing-response
        ["[constructor]outgoing-response"] = static (ref HostCall c) =>
        {
            var headers = c.Take<Fields>(0);
            headers.Immutable = true;
            c.NewResource(c.Result, HostResource.OutgoingResponse, new OutgoingResponse(headers));
        },
        ["[method]outgoing-response.status-code"] = static (ref HostCall c) => Val.U16(c.Result, (ushort)c.Borrow<OutgoingResponse>(0).Status),
        ["[method]outgoing-response.set-status-code"] = static (ref HostCall c) =>
        {
            var status = (int)c.U32(1);
            if (status is < 100 or > 999)
            {
                Val.Err(c.Result);
                return;
            }

            c.Borrow<OutgoingResponse>(0).Status = status;
            Val.Ok(c.Result);
        },
        ["[method]outgoing-response.headers"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, c.Borrow<OutgoingResponse>(0).Headers),
        ["[method]outgoing-response.body"] = static (ref HostCall c) =>
        {
            var response = c.Borrow<OutgoingResponse>(0);
            var http = c.State.Http ?? throw new HostTrapException("outgoing-response.body outside an HTTP request");
            if (response.Body is not null || !response.Headers.HasValidContentLength())
            {
                Val.Err(c.Result);
                return;
            }

            response.Body = new OutgoingBody(http, response);
            CVal body = default;
            c.NewResource(&body, HostResource.OutgoingBody, response.Body);
            Val.Ok(c.Result, &body);
        },

        // outgoing-body
        ["[method]outgoing-body.write"] = static (ref HostCall c) =>
        {
            var body = c.Borrow<OutgoingBody>(0);
            if (body.StreamTaken)
            {
                Val.Err(c.Result);
                return;
            }

            body.StreamTaken = true;
            CVal stream = default;
            c.NewResource(&stream, HostResource.OutputStream, new OutgoingBodyStream(body));
            Val.Ok(c.Result, &stream);
        },
        ["[static]outgoing-body.finish"] = static (ref HostCall c) =>
        {
            var body = c.Take<OutgoingBody>(0);
            body.Finished = true;
            if (body.Outbound?.Finish() is { } error)
            {
                ErrorResult(c.Result, error);
                return;
            }

            if (body.FinishResponse() is { } sizeError)
            {
                ErrorResult(c.Result, sizeError);
                return;
            }

            if (body.Response is { } response)
            {
                response.BodyFinished = true;
                response.FlushBody();
            }

            Val.Ok(c.Result);
        },

        // response-outparam
        ["[static]response-outparam.set"] = static (ref HostCall c) =>
        {
            c.Take<ResponseOutparam>(0);
            var http = c.State.Http ?? throw new HostTrapException("response-outparam.set outside an HTTP request");
            var result = c.Arg(1);
            if (result->IsOk != 0)
            {
                var response = c.Take<OutgoingResponse>(result->ResultPayload);
                http.SetResponse(response);
            }
            else
            {
                http.SetError(ReadErrorCode(result->ResultPayload));
            }
        },
        ["[method]response-outparam.send-informational"] = static (ref HostCall c) =>
        {
            CVal code = default;
            Val.Variant(&code, "HTTP-protocol-error");
            Val.Err(c.Result, &code);
        },

        // outgoing-request
        ["[constructor]outgoing-request"] = static (ref HostCall c) =>
        {
            var headers = c.Take<Fields>(0);
            headers.Immutable = true;
            c.NewResource(c.Result, HostResource.OutgoingRequest, new OutgoingRequest(headers));
        },
        ["[method]outgoing-request.body"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<OutgoingRequest>(0);
            if (request.Body is not null)
            {
                Val.Err(c.Result);
                return;
            }

            request.Body = new OutgoingBody(new OutboundRequestBody(c.State.MaxOutboundBodyBytes, ContentLength(request.Headers, out _)));
            CVal body = default;
            c.NewResource(&body, HostResource.OutgoingBody, request.Body);
            Val.Ok(c.Result, &body);
        },
        ["[method]outgoing-request.method"] = static (ref HostCall c) => Method(c.Result, c.Borrow<OutgoingRequest>(0).Method),
        ["[method]outgoing-request.set-method"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<OutgoingRequest>(0);
            var method = ReadMethod(c.Arg(1));
            if (!HttpSyntax.IsToken(method))
            {
                Val.Err(c.Result);
                return;
            }

            request.Method = method;
            Val.Ok(c.Result);
        },
        ["[method]outgoing-request.path-with-query"] = static (ref HostCall c) => OptionString(c.Result, c.Borrow<OutgoingRequest>(0).PathWithQuery),
        ["[method]outgoing-request.set-path-with-query"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<OutgoingRequest>(0);
            var path = ReadOptionString(c.Arg(1));
            if (path is not null && !HttpSyntax.IsValidPathWithQuery(path))
            {
                Val.Err(c.Result);
                return;
            }

            request.PathWithQuery = path;
            Val.Ok(c.Result);
        },
        ["[method]outgoing-request.scheme"] = static (ref HostCall c) =>
        {
            var scheme = c.Borrow<OutgoingRequest>(0).Scheme;
            if (scheme is null)
            {
                Val.None(c.Result);
                return;
            }

            CVal s = default;
            Scheme(&s, scheme);
            Val.Some(c.Result, &s);
        },
        ["[method]outgoing-request.set-scheme"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<OutgoingRequest>(0);
            var option = c.Arg(1);
            var scheme = option->OptionPayload is null ? null : ReadScheme(option->OptionPayload);
            if (scheme is not null && Val.CaseName(option->OptionPayload) == "other" && !HttpSyntax.IsValidScheme(scheme))
            {
                Val.Err(c.Result);
                return;
            }

            request.Scheme = scheme;
            Val.Ok(c.Result);
        },
        ["[method]outgoing-request.authority"] = static (ref HostCall c) => OptionString(c.Result, c.Borrow<OutgoingRequest>(0).Authority),
        ["[method]outgoing-request.set-authority"] = static (ref HostCall c) =>
        {
            var request = c.Borrow<OutgoingRequest>(0);
            var authority = ReadOptionString(c.Arg(1));
            if (authority is not null && !HttpSyntax.IsValidAuthority(authority))
            {
                Val.Err(c.Result);
                return;
            }

            request.Authority = authority;
            Val.Ok(c.Result);
        },
        ["[method]outgoing-request.headers"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, c.Borrow<OutgoingRequest>(0).Headers),

        // request-options
        ["[constructor]request-options"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.RequestOptions, new RequestOptions()),
        ["[method]request-options.connect-timeout"] = static (ref HostCall c) => OptionU64(c.Result, c.Borrow<RequestOptions>(0).ConnectTimeoutNs),
        ["[method]request-options.set-connect-timeout"] = static (ref HostCall c) =>
        {
            c.Borrow<RequestOptions>(0).ConnectTimeoutNs = ReadOptionU64(c.Arg(1));
            Val.Ok(c.Result);
        },
        ["[method]request-options.first-byte-timeout"] = static (ref HostCall c) => OptionU64(c.Result, c.Borrow<RequestOptions>(0).FirstByteTimeoutNs),
        ["[method]request-options.set-first-byte-timeout"] = static (ref HostCall c) =>
        {
            c.Borrow<RequestOptions>(0).FirstByteTimeoutNs = ReadOptionU64(c.Arg(1));
            Val.Ok(c.Result);
        },
        ["[method]request-options.between-bytes-timeout"] = static (ref HostCall c) => OptionU64(c.Result, c.Borrow<RequestOptions>(0).BetweenBytesTimeoutNs),
        ["[method]request-options.set-between-bytes-timeout"] = static (ref HostCall c) =>
        {
            c.Borrow<RequestOptions>(0).BetweenBytesTimeoutNs = ReadOptionU64(c.Arg(1));
            Val.Ok(c.Result);
        },

        // future-incoming-response / incoming-response
        ["[method]future-incoming-response.subscribe"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, new TaskPollable(c.Borrow<FutureIncomingResponse>(0).Task)),
        ["[method]future-incoming-response.get"] = FutureGet,
        ["[method]incoming-response.status"] = static (ref HostCall c) => Val.U16(c.Result, (ushort)c.Borrow<IncomingResponse>(0).Message.StatusCode),
        ["[method]incoming-response.headers"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Fields, c.Borrow<IncomingResponse>(0).Headers),
        ["[method]incoming-response.consume"] = static (ref HostCall c) =>
        {
            var response = c.Borrow<IncomingResponse>(0);
            if (response.Consumed)
            {
                Val.Err(c.Result);
                return;
            }

            response.Consumed = true;
            var stream = response.Message.Content.ReadAsStream();
            CVal body = default;
            var message = response.Message;
            c.NewResource(&body, HostResource.IncomingBody, new IncomingBody(
                new DotnetInputStream(stream, c.State.MaxOutboundBodyBytes, "outbound response body", response.BetweenBytes),
                () => FutureTrailers.From(message.TrailingHeaders.SelectMany(h => h.Value.Select(v => KeyValuePair.Create(h.Key, v))))));
            Val.Ok(c.Result, &body);
        },
    };

    /// <summary><c>wasi:http/outgoing-handler.handle</c>: checks the capability, then sends with the node's client.</summary>
    public static void OutgoingHandle(ref HostCall c)
    {
        var request = c.Take<OutgoingRequest>(0);
        var options = c.Arg(1)->OptionPayload is null ? null : c.Take<RequestOptions>(c.Arg(1)->OptionPayload);
        var http = c.State.Http;
        var policy = http?.Outbound ?? c.State.Outbound;
        var client = http?.Client ?? c.State.Client;
        var scheme = request.Scheme ?? "https";
        var authority = request.Authority;
        if (string.IsNullOrEmpty(authority) || scheme is not ("http" or "https"))
        {
            ErrorResult(c.Result, new HttpErrorCode(string.IsNullOrEmpty(authority) ? "HTTP-request-URI-invalid" : "HTTP-protocol-error"));
            return;
        }

        if (!Uri.TryCreate(scheme + "://" + authority + (request.PathWithQuery ?? "/"), UriKind.Absolute, out var uri))
        {
            ErrorResult(c.Result, new HttpErrorCode("HTTP-request-URI-invalid"));
            return;
        }

        if (!policy.Allows(uri.Host, uri.Port) || client is null)
        {
            c.State.Log?.Invoke(true, Encoding.UTF8.GetBytes($"[warpgrid] outbound request to {uri.Host}:{uri.Port} denied: not in [capabilities] http_outbound"));
            // The error is delivered through the future (as Wasmtime's own wasi:http does for refused requests):
            // guests such as StarlingMonkey's fetch expect handle() to succeed and report failures on get().
            CVal deniedFuture = default;
            c.NewResource(&deniedFuture, HostResource.FutureIncomingResponse, new FutureIncomingResponse(new HttpErrorCode("HTTP-request-denied")));
            Val.Ok(c.Result, &deniedFuture);
            return;
        }

        var message = new HttpRequestMessage(new HttpMethod(request.Method), uri);
        if (http?.TraceParent is { } traceParent && !HasHeader(request.Headers, "traceparent"))
        {
            // Propagate the trace: the outbound call is a child of the guest's span (unless the guest set its own).
            message.Headers.TryAddWithoutValidation("traceparent", traceParent);
            if (!string.IsNullOrEmpty(http.TraceState) && !HasHeader(request.Headers, "tracestate"))
            {
                message.Headers.TryAddWithoutValidation("tracestate", http.TraceState);
            }
        }

        var deadline = WasiHost.Deadline(ref c);
        var timeouts = new OutboundTimeouts(Duration(options?.ConnectTimeoutNs), Duration(options?.FirstByteTimeoutNs), deadline);
        message.Options.Set(OutboundTimeouts.Key, timeouts);

        var body = request.Body?.Outbound;
        ContentLength(request.Headers, out var badLength);
        if (badLength is not null)
        {
            body?.Abort(HttpErrorCode.Internal(badLength), badLength);
            CVal invalid = default;
            c.NewResource(&invalid, HostResource.FutureIncomingResponse, new FutureIncomingResponse(HttpErrorCode.Internal(badLength)));
            Val.Ok(c.Result, &invalid);
            return;
        }

        if (body?.Error is { } bodyError)
        {
            // The body is already broken (dropped unfinished, or finished short of its content-length): nothing is sent.
            CVal failed = default;
            c.NewResource(&failed, HostResource.FutureIncomingResponse, new FutureIncomingResponse(bodyError));
            Val.Ok(c.Result, &failed);
            return;
        }

        // Sending starts now: the head, then the body as the guest writes it (what it wrote before comes first).
        if (body is not null)
        {
            message.Content = body.Start(deadline);
        }

        foreach (var header in request.Headers.Entries)
        {
            if (body is not null && string.Equals(header.Key, "content-length", StringComparison.OrdinalIgnoreCase))
            {
                continue; // the content reports it (TryComputeLength)
            }

            var value = Encoding.Latin1.GetString(header.Value);
            if (!message.Headers.TryAddWithoutValidation(header.Key, value))
            {
                message.Content ??= new ByteArrayContent([]);
                message.Content.Headers.TryAddWithoutValidation(header.Key, value);
            }
        }

        var task = OutboundSender.Send(client, message, body, timeouts);
        CVal future = default;
        c.NewResource(&future, HostResource.FutureIncomingResponse, new FutureIncomingResponse(task) { BetweenBytes = Duration(options?.BetweenBytesTimeoutNs) });
        Val.Ok(c.Result, &future);
    }

    /// <summary>
    /// A <c>wasi:clocks</c> duration (nanoseconds) as a <see cref="TimeSpan"/>; none stays none, and so does one longer
    /// than a day (every request deadline is shorter, and a timer cannot take the largest u64 values).
    /// </summary>
    private static TimeSpan? Duration(ulong? nanoseconds) =>
        nanoseconds is { } ns && ns / 100 <= (ulong)TimeSpan.TicksPerDay ? TimeSpan.FromTicks((long)(ns / 100)) : null;

    private static bool HasHeader(Fields fields, string name)
    {
        foreach (var entry in fields.Entries)
        {
            if (string.Equals(entry.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static void FutureGet(ref HostCall c)
    {
        var future = c.Borrow<FutureIncomingResponse>(0);
        if (!future.Task.IsCompleted)
        {
            Val.None(c.Result);
            return;
        }

        if (future.Taken)
        {
            CVal taken = default;
            Val.Err(&taken);
            Val.Some(c.Result, &taken);
            return;
        }

        future.Taken = true;
        CVal inner = default;
        if (future.Error is { } error)
        {
            ErrorResult(&inner, error);
        }
        else if (future.Task.IsFaulted || future.Task.IsCanceled)
        {
            ErrorResult(&inner, MapException(future.Task.Exception?.GetBaseException()));
        }
        else
        {
            CVal response = default;
            c.NewResource(&response, HostResource.IncomingResponse, new IncomingResponse(future.Task.Result!) { BetweenBytes = future.BetweenBytes });
            Val.Ok(&inner, &response);
        }

        CVal outer = default;
        Val.Ok(&outer, &inner);
        Val.Some(c.Result, &outer);
    }

    /// <summary>
    /// <c>http-error-code(io-error)</c>: the error code behind a stream error of an outbound body (content-length
    /// exceeded, connection failed), none for other stream errors.
    /// </summary>
    private static void HttpErrorCodeOf(ref HostCall c)
    {
        if ((c.Borrow<IoError>(0).Exception as StreamFailedException)?.Code is not { } code)
        {
            Val.None(c.Result);
            return;
        }

        CVal error = default;
        WriteErrorCode(&error, code);
        Val.Some(c.Result, &error);
    }

    /// <summary>
    /// The value of a <c>content-length</c> header, or null without one; <paramref name="error"/> says why a present
    /// one is not a single non-negative integer.
    /// </summary>
    private static long? ContentLength(Fields headers, out string? error)
    {
        error = null;
        long? length = null;
        foreach (var entry in headers.Entries)
        {
            if (!string.Equals(entry.Key, "content-length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var text = Encoding.Latin1.GetString(entry.Value).Trim();
            if (!long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) || (length is { } seen && seen != value))
            {
                error = $"the outbound request's content-length header is not one non-negative integer: '{text}'";
                return null;
            }

            length = value;
        }

        return length;
    }

    internal static HttpErrorCode MapException(Exception? ex) => ex switch
    {
        OutboundHttpException outbound => outbound.Code,
        HttpRequestException { InnerException: OutboundHttpException outbound } => outbound.Code, // thrown in ConnectCallback
        null or TaskCanceledException or OperationCanceledException or TimeoutException => new HttpErrorCode("HTTP-response-timeout"),
        HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused } } => new HttpErrorCode("connection-refused"),
        HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.NoData } } => new HttpErrorCode("destination-not-found"),
        HttpRequestException { InnerException: SocketException } => new HttpErrorCode("destination-unavailable"),
        HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError } => new HttpErrorCode("destination-not-found"),
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => new HttpErrorCode("destination-unavailable"),
        HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse or HttpRequestError.HttpProtocolError } => new HttpErrorCode("HTTP-protocol-error"),

        // The connection broke once the request was under way (reset or closed mid-body, no complete response).
        HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded } or HttpRequestException { InnerException: IOException } or IOException => new HttpErrorCode("connection-terminated"),
        _ => HttpErrorCode.Internal(ex.Message),
    };

    private static void ErrorResult(CVal* target, HttpErrorCode code)
    {
        CVal error = default;
        WriteErrorCode(&error, code);
        Val.Err(target, &error);
    }

    private static void WriteErrorCode(CVal* target, HttpErrorCode code)
    {
        if (code.Case == "internal-error")
        {
            CVal message = default;
            if (code.Message is null)
            {
                Val.None(&message);
            }
            else
            {
                CVal text = default;
                Val.String(&text, code.Message);
                Val.Some(&message, &text);
            }

            Val.Variant(target, code.Case, &message);
            return;
        }

        if (code.Case is "HTTP-request-body-size" or "HTTP-response-body-size")
        {
            CVal size = default;
            if (code.Size is { } bytes)
            {
                CVal n = default;
                Val.U64(&n, bytes);
                Val.Some(&size, &n);
            }
            else
            {
                Val.None(&size);
            }

            Val.Variant(target, code.Case, &size);
            return;
        }

        Val.Variant(target, code.Case);
    }

    private static HttpErrorCode ReadErrorCode(CVal* value)
    {
        if (value is null || value->Kind != ValKind.Variant)
        {
            return HttpErrorCode.Internal("the guest set an error response");
        }

        var name = Val.CaseName(value);
        string? message = null;
        if (name == "internal-error" && value->VariantPayload != null && value->VariantPayload->OptionPayload != null)
        {
            message = Val.ReadString(value->VariantPayload->OptionPayload);
        }

        return new HttpErrorCode(name, message);
    }

    /// <summary>Writes <c>result&lt;_, header-error&gt;</c>.</summary>
    private static void HeaderResult(CVal* target, HeaderError? error)
    {
        if (error is null)
        {
            Val.Ok(target);
            return;
        }

        CVal e = default;
        Val.Variant(&e, Fields.CaseName(error.Value));
        Val.Err(target, &e);
    }

    /// <summary><c>from-list</c>: every entry is checked (name, forbidden, value); any error fails the whole call.</summary>
    private static void FieldsFromList(ref HostCall c)
    {
        var list = c.Arg(0);
        var items = (CVal*)list->Data;
        var entries = new KeyValuePair<string, byte[]>[checked((int)list->Size)];
        for (var i = 0; i < entries.Length; i++)
        {
            var tuple = (CVal*)items[i].Data;
            entries[i] = new(Val.ReadString(&tuple[0]), Val.ReadBytes(&tuple[1]));
        }

        if (Fields.FromList(entries, out var fields) is { } error)
        {
            HeaderResult(c.Result, error);
            return;
        }

        CVal ok = default;
        c.NewResource(&ok, HostResource.Fields, fields!);
        Val.Ok(c.Result, &ok);
    }

    private static void Method(CVal* v, string method)
    {
        var lower = method.ToLowerInvariant();
        if (Array.IndexOf(Methods, lower) >= 0)
        {
            Val.Variant(v, lower);
            return;
        }

        CVal other = default;
        Val.String(&other, method);
        Val.Variant(v, "other", &other);
    }

    private static string ReadMethod(CVal* v)
    {
        var name = Val.CaseName(v);
        return name == "other" && v->VariantPayload is not null ? Val.ReadString(v->VariantPayload) : name.ToUpperInvariant();
    }

    private static void Scheme(CVal* v, string scheme)
    {
        switch (scheme.ToLowerInvariant())
        {
            case "http":
                Val.Variant(v, "HTTP");
                break;
            case "https":
                Val.Variant(v, "HTTPS");
                break;
            default:
                CVal other = default;
                Val.String(&other, scheme);
                Val.Variant(v, "other", &other);
                break;
        }
    }

    private static string ReadScheme(CVal* v)
    {
        var name = Val.CaseName(v);
        return name switch
        {
            "HTTP" => "http",
            "HTTPS" => "https",
            _ => v->VariantPayload is null ? name : Val.ReadString(v->VariantPayload),
        };
    }

    private static void OptionString(CVal* v, string? value)
    {
        if (value is null)
        {
            Val.None(v);
            return;
        }

        CVal s = default;
        Val.String(&s, value);
        Val.Some(v, &s);
    }

    private static string? ReadOptionString(CVal* v) => v->OptionPayload is null ? null : Val.ReadString(v->OptionPayload);

    private static void OptionU64(CVal* v, ulong? value)
    {
        if (value is null)
        {
            Val.None(v);
            return;
        }

        CVal n = default;
        Val.U64(&n, value.Value);
        Val.Some(v, &n);
    }

    private static ulong? ReadOptionU64(CVal* v) => v->OptionPayload is null ? null : v->OptionPayload->Bits;
}

/// <summary>Sends an outbound request; its body (if any) streams while the guest writes it.</summary>
internal static class OutboundSender
{
    /// <summary>
    /// Sends <paramref name="message"/> and waits for the response head, at most until the request's deadline and at
    /// most <c>first-byte-timeout</c> from when the connection is there (the clock does not run while connecting).
    /// </summary>
    public static async Task<HttpResponseMessage?> Send(HttpMessageInvoker client, HttpRequestMessage message, OutboundRequestBody? body, OutboundTimeouts timeouts)
    {
        using var cts = timeouts.Start();
        try
        {
            return await client.SendAsync(message, cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (body is not null)
        {
            // The guest's next write reports the failure; the future reports the body's own error if it broke it.
            body.Fail(ex);
            if (body.Error is { } code)
            {
                throw new OutboundHttpException(code, ex);
            }

            throw TimeoutOr(ex, timeouts, cts);
        }
        catch (OperationCanceledException ex) when (cts.IsCancellationRequested)
        {
            throw TimeoutOr(ex, timeouts, cts);
        }
    }

    private static Exception TimeoutOr(Exception ex, OutboundTimeouts timeouts, CancellationTokenSource cts) =>
        ex is OperationCanceledException && cts.IsCancellationRequested
            ? new OutboundHttpException(new HttpErrorCode(timeouts.DeadlinePassed ? "HTTP-response-timeout" : "connection-read-timeout"), ex)
            : ex;
}

/// <summary>
/// The <c>request-options</c> timeouts of one outbound request (Wasmtime's meaning): <c>connect-timeout</c> bounds the
/// TCP connect (<c>connection-timeout</c>), <c>first-byte-timeout</c> the wait for the response head once connected
/// (<c>connection-read-timeout</c>); the request's own deadline bounds both (<c>HTTP-response-timeout</c>). Carried
/// to the handler's <c>ConnectCallback</c> in <see cref="HttpRequestMessage.Options"/>. A pooled connection needs no
/// connect; a connection opened for this request but given to another waiting one stops this one's connect clock.
/// </summary>
internal sealed class OutboundTimeouts(TimeSpan? connect, TimeSpan? firstByte, long deadline)
{
    public static readonly HttpRequestOptionsKey<OutboundTimeouts> Key = new("WarpGrid.OutboundTimeouts");

    private CancellationTokenSource? _cts;

    public TimeSpan? Connect { get; } = connect;

    public bool DeadlinePassed => Stopwatch.GetTimestamp() >= deadline;

    /// <summary>The token the send runs under: first-byte clock (or the deadline) running.</summary>
    public CancellationTokenSource Start()
    {
        _cts = new CancellationTokenSource(Limit(firstByte));
        return _cts;
    }

    /// <summary>A connection is being opened for this request: only the deadline runs meanwhile.</summary>
    public void Connecting() => Reset(Limit(null));

    /// <summary>The connection is open: the first-byte clock starts (again) now.</summary>
    public void Connected() => Reset(Limit(firstByte));

    /// <summary>The connect timeout, no later than the deadline.</summary>
    public TimeSpan ConnectLimit() => Limit(Connect);

    private TimeSpan Limit(TimeSpan? timeout) => WaitLimit.Of(timeout, deadline).Wait;

    private void Reset(TimeSpan after)
    {
        try
        {
            _cts?.CancelAfter(after);
        }
        catch (ObjectDisposedException)
        {
            // The send already ended.
        }
    }
}
