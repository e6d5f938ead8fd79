using System.Text;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>
/// A native component linker built for one component: every interface it imports is defined under the exact name
/// (and <c>0.2.x</c> version; <c>0.1.x</c> for <c>wasi:logging</c>) it imports, from the host implementations in <see cref="WasiHost"/>.
/// </summary>
internal sealed unsafe class NativeComponentLinker : IDisposable
{
    private nint _linker;

    private NativeComponentLinker(nint linker)
    {
        _linker = linker;
    }

    public nint Handle => _linker;

    /// <summary>Lists every import the HTTP host cannot satisfy, by name.</summary>
    public static List<string> Check(CompiledComponent component)
    {
        var problems = new List<string>();
        foreach (var import in component.Imports)
        {
            if (!import.IsInstance)
            {
                problems.Add($"import '{import.Name}' is not an interface; only WASI 0.2 interfaces are provided");
                continue;
            }

            if (import.Version is { } version && !WasiHost.SupportsVersion(import.Interface, version))
            {
                problems.Add(import.Interface == WasiLogging.Interface
                    ? $"import '{import.Name}': version {version} is not supported (this node implements wasi:logging 0.1.x, e.g. 0.1.0-draft)"
                    : $"import '{import.Name}': version {version} is not supported (this node implements WASI 0.2.x)");
                continue;
            }

            var denied = WasiHost.DeniedInterfaces.Contains(import.Interface);
            if (!WasiHost.Interfaces.TryGetValue(import.Interface, out var functions) && !denied)
            {
                problems.Add($"import '{import.Name}' is not provided by this node");
                continue;
            }

            foreach (var resource in import.Resources)
            {
                if (!WasiHost.Resources.ContainsKey(resource))
                {
                    problems.Add($"import '{import.Name}': resource '{resource}' is not provided");
                }
            }

            if (denied)
            {
                continue;
            }

            foreach (var function in import.Functions)
            {
                if (!functions!.ContainsKey(function))
                {
                    problems.Add($"import '{import.Name}': function '{function}' is not provided");
                }
            }
        }

        return problems;
    }

    /// <summary>Builds the linker for the HTTP world; throws <see cref="WasmValidationException"/> listing every unsatisfied import.</summary>
    public static NativeComponentLinker ForHttp(Engine engine, CompiledComponent component)
    {
        var problems = Check(component);
        if (problems.Count > 0)
        {
            throw new WasmValidationException(string.Join("; ", problems));
        }

        var linker = new NativeComponentLinker(ComponentNative.wasmtime_component_linker_new(ComponentNative.EngineHandle(engine)));
        try
        {
            var root = ComponentNative.wasmtime_component_linker_root(linker._linker);
            try
            {
                foreach (var import in component.Imports)
                {
                    var denied = WasiHost.DeniedInterfaces.Contains(import.Interface);
                    WasiHost.Interfaces.TryGetValue(import.Interface, out var functions);
                    var instance = AddInstance(root, import.Name);
                    try
                    {
                        foreach (var resource in import.Resources)
                        {
                            AddResource(instance, resource, WasiHost.Resources[resource]);
                        }

                        foreach (var function in import.Functions)
                        {
                            var implementation = functions is not null && functions.TryGetValue(function, out var f)
                                ? f
                                : WasiHost.Denied(import.Interface, function);
                            _ = denied;
                            AddFunction(instance, function, implementation);
                        }
                    }
                    finally
                    {
                        ComponentNative.wasmtime_component_linker_instance_delete(instance);
                    }
                }
            }
            finally
            {
                ComponentNative.wasmtime_component_linker_instance_delete(root);
            }

            return linker;
        }
        catch
        {
            linker.Dispose();
            throw;
        }
    }

    /// <summary>A linker with Wasmtime's own WASI 0.2 (<c>wasi:cli/run</c> commands).</summary>
    public static NativeComponentLinker ForCommand(Engine engine)
    {
        var linker = new NativeComponentLinker(ComponentNative.wasmtime_component_linker_new(ComponentNative.EngineHandle(engine)));
        try
        {
            ComponentNative.Check(ComponentNative.wasmtime_component_linker_add_wasip2(linker._linker), "adding WASI 0.2 to the linker");
            return linker;
        }
        catch
        {
            linker.Dispose();
            throw;
        }
    }

    /// <summary>Instantiates the component in a store; throws <see cref="WasmValidationException"/> with Wasmtime's reason.</summary>
    public CInstance Instantiate(nint context, CompiledComponent component)
    {
        CInstance instance;
        var error = ComponentNative.wasmtime_component_linker_instantiate(_linker, context, component.Handle, &instance);
        ComponentNative.Check(error, "the component could not be instantiated");
        return instance;
    }

    public void Dispose()
    {
        var linker = Interlocked.Exchange(ref _linker, 0);
        if (linker != 0)
        {
            ComponentNative.wasmtime_component_linker_delete(linker);
        }
    }

    private static nint AddInstance(nint parent, string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        nint instance;
        fixed (byte* p = bytes)
        {
            ComponentNative.Check(ComponentNative.wasmtime_component_linker_instance_add_instance(parent, p, (nuint)bytes.Length, &instance), $"defining '{name}'");
        }

        return instance;
    }

    private static void AddResource(nint instance, string name, HostResource kind)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var type = ComponentNative.wasmtime_component_resource_type_new_host((uint)kind);
        try
        {
            fixed (byte* p = bytes)
            {
                ComponentNative.Check(
                    ComponentNative.wasmtime_component_linker_instance_add_resource(instance, p, (nuint)bytes.Length, type, HostDispatch.Destructor, 0, 0),
                    $"defining resource '{name}'");
            }
        }
        finally
        {
            ComponentNative.wasmtime_component_resource_type_delete(type);
        }
    }

    private static void AddFunction(nint instance, string name, HostFunction function)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        fixed (byte* p = bytes)
        {
            ComponentNative.Check(
                ComponentNative.wasmtime_component_linker_instance_add_func(instance, p, (nuint)bytes.Length, HostDispatch.Callback, HostDispatch.HandleFor(function), 0),
                $"defining function '{name}'");
        }
    }
}
