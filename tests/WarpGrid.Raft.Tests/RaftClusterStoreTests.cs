using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Raft.Tests;

public sealed class RaftClusterStoreTests
{
    [Fact]
    public async Task LeaderStops_NewLeaderIsElected_AcknowledgedWritesSurvive_AndWritesResume()
    {
        await using var cluster = new RaftTestCluster(3);
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        for (int i = 0; i < 50; i++)
        {
            await cluster[leader].PutAsync($"k/{i:D3}", Bytes($"v{i}"));
        }

        await cluster.StopAsync(leader);
        int next = await cluster.WaitForLeaderAsync();
        Assert.NotEqual(leader, next);
        int follower = Enumerable.Range(0, 3).Single(i => i != leader && i != next);

        // Writes resume through either survivor; every acknowledged write is there on both.
        await cluster[follower].PutAsync("k/after", Bytes("x"));
        foreach (int member in new[] { next, follower })
        {
            IReadOnlyList<StoreEntry> entries = await cluster[member].ListAsync("k/");
            Assert.Equal(51, entries.Count);
            Assert.Equal("v49", Text(await cluster[member].GetAsync("k/049")));
        }

        // The stopped member restarts from its log and catches up with what it missed.
        await cluster.StartAsync(leader);
        await RaftTestCluster.WaitForRevisionAsync(cluster[leader], cluster[next].Revision);
        Assert.Equal("x", Text(await cluster[leader].GetAsync("k/after")));
    }

    [Fact]
    public async Task FollowerRestart_AfterSnapshots_CatchesUp_AndWatchResumesFromRevision()
    {
        await using var cluster = new RaftTestCluster(3, o => o.SnapshotInterval = 16);
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        int follower = (leader + 1) % 3;
        for (int i = 0; i < 40; i++)
        {
            await cluster[leader].PutAsync($"a/{i:D3}", Bytes($"{i}"));
        }

        await RaftTestCluster.WaitForRevisionAsync(cluster[follower], 40);
        await cluster.StopAsync(follower);
        await Task.WhenAll(Enumerable.Range(40, 200).Select(i => cluster[leader].PutAsync($"a/{i:D3}", Bytes($"{i}")).AsTask()));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(cluster.DataDirectory(leader), "snapshots")));

        await cluster.StartAsync(follower);
        await RaftTestCluster.WaitForRevisionAsync(cluster[follower], 240);
        Assert.Equal(240, (await cluster[follower].ListAsync("a/")).Count);
        Assert.Equal("239", Text(await cluster[follower].GetAsync("a/239")));

        // A watch on the follower resumes from a recent revision and sees live changes.
        Task<List<StoreEvent>> watch = TakeAsync(cluster[follower].WatchAsync("a/", 239, CancellationToken.None), 2);
        await cluster[leader].PutAsync("a/new", Bytes("n"));
        Assert.Equal([240L, 241L], (await watch).Select(e => e.Entry.ModRevision));
    }

    [Fact]
    public async Task MemberAddedAtRuntime_ReceivesTheState_AndMembershipSurvivesRestart()
    {
        await using var cluster = new RaftTestCluster(2);
        await cluster.StartAsync(0, cluster.Options(0) is var first ? Single(first) : null);
        await cluster[0].WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 20; i++)
        {
            await cluster[0].PutAsync($"m/{i}", Bytes("v"));
        }

        RaftStoreOptions joiner = cluster.Options(1);
        joiner.Peers = [];
        joiner.Join = true;
        await cluster.StartAsync(1, joiner);
        Assert.True(await cluster[0].AddMemberAsync(cluster.Addresses[1]));
        await RaftTestCluster.WaitForRevisionAsync(cluster[1], 20);
        await RaftTestCluster.WaitUntilAsync(() => cluster[0].GetStatus().Members.Count == 2, "the leader lists two members");

        // Writes through the new member are forwarded to the leader.
        long revision = await cluster[1].PutAsync("m/from-new", Bytes("w"));
        Assert.Equal(21, revision);
        Assert.Equal("w", Text(await cluster[0].GetAsync("m/from-new")));

        await cluster.StopAsync(1);
        await cluster.StartAsync(1, joiner);
        await RaftTestCluster.WaitForRevisionAsync(cluster[1], 21);
        Assert.Equal(
            cluster.Addresses.Order(StringComparer.Ordinal),
            File.ReadAllLines(Path.Combine(cluster.DataDirectory(1), "members")).Where(l => l.Length > 0));

        static RaftStoreOptions Single(RaftStoreOptions options)
        {
            options.Peers = [];
            return options;
        }
    }

    [Fact]
    public async Task Status_ReportsLeaderTermIndicesAndMembers()
    {
        await using var cluster = new RaftTestCluster(3);
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        await cluster[leader].PutAsync("s", Bytes("1"));
        RaftClusterStore follower = cluster[(leader + 1) % 3];
        await RaftTestCluster.WaitUntilAsync(() => follower.GetStatus() is { Revision: 1, CommitIndex: >= 1 }, "the follower learns the commit");

        RaftClusterStatus status = follower.GetStatus();

        Assert.Equal(cluster.Addresses[leader], status.Leader);
        Assert.False(status.IsLeader);
        Assert.True(status.Term >= 0);
        Assert.Equal(1, status.Revision);
        Assert.True(status.CommitIndex >= 1);
        Assert.Equal(cluster.Addresses.Order(StringComparer.Ordinal), status.Members.Select(m => m.Address));
        Assert.Single(status.Members, m => m.IsLocal);
        Assert.Single(status.Members, m => m.IsLeader);
    }

    [Fact]
    public void InvalidOptions_AreRejected_NamingEachSetting()
    {
        var ex = Assert.Throws<ArgumentException>(() => new RaftClusterStore(new RaftStoreOptions
        {
            Listen = "nowhere",
            Peers = ["127.0.0.1:1", "bad"],
            RequestTimeout = TimeSpan.FromMilliseconds(150),
            MaxBatchOperations = 0,
        }));

        Assert.Contains("WarpGrid:Raft:Listen 'nowhere'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("WarpGrid:Raft:Peers:1 'bad'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("WarpGrid:Raft:DataDirectory is required", ex.Message, StringComparison.Ordinal);
        Assert.Contains("WarpGrid:Raft:RequestTimeout (150 ms) must be at least twice", ex.Message, StringComparison.Ordinal);
        Assert.Contains("WarpGrid:Raft:MaxBatchOperations", ex.Message, StringComparison.Ordinal);
        Assert.Empty(new RaftStoreOptions { Listen = "localhost:7400", DataDirectory = "/tmp/x" }.Validate());
    }

    [Fact]
    public async Task WithoutAMajority_WritesAndReadsFailWithClusterUnavailable_NotHang()
    {
        await using var cluster = new RaftTestCluster(3, o => o.OperationTimeout = TimeSpan.FromSeconds(2));
        await cluster.StartAllAsync();
        int leader = await cluster.WaitForLeaderAsync();
        await cluster[leader].PutAsync("before", Bytes("1"));
        int survivor = (leader + 1) % 3;
        await cluster.StopAsync(leader);
        await cluster.StopAsync((leader + 2) % 3);

        var write = await Assert.ThrowsAsync<ClusterUnavailableException>(() => cluster[survivor].PutAsync("after", Bytes("2")).AsTask());
        Assert.Contains("majority", write.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ClusterUnavailableException>(() => cluster[survivor].GetAsync("before").AsTask());
    }
}
