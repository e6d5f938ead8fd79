using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wasmtime;

namespace WarpGrid.Core.Runtime;

/// <summary>What a byte array holds.</summary>
public enum WasmBinaryKind
{
    /// <summary>Not WebAssembly at all.</summary>
    NotWasm,

    /// <summary>A core module (WASI preview 1 and earlier).</summary>
    Module,

    /// <summary>A component (WASI 0.2, component model).</summary>
    Component,
}

/// <summary>Thrown when bytes are not a valid WebAssembly module this node can run.</summary>
public sealed class WasmValidationException(string message) : Exception(message);

/// <summary>A module compiled for this node's engine, shared by every deployment that uses the same bytes.</summary>
public sealed class CompiledModule
{
    internal CompiledModule(string digest, Module module, long sizeBytes, bool fromCache, TimeSpan loadTime)
    {
        Digest = digest;
        Module = module;
        SizeBytes = sizeBytes;
        FromCache = fromCache;
        LoadTime = loadTime;
    }

    /// <summary>The content digest of the wasm bytes, <c>sha256:&lt;hex&gt;</c>.</summary>
    public string Digest { get; }

    /// <summary>The compiled module.</summary>
    public Module Module { get; }

    /// <summary>Size of the wasm bytes.</summary>
    public long SizeBytes { get; }

    /// <summary>True when the compiled code came from the disk cache rather than the compiler.</summary>
    public bool FromCache { get; }

    /// <summary>Time spent compiling or deserializing.</summary>
    public TimeSpan LoadTime { get; }
}

/// <summary>Counters of the compiled-code cache.</summary>
public readonly record struct ModuleCacheStats(long MemoryHits, long DiskHits, long Compiles, long RejectedFiles);

/// <summary>
/// Compiles modules once per node. Compiled code is kept in memory by digest and on disk keyed by the module's
/// sha256 plus the engine fingerprint; a disk entry carries an HMAC under a key only this node holds, so a corrupted,
/// truncated or foreign file is detected and recompiled, never loaded blindly (it is native code).
/// </summary>
public sealed partial class ModuleCache
{
    private const int HeaderSize = 112;
    private const int MacOffset = 80;
    private static readonly byte[] Magic = "WGCM"u8.ToArray();

    private readonly WasmEngineHost _host;
    private readonly ILogger _logger;
    private readonly string? _directory;
    private readonly byte[] _fingerprintHash;
    private readonly byte[]? _key;
    private readonly ConcurrentDictionary<string, Lazy<CompiledModule>> _modules = new(StringComparer.Ordinal);
    private long _memoryHits;
    private long _diskHits;
    private long _compiles;
    private long _rejected;

    public ModuleCache(WasmEngineHost host, ILogger<ModuleCache>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _fingerprintHash = SHA256.HashData(Encoding.UTF8.GetBytes(host.Fingerprint));
        _directory = host.Options.CompiledCacheDirectory;
        if (_directory is not null)
        {
            Directory.CreateDirectory(_directory);
            _key = LoadOrCreateKey(Path.Combine(_directory, "cache.key"));
        }
    }

    /// <summary>Cache counters.</summary>
    public ModuleCacheStats Stats => new(Interlocked.Read(ref _memoryHits), Interlocked.Read(ref _diskHits), Interlocked.Read(ref _compiles), Interlocked.Read(ref _rejected));

    /// <summary>Computes the <c>sha256:&lt;hex&gt;</c> digest of some bytes.</summary>
    public static string ComputeDigest(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>Tells a core module from a component from anything else by the header.</summary>
    public static WasmBinaryKind Classify(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 8 || !bytes[..4].SequenceEqual("\0asm"u8))
        {
            return WasmBinaryKind.NotWasm;
        }

        return bytes[6] == 1 && bytes[4] != 1 ? WasmBinaryKind.Component : WasmBinaryKind.Module;
    }

