using System.Net;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
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
                    foreach (var name in _options.ServerNames)
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
    IOptions<WarpGridClusterOptions> options,
    ILogger<ControlPlaneGrpcService> logger) : NodeAgent.NodeAgentBase
{
    public override Task<ClusterInfo> GetClusterInfo(ClusterInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new ClusterInfo { CaCertificate = ByteString.CopyFrom(controlPlane.Authority.CertificateDer), ClusterName = options.Value.ClusterName });

    public override async Task<JoinResponse> Join(JoinRequest request, ServerCallContext context)
    {
        X509Certificate2 cert;
        try
        {
            cert = await controlPlane.JoinAsync(request.Token, request.Csr.Memory, request.NodeName, context.CancellationToken).ConfigureAwait(false);
        }
        catch (CertificateRejectedException ex)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "join refused: " + ex.Message));
        }

        using (cert)
        {
            return Response(cert);
        }
    }

    public override Task<JoinResponse> RenewCertificate(RenewRequest request, ServerCallContext context)
    {
        var node = Authenticate(context);
        try
        {
            using var cert = controlPlane.Renew(node, request.Csr.Memory);
            return Task.FromResult(Response(cert));
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
        var node = Authenticate(context);
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
        await controlPlane.HeartbeatAsync(node, info, context.CancellationToken).ConfigureAwait(false);
        return new HeartbeatResponse { HeartbeatIntervalMs = (long)options.Value.HeartbeatInterval.TotalMilliseconds };
    }

    public override async Task WatchAllocations(WatchAllocationsRequest request, IServerStreamWriter<AllocationSet> responseStream, ServerCallContext context)
    {
        var node = Authenticate(context);
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
        Authenticate(context);
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
    private string Authenticate(ServerCallContext context)
    {
        var cert = context.GetHttpContext().Connection.ClientCertificate;
        try
        {
            return controlPlane.Authority.ValidateNode(cert);
        }
        catch (CertificateRejectedException ex)
        {
            Log.Refused(logger, context.Peer, ex.Message);
            throw new RpcException(new Status(StatusCode.Unauthenticated, ex.Message));
        }
    }

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
    ClusterControlPlane controlPlane,
    ClusterAuthorityHolder authority,
    IOptions<WarpGridClusterOptions> options,
    IOptions<WarpGridNodeOptions> nodeOptions,
    ILogger<ControlPlaneHostedService> logger) : IHostedService
{
    /// <summary>The file the first join token is written to (mode 0600) for operators and tests.</summary>
    public const string TokenFile = "join-token";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var tokens = await controlPlane.Tokens.ListAsync(cancellationToken).ConfigureAwait(false);
        var dir = ClusterAuthorityHolder.DirectoryFor(nodeOptions.Value);
        var path = Path.Combine(dir, TokenFile);
        if (authority.Created || tokens.Count == 0 || !File.Exists(path))
        {
            var (token, record) = await controlPlane.Tokens.CreateAsync(controlPlane.Authority.PinnedHash, options.Value.TokenLifetime, "created at first start", cancellationToken).ConfigureAwait(false);
            ClusterCertificateAuthority.WritePrivate(path, token + Environment.NewLine);
            Log.TokenCreated(logger, token.ToString(), record.ExpiresAt, path);
        }

        Log.CaReady(logger, controlPlane.Authority.PinnedHash, authority.Created);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = 230, Level = LogLevel.Warning, Message = "Join token (valid until {ExpiresAt:O}, also in {Path}): {Token}")]
        public static partial void TokenCreated(ILogger logger, string token, DateTimeOffset expiresAt, string path);

        [LoggerMessage(EventId = 231, Level = LogLevel.Information, Message = "Cluster CA ready (sha256 {Hash}, created now: {Created})")]
        public static partial void CaReady(ILogger logger, string hash, bool created);
    }
}

/// <summary>Loads or creates the cluster CA in <c>&lt;data&gt;/cluster</c>.</summary>
internal sealed class ClusterAuthorityHolder
{
    public ClusterAuthorityHolder(IOptions<WarpGridNodeOptions> node, IOptions<WarpGridClusterOptions> cluster, TimeProvider time)
    {
        (Authority, Created) = ClusterCertificateAuthority.LoadOrCreate(DirectoryFor(node.Value), cluster.Value.ClusterName, time);
    }

    public ClusterCertificateAuthority Authority { get; }

    public bool Created { get; }

    public static string DirectoryFor(WarpGridNodeOptions node) => Path.Combine(node.DataDirectory, "cluster");
}
