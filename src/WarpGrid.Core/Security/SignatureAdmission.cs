using System.Security.Cryptography;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Oci.Signing;

namespace WarpGrid.Core.Security;

/// <summary>
/// In a namespace with <see cref="NamespaceRecord.RequireSignatures"/>, admits only modules deployed by OCI reference
/// whose manifest digest carries a cosign signature (legacy <c>.sig</c> tag or a v3 bundle) by one of the namespace's
/// <see cref="NamespaceRecord.SigningKeys"/>; checked before anything is stored or runs.
/// </summary>
public sealed class SignatureAdmission(AccessControl access, OciRegistryClient registry) : IDeploymentAdmission
{
    /// <inheritdoc />
    public async ValueTask AdmitAsync(DeploymentAdmission admission, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(admission);
        var ns = await access.GetNamespaceAsync(admission.Namespace, cancellationToken).ConfigureAwait(false);
        if (ns is not { RequireSignatures: true })
        {
            return;
        }

        if (admission.Reference is null || admission.ManifestDigest is null)
        {
            throw new DeploymentAdmissionException("signature_required", $"namespace '{ns.Name}' requires signed modules: deploy an OCI reference signed with one of its keys (warp push, warp sign, then warp deploy REFERENCE); uploaded module bytes cannot carry a signature");
        }

        if (!OciReference.TryParse(admission.Reference, out var reference, out var error))
        {
            throw new DeploymentAdmissionException("signature_required", $"reference '{admission.Reference}': {error}");
        }

        var keys = new List<ECDsa>();
        try
        {
            foreach (var pem in ns.SigningKeys)
            {
                keys.Add(CosignKeys.LoadPublic(pem));
            }

            SignatureVerification result;
            try
            {
                result = await CosignVerifier.VerifyAsync(registry, reference!, admission.ManifestDigest, keys, cancellationToken).ConfigureAwait(false);
            }
            catch (OciException ex)
            {
                throw new DeploymentAdmissionException("signature_unverifiable", $"the signature of {admission.Reference} could not be read: {ex.Message}");
            }

            if (!result.Verified)
            {
                throw new DeploymentAdmissionException("signature_refused", $"{admission.Reference}@{admission.ManifestDigest} is refused by namespace '{ns.Name}': {result.Reason}");
            }
        }
        finally
        {
            foreach (var key in keys)
            {
                key.Dispose();
            }
        }
    }
}