    /// <summary>Validates bytes as a core module for this engine; throws <see cref="WasmValidationException"/> with the reason.</summary>
    public void Validate(ReadOnlySpan<byte> bytes)
    {
        switch (Classify(bytes))
        {
            case WasmBinaryKind.NotWasm:
                var head = bytes[..Math.Min(4, bytes.Length)];
                throw new WasmValidationException(
                    $"not a WebAssembly binary: expected the magic bytes 00 61 73 6d (\"\\0asm\") but found {(head.IsEmpty ? "an empty file" : Convert.ToHexString(head).ToLowerInvariant())} ({bytes.Length} bytes). If this is WAT text, deploy the .wat file so it is converted.");
            case WasmBinaryKind.Component:
                throw new WasmValidationException("this is a WebAssembly component (WASI 0.2); this node's http trigger runs WASI preview 1 core modules built for wasm32-wasi.");
        }

        var error = Module.Validate(_host.Engine, bytes);
        if (!string.IsNullOrEmpty(error))
        {
            throw new WasmValidationException("invalid WebAssembly module: " + error.Trim());
        }
    }

    /// <summary>Loads a module from a <c>.wasm</c> or <c>.wat</c> file.</summary>
    public CompiledModule LoadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        if (path.EndsWith(".wat", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                bytes = Module.ConvertText(File.ReadAllText(path));
            }
            catch (WasmtimeException ex)
            {
                throw new WasmValidationException($"{path}: invalid WAT: {ex.Message.Trim()}");
            }
        }
        else
        {
            bytes = File.ReadAllBytes(path);
        }

