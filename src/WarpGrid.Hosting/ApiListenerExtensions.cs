using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Hosting.Cluster;

namespace WarpGrid.Hosting;

/// <summary>The REST API listener: plain HTTP on loopback, or TLS with certificate files or a certificate from the cluster CA.</summary>
public static partial class ApiListenerExtensions
{
    /// <summary>
    /// Registers <see cref="WarpGridApiTlsOptions"/>, bound from <c>WarpGrid:Api:Tls</c> and validated at start (files
    /// present and loadable, key file mode 0600, no self-issued certificate on an agent). Idempotent.
    /// </summary>
    public static IWarpGridBuilder AddApiTls(this IWarpGridBuilder builder, Action<WarpGridApiTlsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(IValidateOptions<WarpGridApiTlsOptions>)))
        {
            return builder;
        }

        services.AddOptions<WarpGridApiTlsOptions>().BindConfiguration(WarpGridApiTlsOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WarpGridApiTlsOptions>, WarpGridApiTlsOptionsValidator>());
        return builder;
    }

    /// <summary>
    /// Adds the API listener on <paramref name="endpoint"/>. Without TLS (<paramref name="tls"/> null or not
    /// <see cref="WarpGridApiTlsOptions.Enabled"/>) it is plain HTTP, and a warning is logged when the address is not
    /// loopback. With TLS it serves HTTP/1.1 and HTTP/2 with the certificate of <paramref name="tls"/>: from PEM files
    /// (new connections get a changed certificate), or issued by the cluster CA (a control plane's, or a node-local CA
    /// in <c>&lt;data&gt;/cluster</c> on a standalone node; its CA certificate is written to
    /// <c>&lt;data&gt;/api-ca.crt</c>). A client certificate is asked for but not required, and not checked at the TLS
    /// level (Kestrel's <see cref="ClientCertificateMode.AllowCertificate"/> with a validation that accepts any): the
    /// API's authentication checks it against the cluster CA.
    /// </summary>
    /// <exception cref="InvalidOperationException">A self-issued certificate on a node agent, or certificate files that do not load.</exception>
    public static void ListenForApi(this KestrelServerOptions kestrel, IPEndPoint endpoint, WarpGridApiTlsOptions? tls = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        ArgumentNullException.ThrowIfNull(endpoint);
        var services = kestrel.ApplicationServices
            ?? throw new InvalidOperationException("ListenForApi needs KestrelServerOptions.ApplicationServices: call it from ConfigureKestrel");
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("WarpGrid.Hosting.ApiListener");
        if (tls is null || !tls.Enabled)
        {
            if (!ApiListenerSecurity.IsLoopback(endpoint.Address))
            {
                Log.PlainBeyondLoopback(logger, $"http://{endpoint}");
            }

            kestrel.Listen(endpoint);
            return;
        }

        var source = CreateSource(services, endpoint, tls, logger);
        kestrel.Listen(endpoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(new TlsHandshakeCallbackOptions
            {
                OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = source.Current, // ALPN (h2, http/1.1) is added by Kestrel from listen.Protocols
                    ClientCertificateRequired = true, // asked for; a connection without one is still accepted below
                    RemoteCertificateValidationCallback = static (_, _, _, _) => true, // the authentication handler checks it against the cluster CA
                    CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
                }),
            });
        });
    }

    private static IApiCertificateSource CreateSource(IServiceProvider services, IPEndPoint endpoint, WarpGridApiTlsOptions tls, ILogger logger)
    {
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        if (!tls.SelfIssued)
        {
            try
            {
                return new ApiCertificateFiles(tls.CertificateFile ?? string.Empty, tls.KeyFile ?? string.Empty, time, logger);
            }
            catch (Exception ex) when (ex is InvalidDataException or ArgumentException)
            {
                throw new InvalidOperationException($"{WarpGridApiTlsOptions.Section}:CertificateFile/KeyFile (--api-tls-cert/--api-tls-key): {ex.Message}", ex);
            }
        }

        var node = services.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
        ClusterCertificateAuthority authority = ClusterBuilderExtensions.RoleOf(services) switch
        {
            ClusterRole.ControlPlane => services.GetRequiredService<ClusterAuthorityHolder>().Authority,
            ClusterRole.Agent => throw new InvalidOperationException($"{WarpGridApiTlsOptions.Section}:SelfIssued (--api-tls-self) is not supported on a node agent: an agent holds no CA to issue the certificate; give the API a certificate with --api-tls-cert/--api-tls-key."),
            _ => ClusterCertificateAuthority.LoadOrCreate(ClusterAuthorityHolder.DirectoryFor(node), "warpgrid", time).Authority,
        };
        var caFile = Path.Combine(node.DataDirectory, WarpGridApiTlsOptions.CaCertificateFile);
        ApiSelfIssuedCertificate.WriteCaCertificate(authority, caFile);
        Log.SelfIssued(logger, $"https://{endpoint}", caFile, authority.PinnedHash);
        var source = new ApiSelfIssuedCertificate(authority, endpoint, tls, time, logger);
        _ = source.Current; // issue it now: a failure shows at start, not on the first connection
        return source;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 285, Level = LogLevel.Warning, Message = "The API listens on {Url} without TLS beyond loopback: tokens and everything else cross the network in clear text")]
        public static partial void PlainBeyondLoopback(ILogger logger, string url);

        [LoggerMessage(EventId = 286, Level = LogLevel.Information, Message = "API on {Url} with a certificate from the cluster CA (sha256 {Hash}); clients trust {CaFile}")]
        public static partial void SelfIssued(ILogger logger, string url, string caFile, string hash);
    }
}
