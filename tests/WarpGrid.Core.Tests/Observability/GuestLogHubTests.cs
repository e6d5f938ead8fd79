using WarpGrid.Core.Observability;

namespace WarpGrid.Core.Tests.Observability;

public sealed class GuestLogHubTests
{
    [Fact]
    public async Task A_record_written_after_Follow_and_before_the_first_read_is_delivered()
    {
        var hub = new GuestLogHub(capacityPerDeployment: 8);
        hub.Append("web", "1.0.0", "web-1", GuestLogStream.Stderr, "before");
        using var follower = hub.Follow("web", tail: 0);
        hub.Append("web", "1.0.0", "web-1", GuestLogStream.Stderr, "after subscribe");
        hub.Append("other", "1.0.0", "other-1", GuestLogStream.Stderr, "not mine");

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var records = follower.ReadAllAsync(timeout.Token).GetAsyncEnumerator(timeout.Token);
        Assert.True(await records.MoveNextAsync());
        Assert.Equal("after subscribe", records.Current.Message);
        Assert.Equal("web-1", records.Current.Instance);
    }

    [Fact]
    public async Task Follow_returns_the_tail_first_then_new_records_and_dispose_unsubscribes()
    {
        var hub = new GuestLogHub(capacityPerDeployment: 2);
        foreach (var line in new[] { "one", "two", "three" })
        {
            hub.Append("web", "1.0.0", "web-1", GuestLogStream.Stderr, line);
        }

        var follower = hub.Follow("web", tail: 5);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new List<string>();
        await using (var records = follower.ReadAllAsync(timeout.Token).GetAsyncEnumerator(timeout.Token))
        {
            while (seen.Count < 2 && await records.MoveNextAsync())
            {
                seen.Add(records.Current.Message);
            }

            hub.Append("web", "1.0.0", "web-1", GuestLogStream.Stderr, "four");
            Assert.True(await records.MoveNextAsync());
            seen.Add(records.Current.Message);
        }

        Assert.Equal(["two", "three", "four"], seen); // the ring keeps 2
        follower.Dispose();
        follower.Dispose(); // idempotent
        hub.Append("web", "1.0.0", "web-1", GuestLogStream.Stderr, "five");
        Assert.Equal(["four", "five"], hub.Tail("web", 2).Select(r => r.Message));
    }
}