        return GetOrCompile(bytes);
    }

    /// <summary>Returns the compiled module for a digest already loaded on this node, if any.</summary>
    public bool TryGet(string digest, out CompiledModule? module)
    {
        if (_modules.TryGetValue(digest, out var lazy) && lazy.IsValueCreated)
        {
            module = lazy.Value;
            return true;
        }

        module = null;
        return false;
    }

    /// <summary>Validates and compiles <paramref name="wasm"/>, or returns the already-compiled module with the same digest.</summary>
    public CompiledModule GetOrCompile(ReadOnlyMemory<byte> wasm)
    {
        var digest = ComputeDigest(wasm.Span);
        if (_modules.TryGetValue(digest, out var existing) && existing.IsValueCreated)
        {
            Interlocked.Increment(ref _memoryHits);
            return existing.Value;
        }

        var lazy = _modules.GetOrAdd(digest, d => new Lazy<CompiledModule>(() => Load(d, wasm), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return lazy.Value;
        }
        catch
        {
            _modules.TryRemove(new KeyValuePair<string, Lazy<CompiledModule>>(digest, lazy));
            throw;
        }
    }

    /// <summary>The path of the disk cache entry for a digest (whether or not it exists).</summary>
    public string? GetCachePath(string digest) =>
        _directory is null ? null : Path.Combine(_directory, digest.Replace("sha256:", string.Empty, StringComparison.Ordinal) + "-" + Convert.ToHexStringLower(_fingerprintHash.AsSpan(0, 8)) + ".cwasm");

    /// <summary>Forgets a module from memory (the disk entry stays).</summary>
    public void Forget(string digest) => _modules.TryRemove(digest, out _);

    private CompiledModule Load(string digest, ReadOnlyMemory<byte> wasm)
    {
        var started = Stopwatch.GetTimestamp();
        var path = GetCachePath(digest);
        if (path is not null && File.Exists(path))
        {
            var module = TryLoadCached(path, digest, bytes => Module.Deserialize(_host.Engine, digest, bytes.AsSpan(HeaderSize)));
            if (module is not null)
            {
                Interlocked.Increment(ref _diskHits);
                var elapsed = Stopwatch.GetElapsedTime(started);
                Log.CacheHit(_logger, digest, elapsed.TotalMilliseconds);
                return new CompiledModule(digest, module, wasm.Length, fromCache: true, elapsed);
            }
        }

        Validate(wasm.Span);
        Module compiled;
        try
        {
            compiled = Module.FromBytes(_host.Engine, digest, wasm.Span);
        }
        catch (WasmtimeException ex)
        {
            throw new WasmValidationException("the module failed to compile: " + ex.Message.Trim());
        }

        Interlocked.Increment(ref _compiles);
        var compileTime = Stopwatch.GetElapsedTime(started);
        Log.Compiled(_logger, digest, wasm.Length, compileTime.TotalMilliseconds);
        if (path is not null)
        {
            TryWriteCached(path, digest, compiled.Serialize());
        }

        return new CompiledModule(digest, compiled, wasm.Length, fromCache: false, compileTime);
    }

    /// <summary>Writes a disk cache entry; a failure is logged and the node goes on without the entry.</summary>
    private void TryWriteCached(string path, string digest, byte[] payload)
    {
        try
        {
            WriteCached(path, digest, payload);
        }
        catch (IOException ex)
        {
            Log.CacheWriteFailed(_logger, path, ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            Log.CacheWriteFailed(_logger, path, ex);
        }
    }

    /// <summary>
    /// Reads and checks a disk cache entry and deserializes its payload (the bytes after the header) with
    /// <paramref name="deserialize"/>; a damaged, foreign or undeserializable entry is counted, logged, deleted and
    /// gives null.
    /// </summary>
    private T? TryLoadCached<T>(string path, string digest, Func<byte[], T> deserialize)
        where T : class
    {
        string? reason = null;
        try
        {
            var bytes = File.ReadAllBytes(path);
            reason = CheckEntry(bytes, digest);
            if (reason is null)
            {
                return deserialize(bytes);
            }
        }
        catch (IOException ex)
        {
            reason = ex.Message;
        }
        catch (WasmtimeException ex)
        {
            reason = "deserialize failed: " + ex.Message.Trim();
        }

        Interlocked.Increment(ref _rejected);
        Log.CacheRejected(_logger, path, reason ?? "unknown");
        TryDelete(path);
        return null;
    }

    private string? CheckEntry(byte[] bytes, string digest)
    {
        if (bytes.Length < HeaderSize)
        {
            return $"truncated: {bytes.Length} bytes, shorter than the {HeaderSize}-byte header";
        }

        var span = bytes.AsSpan();
        if (!span[..4].SequenceEqual(Magic) || BinaryPrimitives.ReadUInt16LittleEndian(span[4..]) != 1)
        {
            return "not a WarpGrid compiled-cache file (bad magic or version)";
        }

        if (!span.Slice(8, 32).SequenceEqual(Convert.FromHexString(digest.AsSpan(7))))
        {
            return "entry is for a different module digest";
        }

        if (!span.Slice(40, 32).SequenceEqual(_fingerprintHash))
        {
            return "entry was compiled with different engine settings";
        }

        var length = BinaryPrimitives.ReadInt64LittleEndian(span[72..]);
        if (length != bytes.Length - HeaderSize)
        {
            return $"truncated or padded: header says {length} bytes of code, file has {bytes.Length - HeaderSize}";
        }

        if (!CryptographicOperations.FixedTimeEquals(ComputeMac(span[..MacOffset], span[HeaderSize..]), span.Slice(MacOffset, 32)))
        {
            return "integrity check failed (corrupted, or written by another node)";
        }

        return null;
    }

    private void WriteCached(string path, string digest, byte[] payload)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(4), 1);
        Convert.FromHexString(digest.AsSpan(7)).CopyTo(header, 8);
        _fingerprintHash.CopyTo(header, 40);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(72), payload.Length);
        ComputeMac(header.AsSpan(0, MacOffset), payload).CopyTo(header, MacOffset);

        var temp = path + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                stream.Write(header);
                stream.Write(payload);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private byte[] ComputeMac(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key!);
        hmac.AppendData(header);
        hmac.AppendData(payload);
        return hmac.GetHashAndReset();
    }

    private static byte[] LoadOrCreateKey(string path)
    {
        if (File.Exists(path))
        {
            var existing = File.ReadAllBytes(path);
            if (existing.Length == 32)
            {
                return existing;
            }
        }

        var key = RandomNumberGenerator.GetBytes(32);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temp, options))
        {
            stream.Write(key);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
        return key;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "Loaded {Digest} from the compiled cache in {Milliseconds:F2} ms")]
        public static partial void CacheHit(ILogger logger, string digest, double milliseconds);

        [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Compiled {Digest} ({Bytes} bytes) in {Milliseconds:F1} ms")]
        public static partial void Compiled(ILogger logger, string digest, long bytes, double milliseconds);

        [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Rejected compiled-cache file {Path}: {Reason}; recompiling")]
        public static partial void CacheRejected(ILogger logger, string path, string reason);

        [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Could not write compiled-cache file {Path}")]
        public static partial void CacheWriteFailed(ILogger logger, string path, Exception exception);
    }
}
