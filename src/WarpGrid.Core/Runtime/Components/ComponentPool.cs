using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime.Pooling;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>The outcome of one component HTTP request.</summary>
/// <param name="Fault">Why it failed, or null.</param>
/// <param name="ResponseStarted">True when the status and headers already went to the client (a fault can then only abort the connection).</param>
/// <param name="InstanceId">The instance that served it.</param>
/// <param name="GuestError">The error code the guest set instead of a response, if it did.</param>
public sealed record ComponentInvocationResult(InvocationFault? Fault, bool ResponseStarted, string? InstanceId, string? GuestError = null);

/// <summary>
/// The instances of a deployment whose module is a <c>wasi:http/incoming-handler</c> component. Every request gets a
/// fresh, pre-instantiated instance (a StarlingMonkey or other guest cannot be re-entered after a response, and a
/// trapped instance never can); after the request the instance is dropped and a new one is instantiated in its place.
/// At most <c>max_instances</c> requests run at once; more wait up to <c>QueueTimeout</c>, then get 503.
/// Dropping the used store and instantiating its replacement (the recycle) happen on the request thread when they are
/// cheap, and on a thread-pool thread after the request returns when they are not: handing a recycle of 10-15 µs (a
/// C component) to another thread cost 12 µs of CPU more per request and slowed the guest on the other core, while
/// the 0.5 ms recycle of the 13 MB StarlingMonkey component is worth taking off the request path (docs/benchmarks.md).
/// </summary>
public sealed partial class ComponentHttpPool : IAsyncDisposable
{
    private readonly WasmNodeRuntime _runtime;
    private readonly ILogger _logger;
    private readonly ILogger _guestLogger;
    private readonly NativeComponentLinker _linker;
    private readonly nint _handleIndex;
    private readonly ConcurrentQueue<ComponentSandbox> _ready = new();
    private readonly SemaphoreSlim _slots;
    private readonly ulong _deadlineTicks;
    private readonly OutboundHttpPolicy _outbound;
    private readonly HttpMessageInvoker? _client;
    private readonly ComponentLogRecords? _records;
    private int _nextId;
    private int _readyOrPending;
    private int _recycling;
    private long _recycleTicks;
    private int _waiting;
    private int _busy;
    private long _requests;
    private long _faults;
    private long _coldStarts;
    private long _replaced;
    private long _rejected;
    private volatile bool _closed;
    private string? _guestSpanName;

    internal ComponentHttpPool(WasmNodeRuntime runtime, PoolSettings settings, CompiledComponent component, string handlerExport, OutboundHttpPolicy outbound, HttpMessageInvoker? client, ILogger logger, ILogger guestLogger)
    {
        _runtime = runtime;
        Settings = settings;
        Component = component;
        _logger = logger;
        _guestLogger = guestLogger;
        _outbound = outbound;
        _client = client;
        _slots = new SemaphoreSlim(settings.MaxInstances, settings.MaxInstances);
        _deadlineTicks = runtime.Engine.TicksFor(settings.RequestTimeout);
        _linker = NativeComponentLinker.ForHttp(runtime.Engine.Engine, component);
        _records = settings.Logging ? new ComponentLogRecords(GuestRecord, runtime.Options.MaxStderrBytesPerRequest) : null;
        _handleIndex = ExportIndex(component, handlerExport, "handle");
    }

    /// <summary>The pool's settings.</summary>
    public PoolSettings Settings { get; }

    /// <summary>The component every instance runs.</summary>
    public CompiledComponent Component { get; }

    /// <summary>Current counters (same shape as a module pool's).</summary>
    public PoolStats Stats => new(_ready.Count + Volatile.Read(ref _busy), _ready.Count, Volatile.Read(ref _busy), Volatile.Read(ref _waiting), Interlocked.Read(ref _requests), Interlocked.Read(ref _faults), Interlocked.Read(ref _coldStarts), Interlocked.Read(ref _replaced), Interlocked.Read(ref _rejected));

