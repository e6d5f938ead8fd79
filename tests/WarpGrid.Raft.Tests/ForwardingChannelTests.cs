using System.Net;
using Microsoft.Extensions.Logging.Abstractions;

namespace WarpGrid.Raft.Tests;

/// <summary>The follower → leader forwarding link on real loopback sockets.</summary>
public sealed class ForwardingChannelTests
{
    [Fact]
    public async Task A_retired_connection_still_delivers_the_answers_of_requests_in_flight_and_takes_no_new_ones()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new ForwardServer(
            new IPEndPoint(IPAddress.Loopback, RaftTestCluster.FreePort()),
            tls: null,
            async (_, payload, _) =>
            {
                received.TrySetResult();
                await release.Task;
                return [.. payload, 42];
            },
            NullLogger.Instance);
        server.Start();
        ForwardClient client = await ForwardClient.ConnectAsync(server.EndPoint, "127.0.0.1:1", tls: null, TimeSpan.FromSeconds(30), CancellationToken.None);

        // A request is in flight at the old leader when another member becomes leader and the link is retired.
        Task<byte[]> inFlight = client.SendAsync(ForwardMessage.Operations, [1, 2, 3], CancellationToken.None);
        await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Task retiring = client.RetireAsync(TimeSpan.FromSeconds(30));

        Assert.True(client.IsBroken);
        await Assert.ThrowsAsync<ForwardNotSentException>(() => client.SendAsync(ForwardMessage.Operations, [9], CancellationToken.None));
        Assert.False(retiring.IsCompleted);

        // The old leader's answer still arrives; only then does the connection close.
        release.SetResult();
        Assert.Equal([1, 2, 3, 42], await inFlight.WaitAsync(TimeSpan.FromSeconds(30)));
        await retiring.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_retired_connection_closes_after_its_grace_period_when_the_old_leader_never_answers()
    {
        await using var server = new ForwardServer(
            new IPEndPoint(IPAddress.Loopback, RaftTestCluster.FreePort()),
            tls: null,
            async (_, _, token) =>
            {
                await Task.Delay(Timeout.Infinite, token);
                return [];
            },
            NullLogger.Instance);
        server.Start();
        ForwardClient client = await ForwardClient.ConnectAsync(server.EndPoint, "127.0.0.1:1", tls: null, TimeSpan.FromSeconds(30), CancellationToken.None);
        Task<byte[]> inFlight = client.SendAsync(ForwardMessage.Operations, [1], CancellationToken.None);

        await client.RetireAsync(TimeSpan.FromMilliseconds(200)).WaitAsync(TimeSpan.FromSeconds(30));

        // Closing the link makes the outcome unknown, and says so.
        IOException failure = await Assert.ThrowsAnyAsync<IOException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("outcome", failure.Message);
    }
}
