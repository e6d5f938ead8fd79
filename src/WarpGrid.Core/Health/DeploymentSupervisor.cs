using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;
using WarpGrid.Core.Scaling;

namespace WarpGrid.Core.Health;

/// <summary>Where a deployment is in its health life.</summary>
public enum DeploymentHealthState
{
    /// <summary>No probe configured.</summary>
    Unchecked,

    /// <summary>Probes pass (or have not failed).</summary>
    Healthy,

    /// <summary>Some instances are out of rotation or were replaced recently.</summary>
    Degraded,

    /// <summary>Instances keep failing: replacements wait for an exponential back-off (see <see cref="DeploymentHealthStatus.NextRetryAt"/>).</summary>
    CrashLoopBackOff,
}

/// <summary>Health of a deployment, for the API.</summary>
public sealed record DeploymentHealthStatus(
    DeploymentHealthState State,
    int ReadyInstances,
    int UnreadyInstances,
    long Restarts,
    int ConsecutiveRestarts,
    string? LastError,
    DateTimeOffset? LastRestartAt,
    DateTimeOffset? NextRetryAt);

/// <summary>The autoscaler's view of a deployment, for the API.</summary>
public sealed record DeploymentScalingStatus(string Metric, double Value, double TargetValue, int DesiredInstances, int LiveInstances, DateTimeOffset? LastScaleAt);

/// <summary>
/// Keeps a node's deployments healthy and sized. On every tick it probes each deployment's idle instances when its
/// <c>[health]</c> interval is due (an HTTP GET through the instance's own slot; see <see cref="ProbeTracker"/>),
/// replaces instances that fail liveness with an exponential back-off (<see cref="RestartBackoff"/>), and, every
/// <see cref="SupervisorOptions.ScalingInterval"/>, samples the scaling metric and sets the pool's warm instance
/// count (<see cref="ScalingRecommender"/>). Time comes from the runtime's <see cref="TimeProvider"/>.
/// A <c>wasi:http</c> component deployment gets the same controller at the level of its revision (an instance serves
/// one request only): a probe is a real request on a fresh instance, readiness takes the revision out of routing,
/// liveness and <see cref="SupervisorOptions.CrashLoopFaults"/> failed requests in a row recycle its pre-instantiated
/// instances with the same back-off, and the autoscaler sizes its warm pool (see docs/operations.md).
/// </summary>
public sealed partial class DeploymentSupervisor
{
    private readonly DeploymentRegistry _registry;
    private readonly WasmNodeRuntime _runtime;
    private readonly SupervisorOptions _options;
    private readonly Dictionary<string, IScalingMetricSource> _sources;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Supervised> _states = new(StringComparer.Ordinal);

    /// <summary>Creates a supervisor.</summary>
    public DeploymentSupervisor(DeploymentRegistry registry, WasmNodeRuntime runtime, SupervisorOptions options, IEnumerable<IScalingMetricSource>? sources = null, ILogger<DeploymentSupervisor>? logger = null, WarpGridMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(options);
        _registry = registry;
        _runtime = runtime;
        _options = options;
        _sources = new Dictionary<string, IScalingMetricSource>(StringComparer.Ordinal);
        foreach (var source in (IEnumerable<IScalingMetricSource>?)sources ?? [])
        {
            _sources.TryAdd(source.Name, source);
        }

        _sources.TryAdd("request_concurrency", new RequestConcurrencyMetricSource());
        _sources.TryAdd("cpu", new CpuMetricSource());
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        metrics?.Meter.CreateObservableUpDownCounter("warpgrid.autoscaler.desired_instances", ObserveDesired, unit: "{instance}", description: "Instances the autoscaler wants for a deployment.");
        metrics?.Meter.CreateObservableCounter("warpgrid.instance.restarts", ObserveRestarts, unit: "{instance}", description: "Instances replaced after failing liveness probes.");
    }

