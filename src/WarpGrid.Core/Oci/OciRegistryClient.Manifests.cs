using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace WarpGrid.Core.Oci;

public sealed partial class OciRegistryClient
{
    private const int TagsBodyLimit = 16 * 1024 * 1024;
    private const int MaxTagPages = 100_000;

    /// <summary>
    /// Resolves a reference to its manifest digest with <c>HEAD</c> (falling back to <c>GET</c> when the registry sends
    /// no <c>Docker-Content-Digest</c> or does not support HEAD). A reference by digest is checked to exist.
    /// </summary>
    /// <exception cref="OciNotFoundException">The tag, manifest or repository does not exist.</exception>
    /// <exception cref="OciAuthenticationException">Credentials were missing or refused.</exception>
    /// <exception cref="OciRegistryUnavailableException">The registry could not be reached after retries.</exception>
    public async Task<string> ResolveAsync(OciReference reference, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var request = new OciRequest(reference.Registry, HttpMethod.Head, ManifestUri(reference), PullScope(reference.Repository)) { AcceptManifests = true };
        using (HttpResponseMessage response = await SendAsync(request, new RetryState(), cancellationToken).ConfigureAwait(false))
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw new OciNotFoundException(ManifestNotFound(reference, []), reference.Registry);
            }

            if (response.IsSuccessStatusCode)
            {
                string? digest = HeaderValue(response, "Docker-Content-Digest");
                if (reference.Digest is not null)
                {
                    return reference.Digest;
                }

                if (OciDigest.IsValid(digest))
                {
                    return digest!;
                }
            }
            else if (response.StatusCode is not (HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotImplemented or HttpStatusCode.BadRequest))
            {
                throw await UnexpectedAsync(request, response, $"resolve {reference}", cancellationToken).ConfigureAwait(false);
            }
        }

        OciManifestResult manifest = await GetManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        return manifest.Digest;
    }

    /// <summary>
    /// Fetches a manifest by tag or digest, sending the OCI and Docker manifest media types in <c>Accept</c>. The digest
    /// is always computed over the bytes received; when fetched by digest, or when the registry states one, a mismatch
    /// is an error.
    /// </summary>
    /// <exception cref="OciNotFoundException">The tag, manifest or repository does not exist.</exception>
    /// <exception cref="OciDigestMismatchException">The bytes do not hash to the digest asked for or stated by the registry.</exception>
    /// <exception cref="OciSizeLimitException">The manifest is larger than <see cref="OciClientOptions.MaxManifestBytes"/>.</exception>
    public async Task<OciManifestResult> GetManifestAsync(OciReference reference, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var retry = new RetryState();
        var request = new OciRequest(reference.Registry, HttpMethod.Get, ManifestUri(reference), PullScope(reference.Repository)) { AcceptManifests = true };
        while (true)
        {
            using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
                throw new OciNotFoundException(ManifestNotFound(reference, errors), reference.Registry, errors);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw await UnexpectedAsync(request, response, $"fetch the manifest of {reference}", cancellationToken).ConfigureAwait(false);
            }

            byte[] content;
            try
            {
                content = await ReadLimitedAsync(response, _options.MaxManifestBytes, $"the manifest of {reference}", reference.Registry, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransientFailure(ex, cancellationToken))
            {
                await BackOffAsync(request, retry, ex, null, cancellationToken).ConfigureAwait(false);
                continue;
            }

            string digest = OciDigest.Compute(content);
            if (reference.Digest is not null && !string.Equals(reference.Digest, digest, StringComparison.Ordinal))
            {
                throw new OciDigestMismatchException(
                    $"The manifest of {reference} from registry {reference.Registry} hashes to {digest}, not to the digest asked for ({reference.Digest}); it was discarded.",
                    reference.Digest, digest, reference.Registry);
            }

            string? stated = HeaderValue(response, "Docker-Content-Digest");
            if (stated is not null && stated.StartsWith(OciDigest.Sha256Prefix, StringComparison.Ordinal) && !string.Equals(stated, digest, StringComparison.Ordinal))
            {
                throw new OciDigestMismatchException(
                    $"The manifest of {reference} from registry {reference.Registry} hashes to {digest}, but the registry states {stated}; it was discarded.",
                    stated, digest, reference.Registry);
            }

            string? mediaType = response.Content.Headers.ContentType?.MediaType;
            if (string.IsNullOrEmpty(mediaType) || mediaType is "application/json" or "text/plain" or "application/octet-stream")
            {
                mediaType = MediaTypeField(content) ?? mediaType ?? "";
            }

            return new OciManifestResult(content, mediaType, digest);
        }
    }

    /// <summary>
    /// Uploads a manifest to the reference's tag (or, for a reference by digest only, to its digest). The blobs it
    /// references must already be in the repository. Returns the manifest's digest, cross-checked against the
    /// registry's <c>Docker-Content-Digest</c>.
    /// </summary>
    /// <param name="reference">Where to put it. When it has a digest, the manifest must hash to it.</param>
    /// <param name="manifest">The manifest bytes, sent exactly as given.</param>
    /// <param name="mediaType">The manifest's media type (the <c>Content-Type</c>), e.g. <see cref="OciMediaTypes.ImageManifest"/>.</param>
    /// <param name="cancellationToken">Cancels the upload.</param>
    public async Task<string> PutManifestAsync(OciReference reference, ReadOnlyMemory<byte> manifest, string mediaType, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentException.ThrowIfNullOrWhiteSpace(mediaType);
        if (manifest.Length > _options.MaxManifestBytes)
        {
            throw new OciSizeLimitException($"The manifest for {reference} is {manifest.Length} bytes, more than OciClientOptions.MaxManifestBytes ({_options.MaxManifestBytes}).", _options.MaxManifestBytes, manifest.Length, reference.Registry);
        }

        string digest = OciDigest.Compute(manifest.Span);
        if (reference.Digest is not null && !string.Equals(reference.Digest, digest, StringComparison.Ordinal))
        {
            throw new OciDigestMismatchException($"The manifest to push to {reference} hashes to {digest}, not to the reference's digest; nothing was pushed.", reference.Digest, digest, reference.Registry);
        }

        string target = reference.Tag ?? digest;
        var uri = new Uri(BaseUrl(reference.Registry) + reference.Repository + "/manifests/" + target);
        var request = new OciRequest(reference.Registry, HttpMethod.Put, uri, PushScope(reference.Repository))
        {
            Content = () =>
            {
                var content = new ReadOnlyMemoryContent(manifest);
                content.Headers.TryAddWithoutValidation("Content-Type", mediaType);
                return content;
            },
        };

        using HttpResponseMessage response = await SendAsync(request, new RetryState(), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await UnexpectedAsync(request, response, $"store the manifest {reference.Repository}:{target}", cancellationToken).ConfigureAwait(false);
        }

        string? stated = HeaderValue(response, "Docker-Content-Digest");
        if (stated is not null && stated.StartsWith(OciDigest.Sha256Prefix, StringComparison.Ordinal) && !string.Equals(stated, digest, StringComparison.Ordinal))
        {
            throw new OciDigestMismatchException($"Registry {reference.Registry} stored the manifest for {reference} as {stated}, but it hashes to {digest}.", digest, stated, reference.Registry);
        }

        Log.ManifestPushed(_logger, digest, reference.RepositoryReference + ":" + target);
        return digest;
    }

    /// <summary>
    /// Serializes <paramref name="manifest"/> (<see cref="OciImageManifest.ToJson"/>) and uploads it to the reference's tag
    /// (or digest), as <see cref="PutManifestAsync(OciReference, ReadOnlyMemory{byte}, string, CancellationToken)"/>
    /// does with its media type (the OCI image manifest type when it names none). Returns the manifest's digest.
    /// </summary>
    /// <param name="reference">Where to put it.</param>
    /// <param name="manifest">The manifest; its config and layer blobs must already be in the repository.</param>
    /// <param name="cancellationToken">Cancels the upload.</param>
    public Task<string> PutManifestAsync(OciReference reference, OciImageManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(manifest);
        return PutManifestAsync(reference, manifest.ToJson(), manifest.MediaType ?? OciMediaTypes.ImageManifest, cancellationToken);
    }

    /// <summary>Lists the tags of a repository, following <c>Link</c> pagination to the end.</summary>
    /// <exception cref="OciNotFoundException">The repository does not exist.</exception>
    public async Task<IReadOnlyList<string>> ListTagsAsync(OciRepository repository, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var tags = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string url = BaseUrl(repository.Registry) + repository.Name + "/tags/list" + (_options.TagsPageSize > 0 ? "?n=" + _options.TagsPageSize : "");
        var retry = new RetryState();
        for (int page = 0; page < MaxTagPages; page++)
        {
            var request = new OciRequest(repository.Registry, HttpMethod.Get, new Uri(url), PullScope(repository.Name));
            using HttpResponseMessage response = await SendAsync(request, retry, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
                throw new OciNotFoundException($"Repository {repository} not found{ErrorsText(errors)}.", repository.Registry, errors);
            }

            if (!response.IsSuccessStatusCode)
            {
                throw await UnexpectedAsync(request, response, $"list the tags of {repository}", cancellationToken).ConfigureAwait(false);
            }

            byte[] body;
            try
            {
                body = await ReadLimitedAsync(response, TagsBodyLimit, $"the tag list of {repository}", repository.Registry, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransientFailure(ex, cancellationToken))
            {
                await BackOffAsync(request, retry, ex, null, cancellationToken).ConfigureAwait(false);
                page--;
                continue;
            }

            foreach (string tag in ParseTags(body, repository))
            {
                if (seen.Add(tag))
                {
                    tags.Add(tag);
                }
            }

            string? next = NextLink(response);
            if (next is null)
            {
                return tags;
            }

            string nextUrl = new Uri(new Uri(url), next).AbsoluteUri;
            if (string.Equals(nextUrl, url, StringComparison.Ordinal))
            {
                return tags;
            }

            url = nextUrl;
        }

        throw new OciException($"Registry {repository.Registry} returned more than {MaxTagPages} pages of tags for {repository}; giving up.", repository.Registry);
    }

    private static IEnumerable<string> ParseTags(byte[] body, OciRepository repository)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new OciException($"Registry {repository.Registry} sent a tag list for {repository} that is not a JSON object.", repository.Registry);
            }

            if (!document.RootElement.TryGetProperty("tags", out JsonElement tags) || tags.ValueKind == JsonValueKind.Null)
            {
                return [];
            }

            if (tags.ValueKind != JsonValueKind.Array)
            {
                throw new OciException($"Registry {repository.Registry} sent a tag list for {repository} whose 'tags' is not an array.", repository.Registry);
            }

            return tags.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!).ToList();
        }
        catch (JsonException ex)
        {
            throw new OciException($"Registry {repository.Registry} sent a tag list for {repository} that is not valid JSON: {ex.Message}", repository.Registry, innerException: ex);
        }
    }

    /// <summary>The target of a <c>Link: &lt;url&gt;; rel="next"</c> header, or null.</summary>
    internal static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.TryGetValues("Link", out HeaderStringValues values))
        {
            return null;
        }

        foreach (string header in values)
        {
            int i = 0;
            while (i < header.Length)
            {
                int open = header.IndexOf('<', i);
                if (open < 0)
                {
                    break;
                }

                int close = header.IndexOf('>', open + 1);
                if (close < 0)
                {
                    break;
                }

                int end = header.IndexOf('<', close + 1);
                string parameters = end < 0 ? header[(close + 1)..] : header[(close + 1)..end];
                foreach (string parameter in parameters.Split(';', ',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    string[] pair = parameter.Split('=', 2, StringSplitOptions.TrimEntries);
                    if (pair.Length == 2 && string.Equals(pair[0], "rel", StringComparison.OrdinalIgnoreCase) &&
                        pair[1].Trim('"').Split(' ').Contains("next", StringComparer.OrdinalIgnoreCase))
                    {
                        return header[(open + 1)..close];
                    }
                }

                i = end < 0 ? header.Length : end;
            }
        }

        return null;
    }

    private static string ManifestNotFound(OciReference reference, IReadOnlyList<OciError> errors)
    {
        string subject = reference.Digest is not null ? "manifest " + reference.Digest : "tag " + reference.Tag;
        bool repositoryUnknown = errors.Any(e => e.Code == "NAME_UNKNOWN");
        return $"OCI manifest not found: {subject} not found in {reference.RepositoryReference}" +
            (repositoryUnknown ? " (the repository does not exist)" : "") + ErrorsText(errors) + ".";
    }

    private static string? MediaTypeField(byte[] content)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(content);
            return document.RootElement.ValueKind == JsonValueKind.Object &&
                document.RootElement.TryGetProperty("mediaType", out JsonElement mediaType) && mediaType.ValueKind == JsonValueKind.String
                ? mediaType.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
