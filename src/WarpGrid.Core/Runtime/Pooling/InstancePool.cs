using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime.Wagi;
using WarpGrid.Core.Runtime.Wasi;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>What an instance is doing.</summary>
public enum InstanceState
{
    /// <summary>Ready for a request.</summary>
    Idle,

    /// <summary>Running a request.</summary>
    Busy,

    /// <summary>Discarded.</summary>
    Retired,

    /// <summary>Live but out of rotation: its readiness probe failed (or a replacement not yet probed).</summary>
    Unready,
}

/// <summary>A snapshot of one instance, for the API.</summary>
public sealed record InstanceInfo(string Id, InstanceState State, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, long Requests);

/// <summary>Counters of one pool.</summary>
public sealed record PoolStats(int Live, int Idle, int Busy, int Waiting, long Requests, long Faults, long ColdStarts, long Replaced, long Rejected);

/// <summary>
/// The instances of one deployment. <c>min_instances</c> are pre-warmed; at most <c>max_instances</c> run at once, one
/// request each; idle instances are handed out first-in first-out (round robin). Past the cap, requests wait in a
/// bounded queue, then get <see cref="InvocationOutcome.Overloaded"/>. Every WAGI request runs in a fresh sandbox
/// (a WASI command cannot be re-entered): after a request the slot's store is recycled, which with the pooling
/// allocator costs a few microseconds; a trapped instance is discarded and replaced by a new one.
/// </summary>
public sealed partial class InstancePool : IAsyncDisposable, ISupervisedPool
{
    private readonly WasmNodeRuntime _runtime;
    private readonly ILogger _logger;
    private readonly ILogger _guestLogger;
    private readonly Lock _lock = new();
    private readonly Queue<Slot> _idle = new();
    private readonly List<Slot> _unready = [];
    private readonly LinkedList<TaskCompletionSource<Slot?>> _waiters = new();
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly ulong _deadlineTicks;
    private int _probing;
    private readonly long _deadlineStopwatchTicks;
    private int _live;
    private int _busy;
    private int _nextId;
    private long _requests;
    private long _faults;
    private long _coldStarts;
    private long _replaced;
    private long _rejected;
    private long _busyTicks;
    private int _warmTarget = -1;
    private DateTimeOffset? _creationBlockedUntil;
    private bool _closed;
    private bool _stopped;
    private int _entered;
    private TaskCompletionSource? _drained;