    /// <summary>Pre-instantiates the minimum instances (at least one, which proves the component links and starts).</summary>
    internal void WarmUp()
    {
        var count = Math.Max(1, Settings.MinInstances);
        for (var i = 0; i < count; i++)
        {
            _ready.Enqueue(CreateSandbox());
            Interlocked.Increment(ref _readyOrPending);
        }
    }

    /// <summary>Serves one request: waits for a free slot, runs the guest on this thread with a fresh instance.</summary>
    public async ValueTask<ComponentInvocationResult> InvokeAsync(IComponentHttpExchange exchange, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        if (_closed)
        {
            return Fail(InvocationOutcome.Unavailable, "the deployment is shutting down");
        }

        if (Refusal() is { } refusal)
        {
            return Fail(InvocationOutcome.Unavailable, refusal);
        }

        if (!_slots.Wait(0))
        {
            if (Interlocked.Increment(ref _waiting) > Settings.QueueLimit)
            {
                Interlocked.Decrement(ref _waiting);
                Interlocked.Increment(ref _rejected);
                return Fail(InvocationOutcome.Overloaded, $"all {Settings.MaxInstances} instances are busy and {Settings.QueueLimit} requests are already waiting");
            }

            bool entered;
            try
            {
                entered = await _slots.WaitAsync(Settings.QueueTimeout, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }

            if (!entered)
            {
                Interlocked.Increment(ref _rejected);
                return Fail(InvocationOutcome.Overloaded, $"no instance became free within {Settings.QueueTimeout.TotalSeconds:0.###} s (all {Settings.MaxInstances} busy)");
            }
        }

        Interlocked.Increment(ref _busy);
        var started = Stopwatch.GetTimestamp();
        try
        {
            return Run(exchange, probe: false);
        }
        finally
        {
            Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - started);
            Interlocked.Decrement(ref _busy);
            _slots.Release();
        }
    }

    /// <summary>Runs one request (or, with <paramref name="probe"/>, a health probe: not counted, no fault streak) on a ready or new instance.</summary>
    /// <param name="exchange">The request.</param>
    /// <param name="probe">True for a health probe.</param>
    /// <param name="timeout">The guest's deadline when shorter than the request timeout (a probe's own timeout), or null.</param>
    private ComponentInvocationResult Run(IComponentHttpExchange exchange, bool probe, TimeSpan? timeout = null)
    {
        if (!probe)
        {
            Interlocked.Increment(ref _requests);
        }

        ComponentSandbox sandbox;
        var coldStart = false;
        try
        {
            if (_ready.TryDequeue(out sandbox!))
            {
                Interlocked.Decrement(ref _readyOrPending);
            }
            else if (Refusal() is { } refusal && !probe)
            {
                return Fail(InvocationOutcome.Unavailable, refusal);
            }
            else
            {
                Interlocked.Increment(ref _coldStarts);
                coldStart = true;
                sandbox = CreateSandbox();
            }
        }
        catch (Exception ex) when (ex is WasmValidationException or WasmtimeException or InstanceLimitException)
        {
            var failed = Fail(InvocationOutcome.Unavailable, "could not create an instance: " + ex.Message.Trim());
            if (!probe && ex is not InstanceLimitException)
            {
                NoteOutcome(failed.Fault);
            }

            return failed;
        }

        using var span = Observability.WarpGridTelemetry.StartGuest(_guestSpanName ??= Observability.WarpGridTelemetry.GuestSpanName(Settings.Deployment), Settings.Deployment, sandbox.Id, coldStart);
        InvocationFault? fault;
        HttpCallState http;
        try
        {
            var limit = timeout is { } shorter && shorter < Settings.RequestTimeout ? shorter : Settings.RequestTimeout;
            var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
            http = new HttpCallState(exchange, _runtime.Options.MaxResponseBytes, _runtime.Options.MaxRequestBodyBytes, deadline, _outbound, _client);
            if (span is not null)
            {
                http.TraceParent = span.Id;
                http.TraceState = span.TraceStateString;
            }
            else if (Observability.WarpGridTelemetry.Source.HasListeners())
            {
                // Traced but not sampled: the outbound calls carry the client's trace context unchanged (flags 00).
                (http.TraceParent, http.TraceState) = Observability.WarpGridTelemetry.ClientTraceContext(exchange.RequestHeaders);
            }

            fault = sandbox.Handle(http, _handleIndex, limit == Settings.RequestTimeout ? _deadlineTicks : _runtime.Engine.TicksFor(limit), Settings);
        }
        finally
        {
            // Never re-entered: the store is dropped and a fresh instance takes its place, off the request path.
            ScheduleRecycle(sandbox);
        }

        string? guestError = null;
        if (fault is null && !http.ResponseSet)
        {
            fault = new InvocationFault(InvocationOutcome.BadResponse, "the guest returned without setting a response (response-outparam.set was never called)");
        }
        else if (fault is null && http.ResponseError is { } error)
        {
            guestError = error.Message is null ? error.Case : error.Case + ": " + error.Message;
        }
        else if (fault is null)
        {
            http.CheckComplete();
            if (http.BodyFault is { } bodyFault)
            {
                // The guest saw the error (the write or finish failed); the client must not see a complete response.
                fault = new InvocationFault(InvocationOutcome.BadResponse, bodyFault);
            }
        }

        if (fault is not null && !probe)
        {
            Interlocked.Increment(ref _faults);
            Interlocked.Increment(ref _replaced);
            NoteOutcome(fault);
            Log.InvocationFailed(_logger, Settings.Deployment, sandbox.Id, fault.Code, fault.Message);
            _runtime.Logs.Append(Settings.Deployment, Settings.Version, sandbox.Id, GuestLogStream.System, "request failed (" + fault.Code + "): " + fault.Message + "; the instance was discarded");
        }
        else if (!probe)
        {
            NoteOutcome(null);
        }

        span?.SetTag("warpgrid.outcome", fault?.Code ?? "ok");
        return new ComponentInvocationResult(fault, exchange.ResponseStarted, sandbox.Id, guestError);
    }

