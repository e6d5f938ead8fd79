using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;

namespace WarpGrid.Hosting;

/// <summary>
/// TLS on the REST API listener (configuration section <c>WarpGrid:Api:Tls</c>): a certificate and key from PEM files
/// (reloaded when they change), or a certificate issued by the cluster CA (<see cref="SelfIssued"/>). With neither the
/// API is plain HTTP. Serve it with <see cref="ApiListenerExtensions.ListenForApi"/>.
/// </summary>
public sealed class WarpGridApiTlsOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Api:Tls";

    /// <summary>
    /// A PEM file with the API's certificate, followed by any intermediate certificates of its chain (served with
    /// it). Goes with <see cref="KeyFile"/>. New connections get the new certificate when either file changes.
    /// </summary>
    public string? CertificateFile { get; set; }

    /// <summary>A PEM file with the certificate's private key (PKCS#8, SEC1 or PKCS#1, unencrypted), mode 0600.</summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// Whether the API certificate is issued by the cluster CA: on a control plane its cluster CA, on a standalone node
    /// a node-local CA in <c>&lt;data&gt;/cluster</c> (created on first start). The CA certificate is written to
    /// <c>&lt;data&gt;/api-ca.crt</c> for clients to trust. Not supported on a node agent (it holds no CA). Excludes
    /// <see cref="CertificateFile"/>.
    /// </summary>
    public bool SelfIssued { get; set; }

    /// <summary>Lifetime of a self-issued API certificate (a new one is issued after two thirds of it). Default 30 days.</summary>
    public TimeSpan SelfIssuedLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Extra DNS names and IP addresses for a self-issued certificate (loopback, the host name and the listener's
    /// address are always in; a listener on all addresses adds the host's interface addresses).
    /// </summary>
    public IList<string> ServerNames { get; } = [];

    /// <summary>Whether the API is served over TLS (certificate files or a self-issued certificate).</summary>
    public bool Enabled => SelfIssued || CertificateFile is not null || KeyFile is not null;

    /// <summary>The file a self-issued certificate's CA is written to, in the node's data directory.</summary>
    public const string CaCertificateFile = "api-ca.crt";
}

/// <summary>Validates <see cref="WarpGridApiTlsOptions"/> at start; messages name the setting and its warpd flag.</summary>
internal sealed class WarpGridApiTlsOptionsValidator(IServiceProvider services) : IValidateOptions<WarpGridApiTlsOptions>
{
    private const string S = WarpGridApiTlsOptions.Section;

    public ValidateOptionsResult Validate(string? name, WarpGridApiTlsOptions options)
    {
        var errors = Check(options, ClusterBuilderExtensions.RoleOf(services));
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>What is wrong with <paramref name="options"/> on a node of <paramref name="role"/>; empty when nothing.</summary>
    internal static List<string> Check(WarpGridApiTlsOptions options, ClusterRole role)
    {
        var errors = new List<string>();
        bool files = options.CertificateFile is not null || options.KeyFile is not null;
        if (files && options.SelfIssued)
        {
            errors.Add($"{S}:SelfIssued (--api-tls-self) and {S}:CertificateFile/KeyFile (--api-tls-cert/--api-tls-key) exclude each other: give one of them.");
        }
        else if (files && (string.IsNullOrWhiteSpace(options.CertificateFile) || string.IsNullOrWhiteSpace(options.KeyFile)))
        {
            errors.Add($"{S}:CertificateFile (--api-tls-cert) and {S}:KeyFile (--api-tls-key) go together: give both PEM files (got {(string.IsNullOrWhiteSpace(options.CertificateFile) ? "only the key" : "only the certificate")}).");
        }
        else if (files)
        {
            if (!File.Exists(options.CertificateFile))
            {
                errors.Add($"{S}:CertificateFile (--api-tls-cert) '{options.CertificateFile}' does not exist.");
            }

            if (!File.Exists(options.KeyFile))
            {
                errors.Add($"{S}:KeyFile (--api-tls-key) '{options.KeyFile}' does not exist.");
            }
            else if (SecretFiles.Check(options.KeyFile!, $"{S}:KeyFile (--api-tls-key)") is { } refusal)
            {
                errors.Add(refusal);
            }

            if (errors.Count == 0 && ApiCertificateFiles.TryLoad(options.CertificateFile!, options.KeyFile!, out _, out var problem) is false)
            {
                errors.Add($"{S}:CertificateFile/KeyFile (--api-tls-cert/--api-tls-key): {problem}");
            }
        }

        if (options.SelfIssued && role == ClusterRole.Agent)
        {
            errors.Add($"{S}:SelfIssued (--api-tls-self) is not supported on a node agent: an agent holds no CA to issue the certificate; give the API a certificate with --api-tls-cert/--api-tls-key ({S}:CertificateFile/KeyFile).");
        }

        if (options.SelfIssuedLifetime < TimeSpan.FromMinutes(1) || options.SelfIssuedLifetime > TimeSpan.FromDays(366))
        {
            errors.Add($"{S}:SelfIssuedLifetime must be between 1 minute and 366 days (got {options.SelfIssuedLifetime}).");
        }

        return errors;
    }
}
