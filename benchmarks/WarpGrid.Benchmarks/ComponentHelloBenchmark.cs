using System.Text;
using BenchmarkDotNet.Attributes;
using WarpGrid.Benchmarks.Shared;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Benchmarks;

/// <summary>
/// One <c>wasi:http</c> request handled in process (take a pre-instantiated instance, call <c>handle</c>, collect the
/// streamed response; the used store is dropped and the next instance instantiated, inline when that is cheap and on a
/// thread-pool thread when it is not), for the
/// C component hello (<c>tests/guests/http-c/hello-c.wasm</c>, 8 KB, the <c>/hello</c> path alone; and the 45 KB test
/// guest <c>http-c.wasm</c> with every test path and import, to show what a larger component costs) and
/// <c>samples/hello-js</c> (StarlingMonkey, 13 MB), against one WAGI request to the C <c>samples/hello</c> in the same run. Goal (issue 4): a component hello ≤ 2× the WAGI cost.
/// </summary>
[MemoryDiagnoser]
public class ComponentHelloBenchmark
{
    private WasmNodeRuntime _runtime = null!;
    private ComponentHttpPool _helloJs = null!;
    private ComponentHttpPool _helloC = null!;
    private ComponentHttpPool _httpC = null!;
    private InstancePool _wagiHello = null!;
    private WagiRequest _wagi = null!;

    /// <summary>Bytes each pooled slot keeps resident; the runtime's default unless a driver (<c>--request-cost</c>) sets it.</summary>
    public long KeepResidentBytes { get; set; } = new WasmRuntimeOptions().KeepResidentBytes;

    [GlobalSetup]
    public void Setup()
    {
        // A cache directory so repeated runs load the 13 MB component in milliseconds instead of compiling it again.
        var cache = Path.Combine(Path.GetTempPath(), "warpgrid-bench-cache");
        _runtime = new WasmNodeRuntime(new WasmRuntimeOptions { MaxInstancesPerNode = 64, MaxMemoryPerInstanceBytes = 256L << 20, CompiledCacheDirectory = cache, KeepResidentBytes = KeepResidentBytes });
        var component = _runtime.Modules.GetOrCompileComponent(File.ReadAllBytes(RepoPaths.Combine("samples", "hello-js", "hello-js.wasm")));
        _helloJs = _runtime.CreateComponentPool(new PoolSettings { Deployment = "hello-js", MinInstances = 1, MaxInstances = 4, MemoryLimitBytes = 128L << 20, RequestTimeout = TimeSpan.FromSeconds(5) }, component);
        _helloC = CreateCPool("hello-c");
        _httpC = CreateCPool("http-c");
        _wagiHello = _runtime.CreatePool(new PoolSettings { Deployment = "hello", MinInstances = 1, MaxInstances = 4, MemoryLimitBytes = 16L << 20, RequestTimeout = TimeSpan.FromSeconds(5) }, _runtime.Modules.LoadFile(RepoPaths.Combine("samples", "hello", "hello.wasm")));
        _wagi = new WagiRequest
        {
            Method = "GET",
            ScriptName = "/hello",
            PathInfo = "/",
            RawPathInfo = "/",
            ServerName = "127.0.0.1",
            ServerPort = 8080,
            RemoteAddress = "127.0.0.1",
            FullUrl = "http://127.0.0.1:8080/hello",
            MatchedRoute = "/hello/...",
            Headers = [new("Host", "127.0.0.1:8080"), new("User-Agent", "wrk"), new("Accept", "*/*")],
        };

        Check(_helloJs, "/hello-js", "Hello from JavaScript on WarpGrid! You asked for /hello-js\n");
        Check(_helloC, "/hello", "Hello from C on WarpGrid (wasi:http)!\n");
        Check(_httpC, "/hello", "Hello from C on WarpGrid (wasi:http)!\n");
    }

    private ComponentHttpPool CreateCPool(string name)
    {
        var component = _runtime.Modules.GetOrCompileComponent(File.ReadAllBytes(RepoPaths.Combine("tests", "guests", "http-c", name + ".wasm")));
        return _runtime.CreateComponentPool(new PoolSettings { Deployment = name, MinInstances = 1, MaxInstances = 4, MemoryLimitBytes = 16L << 20, RequestTimeout = TimeSpan.FromSeconds(5) }, component);
    }

    private static void Check(ComponentHttpPool pool, string path, string expected)
    {
        var check = new Exchange(path);
        var result = pool.InvokeAsync(check).AsTask().GetAwaiter().GetResult();
        var body = Encoding.UTF8.GetString(check.Body.ToArray());
        if (result.Fault is not null || check.Status != 200 || body != expected)
        {
            throw new InvalidOperationException($"{pool.Settings.Deployment}: {result.Fault?.Code} {result.Fault?.Message} {check.Status} \"{body}\"");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _helloJs.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _helloC.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _httpC.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _wagiHello.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runtime.Dispose();
    }

    /// <summary>WAGI <c>samples/hello</c> (C): the baseline.</summary>
    [Benchmark(Baseline = true, Description = "WAGI hello (C)")]
    public async ValueTask<int> WagiHello()
    {
        using var result = await _wagiHello.InvokeAsync(_wagi).ConfigureAwait(false);
        return result.Response?.Body.Length ?? throw new InvalidOperationException(result.Fault?.Message);
    }

    /// <summary><c>wasi:http</c> C hello (<c>tests/guests/http-c/hello-c.wasm</c> <c>/hello</c>), fresh instance per request.</summary>
    [Benchmark(Description = "component hello (C, wasi:http)")]
    public ValueTask<long> ComponentHelloC() => Hello(_helloC);

    /// <summary>The same <c>/hello</c> on the whole test guest <c>http-c.wasm</c> (45 KB, more imports to link per instance).</summary>
    [Benchmark(Description = "component hello (C test guest http-c)")]
    public ValueTask<long> ComponentHttpC() => Hello(_httpC);

    private static async ValueTask<long> Hello(ComponentHttpPool pool)
    {
        var exchange = new Exchange("/hello");
        var result = await pool.InvokeAsync(exchange).ConfigureAwait(false);
        return result.Fault is null ? exchange.Body.Length : throw new InvalidOperationException(result.Fault.Message);
    }

    /// <summary><c>wasi:http</c> <c>samples/hello-js</c> (StarlingMonkey), fresh instance per request.</summary>
    [Benchmark(Description = "component hello-js (wasi:http)")]
    public async ValueTask<long> ComponentHello()
    {
        var exchange = new Exchange("/hello-js");
        var result = await _helloJs.InvokeAsync(exchange).ConfigureAwait(false);
        return result.Fault is null ? exchange.Body.Length : throw new InvalidOperationException(result.Fault.Message);
    }

    private sealed class Exchange(string path) : IComponentHttpExchange
    {
        public string Method => "GET";

        public string PathWithQuery => path;

        public string Scheme => "http";

        public string? Authority => "127.0.0.1:8080";

        public IEnumerable<KeyValuePair<string, string>> RequestHeaders { get; } = [new("host", "127.0.0.1:8080"), new("user-agent", "wrk"), new("accept", "*/*")];

        public Stream RequestBody { get; } = Stream.Null;

        public bool ResponseStarted { get; private set; }

        public int Status { get; private set; }

        public MemoryStream Body { get; } = new();

        public void StartResponse(int status, IReadOnlyList<KeyValuePair<string, string>> headers)
        {
            Status = status;
            ResponseStarted = true;
        }

        public void WriteResponseBody(ReadOnlySpan<byte> bytes) => Body.Write(bytes);

        public void FlushResponseBody()
        {
        }
    }
}