    private TimeProvider Time => _runtime.TimeProvider;

    /// <summary>The health of a deployment, or null when it is not running here.</summary>
    public DeploymentHealthStatus? GetHealth(string name)
    {
        var active = _registry.Get(name);
        if (!_states.TryGetValue(name, out var state) || (active?.Pool ?? (ISupervisedPool?)active?.Components) is not { } pool)
        {
            return null;
        }

        lock (state)
        {
            var now = Time.GetUtcNow();
            int ready, unready;
            if (pool is InstancePool instances)
            {
                unready = instances.UnreadyCount;
                ready = Math.Max(0, instances.Stats.Live - unready);
            }
            else
            {
                // A component revision is in routing or not as a whole; its warm instances are what is ready.
                var components = (ComponentHttpPool)pool;
                var warm = components.Stats.Idle;
                var outOfRouting = components.UnreadyReason is not null;
                ready = outOfRouting ? 0 : warm;
                unready = outOfRouting ? Math.Max(1, warm) : 0;
            }

            var kind = state.Backoff.InBackoff(now) ? DeploymentHealthState.CrashLoopBackOff
                : unready > 0 || state.Backoff.Consecutive > 0 ? DeploymentHealthState.Degraded
                : state.Health is null ? DeploymentHealthState.Unchecked
                : DeploymentHealthState.Healthy;
            return new DeploymentHealthStatus(kind, ready, unready, state.Backoff.Total, state.Backoff.Consecutive, state.Backoff.LastError, state.Backoff.LastRestartAt, state.Backoff.NextRetryAt);
        }
    }

    /// <summary>The autoscaler's state for a deployment, or null.</summary>
    public DeploymentScalingStatus? GetScaling(string name)
    {
        if (!_states.TryGetValue(name, out var state) || state.Recommender is not { } recommender)
        {
            return null;
        }

        var pool = state.Pool;

        lock (state)
        {
            var policy = state.Policy!;
            var metric = policy.Metric == ScalingMetric.Custom ? policy.CustomMetric! : ManifestNames.ToToml(policy.Metric);
            return new DeploymentScalingStatus(metric, Math.Round(recommender.LastValue, 3), policy.TargetValue, recommender.Desired, pool.Stats.Live, recommender.LastChangeAt);
        }
    }

