using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting.Cluster.Protocol;

namespace WarpGrid.Hosting.Cluster;

/// <summary>
/// The node's credentials in <c>&lt;data&gt;/agent</c>: its key (0600), its certificate and the cluster CA certificate.
/// </summary>
internal sealed class AgentCredentials
{
    public const string KeyFile = "node.key";
    public const string CertificateFile = "node.crt";
    public const string CaFile = "ca.crt";

    private AgentCredentials(X509Certificate2 certificate, X509Certificate2 ca)
    {
        Certificate = certificate;
        Ca = ca;
    }

    /// <summary>The node certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The cluster CA certificate.</summary>
    public X509Certificate2 Ca { get; }

    public string CaHash => ClusterCertificateAuthority.HashOf(Ca);

    public static AgentCredentials? Load(string directory)
    {
        var key = Path.Combine(directory, KeyFile);
        var cert = Path.Combine(directory, CertificateFile);
        var ca = Path.Combine(directory, CaFile);
        if (!File.Exists(key) || !File.Exists(cert) || !File.Exists(ca))
        {
            return null;
        }

        using var pem = X509Certificate2.CreateFromPemFile(cert, key);
        return new AgentCredentials(Reload(pem), X509Certificate2.CreateFromPem(File.ReadAllText(ca)));
    }

    public static (ECDsa Key, byte[] Csr) NewRequest(string nodeName)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={nodeName}"), key, HashAlgorithmName.SHA256);
        return (key, request.CreateSigningRequest());
    }

    public static AgentCredentials Save(string directory, ECDsa key, byte[] certificateDer, byte[] caDer)
    {
        Directory.CreateDirectory(directory);
        using var cert = X509CertificateLoader.LoadCertificate(certificateDer);
        var ca = X509CertificateLoader.LoadCertificate(caDer);
        ClusterCertificateAuthority.WritePrivate(Path.Combine(directory, KeyFile), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(directory, CertificateFile), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, CaFile), ca.ExportCertificatePem());
        using var withKey = cert.CopyWithPrivateKey(key);
        return new AgentCredentials(Reload(withKey), ca);
    }

    // SslStream on Linux wants a certificate whose key is not ephemeral: round-trip through PKCS#12.
    private static X509Certificate2 Reload(X509Certificate2 withKey) => X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);

    /// <summary>Validates the control plane's certificate against the pinned CA (and the host name).</summary>
    public static bool ValidateServer(X509Certificate2 ca, X509Certificate? presented, SslPolicyErrors errors)
    {
        if (presented is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return false;
        }

        using var server = new X509Certificate2(presented);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(server) && chain.ChainElements[^1].Certificate.RawData.AsSpan().SequenceEqual(ca.RawData);
    }
}

