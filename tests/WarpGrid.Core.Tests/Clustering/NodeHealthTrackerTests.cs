using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Tests.Clustering;

public sealed class NodeHealthTrackerTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    private NodeHealthTracker Tracker() => new(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), _time);

    [Fact]
    public void Heartbeats_make_a_node_ready_silence_makes_it_not_ready_then_lost_and_a_heartbeat_brings_it_back()
    {
        var t = Tracker();
        var first = t.Heartbeat("n1", ready: true, null);
        Assert.Equal(new NodeStatusChange("n1", NodeStatus.NotReady, NodeStatus.Ready, null), first);
        Assert.Null(t.Heartbeat("n1", ready: true, null));

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Empty(t.Evaluate());
        _time.Advance(TimeSpan.FromSeconds(1));
        var late = Assert.Single(t.Evaluate());
        Assert.Equal(NodeStatus.NotReady, late.To);
        Assert.Contains("no heartbeat for 10 s", late.Reason, StringComparison.Ordinal);
        Assert.Empty(t.Evaluate()); // no repeated transition

        _time.Advance(TimeSpan.FromSeconds(20));
        var lost = Assert.Single(t.Evaluate());
        Assert.Equal((NodeStatus.NotReady, NodeStatus.Lost), (lost.From, lost.To));
        Assert.Equal(NodeStatus.Lost, t.StatusOf("n1"));

        var back = t.Heartbeat("n1", ready: true, null);
        Assert.Equal((NodeStatus.Lost, NodeStatus.Ready), (back!.From, back.To));
    }

    [Fact]
    public void A_new_leader_taking_over_keeps_stored_statuses_for_one_not_ready_timeout_and_forgets_stale_nodes()
    {
        var t = Tracker();
        t.Heartbeat("stale", ready: true, null);
        _time.Advance(TimeSpan.FromMinutes(5)); // this member followed for a while: what it tracked is stale

        t.TakeOver([KeyValuePair.Create("a", NodeStatus.Ready), KeyValuePair.Create("gone", NodeStatus.Lost)]);
        Assert.Null(t.StatusOf("stale"));
        Assert.Equal(NodeStatus.Ready, t.StatusOf("a"));
        Assert.Equal(NodeStatus.Lost, t.StatusOf("gone"));

        // Grace: nothing changes before NotReadyAfter, so agents have time to reach the new leader.
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Empty(t.Evaluate());
        Assert.Null(t.Heartbeat("a", ready: true, null)); // the agent arrived: still ready, no transition

        // An agent that never arrives goes the usual way: not ready, then lost.
        t.TakeOver([KeyValuePair.Create("b", NodeStatus.Ready)]);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(NodeStatus.NotReady, Assert.Single(t.Evaluate()).To);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(NodeStatus.Lost, Assert.Single(t.Evaluate()).To);
    }

    [Fact]
    public void An_agent_that_reports_a_problem_is_not_ready_with_its_reason()
    {
        var t = Tracker();
        t.Heartbeat("n1", ready: true, null);
        var change = t.Heartbeat("n1", ready: false, "runtime out of slots");
        Assert.Equal(NodeStatus.NotReady, change!.To);
        Assert.Equal("runtime out of slots", t.ReasonOf("n1"));
        Assert.Empty(t.Evaluate());
        Assert.Equal(NodeStatus.Ready, t.Heartbeat("n1", ready: true, null)!.To);
    }

    [Fact]
    public void Nodes_known_at_start_get_the_full_grace_period_before_they_are_lost()
    {
        var t = Tracker();
        t.Track("old", NodeStatus.NotReady);
        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.Empty(t.Evaluate());
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(NodeStatus.Lost, Assert.Single(t.Evaluate()).To);
    }

    [Fact]
    public void Bad_timeouts_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NodeHealthTracker(TimeSpan.Zero, TimeSpan.FromSeconds(1), _time));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NodeHealthTracker(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5), _time));
    }
}
