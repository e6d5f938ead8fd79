using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Security;

/// <summary>What a namespace uses of its quota.</summary>
/// <param name="MemoryBytes">Sum of memory_limit × max_instances.</param>
/// <param name="Instances">Sum of max_instances.</param>
/// <param name="Deployments">Deployments.</param>
/// <param name="ModuleBytes">Sum of module sizes.</param>
public sealed record NamespaceUsage(long MemoryBytes, int Instances, int Deployments, long ModuleBytes)
{
    /// <summary>The use of the deployments in <paramref name="records"/> that belong to <paramref name="ns"/>.</summary>
    public static NamespaceUsage Of(string ns, IEnumerable<DeploymentRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        long memory = 0, modules = 0;
        int instances = 0, deployments = 0;
        foreach (var record in records.Where(r => r.Namespace == ns))
        {
            deployments++;
            modules += record.ModuleBytes;
            try
            {
                var manifest = ManifestParser.ParseOrThrow(record.Manifest);
                instances += manifest.Runtime.MaxInstances;
                memory += manifest.Runtime.Resources.MemoryLimitBytes * manifest.Runtime.MaxInstances;
            }
            catch (ManifestException)
            {
                // an unreadable stored manifest counts for its module only
            }
        }

        return new NamespaceUsage(memory, instances, deployments, modules);
    }

    /// <summary>This use plus one deployment.</summary>
    public NamespaceUsage Plus(WarpManifest manifest, long moduleBytes) => new(
        MemoryBytes + (manifest.Runtime.Resources.MemoryLimitBytes * manifest.Runtime.MaxInstances),
        Instances + manifest.Runtime.MaxInstances,
        Deployments + 1,
        ModuleBytes + moduleBytes);
}

/// <summary>
/// Refuses a create or update that would take its namespace past a quota: total memory (memory_limit × max_instances
/// of every deployment), instances (max_instances), deployments and module bytes. Counting max_instances means the
/// autoscaler can never scale a namespace past its quota.
/// </summary>
public sealed class NamespaceQuotaAdmission(AccessControl access) : IDeploymentAdmission
{
    /// <inheritdoc />
    public async ValueTask AdmitAsync(DeploymentAdmission admission, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admission);
        var ns = admission.Namespace;
        var record = await access.GetNamespaceAsync(ns, cancellationToken).ConfigureAwait(false)
            ?? throw new DeploymentAdmissionException("namespace_not_found", $"namespace '{ns}' does not exist (create it with: warp namespaces create {ns})");
        if (record.Quota is not { } quota)
        {
            return;
        }

        var current = NamespaceUsage.Of(ns, admission.Others);
        var next = current.Plus(admission.Manifest, admission.ModuleBytes);
        Check("memory", quota.MemoryBytes, next.MemoryBytes, current.MemoryBytes, ByteSize.Format);
        Check("instances", quota.Instances, next.Instances, current.Instances, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Check("deployments", quota.Deployments, next.Deployments, current.Deployments, v => v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Check("module_bytes", quota.ModuleBytes, next.ModuleBytes, current.ModuleBytes, ByteSize.Format);

        void Check(string what, long? limit, long wanted, long used, Func<long, string> format)
        {
            if (limit is { } l && wanted > l)
            {
                throw new DeploymentAdmissionException("quota_exceeded", $"namespace '{ns}' quota {what} exceeded: limit {format(l)}, in use {format(used)} by other deployments, this deployment needs {format(wanted - used)}");
            }
        }
    }
}
