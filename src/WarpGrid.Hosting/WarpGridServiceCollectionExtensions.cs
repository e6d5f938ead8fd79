using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Deployments;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using WarpGrid.Core.Health;
using WarpGrid.Core.Observability;
using WarpGrid.Core.Scaling;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Storage;
using WarpGrid.Core.Security;
using WarpGrid.Hosting;
using WarpGrid.Hosting.Security;
using WarpGrid.Proxy;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a WarpGrid node in a host.</summary>
public static class WarpGridServiceCollectionExtensions
{
    /// <summary>
    /// Adds a WarpGrid node: the Wasm runtime, the embedded store in <see cref="WarpGridNodeOptions.DataDirectory"/>,
    /// the deployment controller and the ingress. Settings bind from <c>WarpGrid:Node</c> and <c>WarpGrid:Runtime</c>
    /// and are validated at start. Calling it again only applies <paramref name="configure"/>.
    /// </summary>
    public static IWarpGridBuilder AddWarpGridNode(this IServiceCollection services, Action<WarpGridNodeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = new WarpGridBuilder(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(WarpGridMarker)))
        {
            return builder;
        }

        services.AddSingleton<WarpGridMarker>();
        services.AddOptions<WarpGridNodeOptions>().BindConfiguration(WarpGridNodeOptions.Section).ValidateOnStart();
        services.AddOptions<WasmRuntimeOptions>().BindConfiguration(WasmRuntimeOptionsValidator.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WarpGridNodeOptions>, WarpGridNodeOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WasmRuntimeOptions>, WasmRuntimeOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<OciClientOptions>().BindConfiguration("WarpGrid:Oci")
            .PostConfigure<IConfiguration, ILoggerFactory, TimeProvider>((oci, configuration, loggers, time) => oci.CredentialProvider ??= new DockerConfigCredentialProvider(
                new DockerConfigCredentialProviderOptions { ConfigPath = configuration["WarpGrid:Oci:DockerConfig"] is { Length: > 0 } path ? path : null },
                loggers.CreateLogger<DockerConfigCredentialProvider>(), time)); // after WarpGrid:Oci:Credentials: the node user's Docker config
        services.TryAddSingleton(sp => new OciRegistryClient(
            sp.GetRequiredService<IOptions<OciClientOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<OciRegistryClient>(),
            sp.GetRequiredService<TimeProvider>()));

        services.TryAddSingleton(sp =>
        {
            var node = sp.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
            var runtime = sp.GetRequiredService<IOptions<WasmRuntimeOptions>>().Value;
            runtime.CompiledCacheDirectory ??= Path.Combine(node.DataDirectory, "cache");
            return new WasmNodeRuntime(runtime, sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<TimeProvider>());
        });
        services.TryAddSingleton<IClusterStore>(sp =>
        {
            var node = sp.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
            return new FileClusterStore(Path.Combine(node.DataDirectory, "store"), sp.GetRequiredService<ILogger<FileClusterStore>>());
        });
        services.TryAddSingleton<IBlobStore>(sp =>
        {
            var node = sp.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
            return new FileBlobStore(Path.Combine(node.DataDirectory, "blobs"), sp.GetRequiredService<ILogger<FileBlobStore>>(), sp.GetRequiredService<TimeProvider>());
        });
        services.TryAddSingleton<DeploymentRegistry>();
        services.TryAddSingleton(sp => new DeploymentManager(
            sp.GetRequiredService<IClusterStore>(),
            sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<WasmNodeRuntime>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<DeploymentManager>>(),
            sp.GetRequiredService<OciRegistryClient>())
        {
            Admissions = [.. sp.GetServices<IDeploymentAdmission>()],
        });
        WarpGridSecurityRegistration.AddWarpGridSecurity(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDeploymentAdmission, NamespaceQuotaAdmission>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IDeploymentAdmission, SignatureAdmission>());
        services.TryAddSingleton(sp => new DeploymentController(
            sp.GetRequiredService<IClusterStore>(),
            sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<WasmNodeRuntime>(),
            sp.GetRequiredService<DeploymentRegistry>(),
            sp.GetRequiredService<ILogger<DeploymentController>>())
        {
            DrainTimeout = sp.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value.DrainTimeout,
        });
        services.TryAddSingleton(sp => new WarpGridMetrics(
            sp.GetRequiredService<DeploymentRegistry>(),
            sp.GetRequiredService<WasmNodeRuntime>(),
            sp.GetRequiredService<IClusterStore>()));
        AddTelemetry(services);
        services.AddOptions<SupervisorOptions>().BindConfiguration(SupervisorOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SupervisorOptions>, SupervisorOptionsValidator>());
        services.TryAddSingleton(sp => new DeploymentSupervisor(
            sp.GetRequiredService<DeploymentRegistry>(),
            sp.GetRequiredService<WasmNodeRuntime>(),
            sp.GetRequiredService<IOptions<SupervisorOptions>>().Value,
            sp.GetServices<IScalingMetricSource>(),
            sp.GetRequiredService<ILogger<DeploymentSupervisor>>(),
            sp.GetRequiredService<WarpGridMetrics>()));
        services.TryAddSingleton<WagiIngress>();
        services.AddOptions<KestrelServerOptions>().PostConfigure(kestrel =>
        {
            var chosen = kestrel.ResponseHeaderEncodingSelector; // Kestrel's default answers null (ASCII) for every name
            kestrel.ResponseHeaderEncodingSelector = name => chosen(name) ?? GuestHeaderEncoding;
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WarpGridNodeService>());
        builder.AddWarpGridScheduler();
        return builder;
    }

    /// <summary>
    /// How Kestrel writes response header values: Latin-1, one byte a char, so the bytes a guest wrote (a UTF-8 file
    /// name, an obs-text byte) reach the client as written, as Spin, Wasmtime's <c>serve</c> and CGI servers send them;
    /// Kestrel's default refuses anything but ASCII. A char above U+00FF (only possible from the app's own endpoints)
    /// fails the response instead of being replaced. Where the app's own selector names an encoding for a header, that
    /// encoding wins.
    /// </summary>
    private static readonly Encoding GuestHeaderEncoding = Encoding.GetEncoding("iso-8859-1", EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);

    private static void AddTelemetry(IServiceCollection services)
    {
        services.AddOptions<WarpGridTelemetryOptions>().BindConfiguration(WarpGridTelemetryOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WarpGridTelemetryOptions>, WarpGridTelemetryOptionsValidator>());
        services.TryAddSingleton(sp => new RequestSampler(sp.GetRequiredService<IOptions<WarpGridTelemetryOptions>>().Value.SamplingRatio));
        services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics.AddPrometheusExporter())
            .WithTracing(_ => { });
        services.ConfigureOpenTelemetryMeterProvider((sp, metrics) =>
        {
            if (sp.GetRequiredService<IOptions<WarpGridTelemetryOptions>>().Value.Metrics)
            {
                metrics.AddMeter(WarpGridTelemetry.MeterName);
            }
        });
        services.ConfigureOpenTelemetryTracerProvider((sp, tracing) =>
        {
            var options = sp.GetRequiredService<IOptions<WarpGridTelemetryOptions>>().Value;
            if (!options.TracingEnabled)
            {
                return;
            }

            tracing.AddSource(WarpGridTelemetry.SourceName);
            tracing.SetSampler(new ParentBasedSampler(new HeadSampledRootSampler(options.SamplingRatio)));
            if (!string.IsNullOrWhiteSpace(options.Otlp.Endpoint))
            {
                var exporter = new OtlpTraceExporter(new OtlpExporterOptions
                {
                    Endpoint = new Uri(options.Otlp.Endpoint),
                    Protocol = options.Otlp.Protocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf,
                });
                tracing.AddProcessor(new BatchActivityExportProcessor(exporter));
            }
        });
    }
}
