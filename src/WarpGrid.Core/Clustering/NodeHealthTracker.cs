using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Clustering;

/// <summary>A node's status changed.</summary>
/// <param name="Node">The node.</param>
/// <param name="From">The previous status.</param>
/// <param name="To">The new status.</param>
/// <param name="Reason">Why (e.g. <c>no heartbeat for 12 s</c>).</param>
public sealed record NodeStatusChange(string Node, NodeStatus From, NodeStatus To, string? Reason);

/// <summary>
/// The node status state machine, driven by heartbeats and a clock: a node is <see cref="NodeStatus.Ready"/> while its
/// heartbeats arrive within <see cref="NotReadyAfter"/> and it reports itself ready; <see cref="NodeStatus.NotReady"/>
/// when it reports a problem or heartbeats are late; <see cref="NodeStatus.Lost"/> once no heartbeat came for
/// <see cref="LostAfter"/>. Any heartbeat brings a lost node back. Nodes known at start get the full grace period from
/// then (a restarted control plane does not declare every node lost). Thread-safe.
/// </summary>
public sealed class NodeHealthTracker
{
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _nodes = new(StringComparer.Ordinal);

    /// <summary>Creates a tracker.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="notReadyAfter"/> is not positive or <paramref name="lostAfter"/> is not above it.</exception>
    public NodeHealthTracker(TimeSpan notReadyAfter, TimeSpan lostAfter, TimeProvider? timeProvider = null)
    {
        if (notReadyAfter <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(notReadyAfter), notReadyAfter, "must be positive");
        }

        if (lostAfter <= notReadyAfter)
        {
            throw new ArgumentOutOfRangeException(nameof(lostAfter), lostAfter, "must be greater than notReadyAfter");
        }

        NotReadyAfter = notReadyAfter;
        LostAfter = lostAfter;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Heartbeat silence after which a node is not ready.</summary>
    public TimeSpan NotReadyAfter { get; }

    /// <summary>Heartbeat silence after which a node is lost and its instances are rescheduled.</summary>
    public TimeSpan LostAfter { get; }

    /// <summary>Registers a node known from the store, with status <paramref name="status"/>; its clock starts now.</summary>
    public void Track(string node, NodeStatus status)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        lock (_lock)
        {
            if (!_nodes.ContainsKey(node))
            {
                _nodes[node] = new Entry { LastHeartbeat = _time.GetUtcNow(), Status = status, ReportedReady = status == NodeStatus.Ready };
            }
        }
    }

    /// <summary>
    /// Takes over tracking when this control-plane member becomes the leader: forgets what it knew and tracks exactly
    /// <paramref name="nodes"/> with their stored status and clocks starting now, so each node gets one full
    /// <see cref="NotReadyAfter"/> to reach the new leader before its status changes (no instant "lost" on failover).
    /// </summary>
    public void TakeOver(IEnumerable<KeyValuePair<string, NodeStatus>> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        lock (_lock)
        {
            _nodes.Clear();
            var now = _time.GetUtcNow();
            foreach (var (node, status) in nodes)
            {
                _nodes[node] = new Entry { LastHeartbeat = now, Status = status, ReportedReady = status == NodeStatus.Ready };
            }
        }
    }

    /// <summary>Records a heartbeat; returns the status change it causes, if any.</summary>
    public NodeStatusChange? Heartbeat(string node, bool ready, string? reason, IReadOnlyList<RunningReport>? running = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var entry))
            {
                entry = new Entry { Status = NodeStatus.NotReady };
                _nodes[node] = entry;
            }

            entry.LastHeartbeat = _time.GetUtcNow();
            entry.ReportedReady = ready;
            entry.ReportedReason = reason;
            entry.HasHeartbeat = true;
            if (running is not null)
            {
                entry.Running = running;
            }

            return Transition(node, entry, ready ? NodeStatus.Ready : NodeStatus.NotReady, ready ? null : reason ?? "the agent reports not ready");
        }
    }

    /// <summary>Applies the clock: returns every status change since the last call.</summary>
    public IReadOnlyList<NodeStatusChange> Evaluate()
    {
        var now = _time.GetUtcNow();
        var changes = new List<NodeStatusChange>();
        lock (_lock)
        {
            foreach (var (name, entry) in _nodes)
            {
                var silence = now - entry.LastHeartbeat;
                NodeStatusChange? change;
                if (silence >= LostAfter)
                {
                    change = Transition(name, entry, NodeStatus.Lost, $"no heartbeat for {silence.TotalSeconds:0} s (lost after {LostAfter.TotalSeconds:0} s)");
                }
                else if (silence >= NotReadyAfter)
                {
                    change = Transition(name, entry, NodeStatus.NotReady, $"no heartbeat for {silence.TotalSeconds:0} s");
                }
                else
                {
                    change = entry.HasHeartbeat
                        ? Transition(name, entry, entry.ReportedReady ? NodeStatus.Ready : NodeStatus.NotReady, entry.ReportedReady ? null : entry.ReportedReason)
                        : null;
                }

                if (change is not null)
                {
                    changes.Add(change);
                }
            }
        }

        return changes;
    }

    /// <summary>The current status of a node, or null when unknown.</summary>
    public NodeStatus? StatusOf(string node)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(node, out var e) ? e.Status : null;
        }
    }

    /// <summary>The reason for the current status, if not ready.</summary>
    public string? ReasonOf(string node)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(node, out var e) ? e.Reason : null;
        }
    }

    /// <summary>When the node's last heartbeat arrived (or when tracking began).</summary>
    public DateTimeOffset? LastHeartbeatOf(string node)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(node, out var e) ? e.LastHeartbeat : null;
        }
    }

    /// <summary>What the node reported running in its last heartbeat.</summary>
    public IReadOnlyList<RunningReport> RunningOn(string node)
    {
        lock (_lock)
        {
            return _nodes.TryGetValue(node, out var e) ? e.Running : [];
        }
    }

    /// <summary>Forgets a node.</summary>
    public bool Forget(string node)
    {
        lock (_lock)
        {
            return _nodes.Remove(node);
        }
    }

    private static NodeStatusChange? Transition(string name, Entry entry, NodeStatus to, string? reason)
    {
        var from = entry.Status;
        entry.Reason = reason;
        if (from == to)
        {
            return null;
        }

        entry.Status = to;
        return new NodeStatusChange(name, from, to, reason);
    }

    private sealed class Entry
    {
        public DateTimeOffset LastHeartbeat { get; set; }

        public NodeStatus Status { get; set; }

        public bool ReportedReady { get; set; }

        public string? ReportedReason { get; set; }

        public string? Reason { get; set; }

        public bool HasHeartbeat { get; set; }

        public IReadOnlyList<RunningReport> Running { get; set; } = [];
    }
}
