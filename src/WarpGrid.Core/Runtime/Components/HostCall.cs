using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>A host function of a component import, called with the raw argument and result values.</summary>
internal delegate void HostFunction(ref HostCall call);

/// <summary>Thrown by a host function to trap the guest with a message (the request ends, the instance is replaced).</summary>
internal sealed class HostTrapException(string message) : Exception(message);

/// <summary>
/// One call from a component into the host: typed access to the argument values (owned by Wasmtime) and writers for
/// the result values (allocated with Wasmtime's own vector constructors, since Wasmtime frees them).
/// </summary>
internal readonly unsafe ref struct HostCall
{
    private readonly CVal* _args;
    private readonly nuint _argCount;
    private readonly CVal* _results;
    private readonly nuint _resultCount;

    public HostCall(ComponentStoreState state, nint context, CVal* args, nuint argCount, CVal* results, nuint resultCount)
    {
        State = state;
        Context = context;
        _args = args;
        _argCount = argCount;
        _results = results;
        _resultCount = resultCount;
    }

    public ComponentStoreState State { get; }

    public nint Context { get; }

    public CVal* Arg(int index)
    {
        if ((nuint)index >= _argCount)
        {
            throw new HostTrapException($"host function expected argument {index} but got {_argCount}");
        }

        return _args + index;
    }

    public CVal* Result
    {
        get
        {
            if (_resultCount == 0)
            {
                throw new HostTrapException("host function has no result slot");
            }

            return _results;
        }
    }

    public ulong U64(int index) => Arg(index)->Bits;

    /// <summary>
    /// An unsigned integer argument of up to 32 bits, read at its own width: Wasmtime writes only the payload bytes of a
    /// <c>u8</c>/<c>u16</c> value, the rest of the union is whatever was on its stack (a <c>u16</c> status read as 32 bits
    /// was garbage, so <c>set-status-code(200)</c> answered err and left its borrow unreleased).
    /// </summary>
    public uint U32(int index)
    {
        var value = Arg(index);
        return value->Kind switch
        {
            ValKind.U8 or ValKind.S8 or ValKind.Bool => (byte)value->Bits,
            ValKind.U16 or ValKind.S16 => (ushort)value->Bits,
            _ => (uint)value->Bits,
        };
    }

    /// <summary>A <c>bool</c> argument: one byte.</summary>
    public bool Bool(int index) => (byte)Arg(index)->Bits != 0;

    public string String(int index) => Val.ReadString(Arg(index));

    public byte[] Bytes(int index) => Val.ReadBytes(Arg(index));

    /// <summary>A borrowed (or owned, left with the guest's table entry) host resource argument.</summary>
    public T Borrow<T>(int index)
        where T : class => State.Resources.Get<T>(ResourceRep(Arg(index)));

    /// <summary>An owned host resource argument: the host takes it out of the table.</summary>
    public T Take<T>(int index)
        where T : class => State.Resources.Take<T>(ResourceRep(Arg(index)));

    /// <summary>An owned host resource held in a value (e.g. inside a result or option).</summary>
    public T Take<T>(CVal* value)
        where T : class => State.Resources.Take<T>(ResourceRep(value));

    /// <summary>The reps of a list of borrowed resources.</summary>
    public List<T> BorrowList<T>(int index)
        where T : class
    {
        var list = Arg(index);
        var items = (CVal*)list->Data;
        var result = new List<T>((int)list->Size);
        for (nuint i = 0; i < list->Size; i++)
        {
            result.Add(State.Resources.Get<T>(ResourceRep(items + i)));

            // A borrow inside a list is lent to the host until dropped (Wasmtime does not end it when the call returns).
            if (!ComponentNative.wasmtime_component_resource_any_owned(items[i].Resource))
            {
                ComponentNative.TakeError(ComponentNative.wasmtime_component_resource_any_drop(Context, items[i].Resource), out _);
            }
        }

        return result;
    }

    /// <summary>Creates an owned host resource value for <paramref name="value"/>.</summary>
    public void NewResource(CVal* target, HostResource kind, object value) => Val.Resource(target, Context, State.Resources.Add(value), kind);

    private uint ResourceRep(CVal* value)
    {
        if (value->Kind != ValKind.Resource)
        {
            throw new HostTrapException($"expected a resource argument, got {value->Kind}");
        }

        var index = value - _args;
        if (index >= 0 && index < (nint)_argCount && index < 64)
        {
            State.ConvertedArgs |= 1UL << (int)index;
        }

        nint host;
        var error = ComponentNative.wasmtime_component_resource_any_to_host(Context, value->Resource, &host);
        var message = ComponentNative.TakeError(error, out _);
        if (message is not null)
        {
            throw new HostTrapException("bad resource handle: " + message);
        }

        var rep = ComponentNative.wasmtime_component_resource_host_rep(host);
        ComponentNative.wasmtime_component_resource_host_delete(host);
        return rep;
    }
}

