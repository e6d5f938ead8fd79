using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>
/// The host side of the <c>wasi:http/proxy</c> world (and the parts of <c>wasi:cli</c>, <c>wasi:filesystem</c> a
/// JavaScript or Rust handler imports), implemented once and registered under whatever <c>@0.2.x</c> version a
/// component imports (<c>wasi:logging/logging</c>: <c>@0.1.x</c>, see <see cref="SupportsVersion"/>). Keys are interface names without version; values map export names (as the component model
/// spells them: <c>[method]fields.get</c>, <c>[constructor]fields</c>, <c>[static]…</c>) to host functions.
/// </summary>
internal static unsafe class WasiHost
{
    /// <summary>Resource names and their host types, wherever an interface declares or uses them.</summary>
    public static readonly IReadOnlyDictionary<string, HostResource> Resources = new Dictionary<string, HostResource>(StringComparer.Ordinal)
    {
        ["input-stream"] = HostResource.InputStream,
        ["output-stream"] = HostResource.OutputStream,
        ["pollable"] = HostResource.Pollable,
        ["error"] = HostResource.IoError,
        ["io-error"] = HostResource.IoError,
        ["fields"] = HostResource.Fields,
        ["headers"] = HostResource.Fields,
        ["trailers"] = HostResource.Fields,
        ["incoming-request"] = HostResource.IncomingRequest,
        ["outgoing-request"] = HostResource.OutgoingRequest,
        ["request-options"] = HostResource.RequestOptions,
        ["response-outparam"] = HostResource.ResponseOutparam,
        ["incoming-response"] = HostResource.IncomingResponse,
        ["incoming-body"] = HostResource.IncomingBody,
        ["future-trailers"] = HostResource.FutureTrailers,
        ["outgoing-response"] = HostResource.OutgoingResponse,
        ["outgoing-body"] = HostResource.OutgoingBody,
        ["future-incoming-response"] = HostResource.FutureIncomingResponse,
        ["terminal-input"] = HostResource.TerminalInput,
        ["terminal-output"] = HostResource.TerminalOutput,
        ["descriptor"] = HostResource.Descriptor,
        ["directory-entry-stream"] = HostResource.DirectoryEntryStream,
    };

    /// <summary>Interfaces whose functions exist only to link: calling one traps with a clear message.</summary>
    public static readonly IReadOnlySet<string> DeniedInterfaces = new HashSet<string>(StringComparer.Ordinal)
    {
        "wasi:filesystem/types",
        "wasi:sockets/network",
        "wasi:sockets/instance-network",
        "wasi:sockets/tcp",
        "wasi:sockets/tcp-create-socket",
        "wasi:sockets/udp",
        "wasi:sockets/udp-create-socket",
        "wasi:sockets/ip-name-lookup",
    };

    private const int MaxChunk = 64 * 1024;

    /// <summary>True when this host implements the WIT of <paramref name="interfaceName"/> at <paramref name="version"/>.</summary>
    public static bool SupportsVersion(string interfaceName, string version) => interfaceName == WasiLogging.Interface
        ? WasiLogging.Supports(version)
        : version.StartsWith("0.2.", StringComparison.Ordinal);

    public static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, HostFunction>> Interfaces = Build();