/// <summary>
/// A node agent: joins the control plane with a token and a CSR (TLS, CA pinned by the token), then over mTLS gRPC
/// heartbeats (capacity, labels, taints, what runs), watches its allocations and starts or stops pools with the local
/// runtime through <see cref="DeploymentController"/>, and renews its certificate before it expires.
/// </summary>
internal sealed partial class NodeAgentService(
    IOptions<WarpGridAgentOptions> options,
    IOptions<WarpGridNodeOptions> nodeOptions,
    DeploymentController controller,
    DeploymentRegistry registry,
    IBlobStore blobs,
    WasmNodeRuntime runtime,
    TimeProvider time,
    ILogger<NodeAgentService> logger) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);
    private readonly string _session = Guid.NewGuid().ToString("N");
    private readonly string _directory = Path.Combine(nodeOptions.Value.DataDirectory, "agent");
    private readonly Lock _endpointsLock = new();
    private readonly List<string> _endpoints = [];
    private AgentCredentials? _credentials;
    private TimeSpan _heartbeatInterval = TimeSpan.FromSeconds(2);
    private string? _current;
    private int _failuresSinceConnected;

    /// <summary>The control-plane member this agent talks to now.</summary>
    private string Current
    {
        get
        {
            lock (_endpointsLock)
            {
                if (_endpoints.Count == 0)
                {
                    _endpoints.AddRange(Options.JoinUrls());
                }

                return _current ??= _endpoints[0];
            }
        }
    }

    /// <summary>Adds member URLs learned from the control plane (kept with those from --join).</summary>
    private void Learn(IEnumerable<string> urls)
    {
        lock (_endpointsLock)
        {
            foreach (var url in urls)
            {
                if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps && !_endpoints.Contains(url, StringComparer.OrdinalIgnoreCase))
                {
                    _endpoints.Add(url);
                }
            }
        }
    }

    /// <summary>Moves to the leader named by a member that does not lead, or to the next known member.</summary>
    private void FailOver(string? leaderHint)
    {
        lock (_endpointsLock)
        {
            var from = _current;
            if (leaderHint is not null)
            {
                if (!_endpoints.Contains(leaderHint, StringComparer.OrdinalIgnoreCase))
                {
                    _endpoints.Add(leaderHint);
                }

                _current = leaderHint;
            }
            else if (_endpoints.Count > 1)
            {
                int index = _current is null ? -1 : _endpoints.FindIndex(e => string.Equals(e, _current, StringComparison.OrdinalIgnoreCase));
                _current = _endpoints[(index + 1) % _endpoints.Count];
            }

            if (!string.Equals(from, _current, StringComparison.OrdinalIgnoreCase))
            {
                Log.FailingOver(logger, from ?? "?", _current ?? "?", leaderHint is not null ? "redirected to the leader" : "trying the next member");
            }
        }
    }

    private int EndpointCount
    {
        get
        {
            lock (_endpointsLock)
            {
                return Math.Max(1, _endpoints.Count);
            }
        }
    }

    private WarpGridAgentOptions Options => options.Value;

    private string NodeName => Options.EffectiveNodeName();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(250);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                _credentials ??= AgentCredentials.Load(_directory);
                if (_credentials is null || _credentials.Certificate.NotAfter.ToUniversalTime() <= time.GetUtcNow().UtcDateTime && Options.Token is not null)
                {
                    _credentials = await JoinAsync(stoppingToken).ConfigureAwait(false);
                }

                await RunConnectedAsync(_credentials, stoppingToken).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(250);
                _failuresSinceConnected = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable && ex.Trailers.GetValue(ControlPlaneGrpcService.LeaderTrailer) is { Length: > 0 } leader)
            {
                // A member that does not lead names the leader: go there at once.
                Log.Disconnected(logger, Current, ex.Status.Detail);
                FailOver(leader);
                await Task.Delay(TimeSpan.FromMilliseconds(50), time, stoppingToken).ConfigureAwait(false);
                continue;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
            {
                Log.Refused(logger, NodeName, ex.Status.Detail);
                if (ex.StatusCode == StatusCode.Unauthenticated && Options.Token is not null && _credentials is not null)
                {
                    // The certificate is no longer accepted (expired, or a new CA): join again with the token.
                    _credentials = null;
                    TryDelete(Path.Combine(_directory, AgentCredentials.CertificateFile));
                }
            }
            catch (Exception ex) when (ex is RpcException or IOException or HttpRequestException or CryptographicException or InvalidOperationException or AgentJoinException)
            {
                Log.Disconnected(logger, Current, ex.Message);
                FailOver(null);
            }

            // With several members, try each once quickly (failover) before backing off.
            if (++_failuresSinceConnected < EndpointCount + 1)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, stoppingToken).ConfigureAwait(false);
                continue;
            }

            await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
        }
    }

    private async Task<AgentCredentials> JoinAsync(CancellationToken cancellationToken)
    {
        if (!JoinToken.TryParse(Options.Token, out var token, out var error))
        {
            throw new AgentJoinException(Options.Token is null ? $"this node has no certificate yet: start it with --token (from the control plane: warp tokens create)" : error!);
        }

        // 1. Discovery: fetch the CA over TLS without trusting anything, and check it against the token's pin before
        // sending the secret (kubeadm's discovery-token-ca-cert-hash).
        byte[] caDer;
        using (var discovery = Channel(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } }))
        {
            var info = await new NodeAgent.NodeAgentClient(discovery).GetClusterInfoAsync(new ClusterInfoRequest(), deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            caDer = info.CaCertificate.ToByteArray();
        }

        using var ca = X509CertificateLoader.LoadCertificate(caDer);
        var hash = ClusterCertificateAuthority.HashOf(ca);
        if (!string.Equals(hash, token!.CaHash, StringComparison.Ordinal))
        {
            throw new AgentJoinException($"the control plane at {Current} presents CA sha256 {hash}, but the join token pins {token.CaHash}: not joining (wrong address, or a token from another cluster)");
        }

        // 2. Join over TLS validated against that CA.
        var (key, csr) = AgentCredentials.NewRequest(NodeName);
        using (key)
        {
            using var channel = Channel(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, c, _, e) => AgentCredentials.ValidateServer(ca, c, e) } });
            var response = await new NodeAgent.NodeAgentClient(channel).JoinAsync(new JoinRequest { Token = token.ToString(), Csr = ByteString.CopyFrom(csr), NodeName = NodeName }, deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            var credentials = AgentCredentials.Save(_directory, key, response.Certificate.ToByteArray(), response.CaCertificate.ToByteArray());
            Learn(response.Members);
            Log.Joined(logger, NodeName, Current, credentials.Certificate.NotAfter.ToUniversalTime());
            return credentials;
        }
    }

    private GrpcChannel Channel(SocketsHttpHandler handler)
    {
        handler.ConnectTimeout = TimeSpan.FromSeconds(10);
        handler.KeepAlivePingDelay = TimeSpan.FromSeconds(10);
        handler.KeepAlivePingTimeout = TimeSpan.FromSeconds(10);
        handler.EnableMultipleHttp2Connections = true;
        return GrpcChannel.ForAddress(Current, new GrpcChannelOptions { HttpHandler = handler, MaxReceiveMessageSize = 300 << 20, MaxSendMessageSize = 16 << 20 });
    }

    private DateTime Deadline() => time.GetUtcNow().UtcDateTime.AddSeconds(30);

    private GrpcChannel MutualChannel(AgentCredentials credentials)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [credentials.Certificate];
        handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => credentials.Certificate;
        handler.SslOptions.RemoteCertificateValidationCallback = (_, c, _, e) => AgentCredentials.ValidateServer(credentials.Ca, c, e);
        return Channel(handler);
    }

    /// <summary>Heartbeats and follows allocations over one mTLS channel until the certificate is due for renewal (then renews and returns).</summary>
    private async Task RunConnectedAsync(AgentCredentials credentials, CancellationToken stoppingToken)
    {
        using var channel = MutualChannel(credentials);
        var client = new NodeAgent.NodeAgentClient(channel);
        using var session = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var cert = credentials.Certificate;
        var notBefore = cert.NotBefore.ToUniversalTime();
        var renewAt = notBefore + ((cert.NotAfter.ToUniversalTime() - notBefore) * Options.RenewAfterFraction);

        // The first heartbeat registers the node (and proves the certificate is accepted) before anything else.
        await HeartbeatAsync(client, credentials, stoppingToken).ConfigureAwait(false);
        Log.Connected(logger, NodeName, Current);
        _failuresSinceConnected = 0;
        var watch = Task.Run(() => WatchAsync(client, session.Token), CancellationToken.None);
        var beats = Task.Run(() => HeartbeatLoopAsync(client, credentials, renewAt, session.Token), CancellationToken.None);
        var first = await Task.WhenAny(watch, beats).ConfigureAwait(false);
        await session.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(watch, beats).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // one loop ended the session; the other was cancelled
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && !stoppingToken.IsCancellationRequested)
        {
        }

        await first.ConfigureAwait(false); // surface the reason the session ended

        if (!stoppingToken.IsCancellationRequested && time.GetUtcNow().UtcDateTime >= renewAt)
        {
            _credentials = await RenewAsync(client, credentials, stoppingToken).ConfigureAwait(false);
        }
    }

    private async Task<AgentCredentials> RenewAsync(NodeAgent.NodeAgentClient client, AgentCredentials credentials, CancellationToken cancellationToken)
    {
        var (key, csr) = AgentCredentials.NewRequest(NodeName);
        using (key)
        {
            var response = await client.RenewCertificateAsync(new RenewRequest { Csr = ByteString.CopyFrom(csr) }, deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
            var renewed = AgentCredentials.Save(_directory, key, response.Certificate.ToByteArray(), response.CaCertificate.ToByteArray());
            Log.Renewed(logger, NodeName, credentials.Certificate.NotAfter.ToUniversalTime(), renewed.Certificate.NotAfter.ToUniversalTime(), renewed.Certificate.SerialNumber);
            return renewed;
        }
    }

    private async Task HeartbeatLoopAsync(NodeAgent.NodeAgentClient client, AgentCredentials credentials, DateTime renewAt, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow().UtcDateTime;
            if (now >= renewAt)
            {
                return; // end the session: RunConnectedAsync renews and reconnects with the new certificate
            }

            var wait = renewAt - now < _heartbeatInterval ? renewAt - now : _heartbeatInterval;
            await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            await HeartbeatAsync(client, credentials, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync(NodeAgent.NodeAgentClient client, AgentCredentials credentials, CancellationToken cancellationToken)
    {
        var request = new HeartbeatRequest
        {
            Session = _session,
            MemoryBytes = Options.MemoryBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            CpuWeight = Options.CpuWeight ?? Environment.ProcessorCount * 1000L,
            InstanceSlots = runtime.Budget.Limit,
            Ready = true,
            ApiUrl = Options.ApiUrl ?? string.Empty,
            IngressUrl = Options.IngressUrl ?? string.Empty,
            Version = typeof(NodeAgentService).Assembly.GetName().Version?.ToString() ?? string.Empty,
        };
        foreach (var (k, v) in Options.ParsedLabels())
        {
            request.Labels[k] = v;
        }

        foreach (var t in Options.ParsedTaints())
        {
            request.Taints.Add(new Protocol.Taint { Key = t.Key, Value = t.Value, Effect = t.Effect.ToString() });
        }

        foreach (var active in registry.Active.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
        {
            request.Running.Add(new RunningDeployment
            {
                Deployment = active.Name,
                AllocationRevision = active.Pool is null ? 0 : active.ServingRevision,
                Instances = active.Pool?.Stats.Live ?? 0,
                State = active.Pool is not null && active.State == DeploymentState.Running ? "running" : active.State.ToString().ToLowerInvariant(),
                Message = active.Message ?? string.Empty,
            });
        }

        // A short deadline: a member that stopped answering is left for another well within the node's not-ready timeout.
        var deadline = time.GetUtcNow().UtcDateTime + TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(3).Ticks, 3 * _heartbeatInterval.Ticks));
        var response = await client.HeartbeatAsync(request, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (response.HeartbeatIntervalMs > 0)
        {
            _heartbeatInterval = TimeSpan.FromMilliseconds(response.HeartbeatIntervalMs);
        }

        Learn(response.Members);
    }

    private async Task WatchAsync(NodeAgent.NodeAgentClient client, CancellationToken cancellationToken)
    {
        using var call = client.WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cancellationToken);
        await foreach (var set in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await ApplyAsync(client, set, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task ApplyAsync(NodeAgent.NodeAgentClient client, AllocationSet set, CancellationToken cancellationToken)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var allocation in set.Allocations)
        {
            wanted.Add(allocation.Deployment);
            var record = DeploymentRecord.FromBytes(allocation.Record.Span, allocation.Revision);
            if (registry.Get(record.Name) is { } current && current.Record.Revision >= record.Revision)
            {
                continue;
            }

            if (!blobs.Exists(record.Digest))
            {
                var module = await client.GetModuleAsync(new ModuleRequest { Digest = record.Digest }, deadline: time.GetUtcNow().UtcDateTime.AddMinutes(5), cancellationToken: cancellationToken).ConfigureAwait(false);
                var digest = await blobs.PutAsync(module.Content.Memory, cancellationToken).ConfigureAwait(false);
                if (!string.Equals(digest, record.Digest, StringComparison.Ordinal))
                {
                    await blobs.DeleteAsync(digest, cancellationToken).ConfigureAwait(false);
                    throw new InvalidDataException($"the control plane sent module bytes with digest {digest} for {record.Digest}");
                }
            }

            int instances = allocation.Instances;
            int total = Math.Max(instances, allocation.TotalInstances);
            await controller.ApplyAsync(record, s => s with
            {
                MinInstances = s.MinInstances == 0 ? 0 : instances,
                MaxInstances = Math.Max(instances, (int)Math.Ceiling(s.MaxInstances * (double)instances / total)),
            }, cancellationToken).ConfigureAwait(false);
            Log.Applied(logger, record.Name, instances, allocation.Revision);
        }

        foreach (var name in registry.Active.Keys.Where(n => !wanted.Contains(n)).ToList())
        {
            await controller.RemoveAsync(name, set.StoreRevision).ConfigureAwait(false);
            Log.Removed(logger, name);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 240, Level = LogLevel.Information, Message = "Node {Node} joined the cluster at {Join}; certificate valid until {NotAfter:O}")]
        public static partial void Joined(ILogger logger, string node, string join, DateTime notAfter);

        [LoggerMessage(EventId = 241, Level = LogLevel.Error, Message = "Node {Node}: the control plane refused: {Reason}")]
        public static partial void Refused(ILogger logger, string node, string reason);

        [LoggerMessage(EventId = 242, Level = LogLevel.Warning, Message = "Not connected to the control plane at {Join}: {Reason}")]
        public static partial void Disconnected(ILogger logger, string join, string reason);

        [LoggerMessage(EventId = 243, Level = LogLevel.Information, Message = "Node {Node} connected to {Join} (mTLS)")]
        public static partial void Connected(ILogger logger, string node, string join);

        [LoggerMessage(EventId = 244, Level = LogLevel.Information, Message = "Node {Node} renewed its certificate: valid until {OldNotAfter:O} -> {NewNotAfter:O} (serial {Serial})")]
        public static partial void Renewed(ILogger logger, string node, DateTime oldNotAfter, DateTime newNotAfter, string serial);

        [LoggerMessage(EventId = 245, Level = LogLevel.Information, Message = "Running {Deployment} with {Instances} instance(s) (allocation revision {Revision})")]
        public static partial void Applied(ILogger logger, string deployment, int instances, long revision);

        [LoggerMessage(EventId = 246, Level = LogLevel.Information, Message = "Deallocated {Deployment}")]
        public static partial void Removed(ILogger logger, string deployment);

        [LoggerMessage(EventId = 247, Level = LogLevel.Information, Message = "Control plane {From} -> {To} ({Reason})")]
        public static partial void FailingOver(ILogger logger, string from, string to, string reason);
    }
}

/// <summary>A join that cannot proceed (no token, CA mismatch).</summary>
internal sealed class AgentJoinException(string message) : Exception(message);
