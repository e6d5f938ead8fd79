using System.Text;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Core.Tests.Runtime;

public sealed class InstancePoolTests : IDisposable
{
    private readonly WasmNodeRuntime _runtime = new(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 64L << 20 });

    public void Dispose() => _runtime.Dispose();

    private InstancePool Pool(string path, int min = 1, int max = 4, TimeSpan? timeout = null, long memory = 16L << 20, int queue = 16, TimeSpan? queueTimeout = null)
    {
        var module = _runtime.Modules.LoadFile(path);
        return _runtime.CreatePool(
            new PoolSettings
            {
                Deployment = "t",
                MinInstances = min,
                MaxInstances = max,
                RequestTimeout = timeout ?? TimeSpan.FromSeconds(5),
                MemoryLimitBytes = memory,
                QueueLimit = queue,
                QueueTimeout = queueTimeout ?? TimeSpan.FromSeconds(5),
                Environment = [new("GREETING", "hi")],
            },
            module);
    }

    private static WagiRequest Request(string pathInfo, string method = "GET", byte[]? body = null, string query = "", params KeyValuePair<string, string>[] headers) => new()
    {
        Method = method,
        ScriptName = "/testbed",
        PathInfo = pathInfo,
        RawPathInfo = pathInfo,
        QueryString = query,
        ServerName = "example.test",
        ServerPort = 8080,
        RemoteAddress = "127.0.0.9",
        FullUrl = "http://example.test:8080/testbed" + pathInfo + (query.Length > 0 ? "?" + query : string.Empty),
        MatchedRoute = "/testbed/...",
        Headers = headers,
        Body = body ?? [],
    };

    private static string Body(in InvocationResult result) => Encoding.UTF8.GetString(result.Response!.Body.Span);

    [Fact]
    public async Task Hello_returns_its_greeting()
    {
        await using var pool = Pool(Guests.Hello);
        using var result = await pool.InvokeAsync(Request("/"));
        Assert.Null(result.Fault);
        Assert.Equal(200, result.Response!.StatusCode);
        Assert.Contains(result.Response.Headers, h => h.Key == "Content-Type" && h.Value == "text/plain");
        Assert.Equal("Hello from WarpGrid!\n", Body(result));
    }

    [Fact]
    public async Task Wagi_environment_carries_the_request()
    {
        await using var pool = Pool(Guests.Testbed);
        using var result = await pool.InvokeAsync(Request("/env", "POST", "abc"u8.ToArray(), "a=1&b=two", new("X-Request-Id", "r-42"), new("Content-Type", "text/csv")));
        Assert.Null(result.Fault);
        var env = Body(result).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : string.Empty);
        Assert.Equal("POST", env["REQUEST_METHOD"]);
        Assert.Equal("/env", env["PATH_INFO"]);
        Assert.Equal("/env", env["X_RAW_PATH_INFO"]);
        Assert.Equal("a=1&b=two", env["QUERY_STRING"]);
        Assert.Equal("/testbed", env["SCRIPT_NAME"]);
        Assert.Equal("example.test", env["SERVER_NAME"]);
        Assert.Equal("8080", env["SERVER_PORT"]);
        Assert.Equal("HTTP/1.1", env["SERVER_PROTOCOL"]);
        Assert.Equal("127.0.0.9", env["REMOTE_ADDR"]);
        Assert.Equal("text/csv", env["CONTENT_TYPE"]);
        Assert.Equal("3", env["CONTENT_LENGTH"]);
        Assert.Equal("http://example.test:8080/testbed/env?a=1&b=two", env["X_FULL_URL"]);
        Assert.Equal("/testbed/...", env["X_MATCHED_ROUTE"]);
        Assert.Equal("r-42", env["HTTP_X_REQUEST_ID"]);
        Assert.Equal("hi", env["GREETING"]);
    }

    [Fact]
    public async Task Body_goes_to_stdin_and_headers_come_back()
    {
        await using var pool = Pool(Guests.Testbed);
        var body = new byte[300_000];
        new Random(7).NextBytes(body);
        using var result = await pool.InvokeAsync(Request("/echo", "PUT", body));
        Assert.Null(result.Fault);
        Assert.Equal(body, result.Response!.Body.ToArray());
        Assert.Contains(result.Response.Headers, h => h.Key == "X-Echo-Length" && h.Value == "300000");
        Assert.Contains(result.Response.Headers, h => h.Key == "X-Request-Method" && h.Value == "PUT");
    }

    [Fact]
    public async Task Status_and_location_headers_map_to_http_status()
    {
        await using var pool = Pool(Guests.Testbed);
        using (var teapot = await pool.InvokeAsync(Request("/status")))
        {
            Assert.Equal(418, teapot.Response!.StatusCode);
            Assert.Contains(teapot.Response.Headers, h => h.Key == "X-Custom" && h.Value == "yes");
            Assert.DoesNotContain(teapot.Response.Headers, h => h.Key == "Status");
        }

        using var redirect = await pool.InvokeAsync(Request("/redirect"));
        Assert.Equal(302, redirect.Response!.StatusCode);
        Assert.Contains(redirect.Response.Headers, h => h.Key == "Location" && h.Value == "/testbed/env");
    }

    [Fact]
    public async Task Infinite_loop_times_out_and_instance_is_replaced()
    {
        await using var pool = Pool(Guests.Testbed, timeout: TimeSpan.FromMilliseconds(200));
        var before = pool.Instances().Single().Id;
        using var result = await pool.InvokeAsync(Request("/loop"));
        Assert.Equal(InvocationOutcome.Timeout, result.Fault!.Outcome);
        Assert.Equal(504, result.Fault.HttpStatus);
        var after = pool.Instances().Single().Id;
        Assert.NotEqual(before, after);
        using var ok = await pool.InvokeAsync(Request("/status"));
        Assert.Equal(418, ok.Response!.StatusCode);
    }

    [Fact]
    public async Task Unbounded_allocation_is_out_of_memory()
    {
        await using var pool = Pool(Guests.Testbed, memory: 16L << 20);
        using var result = await pool.InvokeAsync(Request("/oom"));
        Assert.Equal(InvocationOutcome.OutOfMemory, result.Fault!.Outcome);
        Assert.Equal(500, result.Fault.HttpStatus);
        Assert.Contains("memory_limit", result.Fault.Message);
    }

    [Fact]
    public async Task Unbounded_recursion_is_a_stack_overflow()
    {
        await using var pool = Pool(Guests.Testbed);
        using var result = await pool.InvokeAsync(Request("/recurse"));
        Assert.Equal(InvocationOutcome.StackOverflow, result.Fault!.Outcome);
    }

    [Fact]
    public async Task Unreachable_is_a_trap()
    {
        await using var pool = Pool(Guests.Testbed);
        using var result = await pool.InvokeAsync(Request("/trap"));
        Assert.Equal(InvocationOutcome.Trap, result.Fault!.Outcome);
        Assert.Equal(Wasmtime.TrapCode.Unreachable, result.Fault.TrapCode);
    }

    [Fact]
    public async Task Proc_exit_3_is_an_exit_fault_with_the_code()
    {
        await using var pool = Pool(Guests.Testbed);
        using var result = await pool.InvokeAsync(Request("/exit3"));
        Assert.Equal(InvocationOutcome.Exit, result.Fault!.Outcome);
        Assert.Equal(3, result.Fault.ExitCode);
    }

    [Fact]
    public async Task Proc_exit_0_is_success()
    {
        await using var pool = Pool(Guests.HelloZig);
        using var result = await pool.InvokeAsync(Request("/zig", query: "x=1"));
        Assert.Null(result.Fault);
        Assert.Contains("/zig", Body(result));
    }

    [Fact]
    public async Task Wat_sample_loads_from_text()
    {
        await using var pool = Pool(Guests.EchoWat);
        using var result = await pool.InvokeAsync(Request("/", "POST", "ping"u8.ToArray()));
        Assert.Null(result.Fault);
        Assert.Equal("ping", Body(result));
    }

    [Fact]
    public void Not_wasm_is_rejected_with_a_reason()
    {
        var ex = Assert.Throws<WasmValidationException>(() => _runtime.Modules.LoadFile(Guests.NotWasm));
        Assert.Contains("not a WebAssembly binary", ex.Message);
    }

    [Fact]
    public async Task Requests_past_the_cap_wait_then_get_overloaded()
    {
        // The queued request must still be waiting when the test looks (and when the third is refused). The guest
        // runs on the thread that invokes it, so with other tests' guests busy on a loaded two-core machine a
        // thread-pool request could start only after the loop ended (it never waited; seen twice): both run on
        // their own threads, and the queue timeout (3 s) leaves the test time to look, inside the 6 s loop.
        await using var pool = Pool(Guests.Testbed, min: 1, max: 1, timeout: TimeSpan.FromSeconds(6), queue: 1, queueTimeout: TimeSpan.FromSeconds(3));
        var looping = OwnThread(async () => { using var r = await pool.InvokeAsync(Request("/loop")); return r.Fault?.Outcome; });
        await WaitUntil(() => pool.Stats.Busy == 1);
        var queued = OwnThread(async () => { using var r = await pool.InvokeAsync(Request("/status")); return r.Fault?.Outcome; });
        await WaitUntil(() => pool.Stats.Waiting == 1);
        using (var rejected = await pool.InvokeAsync(Request("/status")))
        {
            Assert.Equal(InvocationOutcome.Overloaded, rejected.Fault!.Outcome);
            Assert.Equal(503, rejected.Fault.HttpStatus);
        }

        Assert.Equal(InvocationOutcome.Overloaded, await queued);
        Assert.Equal(InvocationOutcome.Timeout, await looping);
    }

    [Fact]
    public async Task Node_cap_refuses_instances_with_a_clear_error()
    {
        using var small = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 2 });
        var module = small.Modules.LoadFile(Guests.Hello);
        await using var a = small.CreatePool(new PoolSettings { Deployment = "a", MinInstances = 2, MaxInstances = 4 }, module);
        var ex = Assert.Throws<InstanceLimitException>(() => small.CreatePool(new PoolSettings { Deployment = "b", MinInstances = 1 }, module));
        Assert.Contains("MaxInstancesPerNode", ex.Message);
    }

    [Fact]
    public async Task Concurrent_requests_use_several_instances()
    {
        await using var pool = Pool(Guests.Testbed, min: 1, max: 4);
        var tasks = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            using var r = await pool.InvokeAsync(Request("/status"));
            return r.Response?.StatusCode;
        }));
        var statuses = await Task.WhenAll(tasks);
        Assert.All(statuses, s => Assert.Equal(418, s));
        Assert.True(pool.Stats.Live <= 4);
        Assert.Equal(64, pool.Stats.Requests);
    }

    /// <summary>Starts <paramref name="work"/> on a thread of its own rather than waiting for a thread-pool thread.</summary>
    private static Task<T> OwnThread<T>(Func<Task<T>> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("condition not met");
            }

            await Task.Delay(5);
        }
    }
}
