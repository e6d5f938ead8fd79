using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Core.Tests.Storage;

public sealed class FileClusterStoreWatchTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Watch_DeliversHistoryThenLiveChanges_WithEventShapes()
    {
        await using var store = new FileClusterStore(_dir.Path);
        await store.PutAsync("apps/a", Bytes("1"));
        await store.PutAsync("other/x", Bytes("ignored"));
        await store.PutAsync("apps/a", Bytes("2"));

        await using IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("apps/", 0, CancellationToken.None).GetAsyncEnumerator();
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal((StoreEventKind.Put, "apps/a", "1", 1L, 1L), Shape(watch.Current));
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal((StoreEventKind.Put, "apps/a", "2", 3L, 1L), Shape(watch.Current));

        ValueTask<bool> next = watch.MoveNextAsync();
        Assert.False(next.IsCompleted); // nothing more yet: waiting for live changes
        await store.PutAsync("other/y", Bytes("ignored"));
        await store.DeleteAsync("apps/a");

        Assert.True(await next);
        Assert.Equal((StoreEventKind.Delete, "apps/a", "", 5L, 0L), Shape(watch.Current));
    }

    [Fact]
    public async Task Watch_AfterRevision_SkipsOlderChanges_AndFutureRevisionWaits()
    {
        await using var store = new FileClusterStore(_dir.Path);
        await PutSequentiallyAsync(store, 5);

        List<StoreEvent> fromThree = await TakeAsync(store.WatchAsync("k/", 3, CancellationToken.None), 2);
        Assert.Equal([4L, 5L], fromThree.Select(e => e.Entry.ModRevision));

        // A watch may start after a revision that does not exist yet.
        Task<List<StoreEvent>> future = TakeAsync(store.WatchAsync("", 7, CancellationToken.None), 1);
        await store.PutAsync("a", Bytes("6"));
        await store.PutAsync("b", Bytes("7"));
        await store.PutAsync("c", Bytes("8"));
        Assert.Equal(8, Assert.Single(await future).Entry.ModRevision);
    }

    [Fact]
    public async Task WatchFromZero_UnderConcurrentWriters_SeesEveryRevisionOnceInOrder()
    {
        const int Initial = 500;
        const int Writers = 8;
        const int WritesEach = 250;
        const int Total = Initial + (Writers * WritesEach);

        // A small per-watcher buffer forces the overflow-and-catch-up path for the second watcher.
        await using var store = new FileClusterStore(_dir.Path, new FileClusterStoreOptions { WatchBufferCapacity = 4 });
        await PutSequentiallyAsync(store, Initial, "initial/");

        Task writers = Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (int i = 0; i < WritesEach; i++)
            {
                if (i % 10 == 9)
                {
                    await store.DeleteAsync($"w/{w}/{i - 1}");
                }
                else
                {
                    await store.PutAsync($"w/{w}/{i}", Bytes($"{i}"));
                }
            }
        })));

        Task<List<StoreEvent>> fast = Task.Run(() => TakeAsync(store.WatchAsync("", 0, CancellationToken.None), Total));
        Task<List<StoreEvent>> slow = Task.Run(async () =>
        {
            var seen = new List<StoreEvent>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await foreach (StoreEvent e in store.WatchAsync("", 0, cts.Token))
            {
                seen.Add(e);
                if (seen.Count % 50 == 0)
                {
                    await Task.Yield(); // fall behind now and then
                }

                if (seen.Count == Total)
                {
                    break;
                }
            }

            return seen;
        });

        await writers;
        long[] expected = Enumerable.Range(1, Total).Select(i => (long)i).ToArray();
        Assert.Equal(Total, store.Revision);
        Assert.Equal(expected, (await fast).Select(e => e.Entry.ModRevision));
        Assert.Equal(expected, (await slow).Select(e => e.Entry.ModRevision));
    }

    [Fact]
    public async Task SlowWatcher_DoesNotBlockWriters_AndCatchesUpFromHistory()
    {
        await using var store = new FileClusterStore(_dir.Path, new FileClusterStoreOptions { WatchBufferCapacity = 4 });
        await using IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("", 0, CancellationToken.None).GetAsyncEnumerator();
        ValueTask<bool> first = watch.MoveNextAsync(); // registers the watcher
        await store.PutAsync("k", Bytes("0"));
        Assert.True(await first);
        Assert.Equal(1, store.WatcherCount);

        // The watcher reads nothing while 200 writes complete.
        for (int i = 1; i <= 200; i++)
        {
            await store.PutAsync("k", Bytes($"{i}"));
        }

        Assert.Equal(0, store.WatcherCount); // detached once its buffer filled

        var revisions = new List<long> { watch.Current.Entry.ModRevision };
        while (revisions.Count < 201)
        {
            Assert.True(await watch.MoveNextAsync());
            revisions.Add(watch.Current.Entry.ModRevision);
        }

        Assert.Equal(Enumerable.Range(1, 201).Select(i => (long)i), revisions);
        Assert.Equal(1, store.WatcherCount); // re-attached for live changes
    }

    [Fact]
    public async Task SlowWatcher_BeyondRetainedHistory_EndsWithCompactedException()
    {
        var options = new FileClusterStoreOptions { WatchBufferCapacity = 4, WatchHistoryCapacity = 16 };
        await using var store = new FileClusterStore(_dir.Path, options);
        await using IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("", 0, CancellationToken.None).GetAsyncEnumerator();
        ValueTask<bool> first = watch.MoveNextAsync();
        await store.PutAsync("k", Bytes("0"));
        Assert.True(await first);

        for (int i = 1; i <= 100; i++)
        {
            await store.PutAsync("k", Bytes($"{i}"));
        }

        var delivered = new List<long>();
        var ex = await Assert.ThrowsAsync<StoreCompactedException>(async () =>
        {
            while (await watch.MoveNextAsync())
            {
                delivered.Add(watch.Current.Entry.ModRevision);
            }
        });

        Assert.Equal([2L, 3L, 4L, 5L], delivered); // what fit in its buffer
        Assert.Equal(5, ex.RequestedRevision);
        Assert.Equal(101 - 16, ex.OldestAvailableRevision);
    }

    [Fact]
    public async Task WatchFromCompactedRevision_Throws()
    {
        await using var store = new FileClusterStore(_dir.Path, new FileClusterStoreOptions { WatchHistoryCapacity = 10 });
        await PutSequentiallyAsync(store, 25);

        var ex = await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(store.WatchAsync("", 3, CancellationToken.None), 1));

        Assert.Equal(3, ex.RequestedRevision);
        Assert.Equal(15, ex.OldestAvailableRevision);
        Assert.Contains("Re-list", ex.Message, StringComparison.Ordinal);

        // The oldest available revision itself still works and yields the retained history.
        List<StoreEvent> events = await TakeAsync(store.WatchAsync("", ex.OldestAvailableRevision, CancellationToken.None), 10);
        Assert.Equal(Enumerable.Range(16, 10).Select(i => (long)i), events.Select(e => e.Entry.ModRevision));
    }

    [Fact]
    public async Task AfterReopen_HistoryIsRebuiltFromTheLog_ButNotFromTheSnapshot()
    {
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await PutSequentiallyAsync(store, 5);
            await store.CompactAsync();
            await store.PutAsync("k/new", Bytes("6"));
            await store.DeleteAsync("k/0000");
        }

        await using var reopened = new FileClusterStore(_dir.Path);

        var ex = await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(reopened.WatchAsync("", 0, CancellationToken.None), 1));
        Assert.Equal(5, ex.OldestAvailableRevision);
        List<StoreEvent> events = await TakeAsync(reopened.WatchAsync("k/", 5, CancellationToken.None), 2);
        Assert.Equal((StoreEventKind.Put, "k/new", "6", 6L, 6L), Shape(events[0]));
        Assert.Equal((StoreEventKind.Delete, "k/0000", "", 7L, 0L), Shape(events[1]));
    }

    [Fact]
    public async Task AfterReopen_LongLog_KeepsOnlyTheNewestChangesAsHistory()
    {
        var options = new FileClusterStoreOptions { WatchHistoryCapacity = 8 };
        await using (var store = new FileClusterStore(_dir.Path, options))
        {
            await PutSequentiallyAsync(store, 30);
        }

        await using var reopened = new FileClusterStore(_dir.Path, options);

        var ex = await Assert.ThrowsAsync<StoreCompactedException>(() => TakeAsync(reopened.WatchAsync("", 21, CancellationToken.None), 1));
        Assert.Equal(22, ex.OldestAvailableRevision);
        List<StoreEvent> events = await TakeAsync(reopened.WatchAsync("", 22, CancellationToken.None), 8);
        Assert.Equal(Enumerable.Range(23, 8).Select(i => (long)i), events.Select(e => e.Entry.ModRevision));
    }

    [Fact]
    public async Task Watch_EndsWithObjectDisposed_WhenStoreIsDisposed()
    {
        var store = new FileClusterStore(_dir.Path);
        await using IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("", 0, CancellationToken.None).GetAsyncEnumerator();
        ValueTask<bool> next = watch.MoveNextAsync();
        await store.PutAsync("k", Bytes("v"));
        Assert.True(await next);

        ValueTask<bool> pending = watch.MoveNextAsync();
        await store.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pending);
    }

    [Fact]
    public async Task Watch_StopsOnCancellation_AndUnregisters()
    {
        await using var store = new FileClusterStore(_dir.Path);
        using var cts = new CancellationTokenSource();
        IAsyncEnumerator<StoreEvent> watch = store.WatchAsync("", 0, cts.Token).GetAsyncEnumerator();
        ValueTask<bool> next = watch.MoveNextAsync();
        await store.PutAsync("k", Bytes("v"));
        Assert.True(await next);
        Assert.Equal(1, store.WatcherCount);

        ValueTask<bool> pending = watch.MoveNextAsync();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);
        await watch.DisposeAsync();
        Assert.Equal(0, store.WatcherCount);
    }

    [Fact]
    public async Task BreakingOutOfAWatch_Unregisters()
    {
        await using var store = new FileClusterStore(_dir.Path);
        await PutSequentiallyAsync(store, 3);

        await TakeAsync(store.WatchAsync("", 0, CancellationToken.None), 2);

        Assert.Equal(0, store.WatcherCount);
    }

    private static (StoreEventKind Kind, string Key, string Value, long ModRevision, long CreateRevision) Shape(StoreEvent e) =>
        (e.Kind, e.Entry.Key, Text(e.Entry), e.Entry.ModRevision, e.Entry.CreateRevision);
}
