using System.Diagnostics.Metrics;
using System.Text;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Health;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Tests.Runtime;

namespace WarpGrid.Core.Tests.Health;

/// <summary>A request to a component pool with no body; keeps the status and body the guest answered.</summary>
internal sealed class TestExchange(string pathWithQuery) : IComponentHttpExchange
{
    private readonly MemoryStream _body = new();

    public string Method => "GET";

    public string PathWithQuery => pathWithQuery;

    public string Scheme => "http";

    public string? Authority => "localhost";

    public IEnumerable<KeyValuePair<string, string>> RequestHeaders => [];

    public Stream RequestBody => Stream.Null;

    public bool ResponseStarted { get; private set; }

    public int Status { get; private set; }

    public string Body => Encoding.UTF8.GetString(_body.ToArray());

    public void StartResponse(int status, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        Status = status;
        ResponseStarted = true;
    }

    public void WriteResponseBody(ReadOnlySpan<byte> bytes) => _body.Write(bytes);

    public void FlushResponseBody()
    {
    }
}

/// <summary>
/// Supervision of a <c>wasi:http</c> component deployment (the C guest tests/guests/http-c, compiled from source) on a
/// fake clock: the crash loop of a component whose every request traps, readiness and liveness probes sent as real
/// requests, the warm pool sized by the autoscaler down to zero, and the log import.
/// </summary>
public sealed class ComponentSupervisionTests(FakeClockRuntime fixture) : IClassFixture<FakeClockRuntime>
{
    private static readonly string HttpC = Path.Combine(Guests.RepoRoot, "tests", "guests", "http-c", "http-c.wasm");

    private readonly WasmNodeRuntime _runtime = fixture.Runtime;

    private (ComponentHttpPool Pool, DeploymentRegistry Registry) Deploy(string toml, DeploymentRegistry? registry = null)
    {
        var manifest = ManifestParser.ParseOrThrow(toml);
        var component = _runtime.Modules.GetOrCompileComponent(File.ReadAllBytes(HttpC));
        var pool = _runtime.CreateComponentPool(DeploymentManager.ToPoolSettings(manifest), component);
        registry ??= new DeploymentRegistry();
        registry.Set(new ActiveDeployment(new DeploymentRecord { Name = manifest.Package.Name, Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('c', 64), Revision = 1 }, manifest, null, DeploymentState.Running, null, 1) { Components = pool });
        return (pool, registry);
    }

    private static async Task<(ComponentInvocationResult Result, TestExchange Exchange)> GetAsync(ComponentHttpPool pool, string path)
    {
        var exchange = new TestExchange(path);
        var result = await pool.InvokeAsync(exchange).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
        return (result, exchange);
    }

