using System.Net;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Security;
using WarpGrid.Core.Scheduling;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting.Cluster.Protocol;

namespace WarpGrid.Hosting.Cluster;

/// <summary>The control plane's TLS certificate for the agent listener, issued by the cluster CA and renewed before expiry.</summary>
public sealed class ControlPlaneTls
{
    private readonly ClusterCertificateAuthority _authority;
    private readonly WarpGridClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private X509Certificate2? _current;

    /// <summary>Creates the provider.</summary>
    public ControlPlaneTls(ClusterCertificateAuthority authority, IOptions<WarpGridClusterOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(options);
        _authority = authority;
        _options = options.Value;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The certificate to present now (a new one is issued after two thirds of the old one's lifetime).</summary>
    public X509Certificate2 Current
    {
        get
        {
            lock (_lock)
            {
                var now = _time.GetUtcNow().UtcDateTime;
                if (_current is null || now >= RenewAt(_current))
                {
                    var dns = new List<string> { "localhost", Environment.MachineName };
                    var ips = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
                    var names = _options.ServerNames.ToList();
                    if (Uri.TryCreate(_options.AdvertiseUrl, UriKind.Absolute, out var advertise))
                    {
                        names.Add(advertise.Host);
                    }

                    foreach (var name in names)
                    {
                        if (IPAddress.TryParse(name, out var ip))
                        {
                            ips.Add(ip);
                        }
                        else
                        {
                            dns.Add(name);
                        }
                    }

                    _current = _authority.IssueServer("warpd-control-plane", dns, ips, _options.ServerCertificateLifetime);
                }

                return _current;
            }
        }
    }

    private static DateTime RenewAt(X509Certificate2 cert)
    {
        var from = cert.NotBefore.ToUniversalTime();
        return from + ((cert.NotAfter.ToUniversalTime() - from) * 2 / 3);
    }
}

/// <summary>The agent-facing gRPC service: join, renew, heartbeat, allocations, modules.</summary>
internal sealed partial class ControlPlaneGrpcService(
    ClusterControlPlane controlPlane,
    IClusterStore store,
    IBlobStore blobs,
    ControlPlaneMembers members,
    IOptions<WarpGridClusterOptions> options,
    AccessControl access,
    AuditLog audit,
    ILogger<ControlPlaneGrpcService> logger) : NodeAgent.NodeAgentBase
{
    /// <summary>The trailer in which a member that does not lead names the leader's agent URL.</summary>
    public const string LeaderTrailer = "warpgrid-leader-url";

    public override Task<ClusterInfo> GetClusterInfo(ClusterInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new ClusterInfo { CaCertificate = ByteString.CopyFrom(controlPlane.Authority.CertificateDer), ClusterName = options.Value.ClusterName });

    public override async Task<JoinResponse> Join(JoinRequest request, ServerCallContext context)
    {
        X509Certificate2 cert;
        try
        {
            cert = await controlPlane.JoinAsync(request.Token, request.Csr.Memory, request.NodeName, context.CancellationToken, context.GetHttpContext().Connection.ClientCertificate).ConfigureAwait(false);
        }
        catch (CertificateRejectedException ex)
        {
            Audit(context, "node:" + request.NodeName, "create", "nodes", request.NodeName, "forbidden", ex.Message);
            throw new RpcException(new Status(StatusCode.PermissionDenied, "join refused: " + ex.Message));
        }

        Audit(context, "node:" + request.NodeName, "create", "nodes", request.NodeName, "allowed", null, JoinTokenId(request.Token));

        using (cert)
        {
            var response = Response(cert);
            await AddMembersAsync(response.Members, context.CancellationToken).ConfigureAwait(false);
            return response;
        }
    }

    private async Task AddMembersAsync(Google.Protobuf.Collections.RepeatedField<string> list, CancellationToken cancellationToken)
    {
        if (!members.Replicated)
        {
            return;
        }

        try
        {
            list.AddRange((await members.AllAsync(cancellationToken).ConfigureAwait(false)).Values.Order(StringComparer.Ordinal));
        }
        catch (IOException)
        {
            // the member list is a hint; the agent keeps the URLs it knows
        }
    }

    public override async Task<JoinResponse> RenewCertificate(RenewRequest request, ServerCallContext context)
    {
        var node = await AuthenticateAsync(context).ConfigureAwait(false);
        try
        {
            using var cert = await controlPlane.RenewAsync(node, request.Csr.Memory, context.CancellationToken).ConfigureAwait(false);
            return Response(cert);
        }
        catch (CertificateRejectedException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, ex.Message));
        }
    }