    /// <summary>Runs ticks until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.Tick, Time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                try
                {
                    await TickAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.TickFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pass over every deployment: due probes, due restarts, due scaling decisions.</summary>
    public async Task TickAsync(CancellationToken cancellationToken = default)
    {
        var now = Time.GetUtcNow();
        var active = _registry.Active;
        foreach (var name in _states.Keys)
        {
            if (!active.ContainsKey(name))
            {
                _states.TryRemove(name, out _);
            }
        }

        foreach (var deployment in active.Values)
        {
            if ((deployment.Pool ?? (ISupervisedPool?)deployment.Components) is not { } pool)
            {
                continue;
            }

            var state = _states.AddOrUpdate(
                deployment.Name,
                _ => new Supervised(pool, deployment.Manifest, _options, now),
                (_, existing) => ReferenceEquals(existing.Pool, pool) ? existing : new Supervised(pool, deployment.Manifest, _options, now));
            Supervise(deployment, state, now);
            await ScaleAsync(deployment, state, now, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Supervise(ActiveDeployment deployment, Supervised state, DateTimeOffset now)
    {
        if (state.Pool is ComponentHttpPool components)
        {
            SuperviseComponents(deployment, state, components, now);
            return;
        }

        var pool = (InstancePool)state.Pool;
        lock (state)
        {
            var wasInBackoff = state.Backoff.NextRetryAt is not null;
            state.Backoff.ObserveStable(now);
            if (wasInBackoff && state.Backoff.NextRetryAt is null)
            {
                pool.CreationBlockedUntil = null;
                pool.Replenish(unready: state.Health is not null);
            }

            if (state.Health is not { } health || now < state.NextProbeAt)
            {
                return;
            }

            // Probes run guests for up to their timeout: off the tick (see SuperviseComponents), one round per
            // deployment in flight at most.
            state.NextProbeAt = now + health.Interval;
            StartProbeRound(state, deployment.Name, () => ProbeInstances(deployment, state, pool, health));
        }
    }

    private void ProbeInstances(ActiveDeployment deployment, Supervised state, InstancePool pool, HealthSection health)
    {
        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var instance in pool.ProbeCandidates())
        {
            live.Add(instance);
            ProbeOne(deployment, state, health, instance);
        }

        lock (state)
        {
            foreach (var id in state.Trackers.Keys.Where(id => !live.Contains(id) && pool.Instances().All(i => i.Id != id)).ToList())
            {
                state.Trackers.Remove(id);
            }
        }
    }

    private void ProbeOne(ActiveDeployment deployment, Supervised state, HealthSection health, string instance)
    {
        var pool = (InstancePool)state.Pool;
        ProbeTracker tracker;
        lock (state)
        {
            if (!state.Trackers.TryGetValue(instance, out tracker!))
            {
                tracker = new ProbeTracker(ready: !pool.Instances().Any(i => i.Id == instance && i.State == InstanceState.Unready));
                state.Trackers[instance] = tracker;
            }
        }

        string? failure = null;
        var separateReadiness = health.ReadinessEndpoint is not null;
        var started = Stopwatch.GetTimestamp();
        var result = pool.Probe(instance, ProbeRequest(deployment, health.Endpoint), r =>
        {
            var passed = Passed(r, health, health.Endpoint, started, out failure);
            lock (state)
            {
                return separateReadiness ? tracker.RecordLiveness(health, passed) : tracker.Record(health, passed);
            }
        }, health.Timeout);

        if (result is null)
        {
            return; // busy or gone: probed next round
        }

        result.Value.Dispose();
        if (separateReadiness && tracker.LivenessFailures == 0)
        {
            var readinessStarted = Stopwatch.GetTimestamp();
            var readiness = pool.Probe(instance, ProbeRequest(deployment, health.ReadinessEndpoint!), r =>
            {
                var passed = Passed(r, health, health.ReadinessEndpoint!, readinessStarted, out var why);
                failure ??= why;
                lock (state)
                {
                    return tracker.RecordReadiness(health, passed);
                }
            }, health.Timeout);
            readiness?.Dispose();
        }

        if (failure is not null)
        {
            _runtime.Logs.Append(deployment.Name, deployment.Record.Version, instance, GuestLogStream.System, $"health probe failed ({tracker.LivenessFailures}/{health.UnhealthyThreshold}): {failure}; {(tracker.Ready ? "in rotation" : "out of rotation")}");
        }

        if (tracker.LivenessFailures >= health.UnhealthyThreshold)
        {
            var now = Time.GetUtcNow();
            TimeSpan delay;
            lock (state)
            {
                state.Trackers.Remove(instance);
                delay = state.Backoff.RecordRestart(now, $"instance {instance} failed its liveness probe {health.UnhealthyThreshold} times in a row: {failure}");
                if (delay > TimeSpan.Zero)
                {
                    pool.CreationBlockedUntil = now + delay;
                }
            }

            Log.Replaced(_logger, deployment.Name, instance, delay.TotalSeconds, failure ?? "failed");
            _runtime.Logs.Append(deployment.Name, deployment.Record.Version, instance, GuestLogStream.System, delay > TimeSpan.Zero
                ? $"instance replaced after failing liveness; crash loop: next instance in {delay.TotalSeconds:0.###} s"
                : "instance replaced after failing liveness");
            if (delay == TimeSpan.Zero)
            {
                pool.Replenish(unready: true);
            }
        }
    }

    private static bool Passed(InvocationResult result, HealthSection health, string path, long started, out string? failure)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (result.Fault is { Outcome: InvocationOutcome.Timeout } timeout)
        {
            failure = ProbeTimedOut(path, health, timeout);
            return false;
        }

        if (result.Fault is { } fault)
        {
            failure = $"{fault.Code}: {fault.Message}";
            return false;
        }

        var status = result.Response!.StatusCode;
        if (status is < 200 or >= 400)
        {
            failure = $"{path} answered {status}";
            return false;
        }

        if (elapsed > health.Timeout)
        {
            failure = $"{path} took {elapsed.TotalMilliseconds:0} ms, over the probe timeout of {health.Timeout.TotalMilliseconds:0} ms";
            return false;
        }

        failure = null;
        return true;
    }

    private static string ProbeTimedOut(string path, HealthSection health, InvocationFault fault) =>
        $"{path} ran over the probe timeout of {health.Timeout.TotalMilliseconds:0} ms and was interrupted ({fault.Code})";

    private static string RoutePrefix(ActiveDeployment deployment) =>
        DeploymentManager.NormalizeRoute(deployment.Manifest.Runtime.Route) switch { "/" => string.Empty, var route => route };

    private static WagiRequest ProbeRequest(ActiveDeployment deployment, string path)
    {
        var prefix = RoutePrefix(deployment);
        return new WagiRequest
        {
            Method = "GET",
            ScriptName = prefix,
            PathInfo = path,
            RawPathInfo = path,
            FullUrl = "http://localhost" + prefix + path,
            MatchedRoute = prefix + "/...",
            Headers = [new("User-Agent", "warpgrid-probe/1"), new("Host", "localhost")],
        };
    }

    private async Task ScaleAsync(ActiveDeployment deployment, Supervised state, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (state.Recommender is null || now < state.NextScaleAt)
        {
            return;
        }

        var pool = state.Pool;
        var busyTicks = pool.BusyTicks;
        var timestamp = Stopwatch.GetTimestamp();
        double mean;
        TimeSpan interval;
        lock (state)
        {
            interval = now - state.LastScaleSampleAt;
            var wall = timestamp - state.LastTimestamp;
            mean = wall > 0 ? (double)(busyTicks - state.LastBusyTicks) / wall : 0;
            state.LastBusyTicks = busyTicks;
            state.LastTimestamp = timestamp;
            state.LastScaleSampleAt = now;
            state.NextScaleAt = now + _options.ScalingInterval;
        }

        var stats = pool.Stats;
        var busy = Math.Max(0, stats.Busy - pool.ProbesInFlight); // probes run off the tick: not load
        mean = Math.Max(mean, busy) + stats.Waiting;
        var policy = state.Policy!;
        var sourceName = policy.Metric == ScalingMetric.Custom ? policy.CustomMetric! : ManifestNames.ToToml(policy.Metric);
        if (!_sources.TryGetValue(sourceName, out var source))
        {
            if (!state.MissingSourceLogged)
            {
                state.MissingSourceLogged = true;
                Log.NoMetricSource(_logger, deployment.Name, sourceName);
            }

            return;
        }

        double? value;
        try
        {
            value = await source.SampleAsync(new ScalingContext(deployment.Name, policy, pool, mean, interval), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.MetricFailed(_logger, deployment.Name, sourceName, ex);
            return;
        }

        if (value is null)
        {
            return;
        }

        int before, desired;
        lock (state)
        {
            before = state.Recommender.Desired;
            desired = state.Recommender.Update(now, value.Value);
        }

        // The record goes in before the pool changes, so whoever sees the new instance count also finds why.
        if (desired != before)
        {
            _runtime.Logs.Append(deployment.Name, deployment.Record.Version, null, GuestLogStream.System, $"autoscaler: {before} -> {desired} instances ({sourceName} = {value.Value:0.###}, target {policy.TargetValue:0.###} per instance)");
        }

        var live = pool.SetWarmTarget(desired);
        if (desired != before)
        {
            Log.Scaled(_logger, deployment.Name, before, desired, sourceName, value.Value, live);
        }
    }

    private IEnumerable<Measurement<long>> ObserveDesired()
    {
        foreach (var (name, state) in _states)
        {
            if (state.Recommender is { } r)
            {
                yield return new Measurement<long>(r.Desired, new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, name));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveRestarts()
    {
        foreach (var (name, state) in _states)
        {
            yield return new Measurement<long>(state.Backoff.Total, new KeyValuePair<string, object?>(WarpGridTelemetry.DeploymentTag, name));
        }
    }

    private sealed class Supervised
    {
        public Supervised(ISupervisedPool pool, WarpManifest manifest, SupervisorOptions options, DateTimeOffset now)
        {
            Pool = pool;
            Health = manifest.Health;
            Policy = manifest.Runtime.Scaling;
            Backoff = new RestartBackoff(options.RestartBackoffInitial, options.RestartBackoffMax, options.StablePeriod);
            NextProbeAt = now + (Health?.Interval ?? TimeSpan.Zero);
            var stats = pool.Stats;
            // A component pool's live count dips while a used instance is swapped for a fresh one (off the request
            // path): it starts from the warm pool it keeps instead, so a first look mid-swap does not start at zero.
            var initial = pool is ComponentHttpPool components ? Math.Max(stats.Live, components.WarmTarget) : stats.Live;
            Recommender = Policy is null ? null : new ScalingRecommender(Policy, pool.Settings.MinInstances, pool.Settings.MaxInstances, initial, now);
            LastScaleSampleAt = now;
            NextScaleAt = now + options.ScalingInterval;
            LastBusyTicks = pool.BusyTicks;
            LastTimestamp = Stopwatch.GetTimestamp();
        }

        public ISupervisedPool Pool { get; }

        /// <summary>The probe history of a component revision (probed as a whole), or null.</summary>
        public ProbeTracker? RevisionTracker { get; set; }

        /// <summary>The deployment's probe round last started (it runs off the tick), or null.</summary>
        public Task? Probe { get; set; }

        public HealthSection? Health { get; }

        public ScalingSection? Policy { get; }

        public RestartBackoff Backoff { get; }

        public ScalingRecommender? Recommender { get; }

        public Dictionary<string, ProbeTracker> Trackers { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset NextProbeAt { get; set; }

        public DateTimeOffset NextScaleAt { get; set; }

        public DateTimeOffset LastScaleSampleAt { get; set; }

        public long LastBusyTicks { get; set; }

        public long LastTimestamp { get; set; }

        public bool MissingSourceLogged { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Replaced instance {Instance} of {Deployment} after failed liveness probes ({Reason}); next instance in {Delay} s")]
        public static partial void Replaced(ILogger logger, string deployment, string instance, double delay, string reason);

        [LoggerMessage(EventId = 61, Level = LogLevel.Information, Message = "Scaled {Deployment} from {From} to {To} instances ({Metric} = {Value}); live {Live}")]
        public static partial void Scaled(ILogger logger, string deployment, int from, int to, string metric, double value, int live);

        [LoggerMessage(EventId = 62, Level = LogLevel.Warning, Message = "Deployment {Deployment} scales on metric {Metric} but no IScalingMetricSource of that name is registered; its size is kept")]
        public static partial void NoMetricSource(ILogger logger, string deployment, string metric);

        [LoggerMessage(EventId = 63, Level = LogLevel.Warning, Message = "Scaling metric {Metric} of {Deployment} failed")]
        public static partial void MetricFailed(ILogger logger, string deployment, string metric, Exception exception);

        [LoggerMessage(EventId = 64, Level = LogLevel.Error, Message = "Supervisor tick failed")]
        public static partial void TickFailed(ILogger logger, Exception exception);
    }
}
