using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;

namespace WarpGrid.Hosting;

/// <summary>Settings of a control plane that node agents join (configuration section <c>WarpGrid:Cluster</c>).</summary>
public sealed class WarpGridClusterOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Cluster";

    /// <summary>The cluster's name, written into the CA certificate. Default <c>warpgrid</c>.</summary>
    public string ClusterName { get; set; } = "warpgrid";

    /// <summary>How often agents heartbeat (told to them at join). Default 2 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Heartbeat silence after which a node is not ready. Default 10 s.</summary>
    public TimeSpan NodeNotReadyAfter { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Heartbeat silence after which a node is lost and its instances are rescheduled. Default 30 s.</summary>
    public TimeSpan NodeLostAfter { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Lifetime of node certificates (agents renew after two thirds). Default 24 h; at least 10 s.</summary>
    public TimeSpan CertificateLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Lifetime of the control plane's own TLS certificate (renewed after two thirds). Default 30 days.</summary>
    public TimeSpan ServerCertificateLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Lifetime of join tokens created without one. Default 24 h.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Extra DNS names and IP addresses for the control plane's TLS certificate (loopback and the host name are always in).</summary>
    public IList<string> ServerNames { get; } = [];

    /// <summary>
    /// A file holding the cluster secret (at least 32 bytes; surrounding whitespace ignored), the same on every
    /// control-plane member. Required when the control plane has a Raft-replicated store: every member derives the
    /// cluster CA from it (no CA files to copy), issues itself a member certificate, and member-to-member links (Raft,
    /// forwarded writes) become mutual TLS pinned to that CA. Without it a single control plane keeps its CA in
    /// <c>&lt;data&gt;/cluster</c>.
    /// </summary>
    public string? SecretFile { get; set; }

    /// <summary>
    /// This member's agent URL as agents should reach it (<c>https://HOST:PORT</c>), told to agents so that they can
    /// fail over between members. <c>warpd</c> sets it from <c>--cluster</c>.
    /// </summary>
    public string? AdvertiseUrl { get; set; }

    /// <summary>Lifetime of member certificates for member-to-member mTLS (reissued in memory after two thirds). Default 7 days.</summary>
    public TimeSpan MemberCertificateLifetime { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>Settings of a node agent (configuration section <c>WarpGrid:Agent</c>).</summary>
public sealed class WarpGridAgentOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Agent";

    /// <summary>
    /// The control plane's cluster URL, e.g. <c>https://10.0.0.1:9443</c>, or several members' URLs separated by commas
    /// (an HA control plane): the agent talks to the leader, learns every member's URL from it, and fails over to
    /// another member when its member dies.
    /// </summary>
    public string? Join { get; set; }

    /// <summary>The URLs in <see cref="Join"/>.</summary>
    internal IReadOnlyList<string> JoinUrls() =>
        (Join ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A join token (<c>wg1.…</c>); needed only until the node has a certificate (and to join again after it expired).</summary>
    public string? Token { get; set; }

    /// <summary>The node name (the CN of its certificate). Default: the host name, lowercased.</summary>
    public string? NodeName { get; set; }

    /// <summary>Labels as <c>key=value</c>.</summary>
    public IList<string> Labels { get; } = [];

    /// <summary>Taints as <c>key=value:Effect</c>.</summary>
    public IList<string> Taints { get; } = [];

    /// <summary>Memory offered to instances. Default: the memory available to this process.</summary>
    public long? MemoryBytes { get; set; }

    /// <summary>CPU weight offered to instances. Default: 1000 per core.</summary>
    public long? CpuWeight { get; set; }

    /// <summary>The REST API URL the control plane shows for this node.</summary>
    public string? ApiUrl { get; set; }

    /// <summary>The ingress URL the control plane shows for this node.</summary>
    public string? IngressUrl { get; set; }

    /// <summary>The fraction of a certificate's lifetime after which it is renewed, 0.1..0.95. Default 2/3.</summary>
    public double RenewAfterFraction { get; set; } = 2.0 / 3.0;

    /// <summary>Parsed labels.</summary>
    internal Dictionary<string, string> ParsedLabels()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in Labels)
        {
            if (AgentOptionsValidator.TryParseLabel(label, out var key, out var value, out _))
            {
                result[key!] = value!;
            }
        }

        return result;
    }

    /// <summary>Parsed taints.</summary>
    internal List<NodeTaint> ParsedTaints() =>
        [.. Taints.Select(t => NodeTaint.TryParse(t, out var taint, out _) ? taint! : null).OfType<NodeTaint>()];

    /// <summary>The node name to use.</summary>
    internal string EffectiveNodeName()
    {
        if (!string.IsNullOrWhiteSpace(NodeName))
        {
            return NodeName;
        }

        var host = new string([.. Environment.MachineName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '-')]).Trim('-', '.');
        return host.Length == 0 ? "node" : host.Length > 63 ? host[..63].TrimEnd('-', '.') : host;
    }
}

