using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using DotNext.Net.Cluster;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.Membership;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Storage;

namespace WarpGrid.Raft;

/// <summary>
/// The <see cref="IClusterStore"/> replicated with Raft (DotNext, TCP transport) across the control-plane members.
/// </summary>
/// <remarks>
/// <para>
/// Writes on any member work: the leader groups the writes that arrive while earlier batches replicate into one log
/// entry (up to <see cref="RaftStoreOptions.MaxBatchOperations"/>), and a follower forwards its writes to the leader
/// over a member-to-member link. A write returns once its entry is committed by a majority and applied locally, so an
/// acknowledged write survives the loss of any minority of members. Reads are linearizable: they pass a read barrier
/// (the leader confirms its leadership and this member applies everything committed) before reading the local state.
/// Watches are served by each member from its own applied state and resume from any retained revision.
/// </para>
/// <para>
/// Revisions count store changes (puts and deletes that changed something), as in the embedded store, not Raft log
/// indices; every member assigns the same revisions because it applies the same log.
/// </para>
/// </remarks>
public sealed partial class RaftClusterStore : IClusterStore, IAsyncDisposable
{
    private const string ForwardMetadataKey = "warpgrid.forward";

    private readonly RaftStoreOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly IPEndPoint _listen;
    private readonly Channel<PendingOp> _queue;
    private readonly SemaphoreSlim _inFlight;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _startLock = new(1, 1);
    private readonly Lock _forwardLock = new();
    private KvStateMachine? _stateMachine;
    private WriteAheadLog? _wal;
    private RaftCluster? _cluster;
    private MemberStorage? _members;
    private ForwardServer? _forwardServer;
    private ForwardClient? _forwardClient;
    private Task? _batcher;
    private volatile bool _started;
    private int _disposed;

    /// <summary>Creates the member; nothing runs until <see cref="StartAsync"/> (or the first operation).</summary>
    /// <param name="options">The member's settings; validated here.</param>
    /// <param name="loggerFactory">Receives Raft and store messages.</param>
    /// <exception cref="ArgumentException">A setting is invalid; the message names it.</exception>
    public RaftClusterStore(RaftStoreOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<string> errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<RaftClusterStore>();
        RaftStoreOptions.TryParseEndPoint(options.Listen, out _listen);
        _queue = Channel.CreateBounded<PendingOp>(new BoundedChannelOptions(16_384) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _inFlight = new SemaphoreSlim(options.MaxBatchesInFlight, options.MaxBatchesInFlight);
    }

    /// <summary>This member's Raft address (<c>HOST:PORT</c>).</summary>
    public string LocalAddress => RaftStoreOptions.Format(_listen);

    /// <summary>The address followers forward writes to on this member (after start).</summary>
    public string? ForwardAddress => _forwardServer is { } server ? RaftStoreOptions.Format(server.EndPoint) : null;

    /// <summary>True while this member is the leader.</summary>
    public bool IsLeader => _cluster is { } cluster && !cluster.LeadershipToken.IsCancellationRequested;

    /// <summary>The current leader's Raft address, or null while there is none.</summary>
    public string? Leader => _cluster?.Leader is { } leader ? RaftStoreOptions.Format(leader.EndPoint) : null;

    /// <inheritdoc />
    public long Revision => _stateMachine?.Revision ?? 0;

    /// <summary>What the newest FASTER checkpoint this member completed since it started covers (tests).</summary>
    internal CheckpointCookie LastCheckpoint => _stateMachine?.LastCheckpoint ?? default;

    /// <summary>Whether a FASTER checkpoint is being written in the background (tests).</summary>
    internal bool CheckpointInProgress => _stateMachine?.CheckpointInProgress ?? false;

    /// <summary>Raised (on a thread-pool thread) when this member observes a new leader, or none (null).</summary>
    public event Action<string?>? LeaderChanged;

    /// <summary>
    /// Restores the state from the newest snapshot, opens the log (replaying committed entries), and joins the cluster.
    /// Idempotent.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_started)
        {
            return;
        }

        await _startLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_started)
            {
                return;
            }

