using System.Net;
using System.Net.Sockets;
using WarpGrid.Core.Storage;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Raft.Tests;

/// <summary>Raft members in this process on loopback, each with its own data directory and port.</summary>
internal sealed class RaftTestCluster : IAsyncDisposable
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IClusterStore, RaftTestCluster> Owners = new();
    private readonly TempDirectory _root = new();
    private readonly RaftClusterStore?[] _stores;
    private readonly TestLog _log = new();

    public RaftTestCluster(int members, Action<RaftStoreOptions>? configure = null)
    {
        Addresses = Enumerable.Range(0, members).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        _stores = new RaftClusterStore?[members];
        Configure = configure;
    }

    public string[] Addresses { get; }

    public Action<RaftStoreOptions>? Configure { get; }

    public RaftClusterStore this[int index] => _stores[index] ?? throw new InvalidOperationException($"member {index} is stopped");

    public string DataDirectory(int index) => Path.Combine(_root.Path, $"m{index}");

    public RaftStoreOptions Options(int index)
    {
        var options = new RaftStoreOptions
        {
            Listen = Addresses[index],
            Peers = Addresses.Length > 1 ? [.. Addresses] : [],
            DataDirectory = DataDirectory(index),
        };
        Configure?.Invoke(options);
        return options;
    }

    public async Task StartAsync(int index, RaftStoreOptions? options = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        var store = new RaftClusterStore(options ?? Options(index), loggerFactory ?? new TestLoggerFactory(_log, $"m{index}"));
        await store.StartAsync();
        _stores[index] = store;
        Owners.AddOrUpdate(store, this);
    }

    public async Task StartAllAsync()
    {
        await Task.WhenAll(Enumerable.Range(0, _stores.Length).Select(i => StartAsync(i)));
    }

    public async Task StopAsync(int index)
    {
        if (_stores[index] is { } store)
        {
            _stores[index] = null;
            await store.DisposeAsync();
        }
    }

    public bool IsRunning(int index) => _stores[index] is not null;

    /// <summary>Waits until every running member agrees on one leader and returns its index.</summary>
    public async Task<int> WaitForLeaderAsync(TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var leaders = _stores.Where(s => s is not null).Select(s => s!.Leader).Distinct().ToList();
            if (leaders is [string leader] && Array.IndexOf(Addresses, leader) is int index and >= 0 && _stores[index] is { IsLeader: true })
            {
                return index;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no agreed leader: members see {string.Join(", ", leaders.Select(l => l ?? "none"))}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Waits until <paramref name="store"/> has applied <paramref name="revision"/> (60 s by default: catching up after a
    /// restart can take several elections on a loaded machine); fails with every member's status and the last log lines.
    /// </summary>
    public static async Task WaitForRevisionAsync(IClusterStore store, long revision, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (store.Revision < revision)
        {
            if (DateTime.UtcNow > deadline)
            {
                string diagnostics = Owners.TryGetValue(store, out RaftTestCluster? cluster) ? cluster.Diagnostics() : "";
                Assert.Fail($"the member stayed at revision {store.Revision}, expected {revision}{diagnostics}");
            }

            await Task.Delay(20);
        }
    }

    public static async Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>Every running member's view of the cluster and the members' last log lines, for a failure message.</summary>
    public string Diagnostics()
    {
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < _stores.Length; i++)
        {
            text.Append("\n  m").Append(i).Append(": ");
            if (_stores[i] is not { } store)
            {
                text.Append("stopped");
                continue;
            }

            RaftClusterStatus status = store.GetStatus();
            text.Append($"leader {status.Leader ?? "none"}, term {status.Term}, commit {status.CommitIndex}, applied {status.AppliedIndex}, revision {status.Revision}");
            text.Append(status.Fault is null ? "" : $", FAULT {status.Fault}");
        }

        text.Append("\n  last log lines:\n");
        foreach (string line in _log.Tail(200))
        {
            text.Append("    ").Append(line).Append('\n');
        }

        return text.ToString();
    }

    public static int FreePort() => WarpGrid.Testing.LoopbackPorts.Next();

    public async ValueTask DisposeAsync()
    {
        for (int i = 0; i < _stores.Length; i++)
        {
            await StopAsync(i);
        }

        _root.Dispose();
    }
}

/// <summary>The members' log lines, kept (the last few thousand) for failure messages.</summary>
internal sealed class TestLog
{
    private const int Capacity = 4000;
    private readonly Queue<string> _lines = new();

    public void Add(string line)
    {
        lock (_lines)
        {
            if (_lines.Count == Capacity)
            {
                _lines.Dequeue();
            }

            _lines.Enqueue(line);
        }
    }

    public List<string> Tail(int count)
    {
        lock (_lines)
        {
            return _lines.Skip(Math.Max(0, _lines.Count - count)).ToList();
        }
    }
}

/// <summary>
/// Keeps one member's log lines (Information and above; Debug too when WARPGRID_TEST_LOG=1, which also writes them to
/// stderr) in the cluster's <see cref="TestLog"/>.
/// </summary>
internal sealed class TestLoggerFactory(TestLog log, string name) : Microsoft.Extensions.Logging.ILoggerFactory, Microsoft.Extensions.Logging.ILogger
{
    private static readonly bool Verbose = Environment.GetEnvironmentVariable("WARPGRID_TEST_LOG") == "1";

    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) =>
        logLevel >= (Verbose ? Microsoft.Extensions.Logging.LogLevel.Debug : Microsoft.Extensions.Logging.LogLevel.Information);

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        string line = $"{DateTime.UtcNow:HH:mm:ss.fff} {name} {logLevel}: {formatter(state, exception)}{(exception is null ? "" : $" [{exception.GetType().Name}: {exception.Message}]")}";
        log.Add(line);
        if (Verbose)
        {
            Console.Error.WriteLine(line);
        }
    }
}
