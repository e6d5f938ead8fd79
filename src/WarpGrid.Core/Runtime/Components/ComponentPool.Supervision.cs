using System.Diagnostics;
using System.Globalization;
using WarpGrid.Core.Runtime.Pooling;

namespace WarpGrid.Core.Runtime.Components;

/// <summary>The result of a health probe of a component deployment.</summary>
/// <param name="Fault">Why the probe request failed, or null.</param>
/// <param name="Status">The status the guest answered (0 when it set none).</param>
/// <param name="GuestError">The error code the guest set instead of a response, if it did.</param>
/// <param name="Elapsed">How long the probe took.</param>
public sealed record ComponentProbeResult(InvocationFault? Fault, int Status, string? GuestError, TimeSpan Elapsed);

/// <summary>
/// What the supervisor controls in a component pool. A component instance serves exactly one request, so the
/// Kubernetes notions map to the deployment (revision) on this node rather than to an instance: readiness takes the
/// whole revision out of routing (requests get 503 at once), liveness recycles every pre-instantiated instance, a
/// crash loop blocks instantiation, and the autoscaler sizes the warm pool of pre-instantiated instances (zero with
/// <c>min_instances = 0</c>: the compiled component stays cached and the next request instantiates on demand).
/// </summary>
public sealed partial class ComponentHttpPool : ISupervisedPool
{
    private readonly Lock _supervision = new();
    private DateTimeOffset? _creationBlockedUntil;
    private volatile string? _unreadyReason;
    private int _warmTarget = -1;
    private long _busyTicks;
    private int _faultStreak;
    private int _probing;
    private string? _lastFault;

    /// <inheritdoc />
    public long BusyTicks => Interlocked.Read(ref _busyTicks);

    /// <inheritdoc />
    public DateTimeOffset? CreationBlockedUntil
    {
        get
        {
            lock (_supervision)
            {
                return _creationBlockedUntil;
            }
        }

        set
        {
            lock (_supervision)
            {
                _creationBlockedUntil = value;
            }
        }
    }

    /// <summary>Null while the revision is in routing; otherwise why it is not (its readiness probe failed).</summary>
    public string? UnreadyReason => _unreadyReason;

    /// <summary>Requests that failed in a row (any fault but overload or shutdown); a success resets it.</summary>
    public int FaultStreak => Volatile.Read(ref _faultStreak);

    /// <summary>The last request fault, as code and message.</summary>
    public string? LastFault => Volatile.Read(ref _lastFault);

    /// <summary>Pre-instantiated instances the pool keeps ready: the autoscaler's target, else <c>min_instances</c> (at least one).</summary>
    public int WarmTarget => Volatile.Read(ref _warmTarget) is >= 0 and var target ? target : Math.Max(1, Settings.MinInstances);

    private bool CreationBlocked
    {
        get
        {
            lock (_supervision)
            {
                return _creationBlockedUntil is { } until && _runtime.TimeProvider.GetUtcNow() < until;
            }
        }
    }

    /// <summary>Puts the revision in routing (<paramref name="reason"/> null) or takes it out: requests then get 503 with the reason.</summary>
    public void SetRouting(string? reason) => _unreadyReason = reason;

    /// <summary>Starts a new fault streak (after the supervisor acted on one).</summary>
    public void ResetFaultStreak() => Volatile.Write(ref _faultStreak, 0);

    /// <inheritdoc />
    /// <remarks>
    /// Releases ready instances above the target at once (none is busy: a busy instance is never in the ready queue)
    /// and instantiates missing ones unless instantiation is blocked. Returns ready plus busy instances.
    /// </remarks>
    public int SetWarmTarget(int target)
    {
        target = Math.Clamp(target, Settings.MinInstances, Settings.MaxInstances);
        Volatile.Write(ref _warmTarget, target);
        while (Volatile.Read(ref _readyOrPending) > target && _ready.TryDequeue(out var extra))
        {
            Interlocked.Decrement(ref _readyOrPending);
            extra.Dispose();
        }

        Refill();
        return Stats.Live;
    }

    /// <summary>Instantiates up to the warm target, unless instantiation is blocked (crash-loop back-off).</summary>
    public void Refill()
    {
        if (!CreationBlocked)
        {
            Replenish();
        }
    }

