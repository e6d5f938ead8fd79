using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Health;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;
using WarpGrid.Core.Scaling;
using WarpGrid.Core.Tests.Runtime;

namespace WarpGrid.Core.Tests.Health;

/// <summary>One engine for the class (engines are costly in address-space mappings), on a fake clock that only moves forward.</summary>
public sealed class FakeClockRuntime : IDisposable
{
    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public WasmNodeRuntime Runtime { get; }

    public FakeClockRuntime() => Runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 256L << 20 }, timeProvider: Time);

    public void Dispose() => Runtime.Dispose();
}

/// <summary>Probe thresholds, restart back-off and scaling windows, on a fake clock.</summary>
public sealed class SupervisionTests(FakeClockRuntime fixture) : IClassFixture<FakeClockRuntime>
{
    private readonly FakeTimeProvider _time = fixture.Time;
    private readonly WasmNodeRuntime _runtime = fixture.Runtime;

    private static HealthSection Health(int unhealthy = 3, int healthy = 1) => new() { Endpoint = "/healthz", UnhealthyThreshold = unhealthy, HealthyThreshold = healthy };

    [Fact]
    public void One_failed_probe_takes_an_instance_out_of_rotation_and_threshold_failures_replace_it()
    {
        var health = Health(unhealthy: 3, healthy: 2);
        var tracker = new ProbeTracker();
        Assert.Equal(ProbeVerdict.Unready, tracker.Record(health, passed: false));
        Assert.Equal(ProbeVerdict.Unready, tracker.Record(health, passed: true)); // 1 of 2 successes
        Assert.Equal(ProbeVerdict.Ready, tracker.Record(health, passed: true));
        Assert.Equal(0, tracker.LivenessFailures);
        Assert.Equal(ProbeVerdict.Unready, tracker.Record(health, passed: false));
        Assert.Equal(ProbeVerdict.Unready, tracker.Record(health, passed: false));
        Assert.Equal(ProbeVerdict.Replace, tracker.Record(health, passed: false));
    }

    [Fact]
    public void Separate_readiness_keeps_a_live_instance_out_of_rotation_without_replacing_it()
    {
        var health = Health(unhealthy: 2);
        var tracker = new ProbeTracker();
        for (var i = 0; i < 10; i++)
        {
            Assert.NotEqual(ProbeVerdict.Replace, tracker.RecordLiveness(health, passed: true));
            Assert.Equal(ProbeVerdict.Unready, tracker.RecordReadiness(health, passed: false));
        }

        Assert.Equal(ProbeVerdict.Ready, tracker.RecordReadiness(health, passed: true));
        Assert.Equal(ProbeVerdict.Ready, tracker.RecordLiveness(health, passed: false));
        Assert.Equal(ProbeVerdict.Replace, tracker.RecordLiveness(health, passed: false));
    }

