using Microsoft.Extensions.Options;

namespace WarpGrid.Hosting;

/// <summary>Telemetry settings, bound from <c>WarpGrid:Telemetry</c>.</summary>
public sealed class WarpGridTelemetryOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Telemetry";

    /// <summary>Collect metrics for <c>GET /metrics</c> (Prometheus). Default true.</summary>
    public bool Metrics { get; set; } = true;

    /// <summary>
    /// Record spans for requests (ingress → guest). Default: on exactly when <see cref="OtlpOptions.Endpoint"/> is set.
    /// With nothing listening, the request path creates no span.
    /// </summary>
    public bool? Tracing { get; set; }

    /// <summary>
    /// The fraction of new traces recorded when tracing is on (OpenTelemetry's <c>ParentBased(TraceIdRatioBased)</c>
    /// sampler): a request with a client <c>traceparent</c> follows the client's sampled flag; one without is
    /// recorded with this probability, decided from its trace id. Default 0.1 (one request in ten; set 1 to record
    /// every request). 0 records only requests whose client asked for it.
    /// </summary>
    public double SamplingRatio { get; set; } = 0.1;

    /// <summary>Export of spans over OTLP.</summary>
    public OtlpOptions Otlp { get; set; } = new();

    /// <summary>True when spans are recorded.</summary>
    public bool TracingEnabled => Tracing ?? !string.IsNullOrWhiteSpace(Otlp.Endpoint);

    /// <summary>OTLP exporter settings (<c>WarpGrid:Telemetry:Otlp</c>).</summary>
    public sealed class OtlpOptions
    {
        /// <summary>Collector address, e.g. <c>http://127.0.0.1:4317</c> (gRPC) or <c>http://127.0.0.1:4318/v1/traces</c> (HTTP). Unset: no export.</summary>
        public string? Endpoint { get; set; }

        /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
        public string Protocol { get; set; } = "grpc";
    }
}

/// <summary>Validates <see cref="WarpGridTelemetryOptions"/> at start; messages name the setting.</summary>
internal sealed class WarpGridTelemetryOptionsValidator : IValidateOptions<WarpGridTelemetryOptions>
{
    public ValidateOptionsResult Validate(string? name, WarpGridTelemetryOptions options)
    {
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(options.Otlp.Endpoint)
            && (!Uri.TryCreate(options.Otlp.Endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)))
        {
            errors.Add($"{WarpGridTelemetryOptions.Section}:Otlp:Endpoint must be an absolute http:// or https:// URL (got '{options.Otlp.Endpoint}').");
        }

        if (double.IsNaN(options.SamplingRatio) || options.SamplingRatio is < 0 or > 1)
        {
            errors.Add($"{WarpGridTelemetryOptions.Section}:SamplingRatio must be between 0 and 1 (got {options.SamplingRatio.ToString(System.Globalization.CultureInfo.InvariantCulture)}).");
        }

        if (options.Otlp.Protocol is not ("grpc" or "http/protobuf"))
        {
            errors.Add($"{WarpGridTelemetryOptions.Section}:Otlp:Protocol must be 'grpc' or 'http/protobuf' (got '{options.Otlp.Protocol}').");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