    /// <summary>
    /// Drops every pre-instantiated instance (a liveness failure: they were all created from the same component and
    /// state), then refills unless instantiation is blocked. Requests in flight finish on their own instances.
    /// Returns how many were dropped.
    /// </summary>
    public int RecycleReady()
    {
        var dropped = 0;
        while (_ready.TryDequeue(out var sandbox))
        {
            Interlocked.Decrement(ref _readyOrPending);
            sandbox.Dispose();
            dropped++;
        }

        Interlocked.Add(ref _replaced, dropped);
        Refill();
        return dropped;
    }

    /// <summary>
    /// Sends one health probe: a real <c>wasi:http</c> <c>GET</c> of <paramref name="pathWithQuery"/> on a fresh
    /// instance, through a free slot (like a request, not counted as one). Returns null when every slot is busy or no
    /// instance may be created now (probed next round). Runs the guest on the calling thread: the supervisor calls it
    /// off its tick (see <see cref="Health.DeploymentSupervisor"/>).
    /// </summary>
    /// <param name="pathWithQuery">The probe's path.</param>
    /// <param name="timeout">
    /// The probe's own timeout (<c>[health] timeout</c>): the guest is interrupted then (a <see cref="InvocationOutcome.Timeout"/>
    /// fault) when it is shorter than the request timeout. Null: the request timeout.
    /// </param>
    public ComponentProbeResult? Probe(string pathWithQuery, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(pathWithQuery);
        if (timeout is { } t && t <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "the probe timeout must be positive");
        }

        if (_closed || !_slots.Wait(0))
        {
            return null;
        }

        Interlocked.Increment(ref _busy);
        Interlocked.Increment(ref _probing);
        try
        {
            if (_ready.IsEmpty && CreationBlocked)
            {
                return null;
            }

            var started = Stopwatch.GetTimestamp();
            var exchange = new ProbeExchange(pathWithQuery);
            var result = Run(exchange, probe: true, timeout);
            return new ComponentProbeResult(result.Fault, exchange.Status, result.GuestError, Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            Interlocked.Decrement(ref _probing);
            Interlocked.Decrement(ref _busy);
            _slots.Release();
        }
    }

    /// <inheritdoc />
    public int ProbesInFlight => Volatile.Read(ref _probing);

    /// <summary>Why a request is refused before it runs, or null.</summary>
    private string? Refusal()
    {
        if (_unreadyReason is { } reason)
        {
            return "the deployment is out of routing on this node: its readiness probe failed (" + reason + ")";
        }

        if (_ready.IsEmpty && CreationBlocked)
        {
            return "the deployment is in crash-loop back-off (" + (LastFault ?? "its instances keep failing") + "); the next instance starts at "
                + CreationBlockedUntil?.ToString("O", CultureInfo.InvariantCulture);
        }

        return null;
    }

    private void NoteOutcome(InvocationFault? fault)
    {
        if (fault is null)
        {
            if (Volatile.Read(ref _faultStreak) != 0)
            {
                Volatile.Write(ref _faultStreak, 0);
            }

            return;
        }

        if (fault.Outcome is InvocationOutcome.Overloaded || (fault.Outcome is InvocationOutcome.Unavailable && _closed))
        {
            return;
        }

        Volatile.Write(ref _lastFault, fault.Code + ": " + fault.Message);
        Interlocked.Increment(ref _faultStreak);
    }

    /// <summary>A probe request: <c>GET</c> with the probe's user agent, no body; the response is read for its status only.</summary>
    private sealed class ProbeExchange(string pathWithQuery) : IComponentHttpExchange
    {
        private static readonly KeyValuePair<string, string>[] Headers = [new("user-agent", "warpgrid-probe/1"), new("host", "localhost")];

        public string Method => "GET";

        public string PathWithQuery => pathWithQuery;

        public string Scheme => "http";

        public string? Authority => "localhost";

        public IEnumerable<KeyValuePair<string, string>> RequestHeaders => Headers;

        public Stream RequestBody => Stream.Null;

        public bool ResponseStarted { get; private set; }

        public int Status { get; private set; }

        public void StartResponse(int status, IReadOnlyList<KeyValuePair<string, string>> headers)
        {
            Status = status;
            ResponseStarted = true;
        }

        public void WriteResponseBody(ReadOnlySpan<byte> bytes)
        {
        }

        public void FlushResponseBody()
        {
        }
    }
}