/// <summary>Writers of component values into native storage that Wasmtime will own and free.</summary>
internal static unsafe class Val
{
    public static void Bool(CVal* v, bool value)
    {
        v->Kind = ValKind.Bool;
        v->Bits = value ? 1UL : 0UL;
    }

    public static void U8(CVal* v, byte value)
    {
        v->Kind = ValKind.U8;
        v->Bits = value;
    }

    public static void U16(CVal* v, ushort value)
    {
        v->Kind = ValKind.U16;
        v->Bits = value;
    }

    public static void U32(CVal* v, uint value)
    {
        v->Kind = ValKind.U32;
        v->Bits = value;
    }

    public static void U64(CVal* v, ulong value)
    {
        v->Kind = ValKind.U64;
        v->Bits = value;
    }

    public static void String(CVal* v, string value)
    {
        v->Kind = ValKind.String;
        NewName((CVec*)&v->Size, value);
    }

    public static void Enum(CVal* v, string caseName)
    {
        v->Kind = ValKind.Enum;
        NewName((CVec*)&v->Size, caseName);
    }

    public static void Bytes(CVal* v, ReadOnlySpan<byte> bytes)
    {
        v->Kind = ValKind.List;
        var items = NewList(v, bytes.Length);
        for (var i = 0; i < bytes.Length; i++)
        {
            items[i].Kind = ValKind.U8;
            items[i].Bits = bytes[i];
        }
    }

    /// <summary>Makes <paramref name="v"/> a list of <paramref name="count"/> zeroed values and returns them.</summary>
    public static CVal* NewList(CVal* v, int count)
    {
        v->Kind = ValKind.List;
        ComponentNative.wasmtime_component_vallist_new_uninit((CVec*)&v->Size, (nuint)count);
        var items = (CVal*)v->Data;
        new Span<byte>(items, count * sizeof(CVal)).Clear();
        return items;
    }

    public static CVal* NewTuple(CVal* v, int count)
    {
        v->Kind = ValKind.Tuple;
        ComponentNative.wasmtime_component_valtuple_new_uninit((CVec*)&v->Size, (nuint)count);
        var items = (CVal*)v->Data;
        new Span<byte>(items, count * sizeof(CVal)).Clear();
        return items;
    }

    /// <summary>Makes <paramref name="v"/> a record with the given field names and returns the field values to fill.</summary>
    public static CRecordEntry* NewRecord(CVal* v, params ReadOnlySpan<string> names)
    {
        v->Kind = ValKind.Record;
        ComponentNative.wasmtime_component_valrecord_new_uninit((CVec*)&v->Size, (nuint)names.Length);
        var entries = (CRecordEntry*)v->Data;
        new Span<byte>(entries, names.Length * sizeof(CRecordEntry)).Clear();
        for (var i = 0; i < names.Length; i++)
        {
            NewName((CVec*)&entries[i].NameSize, names[i]);
        }

        return entries;
    }

    /// <summary>Option: <c>none</c>.</summary>
    public static void None(CVal* v)
    {
        v->Kind = ValKind.Option;
        v->OptionPayload = null;
    }

    /// <summary>Option: <c>some</c>, moving <paramref name="payload"/> into a Wasmtime-owned box.</summary>
    public static void Some(CVal* v, CVal* payload)
    {
        v->Kind = ValKind.Option;
        v->OptionPayload = ComponentNative.wasmtime_component_val_new(payload);
    }

    public static void Ok(CVal* v, CVal* payload = null)
    {
        v->Kind = ValKind.Result;
        v->IsOk = 1;
        v->ResultPayload = payload is null ? null : ComponentNative.wasmtime_component_val_new(payload);
    }

    public static void Err(CVal* v, CVal* payload = null)
    {
        v->Kind = ValKind.Result;
        v->IsOk = 0;
        v->ResultPayload = payload is null ? null : ComponentNative.wasmtime_component_val_new(payload);
    }

    public static void Variant(CVal* v, string caseName, CVal* payload = null)
    {
        v->Kind = ValKind.Variant;
        NewName((CVec*)&v->Size, caseName);
        v->VariantPayload = payload is null ? null : ComponentNative.wasmtime_component_val_new(payload);
    }