    /// <summary>Which functions of a denied interface still answer (they report "no filesystem" rather than trap).</summary>
    private static Dictionary<string, IReadOnlyDictionary<string, HostFunction>> Build()
    {
        var io = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
        {
            ["[method]error.to-debug-string"] = static (ref HostCall c) => Val.String(c.Result, c.Borrow<IoError>(0).Message),
            ["[method]pollable.ready"] = static (ref HostCall c) => Val.Bool(c.Result, c.Borrow<Pollable>(0).IsReady),
            ["[method]pollable.block"] = static (ref HostCall c) => c.Borrow<Pollable>(0).Block(Deadline(ref c)),
            ["poll"] = Poll,
            ["[method]input-stream.read"] = static (ref HostCall c) => Read(ref c, skip: false, blocking: false),
            ["[method]input-stream.blocking-read"] = static (ref HostCall c) => Read(ref c, skip: false, blocking: true),
            ["[method]input-stream.skip"] = static (ref HostCall c) => Read(ref c, skip: true, blocking: false),
            ["[method]input-stream.blocking-skip"] = static (ref HostCall c) => Read(ref c, skip: true, blocking: true),
            ["[method]input-stream.subscribe"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, c.Borrow<InputStream>(0).Subscribe(Deadline(ref c))),
            ["[method]output-stream.check-write"] = static (ref HostCall c) => StreamResult(ref c, static (ref HostCall c, CVal* ok) => Val.U64(ok, (ulong)c.Borrow<OutputStream>(0).CheckWrite())),
            ["[method]output-stream.write"] = static (ref HostCall c) => Write(ref c, flush: false),
            ["[method]output-stream.blocking-write-and-flush"] = static (ref HostCall c) => Write(ref c, flush: true),
            ["[method]output-stream.flush"] = static (ref HostCall c) => StreamResult(ref c, static (ref HostCall c, CVal* ok) => c.Borrow<OutputStream>(0).Flush(), unit: true),
            ["[method]output-stream.blocking-flush"] = static (ref HostCall c) => StreamResult(ref c, static (ref HostCall c, CVal* ok) => c.Borrow<OutputStream>(0).Flush(), unit: true),
            ["[method]output-stream.subscribe"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, c.Borrow<OutputStream>(0).Subscribe()),
            ["[method]output-stream.write-zeroes"] = static (ref HostCall c) => WriteZeroes(ref c),
            ["[method]output-stream.blocking-write-zeroes-and-flush"] = static (ref HostCall c) => WriteZeroes(ref c),
            ["[method]output-stream.splice"] = static (ref HostCall c) => Splice(ref c),
            ["[method]output-stream.blocking-splice"] = static (ref HostCall c) => Splice(ref c),
        };

        var map = new Dictionary<string, IReadOnlyDictionary<string, HostFunction>>(StringComparer.Ordinal)
        {
            ["wasi:io/error"] = Subset(io, "[method]error."),
            ["wasi:io/poll"] = Subset(io, "[method]pollable.", "poll"),
            ["wasi:io/streams"] = Subset(io, "[method]input-stream.", "[method]output-stream."),
            ["wasi:clocks/monotonic-clock"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["now"] = static (ref HostCall c) => Val.U64(c.Result, MonotonicNow()),
                ["resolution"] = static (ref HostCall c) => Val.U64(c.Result, 1000),
                ["subscribe-instant"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, new TimerPollable(ToTimestamp(c.U64(0)))),
                ["subscribe-duration"] = static (ref HostCall c) => c.NewResource(c.Result, HostResource.Pollable, new TimerPollable(ToTimestamp(MonotonicNow() + c.U64(0)))),
            },
            ["wasi:clocks/wall-clock"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["now"] = static (ref HostCall c) => DateTime(c.Result, c.State.Time.GetUtcNow()),
                ["resolution"] = static (ref HostCall c) =>
                {
                    var e = Val.NewRecord(c.Result, "seconds", "nanoseconds");
                    Val.U64(&e[0].Value, 0);
                    Val.U32(&e[1].Value, 1000);
                },
            },
            ["wasi:random/random"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["get-random-bytes"] = RandomBytes,
                ["get-random-u64"] = static (ref HostCall c) => Val.U64(c.Result, RandomU64()),
            },
            ["wasi:random/insecure"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["get-insecure-random-bytes"] = RandomBytes,
                ["get-insecure-random-u64"] = static (ref HostCall c) => Val.U64(c.Result, RandomU64()),
            },
            ["wasi:random/insecure-seed"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["insecure-seed"] = static (ref HostCall c) =>
                {
                    var t = Val.NewTuple(c.Result, 2);
                    Val.U64(&t[0], RandomU64());
                    Val.U64(&t[1], RandomU64());
                },
            },
            ["wasi:cli/stdin"] = One("get-stdin", static (ref HostCall c) => c.NewResource(c.Result, HostResource.InputStream, new EmptyInputStream())),
            ["wasi:cli/stdout"] = One("get-stdout", static (ref HostCall c) => c.NewResource(c.Result, HostResource.OutputStream, c.State.Stdout)),
            ["wasi:cli/stderr"] = One("get-stderr", static (ref HostCall c) => c.NewResource(c.Result, HostResource.OutputStream, c.State.Stderr)),
            ["wasi:cli/terminal-input"] = Empty(),
            ["wasi:cli/terminal-output"] = Empty(),
            ["wasi:cli/terminal-stdin"] = One("get-terminal-stdin", static (ref HostCall c) => Val.None(c.Result)),
            ["wasi:cli/terminal-stdout"] = One("get-terminal-stdout", static (ref HostCall c) => Val.None(c.Result)),
            ["wasi:cli/terminal-stderr"] = One("get-terminal-stderr", static (ref HostCall c) => Val.None(c.Result)),
            ["wasi:cli/environment"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["get-environment"] = static (ref HostCall c) =>
                {
                    var env = c.State.Environment;
                    var items = Val.NewList(c.Result, env.Count);
                    for (var i = 0; i < env.Count; i++)
                    {
                        var t = Val.NewTuple(items + i, 2);
                        Val.String(&t[0], env[i].Key);
                        Val.String(&t[1], env[i].Value);
                    }
                },
                ["get-arguments"] = static (ref HostCall c) => Val.NewList(c.Result, 0),
                ["initial-cwd"] = static (ref HostCall c) => Val.None(c.Result),
            },
            ["wasi:cli/exit"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["exit"] = static (ref HostCall c) => throw new ComponentExitException(c.Arg(0)->IsOk != 0 ? 0 : 1),
                ["exit-with-code"] = static (ref HostCall c) => throw new ComponentExitException((int)c.U32(0)),
            },
            ["wasi:filesystem/preopens"] = One("get-directories", static (ref HostCall c) => Val.NewList(c.Result, 0)),
            ["wasi:filesystem/types"] = new Dictionary<string, HostFunction>(StringComparer.Ordinal)
            {
                ["filesystem-error-code"] = static (ref HostCall c) => Val.None(c.Result),
            },
            ["wasi:http/types"] = WasiHttp.Types(),
            ["wasi:http/outgoing-handler"] = One("handle", WasiHttp.OutgoingHandle),
            [WasiLogging.Interface] = WasiLogging.Functions(),
        };
        return map;
    }

