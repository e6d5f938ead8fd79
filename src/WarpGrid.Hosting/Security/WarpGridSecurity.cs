using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Security;
using WarpGrid.Core.Storage;

namespace WarpGrid.Hosting.Security;

/// <summary>Security settings of a node (configuration section <c>WarpGrid:Security</c>).</summary>
public sealed class WarpGridSecurityOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Security";

    /// <summary>Serve <c>GET /metrics</c> without a credential (for scrapers that cannot send one). Default false.</summary>
    public bool AnonymousMetrics { get; set; }

    /// <summary>The file holding the bootstrap admin token. Default <c>&lt;data&gt;/admin-token</c>.</summary>
    public string? AdminTokenFile { get; set; }

    /// <summary>Audit records kept at most. Default 10,000.</summary>
    public int AuditMaxRecords { get; set; } = 10_000;

    /// <summary>Audit records older than this are dropped. Default 7 days.</summary>
    public TimeSpan AuditMaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Lifetime of user certificates issued by <c>POST /v1/certificates</c> when the request names none. Default 24 h.</summary>
    public TimeSpan UserCertificateLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The admin token file for <paramref name="node"/>.</summary>
    internal string TokenFileFor(WarpGridNodeOptions node) => AdminTokenFile ?? Path.Combine(node.DataDirectory, "admin-token");
}

/// <summary>Registers authentication, authorization, the audit log and the bootstrap administrator.</summary>
internal static class WarpGridSecurityRegistration
{
    public static void AddWarpGridSecurity(IServiceCollection services)
    {
        services.AddOptions<WarpGridSecurityOptions>().BindConfiguration(WarpGridSecurityOptions.Section);
        services.TryAddSingleton(sp => new AccessControl(sp.GetRequiredService<IClusterStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<AccessControl>>()));
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<WarpGridSecurityOptions>>().Value;
            return new AuditLog(sp.GetRequiredService<IClusterStore>(), new AuditSettings { MaxRecords = o.AuditMaxRecords, MaxAge = o.AuditMaxAge }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<AuditLog>>());
        });
        services.TryAddSingleton(sp => new ClientCertificateTrust(TrustedCa(sp), sp.GetRequiredService<AccessControl>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<LocalCertificateAuthority>();
        services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, WarpGridAuthenticationHandler>(WarpGridAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAuthorizationHandler, PermissionAuthorizationHandler>());

        // Replaces ASP.NET Core's default (empty 403 bodies), not a handler the host registered itself.
        if (services.LastOrDefault(d => d.ServiceType == typeof(IAuthorizationMiddlewareResultHandler)) is not { } existing || existing.ImplementationType == typeof(AuthorizationMiddlewareResultHandler))
        {
            services.Replace(ServiceDescriptor.Singleton<IAuthorizationMiddlewareResultHandler, WarpGridAuthorizationResultHandler>());
        }
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, AuditStartupFilter>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SecurityBootstrapService>());
    }

    /// <summary>The CA whose client certificates identify callers on this node.</summary>
    private static Func<X509Certificate2?> TrustedCa(IServiceProvider sp)
    {
        X509Certificate2? cached = null;
        DateTime checkedAt = DateTime.MinValue;
        return () =>
        {
            switch (ClusterBuilderExtensions.RoleOf(sp))
            {
                case ClusterRole.ControlPlane:
                    return sp.GetRequiredService<ClusterCertificateAuthority>().Certificate;
                default:
                    // An agent's CA arrives at join; a standalone node's CA exists once it issued a certificate.
                    if (cached is null && DateTime.UtcNow - checkedAt > TimeSpan.FromSeconds(5))
                    {
                        checkedAt = DateTime.UtcNow;
                        var node = sp.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
                        var file = ClusterBuilderExtensions.RoleOf(sp) == ClusterRole.Agent
                            ? Path.Combine(node.DataDirectory, "agent", "ca.crt")
                            : Path.Combine(node.DataDirectory, "cluster", ClusterCertificateAuthority.CertificateFile);
                        if (File.Exists(file))
                        {
                            cached = X509Certificate2.CreateFromPem(File.ReadAllText(file));
                        }
                    }

                    return cached ?? sp.GetService<LocalCertificateAuthority>()?.Loaded?.Certificate;
            }
        };
    }
}

/// <summary>
/// The CA that signs user certificates: the cluster CA on a control plane; on a standalone node a node-local CA in
/// <c>&lt;data&gt;/cluster</c>, created when first needed. Agents sign nothing.
/// </summary>
internal sealed class LocalCertificateAuthority(IServiceProvider services, IOptions<WarpGridNodeOptions> node, TimeProvider time)
{
    private readonly Lock _lock = new();

    public ClusterCertificateAuthority? Loaded { get; private set; }

    public ClusterCertificateAuthority? Get()
    {
        switch (ClusterBuilderExtensions.RoleOf(services))
        {
            case ClusterRole.ControlPlane:
                return services.GetRequiredService<ClusterCertificateAuthority>();
            case ClusterRole.Agent:
                return null;
        }

        lock (_lock)
        {
            Loaded ??= ClusterCertificateAuthority.LoadOrCreate(Path.Combine(node.Value.DataDirectory, "cluster"), "warpgrid", time).Authority;
            return Loaded;
        }
    }
}