    /// <summary>Reads <c>warpgrid.instances</c> of a deployment by state, as a collector does (the observable callback).</summary>
    private static Dictionary<string, long> Instances(WarpGridMetrics metrics, string deployment)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name == "warpgrid.instances")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? name = null, state = null;
            foreach (var tag in tags)
            {
                if (tag.Key == WarpGridTelemetry.DeploymentTag)
                {
                    name = tag.Value as string;
                }
                else if (tag.Key == "warpgrid.instance.state")
                {
                    state = tag.Value as string;
                }
            }

            if (name == deployment && state is not null)
            {
                values[state] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    /// <summary>Runs one supervisor tick and waits (real time, bounded) for the component probes it started.</summary>
    private static async Task TickAndProbeAsync(DeploymentSupervisor supervisor)
    {
        await supervisor.TickAsync();
        await supervisor.WhenProbesCompleteAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Waits (real time) until the pool's warm instances are back: used instances are dropped and replaced on the thread pool.</summary>
    private static async Task WaitForIdleAsync(ComponentHttpPool pool, int idle)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (pool.Stats.Idle != idle)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the pool has {pool.Stats.Idle} warm instances, expected {idle}");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task A_component_trapping_on_every_request_backs_off_with_growing_delays_and_is_refused_while_it_waits()
    {
        var (pool, registry) = Deploy("[package]\nname = \"ctrap\"\n\n[runtime]\nmin_instances = 1\nmax_instances = 2\n");
        await using var _ = pool;
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions { CrashLoopFaults = 3, RestartBackoffInitial = TimeSpan.FromSeconds(2), RestartBackoffMax = TimeSpan.FromSeconds(8) });
        await supervisor.TickAsync();
        Assert.Equal(DeploymentHealthState.Unchecked, supervisor.GetHealth("ctrap")!.State);

        // Two traps and a success: no streak.
        Assert.Equal(InvocationOutcome.Trap, (await GetAsync(pool, "/trap")).Result.Fault?.Outcome);
        Assert.Equal(InvocationOutcome.Trap, (await GetAsync(pool, "/trap")).Result.Fault?.Outcome);
        Assert.Equal(200, (await GetAsync(pool, "/hello")).Exchange.Status);
        await supervisor.TickAsync();
        Assert.Equal(0, supervisor.GetHealth("ctrap")!.Restarts);

        // Three in a row: a restart (the first is immediate), the warm instances are recycled.
        for (var i = 0; i < 3; i++)
        {
            Assert.NotNull((await GetAsync(pool, "/trap")).Result.Fault);
        }

        await WaitForIdleAsync(pool, 1);
        var replacedBefore = pool.Stats.Replaced;
        await supervisor.TickAsync();
        var health = supervisor.GetHealth("ctrap")!;
        Assert.Equal(1, health.Restarts);
        Assert.Equal(DeploymentHealthState.Degraded, health.State);
        Assert.Contains("3 requests in a row failed, the last with trap:", health.LastError, StringComparison.Ordinal);
        Assert.Null(health.NextRetryAt);
        Assert.True(pool.Stats.Replaced > replacedBefore, "the warm instance was recycled");
        Assert.Equal(200, (await GetAsync(pool, "/hello")).Exchange.Status); // still serving
        for (var i = 0; i < 3; i++)
        {
            Assert.NotNull((await GetAsync(pool, "/trap")).Result.Fault);
        }

        await WaitForIdleAsync(pool, 1);
        await supervisor.TickAsync(); // second restart in a row: 2 s without any new instance
        health = supervisor.GetHealth("ctrap")!;
        Assert.Equal(DeploymentHealthState.CrashLoopBackOff, health.State);
        Assert.Equal(2, health.Restarts);
        Assert.Equal(fixture.Time.GetUtcNow() + TimeSpan.FromSeconds(2), health.NextRetryAt);
        Assert.Equal(0, pool.Stats.Idle);

        var (refused, _) = await GetAsync(pool, "/hello");
        Assert.Equal(InvocationOutcome.Unavailable, refused.Fault?.Outcome);
        Assert.Contains("crash-loop back-off", refused.Fault!.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.Stats.Live);

        fixture.Time.Advance(TimeSpan.FromSeconds(2));
        await supervisor.TickAsync(); // back-off over: instances again
        Assert.Equal(1, pool.Stats.Idle);
        Assert.Equal(200, (await GetAsync(pool, "/hello")).Exchange.Status);
        for (var i = 0; i < 3; i++)
        {
            Assert.NotNull((await GetAsync(pool, "/trap")).Result.Fault);
        }

        await supervisor.TickAsync(); // still within the stable period: the wait doubles
        Assert.Equal(fixture.Time.GetUtcNow() + TimeSpan.FromSeconds(4), supervisor.GetHealth("ctrap")!.NextRetryAt);
    }

    [Fact]
    public async Task A_component_failing_its_probe_is_out_of_routing_at_once_and_recycled_after_the_threshold()
    {
        var (pool, registry) = Deploy("""
            [package]
            name = "cprobe"

            [runtime]
            min_instances = 2
            max_instances = 2

            [health]
            endpoint = "/healthz"
            interval = "1s"
            timeout = "1s"
            unhealthy_threshold = 2
            """);
        await using var _ = pool;
        using var metrics = new WarpGridMetrics(registry, _runtime);
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions { RestartBackoffInitial = TimeSpan.FromSeconds(2) });
        await TickAndProbeAsync(supervisor);
        Assert.Equal(DeploymentHealthState.Healthy, supervisor.GetHealth("cprobe")!.State);
        Assert.Equal(2, supervisor.GetHealth("cprobe")!.ReadyInstances);
        var instances = Instances(metrics, "cprobe");
        Assert.Equal((2, 0, 0), (instances["idle"], instances["busy"], instances["unready"]));
        var requests = pool.Stats.Requests;

        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        await TickAndProbeAsync(supervisor); // http-c answers 404 to /healthz: out of routing
        Assert.Equal(requests, pool.Stats.Requests); // a probe is not a request
        var health = supervisor.GetHealth("cprobe")!;
        Assert.Equal(DeploymentHealthState.Degraded, health.State);
        Assert.Equal(0, health.ReadyInstances);
        Assert.Equal(0, health.Restarts);
        var (refused, _) = await GetAsync(pool, "/hello");
        Assert.Equal(InvocationOutcome.Unavailable, refused.Fault?.Outcome);
        Assert.Contains("readiness probe failed (/healthz answered 404)", refused.Fault!.Message, StringComparison.Ordinal);

        // Out of routing, the warm instances get no traffic: the metric reports them unready, not idle.
        await WaitForIdleAsync(pool, 2);
        instances = Instances(metrics, "cprobe");
        Assert.Equal((0, 0, 2), (instances["idle"], instances["busy"], instances["unready"]));

        var replaced = pool.Stats.Replaced;
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        await TickAndProbeAsync(supervisor); // second failure = unhealthy_threshold: restarted
        health = supervisor.GetHealth("cprobe")!;
        Assert.Equal(1, health.Restarts);
        Assert.Contains("failed its liveness probe 2 times in a row: /healthz answered 404", health.LastError, StringComparison.Ordinal);
        Assert.True(pool.Stats.Replaced >= replaced + 1, "the warm instances were recycled");
        await WaitForIdleAsync(pool, 2); // refilled at once (first restart)
        Assert.Contains("restarted after failing its liveness probe", pool.UnreadyReason, StringComparison.Ordinal);
        var system = _runtime.Logs.Tail("cprobe", 100).Where(r => r.Stream == GuestLogStream.System).Select(r => r.Message).ToList();
        Assert.Contains(system, m => m.StartsWith("health probe failed (1/2): /healthz answered 404; out of routing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_slow_probe_runs_off_the_tick_delays_no_other_deployment_and_is_interrupted_at_its_own_timeout()
    {
        var registry = new DeploymentRegistry();
        var (slow, _) = Deploy("""
            [package]
            name = "cslow"

            [runtime]
            min_instances = 1
            max_instances = 2
            request_timeout = "60s"

            [health]
            endpoint = "/spin"
            interval = "10s"
            timeout = "10s"
            """, registry);
        await using var _ = slow;
        var (fast, _) = Deploy("""
            [package]
            name = "cfast"

            [runtime]
            min_instances = 0
            max_instances = 4

            [runtime.scaling]
            metric = "request_concurrency"
            target_value = 1
            scale_up_window = "0s"
            scale_down_window = "2s"

            [health]
            endpoint = "/hello"
            interval = "1s"
            timeout = "1s"
            """, registry);
        await using var __ = fast;
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions { ScalingInterval = TimeSpan.FromSeconds(1) });
        await supervisor.TickAsync();
        Assert.Equal(1, fast.Stats.Idle);

        // Both probes are due: cslow's guest spins (for 10 s of real time: long enough that the ticks below finish
        // first even on a loaded machine), cfast's answers at once.
        fixture.Time.Advance(TimeSpan.FromSeconds(10));
        var started = DateTime.UtcNow;
        await supervisor.TickAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (slow.Stats.Busy == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the slow probe did not start");
            await Task.Delay(5);
        }

        // While the slow probe runs, cfast is probed and scaled on every tick: its autoscaler releases its warm
        // instance after the 2 s window. Each further tick finds cslow's probe due again but in flight, and starts no
        // second one.
        for (var i = 0; i < 4; i++)
        {
            fixture.Time.Advance(TimeSpan.FromSeconds(10));
            await supervisor.TickAsync();
            Assert.True(slow.Stats.Busy <= 1, $"{slow.Stats.Busy} probes of cslow run at once");
        }

        Assert.Equal(0, supervisor.GetScaling("cfast")!.DesiredInstances);
        Assert.Equal(DeploymentHealthState.Healthy, supervisor.GetHealth("cfast")!.State);
        Assert.Equal(1, slow.Stats.Busy); // its probe is still running: no tick waited for it
        Assert.Null(slow.UnreadyReason);

        await supervisor.WhenProbesCompleteAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var elapsed = DateTime.UtcNow - started;
        Assert.True(elapsed < TimeSpan.FromSeconds(40), $"the probe took {elapsed}: it was not interrupted at its 10 s timeout");
        Assert.Contains("/spin ran over the probe timeout of 10000 ms and was interrupted (timeout)", slow.UnreadyReason, StringComparison.Ordinal);
        var failures = _runtime.Logs.Tail("cslow", 100).Where(r => r.Stream == GuestLogStream.System && r.Message.StartsWith("health probe failed", StringComparison.Ordinal)).ToList();
        Assert.Equal("health probe failed (1/3)", Assert.Single(failures).Message[..25]);
    }

    [Fact]
    public async Task The_autoscaler_releases_every_warm_instance_at_zero_and_the_next_request_is_served_on_a_new_one()
    {
        var (pool, registry) = Deploy("""
            [package]
            name = "czero"

            [runtime]
            min_instances = 0
            max_instances = 4

            [runtime.scaling]
            metric = "request_concurrency"
            target_value = 1
            scale_up_window = "0s"
            scale_down_window = "3s"
            """);
        await using var _ = pool;
        var supervisor = new DeploymentSupervisor(registry, _runtime, new SupervisorOptions { ScalingInterval = TimeSpan.FromSeconds(1) });
        Assert.Equal(1, pool.Stats.Idle); // one instance proves the component instantiates
        await supervisor.TickAsync();
        for (var i = 0; i < 5; i++)
        {
            fixture.Time.Advance(TimeSpan.FromSeconds(1));
            await supervisor.TickAsync();
        }

        var scaling = supervisor.GetScaling("czero")!;
        Assert.Equal(0, scaling.DesiredInstances);
        Assert.Equal(0, pool.Stats.Live);
        Assert.Equal(0, pool.WarmTarget);

        var coldStarts = pool.Stats.ColdStarts;
        var (result, exchange) = await GetAsync(pool, "/hello");
        Assert.Null(result.Fault);
        Assert.Equal("Hello from C on WarpGrid (wasi:http)!\n", exchange.Body);
        Assert.Equal(coldStarts + 1, pool.Stats.ColdStarts);
        Assert.Equal(0, pool.Stats.Live); // nothing kept warm after it: the target is still zero

        // The request's used instance is recycled on the thread pool, whose refill may be creating one of the three.
        pool.SetWarmTarget(3);
        await WaitForIdleAsync(pool, 3);
        Assert.Equal(4, pool.SetWarmTarget(9)); // clamped to max_instances
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10_001)]
    public void CrashLoopFaults_out_of_range_is_refused_naming_the_setting(int value)
    {
        var error = Assert.Single(new SupervisorOptions { CrashLoopFaults = value }.Validate());
        Assert.Equal($"WarpGrid:Supervisor:CrashLoopFaults must be between 1 and 10000 (got {value}).", error);
    }

    [Fact]
    public async Task Log_import_records_reach_the_log_hub_with_level_context_and_instance_and_the_capability_gates_it()
    {
        var (pool, _) = Deploy("[package]\nname = \"clog\"\n");
        await using (pool)
        {
            var (result, exchange) = await GetAsync(pool, "/log");
            Assert.Null(result.Fault);
            Assert.Equal("logged\n", exchange.Body);
            var records = _runtime.Logs.Tail("clog", 10).Where(r => r.Stream == GuestLogStream.Log).ToList();
            Assert.Equal(2, records.Count);
            Assert.Equal(GuestLogLevel.Info, records[0].Level);
            Assert.Equal("http-c", records[0].Context);
            Assert.Equal("hello from wasi:logging /log", records[0].Message);
            Assert.Equal(result.InstanceId, records[0].Instance);
            Assert.Equal(GuestLogLevel.Warn, records[1].Level);
            Assert.Null(records[1].Context);
        }

        // Denied: the deploy is refused naming the import, as for a WAGI module.
        var error = Assert.Throws<WasmValidationException>(() => Deploy("[package]\nname = \"cnolog\"\n\n[capabilities]\nlogging = false\n"));
        Assert.Contains("import wasi:logging/logging@0.1.0-draft.log needs the logging capability", error.Message, StringComparison.Ordinal);
        Assert.Contains("logging = false", error.Message, StringComparison.Ordinal);
    }
}