    private static Dictionary<string, HostFunction> Empty() => new(StringComparer.Ordinal);

    private static Dictionary<string, HostFunction> One(string name, HostFunction function) => new(StringComparer.Ordinal) { [name] = function };

    private static Dictionary<string, HostFunction> Subset(Dictionary<string, HostFunction> all, params string[] prefixes) =>
        all.Where(kv => prefixes.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal) || kv.Key == p)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>The trap for a function of a denied interface.</summary>
    public static HostFunction Denied(string interfaceName, string function) =>
        (ref HostCall c) => throw new HostTrapException($"{interfaceName}.{function}: {interfaceName} is not available to guests on this node (no filesystem or sockets; use wasi:http/outgoing-handler for network access)");

    public static long Deadline(ref HostCall c) => c.State.Http?.Deadline ?? c.State.Deadline;

    private static ulong MonotonicNow() => (ulong)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));

    private static long ToTimestamp(ulong nanoseconds) => (long)(nanoseconds * (Stopwatch.Frequency / 1_000_000_000.0));

    private static void DateTime(CVal* v, DateTimeOffset now)
    {
        var e = Val.NewRecord(v, "seconds", "nanoseconds");
        var ticks = now.UtcTicks - System.DateTime.UnixEpoch.Ticks;
        Val.U64(&e[0].Value, (ulong)(ticks / TimeSpan.TicksPerSecond));
        Val.U32(&e[1].Value, (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }

    private static ulong RandomU64()
    {
        Span<byte> b = stackalloc byte[8];
        RandomNumberGenerator.Fill(b);
        return BitConverter.ToUInt64(b);
    }

    private static void RandomBytes(ref HostCall c)
    {
        var length = c.U64(0);
        if (length > 1 << 20)
        {
            throw new HostTrapException($"get-random-bytes asked for {length} bytes; at most 1 MiB at a time");
        }

        var bytes = new byte[(int)length];
        RandomNumberGenerator.Fill(bytes);
        Val.Bytes(c.Result, bytes);
    }

    private static void Poll(ref HostCall c)
    {
        var pollables = c.BorrowList<Pollable>(0);
        var deadline = Deadline(ref c);
        var ready = new List<uint>();
        while (true)
        {
            for (var i = 0; i < pollables.Count; i++)
            {
                if (pollables[i].IsReady)
                {
                    ready.Add((uint)i);
                }
            }

            if (ready.Count > 0 || pollables.Count == 0)
            {
                break;
            }

            if (Stopwatch.GetTimestamp() >= deadline)
            {
                throw new HostTrapException("wasi:io/poll.poll waited past the request deadline");
            }

            // Wait on the first pollable briefly, then look at them all again.
            pollables[0].Block(Math.Min(deadline, Stopwatch.GetTimestamp() + Stopwatch.Frequency / 100));
        }

        var items = Val.NewList(c.Result, ready.Count);
        for (var i = 0; i < ready.Count; i++)
        {
            Val.U32(items + i, ready[i]);
        }
    }

    private delegate void StreamBody(ref HostCall call, CVal* ok);

    /// <summary>Runs a stream operation and writes <c>result&lt;T, stream-error&gt;</c>.</summary>
    private static void StreamResult(ref HostCall c, StreamBody body, bool unit = false)
    {
        CVal ok = default;
        try
        {
            body(ref c, &ok);
        }
        catch (StreamFailedException ex)
        {
            StreamError(ref c, ex.Message, ex);
            return;
        }
        catch (StreamClosedException)
        {
            CVal closed = default;
            Val.Variant(&closed, "closed");
            Val.Err(c.Result, &closed);
            return;
        }

        Val.Ok(c.Result, unit ? null : &ok);
    }

    private static void StreamError(ref HostCall c, string message, Exception? ex)
    {
        CVal error = default;
        c.NewResource(&error, HostResource.IoError, new IoError(message, ex));
        CVal failed = default;
        Val.Variant(&failed, "last-operation-failed", &error);
        Val.Err(c.Result, &failed);
    }

    /// <summary>
    /// <c>read</c>/<c>skip</c> (<paramref name="blocking"/> false: what is there now, possibly nothing) and
    /// <c>blocking-read</c>/<c>blocking-skip</c> (at least one byte, or closed, or an error).
    /// </summary>
    private static void Read(ref HostCall c, bool skip, bool blocking)
    {
        var stream = c.Borrow<InputStream>(0);
        var wanted = (int)Math.Min(c.U64(1), MaxChunk);
        if (wanted == 0)
        {
            CVal empty = default;
            if (skip)
            {
                Val.U64(&empty, 0);
            }
            else
            {
                Val.NewList(&empty, 0);
            }

            Val.Ok(c.Result, &empty);
            return;
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(wanted);
        try
        {
            int n;
            try
            {
                n = blocking ? stream.Read(buffer, wanted, Deadline(ref c)) : stream.TryRead(buffer, wanted, Deadline(ref c));
            }
            catch (StreamFailedException ex)
            {
                StreamError(ref c, ex.Message, ex);
                return;
            }

            if (n == 0)
            {
                CVal closed = default;
                Val.Variant(&closed, "closed");
                Val.Err(c.Result, &closed);
                return;
            }

            n = Math.Max(n, 0); // -1: nothing there yet, so ok with no bytes; the guest waits on subscribe
            CVal ok = default;
            if (skip)
            {
                Val.U64(&ok, (ulong)n);
            }
            else
            {
                Val.Bytes(&ok, buffer.AsSpan(0, n));
            }

            Val.Ok(c.Result, &ok);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Write(ref HostCall c, bool flush)
    {
        var stream = c.Borrow<OutputStream>(0);
        var list = c.Arg(1);
        var count = checked((int)list->Size);
        var items = (CVal*)list->Data;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(count, 1));
        try
        {
            for (var i = 0; i < count; i++)
            {
                buffer[i] = (byte)items[i].Bits;
            }

            try
            {
                stream.Write(buffer.AsSpan(0, count));
                if (flush)
                {
                    stream.Flush();
                }
            }
            catch (StreamFailedException ex)
            {
                StreamError(ref c, ex.Message, ex);
                return;
            }
            catch (StreamClosedException)
            {
                CVal closed = default;
                Val.Variant(&closed, "closed");
                Val.Err(c.Result, &closed);
                return;
            }

            Val.Ok(c.Result);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void WriteZeroes(ref HostCall c)
    {
        var stream = c.Borrow<OutputStream>(0);
        var length = c.U64(1);
        if (length > 1 << 20)
        {
            throw new HostTrapException("write-zeroes of more than 1 MiB at once");
        }

        stream.Write(new byte[(int)length]);
        Val.Ok(c.Result);
    }

    private static void Splice(ref HostCall c)
    {
        var output = c.Borrow<OutputStream>(0);
        var input = c.Borrow<InputStream>(1);
        var wanted = (int)Math.Min(c.U64(2), MaxChunk);
        var buffer = new byte[Math.Max(wanted, 1)];
        int n;
        try
        {
            n = wanted == 0 ? 0 : input.Read(buffer, wanted, Deadline(ref c));
        }
        catch (StreamFailedException ex)
        {
            StreamError(ref c, ex.Message, ex);
            return;
        }

        if (n == 0 && wanted > 0)
        {
            CVal closed = default;
            Val.Variant(&closed, "closed");
            Val.Err(c.Result, &closed);
            return;
        }

        output.Write(buffer.AsSpan(0, n));
        CVal ok = default;
        Val.U64(&ok, (ulong)n);
        Val.Ok(c.Result, &ok);
    }
}

/// <summary>Thrown by an output stream that is closed (<c>stream-error::closed</c>).</summary>
internal sealed class StreamClosedException : Exception;