    public static void Resource(CVal* v, nint context, uint rep, HostResource kind)
    {
        var host = ComponentNative.wasmtime_component_resource_host_new(true, rep, (uint)kind);
        nint any;
        var error = ComponentNative.wasmtime_component_resource_host_to_any(context, host, &any);
        ComponentNative.wasmtime_component_resource_host_delete(host);
        var message = ComponentNative.TakeError(error, out _);
        if (message is not null)
        {
            throw new HostTrapException("could not create a resource: " + message);
        }

        v->Kind = ValKind.Resource;
        v->Resource = any;
    }

    public static string ReadString(CVal* v)
    {
        if (v->Kind is not (ValKind.String or ValKind.Enum))
        {
            throw new HostTrapException($"expected a string, got {v->Kind}");
        }

        return v->Size == 0 ? string.Empty : Encoding.UTF8.GetString((byte*)v->Data, checked((int)v->Size));
    }

    /// <summary>The case name of a variant or enum value.</summary>
    public static string CaseName(CVal* v) => v->Size == 0 ? string.Empty : Encoding.UTF8.GetString((byte*)v->Data, checked((int)v->Size));

    public static byte[] ReadBytes(CVal* v)
    {
        if (v->Kind != ValKind.List)
        {
            throw new HostTrapException($"expected a list<u8>, got {v->Kind}");
        }

        var count = checked((int)v->Size);
        var items = (CVal*)v->Data;
        var bytes = new byte[count];
        for (var i = 0; i < count; i++)
        {
            bytes[i] = (byte)items[i].Bits;
        }

        return bytes;
    }

    private static void NewName(CVec* target, string value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        Span<byte> buffer = max <= 512 ? stackalloc byte[max] : new byte[max];
        var length = Encoding.UTF8.GetBytes(value, buffer);
        fixed (byte* p = buffer)
        {
            ComponentNative.wasm_byte_vec_new(target, (nuint)length, p);
        }
    }
}

/// <summary>Host-defined resource types. The value is the host resource type id given to Wasmtime.</summary>
internal enum HostResource : uint
{
    InputStream = 0x5747_0001,
    OutputStream,
    Pollable,
    IoError,
    Fields,
    IncomingRequest,
    OutgoingRequest,
    RequestOptions,
    ResponseOutparam,
    IncomingResponse,
    IncomingBody,
    FutureTrailers,
    OutgoingResponse,
    OutgoingBody,
    FutureIncomingResponse,
    TerminalInput,
    TerminalOutput,
    Descriptor,
    DirectoryEntryStream,
}

/// <summary>The host objects behind the resource handles of one store: rep is an index into a table.</summary>
internal sealed class ResourceTable
{
    private readonly List<object?> _items = [null];
    private readonly Stack<uint> _free = new();

    public int Count { get; private set; }

    public uint Add(object value)
    {
        Count++;
        if (_free.TryPop(out var rep))
        {
            _items[(int)rep] = value;
            return rep;
        }

        _items.Add(value);
        return (uint)(_items.Count - 1);
    }

    public T Get<T>(uint rep)
        where T : class
    {
        if (rep < (uint)_items.Count && _items[(int)rep] is T value)
        {
            return value;
        }

        throw new HostTrapException($"resource handle {rep} is not a live {typeof(T).Name}");
    }

    public T Take<T>(uint rep)
        where T : class
    {
        var value = Get<T>(rep);
        Remove(rep);
        return value;
    }

    public object? Remove(uint rep)
    {
        if (rep == 0 || rep >= (uint)_items.Count || _items[(int)rep] is not { } value)
        {
            return null;
        }

        _items[(int)rep] = null;
        _free.Push(rep);
        Count--;
        return value;
    }

    public void Clear()
    {
        foreach (var item in _items)
        {
            (item as IDisposable)?.Dispose();
        }

        _items.Clear();
        _items.Add(null);
        _free.Clear();
        Count = 0;
    }
}

/// <summary>The per-store state host functions read, found from the <c>wasmtime_context_t*</c> of the call.</summary>
internal sealed class ComponentStoreState
{
    private static readonly ConcurrentDictionary<nint, ComponentStoreState> ByContext = new();

    public ResourceTable Resources { get; } = new();

    public TimeProvider Time { get; set; } = TimeProvider.System;

    public OutputStream Stdout { get; set; } = new LogOutputStream(static (_, _) => { }, false, 0);

    public OutputStream Stderr { get; set; } = new LogOutputStream(static (_, _) => { }, true, 0);

    public ComponentLogSink? Log { get; set; }

    /// <summary>Where <c>wasi:logging</c> records go (shared by the pool); null when <c>[capabilities] logging</c> is not granted.</summary>
    public ComponentLogRecords? Records { get; set; }

    /// <summary>The instance id records are attributed to.</summary>
    public string? Instance { get; set; }

