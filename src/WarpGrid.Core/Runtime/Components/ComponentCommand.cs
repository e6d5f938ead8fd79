using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using WarpGrid.Core.Runtime.Pooling;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>The result of one run of a <c>wasi:cli/run</c> command.</summary>
/// <param name="ExitCode">0 when <c>run</c> returned <c>ok</c>, 1 for <c>err</c>, or the code given to <c>exit</c>; null when the guest trapped.</param>
/// <param name="Stdout">What the command wrote to stdout (UTF-8, lossy).</param>
/// <param name="Stderr">What the command wrote to stderr.</param>
/// <param name="OutputTruncated">True when stdout or stderr went past the node's limit and was cut.</param>
/// <param name="Duration">Wall-clock time of the run.</param>
/// <param name="Fault">Why the run did not complete (trap, timeout), or null.</param>
public sealed record ComponentRunResult(int? ExitCode, string Stdout, string Stderr, bool OutputTruncated, TimeSpan Duration, InvocationFault? Fault);

/// <summary>
/// Runs <c>wasi:cli/run</c> components (trigger <c>cli</c>) to completion with Wasmtime's own WASI 0.2
/// implementation: arguments and environment from the request and manifest, stdin from the request, stdout and
/// stderr captured in memory (bounded), no preopened directories and no network.
/// </summary>
public static unsafe class ComponentCommand
{
    /// <summary>Checks at deploy time that a component is a command this node can run: exports <c>wasi:cli/run@0.2.x</c>, and links.</summary>
    public static string Validate(WasmNodeRuntime runtime, CompiledComponent component)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(component);
        var problems = new List<string>();
        var export = component.FindExport("wasi:cli/run");
        if (export is null)
        {
            problems.Add($"the component does not export wasi:cli/run@0.2.x (it exports {(component.Exports.Count == 0 ? "nothing" : string.Join(", ", component.Exports))}); trigger = \"cli\" runs commands, use trigger = \"http\" for wasi:http handlers");
        }

        foreach (var import in component.Imports)
        {
            if (!import.Interface.StartsWith("wasi:", StringComparison.Ordinal) || import.Version is not { } version || !version.StartsWith("0.2.", StringComparison.Ordinal))
            {
                problems.Add($"import '{import.Name}' is not provided by this node (commands get WASI 0.2.x interfaces only)");
            }
            else if (import.Interface.StartsWith("wasi:http/", StringComparison.Ordinal))
            {
                problems.Add($"import '{import.Name}' is not provided to commands (wasi:http is for trigger = \"http\")");
            }
        }

        if (problems.Count == 0)
        {
            // Prove it links: instantiate once in a throwaway store.
            using var store = new Store(runtime.Engine.Engine);
            store.SetEpochDeadline(runtime.Engine.TicksFor(TimeSpan.FromSeconds(30)));
            var context = ComponentNative.ContextHandle(store);
            ComponentNative.Check(ComponentNative.wasmtime_context_set_wasi(context, ComponentNative.wasi_config_new()), "configuring WASI");
            try
            {
                runtime.CommandLinker.Instantiate(context, component);
            }
            catch (WasmValidationException ex)
            {
                problems.Add(ex.Message);
            }
        }

        if (problems.Count > 0)
        {
            throw new WasmValidationException(string.Join("; ", problems));
        }