    /// <summary>Drops a used instance and refills the ready queue on a thread-pool thread.</summary>
    /// <remarks>
    /// At most <c>max_instances</c> recycles wait at once: past that the request thread recycles inline, so a guest
    /// faster than its own teardown cannot pile up live stores (each holds pooling-allocator slots).
    /// </remarks>
    private void ScheduleRecycle(ComponentSandbox used)
    {
        if (Interlocked.Increment(ref _recycling) > Settings.MaxInstances || Volatile.Read(ref _recycleTicks) < InlineRecycleTicks)
        {
            Recycle(used);
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Pool.Recycle(state.Used), (Pool: this, Used: used), preferLocal: false);
    }

    private void Recycle(ComponentSandbox used)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            used.Dispose();
            Replenish();
        }
        finally
        {
            // A moving average (weight 1/8) of what a recycle costs; racy updates only blur it.
            var elapsed = Stopwatch.GetTimestamp() - started;
            var average = Volatile.Read(ref _recycleTicks);
            Volatile.Write(ref _recycleTicks, average + ((elapsed - average) / 8));
            Interlocked.Decrement(ref _recycling);
        }
    }

    /// <summary>
    /// Below this average recycle time (50 µs) the request thread recycles inline: a hand-off to a thread-pool thread
    /// costs more than such a recycle (measured: a 12 µs recycle handed off cost 12 µs more CPU per request, and the
    /// two threads slowed each other through Wasmtime's locks and TLB shootdowns).
    /// </summary>
    private static readonly long InlineRecycleTicks = Stopwatch.Frequency / 20_000;

    /// <summary>Instantiates until <see cref="WarmTarget"/> instances are ready or being created, unless in crash-loop back-off.</summary>
    private void Replenish()
    {
        var target = WarmTarget;
        while (!_closed && Volatile.Read(ref _readyOrPending) < target && !CreationBlocked)
        {
            if (Interlocked.Increment(ref _readyOrPending) > target)
            {
                Interlocked.Decrement(ref _readyOrPending);
                return;
            }

            ComponentSandbox sandbox;
            try
            {
                sandbox = CreateSandbox();
            }
            catch (Exception ex) when (ex is WasmValidationException or WasmtimeException or InstanceLimitException)
            {
                Interlocked.Decrement(ref _readyOrPending);
                Log.RecycleFailed(_logger, Settings.Deployment, ex);
                if (ex is not InstanceLimitException)
                {
                    NoteOutcome(new InvocationFault(InvocationOutcome.Unavailable, "could not create an instance: " + ex.Message.Trim()));
                }

                return;
            }

            if (_closed)
            {
                Interlocked.Decrement(ref _readyOrPending);
                sandbox.Dispose();
                return;
            }

            _ready.Enqueue(sandbox);
        }
    }

    private ComponentSandbox CreateSandbox()
    {
        if (!_runtime.Budget.TryAcquire())
        {
            throw new InstanceLimitException(_runtime.Budget.Limit);
        }

        try
        {
            var id = Settings.Deployment + "-c" + Interlocked.Increment(ref _nextId).ToString("x4", System.Globalization.CultureInfo.InvariantCulture);
            return new ComponentSandbox(id, _runtime, _linker, Component, Settings, _deadlineTicks, GuestLine, _records, _runtime.Budget);
        }
        catch
        {
            _runtime.Budget.Release();
            throw;
        }
    }

    private void GuestLine(string instance, bool isError, byte[] line)
    {
        // A component's stdout is not its response (wasi:http is), so both streams are its log.
        var text = Encoding.UTF8.GetString(line);
        _runtime.Logs.Append(Settings.Deployment, Settings.Version, instance, isError ? Observability.GuestLogStream.Stderr : Observability.GuestLogStream.Stdout, text);
        if (_guestLogger.IsEnabled(LogLevel.Information))
        {
            Log.GuestOutput(_guestLogger, Settings.Deployment, Settings.Version, instance, isError ? "stderr" : "stdout", text);
        }
    }

    private void GuestRecord(string instance, GuestLogLevel level, string? context, string message)
    {
        _runtime.Logs.Append(Settings.Deployment, Settings.Version, instance, GuestLogStream.Log, message, level, context);
        var logLevel = InstancePool.ToLogLevel(level);
        if (_guestLogger.IsEnabled(logLevel))
        {
            Log.GuestRecord(_guestLogger, logLevel, Settings.Deployment, Settings.Version, instance, context ?? string.Empty, message);
        }
    }

    private static ComponentInvocationResult Fail(InvocationOutcome outcome, string message) => new(new InvocationFault(outcome, message), false, null);

    private static unsafe nint ExportIndex(CompiledComponent component, string instance, string function)
    {
        var instanceBytes = Encoding.UTF8.GetBytes(instance);
        var functionBytes = Encoding.UTF8.GetBytes(function);
        fixed (byte* i = instanceBytes)
        fixed (byte* f = functionBytes)
        {
            var parent = ComponentNative.wasmtime_component_get_export_index(component.Handle, 0, i, (nuint)instanceBytes.Length);
            if (parent == 0)
            {
                throw new WasmValidationException($"the component does not export {instance}");
            }

            var index = ComponentNative.wasmtime_component_get_export_index(component.Handle, parent, f, (nuint)functionBytes.Length);
            ComponentNative.wasmtime_component_export_index_delete(parent);
            return index != 0 ? index : throw new WasmValidationException($"the component's {instance} export has no function '{function}'");
        }
    }

    /// <summary>Stops taking requests, waits for running ones (up to <paramref name="timeout"/>), and drops every instance.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _closed = true;
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while ((Volatile.Read(ref _busy) > 0 || Volatile.Read(ref _recycling) > 0) && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        while (_ready.TryDequeue(out var sandbox))
        {
            sandbox.Dispose();
        }

        if (Volatile.Read(ref _busy) == 0 && Volatile.Read(ref _recycling) == 0)
        {
            _linker.Dispose();
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(DrainAsync(TimeSpan.FromSeconds(30)));

    internal void DisposeNow()
    {
        _closed = true;
        while (_ready.TryDequeue(out var sandbox))
        {
            sandbox.Dispose();
        }

        _linker.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Request to {Deployment} on component instance {Instance} failed ({Outcome}): {Reason}; the instance was discarded")]
        public static partial void InvocationFailed(ILogger logger, string deployment, string instance, string outcome, string reason);

        [LoggerMessage(EventId = 41, Level = LogLevel.Error, Message = "Could not pre-instantiate a component instance of {Deployment}")]
        public static partial void RecycleFailed(ILogger logger, string deployment, Exception exception);

        [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "{Deployment}@{Version} {Instance} {Stream}: {Line}")]
        public static partial void GuestOutput(ILogger logger, string deployment, string version, string instance, string stream, string line);

        [LoggerMessage(EventId = 43, Message = "{Deployment}@{Version} {Instance} [{Context}]: {Line}")]
        public static partial void GuestRecord(ILogger logger, LogLevel level, string deployment, string version, string instance, string context, string line);
    }
}