    private JoinResponse Response(X509Certificate2 cert) => new()
    {
        Certificate = ByteString.CopyFrom(cert.RawData),
        CaCertificate = ByteString.CopyFrom(controlPlane.Authority.CertificateDer),
        HeartbeatIntervalMs = (long)options.Value.HeartbeatInterval.TotalMilliseconds,
    };

    public override async Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        var node = await AuthenticateAsync(context).ConfigureAwait(false);
        var taints = new List<NodeTaint>();
        foreach (var t in request.Taints)
        {
            if (Enum.TryParse<TaintEffect>(t.Effect, ignoreCase: true, out var effect))
            {
                taints.Add(new NodeTaint(t.Key, t.Value, effect));
            }
        }

        var info = new HeartbeatInfo
        {
            Session = request.Session,
            MemoryBytes = request.MemoryBytes,
            CpuWeight = request.CpuWeight,
            InstanceSlots = request.InstanceSlots,
            Labels = request.Labels.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
            Taints = taints,
            Ready = request.Ready,
            NotReadyReason = string.IsNullOrEmpty(request.NotReadyReason) ? null : request.NotReadyReason,
            ApiUrl = NullIfEmpty(request.ApiUrl),
            IngressUrl = NullIfEmpty(request.IngressUrl),
            Version = NullIfEmpty(request.Version),
            Running = [.. request.Running.Select(r => new RunningReport(r.Deployment, r.AllocationRevision, r.Instances, r.State == "running"))],
            CertificateNotAfter = context.GetHttpContext().Connection.ClientCertificate?.NotAfter.ToUniversalTime(),
        };
        try
        {
            await controlPlane.HeartbeatAsync(node, info, context.CancellationToken).ConfigureAwait(false);
        }
        catch (ControlPlaneNotLeaderException ex)
        {
            var leader = await members.LeaderUrlAsync(context.CancellationToken).ConfigureAwait(false);
            var trailers = new Metadata();
            if (leader is not null)
            {
                trailers.Add(LeaderTrailer, leader);
            }

            throw new RpcException(new Status(StatusCode.Unavailable, ex.Message + (leader is null ? " (no leader elected yet)" : $" (the leader is {leader})")), trailers);
        }
        catch (IOException ex)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the control plane's store is unavailable: " + ex.Message));
        }

        var response = new HeartbeatResponse { HeartbeatIntervalMs = (long)options.Value.HeartbeatInterval.TotalMilliseconds };
        await AddMembersAsync(response.Members, context.CancellationToken).ConfigureAwait(false);
        return response;
    }

    public override async Task WatchAllocations(WatchAllocationsRequest request, IServerStreamWriter<AllocationSet> responseStream, ServerCallContext context)
    {
        var node = await AuthenticateAsync(context).ConfigureAwait(false);
        var prefix = AllocationRecord.PrefixFor(node);
        var cancellationToken = context.CancellationToken;
        var revision = store.Revision;
        var current = new SortedDictionary<string, (AllocationRecord Record, long ModRevision)>(StringComparer.Ordinal);
        foreach (var entry in await store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            current[entry.Key] = (AllocationRecord.FromBytes(entry.Value.Span), entry.ModRevision);
        }

        await responseStream.WriteAsync(ToSet(current, revision), cancellationToken).ConfigureAwait(false);
        Log.Watching(logger, node, current.Count);
        try
        {
            await foreach (var change in store.WatchAsync(prefix, revision, cancellationToken).ConfigureAwait(false))
            {
                if (change.Kind == StoreEventKind.Delete)
                {
                    current.Remove(change.Entry.Key);
                }
                else
                {
                    current[change.Entry.Key] = (AllocationRecord.FromBytes(change.Entry.Value.Span), change.Entry.ModRevision);
                }

                await responseStream.WriteAsync(ToSet(current, change.Entry.ModRevision), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the agent went away
        }
    }

    private static AllocationSet ToSet(SortedDictionary<string, (AllocationRecord Record, long ModRevision)> current, long revision)
    {
        var set = new AllocationSet { StoreRevision = revision };
        foreach (var (record, modRevision) in current.Values)
        {
            set.Allocations.Add(new Allocation
            {
                Deployment = record.Deployment,
                Revision = modRevision,
                Instances = record.Instances,
                TotalInstances = record.TotalInstances,
                Record = ByteString.CopyFrom(record.Record.ToBytes()),
            });
        }

        return set;
    }

    public override async Task<ModuleResponse> GetModule(ModuleRequest request, ServerCallContext context)
    {
        await AuthenticateAsync(context).ConfigureAwait(false);
        byte[]? bytes;
        try
        {
            bytes = await blobs.ReadAsync(request.Digest, context.CancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"digest '{request.Digest}': {ex.Message}"));
        }

        return bytes is null
            ? throw new RpcException(new Status(StatusCode.NotFound, $"module {request.Digest} is not in the control plane's blob store"))
            : new ModuleResponse { Content = ByteString.CopyFrom(bytes) };
    }

    /// <summary>The calling node's name from its client certificate; refuses missing, foreign or expired certificates.</summary>
    private async Task<string> AuthenticateAsync(ServerCallContext context)
    {
        var cert = context.GetHttpContext().Connection.ClientCertificate;
        string? refusal;
        try
        {
            var node = controlPlane.Authority.ValidateNode(cert);
            if (!await access.IsRevokedAsync(cert!.SerialNumber, context.CancellationToken).ConfigureAwait(false))
            {
                return node;
            }

            refusal = $"the certificate of node '{node}' was revoked (the node was deleted); join again with a token";
        }
        catch (CertificateRejectedException ex)
        {
            refusal = ex.Message;
        }

        Log.Refused(logger, context.Peer, refusal);
        Audit(context, cert is null ? "anonymous" : "node:" + cert.GetNameInfo(X509NameType.SimpleName, false), "get", "nodes", null, "unauthenticated", refusal);
        throw new RpcException(new Status(StatusCode.Unauthenticated, refusal));
    }

    private static string? JoinTokenId(string? token) => JoinToken.TryParse(token, out var parsed, out _) ? "jointoken:" + parsed!.Id : null;

    private void Audit(ServerCallContext context, string identity, string verb, string resource, string? name, string outcome, string? reason, string? credential = null) =>
        audit.Write(new AuditRecord
        {
            Identity = identity,
            Credential = credential,
            SourceAddress = context.GetHttpContext().Connection.RemoteIpAddress?.ToString(),
            Verb = verb,
            Resource = resource,
            Name = name,
            Request = "grpc " + context.Method,
            Outcome = outcome,
            Status = outcome == "allowed" ? 200 : outcome == "forbidden" ? 403 : 401,
            Reason = reason,
            RequestId = context.GetHttpContext().TraceIdentifier,
        });

    private static string? NullIfEmpty(string value) => string.IsNullOrEmpty(value) ? null : value;

    private static partial class Log
    {
        [LoggerMessage(EventId = 220, Level = LogLevel.Warning, Message = "Refused a call from {Peer}: {Reason}")]
        public static partial void Refused(ILogger logger, string peer, string reason);

        [LoggerMessage(EventId = 221, Level = LogLevel.Information, Message = "Node {Node} watches its allocations ({Count} now)")]
        public static partial void Watching(ILogger logger, string node, int count);
    }
}

