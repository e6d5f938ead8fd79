using System.Text;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Core.Tests.Runtime;

/// <summary>Hostile and unusual calls into the WASI host, from hand-written guests.</summary>
public sealed class WasiHostTests : IDisposable
{
    private readonly WasmNodeRuntime _runtime = new(new WasmRuntimeOptions { MaxInstancesPerNode = 8 });

    public void Dispose() => _runtime.Dispose();

    private async Task<InvocationResult> RunAsync(string wat, string body = "")
    {
        var module = _runtime.Modules.GetOrCompile(Wasmtime.Module.ConvertText(wat));
        await using var pool = _runtime.CreatePool(new PoolSettings { Deployment = "wat", MinInstances = 0, MaxInstances = 1, RequestTimeout = TimeSpan.FromSeconds(2) }, module);
        return await pool.InvokeAsync(new WagiRequest { Body = Encoding.UTF8.GetBytes(body) });
    }

    private const string Prelude = """
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 256) "Content-Type: text/plain\n\n")
        ;; writes "<errno as 2 digits>\n" after the headers; errno in $e
        (func $report (param $e i32)
          (i32.store (i32.const 0) (i32.const 256)) (i32.store (i32.const 4) (i32.const 26))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
          (i32.store8 (i32.const 300) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
          (i32.store8 (i32.const 301) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
          (i32.store8 (i32.const 302) (i32.const 10))
          (i32.store (i32.const 0) (i32.const 300)) (i32.store (i32.const 4) (i32.const 3))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))
        """;

    [Fact]
    public async Task Out_of_bounds_pointer_gets_efault_not_a_crash()
    {
        using var result = await RunAsync($$"""
            (module {{Prelude}}
              (func (export "_start")
                ;; iovec at 8 points far outside the 64 KiB memory
                (i32.store (i32.const 8) (i32.const 0x7ffffff0)) (i32.store (i32.const 12) (i32.const 100))
                (call $report (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))))
            """);
        Assert.Null(result.Fault);
        Assert.Equal("21\n", Encoding.UTF8.GetString(result.Response!.Body.Span));
    }

    [Theory]
    [InlineData("(call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16))", "76\n")]
    [InlineData("(call $prestat (i32.const 3) (i32.const 16))", "08\n")]
    [InlineData("(call $sock_accept (i32.const 3) (i32.const 0) (i32.const 16))", "76\n")]
    public async Task Filesystem_and_sockets_are_denied(string call, string expected)
    {
        using var result = await RunAsync($$"""
            (module {{Prelude}}
              (func (export "_start") (call $report {{call}})))
            """);
        Assert.Null(result.Fault);
        Assert.Equal(expected, Encoding.UTF8.GetString(result.Response!.Body.Span));
    }

    [Fact]
    public async Task Writing_to_an_unknown_descriptor_is_ebadf()
    {
        using var result = await RunAsync($$"""
            (module {{Prelude}}
              (func (export "_start")
                (i32.store (i32.const 8) (i32.const 256)) (i32.store (i32.const 12) (i32.const 4))
                (call $report (call $fd_write (i32.const 7) (i32.const 8) (i32.const 1) (i32.const 16)))))
            """);
        Assert.Equal("08\n", Encoding.UTF8.GetString(result.Response!.Body.Span));
    }

    [Fact]
    public async Task Output_without_headers_is_a_bad_response()
    {
        using var result = await RunAsync($$"""
            (module {{Prelude}}
              (data (i32.const 400) "just a body")
              (func (export "_start")
                (i32.store (i32.const 8) (i32.const 400)) (i32.store (i32.const 12) (i32.const 11))
                (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))))
            """);
        Assert.Equal(InvocationOutcome.BadResponse, result.Fault!.Outcome);
        Assert.Equal(502, result.Fault.HttpStatus);
    }
}
