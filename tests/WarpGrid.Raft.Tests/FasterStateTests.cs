using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Storage;
using WarpGrid.Core.Tests.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Raft.Tests;

/// <summary>
/// The state machine's data lives in FASTER: checkpoints carry the Raft index, recovery replays the WAL after it, and an
/// unusable checkpoint is reported and rebuilt from the snapshot file and the WAL, never silently dropped.
/// </summary>
public sealed class FasterStateTests : IDisposable
{
    private const int Interval = 16;
    private const int Keys = 100; // 100 puts: 6 checkpoints (at most 16 entries after the last one), replayed from the WAL
    private readonly TempDirectory _root = new();
    private readonly string _address = $"127.0.0.1:{RaftTestCluster.FreePort()}";

    private string Data => Path.Combine(_root.Path, "member");

    private string Faster => Path.Combine(Data, "faster");

    [Fact]
    public async Task Reopen_RecoversTheFasterCheckpoint_AndReplaysTheWalAfterItsIndex()
    {
        long lastApplied = await WriteAndCloseAsync();
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(Faster, "checkpoints"), "*", SearchOption.AllDirectories));

        var logs = new CapturingLoggerFactory();
        await using RaftClusterStore store = await OpenAsync(logs);

        // The checkpoint covered a prefix of the log only; the keys written after it came back from the WAL.
        string recovered = logs.Single(3202);
        long index = long.Parse(System.Text.RegularExpressions.Regex.Match(recovered, @"Raft index (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(index, Interval, lastApplied - 1);
        await AssertAllKeysAsync(store);
        Assert.Empty(logs.AtLeast(LogLevel.Warning));

        // Writes continue with the next revision.
        Assert.Equal(Keys + 1, await store.PutAsync("f/after", Bytes("x")));
    }

    [Fact]
    public async Task CorruptedCheckpoint_IsReportedByPath_SetAside_AndTheStateIsRebuiltFromSnapshotAndWal()
    {
        await WriteAndCloseAsync();
        foreach (string file in Directory.GetFiles(Path.Combine(Faster, "checkpoints"), "*", SearchOption.AllDirectories))
        {
            await File.WriteAllBytesAsync(file, new byte[(int)Math.Min(new FileInfo(file).Length, 4096) + 1]);
        }

        var logs = new CapturingLoggerFactory();
        await using RaftClusterStore store = await OpenAsync(logs);

        string error = Assert.Single(logs.AtLeast(LogLevel.Error));
        Assert.Contains(Path.Combine(Faster, "checkpoints"), error);
        Assert.Contains("could not be recovered", error);
        Assert.Single(Directory.GetDirectories(Data, "faster.unrecoverable-*")); // kept for inspection, not deleted
        Assert.Contains(logs.AtLeast(LogLevel.Warning), m => m.Contains("rebuilt from snapshot", StringComparison.Ordinal));
        await AssertAllKeysAsync(store);
        Assert.Equal(Keys + 1, await store.PutAsync("f/after", Bytes("x")));
    }

    [Fact]
    public async Task MissingCheckpoint_IsReported_AndTheStateIsRebuiltFromSnapshotAndWal()
    {
        await WriteAndCloseAsync();
        Directory.Delete(Path.Combine(Faster, "checkpoints"), recursive: true);

        var logs = new CapturingLoggerFactory();
        await using RaftClusterStore store = await OpenAsync(logs);

        string warning = Assert.Single(logs.AtLeast(LogLevel.Warning));
        Assert.Contains("rebuilt from snapshot", warning);
        Assert.Contains(Faster, warning);
        await AssertAllKeysAsync(store);
    }

    [Fact]
    public async Task CorruptedCheckpoint_AndCorruptedSnapshot_FailTheStart_NamingTheFile_InsteadOfStartingEmpty()
    {
        await WriteAndCloseAsync();
        Directory.Delete(Path.Combine(Faster, "checkpoints"), recursive: true);
        string snapshot = Directory.GetFiles(Path.Combine(Data, "snapshots")).OrderBy(f => f.Length).ThenBy(f => f, StringComparer.Ordinal).Last();
        byte[] bytes = await File.ReadAllBytesAsync(snapshot);
        bytes[^8] ^= 0xFF;
        await File.WriteAllBytesAsync(snapshot, bytes);

        var store = new RaftClusterStore(Options(), new CapturingLoggerFactory());
        try
        {
            StoreCorruptedException ex = await Assert.ThrowsAsync<StoreCorruptedException>(() => store.StartAsync());
            Assert.Contains(snapshot, ex.Message);
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task FollowerFarBehind_ReceivesASnapshotProducedFromFaster_LoadsItIntoFaster_AndRecoversFromItsOwnCheckpoint()
    {
        await using var cluster = new RaftTestCluster(3, o => o.SnapshotInterval = Interval);
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        int follower = (leader + 1) % 3;
        await cluster.StopAsync(follower);
        for (int i = 0; i < Keys; i++)
        {
            await cluster[leader].PutAsync($"f/{i:D3}", Bytes($"v{i}"));
        }

        // The leader compacted its WAL past what the follower has: the follower catches up by snapshot installation.
        var logs = new CapturingLoggerFactory();
        await cluster.StartAsync(follower, loggerFactory: logs);
        await RaftTestCluster.WaitForRevisionAsync(cluster[follower], Keys);
        Assert.Contains("restored from snapshot", logs.Single(3201));
        await AssertAllKeysAsync(cluster[follower]);

        // The installed state was checkpointed in FASTER: a restart recovers it without the snapshot file.
        await cluster.StopAsync(follower);
        logs = new CapturingLoggerFactory();
        await cluster.StartAsync(follower, loggerFactory: logs);
        Assert.Contains("FASTER checkpoint", logs.Single(3202));
        await AssertAllKeysAsync(cluster[follower]);
    }

    [Fact]
    public async Task WritesAreAcknowledged_WhileEveryMembersCheckpointIsHeldInProgress_AndARestartedMemberRecoversEveryKey()
    {
        // Every member's background checkpoint stays in progress until the test releases it. An applier that waited for
        // its checkpoint would stop at the first one (entry 16) and the writes after it would time out.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        await using var cluster = new RaftTestCluster(3, o =>
        {
            o.SnapshotInterval = Interval;
            string member = o.Listen!;
            o.CheckpointGate = _ =>
            {
                started.AddOrUpdate(member, 1, (_, n) => n + 1);
                return release.Task;
            };
        });
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        for (int i = 0; i < Keys; i++)
        {
            await cluster[leader].PutAsync($"f/{i:D3}", Bytes($"v{i}"));
        }

        for (int member = 0; member < 3; member++)
        {
            await RaftTestCluster.WaitForRevisionAsync(cluster[member], Keys);

            // 100 entries crossed six snapshot intervals on each member, yet one checkpoint was started and none completed.
            Assert.Equal(1, started[cluster.Addresses[member]]);
            Assert.Equal(default, cluster[member].LastCheckpoint);
        }

        // Released: the held checkpoints complete; the deferred one starts with the next entry and covers all of it.
        release.SetResult();
        for (int member = 0; member < 3; member++)
        {
            RaftClusterStore store = cluster[member];
            await PollAsync(() => store.LastCheckpoint.RaftIndex > 0 && !store.CheckpointInProgress, $"member {member}'s held checkpoint to complete");
        }

        Assert.Equal(Keys + 1, await cluster[leader].PutAsync("g/after", Bytes("x")));
        for (int member = 0; member < 3; member++)
        {
            RaftClusterStore store = cluster[member];
            await PollAsync(() => store.LastCheckpoint.Revision == Keys + 1, $"member {member}'s checkpoint of revision {Keys + 1}");
            Assert.Null(store.GetStatus().Fault);
        }

        // A restarted member recovers from its own background checkpoint, ahead of its newest snapshot file.
        int follower = (leader + 1) % 3;
        await cluster.StopAsync(follower);
        var logs = new CapturingLoggerFactory();
        await cluster.StartAsync(follower, loggerFactory: logs);
        Assert.Contains($"revision {Keys + 1}", logs.Single(3202));
        Assert.Empty(logs.AtLeast(LogLevel.Warning));
        IReadOnlyList<StoreEntry> entries = await cluster[follower].ListAsync("f/");
        Assert.Equal(Keys, entries.Count);
        Assert.All(entries, e => Assert.Equal($"v{int.Parse(e.Key[2..], System.Globalization.CultureInfo.InvariantCulture)}", Text(e)));
        Assert.Equal("x", Text(await cluster[follower].GetAsync("g/after")));
    }

    [Fact]
    public async Task FailedBackgroundCheckpoint_IsTheMembersRecordedFault_AndStopsItsApplier()
    {
        RaftStoreOptions options = Options();
        options.OperationTimeout = TimeSpan.FromSeconds(3);
        options.CheckpointGate = _ => Task.FromException(new IOException("disk full (test)"));
        var logs = new CapturingLoggerFactory();
        await using var store = new RaftClusterStore(options, logs);
        await store.StartAsync();
        await store.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 2 * Interval && store.GetStatus().Fault is null; i++)
        {
            try
            {
                await store.PutAsync($"f/{i:D3}", Bytes("v"));
            }
            catch (ClusterUnavailableException)
            {
                break; // the write after the failed checkpoint is not applied any more
            }
        }

        await PollAsync(() => store.GetStatus().Fault is not null, "the fault to be recorded");
        string fault = store.GetStatus().Fault!;
        Assert.Contains("FASTER checkpoint", fault);
        Assert.Contains("disk full (test)", fault);
        Assert.Contains(logs.AtLeast(LogLevel.Critical), m => m.Contains("taking the FASTER checkpoint", StringComparison.Ordinal));
    }

    private static async Task PollAsync(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    private RaftStoreOptions Options() => new() { Listen = _address, DataDirectory = Data, SnapshotInterval = Interval };

    private async Task<RaftClusterStore> OpenAsync(ILoggerFactory logs)
    {
        var store = new RaftClusterStore(Options(), logs);
        await store.StartAsync();
        await store.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        return store;
    }

    /// <summary>Writes the keys, then closes without a final checkpoint: FASTER holds only what its last checkpoint covered.</summary>
    private async Task<long> WriteAndCloseAsync()
    {
        await using RaftClusterStore store = await OpenAsync(new CapturingLoggerFactory());
        for (int i = 0; i < Keys; i++)
        {
            await store.PutAsync($"f/{i:D3}", Bytes($"v{i}"));
        }

        Assert.NotEmpty(Directory.GetFiles(Path.Combine(Data, "snapshots")));
        return store.GetStatus().AppliedIndex;
    }

    private static async Task AssertAllKeysAsync(RaftClusterStore store)
    {
        IReadOnlyList<StoreEntry> entries = await store.ListAsync("f/"); // read barrier: everything committed is applied
        Assert.Equal(Keys, store.Revision);
        Assert.Equal(Keys, entries.Count);
        for (int i = 0; i < Keys; i++)
        {
            StoreEntry entry = entries[i];
            Assert.Equal($"f/{i:D3}", entry.Key);
            Assert.Equal($"v{i}", Text(entry));
            Assert.Equal(i + 1, entry.ModRevision);
            Assert.Equal(i + 1, entry.CreateRevision);
        }

        Assert.Equal("v99", Text(await store.GetAsync("f/099")));
    }

    public void Dispose() => _root.Dispose();

    /// <summary>Keeps every formatted log line with its level and event id.</summary>
    private sealed class CapturingLoggerFactory : ILoggerFactory, ILogger
    {
        private readonly ConcurrentQueue<(LogLevel Level, int EventId, string Message)> _lines = new();

        public IEnumerable<string> AtLeast(LogLevel level) => _lines.Where(l => l.Level >= level).Select(l => l.Message).ToList();

        public string Single(int eventId) => Assert.Single(_lines, l => l.EventId == eventId).Message;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public ILogger CreateLogger(string categoryName) => this;

        public void Dispose()
        {
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            // DotNext's own Raft messages (elections, timeouts on a loaded machine) are not what these tests check.
            if (IsEnabled(logLevel) && eventId.Id is >= 3200 and < 3300)
            {
                _lines.Enqueue((logLevel, eventId.Id, formatter(state, exception)));
            }
        }
    }
}