/// <summary>One store with one instantiated component, used for exactly one request.</summary>
internal sealed unsafe class ComponentSandbox : IDisposable
{
    private readonly Store _store;
    private readonly ComponentStoreState _state = new();
    private readonly NodeInstanceBudget _budget;
    private readonly CInstance _instance;
    private readonly long _memoryLimit;
    private int _disposed;

    public ComponentSandbox(string id, WasmNodeRuntime runtime, NativeComponentLinker linker, CompiledComponent component, PoolSettings settings, ulong deadlineTicks, Action<string, bool, byte[]> log, ComponentLogRecords? records, NodeInstanceBudget budget)
    {
        Id = id;
        _budget = budget;
        _memoryLimit = settings.MemoryLimitBytes;
        _store = new Store(runtime.Engine.Engine);
        try
        {
            _store.SetLimits(memorySize: settings.MemoryLimitBytes, tableElements: 100_000, instances: 64, tables: 64, memories: 16);
            _store.SetEpochDeadline(deadlineTicks);
            var context = ComponentNative.ContextHandle(_store);
            _state.Time = runtime.TimeProvider;
            _state.Environment = settings.Environment;
            ComponentLogSink sink = (isError, line) => log(id, isError, line);
            _state.Log = sink;
            _state.Stdout = new LogOutputStream(sink, false, runtime.Options.MaxStderrBytesPerRequest);
            _state.Stderr = new LogOutputStream(sink, true, runtime.Options.MaxStderrBytesPerRequest);
            _state.Records = records;
            _state.Instance = id;

            _state.Attach(context);
            _instance = linker.Instantiate(context, component);
        }
        catch
        {
            _state.Detach();
            _store.Dispose();
            throw;
        }
    }

