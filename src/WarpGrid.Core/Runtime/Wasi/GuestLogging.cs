using Wasmtime;

namespace WarpGrid.Core.Runtime.Wasi;

/// <summary>Receives one structured record a guest logged through the log import.</summary>
public delegate void GuestRecordSink(object? state, int level, ReadOnlySpan<byte> context, ReadOnlySpan<byte> message);

/// <summary>Thrown inside a host call to trap the guest with a message naming what it did wrong.</summary>
public sealed class GuestTrapException(string message) : Exception(message);

/// <summary>
/// The log import for core modules (WAGI guests): <c>wasi:logging/logging</c>'s <c>log(level, context, message)</c>
/// lowered the way the component model's canonical ABI lowers it, <c>(i32 level, i32 context_ptr, i32 context_len,
/// i32 message_ptr, i32 message_len) -&gt; ()</c>, importable under <c>wasi:logging/logging@0.1.0-draft</c>,
/// <c>wasi:logging/logging</c> or <c>warp</c> (function <c>log</c>). Levels are the wasi:logging enum: 0 trace,
/// 1 debug, 2 info, 3 warn, 4 error, 5 critical. Granted by <c>[capabilities] logging</c> (default true).
/// </summary>
public static class GuestLogging
{
    /// <summary>The function name in every module.</summary>
    public const string FunctionName = "log";

    /// <summary>The versioned wasi:logging interface name.</summary>
    public const string WasiLoggingVersioned = "wasi:logging/logging@0.1.0-draft";

    /// <summary>Import module names that provide <see cref="FunctionName"/>.</summary>
    public static IReadOnlyList<string> ModuleNames { get; } = [WasiLoggingVersioned, "wasi:logging/logging", "warp"];

    /// <summary>The parameters of <c>log</c> (it returns nothing).</summary>
    public static IReadOnlyList<ValueKind> Parameters { get; } = [ValueKind.Int32, ValueKind.Int32, ValueKind.Int32, ValueKind.Int32, ValueKind.Int32];

    /// <summary>Largest context plus message one call may pass; longer messages are cut.</summary>
    public const int MaxRecordBytes = 16 * 1024;

    /// <summary>The level names, indexed by the wasi:logging enum value.</summary>
    public static IReadOnlyList<string> LevelNames { get; } = ["trace", "debug", "info", "warn", "error", "critical"];

    /// <summary>True when <paramref name="module"/> is one of <see cref="ModuleNames"/>.</summary>
    public static bool IsLogModule(string module) => ModuleNames.Contains(module, StringComparer.Ordinal);

    /// <summary>Defines <c>log</c> under every name in <see cref="ModuleNames"/> on <paramref name="linker"/>.</summary>
    public static void Define(Linker linker)
    {
        ArgumentNullException.ThrowIfNull(linker);
        foreach (var module in ModuleNames)
        {
            linker.DefineFunction(module, FunctionName, static (Caller c, int level, int contextPtr, int contextLen, int messagePtr, int messageLen) => Log(c, level, contextPtr, contextLen, messagePtr, messageLen));
        }
    }

    private static void Log(Caller caller, int level, int contextPtr, int contextLen, int messagePtr, int messageLen)
    {
        var ctx = WasiPreview1.Ctx(caller);
        if (ctx.RecordSink is null)
        {
            throw new GuestTrapException("the guest called the log import but [capabilities] logging is not granted");
        }

        if ((uint)level >= (uint)LevelNames.Count)
        {
            throw new GuestTrapException($"the guest called log with level {level}; wasi:logging levels are 0 (trace) to 5 (critical)");
        }

        var memory = WasiPreview1.Mem(caller, ctx);
        if (!WasiPreview1.TrySpan(memory, contextPtr, contextLen, out var context) || !WasiPreview1.TrySpan(memory, messagePtr, messageLen, out var message))
        {
            throw new GuestTrapException("the guest called log with a context or message outside its linear memory");
        }

        ctx.WriteRecord(level, context, message);
    }
}