/// <summary>Runs the control plane: creates the first join token on first start, then the scheduling controller.</summary>
internal sealed partial class ControlPlaneHostedService(
    IServiceProvider services,
    IOptions<WarpGridClusterOptions> options,
    IOptions<WarpGridNodeOptions> nodeOptions,
    TimeProvider time,
    ILogger<ControlPlaneHostedService> logger) : IHostedService
{
    /// <summary>The file the first join token is written to (mode 0600) for operators and tests.</summary>
    public const string TokenFile = "join-token";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Resolved here, not in the constructor: hosted services are all constructed before the store starts.
        var controlPlane = services.GetRequiredService<ClusterControlPlane>();
        var authority = services.GetRequiredService<ClusterAuthorityHolder>();
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await CreateFirstTokenAsync(controlPlane, authority, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // A replicated store without a leader yet (members starting together): wait for one.
                Log.StoreNotReady(logger, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken).ConfigureAwait(false);
            }
        }

        if (options.Value.AdvertiseUrl is { } url)
        {
            await services.GetRequiredService<ControlPlaneMembers>().PublishAsync(url, cancellationToken).ConfigureAwait(false);
        }

        Log.CaReady(logger, controlPlane.Authority.PinnedHash, authority.Created);
    }

    private async Task CreateFirstTokenAsync(ClusterControlPlane controlPlane, ClusterAuthorityHolder authority, CancellationToken cancellationToken)
    {
        var tokens = await controlPlane.Tokens.ListAsync(cancellationToken).ConfigureAwait(false);
        var dir = ClusterAuthorityHolder.DirectoryFor(nodeOptions.Value);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, TokenFile);
        if (authority.Created || tokens.Count == 0 || !File.Exists(path))
        {
            var (token, record) = await controlPlane.Tokens.CreateAsync(controlPlane.Authority.PinnedHash, options.Value.TokenLifetime, "created at first start", cancellationToken).ConfigureAwait(false);
            ClusterCertificateAuthority.WritePrivate(path, token + Environment.NewLine);
            Log.TokenCreated(logger, token.Id, record.ExpiresAt, path);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = 230, Level = LogLevel.Information, Message = "Join token {TokenId} created (valid until {ExpiresAt:O}); the token is in {Path} (mode 0600)")]
        public static partial void TokenCreated(ILogger logger, string tokenId, DateTimeOffset expiresAt, string path);

        [LoggerMessage(EventId = 231, Level = LogLevel.Information, Message = "Cluster CA ready (sha256 {Hash}, created now: {Created})")]
        public static partial void CaReady(ILogger logger, string hash, bool created);

        [LoggerMessage(EventId = 232, Level = LogLevel.Information, Message = "The store is not ready yet (attempt {Attempt}): {Reason}")]
        public static partial void StoreNotReady(ILogger logger, int attempt, string reason);
    }
}