    public string Id { get; }

    /// <summary>Calls <c>handle(request, response-out)</c>; returns the fault, or null when the guest returned normally.</summary>
    public InvocationFault? Handle(HttpCallState http, nint handleIndex, ulong deadlineTicks, PoolSettings settings)
    {
        var context = _state.Context;
        _state.Http = http;
        _store.SetEpochDeadline(deadlineTicks);
        var exchange = http.Exchange;
        var headers = new Fields { Immutable = true };
        foreach (var header in exchange.RequestHeaders)
        {
            var name = header.Key.ToLowerInvariant();
            if (http.TraceParent is not null && name is "traceparent" or "tracestate")
            {
                continue;
            }

            headers.AddReceived(name, Encoding.Latin1.GetBytes(header.Value));
        }

        if (http.TraceParent is { } traceParent)
        {
            // The guest sees its own span as the parent, as a WAGI guest does in HTTP_TRACEPARENT.
            headers.AddReceived("traceparent", Encoding.Latin1.GetBytes(traceParent));
            if (!string.IsNullOrEmpty(http.TraceState))
            {
                headers.AddReceived("tracestate", Encoding.Latin1.GetBytes(http.TraceState));
            }
        }

        var request = new IncomingRequest(exchange.Method, exchange.PathWithQuery, exchange.Scheme, exchange.Authority, headers, new DotnetInputStream(exchange.RequestBody, http.MaxRequestBytes, "request body"), exchange);
        CFunc func;
        var instance = _instance;
        if (!ComponentNative.wasmtime_component_instance_get_func(&instance, context, handleIndex, &func))
        {
            return new InvocationFault(InvocationOutcome.HostError, "the component instance has no incoming-handler.handle function");
        }

        var args = stackalloc CVal[2];
        new Span<byte>(args, 2 * sizeof(CVal)).Clear();
        string? error;
        int? exit;
        try
        {
            Val.Resource(&args[0], context, _state.Resources.Add(request), HostResource.IncomingRequest);
            Val.Resource(&args[1], context, _state.Resources.Add(new ResponseOutparam()), HostResource.ResponseOutparam);
            error = ComponentNative.TakeError(ComponentNative.wasmtime_component_func_call(&func, context, args, 2, null, 0), out exit);
            if (error is null)
            {
                error = ComponentNative.TakeError(ComponentNative.wasmtime_component_func_post_return(&func, context), out exit);
            }
        }
        finally
        {
            ComponentNative.wasmtime_component_val_delete(&args[0]);
            ComponentNative.wasmtime_component_val_delete(&args[1]);
            (_state.Stdout as LogOutputStream)?.Flush();
            (_state.Stderr as LogOutputStream)?.Flush();
        }

        return error is null ? null : Classify(error, exit, settings);
    }