    [Fact]
    public void Restarts_back_off_exponentially_up_to_the_cap_and_reset_after_a_stable_period()
    {
        var backoff = new RestartBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60));
        var delays = new List<double>();
        for (var i = 0; i < 7; i++)
        {
            var delay = backoff.RecordRestart(_time.GetUtcNow(), "boom");
            delays.Add(delay.TotalSeconds);
            Assert.Equal(delay > TimeSpan.Zero, backoff.InBackoff(_time.GetUtcNow()));
            _time.Advance(delay);
            backoff.ObserveStable(_time.GetUtcNow());
            Assert.False(backoff.InBackoff(_time.GetUtcNow()));
        }

        Assert.Equal([0, 1, 2, 4, 8, 10, 10], delays);
        Assert.Equal(7, backoff.Total);
        Assert.Equal("boom", backoff.LastError);

        _time.Advance(TimeSpan.FromSeconds(49)); // 59 s since the last restart (10 s back-off + 49 s)
        backoff.ObserveStable(_time.GetUtcNow());
        Assert.Equal(7, backoff.Consecutive); // not yet stable
        _time.Advance(TimeSpan.FromSeconds(1));
        backoff.ObserveStable(_time.GetUtcNow());
        Assert.Equal(0, backoff.Consecutive);
        Assert.Equal(TimeSpan.Zero, backoff.RecordRestart(_time.GetUtcNow(), "again"));
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.RecordRestart(_time.GetUtcNow(), "again"));
    }

    [Fact]
    public void Scaling_follows_load_up_at_once_and_down_only_after_the_window()
    {
        var policy = new ScalingSection { TargetValue = 1, ScaleUpWindow = TimeSpan.Zero, ScaleDownWindow = TimeSpan.FromSeconds(30) };
        var r = new ScalingRecommender(policy, minInstances: 0, maxInstances: 8, initial: 0, _time.GetUtcNow());
        Assert.Equal(0, r.Update(Tick(), 0));
        Assert.Equal(3, r.Update(Tick(), 2.2)); // ceil(2.2 / 1)
        Assert.Equal(8, r.Update(Tick(), 50)); // capped at max
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(8, r.Update(Tick(), 0)); // quiet, but the 8 is still within the 30 s window
        }

        Assert.Equal(0, r.Update(Tick(), 0)); // a whole window of zero: scale to zero
        Assert.Equal(1, r.Update(Tick(), 0.3)); // next request wakes it
    }

    [Fact]
    public void A_scale_up_window_ignores_a_short_spike_and_a_target_above_one_is_capped_for_concurrency()
    {
        var policy = new ScalingSection { TargetValue = 10, ScaleUpWindow = TimeSpan.FromSeconds(5), ScaleDownWindow = TimeSpan.FromSeconds(5) };
        var r = new ScalingRecommender(policy, minInstances: 1, maxInstances: 10, initial: 1, _time.GetUtcNow());
        Assert.Equal(1, r.Update(Tick(), 4)); // spike: the lowest over the last 5 s is still 1
        Assert.Equal(1, r.Update(Tick(), 0));
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(1, r.Update(Tick(), 4)); // the 1 seen 5 s ago is still in the window
        }

        r.Update(Tick(), 4);

        Assert.Equal(4, r.Desired); // 4 in flight for 5 s; a WAGI instance takes 1, so target 10 counts as 1

        var cpu = new ScalingRecommender(new ScalingSection { Metric = ScalingMetric.Cpu, TargetValue = 50, ScaleUpWindow = TimeSpan.Zero }, 1, 10, 1, _time.GetUtcNow());
        Assert.Equal(3, cpu.Update(Tick(), 150)); // 150 % of a core at 50 % per instance
    }

    [Fact]
    public async Task A_crash_looping_deployment_is_replaced_with_growing_delays_and_creates_nothing_while_it_waits()
    {
        var manifest = ManifestParser.ParseOrThrow("""
            [package]
            name = "loop"

            [runtime]
            min_instances = 1
            max_instances = 2

            [capabilities]
            environment = { HEALTH = "fail" }

            [health]
            endpoint = "/healthz"
            interval = "1s"
            timeout = "1s"
            unhealthy_threshold = 1
            """);
        var settings = DeploymentManager.ToPoolSettings(manifest);
        await using var pool = _runtime.CreatePool(settings, _runtime.Modules.LoadFile(Guests.Testbed));
        var registry = new DeploymentRegistry();
        registry.Set(new ActiveDeployment(new DeploymentRecord { Name = "loop", Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('a', 64), Revision = 1 }, manifest, pool, DeploymentState.Running, null, 1));
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions { RestartBackoffInitial = TimeSpan.FromSeconds(2), RestartBackoffMax = TimeSpan.FromSeconds(8), StablePeriod = TimeSpan.FromMinutes(1) });

        await TickAndProbeAsync(supervisor); // first sight: probes due after one interval
        Assert.Equal(DeploymentHealthState.Healthy, supervisor.GetHealth("loop")!.State);
        var first = Assert.Single(pool.Instances()).Id;

        _time.Advance(TimeSpan.FromSeconds(1));
        await TickAndProbeAsync(supervisor); // probe fails once = threshold: replaced at once (first restart)
        var health = supervisor.GetHealth("loop")!;
        Assert.Equal(1, health.Restarts);
        Assert.Contains("failed its liveness probe", health.LastError, StringComparison.Ordinal);
        Assert.Contains("/healthz answered 503", health.LastError, StringComparison.Ordinal);
        var second = Assert.Single(pool.Instances());
        Assert.NotEqual(first, second.Id);
        Assert.Equal(InstanceState.Unready, second.State); // a replacement gets no traffic before it passes a probe

        _time.Advance(TimeSpan.FromSeconds(1));
        await TickAndProbeAsync(supervisor); // the replacement fails too: crash loop, wait 2 s
        health = supervisor.GetHealth("loop")!;
        Assert.Equal(DeploymentHealthState.CrashLoopBackOff, health.State);
        Assert.Equal(2, health.Restarts);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(2), health.NextRetryAt);
        Assert.Empty(pool.Instances());

        // While it waits no instance is created, not even for a request.
        using (var refused = await pool.InvokeAsync(new WagiRequest { PathInfo = "/status" }, new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token).AsTask().WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.NotNull(refused.Fault);
        }

        Assert.Empty(pool.Instances());

        _time.Advance(TimeSpan.FromSeconds(1.5));
        await TickAndProbeAsync(supervisor);
        Assert.Empty(pool.Instances()); // still waiting
        _time.Advance(TimeSpan.FromSeconds(0.5));
        await TickAndProbeAsync(supervisor); // back-off over: a new (unready) instance
        Assert.Equal(InstanceState.Unready, Assert.Single(pool.Instances()).State);
        _time.Advance(TimeSpan.FromSeconds(0.5));
        await TickAndProbeAsync(supervisor); // its probe fails: the wait doubles
        health = supervisor.GetHealth("loop")!;
        Assert.Equal(3, health.Restarts);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(4), health.NextRetryAt);
    }

    [Fact]
    public async Task A_hung_probe_runs_off_the_tick_and_another_deployment_is_probed_and_replaced_meanwhile()
    {
        var hung = ManifestParser.ParseOrThrow("""
            [package]
            name = "hung"

            [runtime]
            request_timeout = "60s"

            [health]
            endpoint = "/loop"
            interval = "10s"
            timeout = "10s"
            """);
        var failing = ManifestParser.ParseOrThrow("""
            [package]
            name = "failing"

            [capabilities]
            environment = { HEALTH = "fail" }

            [health]
            endpoint = "/healthz"
            interval = "1s"
            timeout = "1s"
            unhealthy_threshold = 2
            """);
        await using var hungPool = _runtime.CreatePool(DeploymentManager.ToPoolSettings(hung), _runtime.Modules.LoadFile(Guests.Testbed));
        await using var failingPool = _runtime.CreatePool(DeploymentManager.ToPoolSettings(failing), _runtime.Modules.LoadFile(Guests.Testbed));
        var registry = new DeploymentRegistry();
        registry.Set(new ActiveDeployment(new DeploymentRecord { Name = "hung", Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('a', 64), Revision = 1 }, hung, hungPool, DeploymentState.Running, null, 1));
        registry.Set(new ActiveDeployment(new DeploymentRecord { Name = "failing", Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('b', 64), Revision = 1 }, failing, failingPool, DeploymentState.Running, null, 1));
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions());
        await supervisor.TickAsync();

        // hung's probe loops (interrupted after 10 s of real time: long enough that failing's two probes and its
        // replacement finish first even on a loaded machine); failing's probes answer 503 at once.
        var started = DateTime.UtcNow;
        _time.Advance(TimeSpan.FromSeconds(10));
        await supervisor.TickAsync();
        await WaitUntilAsync(() => failingPool.UnreadyCount == 1, "failing's first failed probe takes it out of rotation");
        _time.Advance(TimeSpan.FromSeconds(10));
        await supervisor.TickAsync(); // hung's round is still in flight: no second one
        await WaitUntilAsync(() => supervisor.GetHealth("failing")!.Restarts == 1, "failing's second failed probe replaces it");

        // Two failed liveness probes of failing replaced its instance while hung's first probe still ran.
        Assert.Contains("/healthz answered 503", supervisor.GetHealth("failing")!.LastError, StringComparison.Ordinal);
        Assert.Equal(0, supervisor.GetHealth("hung")!.Restarts);
        Assert.Equal(InstanceState.Busy, Assert.Single(hungPool.Instances()).State); // probed: one round in flight

        await supervisor.WhenProbesCompleteAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(40), "the probe was not interrupted at its 10 s timeout");
        var system = _runtime.Logs.Tail("hung", 100).Where(r => r.Stream == GuestLogStream.System).Select(r => r.Message).ToList();
        Assert.Equal("health probe failed (1/3): /loop ran over the probe timeout of 10000 ms and was interrupted (timeout); out of rotation", Assert.Single(system, m => m.StartsWith("health probe failed", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_probe_slower_than_its_timeout_fails()
    {
        var manifest = ManifestParser.ParseOrThrow("""
            [package]
            name = "slow"

            [health]
            endpoint = "/spin"
            interval = "1s"
            timeout = "50ms"
            unhealthy_threshold = 1
            """);
        await using var pool = _runtime.CreatePool(DeploymentManager.ToPoolSettings(manifest), _runtime.Modules.LoadFile(Guests.Testbed));
        var registry = new DeploymentRegistry();
        registry.Set(new ActiveDeployment(new DeploymentRecord { Name = "slow", Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('a', 64), Revision = 1 }, manifest, pool, DeploymentState.Running, null, 1));
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions());
        await TickAndProbeAsync(supervisor);
        _time.Advance(TimeSpan.FromSeconds(1));
        await TickAndProbeAsync(supervisor); // /spin takes 200 ms of wall-clock time against a 50 ms timeout
        var health = supervisor.GetHealth("slow")!;
        Assert.Equal(1, health.Restarts);
        Assert.Contains("over the probe timeout of 50 ms", health.LastError, StringComparison.Ordinal);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting: " + what);
            await Task.Delay(5);
        }
    }

    /// <summary>One supervisor tick, then a bounded wait (real time) for the probe rounds it started: they run off the tick.</summary>
    private static async Task TickAndProbeAsync(DeploymentSupervisor supervisor)
    {
        await supervisor.TickAsync();
        await supervisor.WhenProbesCompleteAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    private DateTimeOffset Tick()
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        return _time.GetUtcNow();
    }
}
