using WarpGrid.Core.Runtime;

namespace WarpGrid.Core.Tests.Runtime;

public sealed class ModuleCacheTests : IDisposable
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "wg-cache-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_cache))
        {
            Directory.Delete(_cache, recursive: true);
        }
    }

    private WasmNodeRuntime Runtime(string? cache = null) => new(new WasmRuntimeOptions { MaxInstancesPerNode = 8, CompiledCacheDirectory = cache ?? _cache });

    [Fact]
    public void Second_node_start_deserializes_instead_of_compiling()
    {
        using (var first = Runtime())
        {
            var compiled = first.Modules.LoadFile(Guests.Testbed);
            Assert.False(compiled.FromCache);
            Assert.Equal(1, first.Modules.Stats.Compiles);
            Assert.True(File.Exists(first.Modules.GetCachePath(compiled.Digest)));
        }

        using var second = Runtime();
        var again = second.Modules.LoadFile(Guests.Testbed);
        Assert.True(again.FromCache);
        Assert.Equal(0, second.Modules.Stats.Compiles);
        Assert.Equal(1, second.Modules.Stats.DiskHits);
    }

    [Fact]
    public void Same_bytes_compile_once_per_node()
    {
        using var runtime = Runtime();
        var a = runtime.Modules.LoadFile(Guests.Hello);
        var b = runtime.Modules.GetOrCompile(File.ReadAllBytes(Guests.Hello));
        Assert.Same(a, b);
        Assert.Equal(1, runtime.Modules.Stats.Compiles);
        Assert.Equal(1, runtime.Modules.Stats.MemoryHits);
    }

    public static TheoryData<string> Damage => new() { "flip-payload", "flip-header", "truncate", "empty", "garbage" };

    [Theory]
    [MemberData(nameof(Damage))]
    public async Task Damaged_cache_file_is_detected_and_recompiled(string damage)
    {
        string path;
        using (var first = Runtime())
        {
            path = first.Modules.GetCachePath(first.Modules.LoadFile(Guests.Testbed).Digest)!;
        }

        var bytes = await File.ReadAllBytesAsync(path);
        switch (damage)
        {
            case "flip-payload":
                bytes[^100] ^= 0xFF;
                break;
            case "flip-header":
                bytes[50] ^= 0x01;
                break;
            case "truncate":
                Array.Resize(ref bytes, bytes.Length / 2);
                break;
            case "empty":
                bytes = [];
                break;
            case "garbage":
                new Random(1).NextBytes(bytes);
                break;
        }

        await File.WriteAllBytesAsync(path, bytes);
        using var second = Runtime();
        var compiled = second.Modules.LoadFile(Guests.Testbed);
        Assert.False(compiled.FromCache);
        Assert.Equal(1, second.Modules.Stats.RejectedFiles);
        Assert.Equal(1, second.Modules.Stats.Compiles);

        // The rewritten entry is good again.
        using var third = Runtime();
        Assert.True(third.Modules.LoadFile(Guests.Testbed).FromCache);
    }

    [Fact]
    public void Entry_written_by_another_node_is_refused()
    {
        var otherCache = _cache + "-other";
        try
        {
            string foreign;
            using (var other = Runtime(otherCache))
            {
                foreign = other.Modules.GetCachePath(other.Modules.LoadFile(Guests.Testbed).Digest)!;
            }

            using (var mine = Runtime())
            {
                mine.Modules.LoadFile(Guests.Hello); // creates this node's key
            }

            // Same engine settings and digest, but signed with the other node's key.
            File.Copy(foreign, Path.Combine(_cache, Path.GetFileName(foreign)), overwrite: true);
            using var node = Runtime();
            var compiled = node.Modules.LoadFile(Guests.Testbed);
            Assert.False(compiled.FromCache);
            Assert.Equal(1, node.Modules.Stats.RejectedFiles);
        }
        finally
        {
            Directory.Delete(otherCache, recursive: true);
        }
    }

    [Fact]
    public void Classify_tells_modules_components_and_garbage_apart()
    {
        Assert.Equal(WasmBinaryKind.Module, ModuleCache.Classify(File.ReadAllBytes(Guests.Hello)));
        Assert.Equal(WasmBinaryKind.Component, ModuleCache.Classify([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]));
        Assert.Equal(WasmBinaryKind.NotWasm, ModuleCache.Classify(File.ReadAllBytes(Guests.NotWasm)));
        Assert.Equal(WasmBinaryKind.NotWasm, ModuleCache.Classify([]));
    }

    [Fact]
    public void Invalid_module_reports_the_validator_message()
    {
        using var runtime = Runtime();
        // Valid header, then a type section whose declared size overruns the file.
        byte[] broken = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 0x7f, 0x01];
        var ex = Assert.Throws<WasmValidationException>(() => runtime.Modules.GetOrCompile(broken));
        Assert.StartsWith("invalid WebAssembly module:", ex.Message);
        var component = Assert.Throws<WasmValidationException>(() => runtime.Modules.GetOrCompile(new byte[] { 0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0 }));
        Assert.Contains("component", component.Message);
    }

    [Fact]
    public void Module_that_is_not_a_wagi_command_is_refused_with_reasons()
    {
        using var runtime = Runtime();
        var reactor = runtime.Modules.GetOrCompile(Wasmtime.Module.ConvertText("""
            (module
              (import "env" "callback" (func))
              (import "wasi_snapshot_preview1" "fd_write" (func (param i64)))
              (func (export "_initialize")))
            """));
        var ex = Assert.Throws<WasmValidationException>(() => WasmNodeRuntime.ValidateWagiModule(reactor));
        Assert.Contains("reactor", ex.Message);
        Assert.Contains("memory", ex.Message);
        Assert.Contains("env.callback", ex.Message);
        Assert.Contains("wasi_snapshot_preview1.fd_write has signature", ex.Message);
    }
}
