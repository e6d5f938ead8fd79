using System.Net;
using System.Net.Sockets;
using WarpGrid.Core.Storage;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Raft.Tests;

/// <summary>Raft members in this process on loopback, each with its own data directory and port.</summary>
internal sealed class RaftTestCluster : IAsyncDisposable
{
    private readonly TempDirectory _root = new();
    private readonly RaftClusterStore?[] _stores;

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
        var store = new RaftClusterStore(options ?? Options(index), loggerFactory ?? StderrLoggerFactory.IfEnabled($"m{index}"));
        await store.StartAsync();
        _stores[index] = store;
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

    public static async Task WaitForRevisionAsync(IClusterStore store, long revision, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (store.Revision < revision)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the member stayed at revision {store.Revision}, expected {revision}");
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

/// <summary>Writes log lines to stderr when WARPGRID_TEST_LOG=1 (debugging aid).</summary>
internal sealed class StderrLoggerFactory : Microsoft.Extensions.Logging.ILoggerFactory, Microsoft.Extensions.Logging.ILogger
{
    public static Microsoft.Extensions.Logging.ILoggerFactory? IfEnabled(string name) =>
        Environment.GetEnvironmentVariable("WARPGRID_TEST_LOG") == "1" ? new StderrLoggerFactory(name) : null;

    private readonly string _name;

    private StderrLoggerFactory(string name) => _name = name;

    public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider)
    {
    }

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {_name} {logLevel}: {formatter(state, exception)} {exception?.GetType().Name} {exception?.Message}");
        }
    }
}
