using Microsoft.Extensions.Logging;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;

namespace WarpGrid.Core.Health;

/// <summary>Supervision of <c>wasi:http</c> component deployments (the revision on this node is the unit).</summary>
public sealed partial class DeploymentSupervisor
{
    private void SuperviseComponents(ActiveDeployment deployment, Supervised state, ComponentHttpPool pool, DateTimeOffset now)
    {
        lock (state)
        {
            var wasInBackoff = state.Backoff.NextRetryAt is not null;
            state.Backoff.ObserveStable(now);
            if (wasInBackoff && state.Backoff.NextRetryAt is null)
            {
                pool.CreationBlockedUntil = null;
            }
        }

        if (pool.CreationBlockedUntil is null)
        {
            pool.Refill();
        }

        // Instantiation failures or faults on every request: the crash loop of a deployment nobody probes.
        var streak = pool.FaultStreak;
        if (streak >= _options.CrashLoopFaults)
        {
            pool.ResetFaultStreak();
            Restart(deployment, state, pool, now, $"{streak} requests in a row failed, the last with {pool.LastFault}");
        }

        lock (state)
        {
            if (state.Health is not { } health || now < state.NextProbeAt)
            {
                return;
            }

            // A probe runs a guest for up to its timeout: it runs off the tick, so a slow guest delays no other
            // deployment's probes or scaling. At most one per deployment is in flight; one still running when the
            // next is due makes that round skipped.
            state.NextProbeAt = now + health.Interval;
            state.RevisionTracker ??= new ProbeTracker();
            StartProbeRound(state, deployment.Name, () => ProbeComponents(deployment, state, pool, health));
        }
    }

    /// <summary>
    /// Starts a deployment's probe round on the thread pool unless its previous round is still in flight (then this
    /// round is skipped). Called under <c>lock (state)</c>; a round's exception is logged, never thrown into the tick.
    /// </summary>
    private void StartProbeRound(Supervised state, string deployment, Action round)
    {
        if (state.Probe is { IsCompleted: false })
        {
            return;
        }

        state.Probe = Task.Run(() =>
        {
            try
            {
                round();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                Log.ProbeFailed(_logger, deployment, ex);
            }
        });
    }

    private void ProbeComponents(ActiveDeployment deployment, Supervised state, ComponentHttpPool pool, HealthSection health)
    {
        var tracker = state.RevisionTracker!;
        var prefix = RoutePrefix(deployment);
        var liveness = pool.Probe(prefix + health.Endpoint, health.Timeout);
        if (liveness is null)
        {
            return; // every slot busy, or no instance may be created now: probed next round
        }

        var separateReadiness = health.ReadinessEndpoint is not null;
        var passed = Passed(liveness, health, health.Endpoint, out var failure);
        ProbeVerdict verdict;
        lock (state)
        {
            verdict = separateReadiness ? tracker.RecordLiveness(health, passed) : tracker.Record(health, passed);
        }

        if (separateReadiness && tracker.LivenessFailures == 0 && pool.Probe(prefix + health.ReadinessEndpoint, health.Timeout) is { } readiness)
        {
            var ready = Passed(readiness, health, health.ReadinessEndpoint!, out var why);
            failure ??= why;
            lock (state)
            {
                verdict = tracker.RecordReadiness(health, ready);
            }
        }

        if (failure is not null)
        {
            _runtime.Logs.Append(deployment.Name, deployment.Record.Version, null, GuestLogStream.System, $"health probe failed ({tracker.LivenessFailures}/{health.UnhealthyThreshold}): {failure}; {(tracker.Ready ? "in routing" : "out of routing")}");
        }

        if (verdict == ProbeVerdict.Replace)
        {
            lock (state)
            {
                state.RevisionTracker = new ProbeTracker(ready: false);
            }

            pool.SetRouting($"restarted after failing its liveness probe: {failure}; back once a probe passes");
            Restart(deployment, state, pool, Time.GetUtcNow(), $"the deployment failed its liveness probe {health.UnhealthyThreshold} times in a row: {failure}");
            return;
        }

        var wasOut = pool.UnreadyReason is not null;
        pool.SetRouting(tracker.Ready ? null : failure ?? $"{tracker.ReadinessSuccesses} of {health.HealthyThreshold} probes passed");
        if (wasOut && tracker.Ready)
        {
            _runtime.Logs.Append(deployment.Name, deployment.Record.Version, null, GuestLogStream.System, "readiness probe passed; back in routing");
        }
    }

    /// <summary>Records a restart in the back-off, blocks instantiation for its delay and recycles every pre-instantiated instance.</summary>
    private void Restart(ActiveDeployment deployment, Supervised state, ComponentHttpPool pool, DateTimeOffset now, string reason)
    {
        TimeSpan delay;
        lock (state)
        {
            delay = state.Backoff.RecordRestart(now, reason);
            pool.CreationBlockedUntil = delay > TimeSpan.Zero ? now + delay : null;
        }

        var dropped = pool.RecycleReady();
        Log.ComponentsRecycled(_logger, deployment.Name, dropped, delay.TotalSeconds, reason);
        _runtime.Logs.Append(deployment.Name, deployment.Record.Version, null, GuestLogStream.System, delay > TimeSpan.Zero
            ? $"{reason}; recycled {dropped} pre-instantiated instances; crash loop: no new instance for {delay.TotalSeconds:0.###} s"
            : $"{reason}; recycled {dropped} pre-instantiated instances");
    }

    private static bool Passed(ComponentProbeResult result, HealthSection health, string path, out string? failure)
    {
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

        if (result.GuestError is { } error)
        {
            failure = $"{path} answered the wasi:http error {error}";
            return false;
        }

        if (result.Status is < 200 or >= 400)
        {
            failure = $"{path} answered {result.Status}";
            return false;
        }

        if (result.Elapsed > health.Timeout)
        {
            failure = $"{path} took {result.Elapsed.TotalMilliseconds:0} ms, over the probe timeout of {health.Timeout.TotalMilliseconds:0} ms";
            return false;
        }

        failure = null;
        return true;
    }

    /// <summary>
    /// Completes when every probe round in flight has finished and its verdicts are applied (tests and shutdown:
    /// <see cref="TickAsync"/> starts probes and returns without waiting for them).
    /// </summary>
    internal Task WhenProbesCompleteAsync() =>
        Task.WhenAll(_states.Values.Select(s => s.Probe).OfType<Task>());

    private static partial class Log
    {
        [LoggerMessage(EventId = 66, Level = LogLevel.Error, Message = "Health probe of deployment {Deployment} failed")]
        public static partial void ProbeFailed(ILogger logger, string deployment, Exception exception);

        [LoggerMessage(EventId = 65, Level = LogLevel.Warning, Message = "Recycled {Count} pre-instantiated instances of component deployment {Deployment} ({Reason}); instantiation blocked for {Delay} s")]
        public static partial void ComponentsRecycled(ILogger logger, string deployment, int count, double delay, string reason);
    }
}
