using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Scheduling;
using WarpGrid.Core.Storage;
using WarpGrid.Hosting.Cluster;
using WarpGrid.Raft;

namespace WarpGrid.Hosting;

/// <summary>What part a process plays in a cluster.</summary>
public enum ClusterRole
{
    /// <summary>One node that is its own control plane and runs every deployment itself (no cluster flags).</summary>
    Standalone,

    /// <summary>Keeps the store, signs node certificates and schedules deployments onto agents; runs none itself.</summary>
    ControlPlane,

    /// <summary>Joins a control plane and runs what is allocated to it; its own store is not used for deployments.</summary>
    Agent,
}

/// <summary>The role chosen for this process (registered by the builder extensions).</summary>
/// <param name="Role">The role.</param>
public sealed record ClusterRoleInfo(ClusterRole Role);

/// <summary>Logging of member-to-member TLS.</summary>
internal static partial class MemberTlsLog
{
    [LoggerMessage(EventId = 253, Level = LogLevel.Warning, Message = "Refused a control-plane member connection: {Reason}")]
    public static partial void Refused(ILogger logger, string reason);
}

/// <summary>Adds the cluster roles to an <see cref="IWarpGridBuilder"/>: control plane (CA, join tokens, node agents over mTLS gRPC, scheduling controller) or node agent.</summary>
public static class ClusterBuilderExtensions
{
    /// <summary>
    /// Makes this node a control plane: a cluster CA in <c>&lt;data&gt;/cluster</c> (created on first start, with a first
    /// join token), the agent gRPC service (map it with <see cref="MapWarpGridCluster"/> and listen with
    /// <see cref="ListenForAgents"/>), node status from heartbeats, and a scheduling controller that places deployments on
    /// ready agents instead of running them here. Settings bind from <c>WarpGrid:Cluster</c>. Idempotent.
    /// </summary>
    public static IWarpGridBuilder AddClusterControlPlane(this IWarpGridBuilder builder, Action<WarpGridClusterOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(ClusterRoleInfo)))
        {
            return builder;
        }

        services.AddSingleton(new ClusterRoleInfo(ClusterRole.ControlPlane));
        services.AddGrpc();
        services.AddOptions<WarpGridClusterOptions>().BindConfiguration(WarpGridClusterOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WarpGridClusterOptions>, ClusterOptionsValidator>());
        services.TryAddSingleton<ClusterAuthorityHolder>();
        services.TryAddSingleton(sp => sp.GetRequiredService<ClusterAuthorityHolder>().Authority);
        services.TryAddSingleton<ControlPlaneTls>();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<WarpGridClusterOptions>>().Value;
            return new ClusterControlPlane(
                sp.GetRequiredService<IClusterStore>(),
                sp.GetRequiredService<IScheduler>(),
                sp.GetRequiredService<DeploymentRegistry>(),
                sp.GetRequiredService<ClusterCertificateAuthority>(),
                new ControlPlaneSettings
                {
                    HeartbeatInterval = o.HeartbeatInterval,
                    NodeNotReadyAfter = o.NodeNotReadyAfter,
                    NodeLostAfter = o.NodeLostAfter,
                    CertificateLifetime = o.CertificateLifetime,
                },
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<ClusterControlPlane>>(),
                sp.GetService<RaftStoreMarker>() is null ? null : sp.GetRequiredService<RaftControlPlaneLeadership>())
            {
                Access = sp.GetRequiredService<WarpGrid.Core.Security.AccessControl>(),
            };
        });
        services.TryAddSingleton(sp => new RaftControlPlaneLeadership(sp.GetRequiredService<RaftClusterStore>()));
        services.TryAddSingleton(sp => new ControlPlaneMembers(
            sp.GetRequiredService<IClusterStore>(),
            sp.GetService<RaftStoreMarker>() is null ? null : sp.GetRequiredService<RaftClusterStore>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ControlPlaneMembers>>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ControlPlaneHostedService>());

        // An HA control plane (with UseRaftStore): module bytes are replicated through the store, so any member can serve them.
        if (services.LastOrDefault(d => d.ServiceType == typeof(IBlobStore)) is { } blobs)
        {
            services.Replace(ServiceDescriptor.Singleton<IBlobStore>(sp =>
            {
                var local = (IBlobStore)(blobs.ImplementationInstance ?? blobs.ImplementationFactory?.Invoke(sp) ?? ActivatorUtilities.CreateInstance(sp, blobs.ImplementationType!));
                return sp.GetService<RaftStoreMarker>() is null
                    ? local
                    : new ReplicatedModuleStore(local, sp.GetRequiredService<IClusterStore>(), sp.GetRequiredService<ILogger<ReplicatedModuleStore>>());
            }));
        }

        // Member-to-member mTLS (with UseRaftStore and a cluster secret): every member issues itself a member
        // certificate from the cluster CA and accepts only peers that present one of the same CA.
        services.AddOptions<RaftStoreOptions>().PostConfigure<IServiceProvider>((raft, sp) =>
        {
            var cluster = sp.GetRequiredService<IOptions<WarpGridClusterOptions>>().Value;
            if (raft.ServerTls is not null || raft.ClientTls is not null || cluster.SecretFile is null || string.IsNullOrWhiteSpace(raft.Listen))
            {
                return;
            }

            var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("WarpGrid.Hosting.Cluster.MemberTls");
            long lastLog = 0;
            var tls = new ClusterMemberTls(sp.GetRequiredService<ClusterAuthorityHolder>().Authority, raft.Listen, cluster.MemberCertificateLifetime, sp.GetRequiredService<TimeProvider>(), reason =>
            {
                // Peers retry constantly: log a refusal at most every 10 s.
                long now = Environment.TickCount64;
                long last = Interlocked.Read(ref lastLog);
                if (now - last > 10_000 && Interlocked.CompareExchange(ref lastLog, now, last) == last)
                {
                    MemberTlsLog.Refused(logger, reason);
                }
            });
            raft.ServerTls = tls.ServerOptions();
            raft.ClientTls = tls.ClientOptions();
        });
        return builder;
    }

    /// <summary>
    /// Makes this node an agent of the control plane at <see cref="WarpGridAgentOptions.Join"/>: it joins with a token,
    /// heartbeats, and runs the deployments allocated to it. Settings bind from <c>WarpGrid:Agent</c>. Idempotent.
    /// </summary>
    public static IWarpGridBuilder AddNodeAgent(this IWarpGridBuilder builder, Action<WarpGridAgentOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(ClusterRoleInfo)))
        {
            return builder;
        }

        services.AddSingleton(new ClusterRoleInfo(ClusterRole.Agent));
        services.AddOptions<WarpGridAgentOptions>().BindConfiguration(WarpGridAgentOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WarpGridAgentOptions>, AgentOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, NodeAgentService>());
        return builder;
    }

    /// <summary>Maps the agent gRPC service of a control plane (no-op on other roles), restricted to <paramref name="port"/> when given.</summary>
    public static IEndpointRouteBuilder MapWarpGridCluster(this IEndpointRouteBuilder endpoints, int? port = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetService<ClusterRoleInfo>()?.Role != ClusterRole.ControlPlane)
        {
            return endpoints;
        }

        var grpc = endpoints.MapGrpcService<ControlPlaneGrpcService>();
        if (port is { } p)
        {
            grpc.RequireHost($"*:{p}");
        }

        return endpoints;
    }

    /// <summary>
    /// Adds the agent listener of a control plane: HTTP/2 over TLS with a certificate from the cluster CA (renewed
    /// before it expires); a client certificate is asked for but optional at the TLS level, because joins come without
    /// one — every other call checks it (signed by the cluster CA, not expired).
    /// </summary>
    public static void ListenForAgents(this KestrelServerOptions kestrel, IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(endpoint);
        kestrel.Listen(endpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificateSelector = (_, _) => kestrel.ApplicationServices.GetRequiredService<ControlPlaneTls>().Current,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (_, _, _) => true, // checked per call against the cluster CA, with a clear reason
                CheckCertificateRevocation = false,
            });
        });
    }

    /// <summary>The process's role (standalone when no cluster role was added).</summary>
    internal static ClusterRole RoleOf(IServiceProvider services) => services.GetService<ClusterRoleInfo>()?.Role ?? ClusterRole.Standalone;

    /// <summary>Whether the request is a write to deployments on an agent, which has no say over them.</summary>
    internal static bool IsAgentWrite(HttpContext context) =>
        RoleOf(context.RequestServices) == ClusterRole.Agent && !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method);
}
