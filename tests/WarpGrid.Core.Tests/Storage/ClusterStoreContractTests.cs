using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Core.Tests.Storage;

/// <summary>
/// The behaviour every <see cref="IClusterStore"/> must share (the embedded store and the Raft-replicated one run the
/// same cases). Derived classes open the store on a directory; opening the same directory again must see the same data.
/// </summary>
public abstract class ClusterStoreContractTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    protected string DataDirectory => _dir.Path;

    /// <summary>Opens the store kept in <paramref name="directory"/> (again, after a close).</summary>
    protected abstract Task<IClusterStore> OpenAsync(string directory);

    /// <summary>Closes a store opened by <see cref="OpenAsync"/>.</summary>
    protected virtual ValueTask CloseAsync(IClusterStore store) => ((IAsyncDisposable)store).DisposeAsync();

    public virtual void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Contract_EmptyStore_HasRevisionZeroAndNoKeys()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            Assert.Equal(0, store.Revision);
            Assert.Null(await store.GetAsync("missing"));
            Assert.Empty(await store.ListAsync(""));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_PutGetListDelete_WithRevisions()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            byte[] buffer = Bytes("v1");
            Assert.Equal(1, await store.PutAsync("deployments/hello", buffer));
            buffer[0] = (byte)'X'; // the store copied it
            Assert.Equal(2, await store.PutAsync("deployments/world", Bytes("w1")));
            Assert.Equal(3, await store.PutAsync("deployments/hello", Bytes("v2")));
            Assert.True(store.Revision >= 3);

            StoreEntry? hello = await store.GetAsync("deployments/hello");
            Assert.Equal(("v2", 3L, 1L), (Text(hello), hello!.ModRevision, hello.CreateRevision));
            Assert.Equal("w1", Text(await store.GetAsync("deployments/world")));

            foreach (string key in new[] { "b/2", "a/1", "b/10", "b/1", "B/upper", "b/\u00e9" })
            {
                await store.PutAsync(key, Bytes(key));
            }

            Assert.Equal(["b/1", "b/10", "b/2", "b/\u00e9"], (await store.ListAsync("b/")).Select(e => e.Key));
            Assert.Equal(["B/upper", "a/1", "b/1", "b/10", "b/2", "b/\u00e9", "deployments/hello", "deployments/world"], (await store.ListAsync("")).Select(e => e.Key));
            Assert.Empty(await store.ListAsync("zzz"));

            Assert.True(await store.DeleteAsync("a/1"));
            Assert.Equal(10, store.Revision);
            Assert.Null(await store.GetAsync("a/1"));
            Assert.False(await store.DeleteAsync("a/1"));
            Assert.Equal(10, store.Revision);
            await store.PutAsync("a/1", Bytes("again"));
            Assert.Equal(11, (await store.GetAsync("a/1"))!.CreateRevision);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_CompareAndSet_SucceedsOrConflictsWritingNothing()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            long created = await store.PutAsync("lease", Bytes("a"), expectedModRevision: 0);
            long updated = await store.PutAsync("lease", Bytes("b"), expectedModRevision: created);
            Assert.Equal((1L, 2L), (created, updated));

            var mustNotExist = await Assert.ThrowsAsync<StoreConflictException>(() => store.PutAsync("lease", Bytes("x"), expectedModRevision: 0).AsTask());
            var stale = await Assert.ThrowsAsync<StoreConflictException>(() => store.PutAsync("lease", Bytes("x"), expectedModRevision: 1).AsTask());
            var staleDelete = await Assert.ThrowsAsync<StoreConflictException>(() => store.DeleteAsync("lease", expectedModRevision: 1).AsTask());
            var missing = await Assert.ThrowsAsync<StoreConflictException>(() => store.PutAsync("other", Bytes("x"), expectedModRevision: 5).AsTask());

            Assert.Equal(("lease", 0L, 2L), (mustNotExist.Key, mustNotExist.ExpectedRevision, mustNotExist.ActualRevision));
            Assert.Equal((1L, 2L), (stale.ExpectedRevision, stale.ActualRevision));
            Assert.Equal((1L, 2L), (staleDelete.ExpectedRevision, staleDelete.ActualRevision));
            Assert.Equal(("other", 5L, 0L), (missing.Key, missing.ExpectedRevision, missing.ActualRevision));
            Assert.Equal(2, store.Revision);
            Assert.Equal("b", Text(await store.GetAsync("lease")));
            Assert.True(await store.DeleteAsync("lease", expectedModRevision: updated));
            Assert.False(await store.DeleteAsync("lease", expectedModRevision: 0));
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_ConcurrentCreates_ExactlyOneWins()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            Task<long>[] attempts = Enumerable.Range(0, 32)
                .Select(i => Task.Run(async () => await store.PutAsync("leader", Bytes($"node-{i}"), expectedModRevision: 0)))
                .ToArray();
            int winners = 0, losers = 0;
            foreach (Task<long> attempt in attempts)
            {
                try
                {
                    await attempt;
                    winners++;
                }
                catch (StoreConflictException)
                {
                    losers++;
                }
            }

            Assert.Equal((1, 31), (winners, losers));
            Assert.Equal(1, store.Revision);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_Reopen_RestoresKeysValuesAndRevisions()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            await store.PutAsync("a", Bytes("1"));
            await store.PutAsync("b", Bytes("2"));
            await store.PutAsync("a", Bytes("3"));
            await store.DeleteAsync("b");
            await store.PutAsync("empty", ReadOnlyMemory<byte>.Empty);
        }
        finally
        {
            await CloseAsync(store);
        }

        IClusterStore reopened = await OpenAsync(DataDirectory);
        try
        {
            StoreEntry? a = await reopened.GetAsync("a");
            Assert.Equal(5, reopened.Revision);
            Assert.Equal(("3", 3L, 1L), (Text(a), a!.ModRevision, a.CreateRevision));
            Assert.Null(await reopened.GetAsync("b"));
            Assert.Equal(0, (await reopened.GetAsync("empty"))!.Value.Length);
            Assert.Equal(6, await reopened.PutAsync("c", Bytes("4")));
            Assert.Equal(["a", "c", "empty"], (await reopened.ListAsync("")).Select(e => e.Key));
        }
        finally
        {
            await CloseAsync(reopened);
        }
    }

    [Fact]
    public async Task Contract_InvalidArguments_NameTheParameter()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            Assert.Equal("key", (await Assert.ThrowsAsync<ArgumentException>(() => store.PutAsync("", Bytes("x")).AsTask())).ParamName);
            Assert.Equal("key", (await Assert.ThrowsAsync<ArgumentException>(() => store.GetAsync("a\0b").AsTask())).ParamName);
            Assert.Equal("key", (await Assert.ThrowsAsync<ArgumentException>(() => store.PutAsync(new string('a', 1025), Bytes("x")).AsTask())).ParamName);
            Assert.Equal("value", (await Assert.ThrowsAsync<ArgumentException>(() => store.PutAsync("big", new byte[(16 * 1024 * 1024) + 1]).AsTask())).ParamName);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.PutAsync("k", Bytes("x"), expectedModRevision: -1).AsTask());
            Assert.Throws<ArgumentOutOfRangeException>(() => store.WatchAsync("", -1, CancellationToken.None));
            Assert.Equal(0, store.Revision);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_Watch_DeliversHistoryThenLiveChanges_AndResumesAfterARevision()
    {
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            await store.PutAsync("apps/a", Bytes("1"));
            await store.PutAsync("other/x", Bytes("ignored"));
            await store.PutAsync("apps/a", Bytes("2"));

            await using IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("apps/", 0, CancellationToken.None).GetAsyncEnumerator();
            Assert.True(await watch.MoveNextAsync());
            Assert.Equal((StoreEventKind.Put, "apps/a", "1", 1L, 1L), Shape(watch.Current));
            Assert.True(await watch.MoveNextAsync());
            Assert.Equal((StoreEventKind.Put, "apps/a", "2", 3L, 1L), Shape(watch.Current));

            ValueTask<bool> next = watch.MoveNextAsync();
            await store.PutAsync("other/y", Bytes("ignored"));
            await store.DeleteAsync("apps/a");
            Assert.True(await next.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal((StoreEventKind.Delete, "apps/a", "", 5L, 0L), Shape(watch.Current));

            List<StoreEvent> fromThree = await TakeAsync(store.WatchAsync("", 3, CancellationToken.None), 2);
            Assert.Equal([4L, 5L], fromThree.Select(e => e.Entry.ModRevision));
            Task<List<StoreEvent>> future = TakeAsync(store.WatchAsync("", 6, CancellationToken.None), 1);
            await store.PutAsync("a", Bytes("6"));
            await store.PutAsync("b", Bytes("7"));
            Assert.Equal(7, Assert.Single(await future).Entry.ModRevision);
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    [Fact]
    public async Task Contract_ConcurrentWriters_GetUniqueRevisions_AndAWatchSeesEachOnceInOrder()
    {
        const int Writers = 16;
        const int WritesEach = 25;
        const int Total = Writers * WritesEach;
        IClusterStore store = await OpenAsync(DataDirectory);
        try
        {
            Task<List<StoreEvent>> watch = TakeAsync(store.WatchAsync("w/", 0, CancellationToken.None), Total, TimeSpan.FromSeconds(60));
            var revisions = new long[Writers][];
            await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                revisions[w] = new long[WritesEach];
                for (int i = 0; i < WritesEach; i++)
                {
                    revisions[w][i] = await store.PutAsync($"w/{w:D2}/{i:D3}", Bytes($"{w}:{i}"));
                    Assert.True(store.Revision >= revisions[w][i]);
                }
            })));

            Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), revisions.SelectMany(r => r).Order());
            Assert.All(revisions, r => Assert.Equal(r.Order(), r));
            Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), (await watch).Select(e => e.Entry.ModRevision));
            IReadOnlyList<StoreEntry> entries = await store.ListAsync("w/");
            Assert.Equal(Total, entries.Count);
            var byKey = entries.ToDictionary(e => e.Key, StringComparer.Ordinal);
            for (int w = 0; w < Writers; w++)
            {
                for (int i = 0; i < WritesEach; i++)
                {
                    StoreEntry entry = byKey[$"w/{w:D2}/{i:D3}"];
                    Assert.Equal(($"{w}:{i}", revisions[w][i]), (Text(entry), entry.ModRevision));
                }
            }
        }
        finally
        {
            await CloseAsync(store);
        }
    }

    private static (StoreEventKind, string, string, long, long) Shape(StoreEvent e) =>
        (e.Kind, e.Entry.Key, System.Text.Encoding.UTF8.GetString(e.Entry.Value.Span), e.Entry.ModRevision, e.Entry.CreateRevision);
}
