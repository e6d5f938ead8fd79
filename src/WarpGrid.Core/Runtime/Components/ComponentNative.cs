using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>Kinds of <c>wasmtime_component_val_t</c> (wasmtime/component/val.h).</summary>
internal enum ValKind : byte
{
    Bool = 0,
    S8 = 1,
    U8 = 2,
    S16 = 3,
    U16 = 4,
    S32 = 5,
    U32 = 6,
    S64 = 7,
    U64 = 8,
    F32 = 9,
    F64 = 10,
    Char = 11,
    String = 12,
    List = 13,
    Record = 14,
    Tuple = 15,
    Variant = 16,
    Enum = 17,
    Option = 18,
    Result = 19,
    Flags = 20,
    Resource = 21,
    Map = 22,
}

/// <summary>
/// Mirrors <c>wasmtime_component_val_t</c>: a one-byte kind, then a 24-byte union at offset 8. Vectors (string, list,
/// record, tuple, flags) are (size, data) at 8/16; a variant is (name size, name data, payload pointer) at 8/16/24; a
/// result is (is_ok, payload pointer) at 8/16; an option and a resource are one pointer at 8.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal unsafe struct CVal
{
    [FieldOffset(0)]
    public ValKind Kind;

    [FieldOffset(8)]
    public ulong Bits;

    [FieldOffset(8)]
    public nuint Size;

    [FieldOffset(16)]
    public nint Data;

    [FieldOffset(24)]
    public CVal* VariantPayload;

    [FieldOffset(8)]
    public byte IsOk;

    [FieldOffset(16)]
    public CVal* ResultPayload;

    [FieldOffset(8)]
    public CVal* OptionPayload;

    [FieldOffset(8)]
    public nint Resource;
}

/// <summary>Mirrors <c>wasmtime_component_valrecord_entry_t</c>: a name vector then a value.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CRecordEntry
{
    public nuint NameSize;
    public nint NameData;
    public CVal Value;
}

/// <summary>A <c>wasm_byte_vec_t</c> or any other C API vector.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CVec
{
    public nuint Size;
    public nint Data;
}

/// <summary>Mirrors <c>wasmtime_component_instance_t</c>.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct CInstance
{
    public ulong StoreId;
    public uint Private;
}

/// <summary>Mirrors <c>wasmtime_component_func_t</c> of Wasmtime 50: (store id, index) padded to 16 bytes, an index, a pointer: 32 bytes.</summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct CFunc
{
    [FieldOffset(0)]
    public ulong StoreId;

    [FieldOffset(8)]
    public uint Private1;

    [FieldOffset(16)]
    public uint Private2;

    [FieldOffset(24)]
    public nint Private3;
}

/// <summary>Mirrors <c>wasmtime_component_item_t</c>: a one-byte kind and a pointer-sized union (a valtype is 16 bytes).</summary>
[StructLayout(LayoutKind.Explicit, Size = 24)]
internal struct CItem
{
    public const byte ComponentInstance = 1;
    public const byte ComponentFunc = 3;
    public const byte Resource = 4;
    public const byte Type = 6;

    [FieldOffset(0)]
    public byte Kind;

    [FieldOffset(8)]
    public nint Pointer;
}

/// <summary>
/// Source-generated bindings to the component-model C API of the <c>libwasmtime</c> that the Wasmtime package
/// bundles (the same library its managed wrapper loads), for what <c>Wasmtime.Components</c> does not expose:
/// host functions over raw values, host-defined resources, component types and WASI contexts.
/// </summary>
internal static unsafe partial class ComponentNative
{
    private const string Lib = "wasmtime";

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_new(nint engine);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_linker_delete(nint linker);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_root(nint linker);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_add_wasip2(nint linker);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_define_unknown_imports_as_traps(nint linker, nint component);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_instantiate(nint linker, nint context, nint component, CInstance* instanceOut);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_instance_add_instance(nint linkerInstance, byte* name, nuint nameLength, nint* instanceOut);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_instance_add_func(
        nint linkerInstance, byte* name, nuint nameLength, delegate* unmanaged<nint, nint, nint, CVal*, nuint, CVal*, nuint, nint> callback, nint data, nint finalizer);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_linker_instance_add_resource(
        nint linkerInstance, byte* name, nuint nameLength, nint resourceType, delegate* unmanaged<nint, nint, uint, nint> destructor, nint data, nint finalizer);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_linker_instance_delete(nint linkerInstance);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_resource_type_new_host(uint type);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_resource_type_delete(nint type);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_resource_host_new([MarshalAs(UnmanagedType.U1)] bool owned, uint rep, uint type);

    [LibraryImport(Lib)]
    public static partial uint wasmtime_component_resource_host_rep(nint host);

    [LibraryImport(Lib)]
    public static partial uint wasmtime_component_resource_host_type(nint host);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_resource_host_delete(nint host);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_resource_any_to_host(nint context, nint any, nint* hostOut);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_resource_host_to_any(nint context, nint host, nint* anyOut);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_resource_any_drop(nint context, nint any);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_resource_any_owned(nint any);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_get_export_index(nint component, nint parent, byte* name, nuint nameLength);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_export_index_delete(nint index);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_instance_get_func(CInstance* instance, nint context, nint exportIndex, CFunc* funcOut);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_func_call(CFunc* func, nint context, CVal* args, nuint argCount, CVal* results, nuint resultCount);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_func_post_return(CFunc* func, nint context);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_component_type(nint component);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_type_delete(nint type);

