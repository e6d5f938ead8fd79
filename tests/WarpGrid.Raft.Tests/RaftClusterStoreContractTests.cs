using WarpGrid.Core.Storage;
using WarpGrid.Core.Tests.Storage;

namespace WarpGrid.Raft.Tests;

/// <summary>The shared store contract against a one-member Raft cluster (the same code path as three members).</summary>
public sealed class SingleMemberRaftContractTests : ClusterStoreContractTests
{
    private readonly string _address = $"127.0.0.1:{RaftTestCluster.FreePort()}";

    protected override async Task<IClusterStore> OpenAsync(string directory)
    {
        var store = new RaftClusterStore(new RaftStoreOptions { Listen = _address, DataDirectory = directory });
        await store.StartAsync();
        await store.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        return store;
    }
}

/// <summary>The shared store contract through a follower of a three-member cluster: every write is forwarded to the leader.</summary>
public sealed class FollowerRaftContractTests : ClusterStoreContractTests
{
    private readonly RaftTestCluster _cluster = new(3);
    private bool _started;
    private int _follower = -1;

    protected override async Task<IClusterStore> OpenAsync(string directory)
    {
        if (!_started)
        {
            await _cluster.StartAllAsync();
            _started = true;
        }
        else
        {
            await _cluster.StartAsync(_follower);
        }

        int leader = await _cluster.WaitForLeaderAsync();
        if (_follower < 0)
        {
            _follower = (leader + 1) % 3;
        }

        RaftClusterStore store = _cluster[_follower];
        await store.GetAsync("warm-up"); // read barrier: the follower has applied everything committed
        return store;
    }

    protected override async ValueTask CloseAsync(IClusterStore store) => await _cluster.StopAsync(_follower);

    public override void Dispose()
    {
        _cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        base.Dispose();
    }
}