        return export!;
    }

    /// <summary>Runs the command once in a fresh store and returns its exit code and output.</summary>
    public static ComponentRunResult Run(WasmNodeRuntime runtime, CompiledComponent component, PoolSettings settings, IReadOnlyList<string> arguments, ReadOnlySpan<byte> stdin)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(component);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(arguments);
        var export = component.FindExport("wasi:cli/run") ?? throw new WasmValidationException("the component does not export wasi:cli/run@0.2.x");
        var started = Stopwatch.GetTimestamp();
        var limit = (int)Math.Min(runtime.Options.MaxResponseBytes, int.MaxValue);
        var stdout = new Capture(limit);
        var stderr = new Capture(Math.Max(runtime.Options.MaxStderrBytesPerRequest, 4096));
        var stdoutHandle = GCHandle.Alloc(stdout);
        var stderrHandle = GCHandle.Alloc(stderr);
        if (!runtime.Budget.TryAcquire())
        {
            throw new InstanceLimitException(runtime.Budget.Limit);
        }

        try
        {
            using var store = new Store(runtime.Engine.Engine);
            store.SetLimits(memorySize: settings.MemoryLimitBytes, tableElements: 100_000, instances: 64, tables: 64, memories: 16);
            store.SetEpochDeadline(runtime.Engine.TicksFor(settings.RequestTimeout));
            var context = ComponentNative.ContextHandle(store);
            var config = ComponentNative.wasi_config_new();
            SetArgv(config, [settings.Deployment, .. arguments]);
            SetEnv(config, settings.Environment);
            var input = new CVec();
            fixed (byte* p = stdin)
            {
                ComponentNative.wasm_byte_vec_new(&input, (nuint)stdin.Length, p);
            }

            ComponentNative.wasi_config_set_stdin_bytes(config, &input);
            ComponentNative.wasi_config_set_stdout_custom(config, &Write, GCHandle.ToIntPtr(stdoutHandle), 0);
            ComponentNative.wasi_config_set_stderr_custom(config, &Write, GCHandle.ToIntPtr(stderrHandle), 0);
            ComponentNative.Check(ComponentNative.wasmtime_context_set_wasi(context, config), "configuring WASI");

            var instance = runtime.CommandLinker.Instantiate(context, component);
            var func = Function(component, &instance, context, export, "run");
            var result = stackalloc CVal[1];
            new Span<byte>(result, sizeof(CVal)).Clear();
            var error = ComponentNative.TakeError(ComponentNative.wasmtime_component_func_call(&func, context, null, 0, result, 1), out var exit);
            int? exitCode;
            InvocationFault? fault = null;
            if (error is null)
            {
                exitCode = result->IsOk != 0 ? 0 : 1;
                ComponentNative.wasmtime_component_val_delete(result);
                ComponentNative.TakeError(ComponentNative.wasmtime_component_func_post_return(&func, context), out _);
            }
            else if (exit is { } code)
            {
                exitCode = code;
            }
            else
            {
                exitCode = null;
                fault = ComponentSandbox.ClassifyTrap(error, settings);
            }

            return new ComponentRunResult(exitCode, stdout.Text, stderr.Text, stdout.Truncated || stderr.Truncated, Stopwatch.GetElapsedTime(started), fault);
        }
        finally
        {
            runtime.Budget.Release();
            stdoutHandle.Free();
            stderrHandle.Free();
        }
    }

    private static CFunc Function(CompiledComponent component, CInstance* instance, nint context, string exportName, string function)
    {
        var a = Encoding.UTF8.GetBytes(exportName);
        var b = Encoding.UTF8.GetBytes(function);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
        {
            var parent = ComponentNative.wasmtime_component_get_export_index(component.Handle, 0, pa, (nuint)a.Length);
            var index = parent == 0 ? 0 : ComponentNative.wasmtime_component_get_export_index(component.Handle, parent, pb, (nuint)b.Length);
            if (parent != 0)
            {
                ComponentNative.wasmtime_component_export_index_delete(parent);
            }

            CFunc func = default;
            var found = index != 0 && ComponentNative.wasmtime_component_instance_get_func(instance, context, index, &func);
            if (index != 0)
            {
                ComponentNative.wasmtime_component_export_index_delete(index);
            }

            return found ? func : throw new WasmValidationException($"the component has no {exportName}.{function} function");
        }
    }

    private static void SetArgv(nint config, IReadOnlyList<string> argv)
    {
        var buffers = argv.Select(a => Encoding.UTF8.GetBytes(a + "\0")).ToArray();
        var handles = buffers.Select(b => GCHandle.Alloc(b, GCHandleType.Pinned)).ToArray();
        try
        {
            var pointers = stackalloc byte*[Math.Max(1, buffers.Length)];
            for (var i = 0; i < buffers.Length; i++)
            {
                pointers[i] = (byte*)handles[i].AddrOfPinnedObject();
            }

            ComponentNative.wasi_config_set_argv(config, (nuint)buffers.Length, pointers);
        }
        finally
        {
            foreach (var h in handles)
            {
                h.Free();
            }
        }
    }

    private static void SetEnv(nint config, IReadOnlyList<KeyValuePair<string, string>> env)
    {
        var names = env.Select(e => GCHandle.Alloc(Encoding.UTF8.GetBytes(e.Key + "\0"), GCHandleType.Pinned)).ToArray();
        var values = env.Select(e => GCHandle.Alloc(Encoding.UTF8.GetBytes(e.Value + "\0"), GCHandleType.Pinned)).ToArray();
        try
        {
            var n = stackalloc byte*[Math.Max(1, names.Length)];
            var v = stackalloc byte*[Math.Max(1, names.Length)];
            for (var i = 0; i < names.Length; i++)
            {
                n[i] = (byte*)names[i].AddrOfPinnedObject();
                v[i] = (byte*)values[i].AddrOfPinnedObject();
            }

            ComponentNative.wasi_config_set_env(config, (nuint)names.Length, n, v);
        }
        finally
        {
            foreach (var h in names.Concat(values))
            {
                h.Free();
            }
        }
    }

    [UnmanagedCallersOnly]
    private static nint Write(nint data, byte* bytes, nuint length)
    {
        var capture = (Capture)GCHandle.FromIntPtr(data).Target!;
        capture.Append(new ReadOnlySpan<byte>(bytes, checked((int)length)));
        return (nint)length;
    }

    private sealed class Capture(int limit)
    {
        private readonly MemoryStream _bytes = new();

        public bool Truncated { get; private set; }

        public string Text => Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);

        public void Append(ReadOnlySpan<byte> bytes)
        {
            lock (_bytes)
            {
                var room = limit - (int)_bytes.Length;
                if (bytes.Length > room)
                {
                    Truncated = true;
                    bytes = bytes[..Math.Max(room, 0)];
                }

                _bytes.Write(bytes);
            }
        }
    }
}
