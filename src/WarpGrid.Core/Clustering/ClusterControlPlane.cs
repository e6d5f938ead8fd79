using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Scheduling;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Clustering;

/// <summary>Settings of a control plane.</summary>
public sealed record ControlPlaneSettings
{
    /// <summary>How often agents heartbeat. Default 2 s.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Heartbeat silence after which a node is not ready. Default 10 s.</summary>
    public TimeSpan NodeNotReadyAfter { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeat silence after which a node is lost and its instances are rescheduled. Default 30 s.</summary>
    public TimeSpan NodeLostAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Lifetime of node certificates; agents renew after two thirds of it. Default 24 h.</summary>
    public TimeSpan CertificateLifetime { get; init; } = TimeSpan.FromHours(24);

    /// <summary>How often the scheduling controller reconciles when nothing signals it. Default 1 s.</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>What an agent reports in a heartbeat.</summary>
public sealed record HeartbeatInfo
{
    /// <summary>Random per agent process start; a new session re-applies the agent's labels and taints.</summary>
    public required string Session { get; init; }

    /// <summary>Memory offered to instances.</summary>
    public long MemoryBytes { get; init; }

    /// <summary>CPU weight offered.</summary>
    public long CpuWeight { get; init; }

    /// <summary>Instances the node may run.</summary>
    public int InstanceSlots { get; init; }

    /// <summary>The agent's labels (flags or configuration).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The agent's taints.</summary>
    public IReadOnlyList<NodeTaint> Taints { get; init; } = [];

    /// <summary>Whether the agent can run instances.</summary>
    public bool Ready { get; init; } = true;

    /// <summary>Why not, when not.</summary>
    public string? NotReadyReason { get; init; }

    /// <summary>The agent's REST API URL.</summary>
    public string? ApiUrl { get; init; }

    /// <summary>The agent's ingress URL.</summary>
    public string? IngressUrl { get; init; }

    /// <summary>The agent's version.</summary>
    public string? Version { get; init; }

    /// <summary>What runs.</summary>
    public IReadOnlyList<RunningReport> Running { get; init; } = [];

    /// <summary>When the certificate the agent called with expires.</summary>
    public DateTimeOffset? CertificateNotAfter { get; init; }
}

/// <summary>Thrown for a node operation on a node that does not exist.</summary>
public sealed class NodeNotFoundException(string name) : Exception($"no node named '{name}' (list nodes with: warp nodes list)")
{
    /// <summary>The node name.</summary>
    public string Name { get; } = name;
}

/// <summary>Thrown for a call only the control-plane leader serves (heartbeats) on a member that does not lead.</summary>
public sealed class ControlPlaneNotLeaderException() : Exception("this control-plane member is not the leader: send heartbeats to the leader");

/// <summary>
/// The control plane's cluster half: joins (token + CSR → certificate), heartbeats and the node status state machine,
/// node operations (labels, taints, cordon, drain), and the scheduling controller that turns deployments and nodes into
/// <c>allocations/&lt;node&gt;/&lt;deployment&gt;</c> through <see cref="ClusterPlanner"/>. It also publishes each
/// deployment's placement to the <see cref="DeploymentRegistry"/> (state pending with the explanation when instances
/// have no node), so the REST API and <c>warp status</c> show it. See docs/cluster-agents.md.
/// </summary>
public sealed partial class ClusterControlPlane
{
    private readonly IClusterStore _store;
    private readonly IScheduler _scheduler;
    private readonly ClusterPlanner _planner;
    private readonly DeploymentRegistry _registry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SemaphoreSlim _nodeWrites = new(1, 1);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile IReadOnlyDictionary<string, DeploymentPlacement> _placements = new Dictionary<string, DeploymentPlacement>();
    private readonly IControlPlaneLeadership _leadership;
    private volatile bool _leading;

    /// <summary>Creates the control plane.</summary>
    public ClusterControlPlane(
        IClusterStore store,
        IScheduler scheduler,
        DeploymentRegistry registry,
        ClusterCertificateAuthority authority,
        ControlPlaneSettings settings,
        TimeProvider? timeProvider = null,
        ILogger<ClusterControlPlane>? logger = null,
        IControlPlaneLeadership? leadership = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(settings);
        _store = store;
        _scheduler = scheduler;
        _planner = new ClusterPlanner(scheduler);
        _registry = registry;
        Authority = authority;
        Settings = settings;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Tokens = new JoinTokenStore(store, _time);
        Health = new NodeHealthTracker(settings.NodeNotReadyAfter, settings.NodeLostAfter, _time);
        _leadership = leadership ?? SingleControlPlaneLeadership.Instance;
    }

    /// <summary>
    /// Whether this member runs the controllers now: it leads and has taken over node tracking. Only the leader
    /// accepts heartbeats, marks nodes not ready or lost, and writes allocations; the others publish placements only.
    /// </summary>
    public bool IsLeading => _leading && _leadership.IsLeader;

    /// <summary>The cluster CA.</summary>
    public ClusterCertificateAuthority Authority { get; }

    /// <summary>The settings.</summary>
    public ControlPlaneSettings Settings { get; }

    /// <summary>Join tokens.</summary>
    public JoinTokenStore Tokens { get; }

    /// <summary>The node status state machine.</summary>
    public NodeHealthTracker Health { get; }

    /// <summary>Completes after the first reconcile.</summary>
    public Task Ready => _ready.Task;

    /// <summary>The placement of every deployment, as of the last reconcile.</summary>
    public IReadOnlyDictionary<string, DeploymentPlacement> Placements => _placements;

    /// <summary>The access control whose deny list revokes a deleted node's certificates (null: none kept).</summary>
    public Security.AccessControl? Access { get; init; }

    /// <summary>Store prefix of the serials issued to each node: <c>auth/nodecerts/&lt;node&gt;/&lt;serial&gt;</c>.</summary>
    public const string IssuedPrefix = "auth/nodecerts/";

    /// <summary>
    /// Checks a join token and signs the node's CSR. The node record appears with the first heartbeat. A name that
    /// belongs to a registered node is refused unless <paramref name="presented"/> is that node's current certificate.
    /// </summary>
    /// <exception cref="CertificateRejectedException">The token or CSR is refused (message says why).</exception>
    public async Task<X509Certificate2> JoinAsync(string? token, ReadOnlyMemory<byte> csr, string nodeName, CancellationToken cancellationToken = default, X509Certificate2? presented = null)
    {
        if (!NodeNames.IsValid(nodeName))
        {
            throw new CertificateRejectedException($"node name '{nodeName}' must be 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit");
        }

        if (await _store.GetAsync(NodeRecord.KeyFor(nodeName), cancellationToken).ConfigureAwait(false) is not null)
        {
            string? why = null;
            try
            {
                if (presented is null || Authority.ValidateNode(presented) != nodeName)
                {
                    why = "no certificate of that node was presented";
                }
                else if (Access is { } access && await access.IsRevokedAsync(presented.SerialNumber, cancellationToken).ConfigureAwait(false))
                {
                    why = "the presented certificate was revoked";
                }
            }
            catch (CertificateRejectedException ex)
            {
                why = ex.Message;
            }

            if (why is not null)
            {
                var impostor = $"node name '{nodeName}' belongs to a registered node and {why}; join under another name, or delete the node first (warp nodes delete {nodeName})";
                Log.JoinRefused(_logger, nodeName, impostor);
                throw new CertificateRejectedException(impostor);
            }
        }

        var refusal = await Tokens.ValidateAsync(token, Authority.PinnedHash, cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            Log.JoinRefused(_logger, nodeName, refusal);
            throw new CertificateRejectedException(refusal);
        }

        var cert = Authority.SignNode(csr.Span, nodeName, Settings.CertificateLifetime);
        await RecordIssuedAsync(nodeName, cert, cancellationToken).ConfigureAwait(false);
        Log.Joined(_logger, nodeName, cert.NotAfter.ToUniversalTime());
        return cert;
    }

    /// <summary>Signs a new certificate for a node that called with a valid one.</summary>
    public async Task<X509Certificate2> RenewAsync(string nodeName, ReadOnlyMemory<byte> csr, CancellationToken cancellationToken = default)
    {
        var cert = Authority.SignNode(csr.Span, nodeName, Settings.CertificateLifetime);
        await RecordIssuedAsync(nodeName, cert, cancellationToken).ConfigureAwait(false);
        Log.Renewed(_logger, nodeName, cert.NotAfter.ToUniversalTime());
        return cert;
    }

    /// <summary>Remembers a serial issued to a node, so that deleting the node revokes it.</summary>
    private async Task RecordIssuedAsync(string nodeName, X509Certificate2 cert, CancellationToken cancellationToken)
    {
        var notAfter = new DateTimeOffset(cert.NotAfter.ToUniversalTime());
        await _store.PutAsync($"{IssuedPrefix}{nodeName}/{cert.SerialNumber}", System.Text.Encoding.UTF8.GetBytes(notAfter.ToString("O", System.Globalization.CultureInfo.InvariantCulture)), cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Records a heartbeat: updates the status state machine and the node record when something changed.</summary>
    public async Task HeartbeatAsync(string nodeName, HeartbeatInfo info, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        ArgumentNullException.ThrowIfNull(info);
        if (!IsLeading)
        {
            throw new ControlPlaneNotLeaderException();
        }

        var previousRunning = Health.RunningOn(nodeName);
        var change = Health.Heartbeat(nodeName, info.Ready, info.NotReadyReason, info.Running);
        bool signal = change is not null || !previousRunning.SequenceEqual(info.Running);
        await _nodeWrites.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            signal |= await WithStoreRetryAsync(() => WriteNodeAsync(nodeName, info, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _nodeWrites.Release();
        }

        if (change is not null)
        {
            Log.StatusChanged(_logger, nodeName, change.From, change.To, change.Reason ?? "heartbeat");
        }

        if (signal)
        {
            Signal();
        }
    }

    /// <summary>
    /// Runs a store operation again when it fails with a store I/O error (no leader for a moment, or a write whose
    /// outcome is unknown after a leader change) while this member still leads: the operations passed here are
    /// idempotent (whole-record puts), so a retry cannot do harm. Up to 5 attempts, 250 ms apart.
    /// </summary>
    private async Task<T> WithStoreRetryAsync<T>(Func<Task<T>> operation, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await operation().ConfigureAwait(false);
            }
            catch (IOException ex) when (attempt < 5 && _leadership.IsLeader && !cancellationToken.IsCancellationRequested)
            {
                Log.StoreRetry(_logger, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(250), _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> WriteNodeAsync(string nodeName, HeartbeatInfo info, CancellationToken cancellationToken)
    {
        bool signal = false;
        {
            var entry = await _store.GetAsync(NodeRecord.KeyFor(nodeName), cancellationToken).ConfigureAwait(false);
            var existing = entry is null ? null : NodeRecord.FromBytes(entry.Value.Span);
            var now = _time.GetUtcNow();
            var record = existing ?? new NodeRecord { Name = nodeName, JoinedAt = now, StatusChangedAt = now };
            if (existing is null || existing.Session != info.Session)
            {
                var labels = new Dictionary<string, string>(record.Labels, StringComparer.Ordinal);
                foreach (var (k, v) in info.Labels)
                {
                    labels[k] = v;
                }

                var taints = record.Taints.Where(t => !info.Taints.Any(n => n.Key == t.Key && n.Effect == t.Effect)).Concat(info.Taints).ToList();
                record = record with { Labels = labels, Taints = taints, Session = info.Session };
            }

            var status = Health.StatusOf(nodeName) ?? NodeStatus.NotReady;
            record = record with
            {
                MemoryBytes = info.MemoryBytes,
                CpuWeight = info.CpuWeight,
                InstanceSlots = info.InstanceSlots,
                ApiUrl = info.ApiUrl,
                IngressUrl = info.IngressUrl,
                Version = info.Version,
                CertificateNotAfter = info.CertificateNotAfter ?? record.CertificateNotAfter,
                Status = status,
                StatusReason = Health.ReasonOf(nodeName),
                StatusChangedAt = record.Status != status ? now : record.StatusChangedAt,
            };
            if (existing is null || !existing.SameAs(record))
            {
                await _store.PutAsync(NodeRecord.KeyFor(nodeName), record.ToBytes(), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (existing is null)
                {
                    Log.Registered(_logger, nodeName, info.ApiUrl ?? "?");
                }

                signal = true;
            }
        }

        return signal;
    }

    /// <summary>Every node record, with its live status, in name order.</summary>
    public async Task<IReadOnlyList<NodeRecord>> ListNodesAsync(CancellationToken cancellationToken = default)
    {
        var entries = await _store.ListAsync(NodeRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
        return [.. entries.Select(e => Live(NodeRecord.FromBytes(e.Value.Span)))];
    }

    /// <summary>One node, or null.</summary>
    public async Task<NodeRecord?> GetNodeAsync(string name, CancellationToken cancellationToken = default)
    {
        var entry = await _store.GetAsync(NodeRecord.KeyFor(name), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : Live(NodeRecord.FromBytes(entry.Value.Span));
    }

    private NodeRecord Live(NodeRecord record) =>
        Health.StatusOf(record.Name) is { } status ? record with { Status = status, StatusReason = Health.ReasonOf(record.Name) } : record;

    /// <summary>Changes a node record (labels, taints, cordon, drain) with compare-and-set; returns the new record.</summary>
    /// <exception cref="NodeNotFoundException">No such node.</exception>
    public async Task<NodeRecord> UpdateNodeAsync(string name, Func<NodeRecord, NodeRecord> change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        await _nodeWrites.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var entry = await _store.GetAsync(NodeRecord.KeyFor(name), cancellationToken).ConfigureAwait(false) ?? throw new NodeNotFoundException(name);
            var updated = change(NodeRecord.FromBytes(entry.Value.Span));
            await _store.PutAsync(NodeRecord.KeyFor(name), updated.ToBytes(), entry.ModRevision, cancellationToken).ConfigureAwait(false);
            Log.NodeUpdated(_logger, name, updated.Cordoned, updated.Draining);
            Signal();
            return Live(updated);
        }
        finally
        {
            _nodeWrites.Release();
        }
    }

    /// <summary>Removes a node and its allocations (its instances are rescheduled).</summary>
    public async Task<bool> RemoveNodeAsync(string name, CancellationToken cancellationToken = default)
    {
        // Every certificate issued to the node goes on the deny list first: a deleted node cannot come back without a token.
        foreach (var issued in await _store.ListAsync($"{IssuedPrefix}{name}/", cancellationToken).ConfigureAwait(false))
        {
            var serial = issued.Key[(issued.Key.LastIndexOf('/') + 1)..];
            if (Access is { } access && DateTimeOffset.TryParse(System.Text.Encoding.UTF8.GetString(issued.Value.Span), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var notAfter))
            {
                await access.RevokeCertificateAsync(serial, "node:" + name, notAfter, cancellationToken).ConfigureAwait(false);
            }

            await _store.DeleteAsync(issued.Key, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        bool removed = await _store.DeleteAsync(NodeRecord.KeyFor(name), cancellationToken: cancellationToken).ConfigureAwait(false);
        Health.Forget(name);
        Signal();
        return removed;
    }

    /// <summary>Asks for a reconcile soon.</summary>
    public void Signal() => _signal.Writer.TryWrite(true);

    /// <summary>
    /// Every filter's verdict and score on every node for one more instance of <paramref name="deployment"/>, against the
    /// cluster as it is now (for <c>--explain</c>); null when the deployment does not exist.
    /// </summary>
    public async Task<SchedulingExplanation?> ExplainAsync(string deployment, CancellationToken cancellationToken = default)
    {
        var (deps, nodes, allocations) = await LoadAsync(cancellationToken).ConfigureAwait(false);
        var dep = deps.FirstOrDefault(d => d.Record.Name == deployment);
        if (dep is null)
        {
            return null;
        }

        var byDep = deps.ToDictionary(d => d.Record.Name, StringComparer.Ordinal);
        var counts = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal);
        foreach (var a in allocations)
        {
            if (!counts.TryGetValue(a.Record.Deployment, out var perNode))
            {
                counts[a.Record.Deployment] = perNode = new Dictionary<string, int>(StringComparer.Ordinal);
            }

            perNode[a.Record.Node] = a.Record.Instances;
        }

        var snapshot = new ClusterSnapshot(ClusterPlanner.ToSchedulerNodes(nodes, byDep, counts));
        return _scheduler.Explain(snapshot, dep.Request(1));
    }

    /// <summary>Reconciles until cancelled: after every signal (deployment or node change, heartbeat news) and every <see cref="ControlPlaneSettings.ReconcileInterval"/>.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var watches = Task.WhenAll(
            WatchAsync(DeploymentRecord.KeyPrefix, cancellationToken),
            WatchAsync(NodeRecord.KeyPrefix, cancellationToken));
        _leadership.Changed += Signal;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                bool leader = _leadership.IsLeader;
                if (leader && !_leading)
                {
                    // Taking over: every known node keeps its stored status with a fresh clock (one NodeNotReadyAfter of grace).
                    var known = await _store.ListAsync(NodeRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
                    Health.TakeOver(known.Select(e => NodeRecord.FromBytes(e.Value.Span)).Select(r => KeyValuePair.Create(r.Name, r.Status)));
                    _leading = true;
                    Log.Leading(_logger, known.Count);
                }
                else if (!leader && _leading)
                {
                    _leading = false;
                    Health.TakeOver([]);
                    Log.Following(_logger);
                }

                await ReconcileAsync(_leading, cancellationToken).ConfigureAwait(false);
                _ready.TrySetResult();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or StoreConflictException or StoreCompactedException)
            {
                Log.ReconcileFailed(_logger, ex);
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(Settings.ReconcileInterval);
            try
            {
                await _signal.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // interval elapsed
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        _leadership.Changed -= Signal;
        try
        {
            await watches.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WatchAsync(string prefix, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var _ in _store.WatchAsync(prefix, _store.Revision, cancellationToken).ConfigureAwait(false))
                {
                    Signal();
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is StoreCompactedException or IOException)
            {
                Signal();
            }
        }
    }

    private async Task<(List<PlannerDeployment> Deployments, List<PlannerNode> Nodes, List<PlannerAllocation> Allocations)> LoadAsync(CancellationToken cancellationToken)
    {
        var deps = new List<PlannerDeployment>();
        foreach (var entry in await _store.ListAsync(DeploymentRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
        {
            var record = DeploymentRecord.FromBytes(entry.Value.Span, entry.ModRevision);
            try
            {
                deps.Add(new PlannerDeployment(record, DeploymentManager.ParseManifest(record.Manifest)));
            }
            catch (DeploymentValidationException ex)
            {
                Log.BadRecord(_logger, record.Name, ex.Message);
            }
        }

        var nodes = new List<PlannerNode>();
        foreach (var entry in await _store.ListAsync(NodeRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
        {
            var record = NodeRecord.FromBytes(entry.Value.Span);
            nodes.Add(new PlannerNode(record, Health.StatusOf(record.Name) ?? record.Status, Health.RunningOn(record.Name)));
        }

        var allocations = new List<PlannerAllocation>();
        foreach (var entry in await _store.ListAsync(AllocationRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
        {
            allocations.Add(new PlannerAllocation(AllocationRecord.FromBytes(entry.Value.Span), entry.ModRevision));
        }

        return (deps, nodes, allocations);
    }

    private async Task ReconcileAsync(bool leading, CancellationToken cancellationToken)
    {
        foreach (var change in leading ? Health.Evaluate() : [])
        {
            Log.StatusChanged(_logger, change.Node, change.From, change.To, change.Reason ?? "clock");
            try
            {
                await UpdateNodeAsync(change.Node, r => r with { Status = change.To, StatusReason = change.Reason, StatusChangedAt = _time.GetUtcNow() }, cancellationToken).ConfigureAwait(false);
            }
            catch (NodeNotFoundException)
            {
                Health.Forget(change.Node);
            }
        }

        var (deps, nodes, allocations) = await LoadAsync(cancellationToken).ConfigureAwait(false);
        var plan = _planner.Plan(deps, nodes, allocations);
        if (!leading || !_leadership.IsLeader)
        {
            // A follower publishes what the allocations in the store already say; only the leader changes them.
            PublishPlacements(plan, deps, observed: allocations);
            return;
        }

        foreach (var move in plan.Moves)
        {
            if (move.ToNode is { } to)
            {
                Log.Moved(_logger, move.Instance.Deployment, move.FromNode, to);
            }
        }

        foreach (var victim in plan.Victims)
        {
            Log.Preempted(_logger, victim.Instance.Deployment, victim.NodeName);
        }

        var byDep = deps.ToDictionary(d => d.Record.Name, StringComparer.Ordinal);
        // Instances on nodes that keep them: drained instances do not change the share of max_instances of the others.
        var totals = plan.Deployments.ToDictionary(p => p.Deployment, p => Math.Max(1, p.Placed), StringComparer.Ordinal);
        var existing = allocations.ToDictionary(a => (a.Record.Node, a.Record.Deployment));
        foreach (var ((node, dep), count) in plan.Allocations.OrderBy(p => p.Key.Node, StringComparer.Ordinal).ThenBy(p => p.Key.Deployment, StringComparer.Ordinal))
        {
            var d = byDep[dep];
            var record = new AllocationRecord
            {
                Node = node,
                Deployment = dep,
                Instances = count,
                TotalInstances = Math.Max(count, totals[dep]),
                DeploymentRevision = d.Record.Revision,
                Record = d.Record,
            };
            if (existing.TryGetValue((node, dep), out var old) && old.Record.Instances == count && old.Record.TotalInstances == record.TotalInstances && old.Record.DeploymentRevision == d.Record.Revision)
            {
                continue;
            }

            await _store.PutAsync(AllocationRecord.KeyFor(node, dep), record.ToBytes(), cancellationToken: cancellationToken).ConfigureAwait(false);
            Log.Allocated(_logger, dep, node, count);
        }

        foreach (var old in allocations)
        {
            if (!plan.Allocations.ContainsKey((old.Record.Node, old.Record.Deployment)))
            {
                await _store.DeleteAsync(AllocationRecord.KeyFor(old.Record.Node, old.Record.Deployment), cancellationToken: cancellationToken).ConfigureAwait(false);
                Log.Deallocated(_logger, old.Record.Deployment, old.Record.Node);
            }
        }

        PublishPlacements(plan, deps, observed: null);
    }

    /// <summary>
    /// Publishes placements for the API (GET /v1/deployments shows pending + why). On a follower
    /// (<paramref name="observed"/> set) a deployment counts as running only once the leader wrote allocations for its
    /// current revision.
    /// </summary>
    private void PublishPlacements(ClusterPlan plan, List<PlannerDeployment> deps, List<PlannerAllocation>? observed)
    {
        var byDep = deps.ToDictionary(d => d.Record.Name, StringComparer.Ordinal);
        _placements = plan.Deployments.ToDictionary(p => p.Deployment, StringComparer.Ordinal);
        foreach (var placement in plan.Deployments)
        {
            var d = byDep[placement.Deployment];
            var state = placement.Pending is not null ? DeploymentState.Pending : DeploymentState.Running;
            if (observed is not null && state == DeploymentState.Running
                && !observed.Any(a => a.Record.Deployment == placement.Deployment && a.Record.DeploymentRevision == d.Record.Revision))
            {
                continue; // the leader has not allocated this revision yet
            }

            var current = _registry.Get(placement.Deployment);
            if (current is null || current.Record.Revision != d.Record.Revision || current.State != state || current.Message != placement.Message)
            {
                _registry.Set(new ActiveDeployment(d.Record, d.Manifest, null, state, placement.Message, d.Record.Revision));
            }
        }

        foreach (var name in _registry.Active.Keys.Where(n => !byDep.ContainsKey(n)).ToList())
        {
            _registry.Remove(name, _store.Revision);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Node {Node} joined; certificate valid until {NotAfter:O}")]
        public static partial void Joined(ILogger logger, string node, DateTime notAfter);

        [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Join of node {Node} refused: {Reason}")]
        public static partial void JoinRefused(ILogger logger, string node, string reason);

        [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "Node {Node} renewed its certificate; valid until {NotAfter:O}")]
        public static partial void Renewed(ILogger logger, string node, DateTime notAfter);

        [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Node {Node} registered (API {ApiUrl})")]
        public static partial void Registered(ILogger logger, string node, string apiUrl);

        [LoggerMessage(EventId = 204, Level = LogLevel.Information, Message = "Node {Node}: {From} -> {To} ({Reason})")]
        public static partial void StatusChanged(ILogger logger, string node, NodeStatus from, NodeStatus to, string reason);

        [LoggerMessage(EventId = 205, Level = LogLevel.Information, Message = "Node {Node} updated: cordoned {Cordoned}, draining {Draining}")]
        public static partial void NodeUpdated(ILogger logger, string node, bool cordoned, bool draining);

        [LoggerMessage(EventId = 206, Level = LogLevel.Information, Message = "Allocated {Count} instance(s) of {Deployment} to {Node}")]
        public static partial void Allocated(ILogger logger, string deployment, string node, int count);

        [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Removed {Deployment} from {Node}")]
        public static partial void Deallocated(ILogger logger, string deployment, string node);

        [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Moving an instance of {Deployment} from {From} to {To}")]
        public static partial void Moved(ILogger logger, string deployment, string from, string to);

        [LoggerMessage(EventId = 209, Level = LogLevel.Information, Message = "Preempted an instance of {Deployment} on {Node}")]
        public static partial void Preempted(ILogger logger, string deployment, string node);

        [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Reconcile failed; retrying")]
        public static partial void ReconcileFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Deployment {Name} has an unreadable manifest: {Reason}")]
        public static partial void BadRecord(ILogger logger, string name, string reason);

        [LoggerMessage(EventId = 212, Level = LogLevel.Information, Message = "This control-plane member leads: running the scheduling and node-health controllers ({Count} known nodes keep their status for one heartbeat timeout)")]
        public static partial void Leading(ILogger logger, int count);

        [LoggerMessage(EventId = 213, Level = LogLevel.Information, Message = "This control-plane member no longer leads: controllers stopped here")]
        public static partial void Following(ILogger logger);

        [LoggerMessage(EventId = 214, Level = LogLevel.Warning, Message = "Store write failed (attempt {Attempt}), retrying: {Reason}")]
        public static partial void StoreRetry(ILogger logger, int attempt, string reason);
    }
}