/// <summary>Validates <see cref="WarpGridClusterOptions"/> at start.</summary>
internal sealed class ClusterOptionsValidator : IValidateOptions<WarpGridClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, WarpGridClusterOptions options)
    {
        var s = WarpGridClusterOptions.Section;
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterName) || options.ClusterName.Length > 63)
        {
            errors.Add($"{s}:ClusterName must be 1-63 characters (got '{options.ClusterName}').");
        }

        if (options.HeartbeatInterval < TimeSpan.FromMilliseconds(100) || options.HeartbeatInterval > TimeSpan.FromMinutes(1))
        {
            errors.Add($"{s}:HeartbeatInterval must be between 100 ms and 1 minute (got {options.HeartbeatInterval}).");
        }

        if (options.NodeNotReadyAfter <= options.HeartbeatInterval)
        {
            errors.Add($"{s}:NodeNotReadyAfter ({options.NodeNotReadyAfter}) must be longer than {s}:HeartbeatInterval ({options.HeartbeatInterval}).");
        }

        if (options.NodeLostAfter <= options.NodeNotReadyAfter)
        {
            errors.Add($"{s}:NodeLostAfter ({options.NodeLostAfter}) must be longer than {s}:NodeNotReadyAfter ({options.NodeNotReadyAfter}).");
        }

        if (options.CertificateLifetime < TimeSpan.FromSeconds(10) || options.CertificateLifetime > TimeSpan.FromDays(366))
        {
            errors.Add($"{s}:CertificateLifetime must be between 10 s and 366 days (got {options.CertificateLifetime}).");
        }

        if (options.ServerCertificateLifetime < TimeSpan.FromMinutes(1) || options.ServerCertificateLifetime > TimeSpan.FromDays(366))
        {
            errors.Add($"{s}:ServerCertificateLifetime must be between 1 minute and 366 days (got {options.ServerCertificateLifetime}).");
        }

        if (options.TokenLifetime <= TimeSpan.Zero)
        {
            errors.Add($"{s}:TokenLifetime must be positive (got {options.TokenLifetime}).");
        }

        if (options.SecretFile is { } secret && !File.Exists(secret))
        {
            errors.Add($"{s}:SecretFile '{secret}' does not exist (create it with: (umask 077; head -c 32 /dev/urandom | base64 > {secret})).");
        }
        else if (options.SecretFile is { } existing && SecretFiles.Check(existing, $"{s}:SecretFile (--cluster-secret-file)") is { } refusal)
        {
            errors.Add(refusal);
        }

        if (options.AdvertiseUrl is { } url && (!Uri.TryCreate(url, UriKind.Absolute, out var advertise) || advertise.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{s}:AdvertiseUrl must be an https:// URL, e.g. https://10.0.0.1:9443 (got '{url}').");
        }

        if (options.MemberCertificateLifetime < TimeSpan.FromMinutes(1) || options.MemberCertificateLifetime > TimeSpan.FromDays(366))
        {
            errors.Add($"{s}:MemberCertificateLifetime must be between 1 minute and 366 days (got {options.MemberCertificateLifetime}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Validates <see cref="WarpGridAgentOptions"/> at start.</summary>
internal sealed class AgentOptionsValidator : IValidateOptions<WarpGridAgentOptions>
{
    public static bool TryParseLabel(string text, out string? key, out string? value, out string? error)
    {
        key = value = error = null;
        int eq = text.IndexOf('=');
        if (eq <= 0)
        {
            error = $"label '{text}' must look like key=value";
            return false;
        }

        key = text[..eq].Trim();
        value = text[(eq + 1)..].Trim();
        if (!NodeNames.IsValidLabelKey(key))
        {
            error = $"label '{text}': key must be 1-63 letters, digits, '-', '_', '.' or '/'";
            return false;
        }

        if (!NodeNames.IsValidLabelValue(value))
        {
            error = $"label '{text}': value must be at most 63 letters, digits, '-', '_' or '.'";
            return false;
        }

        return true;
    }

    public ValidateOptionsResult Validate(string? name, WarpGridAgentOptions options)
    {
        var s = WarpGridAgentOptions.Section;
        var errors = new List<string>();
        var urls = options.JoinUrls();
        if (urls.Count == 0 || urls.Any(u => !Uri.TryCreate(u, UriKind.Absolute, out var join) || join.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{s}:Join must be the control plane's https:// cluster URL, e.g. https://127.0.0.1:9443, or several separated by commas (got '{options.Join}').");
        }

        if (options.Token is not null && !JoinToken.TryParse(options.Token, out _, out var tokenError))
        {
            errors.Add($"{s}:Token: {tokenError}.");
        }

        if (!NodeNames.IsValid(options.EffectiveNodeName()))
        {
            errors.Add($"{s}:NodeName '{options.EffectiveNodeName()}' must be 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit.");
        }

        foreach (var label in options.Labels)
        {
            if (!TryParseLabel(label, out _, out _, out var error))
            {
                errors.Add($"{s}:Labels: {error}.");
            }
        }

        foreach (var taint in options.Taints)
        {
            if (!NodeTaint.TryParse(taint, out _, out var error))
            {
                errors.Add($"{s}:Taints: {error}.");
            }
        }

        if (options.MemoryBytes is <= 0)
        {
            errors.Add($"{s}:MemoryBytes must be positive (got {options.MemoryBytes}).");
        }

        if (options.CpuWeight is <= 0)
        {
            errors.Add($"{s}:CpuWeight must be positive (got {options.CpuWeight}).");
        }

        if (options.RenewAfterFraction is < 0.1 or > 0.95)
        {
            errors.Add($"{s}:RenewAfterFraction must be between 0.1 and 0.95 (got {options.RenewAfterFraction}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