    private InvocationFault? Classify(string error, int? exit, PoolSettings settings)
    {
        var hostFault = _state.HostFault;
        if (hostFault is ComponentExitException exited)
        {
            return exited.Code == 0 ? null : new InvocationFault(InvocationOutcome.Exit, $"the guest exited with code {exited.Code}", ExitCode: exited.Code);
        }

        if (exit is { } code)
        {
            return code == 0 ? null : new InvocationFault(InvocationOutcome.Exit, $"the guest exited with code {code}", ExitCode: code);
        }

        if (hostFault is HttpProtocolException protocol)
        {
            return new InvocationFault(InvocationOutcome.BadResponse, protocol.Message);
        }

        if (hostFault is not null)
        {
            return new InvocationFault(InvocationOutcome.HostError, hostFault is HostTrapException ? hostFault.Message : "a host call failed: " + hostFault.Message);
        }

        return ClassifyTrap(error, settings);
    }

    /// <summary>Maps a Wasmtime trap message to an outcome.</summary>
    internal static InvocationFault ClassifyTrap(string error, PoolSettings settings)
    {
        var text = error.Trim();
        if (text.Contains("interrupt", StringComparison.OrdinalIgnoreCase))
        {
            return new InvocationFault(InvocationOutcome.Timeout, $"the guest ran past the request timeout of {settings.RequestTimeout.TotalSeconds:0.###} s and was interrupted", TrapCode.Interrupt);
        }

        if (text.Contains("stack overflow", StringComparison.OrdinalIgnoreCase) || text.Contains("call stack exhausted", StringComparison.OrdinalIgnoreCase))
        {
            return new InvocationFault(InvocationOutcome.StackOverflow, "the guest overflowed its stack (unbounded recursion?)", TrapCode.StackOverflow);
        }

        if (text.Contains("unreachable", StringComparison.OrdinalIgnoreCase))
        {
            return new InvocationFault(InvocationOutcome.Trap, "the guest trapped: unreachable instruction executed (abort or panic)", TrapCode.Unreachable);
        }

        return new InvocationFault(InvocationOutcome.Trap, "the guest trapped: " + Cause(text));
    }

    /// <summary>The "Caused by" part of a Wasmtime error (after the backtrace), or its first line.</summary>
    internal static string Cause(string text)
    {
        var caused = text.LastIndexOf("Caused by:", StringComparison.Ordinal);
        if (caused >= 0)
        {
            var lines = text[(caused + "Caused by:".Length)..].Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.StartsWith("0: ", StringComparison.Ordinal) || l.StartsWith("1: ", StringComparison.Ordinal) ? l[3..] : l);
            return string.Join("; ", lines);
        }

        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? text : text[..newline];
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Unmap the context before freeing it: once the store is gone its address can belong to a new store.
        _state.Detach();
        _store.Dispose();
        _budget.Release();
    }
}
