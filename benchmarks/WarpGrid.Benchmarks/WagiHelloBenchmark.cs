using System.Text;
using BenchmarkDotNet.Attributes;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Benchmarks;

/// <summary>
/// One WAGI request handled in process, the hot path without Kestrel: take an idle instance, fill the CGI environment,
/// run <c>_start</c>, parse the CGI output, recycle the slot into a fresh sandbox (new store + instantiate) for the next
/// request. Target: ≤ 25 µs median per request for <c>samples/hello</c>.
/// </summary>
[MemoryDiagnoser]
public class WagiHelloBenchmark
{
    private WasmNodeRuntime _runtime = null!;
    private InstancePool _helloC = null!;
    private InstancePool _helloZig = null!;
    private WagiRequest _requestC = null!;
    private WagiRequest _requestZig = null!;

    [GlobalSetup]
    public void Setup()
    {
        _runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 64L << 20 });
        _helloC = CreatePool("hello", RepoPaths.Combine("samples", "hello", "hello.wasm"));
        _helloZig = CreatePool("hello-zig", RepoPaths.Combine("samples", "hello-zig", "hello-zig.wasm"));
        _requestC = Request("/hello");
        _requestZig = Request("/hello-zig");

        // Fail the run (rather than measure an error path) when a guest does not answer as expected.
        Check(_helloC, _requestC, "Hello from WarpGrid!\n");
        Check(_helloZig, _requestZig, "Hello from Zig on WarpGrid! You asked for /\n");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _helloC.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _helloZig.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runtime.Dispose();
    }

    /// <summary><c>samples/hello/hello.wasm</c> (C, one <c>fd_write</c>).</summary>
    [Benchmark(Baseline = true, Description = "hello (C)")]
    public ValueTask<int> HelloC() => Invoke(_helloC, _requestC);

    /// <summary><c>samples/hello-zig/hello-zig.wasm</c> (Zig 0.11: reads PATH_INFO and QUERY_STRING, buffered write).</summary>
    [Benchmark(Description = "hello-zig (Zig)")]
    public ValueTask<int> HelloZig() => Invoke(_helloZig, _requestZig);

    private static async ValueTask<int> Invoke(InstancePool pool, WagiRequest request)
    {
        using var result = await pool.InvokeAsync(request).ConfigureAwait(false);
        if (result.Fault is not null)
        {
            throw new InvalidOperationException($"{pool.Settings.Deployment}: {result.Fault.Code}: {result.Fault.Message}");
        }

        return result.Response!.Body.Length;
    }

    private InstancePool CreatePool(string name, string path)
    {
        var module = _runtime.Modules.LoadFile(path);
        return _runtime.CreatePool(
            new PoolSettings
            {
                Deployment = name,
                MinInstances = 1,
                MaxInstances = 4,
                MemoryLimitBytes = 16L << 20,
                RequestTimeout = TimeSpan.FromSeconds(5),
            },
            module);
    }

    private static WagiRequest Request(string route) => new()
    {
        Method = "GET",
        ScriptName = route,
        PathInfo = "/",
        RawPathInfo = "/",
        ServerName = "127.0.0.1",
        ServerPort = 8080,
        RemoteAddress = "127.0.0.1",
        FullUrl = "http://127.0.0.1:8080" + route,
        MatchedRoute = route + "/...",
        Headers =
        [
            new("Host", "127.0.0.1:8080"),
            new("User-Agent", "wrk"),
            new("Accept", "*/*"),
        ],
    };

    private static void Check(InstancePool pool, WagiRequest request, string expectedBody)
    {
        using var result = pool.InvokeAsync(request).AsTask().GetAwaiter().GetResult();
        if (result.Fault is not null)
        {
            throw new InvalidOperationException($"{pool.Settings.Deployment}: {result.Fault.Code}: {result.Fault.Message}");
        }

        var body = Encoding.UTF8.GetString(result.Response!.Body.Span);
        if (result.Response.StatusCode != 200 || body != expectedBody)
        {
            throw new InvalidOperationException($"{pool.Settings.Deployment}: expected 200 \"{expectedBody.TrimEnd()}\", got {result.Response.StatusCode} \"{body.TrimEnd()}\"");
        }
    }
}