/// <summary>
/// Creates the bootstrap administrator on first start (service account <c>warp-system:admin</c>, bound to
/// <c>cluster-admin</c>) and shows its token once on standard output; it lives in the data directory (0600) after.
/// Runs in the background: a replicated store may need a moment for a leader.
/// </summary>
internal sealed partial class SecurityBootstrapService(
    AccessControl access,
    IClusterStore store,
    IOptions<WarpGridSecurityOptions> security,
    IOptions<WarpGridNodeOptions> node,
    TimeProvider time,
    ILogger<SecurityBootstrapService> logger) : BackgroundService
{
    private bool _done;

    /// <summary>
    /// Tries once before the node takes traffic, so that the admin token exists by the time <c>/v1/health</c> answers
    /// (a replicated store without a leader yet is retried in the background).
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (store is not FileClusterStore)
        {
            await base.StartAsync(cancellationToken).ConfigureAwait(false); // a replicated store starts later: background only
            return;
        }

        try
        {
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bounded.CancelAfter(TimeSpan.FromSeconds(5));
            await EnsureAsync(security.Value.TokenFileFor(node.Value), bounded.Token).ConfigureAwait(false);
            _done = true;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Log.Waiting(logger, 0, ex.Message);
        }

        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task EnsureAsync(string file, CancellationToken cancellationToken)
    {
        await access.EnsureLoadedAsync(cancellationToken).ConfigureAwait(false);
        if (await access.EnsureBootstrapAdminAsync(file, cancellationToken).ConfigureAwait(false) is { } token)
        {
            // Shown once, on the console only: never through the logger.
            Console.Out.WriteLine($"warpd: bootstrap admin token (cluster-admin; shown once, kept in {Path.GetFullPath(file)} mode 0600):");
            Console.Out.WriteLine("  " + token);
            Console.Out.Flush();
            Log.Bootstrapped(logger, Path.GetFullPath(file));
        }
        else if (SecretFiles.Check(file, "the bootstrap admin token file") is { } warning)
        {
            Log.FileMode(logger, warning);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_done)
        {
            return;
        }

        var file = security.Value.TokenFileFor(node.Value);
        for (int attempt = 1; !stoppingToken.IsCancellationRequested; attempt++)
        {
            try
            {
                await EnsureAsync(file, stoppingToken).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
            {
                if (attempt % 10 == 1)
                {
                    Log.Waiting(logger, attempt, ex.Message);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500), time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 620, Level = LogLevel.Information, Message = "Bootstrap admin credential created in {Path}")]
        public static partial void Bootstrapped(ILogger logger, string path);

        [LoggerMessage(EventId = 621, Level = LogLevel.Information, Message = "Bootstrap admin not created yet (attempt {Attempt}): {Reason}")]
        public static partial void Waiting(ILogger logger, int attempt, string reason);

        [LoggerMessage(EventId = 622, Level = LogLevel.Warning, Message = "{Warning}")]
        public static partial void FileMode(ILogger logger, string warning);
    }
}

/// <summary>Adds the audit middleware at the start of the pipeline: it records every API call that changes state and every refused one.</summary>
internal sealed class AuditStartupFilter(AuditLog audit, IOptions<WarpGridNodeOptions> node) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        var ingressPort = node.Value.IngressPort;
        app.Use((context, nextMiddleware) => ingressPort is { } port && context.Connection.LocalPort == port
            ? nextMiddleware(context) // the ingress: not an API call
            : AuditAsync(context, nextMiddleware));
        next(app);
    };

    private async Task AuditAsync(HttpContext context, RequestDelegate next)
    {
        await next(context).ConfigureAwait(false);
        if (context.GetEndpoint()?.Metadata.GetMetadata<PermissionMetadata>() is not { } meta)
        {
            return;
        }

        var status = context.Response.StatusCode;
        bool mutating = !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method) && !HttpMethods.IsOptions(context.Request.Method);
        if (!mutating && status is not (401 or 403))
        {
            return;
        }

        var identity = context.WarpIdentity();
        string outcome = status == 401 ? "unauthenticated" : status == 403 ? "forbidden" : "allowed";
        string? reason = outcome switch
        {
            "unauthenticated" => context.Items.TryGetValue(WarpGridAuthenticationHandler.FailureItem, out var f) ? f as string ?? "no credential" : "no credential",
            "forbidden" => context.Items.TryGetValue(WarpGridPermissionExtensions.ReasonItem, out var r) ? r as string : null,
            _ => null,
        };
        audit.Write(new AuditRecord
        {
            Identity = identity?.Subject ?? "anonymous",
            Credential = identity is null ? null : $"{identity.Method}:{identity.CredentialId}",
            SourceAddress = context.Connection.RemoteIpAddress?.ToString(),
            Verb = meta.Permission.Verb,
            Resource = meta.Permission.Resource,
            Name = context.Request.RouteValues.TryGetValue("name", out var n) ? n as string : null,
            Namespace = context.Items.TryGetValue(WarpGridPermissionExtensions.NamespaceItem, out var ns) ? ns as string : null,
            Request = $"{context.Request.Method} {context.Request.Path}",
            Outcome = outcome,
            Status = status,
            Reason = reason,
            RequestId = System.Diagnostics.Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier,
        });
    }
}

/// <summary>Whether a caller is on this machine (loopback): such a caller may learn where the local admin credential is.</summary>
internal static class LoopbackCaller
{
    public static bool Is(HttpContext context) => context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip);
}
