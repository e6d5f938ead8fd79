using System.Text;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime.Wasi;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>Receives one record an instance of a component logged through <c>wasi:logging/logging</c>.</summary>
internal delegate void ComponentRecordSink(string instance, GuestLogLevel level, string? context, string message);

/// <summary>
/// Where a pool's component log records go, shared by its instances (nothing is allocated per instance), and the
/// budget of one instance (one request: a component instance serves exactly one), the same a WAGI request has
/// (<c>WarpGrid:Runtime:MaxStderrBytesPerRequest</c>; contexts cut at 256 characters, messages at
/// <see cref="GuestLogging.MaxRecordBytes"/>). Records past the budget are dropped.
/// </summary>
internal sealed class ComponentLogRecords(ComponentRecordSink sink, long maxBytes)
{
    public void Write(ComponentStoreState state, GuestLogLevel level, string context, string message)
    {
        if (context.Length > 256)
        {
            context = context[..256];
        }

        if (message.Length > GuestLogging.MaxRecordBytes)
        {
            message = message[..GuestLogging.MaxRecordBytes];
        }

        var size = Encoding.UTF8.GetByteCount(context) + Encoding.UTF8.GetByteCount(message);
        if (state.LoggedBytes + size > maxBytes)
        {
            return;
        }

        state.LoggedBytes += size;
        sink(state.Instance ?? string.Empty, level, context.Length == 0 ? null : context, message);
    }
}

/// <summary>
/// The host side of <c>wasi:logging/logging</c> for components: <c>log: func(level: level, context: string,
/// message: string)</c> with <c>enum level { trace, debug, info, warn, error, critical }</c>. The WIT has only ever
/// been published as <c>@0.1.0-draft</c>; any <c>0.1.x</c> (pre-release or not) is accepted, as the WAGI import is.
/// Granted by <c>[capabilities] logging</c> (default true): without it the import links and a call traps naming the
/// capability, like the WAGI path.
/// </summary>
internal static class WasiLogging
{
    /// <summary>The interface name without version.</summary>
    public const string Interface = "wasi:logging/logging";

    /// <summary>True for the versions whose WIT this host implements.</summary>
    public static bool Supports(string version) => version.StartsWith("0.1.", StringComparison.Ordinal);

    public static Dictionary<string, HostFunction> Functions() => new(StringComparer.Ordinal) { ["log"] = Log };

    private static void Log(ref HostCall c)
    {
        var records = c.State.Records ?? throw new HostTrapException("wasi:logging/logging.log: the guest called the log import but [capabilities] logging is not granted");
        var name = c.String(0);
        GuestLogLevel level = name switch
        {
            "trace" => GuestLogLevel.Trace,
            "debug" => GuestLogLevel.Debug,
            "info" => GuestLogLevel.Info,
            "warn" => GuestLogLevel.Warn,
            "error" => GuestLogLevel.Error,
            "critical" => GuestLogLevel.Critical,
            _ => throw new HostTrapException($"wasi:logging/logging.log: unknown level '{name}'"),
        };
        records.Write(c.State, level, c.String(1), c.String(2));
    }
}
