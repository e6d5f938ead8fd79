using System.Text;
using Wasmtime;
using Wasmtime.Components;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>One import of a component: an interface instance (<c>wasi:io/streams@0.2.10</c>) and its items.</summary>
/// <param name="Name">The full import name, with version.</param>
/// <param name="IsInstance">True when the import is an interface instance.</param>
/// <param name="Functions">Function names the component uses from the interface.</param>
/// <param name="Resources">Resource names declared or used by the interface.</param>
public sealed record ComponentImport(string Name, bool IsInstance, IReadOnlyList<string> Functions, IReadOnlyList<string> Resources)
{
    /// <summary>The interface name without version (<c>wasi:io/streams</c>).</summary>
    public string Interface => Name.Split('@')[0];

    /// <summary>The version after <c>@</c>, or null.</summary>
    public string? Version => Name.Contains('@', StringComparison.Ordinal) ? Name[(Name.IndexOf('@', StringComparison.Ordinal) + 1)..] : null;
}

/// <summary>A component compiled for this node's engine, with its imports and exports read once.</summary>
public sealed class CompiledComponent
{
    internal CompiledComponent(string digest, Component component, long sizeBytes, bool fromCache, TimeSpan loadTime, Engine engine)
    {
        Digest = digest;
        Component = component;
        SizeBytes = sizeBytes;
        FromCache = fromCache;
        LoadTime = loadTime;
        Handle = ComponentNative.ComponentHandle(component);
        (Imports, Exports) = ReadTypes(Handle, ComponentNative.EngineHandle(engine));
    }

    /// <summary>The content digest of the wasm bytes.</summary>
    public string Digest { get; }

    /// <summary>The compiled component.</summary>
    public Component Component { get; }

    /// <summary>Size of the wasm bytes.</summary>
    public long SizeBytes { get; }

    /// <summary>True when the compiled code came from the disk cache.</summary>
    public bool FromCache { get; }

    /// <summary>Time spent compiling or deserializing.</summary>
    public TimeSpan LoadTime { get; }

    /// <summary>What the component imports.</summary>
    public IReadOnlyList<ComponentImport> Imports { get; }

    /// <summary>Names of the component's top-level exports (<c>wasi:http/incoming-handler@0.2.10</c>, <c>wasi:cli/run@0.2.3</c>).</summary>
    public IReadOnlyList<string> Exports { get; }

    internal nint Handle { get; }

    /// <summary>The export of an interface whatever its <c>0.2.x</c> version, or null.</summary>
    public string? FindExport(string interfaceName) =>
        Exports.FirstOrDefault(e => e.StartsWith(interfaceName + "@0.2.", StringComparison.Ordinal) || e == interfaceName);

    private static unsafe (IReadOnlyList<ComponentImport>, IReadOnlyList<string>) ReadTypes(nint component, nint engine)
    {
        var type = ComponentNative.wasmtime_component_type(component);
        try
        {
            var imports = new List<ComponentImport>();
            var count = ComponentNative.wasmtime_component_type_import_count(type, engine);
            for (nuint i = 0; i < count; i++)
            {
                byte* name;
                nuint length;
                nint importExtern;
                if (!ComponentNative.wasmtime_component_type_import_nth(type, engine, i, &name, &length, &importExtern))
                {
                    continue;
                }

                var item = ComponentNative.TakeExternType(importExtern);

                var importName = Encoding.UTF8.GetString(name, (int)length);
                var functions = new List<string>();
                var resources = new List<string>();
                var isInstance = item.Kind == CItem.ComponentInstance;
                if (isInstance)
                {
                    var exports = ComponentNative.wasmtime_component_instance_type_export_count(item.Pointer, engine);
                    for (nuint j = 0; j < exports; j++)
                    {
                        byte* exportName;
                        nuint exportLength;
                        nint exportExtern;
                        if (!ComponentNative.wasmtime_component_instance_type_export_nth(item.Pointer, engine, j, &exportName, &exportLength, &exportExtern))
                        {
                            continue;
                        }

                        var export = ComponentNative.TakeExternType(exportExtern);

                        var text = Encoding.UTF8.GetString(exportName, (int)exportLength);
                        if (export.Kind == CItem.ComponentFunc)
                        {
                            functions.Add(text);
                        }
                        else if (export.Kind == CItem.Resource)
                        {
                            resources.Add(text);
                        }

                        ComponentNative.wasmtime_component_item_delete(&export);
                    }
                }

                ComponentNative.wasmtime_component_item_delete(&item);
                imports.Add(new ComponentImport(importName, isInstance, functions, resources));
            }

            var exportNames = new List<string>();
            var exportCount = ComponentNative.wasmtime_component_type_export_count(type, engine);
            for (nuint i = 0; i < exportCount; i++)
            {
                byte* name;
                nuint length;
                nint exportExtern;
                if (ComponentNative.wasmtime_component_type_export_nth(type, engine, i, &name, &length, &exportExtern))
                {
                    exportNames.Add(Encoding.UTF8.GetString(name, (int)length));
                    ComponentNative.wasmtime_component_extern_delete(exportExtern);
                }
            }

            return (imports, exportNames);
        }
        finally
        {
            ComponentNative.wasmtime_component_type_delete(type);
        }
    }
}