            await StartCoreAsync(cancellationToken).ConfigureAwait(false);
            _started = true;
        }
        finally
        {
            _startLock.Release();
        }
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        string root = Path.GetFullPath(_options.DataDirectory);
        Directory.CreateDirectory(root);
        string membersFile = Path.Combine(root, "members");

        _stateMachine = new KvStateMachine(new DirectoryInfo(Path.Combine(root, "snapshots")), Path.Combine(root, "faster"), _options.SnapshotInterval, _options.WatchHistoryCapacity, _loggerFactory.CreateLogger<KvStateMachine>(), _options.CheckpointGate);
        await _stateMachine.RecoverAsync(cancellationToken).ConfigureAwait(false);
        _wal = new WriteAheadLog(
            new WriteAheadLog.Options
            {
                Location = Path.Combine(root, "wal"),
                HashAlgorithm = WriteAheadLog.IntegrityHashAlgorithm.Crc32,
            },
            _stateMachine);

        // Membership: persisted list if any, else the initial peers (this member included), else this member alone.
        List<IPEndPoint>? persisted = MemberStorage.Load(membersFile);
        var initial = new List<IPEndPoint>();
        bool standby = false;
        if (persisted is not null)
        {
            initial.AddRange(persisted);
            standby = _options.Join && !persisted.Any(SameAsLocal);
        }
        else if (_options.Join)
        {
            standby = true;
        }
        else
        {
            initial.Add(_listen);
            foreach (string peer in _options.Peers)
            {
                RaftStoreOptions.TryParseEndPoint(peer, out IPEndPoint endPoint);
                if (!initial.Any(e => RaftStoreOptions.Format(e) == RaftStoreOptions.Format(endPoint)))
                {
                    initial.Add(endPoint);
                }
            }
        }

        _members = new MemberStorage();
        InMemoryClusterConfigurationStorage<EndPoint>.Builder builder = _members.CreateInitialConfigurationBuilder();
        foreach (IPEndPoint member in initial)
        {
            builder.Add(member);
        }

        builder.Build();
        if (persisted is null && initial.Count > 0)
        {
            MemberStorage.Save(membersFile, initial);
        }

        _members.ConfigurationChanged += (configuration, token) =>
        {
            try
            {
                MemberStorage.Save(membersFile, configuration.Members);
                Log.MembershipSaved(_logger, configuration.Members.Count);
                if (_cluster is { Standby: true } cluster && configuration.Members.Any(SameAsLocal))
                {
                    _ = cluster.RevertToNormalModeAsync(CancellationToken.None);
                }
            }
            catch (IOException ex)
            {
                Log.MembershipSaveFailed(_logger, ex, membersFile);
            }

            return ValueTask.CompletedTask;
        };

        if (IsPlainTcpOffLoopback(_listen, _options.ServerTls is not null))
        {
            Log.PlainTcpOffLoopback(_logger, LocalAddress);
        }

        IPEndPoint forwardEndPoint = _options.ForwardListen is { Length: > 0 } forward && RaftStoreOptions.TryParseEndPoint(forward, out IPEndPoint parsed, allowPortZero: true)
            ? parsed
            : new IPEndPoint(_listen.Address, 0);
        _forwardServer = new ForwardServer(forwardEndPoint, _options.ServerTls, HandleForwardedAsync, _loggerFactory.CreateLogger<ForwardServer>());
        _forwardServer.Start();

        var configuration = new RaftCluster.TcpConfiguration(_listen)
        {
            PublicEndPoint = _listen,
            LowerElectionTimeout = (int)_options.ElectionTimeoutMin.TotalMilliseconds,
            UpperElectionTimeout = (int)_options.ElectionTimeoutMax.TotalMilliseconds,
            RequestTimeout = _options.RequestTimeout,
            ConnectTimeout = _options.RequestTimeout,
            ColdStart = false,
            Standby = standby,
            AggressiveLeaderStickiness = true, // a follower that can still reach the leader does not start an election (CPU starvation is not a failure)
            ConfigurationStorage = _members,
            LoggerFactory = _loggerFactory,
            TransmissionBlockSize = 65_536,
            SslOptions = _options.ServerTls is null ? null : new DotNext.Net.Security.SslOptions
            {
                ServerOptions = _options.ServerTls,
                ClientOptions = _options.ClientTls!,
            },
        };
        configuration.Metadata[ForwardMetadataKey] = RaftStoreOptions.Format(_forwardServer.EndPoint);

        _cluster = new RaftCluster(configuration) { AuditTrail = _wal };
        _cluster.LeaderChanged += OnLeaderChanged;
        await _cluster.StartAsync(cancellationToken).ConfigureAwait(false);
        _batcher = Task.Run(BatcherLoopAsync);
        Log.Started(_logger, LocalAddress, RaftStoreOptions.Format(_forwardServer.EndPoint), initial.Count, _stateMachine.Revision, standby);
    }

    /// <summary>
    /// Whether the member links would be plain TCP on an address other hosts can reach (anything but loopback, including
    /// the wildcard address): Raft and forwarded writes then have neither authentication nor encryption.
    /// </summary>
    internal static bool IsPlainTcpOffLoopback(IPEndPoint listen, bool tls) => !tls && !IPAddress.IsLoopback(listen.Address);

    private bool SameAsLocal(EndPoint endPoint) => RaftStoreOptions.Format(endPoint) == LocalAddress;

    private void OnLeaderChanged(ICluster cluster, IClusterMember? leader)
    {
        string? address = leader is null ? null : RaftStoreOptions.Format(leader.EndPoint);
        Log.LeaderChanged(_logger, address ?? "(none)", ((IRaftCluster)cluster).Term);
        // A leader of "none" (an election is under way, often won again by the same member) keeps the connection; another
        // leader retires it: new writes go to the new leader, and writes in flight still get the old leader's answer.
        if (address is not null)
        {
            lock (_forwardLock)
            {
                if (_forwardClient is { } client && client.Leader != address)
                {
                    _forwardClient = null;
                    _ = client.RetireAsync(_options.OperationTimeout);
                }
            }
        }

        LeaderChanged?.Invoke(address);
    }

    /// <summary>Waits until a leader is known to this member.</summary>
    public async Task<string> WaitForLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        IClusterMember? leader = await ((ICluster)_cluster!).WaitForLeaderAsync(timeout, cancellationToken).ConfigureAwait(false);
        return leader is null
            ? throw new ClusterUnavailableException($"No Raft leader was elected within {timeout.TotalSeconds:0.#} s; is a majority of the members {string.Join(", ", Members())} running?")
            : RaftStoreOptions.Format(leader.EndPoint);
    }

    /// <summary>The cluster as this member sees it: leader, term, log indices and members.</summary>
    public RaftClusterStatus GetStatus()
    {
        RaftCluster? cluster = _cluster;
        string? leader = Leader;
        var members = new List<RaftMemberStatus>();
        if (cluster is not null)
        {
            foreach (RaftClusterMember member in cluster.Members)
            {
                string address = RaftStoreOptions.Format(member.EndPoint);
                members.Add(new RaftMemberStatus(address, address == leader, !member.IsRemote, member.Status.ToString()));
            }
        }

        members.Sort((a, b) => string.CompareOrdinal(a.Address, b.Address));
        return new RaftClusterStatus(
            LocalAddress,
            leader,
            IsLeader,
            cluster?.Term ?? 0,
            _wal?.LastCommittedEntryIndex ?? 0,
            _wal?.LastAppliedIndex ?? 0,
            Revision,
            members,
            _stateMachine?.Fault);
    }

    private IEnumerable<string> Members() => _cluster?.Members.Select(m => RaftStoreOptions.Format(m.EndPoint)) ?? [];

    /// <summary>
    /// Adds a control-plane member at runtime (on the leader; a follower forwards the request). The new member must be
    /// running (started with <see cref="RaftStoreOptions.Join"/>); it catches up before it counts towards the majority.
    /// </summary>
    /// <returns>True when the new membership was committed.</returns>
    public Task<bool> AddMemberAsync(string address, CancellationToken cancellationToken = default) =>
        ChangeMembershipAsync(ForwardMessage.AddMember, address, cancellationToken);

    /// <summary>Removes a control-plane member at runtime (on the leader; a follower forwards the request).</summary>
    /// <returns>True when the new membership was committed.</returns>
    public Task<bool> RemoveMemberAsync(string address, CancellationToken cancellationToken = default) =>
        ChangeMembershipAsync(ForwardMessage.RemoveMember, address, cancellationToken);

    private async Task<bool> ChangeMembershipAsync(ForwardMessage kind, string address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (!RaftStoreOptions.TryParseEndPoint(address, out IPEndPoint endPoint))
        {
            throw new ArgumentException($"The member address '{address}' is not HOST:PORT with an IP address or localhost.", nameof(address));
        }

        await StartAsync(cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        timeout.CancelAfter(_options.OperationTimeout + _options.OperationTimeout);
        while (true)
        {
            try
            {
                KvResult result;
                if (IsLeader)
                {
                    result = await ChangeMembershipLocallyAsync(kind, endPoint, timeout.Token).ConfigureAwait(false);
                }
                else
                {
                    try
                    {
                        result = KvCommand.DecodeResults(await ForwardAsync(kind, Encoding.UTF8.GetBytes(RaftStoreOptions.Format(endPoint)), timeout.Token).ConfigureAwait(false))[0];
                    }
                    catch (ForwardConnectException)
                    {
                        result = new KvResult(KvOutcome.NotLeader, 0);
                    }
                }

                switch (result.Outcome)
                {
                    case KvOutcome.Done:
                        return result.Revision != 0;
                    case KvOutcome.NotLeader:
                        await BackOffAsync(timeout.Token).ConfigureAwait(false);
                        continue;
                    default:
                        throw new ClusterUnavailableException(result.Message ?? "The membership change failed.");
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ClusterUnavailableException($"The membership change for {address} did not complete within {(2 * _options.OperationTimeout).TotalSeconds:0.#} s (this member sees leader {Leader ?? "none"}; ask a member of the cluster, not the joining one).");
            }
        }
    }

    private async Task<KvResult> ChangeMembershipLocallyAsync(ForwardMessage kind, IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        try
        {
            bool done = kind == ForwardMessage.AddMember
                ? await _cluster!.AddMemberAsync(endPoint, cancellationToken).ConfigureAwait(false)
                : await _cluster!.RemoveMemberAsync(endPoint, cancellationToken).ConfigureAwait(false);
            Log.MembershipChanged(_logger, kind.ToString(), RaftStoreOptions.Format(endPoint), done);
            return new KvResult(KvOutcome.Done, done ? 1 : 0);
        }
        catch (NotLeaderException)
        {
            return new KvResult(KvOutcome.NotLeader, 0);
        }
    }

    /// <inheritdoc />
    /// <remarks>Linearizable: waits for the read barrier (the leader's commit index applied here) first.</remarks>
    public async ValueTask<StoreEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        FileClusterStore.ValidateKey(key);
        await ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
        return await _stateMachine!.GetAsync(key).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>Linearizable, like <see cref="GetAsync"/>.</remarks>
    public async ValueTask<IReadOnlyList<StoreEntry>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        await ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
        return await _stateMachine!.ListAsync(prefix, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <exception cref="ClusterUnavailableException">No leader could take the write within <see cref="RaftStoreOptions.OperationTimeout"/>, or leadership was lost while it replicated (its outcome is then unknown).</exception>
    public async ValueTask<long> PutAsync(string key, ReadOnlyMemory<byte> value, long? expectedModRevision = null, CancellationToken cancellationToken = default)
    {
        FileClusterStore.ValidateKey(key);
        if (value.Length > FileClusterStore.MaxValueBytes)
        {
            throw new ArgumentException($"The value is {value.Length} bytes; the limit is {FileClusterStore.MaxValueBytes} bytes (16 MiB).", nameof(value));
        }

        FileClusterStore.ValidateExpectedRevision(expectedModRevision);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        KvResult result = await ExecuteAsync(new KvOp(KvOpKind.Put, key, value.ToArray(), expectedModRevision), cancellationToken).ConfigureAwait(false);
        return result.Outcome == KvOutcome.Conflict
            ? throw new StoreConflictException(key, expectedModRevision!.Value, result.Revision)
            : result.Revision;
    }

    /// <inheritdoc />
    public async ValueTask<bool> DeleteAsync(string key, long? expectedModRevision = null, CancellationToken cancellationToken = default)
    {
        FileClusterStore.ValidateKey(key);
        FileClusterStore.ValidateExpectedRevision(expectedModRevision);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        KvResult result = await ExecuteAsync(new KvOp(KvOpKind.Delete, key, [], expectedModRevision), cancellationToken).ConfigureAwait(false);
        return result.Outcome == KvOutcome.Conflict
            ? throw new StoreConflictException(key, expectedModRevision!.Value, result.Revision)
            : result.Revision > 0;
    }

    /// <inheritdoc />
    /// <remarks>Served from this member's applied state; resumes from any revision still in the watch history.</remarks>
    public IAsyncEnumerable<StoreEvent> WatchAsync(string prefix, long afterRevision, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentOutOfRangeException.ThrowIfNegative(afterRevision);
        ThrowIfDisposed();
        return WatchCoreAsync(prefix, afterRevision, cancellationToken);
    }

    private async IAsyncEnumerable<StoreEvent> WatchCoreAsync(string prefix, long afterRevision, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        await foreach (StoreEvent e in _stateMachine!.Watches.StreamAsync(prefix, afterRevision, nameof(RaftClusterStore), catchingUp: null, cancellationToken).ConfigureAwait(false))
        {
            yield return e;
        }
    }

    private async ValueTask ReadBarrierAsync(CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        await StartAsync(cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        timeout.CancelAfter(_options.OperationTimeout);
        try
        {
            while (true)
            {
                try
                {
                    await _cluster!.ApplyReadBarrierAsync(timeout.Token).ConfigureAwait(false);
                    return;
                }
                catch (Exception ex) when (ex is QuorumUnreachableException or MemberUnavailableException or NotLeaderException or InvalidOperationException)
                {
                    await BackOffAsync(timeout.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            ThrowIfDisposed();
            throw new ClusterUnavailableException($"A linearizable read could not be served within {_options.OperationTimeout.TotalSeconds:0.#} s: no leader reachable with a majority of the members ({string.Join(", ", Members())}).");
        }
    }

    private async Task<KvResult> ExecuteAsync(KvOp op, CancellationToken cancellationToken)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        timeout.CancelAfter(_options.OperationTimeout);
        try
        {
            while (true)
            {
                KvResult result;
                if (IsLeader)
                {
                    result = await SubmitLocalAsync(op, timeout.Token).ConfigureAwait(false);
                }
                else if (_cluster!.Leader is null)
                {
                    result = new KvResult(KvOutcome.NotLeader, 0);
                }
                else
                {
                    result = await ForwardOpAsync(op, timeout.Token).ConfigureAwait(false);
                    if (result.Outcome == KvOutcome.Done && result.Revision > 0)
                    {
                        // Read-your-writes on this member too: wait until it has applied the write.
                        await _stateMachine!.WaitForRevisionAsync(result.Revision, timeout.Token).ConfigureAwait(false);
                    }
                }

                switch (result.Outcome)
                {
                    case KvOutcome.Done or KvOutcome.Conflict:
                        return result;
                    case KvOutcome.NotLeader:
                        await BackOffAsync(timeout.Token).ConfigureAwait(false);
                        continue;
                    default:
                        throw new ClusterUnavailableException(result.Message ?? "The write failed; its outcome is unknown.");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            ThrowIfDisposed();
            throw new ClusterUnavailableException($"The write to '{op.Key}' could not be committed within {_options.OperationTimeout.TotalSeconds:0.#} s: no leader reachable with a majority of the members ({string.Join(", ", Members())}). It may still be applied later.");
        }
    }

    private static Task BackOffAsync(CancellationToken cancellationToken) => Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(20, 60)), cancellationToken);

    private async Task<KvResult> SubmitLocalAsync(KvOp op, CancellationToken cancellationToken)
    {
        var pending = new PendingOp(op);
        await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        return await pending.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<KvResult> ForwardOpAsync(KvOp op, CancellationToken cancellationToken)
    {
        byte[] response;
        try
        {
            response = await ForwardAsync(ForwardMessage.Operations, KvCommand.Encode([op]), cancellationToken).ConfigureAwait(false);
        }
        catch (ForwardConnectException)
        {
            return new KvResult(KvOutcome.NotLeader, 0); // nothing was sent: safe to retry
        }
        catch (IOException ex)
        {
            return new KvResult(KvOutcome.Failed, 0, $"The connection to the leader broke while forwarding the write to '{op.Key}'; its outcome is unknown. ({ex.Message})");
        }

        return KvCommand.DecodeResults(response)[0];
    }

    private async Task<byte[]> ForwardAsync(ForwardMessage type, byte[] payload, CancellationToken cancellationToken)
    {
        ForwardClient client = await GetForwardClientAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await client.SendAsync(type, payload, cancellationToken).ConfigureAwait(false);
        }
        catch (ForwardNotSentException ex)
        {
            throw new ForwardConnectException(ex.Message); // nothing was sent: the caller may retry
        }
        catch (IOException)
        {
            lock (_forwardLock)
            {
                if (ReferenceEquals(_forwardClient, client))
                {
                    _forwardClient = null;
                }
            }

            _ = client.DisposeAsync().AsTask();
            throw;
        }
    }

    private async Task<ForwardClient> GetForwardClientAsync(CancellationToken cancellationToken)
    {
        ForwardClient? existing = _forwardClient;
        if (existing is { IsBroken: false })
        {
            return existing;
        }

        RaftClusterMember leader = _cluster!.Leader ?? throw new ForwardConnectException("no leader");
        try
        {
            // Refresh: a restarted leader listens for forwarded writes on a new port.
            IReadOnlyDictionary<string, string> metadata = await leader.GetMetadataAsync(true, cancellationToken).ConfigureAwait(false);
            if (!metadata.TryGetValue(ForwardMetadataKey, out string? address) || !RaftStoreOptions.TryParseEndPoint(address, out IPEndPoint endPoint))
            {
                throw new ForwardConnectException($"the leader {RaftStoreOptions.Format(leader.EndPoint)} does not advertise a forwarding address");
            }

            ForwardClient client = await ForwardClient.ConnectAsync(endPoint, RaftStoreOptions.Format(leader.EndPoint), _options.ClientTls, _options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            lock (_forwardLock)
            {
                if (_forwardClient is { IsBroken: false } raced)
                {
                    _ = client.DisposeAsync().AsTask();
                    return raced;
                }

                _forwardClient = client;
                return client;
            }
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or MemberUnavailableException or System.Security.Authentication.AuthenticationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new ForwardConnectException(ex.Message);
        }
    }

    private async Task<byte[]> HandleForwardedAsync(ForwardMessage type, byte[] payload, CancellationToken cancellationToken)
    {
        if (type is ForwardMessage.AddMember or ForwardMessage.RemoveMember)
        {
            if (!IsLeader || !RaftStoreOptions.TryParseEndPoint(Encoding.UTF8.GetString(payload), out IPEndPoint endPoint))
            {
                return KvCommand.EncodeResults([new KvResult(KvOutcome.NotLeader, 0)]);
            }

            using var membershipTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            membershipTimeout.CancelAfter(_options.OperationTimeout);
            return KvCommand.EncodeResults([await ChangeMembershipLocallyAsync(type, endPoint, membershipTimeout.Token).ConfigureAwait(false)]);
        }

        List<KvOp> ops = KvCommand.Decode(payload);
        if (!IsLeader)
        {
            return KvCommand.EncodeResults(ops.Select(_ => new KvResult(KvOutcome.NotLeader, 0)).ToArray());
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.OperationTimeout);
        var results = new KvResult[ops.Count];
        Task<KvResult>[] tasks = ops.Select(op => SubmitLocalAsync(op, timeout.Token)).ToArray();
        for (int i = 0; i < tasks.Length; i++)
        {
            try
            {
                results[i] = await tasks[i].ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                results[i] = new KvResult(KvOutcome.Failed, 0, "The leader could not commit the forwarded write in time; its outcome is unknown.");
            }
        }

        return KvCommand.EncodeResults(results);
    }

    private async Task BatcherLoopAsync()
    {
        ChannelReader<PendingOp> reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                await _inFlight.WaitAsync(_stop.Token).ConfigureAwait(false);
                var batch = new List<PendingOp>();
                while (batch.Count < _options.MaxBatchOperations && reader.TryRead(out PendingOp? op))
                {
                    batch.Add(op);
                }

                if (batch.Count == 0)
                {
                    _inFlight.Release();
                    continue;
                }

                _ = ReplicateBatchAsync(batch);
            }
        }
        catch (OperationCanceledException)
        {
        }

        while (reader.TryRead(out PendingOp? op))
        {
            op.TrySetResult(new KvResult(KvOutcome.Failed, 0, "The store is shutting down."));
        }
    }

    private async Task ReplicateBatchAsync(List<PendingOp> batch)
    {
        var applied = new AppliedBatch();
        bool appended = false;
        try
        {
            RaftCluster cluster = _cluster!;
            if (cluster.LeadershipToken.IsCancellationRequested)
            {
                Complete(batch, new KvResult(KvOutcome.NotLeader, 0));
                return;
            }

            byte[] payload = KvCommand.Encode(batch.ConvertAll(p => p.Op));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_options.OperationTimeout);
            appended = true;
            await cluster.ReplicateAsync(payload, applied, timeout.Token).ConfigureAwait(false);
            KvResult[] results = applied.Results ?? throw new UnreachableException("A committed batch was not applied.");
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].TrySetResult(results[i]);
            }
        }
        catch (NotLeaderException ex) when (ex.InnerException is null)
        {
            Complete(batch, new KvResult(KvOutcome.NotLeader, 0)); // refused before anything was appended
        }
        catch (Exception ex)
        {
            if (applied.Results is { } results)
            {
                for (int i = 0; i < batch.Count; i++)
                {
                    batch[i].TrySetResult(results[i]);
                }
            }
            else
            {
                Log.BatchFailed(_logger, ex, batch.Count);
                Complete(batch, new KvResult(KvOutcome.Failed, 0, appended
                    ? $"Leadership was lost or the commit timed out while replicating the write; its outcome is unknown ({ex.GetType().Name}: {ex.Message})."
                    : ex.Message));
            }
        }
        finally
        {
            _inFlight.Release();
        }
    }

    private static void Complete(List<PendingOp> batch, KvResult result)
    {
        foreach (PendingOp op in batch)
        {
            op.TrySetResult(result);
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Leaves the cluster gracefully: stops the batcher, the Raft node and the log; ends every watch.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _startLock.WaitAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_batcher is not null)
        {
            await _batcher.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_cluster is not null)
        {
            _cluster.LeaderChanged -= OnLeaderChanged;
            try
            {
                await _cluster.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                await _cluster.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (_forwardClient is not null)
        {
            await _forwardClient.DisposeAsync().ConfigureAwait(false);
        }

        if (_forwardServer is not null)
        {
            await _forwardServer.DisposeAsync().ConfigureAwait(false);
        }

        if (_wal is not null)
        {
            await _wal.DisposeAsync().ConfigureAwait(false);
        }

        if (_stateMachine is not null)
        {
            await _stateMachine.DisposeAsync().ConfigureAwait(false);
        }

        _members?.Dispose();
        _stop.Dispose();
    }

    private sealed class PendingOp(KvOp op) : TaskCompletionSource<KvResult>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public KvOp Op { get; } = op;
    }

    private sealed class ForwardConnectException(string message) : IOException(message);

    private static partial class Log
    {
        [LoggerMessage(EventId = 3220, Level = LogLevel.Information, Message = "Raft member {Member} started (forwarding on {Forward}); {MemberCount} members known, state at revision {Revision}, standby {Standby}.")]
        public static partial void Started(ILogger logger, string member, string forward, int memberCount, long revision, bool standby);

        [LoggerMessage(EventId = 3226, Level = LogLevel.Warning, Message = "Raft member {Member} listens beyond loopback with plain TCP: Raft traffic and forwarded writes are neither authenticated nor encrypted, so anyone who can reach the Raft or forwarding port can read the replicated state, pose as a member or write to the store. Use member mTLS: warpd --cluster ADDR:PORT --cluster-secret-file FILE (or set RaftStoreOptions.ServerTls and ClientTls), or listen on 127.0.0.1.")]
        public static partial void PlainTcpOffLoopback(ILogger logger, string member);

        [LoggerMessage(EventId = 3221, Level = LogLevel.Information, Message = "Raft leader is now {Leader} (term {Term}).")]
        public static partial void LeaderChanged(ILogger logger, string leader, long term);

        [LoggerMessage(EventId = 3222, Level = LogLevel.Warning, Message = "Replicating a batch of {Count} writes failed.")]
        public static partial void BatchFailed(ILogger logger, Exception exception, int count);

        [LoggerMessage(EventId = 3223, Level = LogLevel.Information, Message = "Persisted the cluster membership: {Count} members.")]
        public static partial void MembershipSaved(ILogger logger, int count);

        [LoggerMessage(EventId = 3224, Level = LogLevel.Error, Message = "Persisting the cluster membership to {Path} failed.")]
        public static partial void MembershipSaveFailed(ILogger logger, Exception exception, string path);

        [LoggerMessage(EventId = 3225, Level = LogLevel.Information, Message = "Membership change {Kind} {Member}: committed {Committed}.")]
        public static partial void MembershipChanged(ILogger logger, string kind, string member, bool committed);
    }
}

/// <summary>The cluster as one member sees it.</summary>
/// <param name="Member">This member's Raft address.</param>
/// <param name="Leader">The leader's Raft address, or null while there is none.</param>
/// <param name="IsLeader">Whether this member leads.</param>
/// <param name="Term">This member's current term.</param>
/// <param name="CommitIndex">The index of the last committed log entry this member knows of.</param>
/// <param name="AppliedIndex">The index of the last log entry applied to this member's state.</param>
/// <param name="Revision">The store revision applied on this member.</param>
/// <param name="Members">Every member of the current configuration.</param>
/// <param name="Fault">Why this member's state machine stopped applying entries (it needs a restart), or null.</param>
public sealed record RaftClusterStatus(string Member, string? Leader, bool IsLeader, long Term, long CommitIndex, long AppliedIndex, long Revision, IReadOnlyList<RaftMemberStatus> Members, string? Fault = null);

/// <summary>One member of the cluster configuration.</summary>
/// <param name="Address">Its Raft address.</param>
/// <param name="IsLeader">Whether it is the leader.</param>
/// <param name="IsLocal">Whether it is the member answering.</param>
/// <param name="Status">Reachability as this member sees it (Unknown, Available, Unavailable).</param>
public sealed record RaftMemberStatus(string Address, bool IsLeader, bool IsLocal, string Status);

/// <summary>
/// Thrown when the replicated store cannot serve a request: no leader with a majority was reachable in time, or a
/// write's outcome became unknown. An <see cref="IOException"/>, so callers that retry store I/O failures retry it.
/// </summary>
public sealed class ClusterUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ClusterUnavailableException(string message)
        : base(message)
    {
    }
}