    internal InstancePool(WasmNodeRuntime runtime, PoolSettings settings, CompiledModule module, ILogger logger, ILogger guestLogger)
    {
        _runtime = runtime;
        Settings = settings;
        Module = module;
        _logger = logger;
        _guestLogger = guestLogger;
        _deadlineTicks = runtime.Engine.TicksFor(settings.RequestTimeout);
        _deadlineStopwatchTicks = (long)(settings.RequestTimeout.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>The pool's settings.</summary>
    public PoolSettings Settings { get; }

    /// <summary>The module every instance runs.</summary>
    public CompiledModule Module { get; }

    /// <summary>Current counters.</summary>
    public PoolStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new PoolStats(_live, _idle.Count, _busy, _waiters.Count, Interlocked.Read(ref _requests), Interlocked.Read(ref _faults), Interlocked.Read(ref _coldStarts), Interlocked.Read(ref _replaced), Interlocked.Read(ref _rejected));
            }
        }
    }

    /// <summary>The live instances.</summary>
    public IReadOnlyList<InstanceInfo> Instances()
    {
        lock (_lock)
        {
            return _slots.Values.Select(s => s.Info()).OrderBy(i => i.Id, StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>Instances out of rotation because their readiness probe failed.</summary>
    public int UnreadyCount
    {
        get
        {
            lock (_lock)
            {
                return _unready.Count;
            }
        }
    }

    /// <summary>Linear memory of the live instances, each as of the end of its last request.</summary>
    public long MemoryInUseBytes
    {
        get
        {
            lock (_lock)
            {
                long total = 0;
                foreach (var slot in _slots.Values)
                {
                    total += slot.LastMemoryBytes;
                }

                return total;
            }
        }
    }

    /// <summary>
    /// Total time instances spent running requests, in <see cref="Stopwatch"/> ticks: its rate of change is the mean
    /// number of busy instances (request concurrency), which the autoscaler reads.
    /// </summary>
    public long BusyTicks => Interlocked.Read(ref _busyTicks);

    /// <summary>Requests admitted (in flight or waiting) right now.</summary>
    public int InFlight
    {
        get
        {
            lock (_lock)
            {
                return Math.Max(_entered, _busy + _waiters.Count);
            }
        }
    }

    /// <summary>
    /// While set and in the future, the pool creates no instance (a deployment in crash-loop back-off): requests wait
    /// for an existing instance or are refused. Null lifts the block.
    /// </summary>
    public DateTimeOffset? CreationBlockedUntil
    {
        get
        {
            lock (_lock)
            {
                return _creationBlockedUntil;
            }
        }

        set
        {
            lock (_lock)
            {
                _creationBlockedUntil = value;
            }
        }
    }

    private bool CreationBlocked => _creationBlockedUntil is { } until && _runtime.TimeProvider.GetUtcNow() < until;

    /// <summary>
    /// Sets how many instances the pool keeps warm (the autoscaler's decision), clamped to
    /// [<c>min_instances</c>, <c>max_instances</c>]: creates missing instances and releases idle ones above it. Busy
    /// instances are never released: one above the target is released once its request finished and it is idle at a
    /// later call. Returns the live count afterwards.
    /// </summary>
    public int SetWarmTarget(int target)
    {
        target = Math.Clamp(target, Settings.MinInstances, Settings.MaxInstances);
        List<Slot> release = [];
        int toCreate;
        lock (_lock)
        {
            if (_closed)
            {
                return _live;
            }

            _warmTarget = target;
            while (_live - release.Count > target && _idle.Count > 0)
            {
                release.Add(_idle.Dequeue());
            }

            toCreate = CreationBlocked ? 0 : target - _live;
        }

        foreach (var slot in release)
        {
            ReleaseIdleSlot(slot);
        }

        for (var i = 0; i < toCreate; i++)
        {
            if (!TryReserve())
            {
                break;
            }

            try
            {
                var slot = CreateSlotOrRelease();
                lock (_lock)
                {
                    _busy++;
                }

                Handoff(slot);
            }
            catch (WasmtimeException ex)
            {
                Log.RecycleFailed(_logger, Settings.Deployment, "(new)", ex);
                break;
            }
        }

        lock (_lock)
        {
            return _live;
        }
    }

    private void ReleaseIdleSlot(Slot slot)
    {
        var sandbox = slot.Sandbox;
        slot.Sandbox = null;
        sandbox?.Dispose();
        slot.MarkRetired();
        lock (_lock)
        {
            _slots.Remove(slot.Id);
        }

        Unreserve();
    }

    /// <inheritdoc />
    public int ProbesInFlight => Volatile.Read(ref _probing);

    /// <summary>The ids of instances a health probe may check now (idle or unready, not busy).</summary>
    public IReadOnlyList<string> ProbeCandidates()
    {
        lock (_lock)
        {
            return [.. _idle.Select(s => s.Id), .. _unready.Select(s => s.Id)];
        }
    }

    /// <summary>
    /// Runs a health probe on one idle or unready instance, taken out of rotation meanwhile (the probe is an HTTP
    /// request through the same slot), then lets <paramref name="decide"/> place it: back in rotation, out of rotation
    /// (unready), or discarded (liveness failed; the pool does not replace it, the caller does after its back-off).
    /// </summary>
    /// <param name="instanceId">The instance to probe.</param>
    /// <param name="probe">The probe request.</param>
    /// <param name="decide">Places the instance from the probe's result.</param>
    /// <param name="timeout">
    /// The probe's own timeout (<c>[health] timeout</c>): the guest is interrupted then (a
    /// <see cref="InvocationOutcome.Timeout"/> fault) when it is shorter than the request timeout. Null: the request timeout.
    /// </param>
    /// <returns>The probe's result, or null when the instance is busy or gone.</returns>
    public InvocationResult? Probe(string instanceId, WagiRequest probe, Func<InvocationResult, ProbeVerdict> decide, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(instanceId);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(decide);
        Slot? slot;
        lock (_lock)
        {
            if (_stopped || !_slots.TryGetValue(instanceId, out slot))
            {
                return null;
            }

            if (_unready.Remove(slot))
            {
            }
            else if (slot.State == InstanceState.Idle && _idle.Contains(slot))
            {
                var rest = _idle.Where(s => !ReferenceEquals(s, slot)).ToList();
                _idle.Clear();
                foreach (var s in rest)
                {
                    _idle.Enqueue(s);
                }
            }
            else
            {
                return null;
            }

            slot.MarkProbing();
            _busy++;
        }

        InvocationResult result;
        Interlocked.Increment(ref _probing);
        try
        {
            result = Run(slot, probe, coldStart: false, countRequest: false, timeout is { } t && t < Settings.RequestTimeout ? t : null);
        }
        finally
        {
            Interlocked.Decrement(ref _probing);
        }

        var verdict = decide(result);
        switch (verdict)
        {
            case ProbeVerdict.Replace:
                {
                    var old = slot.Sandbox;
                    slot.Sandbox = null;
                    old?.Dispose();
                    Retire(slot);
                    Interlocked.Increment(ref _replaced);
                    break;
                }

            default:
                slot.Ready = verdict == ProbeVerdict.Ready;
                Release(slot, result.Fault?.PoisonsInstance ?? false);
                break;
        }

        return result;
    }

    /// <summary>Creates instances up to the warm target (after a replacement's back-off ended). New instances start unready when <paramref name="unready"/>.</summary>
    public void Replenish(bool unready)
    {
        lock (_lock)
        {
            if (CreationBlocked)
            {
                return;
            }
        }

        ReplenishCore(unready);
    }

    /// <summary>Creates the minimum instances; with <c>min_instances = 0</c> creates and discards one to prove the module links.</summary>
    internal void WarmUp()
    {
        if (Settings.MinInstances == 0)
        {
            using var probe = CreateSandbox(null);
            return;
        }

        for (var i = 0; i < Settings.MinInstances; i++)
        {
            if (!TryReserve())
            {
                throw new InstanceLimitException(_runtime.Budget.Limit);
            }

            var slot = CreateSlotOrRelease();
            slot.MarkIdle();
            lock (_lock)
            {
                _idle.Enqueue(slot);
            }
        }
    }

    /// <summary>
    /// Admits a request before its body is read: a pool that is draining refuses new requests but serves every one
    /// admitted before, so a request routed here just before an update is never dropped. Pair with
    /// <see cref="InvokeEnteredAsync"/> (which leaves) or <see cref="Leave"/>.
    /// </summary>
    /// <returns>False when the pool no longer takes requests (route the request again).</returns>
    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            _entered++;
            return true;
        }
    }

    /// <summary>Gives back an admission from <see cref="TryEnter"/> without running a request.</summary>
    public void Leave()
    {
        lock (_lock)
        {
            _entered--;
            SignalDrainedIfIdle();
        }
    }

    /// <summary>Runs one WAGI request on a free instance.</summary>
    public ValueTask<InvocationResult> InvokeAsync(WagiRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return TryEnter()
            ? InvokeEnteredAsync(request, cancellationToken)
            : new ValueTask<InvocationResult>(Fail(InvocationOutcome.Unavailable, "the deployment is shutting down"));
    }

    /// <summary>Runs a request admitted by <see cref="TryEnter"/>, and leaves when it is done.</summary>
    public ValueTask<InvocationResult> InvokeEnteredAsync(WagiRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ValueTask<InvocationResult> pending;
        try
        {
            pending = InvokeCore(request, cancellationToken);
        }
        catch
        {
            Leave();
            throw;
        }

        if (pending.IsCompleted)
        {
            Leave();
            return pending;
        }

        return LeaveAfter(pending);
    }

    private async ValueTask<InvocationResult> LeaveAfter(ValueTask<InvocationResult> pending)
    {
        try
        {
            return await pending.ConfigureAwait(false);
        }
        finally
        {
            Leave();
        }
    }

    private ValueTask<InvocationResult> InvokeCore(WagiRequest request, CancellationToken cancellationToken)
    {
        var slot = TryAcquireFast(out var mustCreate);
        if (slot is not null)
        {
            return new ValueTask<InvocationResult>(RunAndRelease(slot, request, coldStart: false));
        }

        if (mustCreate)
        {
            Slot created;
            try
            {
                created = CreateSlotOrRelease();
            }
            catch (Exception ex) when (ex is WasmtimeException or InstanceLimitException)
            {
                lock (_lock)
                {
                    _busy--;
                }

                return new ValueTask<InvocationResult>(Fail(InvocationOutcome.Unavailable, "could not create an instance: " + ex.Message.Trim()));
            }

            Interlocked.Increment(ref _coldStarts);
            return new ValueTask<InvocationResult>(RunAndRelease(created, request, coldStart: true));
        }

        return WaitAndInvokeAsync(request, cancellationToken);
    }

    private async ValueTask<InvocationResult> WaitAndInvokeAsync(WagiRequest request, CancellationToken cancellationToken)
    {
        TaskCompletionSource<Slot?> waiter;
        LinkedListNode<TaskCompletionSource<Slot?>> node;
        lock (_lock)
        {
            if (_stopped)
            {
                return Fail(InvocationOutcome.Unavailable, "the deployment is shutting down");
            }

            if (_idle.TryDequeue(out var ready))
            {
                ready.MarkBusy(_runtime.TimeProvider);
                _busy++;
                return RunAndRelease(ready, request, coldStart: false);
            }

            if (CreationBlocked && _live - _unready.Count <= 0)
            {
                // Crash-loop back-off and no instance that could serve: answer now rather than queue.
                return Fail(InvocationOutcome.Unavailable, $"the deployment is in crash-loop back-off (its instances keep failing their liveness probe); the next instance starts at {_creationBlockedUntil:O}");
            }

            if (_waiters.Count >= Settings.QueueLimit)
            {
                Interlocked.Increment(ref _rejected);
                return Fail(InvocationOutcome.Overloaded, $"all {Settings.MaxInstances} instances are busy and {Settings.QueueLimit} requests are already waiting");
            }

            waiter = new TaskCompletionSource<Slot?>(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }

        Slot? slot;
        try
        {
            slot = await waiter.Task.WaitAsync(Settings.QueueTimeout, _runtime.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_lock)
            {
                if (node.List is not null)
                {
                    _waiters.Remove(node);
                }
            }

            // A slot may have been handed over just as the wait ended: give it back.
            if (waiter.Task.IsCompletedSuccessfully && waiter.Task.Result is { } late)
            {
                Release(late, poisoned: false);
            }

            Interlocked.Increment(ref _rejected);
            if (ex is OperationCanceledException)
            {
                throw;
            }

            return Fail(InvocationOutcome.Overloaded, $"no instance became free within {Settings.QueueTimeout.TotalSeconds:0.###} s (all {Settings.MaxInstances} busy)");
        }

        if (slot is null)
        {
            return Fail(InvocationOutcome.Unavailable, "the deployment is shutting down");
        }

        return RunAndRelease(slot, request, coldStart: false);
    }

    private Slot? TryAcquireFast(out bool mustCreate)
    {
        lock (_lock)
        {
            mustCreate = false;
            if (_stopped)
            {
                return null;
            }

            if (_idle.TryDequeue(out var slot))
            {
                slot.MarkBusy(_runtime.TimeProvider);
                _busy++;
                return slot;
            }

            if (_live < Settings.MaxInstances && !CreationBlocked && _runtime.Budget.TryAcquire())
            {
                _live++;
                _busy++;
                mustCreate = true;
            }

            return null;
        }
    }

    private bool TryReserve()
    {
        lock (_lock)
        {
            if (_live >= Settings.MaxInstances || !_runtime.Budget.TryAcquire())
            {
                return false;
            }

            _live++;
            return true;
        }
    }

    private void Unreserve()
    {
        lock (_lock)
        {
            _live--;
            SignalDrainedIfIdle();
        }

        _runtime.Budget.Release();
    }

    /// <summary>Creates a slot for a reservation already taken; on failure gives the reservation back and rethrows.</summary>
    private Slot CreateSlotOrRelease()
    {
        try
        {
            var id = Settings.Deployment + "-" + Interlocked.Increment(ref _nextId).ToString("x4", System.Globalization.CultureInfo.InvariantCulture);
            var slot = new Slot(id, this, _runtime.TimeProvider.GetUtcNow());
            slot.Sandbox = CreateSandbox(null);
            lock (_lock)
            {
                _slots[id] = slot;
            }

            return slot;
        }
        catch
        {
            Unreserve();
            throw;
        }
    }

    private Sandbox CreateSandbox(GuestContext? reuse)
    {
        var context = reuse ?? new GuestContext { MaxStderrBytes = _runtime.Options.MaxStderrBytesPerRequest, Time = _runtime.TimeProvider };
        context.Memory = null;
        var store = new Store(_runtime.Engine.Engine, context);
        try
        {
            store.SetLimits(memorySize: Settings.MemoryLimitBytes, tableElements: 100_000, instances: 4, tables: 4, memories: 2);
            store.SetEpochDeadline(_deadlineTicks);
            var instance = _runtime.Linker.Instantiate(store, Module.Module);
            context.Memory = instance.GetMemory("memory");
            var start = instance.GetAction("_start") ?? throw new WasmValidationException("the module does not export _start");
            return new Sandbox(store, context, start);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private InvocationResult RunAndRelease(Slot slot, WagiRequest request, bool coldStart)
    {
        var result = Run(slot, request, coldStart, countRequest: true);
        Release(slot, result.Fault?.PoisonsInstance ?? false);
        return result;
    }

    private InvocationResult Run(Slot slot, WagiRequest request, bool coldStart, bool countRequest, TimeSpan? timeout = null)
    {
        if (countRequest)
        {
            Interlocked.Increment(ref _requests);
        }

        using var span = WarpGridTelemetry.StartGuest(_guestSpanName, Settings.Deployment, slot.Id, coldStart);
        var sandbox = slot.Sandbox!;
        var context = sandbox.Context;
        InvocationFault? fault = null;
        CgiResponse? response = null;
        context.Begin(request.Body, _runtime.Options.MaxResponseBytes);
        context.LogSink = _logSink;
        context.RecordSink = Settings.Logging ? _recordSink : null;
        context.LogState = slot;
        request.ApplyTo(context, Settings.Environment);
        context.AddEnvironment("WARPGRID_INSTANCE_ID", slot.Id);
        if (span is not null)
        {
            context.AddEnvironment("HTTP_TRACEPARENT", span.Id!);
        }

        var started = Stopwatch.GetTimestamp();
        context.DeadlineTimestamp = started + (timeout is { } shorter ? (long)(shorter.TotalSeconds * Stopwatch.Frequency) : _deadlineStopwatchTicks);
        sandbox.Store.SetEpochDeadline(timeout is { } limit ? _runtime.Engine.TicksFor(limit) : _deadlineTicks);
        try
        {
            sandbox.Start();
        }
        catch (WasmtimeException ex)
        {
            fault = Classify(ex, context);
        }
        finally
        {
            context.End();
            Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - started);
            slot.LastMemoryBytes = context.Memory?.GetLength() ?? 0;
        }

        if (fault is null && context.Stdout.Overflowed)
        {
            fault = new InvocationFault(InvocationOutcome.ResponseTooLarge, $"the guest wrote more than {_runtime.Options.MaxResponseBytes} bytes to stdout (WarpGrid:Runtime:MaxResponseBytes)");
        }

        if (fault is null)
        {
            var buffer = context.Stdout.Detach(out var length);
            response = CgiResponse.TryParse(buffer, length, out var error);
            if (response is null)
            {
                fault = new InvocationFault(InvocationOutcome.BadResponse, error!);
            }
        }

        if (fault is not null && countRequest)
        {
            Interlocked.Increment(ref _faults);
            Log.InvocationFailed(_logger, Settings.Deployment, slot.Id, fault.Code, fault.Message);
        }

        span?.SetTag("warpgrid.outcome", fault?.Code ?? "ok");
        return new InvocationResult(response, fault, slot.Id, coldStart);
    }

    private InvocationFault? Classify(WasmtimeException exception, GuestContext context)
    {
        if (exception.InnerException is GuestTrapException hostTrap)
        {
            return new InvocationFault(InvocationOutcome.Trap, "the guest trapped: " + hostTrap.Message);
        }

        if (exception.InnerException is GuestExitException || context.ExitCode is not null)
        {
            var code = context.ExitCode ?? ((GuestExitException)exception.InnerException!).ExitCode;
            return code == 0 ? null : new InvocationFault(InvocationOutcome.Exit, $"the guest exited with code {code}", ExitCode: code);
        }

        if (exception is TrapException trap)
        {
            switch (trap.Type)
            {
                case TrapCode.Interrupt:
                    return new InvocationFault(InvocationOutcome.Timeout, $"the guest ran past the request timeout of {Settings.RequestTimeout.TotalSeconds:0.###} s and was interrupted", trap.Type);
                case TrapCode.StackOverflow:
                    return new InvocationFault(InvocationOutcome.StackOverflow, "the guest overflowed its stack (unbounded recursion?)", trap.Type);
            }

            var memory = context.Memory?.GetLength() ?? 0;
            var margin = Math.Max(Settings.MemoryLimitBytes / 8, 2L << 20);
            if (memory + margin >= Settings.MemoryLimitBytes)
            {
                return new InvocationFault(InvocationOutcome.OutOfMemory, $"the guest ran out of memory: it trapped ({Describe(trap.Type)}) with {memory} bytes in use against its memory_limit of {Settings.MemoryLimitBytes} bytes", trap.Type);
            }

            return new InvocationFault(InvocationOutcome.Trap, "the guest trapped: " + Describe(trap.Type), trap.Type);
        }

        var message = exception.InnerException?.Message ?? FirstLine(exception.Message);
        return new InvocationFault(InvocationOutcome.HostError, "a host call failed: " + message);
    }

    private static string Describe(TrapCode code) => code switch
    {
        TrapCode.Unreachable => "unreachable instruction executed (abort or panic)",
        TrapCode.MemoryOutOfBounds => "out-of-bounds memory access",
        TrapCode.IntegerDivisionByZero => "integer division by zero",
        TrapCode.IntegerOverflow => "integer overflow",
        TrapCode.IndirectCallToNull => "indirect call to a null table entry",
        TrapCode.BadSignature => "indirect call signature mismatch",
        TrapCode.TableOutOfBounds => "out-of-bounds table access",
        TrapCode.BadConversionToInteger => "invalid float to integer conversion",
        _ => code.ToString(),
    };

    private static string FirstLine(string text)
    {
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        return (newline < 0 ? text : text[..newline]).Trim();
    }

    /// <summary>Returns a slot after a request: recycled into a fresh sandbox, or discarded and replaced when poisoned.</summary>
    private void Release(Slot slot, bool poisoned)
    {
        var old = slot.Sandbox;
        slot.Sandbox = null;
        old?.Dispose();
        var context = old?.Context;

        bool stopped;
        lock (_lock)
        {
            stopped = _stopped;
        }

        if (poisoned || stopped)
        {
            Retire(slot);
            if (poisoned)
            {
                Interlocked.Increment(ref _replaced);
                Replenish();
            }

            return;
        }

        try
        {
            slot.Sandbox = CreateSandbox(context);
        }
        catch (WasmtimeException ex)
        {
            Log.RecycleFailed(_logger, Settings.Deployment, slot.Id, ex);
            Retire(slot);
            return;
        }

        Handoff(slot);
    }

    private void Handoff(Slot slot)
    {
        while (true)
        {
            TaskCompletionSource<Slot?>? waiter = null;
            lock (_lock)
            {
                _busy--;
                if (_stopped)
                {
                    _busy++;
                    waiter = null;
                }
                else if (!slot.Ready)
                {
                    slot.MarkUnready();
                    _unready.Add(slot);
                    SignalDrainedIfIdle();
                    return;
                }
                else if (_waiters.First is { } first)
                {
                    _waiters.RemoveFirst();
                    waiter = first.Value;
                    slot.MarkBusy(_runtime.TimeProvider);
                    _busy++;
                }
                else
                {
                    slot.MarkIdle();
                    _idle.Enqueue(slot);
                    SignalDrainedIfIdle();
                    return;
                }
            }

            if (waiter is null)
            {
                var sandbox = slot.Sandbox;
                slot.Sandbox = null;
                sandbox?.Dispose();
                Retire(slot);
                return;
            }

            if (waiter.TrySetResult(slot))
            {
                return;
            }
        }
    }

    private void Retire(Slot slot)
    {
        slot.MarkRetired();
        lock (_lock)
        {
            _slots.Remove(slot.Id);
            _busy--;
        }

        Unreserve();
    }

    /// <summary>Brings the pool back to its minimum (or warm target) after an instance was discarded.</summary>
    private void Replenish() => ReplenishCore(unready: false);

    private void ReplenishCore(bool unready)
    {
        while (true)
        {
            lock (_lock)
            {
                if (_closed || _live >= Math.Max(Settings.MinInstances, _warmTarget) || CreationBlocked)
                {
                    return;
                }
            }

            if (!TryReserve())
            {
                return;
            }

            try
            {
                var slot = CreateSlotOrRelease();
                slot.Ready = !unready;
                lock (_lock)
                {
                    _busy++;
                }

                Handoff(slot);
            }
            catch (WasmtimeException ex)
            {
                Log.RecycleFailed(_logger, Settings.Deployment, "(new)", ex);
                return;
            }
        }
    }

    private string _guestSpanName => _guestSpanNameField ??= WarpGridTelemetry.GuestSpanName(Settings.Deployment);

    private string? _guestSpanNameField;

    private readonly GuestLogSink _logSink = static (state, line) =>
    {
        var slot = (Slot)state!;
        var pool = slot.Pool;
        var text = Encoding.UTF8.GetString(line);
        pool._runtime.Logs.Append(pool.Settings.Deployment, pool.Settings.Version, slot.Id, GuestLogStream.Stderr, text);
        if (pool._guestLogger.IsEnabled(LogLevel.Information))
        {
            Log.GuestOutput(pool._guestLogger, pool.Settings.Deployment, pool.Settings.Version, slot.Id, text);
        }
    };

    private readonly GuestRecordSink _recordSink = static (state, level, context, message) =>
    {
        var slot = (Slot)state!;
        var pool = slot.Pool;
        var text = Encoding.UTF8.GetString(message);
        var contextText = context.IsEmpty ? null : Encoding.UTF8.GetString(context);
        var guestLevel = (GuestLogLevel)level;
        pool._runtime.Logs.Append(pool.Settings.Deployment, pool.Settings.Version, slot.Id, GuestLogStream.Log, text, guestLevel, contextText);
        var logLevel = ToLogLevel(guestLevel);
        if (pool._guestLogger.IsEnabled(logLevel))
        {
            Log.GuestRecord(pool._guestLogger, logLevel, pool.Settings.Deployment, pool.Settings.Version, slot.Id, contextText ?? "", text);
        }
    };

    /// <summary>Maps a wasi:logging level to the .NET log level the node's own log uses for it.</summary>
    internal static LogLevel ToLogLevel(GuestLogLevel level) => level switch
    {
        GuestLogLevel.Trace => LogLevel.Trace,
        GuestLogLevel.Debug => LogLevel.Debug,
        GuestLogLevel.Info => LogLevel.Information,
        GuestLogLevel.Warn => LogLevel.Warning,
        GuestLogLevel.Error => LogLevel.Error,
        _ => LogLevel.Critical,
    };

    private static InvocationResult Fail(InvocationOutcome outcome, string message) => new(null, new InvocationFault(outcome, message), null, false);

    private void SignalDrainedIfIdle()
    {
        if (_closed && _entered <= 0)
        {
            _drained?.TrySetResult();
        }
    }

    /// <summary>
    /// Stops admitting requests, lets every admitted request finish (queued ones included, up to
    /// <paramref name="timeout"/>), then releases every instance. Requests still waiting after the timeout get
    /// <see cref="InvocationOutcome.Unavailable"/>.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        Task drained;
        lock (_lock)
        {
            _closed = true;
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            SignalDrainedIfIdle();
            drained = _drained.Task;
        }

        try
        {
            await drained.WaitAsync(timeout, _runtime.TimeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log.DrainTimedOut(_logger, Settings.Deployment, timeout.TotalSeconds);
        }

        Stop();
    }

    private void Stop()
    {
        List<TaskCompletionSource<Slot?>> waiters;
        lock (_lock)
        {
            _closed = true;
            _stopped = true;
            waiters = [.. _waiters];
            _waiters.Clear();
        }

        foreach (var waiter in waiters)
        {
            waiter.TrySetResult(null);
        }

        DisposeIdle();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(DrainAsync(TimeSpan.FromSeconds(30)));

    internal void DisposeNow() => Stop();

    private void DisposeIdle()
    {
        List<Slot> idle;
        lock (_lock)
        {
            idle = [.. _idle, .. _unready];
            _idle.Clear();
            _unready.Clear();
        }

        foreach (var slot in idle)
        {
            var sandbox = slot.Sandbox;
            slot.Sandbox = null;
            sandbox?.Dispose();
            slot.MarkRetired();
            lock (_lock)
            {
                _slots.Remove(slot.Id);
                _live--;
            }

            _runtime.Budget.Release();
        }
    }

    private sealed class Sandbox(Store store, GuestContext context, Action start) : IDisposable
    {
        public Store Store { get; } = store;

        public GuestContext Context { get; } = context;

        public Action Start { get; } = start;

        public void Dispose() => Store.Dispose();
    }

    private sealed class Slot(string id, InstancePool pool, DateTimeOffset createdAt)
    {
        private long _requests;
        private DateTimeOffset? _lastUsed;
        private InstanceState _state = InstanceState.Busy;

        public string Id { get; } = id;

        public InstancePool Pool { get; } = pool;

        public Sandbox? Sandbox { get; set; }

        public bool Ready { get; set; } = true;

        public long LastMemoryBytes { get; set; }

        public InstanceState State => _state;

        public void MarkProbing() => _state = InstanceState.Busy;

        public void MarkUnready() => _state = InstanceState.Unready;

        public void MarkBusy(TimeProvider time)
        {
            _state = InstanceState.Busy;
            _lastUsed = time.GetUtcNow();
            _requests++;
        }

        public void MarkIdle() => _state = InstanceState.Idle;

        public void MarkRetired() => _state = InstanceState.Retired;

        public InstanceInfo Info() => new(Id, _state, createdAt, _lastUsed, _requests);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Request to {Deployment} on instance {Instance} failed ({Outcome}): {Reason}")]
        public static partial void InvocationFailed(ILogger logger, string deployment, string instance, string outcome, string reason);

        [LoggerMessage(EventId = 21, Level = LogLevel.Error, Message = "Could not recycle instance {Instance} of {Deployment}")]
        public static partial void RecycleFailed(ILogger logger, string deployment, string instance, Exception exception);

        [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "Draining {Deployment} timed out after {Seconds} s; releasing instances still busy when they finish")]
        public static partial void DrainTimedOut(ILogger logger, string deployment, double seconds);

        [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "{Deployment}@{Version} {Instance}: {Line}")]
        public static partial void GuestOutput(ILogger logger, string deployment, string version, string instance, string line);

        [LoggerMessage(EventId = 24, Message = "{Deployment}@{Version} {Instance} [{Context}]: {Line}")]
        public static partial void GuestRecord(ILogger logger, LogLevel level, string deployment, string version, string instance, string context, string line);
    }
}
