using WarpGrid.Core.Storage;
using static WarpGrid.Core.Tests.Storage.StorageTestHelpers;

namespace WarpGrid.Core.Tests.Storage;

public sealed class FileClusterStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task EmptyStore_HasRevisionZeroAndNoKeys()
    {
        await using var store = new FileClusterStore(_dir.Path);

        Assert.Equal(0, store.Revision);
        Assert.Null(await store.GetAsync("missing"));
        Assert.Empty(await store.ListAsync(""));
    }

    [Fact]
    public async Task Put_AssignsIncreasingRevisions_AndGetReturnsEntry()
    {
        await using var store = new FileClusterStore(_dir.Path);

        long first = await store.PutAsync("deployments/hello", Bytes("v1"));
        long second = await store.PutAsync("deployments/world", Bytes("w1"));
        long third = await store.PutAsync("deployments/hello", Bytes("v2"));

        Assert.Equal([1L, 2L, 3L], new[] { first, second, third });
        Assert.Equal(3, store.Revision);
        StoreEntry? hello = await store.GetAsync("deployments/hello");
        Assert.NotNull(hello);
        Assert.Equal("v2", Text(hello));
        Assert.Equal(3, hello.ModRevision);
        Assert.Equal(1, hello.CreateRevision);
        StoreEntry? world = await store.GetAsync("deployments/world");
        Assert.Equal(2, world!.ModRevision);
        Assert.Equal(2, world.CreateRevision);
    }

    [Fact]
    public async Task Put_CopiesTheCallersBuffer()
    {
        await using var store = new FileClusterStore(_dir.Path);
        byte[] buffer = Bytes("original");

        await store.PutAsync("k", buffer);
        buffer[0] = (byte)'X';

        Assert.Equal("original", Text(await store.GetAsync("k")));
    }

    [Fact]
    public async Task List_ReturnsKeysUnderPrefixInOrdinalOrder()
    {
        await using var store = new FileClusterStore(_dir.Path);
        foreach (string key in new[] { "b/2", "a/1", "b/10", "b/1", "c", "b", "B/upper", "b/\u00e9" })
        {
            await store.PutAsync(key, Bytes(key));
        }

        IReadOnlyList<StoreEntry> underB = await store.ListAsync("b/");
        IReadOnlyList<StoreEntry> all = await store.ListAsync("");

        Assert.Equal(["b/1", "b/10", "b/2", "b/\u00e9"], underB.Select(e => e.Key));
        Assert.Equal(["B/upper", "a/1", "b", "b/1", "b/10", "b/2", "b/\u00e9", "c"], all.Select(e => e.Key));
        Assert.Empty(await store.ListAsync("zzz"));
        Assert.All(all, e => Assert.Equal(e.Key, Text(e)));
    }

    [Fact]
    public async Task Delete_RemovesKey_AndReturnsFalseWithoutNewRevisionWhenMissing()
    {
        await using var store = new FileClusterStore(_dir.Path);
        await store.PutAsync("a", Bytes("1"));

        Assert.True(await store.DeleteAsync("a"));
        Assert.Equal(2, store.Revision);
        Assert.Null(await store.GetAsync("a"));
        Assert.False(await store.DeleteAsync("a"));
        Assert.Equal(2, store.Revision);

        await store.PutAsync("a", Bytes("again"));
        StoreEntry? recreated = await store.GetAsync("a");
        Assert.Equal(3, recreated!.CreateRevision);
    }

    [Fact]
    public async Task CompareAndSet_SucceedsWhenRevisionMatches()
    {
        await using var store = new FileClusterStore(_dir.Path);

        long created = await store.PutAsync("lease", Bytes("a"), expectedModRevision: 0);
        long updated = await store.PutAsync("lease", Bytes("b"), expectedModRevision: created);
        bool deleted = await store.DeleteAsync("lease", expectedModRevision: updated);

        Assert.Equal(1, created);
        Assert.Equal(2, updated);
        Assert.True(deleted);
        Assert.False(await store.DeleteAsync("lease", expectedModRevision: 0)); // "must not exist" holds: nothing to do
    }

    [Fact]
    public async Task CompareAndSet_ConflictThrowsAndWritesNothing()
    {
        await using var store = new FileClusterStore(_dir.Path);
        await store.PutAsync("lease", Bytes("a"));
        await store.PutAsync("lease", Bytes("b"));

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
        Assert.Null(await store.GetAsync("other"));
    }

    [Fact]
    public async Task CompareAndSet_ConcurrentCreates_ExactlyOneWins()
    {
        await using var store = new FileClusterStore(_dir.Path);

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

        Assert.Equal(1, winners);
        Assert.Equal(31, losers);
        Assert.Equal(1, store.Revision);
    }

    [Fact]
    public async Task Reopen_AfterDispose_RestoresKeysValuesAndRevisions()
    {
        await using (var store = new FileClusterStore(_dir.Path))
        {
            await store.PutAsync("a", Bytes("1"));
            await store.PutAsync("b", Bytes("2"));
            await store.PutAsync("a", Bytes("3"));
            await store.DeleteAsync("b");
            await store.PutAsync("empty", ReadOnlyMemory<byte>.Empty);
        }

        await using (var reopened = new FileClusterStore(_dir.Path))
        {
            Assert.Equal(5, reopened.Revision);
            StoreEntry? a = await reopened.GetAsync("a");
            Assert.Equal(("3", 3L, 1L), (Text(a), a!.ModRevision, a.CreateRevision));
            Assert.Null(await reopened.GetAsync("b"));
            Assert.Equal(0, (await reopened.GetAsync("empty"))!.Value.Length);
            Assert.Equal(6, await reopened.PutAsync("c", Bytes("4")));
        }

        await using var third = new FileClusterStore(_dir.Path);
        Assert.Equal(6, third.Revision);
        Assert.Equal(["a", "c", "empty"], (await third.ListAsync("")).Select(e => e.Key));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a\0b")]
    public async Task InvalidKey_ThrowsArgumentExceptionNamingKey(string key)
    {
        await using var store = new FileClusterStore(_dir.Path);

        Assert.Equal("key", Assert.Throws<ArgumentException>(() => store.PutAsync(key, Bytes("x"))).ParamName);
        Assert.Equal("key", Assert.Throws<ArgumentException>(() => store.GetAsync(key)).ParamName);
        await Assert.ThrowsAsync<ArgumentException>(() => store.DeleteAsync(key).AsTask());
        Assert.Equal(0, store.Revision);
    }

    [Fact]
    public async Task KeyWithUnpairedSurrogate_ThrowsArgumentException()
    {
        // Not a theory: theory data cannot carry an unpaired surrogate intact.
        await using var store = new FileClusterStore(_dir.Path);

        var ex = Assert.Throws<ArgumentException>(() => store.PutAsync("\ud800lonely", Bytes("x")));

        Assert.Equal("key", ex.ParamName);
        Assert.Contains("surrogate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyLimit_IsCountedInUtf8Bytes()
    {
        await using var store = new FileClusterStore(_dir.Path);
        string atLimit = new('a', FileClusterStore.MaxKeyBytes);
        string overLimit = new('\u00e9', (FileClusterStore.MaxKeyBytes / 2) + 1); // 2 bytes each in UTF-8

        await store.PutAsync(atLimit, Bytes("ok"));
        var ex = Assert.Throws<ArgumentException>(() => store.PutAsync(overLimit, Bytes("x")));

        Assert.Equal("key", ex.ParamName);
        Assert.Contains("1024", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => store.PutAsync(new string('a', FileClusterStore.MaxKeyBytes + 1), Bytes("x")));
        Assert.Equal("ok", Text(await store.GetAsync(atLimit)));
    }

    [Fact]
    public async Task ValueLimit_Is16MiB()
    {
        await using (var store = new FileClusterStore(_dir.Path))
        {
            byte[] atLimit = new byte[FileClusterStore.MaxValueBytes];
            atLimit[^1] = 42;
            await store.PutAsync("big", atLimit);
            var ex = Assert.Throws<ArgumentException>(() => store.PutAsync("bigger", new byte[FileClusterStore.MaxValueBytes + 1]));
            Assert.Equal("value", ex.ParamName);
            Assert.Contains("16 MiB", ex.Message, StringComparison.Ordinal);
        }

        await using var reopened = new FileClusterStore(_dir.Path);
        StoreEntry? big = await reopened.GetAsync("big");
        Assert.Equal(FileClusterStore.MaxValueBytes, big!.Value.Length);
        Assert.Equal(42, big.Value.Span[^1]);
    }

    [Fact]
    public async Task NullArguments_Throw()
    {
        await using var store = new FileClusterStore(_dir.Path);

        Assert.Throws<ArgumentNullException>(() => store.GetAsync(null!));
        Assert.Throws<ArgumentNullException>(() => store.ListAsync(null!));
        Assert.Throws<ArgumentNullException>(() => store.WatchAsync(null!, 0, CancellationToken.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.WatchAsync("", -1, CancellationToken.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => store.PutAsync("k", Bytes("x"), expectedModRevision: -1));
        Assert.Throws<ArgumentException>(() => new FileClusterStore(" "));
    }

    [Fact]
    public async Task CancelledPut_WritesNothing()
    {
        await using var store = new FileClusterStore(_dir.Path);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.PutAsync("k", Bytes("x"), cancellationToken: cts.Token).AsTask());

        Assert.Equal(0, store.Revision);
        Assert.Null(await store.GetAsync("k"));
    }

    [Fact]
    public async Task OpenAsync_OpensAndRecoversLikeTheConstructor()
    {
        await using (var store = await FileClusterStore.OpenAsync(_dir.Path))
        {
            await store.PutAsync("k", Bytes("v"));
            await Assert.ThrowsAsync<IOException>(() => FileClusterStore.OpenAsync(_dir.Path));
        }

        await using var reopened = await FileClusterStore.OpenAsync(_dir.Path, new FileClusterStoreOptions());
        Assert.Equal("v", Text(await reopened.GetAsync("k")));
        Assert.Equal(_dir.Path, reopened.DirectoryPath);
    }

    [Fact]
    public void InvalidOptions_AreRejectedNamingTheSetting()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new FileClusterStore(_dir.Path, new FileClusterStoreOptions { WatchHistoryCapacity = 0 }));

        Assert.Contains("WatchHistoryCapacity", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir.Path, "wal.log")));
    }

    [Fact]
    public async Task SecondOpenOfSameDirectory_FailsWithClearMessage_UntilFirstIsDisposed()
    {
        var first = new FileClusterStore(_dir.Path);
        await first.PutAsync("k", Bytes("v"));

        var ex = Assert.Throws<IOException>(() => new FileClusterStore(_dir.Path));
        Assert.Contains("is in use by another process", ex.Message, StringComparison.Ordinal);
        Assert.Contains(_dir.Path, ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_dir.Path, "LOCK")));

        await first.DisposeAsync();
        await using var second = new FileClusterStore(_dir.Path);
        Assert.Equal("v", Text(await second.GetAsync("k")));
    }

    [Fact]
    public async Task AfterDispose_OperationsThrowObjectDisposed_AndDisposeIsIdempotent()
    {
        var store = new FileClusterStore(_dir.Path);
        await store.PutAsync("k", Bytes("v"));
        await store.DisposeAsync();
        await store.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => store.GetAsync("k"));
        Assert.Throws<ObjectDisposedException>(() => store.ListAsync(""));
        Assert.Throws<ObjectDisposedException>(() => store.PutAsync("k", Bytes("v")));
        Assert.Throws<ObjectDisposedException>(() => store.WatchAsync("", 0, CancellationToken.None));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.DeleteAsync("k").AsTask());
    }

    [Fact]
    public async Task Dispose_CompletesWritesAlreadyQueued()
    {
        var store = new FileClusterStore(_dir.Path);
        Task<long>[] writes = Enumerable.Range(0, 200).Select(i => store.PutAsync($"k/{i}", Bytes("v")).AsTask()).ToArray();

        await store.DisposeAsync();

        long[] revisions = await Task.WhenAll(writes); // all succeeded rather than being dropped
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), revisions.Order());
        await using var reopened = new FileClusterStore(_dir.Path);
        Assert.Equal(200, reopened.Revision);
        Assert.Equal(200, (await reopened.ListAsync("k/")).Count);
    }

    [Fact]
    public async Task ConcurrentWriters_AllAcknowledgedWritesSurviveReopen_WithUniqueRevisions()
    {
        const int Writers = 64;
        const int WritesEach = 100;
        var revisions = new long[Writers][];
        long flushes;

        await using (var store = new FileClusterStore(_dir.Path))
        {
            await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
            {
                revisions[w] = new long[WritesEach];
                for (int i = 0; i < WritesEach; i++)
                {
                    revisions[w][i] = await store.PutAsync($"writers/{w:D2}/{i:D3}", Bytes($"{w}:{i}"));
                }
            })));

            flushes = store.FlushCount;
            Assert.Equal(Writers * WritesEach, store.Revision);
        }

        long[] all = revisions.SelectMany(r => r).Order().ToArray();
        Assert.Equal(Enumerable.Range(1, Writers * WritesEach).Select(i => (long)i), all);
        Assert.All(revisions, r => Assert.Equal(r.Order(), r)); // each writer's revisions increase
        Assert.True(flushes < Writers * WritesEach, $"expected group commit to share flushes, got {flushes} flushes for {Writers * WritesEach} writes");

        await using var reopened = new FileClusterStore(_dir.Path);
        Assert.Equal(Writers * WritesEach, reopened.Revision);
        IReadOnlyList<StoreEntry> entries = await reopened.ListAsync("writers/");
        Assert.Equal(Writers * WritesEach, entries.Count);
        for (int w = 0; w < Writers; w++)
        {
            for (int i = 0; i < WritesEach; i++)
            {
                StoreEntry? entry = await reopened.GetAsync($"writers/{w:D2}/{i:D3}");
                Assert.Equal($"{w}:{i}", Text(entry));
                Assert.Equal(revisions[w][i], entry!.ModRevision);
            }
        }
    }

    [Fact]
    public async Task ReadsNeverSeeUnacknowledgedOrPartialState()
    {
        await using var store = new FileClusterStore(_dir.Path);
        using var stop = new CancellationTokenSource();

        // A reader checks that the index only ever moves forward while writers run.
        Task reader = Task.Run(async () =>
        {
            long lastRevision = 0;
            int lastCount = 0;
            while (!stop.IsCancellationRequested)
            {
                long revision = store.Revision;
                IReadOnlyList<StoreEntry> entries = await store.ListAsync("r/");
                Assert.True(revision >= lastRevision);
                Assert.True(entries.Count >= lastCount);
                Assert.All(entries, e => Assert.True(e.ModRevision <= store.Revision));
                lastRevision = revision;
                lastCount = entries.Count;
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                long revision = await store.PutAsync($"r/{w}/{i}", Bytes("x"));
                Assert.True(store.Revision >= revision);
                Assert.NotNull(await store.GetAsync($"r/{w}/{i}")); // read-your-writes once acknowledged
            }
        })));
        await stop.CancelAsync();
        await reader;
    }
}
