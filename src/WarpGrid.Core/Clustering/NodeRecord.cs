using System.Text.Json;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Core.Clustering;

/// <summary>A taint as stored and shown by the API: <c>key=value:Effect</c>.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value (may be empty).</param>
/// <param name="Effect">NoSchedule, PreferNoSchedule or NoExecute.</param>
public sealed record NodeTaint(string Key, string Value, TaintEffect Effect)
{
    /// <summary>Parses <c>key=value:Effect</c> or <c>key:Effect</c>; the error names the problem.</summary>
    public static bool TryParse(string? text, out NodeTaint? taint, out string? error)
    {
        taint = null;
        error = null;
        text = text?.Trim() ?? string.Empty;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            error = $"taint '{text}' must look like key=value:NoSchedule (effects: NoSchedule, PreferNoSchedule, NoExecute)";
            return false;
        }

        var effectText = text[(colon + 1)..];
        if (!Enum.TryParse<TaintEffect>(effectText, ignoreCase: true, out var effect) || int.TryParse(effectText, out _))
        {
            error = $"taint '{text}': effect '{effectText}' is not one of NoSchedule, PreferNoSchedule, NoExecute";
            return false;
        }

        var pair = text[..colon];
        int eq = pair.IndexOf('=');
        var key = eq < 0 ? pair : pair[..eq];
        var value = eq < 0 ? string.Empty : pair[(eq + 1)..];
        if (!NodeNames.IsValidLabelKey(key))
        {
            error = $"taint '{text}': key '{key}' must be 1-63 letters, digits, '-', '_', '.' or '/'";
            return false;
        }

        taint = new NodeTaint(key, value, effect);
        return true;
    }

    /// <summary>The scheduler's form.</summary>
    public Taint ToTaint() => new(Key, Value, Effect);

    /// <inheritdoc />
    public override string ToString() => Value.Length == 0 ? $"{Key}:{Effect}" : $"{Key}={Value}:{Effect}";
}

/// <summary>Rules for node names and label keys.</summary>
public static class NodeNames
{
    /// <summary>A node name: 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit.</summary>
    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= 63 }
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.')
        && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1]);

    /// <summary>A label key: 1-63 letters, digits, '-', '_', '.' or '/'.</summary>
    public static bool IsValidLabelKey(string? key) =>
        key is { Length: > 0 and <= 63 } && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/');

    /// <summary>A label value: up to 63 letters, digits, '-', '_' or '.'.</summary>
    public static bool IsValidLabelValue(string? value) =>
        value is { Length: <= 63 } && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}

/// <summary>
/// A node as kept in the store under <c>nodes/&lt;name&gt;</c>: what its agent reported and what operators set
/// (labels, taints, cordon, drain). Heartbeat times are kept in memory by the control plane; the record is written when
/// something in it changes, including the status.
/// </summary>
public sealed record NodeRecord
{
    /// <summary>The store key prefix.</summary>
    public const string KeyPrefix = "nodes/";

    /// <summary>The node name (the CN of its certificate).</summary>
    public required string Name { get; init; }

    /// <summary>Labels: the agent's (applied at each agent start) and those set through the API.</summary>
    public Dictionary<string, string> Labels { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Taints, likewise.</summary>
    public List<NodeTaint> Taints { get; init; } = [];

    /// <summary>Memory the node offers to instances.</summary>
    public long MemoryBytes { get; init; }

    /// <summary>CPU weight the node offers.</summary>
    public long CpuWeight { get; init; }

    /// <summary>Instances the node may run.</summary>
    public int InstanceSlots { get; init; }

    /// <summary>No new instances (existing ones stay).</summary>
    public bool Cordoned { get; init; }

    /// <summary>No new instances, and existing ones are moved elsewhere.</summary>
    public bool Draining { get; init; }

    /// <summary>The status last decided by the control plane.</summary>
    public NodeStatus Status { get; init; } = NodeStatus.NotReady;

    /// <summary>Why it is not ready, when it is not.</summary>
    public string? StatusReason { get; init; }

    /// <summary>When the status last changed.</summary>
    public DateTimeOffset StatusChangedAt { get; init; }

    /// <summary>The agent's REST API URL.</summary>
    public string? ApiUrl { get; init; }

    /// <summary>The agent's ingress URL.</summary>
    public string? IngressUrl { get; init; }

    /// <summary>The agent process's session (random per start).</summary>
    public string? Session { get; init; }

    /// <summary>The agent's version.</summary>
    public string? Version { get; init; }

    /// <summary>When the node first registered.</summary>
    public DateTimeOffset JoinedAt { get; init; }

    /// <summary>When its current certificate expires.</summary>
    public DateTimeOffset? CertificateNotAfter { get; init; }

    /// <summary>The store key of a node.</summary>
    public static string KeyFor(string name) => KeyPrefix + name;

    /// <summary>Serializes the record.</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, ClusterJson.Default.NodeRecord);

    /// <summary>Reads a record.</summary>
    public static NodeRecord FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, ClusterJson.Default.NodeRecord) ?? throw new InvalidDataException("empty node record");

    /// <summary>Whether two records hold the same values (collections compared by content).</summary>
    public bool SameAs(NodeRecord other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return this with { Labels = other.Labels, Taints = other.Taints } == other
            && Labels.Count == other.Labels.Count && Labels.All(p => other.Labels.TryGetValue(p.Key, out var v) && v == p.Value)
            && Taints.SequenceEqual(other.Taints);
    }
}

/// <summary>
/// What one node runs of one deployment, kept under <c>allocations/&lt;node&gt;/&lt;deployment&gt;</c> by the
/// control plane's scheduling controller and watched by that node's agent. It carries the deployment record so the
/// agent needs nothing else from the store.
/// </summary>
public sealed record AllocationRecord
{
    /// <summary>The store key prefix.</summary>
    public const string KeyPrefix = "allocations/";

    /// <summary>The node.</summary>
    public required string Node { get; init; }

    /// <summary>The deployment.</summary>
    public required string Deployment { get; init; }

    /// <summary>Instances to run on the node.</summary>
    public int Instances { get; init; }

    /// <summary>Instances of the deployment in the whole cluster (for sharing <c>max_instances</c> between nodes).</summary>
    public int TotalInstances { get; init; }

    /// <summary>The store revision of the deployment record.</summary>
    public long DeploymentRevision { get; init; }

    /// <summary>The deployment record.</summary>
    public required DeploymentRecord Record { get; init; }

    /// <summary>The key of one allocation.</summary>
    public static string KeyFor(string node, string deployment) => KeyPrefix + node + "/" + deployment;

    /// <summary>The prefix of a node's allocations.</summary>
    public static string PrefixFor(string node) => KeyPrefix + node + "/";

    /// <summary>Serializes the record.</summary>
    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, ClusterJson.Default.AllocationRecord);

    /// <summary>Reads a record.</summary>
    public static AllocationRecord FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize(bytes, ClusterJson.Default.AllocationRecord) ?? throw new InvalidDataException("empty allocation record");
}

/// <summary>What an agent reported running of one deployment in its last heartbeat.</summary>
/// <param name="Deployment">The deployment.</param>
/// <param name="AllocationRevision">The allocation revision the pool runs.</param>
/// <param name="Instances">Instances live.</param>
/// <param name="Running">Whether it serves.</param>
public sealed record RunningReport(string Deployment, long AllocationRevision, int Instances, bool Running);
