using System.Collections.Concurrent;
using System.Diagnostics;
using WarpGrid.Core.Runtime.Components;
using Wasmtime;
using Wasmtime.Components;

namespace WarpGrid.Core.Runtime;

/// <summary>Components go through the same cache as modules: same digest key, engine fingerprint, HMAC'd disk entry.</summary>
public sealed partial class ModuleCache
{
    private readonly ConcurrentDictionary<string, Lazy<CompiledComponent>> _components = new(StringComparer.Ordinal);

    /// <summary>Compiles a component (or loads it from the compiled cache), or returns the one already loaded with the same digest.</summary>
    public CompiledComponent GetOrCompileComponent(ReadOnlyMemory<byte> wasm)
    {
        var digest = ComputeDigest(wasm.Span);
        if (_components.TryGetValue(digest, out var existing) && existing.IsValueCreated)
        {
            Interlocked.Increment(ref _memoryHits);
            return existing.Value;
        }

        var lazy = _components.GetOrAdd(digest, d => new Lazy<CompiledComponent>(() => LoadComponent(d, wasm), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return lazy.Value;
        }
        catch
        {
            _components.TryRemove(new KeyValuePair<string, Lazy<CompiledComponent>>(digest, lazy));
            throw;
        }
    }

    /// <summary>Returns a compiled component already loaded on this node, if any.</summary>
    public bool TryGetComponent(string digest, out CompiledComponent? component)
    {
        if (_components.TryGetValue(digest, out var lazy) && lazy.IsValueCreated)
        {
            component = lazy.Value;
            return true;
        }

        component = null;
        return false;
    }

    private CompiledComponent LoadComponent(string digest, ReadOnlyMemory<byte> wasm)
    {
        if (Classify(wasm.Span) != WasmBinaryKind.Component)
        {
            throw new WasmValidationException("not a WebAssembly component (the bytes are a core module or not WebAssembly)");
        }

        var started = Stopwatch.GetTimestamp();
        var path = GetCachePath(digest);
        if (path is not null && File.Exists(path))
        {
            var cached = TryLoadCached(path, digest, bytes => Component.Deserialize(_host.Engine, bytes.AsSpan(HeaderSize)));
            if (cached is not null)
            {
                Interlocked.Increment(ref _diskHits);
                var elapsed = Stopwatch.GetElapsedTime(started);
                Log.CacheHit(_logger, digest, elapsed.TotalMilliseconds);
                return new CompiledComponent(digest, cached, wasm.Length, fromCache: true, elapsed, _host.Engine);
            }
        }

        Component compiled;
        try
        {
            compiled = Component.FromBytes(_host.Engine, wasm.Span);
        }
        catch (WasmtimeException ex)
        {
            throw new WasmValidationException("the component failed to compile: " + ex.Message.Trim());
        }

        Interlocked.Increment(ref _compiles);
        var compileTime = Stopwatch.GetElapsedTime(started);
        Log.Compiled(_logger, digest, wasm.Length, compileTime.TotalMilliseconds);
        if (path is not null)
        {
            TryWriteCached(path, digest, compiled.Serialize());
        }

        return new CompiledComponent(digest, compiled, wasm.Length, fromCache: false, compileTime, _host.Engine);
    }
}
