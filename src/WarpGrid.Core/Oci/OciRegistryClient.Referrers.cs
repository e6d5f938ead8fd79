using System.Net;
using System.Net.Http.Headers;

namespace WarpGrid.Core.Oci;

public sealed partial class OciRegistryClient
{
    /// <summary>The tag of the OCI 1.1 referrers tag schema for <paramref name="digest"/>: <c>sha256-&lt;hex&gt;</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="digest"/> is not a valid sha256 digest.</exception>
    public static string ReferrersFallbackTag(string digest)
    {
        OciDigest.Validate(digest, nameof(digest));
        return "sha256-" + OciDigest.Hex(digest);
    }

    /// <summary>
    /// Lists the manifests that refer to <paramref name="digest"/> through their <c>subject</c>: the referrers API
    /// (<c>GET /v2/&lt;name&gt;/referrers/&lt;digest&gt;</c>) when the registry has it; when it answers 404 (no referrers
    /// API, as CNCF distribution 2.x), the index under the fallback tag <see cref="ReferrersFallbackTag"/>.
    /// </summary>
    /// <remarks>
    /// A fallback tag that holds an image manifest rather than an index is returned as one descriptor of that manifest
    /// (its <c>artifactType</c>, else its config media type, and its annotations). No fallback tag: an empty list.
    /// </remarks>
    /// <param name="repository">The repository of the subject.</param>
    /// <param name="digest">The subject's manifest digest.</param>
    /// <param name="cancellationToken">Cancels the requests.</param>
    /// <exception cref="OciInvalidArtifactException">The referrers answer or the fallback tag's content is not an index or a manifest.</exception>
    /// <exception cref="OciAuthenticationException">Credentials were missing or refused.</exception>
    /// <exception cref="OciRegistryUnavailableException">The registry could not be reached after retries.</exception>
    public async Task<IReadOnlyList<OciDescriptor>> GetReferrersAsync(OciRepository repository, string digest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        OciDigest.Validate(digest, nameof(digest));
        var retry = new RetryState();
        var uri = new Uri(BaseUrl(repository.Registry) + repository.Name + "/referrers/" + digest);
        var request = new OciRequest(repository.Registry, HttpMethod.Get, uri, PullScope(repository.Name))
        {
            Configure = message => message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(OciMediaTypes.ImageIndex)),
        };
        while (true)
        {
            using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return await GetFallbackReferrersAsync(repository, digest, cancellationToken).ConfigureAwait(false);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw await UnexpectedAsync(request, response, $"list the referrers of {repository}@{digest}", cancellationToken).ConfigureAwait(false);
            }

            byte[] body;
            try
            {
                body = await ReadLimitedAsync(response, _options.MaxManifestBytes, $"the referrers of {repository}@{digest}", repository.Registry, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransientFailure(ex, cancellationToken))
            {
                await BackOffAsync(request, retry, ex, null, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return OciImageIndex.Parse(body, $"of the referrers of {repository}@{digest}").Manifests;
        }
    }

    private async Task<IReadOnlyList<OciDescriptor>> GetFallbackReferrersAsync(OciRepository repository, string digest, CancellationToken cancellationToken)
    {
        OciReference tag = repository.WithTag(ReferrersFallbackTag(digest));
        OciManifestResult fetched;
        try
        {
            fetched = await GetManifestAsync(tag, cancellationToken).ConfigureAwait(false);
        }
        catch (OciNotFoundException)
        {
            return [];
        }

        if (fetched.MediaType is OciMediaTypes.ImageIndex or OciMediaTypes.DockerManifestList)
        {
            return OciImageIndex.Parse(fetched.Content, tag.ToString()).Manifests;
        }

        OciImageManifest manifest = OciImageManifest.Parse(fetched.Content, tag.ToString());
        return
        [
            new OciDescriptor(fetched.MediaType.Length > 0 ? fetched.MediaType : OciMediaTypes.ImageManifest, fetched.Digest, fetched.Content.Length)
            {
                ArtifactType = manifest.ArtifactType ?? manifest.Config.MediaType,
                Annotations = manifest.Annotations,
            },
        ];
    }
}