    [LibraryImport(Lib)]
    public static partial nuint wasmtime_component_type_import_count(nint type, nint engine);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_type_import_nth(nint type, nint engine, nuint nth, byte** name, nuint* nameLength, nint* externOut);

    [LibraryImport(Lib)]
    public static partial nuint wasmtime_component_type_export_count(nint type, nint engine);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_type_export_nth(nint type, nint engine, nuint nth, byte** name, nuint* nameLength, nint* externOut);

    [LibraryImport(Lib)]
    public static partial nuint wasmtime_component_instance_type_export_count(nint type, nint engine);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_component_instance_type_export_nth(nint type, nint engine, nuint nth, byte** name, nuint* nameLength, nint* externOut);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_item_delete(CItem* item);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_extern_type(nint componentExtern, CItem* item);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_extern_delete(nint componentExtern);

    /// <summary>Reads the item type of an import/export extern and deletes the extern.</summary>
    public static CItem TakeExternType(nint componentExtern)
    {
        CItem item;
        wasmtime_component_extern_type(componentExtern, &item);
        wasmtime_component_extern_delete(componentExtern);
        return item;
    }

    [LibraryImport(Lib)]
    public static partial CVal* wasmtime_component_val_new(CVal* value);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_val_delete(CVal* value);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_vallist_new_uninit(CVec* vec, nuint size);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_valrecord_new_uninit(CVec* vec, nuint size);

    [LibraryImport(Lib)]
    public static partial void wasmtime_component_valtuple_new_uninit(CVec* vec, nuint size);

    [LibraryImport(Lib)]
    public static partial void wasm_byte_vec_new(CVec* vec, nuint size, byte* data);

    [LibraryImport(Lib)]
    public static partial void wasm_byte_vec_new_empty(CVec* vec);

    [LibraryImport(Lib)]
    public static partial void wasm_byte_vec_delete(CVec* vec);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_error_new(byte* message);

    [LibraryImport(Lib)]
    public static partial void wasmtime_error_message(nint error, CVec* message);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasmtime_error_exit_status(nint error, int* status);

    [LibraryImport(Lib)]
    public static partial void wasmtime_error_delete(nint error);

    [LibraryImport(Lib)]
    public static partial nint wasi_config_new();

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasi_config_set_argv(nint config, nuint count, byte** argv);

    [LibraryImport(Lib)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool wasi_config_set_env(nint config, nuint count, byte** names, byte** values);

    [LibraryImport(Lib)]
    public static partial void wasi_config_set_stdin_bytes(nint config, CVec* bytes);

    [LibraryImport(Lib)]
    public static partial void wasi_config_set_stdout_custom(nint config, delegate* unmanaged<nint, byte*, nuint, nint> callback, nint data, nint finalizer);

    [LibraryImport(Lib)]
    public static partial void wasi_config_set_stderr_custom(nint config, delegate* unmanaged<nint, byte*, nuint, nint> callback, nint data, nint finalizer);

    [LibraryImport(Lib)]
    public static partial nint wasmtime_context_set_wasi(nint context, nint config);

    /// <summary>Creates an owned <c>wasmtime_error_t</c> carrying a message (a trap for the guest).</summary>
    public static nint NewError(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message + "\0");
        fixed (byte* p = bytes)
        {
            return wasmtime_error_new(p);
        }
    }

    /// <summary>Reads, deletes and returns the message of an owned error; null when there was no error.</summary>
    public static string? TakeError(nint error, out int? exitStatus)
    {
        exitStatus = null;
        if (error == 0)
        {
            return null;
        }

        int status;
        if (wasmtime_error_exit_status(error, &status))
        {
            exitStatus = status;
        }

        CVec message;
        wasmtime_error_message(error, &message);
        var text = message.Size == 0 ? "unknown error" : Encoding.UTF8.GetString((byte*)message.Data, checked((int)message.Size));
        wasm_byte_vec_delete(&message);
        wasmtime_error_delete(error);
        return text;
    }

    /// <summary>Throws <see cref="WasmtimeException"/> for an owned error.</summary>
    public static void Check(nint error, string what)
    {
        var message = TakeError(error, out _);
        if (message is not null)
        {
            throw new WasmValidationException(what + ": " + message.Trim());
        }
    }

    /// <summary>The <c>wasm_engine_t*</c> of a managed engine.</summary>
    public static nint EngineHandle(Engine engine) => HandleOf(engine, EngineHandleField);

    /// <summary>The <c>wasmtime_component_t*</c> of a managed component.</summary>
    public static nint ComponentHandle(Wasmtime.Components.Component component) => HandleOf(component, ComponentHandleField);

    /// <summary>The <c>wasmtime_context_t*</c> of a managed store.</summary>
    public static nint ContextHandle(Store store) => StoreContext(store);

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "contextHandle")]
    private static extern ref nint StoreContext(Store store);

    private static readonly FieldInfo EngineHandleField = typeof(Engine).GetField("handle", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new InvalidOperationException("Wasmtime.Engine has no handle field; the Wasmtime package version is not the one WarpGrid binds");

    private static readonly FieldInfo ComponentHandleField = typeof(Wasmtime.Components.Component).GetField("handle", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new InvalidOperationException("Wasmtime.Components.Component has no handle field; the Wasmtime package version is not the one WarpGrid binds");

    private static nint HandleOf(object owner, FieldInfo field)
    {
        var handle = (SafeHandle)(field.GetValue(owner) ?? throw new ObjectDisposedException(owner.GetType().Name));
        return handle.DangerousGetHandle();
    }
}
