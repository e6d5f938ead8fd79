using System.Buffers.Binary;
using System.Text;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Tests.Storage;

/// <summary>A fresh directory under the system temp directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "warpgrid-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string LogFile => System.IO.Path.Combine(Path, "wal.log");

    public string SnapshotFile => System.IO.Path.Combine(Path, "snapshot");

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }
}

internal static class StorageTestHelpers
{
    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    public static string Text(StoreEntry? entry) => entry is null ? "<null>" : Encoding.UTF8.GetString(entry.Value.Span);

    /// <summary>The offsets of the frames in a log file (after the 8-byte file header).</summary>
    public static List<(long Offset, int Length)> Frames(string logFile)
    {
        byte[] bytes = File.ReadAllBytes(logFile);
        var frames = new List<(long, int)>();
        long offset = 8;
        while (offset + 8 <= bytes.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)offset));
            frames.Add((offset, 8 + length));
            offset += 8 + length;
        }

        Assert.Equal(bytes.Length, offset);
        return frames;
    }

    /// <summary>Puts one key at a time so that every write is its own log frame.</summary>
    public static async Task PutSequentiallyAsync(IClusterStore store, int count, string prefix = "k/")
    {
        for (int i = 0; i < count; i++)
        {
            await store.PutAsync($"{prefix}{i:D4}", Bytes($"value-{i}"));
        }
    }

    public static async Task<List<StoreEvent>> TakeAsync(IAsyncEnumerable<StoreEvent> events, int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var result = new List<StoreEvent>();
        if (count == 0)
        {
            return result;
        }

        await foreach (StoreEvent e in events.WithCancellation(cts.Token))
        {
            result.Add(e);
            if (result.Count == count)
            {
                break;
            }
        }

        return result;
    }
}

/// <summary>An <see cref="Microsoft.Extensions.Logging.ILogger{T}"/> that records what is logged.</summary>
internal sealed class RecordingLogger<T> : Microsoft.Extensions.Logging.ILogger<T>
{
    private readonly List<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, formatter(state, exception)));
        }
    }
}