/// <summary>
/// The cluster CA: derived from the cluster secret (<see cref="WarpGridClusterOptions.SecretFile"/>; required with a
/// replicated store), or loaded from / created in <c>&lt;data&gt;/cluster</c> on a single control plane.
/// </summary>
internal sealed class ClusterAuthorityHolder
{
    public ClusterAuthorityHolder(IOptions<WarpGridNodeOptions> node, IOptions<WarpGridClusterOptions> cluster, TimeProvider time, IServiceProvider services)
    {
        var o = cluster.Value;
        if (o.SecretFile is { } secretFile)
        {
            if (SecretFiles.Check(secretFile, $"{WarpGridClusterOptions.Section}:SecretFile (--cluster-secret-file)") is { } refusal)
            {
                throw new InvalidOperationException(refusal);
            }

            var secret = System.Text.Encoding.UTF8.GetBytes(File.ReadAllText(secretFile).Trim());
            if (secret.Length < ClusterCertificateAuthority.MinSecretBytes)
            {
                throw new InvalidOperationException($"{WarpGridClusterOptions.Section}:SecretFile '{secretFile}' holds {secret.Length} bytes; the cluster secret needs at least {ClusterCertificateAuthority.MinSecretBytes} (create one with: (umask 077; head -c 32 /dev/urandom | base64 > {secretFile}))");
            }

            Authority = ClusterCertificateAuthority.FromSecret(secret, o.ClusterName, time);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(secret);
            return;
        }

        if (services.GetService<RaftStoreMarker>() is not null)
        {
            throw new InvalidOperationException($"{WarpGridClusterOptions.Section}:SecretFile (--cluster-secret-file) is required when the control plane has a replicated store (--raft-listen): every member derives the cluster CA from the same secret (create one with: (umask 077; head -c 32 /dev/urandom | base64 > cluster-secret), and give the file to every member)");
        }

        (Authority, Created) = ClusterCertificateAuthority.LoadOrCreate(DirectoryFor(node.Value), o.ClusterName, time);
    }

    public ClusterCertificateAuthority Authority { get; }

    public bool Created { get; }

    public static string DirectoryFor(WarpGridNodeOptions node) => Path.Combine(node.DataDirectory, "cluster");
}
