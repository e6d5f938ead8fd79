using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Deployments;

/// <summary>What an admission check sees of a create or update, before anything is stored.</summary>
/// <param name="Manifest">The new manifest.</param>
/// <param name="ModuleBytes">The module's size.</param>
/// <param name="Reference">The OCI reference it was pulled from, if any.</param>
/// <param name="ManifestDigest">The OCI manifest digest the reference resolved to, if any.</param>
/// <param name="Existing">The deployment's current record, on an update.</param>
/// <param name="Others">Every other deployment's record.</param>
public sealed record DeploymentAdmission(
    WarpManifest Manifest,
    long ModuleBytes,
    string? Reference,
    string? ManifestDigest,
    DeploymentRecord? Existing,
    IReadOnlyList<DeploymentRecord> Others)
{
    /// <summary>The namespace the deployment goes to.</summary>
    public string Namespace => Manifest.Package.Namespace;
}

/// <summary>A check a deployment must pass to be stored (quotas, signature policies). One class, one line to register.</summary>
public interface IDeploymentAdmission
{
    /// <summary>Refuses the change by throwing <see cref="DeploymentAdmissionException"/>; returns to admit it.</summary>
    ValueTask AdmitAsync(DeploymentAdmission admission, CancellationToken cancellationToken);
}

/// <summary>Thrown by an <see cref="IDeploymentAdmission"/>: the API answers 403 with the code and message.</summary>
public sealed class DeploymentAdmissionException(string code, string message) : Exception(message)
{
    /// <summary>A machine-readable code, e.g. <c>quota_exceeded</c> or <c>signature_required</c>.</summary>
    public string Code { get; } = code;
}