    /// <summary>Bytes this instance (its one request) logged through <c>wasi:logging</c> so far.</summary>
    public long LoggedBytes { get; set; }

    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; set; } = [];

    /// <summary>Deadline (a Stopwatch timestamp) outside an HTTP request.</summary>
    public long Deadline { get; set; } = long.MaxValue;

    public long MaxOutboundBodyBytes { get; set; } = 64L << 20;

    public OutboundHttpPolicy Outbound { get; set; } = OutboundHttpPolicy.DenyAll;

    public HttpMessageInvoker? Client { get; set; }

    /// <summary>The request being served (HTTP trigger), or null.</summary>
    public HttpCallState? Http { get; set; }

    /// <summary>The first exception a host function threw in this call, for the fault report.</summary>
    public Exception? HostFault { get; set; }

    /// <summary>Exit code the guest asked for through <c>wasi:cli/exit</c>.</summary>
    public int? ExitCode { get; set; }

    public nint Context { get; private set; }

    public void Attach(nint context)
    {
        Context = context;
        ByContext[context] = this;
    }

    public void Detach()
    {
        // Only our own entry: a context address is reused by the next store once this one is freed (stores are dropped
        // on thread-pool threads while others are created), and removing by key alone could unmap that newer store.
        ByContext.TryRemove(new KeyValuePair<nint, ComponentStoreState>(Context, this));
        Resources.Clear();
    }

    /// <summary>Bit i is set when argument i of the current host call was converted to a host resource.</summary>
    public ulong ConvertedArgs { get; set; }

    public static ComponentStoreState? For(nint context) => ByContext.GetValueOrDefault(context);
}

/// <summary>The single entry point Wasmtime calls for every host function and resource destructor.</summary>
internal static unsafe class HostDispatch
{
    private static readonly ConcurrentDictionary<HostFunction, nint> Handles = new();

    /// <summary>A stable handle for a host function, passed to Wasmtime as callback data.</summary>
    public static nint HandleFor(HostFunction function) =>
        Handles.GetOrAdd(function, static f => GCHandle.ToIntPtr(GCHandle.Alloc(f)));

    public static delegate* unmanaged<nint, nint, nint, CVal*, nuint, CVal*, nuint, nint> Callback => &Invoke;

    public static delegate* unmanaged<nint, nint, uint, nint> Destructor => &Destroy;

    [UnmanagedCallersOnly]
    private static nint Invoke(nint data, nint context, nint type, CVal* args, nuint argCount, CVal* results, nuint resultCount)
    {
        var state = ComponentStoreState.For(context);
        if (state is null)
        {
            return ComponentNative.NewError("host function called in a store WarpGrid does not manage");
        }

        try
        {
            var function = (HostFunction)GCHandle.FromIntPtr(data).Target!;
            var call = new HostCall(state, context, args, argCount, results, resultCount);
            state.ConvertedArgs = 0;
            function(ref call);
            ReleaseUnusedBorrows(state, context, args, argCount);
            return 0;
        }
        catch (Exception ex)
        {
            state.HostFault ??= ex;
            return ComponentNative.NewError(ex is HostTrapException or ComponentExitException ? ex.Message : "host call failed: " + ex.GetType().Name + ": " + ex.Message);
        }
    }

    /// <summary>
    /// Ends the borrows of resource arguments the host function never looked at (an early <c>err</c> return, e.g.
    /// <c>set-status-code(1000)</c>): Wasmtime counts a borrow lent to the host until the host drops it, and traps the
    /// whole export call with "borrow handles still remain at the end of the call" otherwise.
    /// </summary>
    private static void ReleaseUnusedBorrows(ComponentStoreState state, nint context, CVal* args, nuint argCount)
    {
        var count = (int)Math.Min(argCount, 64);
        for (var i = 0; i < count; i++)
        {
            if (args[i].Kind == ValKind.Resource && (state.ConvertedArgs & (1UL << i)) == 0 && !ComponentNative.wasmtime_component_resource_any_owned(args[i].Resource))
            {
                ComponentNative.TakeError(ComponentNative.wasmtime_component_resource_any_drop(context, args[i].Resource), out _);
            }
        }
    }

    [UnmanagedCallersOnly]
    private static nint Destroy(nint data, nint context, uint rep)
    {
        try
        {
            var value = ComponentStoreState.For(context)?.Resources.Remove(rep);
            (value as IDisposable)?.Dispose();
            return 0;
        }
        catch (Exception ex)
        {
            return ComponentNative.NewError("resource destructor failed: " + ex.Message);
        }
    }
}

/// <summary>Thrown by <c>wasi:cli/exit</c>.</summary>
internal sealed class ComponentExitException(int code) : Exception($"the guest exited with code {code}")
{
    public int Code { get; } = code;
}
