using System.Text.Json;

namespace WarpGrid.Core.Oci.Signing;

/// <summary>
/// The names and layouts of cosign's signature formats (sigstore/cosign <c>specs/SIGNATURE_SPEC.md</c> and
/// <c>specs/BUNDLE_SPEC.md</c>): the simple-signing payload stored under <c>sha256-&lt;hex&gt;.sig</c>, and the Sigstore
/// bundle (a DSSE envelope over an in-toto statement) attached as an OCI 1.1 referrer.
/// </summary>
public static class CosignFormat
{
    /// <summary>The media type of a simple-signing payload layer in a <c>.sig</c> manifest.</summary>
    public const string SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json";

    /// <summary>The layer annotation that carries the base64 DER ECDSA signature over the payload bytes.</summary>
    public const string SignatureAnnotation = "dev.cosignproject.cosign/signature";

    /// <summary>The <c>critical.type</c> of a cosign simple-signing payload.</summary>
    public const string SignatureType = "cosign container image signature";

    /// <summary>The suffix of the tag that holds the signatures of a digest (<c>sha256-&lt;hex&gt;.sig</c>).</summary>
    public const string SignatureTagSuffix = ".sig";

    /// <summary>The Sigstore bundle media type (the referrer's <c>artifactType</c> and its layer's media type).</summary>
    public const string BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";

    /// <summary>The DSSE payload type of an in-toto statement.</summary>
    public const string InTotoPayloadType = "application/vnd.in-toto+json";

    /// <summary>The in-toto statement type, version 1.</summary>
    public const string InTotoStatementType = "https://in-toto.io/Statement/v1";

    /// <summary>The predicate type of the statement cosign signs for an image signature.</summary>
    public const string SignPredicateType = "https://sigstore.dev/cosign/sign/v1";

    /// <summary>The tag under which cosign keeps the simple-signing signatures of <paramref name="manifestDigest"/>: <c>sha256-&lt;hex&gt;.sig</c>.</summary>
    /// <exception cref="ArgumentException"><paramref name="manifestDigest"/> is not a valid sha256 digest.</exception>
    public static string SignatureTag(string manifestDigest) => OciRegistryClient.ReferrersFallbackTag(manifestDigest) + SignatureTagSuffix;

    /// <summary>
    /// The simple-signing payload for an artifact, as compact JSON:
    /// <c>{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},"type":"cosign container image signature"},"optional":…}</c>.
    /// </summary>
    /// <param name="dockerReference">The repository, <c>host[:port]/name</c>.</param>
    /// <param name="manifestDigest">The signed manifest's digest.</param>
    /// <param name="annotations">Claims for <c>optional</c> (sorted by key); <c>null</c> when none are given.</param>
    public static byte[] CreatePayload(string dockerReference, string manifestDigest, IReadOnlyDictionary<string, string>? annotations = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dockerReference);
        OciDigest.Validate(manifestDigest, nameof(manifestDigest));
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("critical");
            writer.WriteStartObject("identity");
            writer.WriteString("docker-reference", dockerReference);
            writer.WriteEndObject();
            writer.WriteStartObject("image");
            writer.WriteString("docker-manifest-digest", manifestDigest);
            writer.WriteEndObject();
            writer.WriteString("type", SignatureType);
            writer.WriteEndObject();
            if (annotations is null || annotations.Count == 0)
            {
                writer.WriteNull("optional");
            }
            else
            {
                writer.WriteStartObject("optional");
                foreach (KeyValuePair<string, string> entry in annotations.OrderBy(e => e.Key, StringComparer.Ordinal))
                {
                    writer.WriteString(entry.Key, entry.Value);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// The PAE (pre-authentication encoding) a DSSE signature is computed over:
    /// <c>"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body</c>, lengths in ASCII decimal bytes.
    /// </summary>
    public static byte[] PreAuthenticationEncoding(string payloadType, ReadOnlySpan<byte> body)
    {
        ArgumentNullException.ThrowIfNull(payloadType);
        byte[] type = System.Text.Encoding.UTF8.GetBytes(payloadType);
        byte[] head = System.Text.Encoding.ASCII.GetBytes(
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"DSSEv1 {type.Length} "));
        byte[] middle = System.Text.Encoding.ASCII.GetBytes(
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $" {body.Length} "));
        byte[] result = new byte[head.Length + type.Length + middle.Length + body.Length];
        head.CopyTo(result, 0);
        type.CopyTo(result, head.Length);
        middle.CopyTo(result, head.Length + type.Length);
        body.CopyTo(result.AsSpan(head.Length + type.Length + middle.Length));
        return result;
    }

    /// <summary>Reads <c>critical.type</c> and <c>critical.image.docker-manifest-digest</c> (keys compared case-insensitively, as cosign does).</summary>
    internal static bool TryReadPayload(ReadOnlySpan<byte> payload, out string? type, out string? digest, out string? error)
    {
        type = null;
        digest = null;
        try
        {
            var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = 32 });
            using JsonDocument document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object ||
                !TryGetObject(document.RootElement, "critical", out JsonElement critical))
            {
                error = "the payload has no 'critical' object";
                return false;
            }

            if (!TryGetProperty(critical, "type", out JsonElement typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                error = "the payload has no 'critical.type' string";
                return false;
            }

            type = typeElement.GetString();
            if (!TryGetObject(critical, "image", out JsonElement image) ||
                !TryGetProperty(image, "docker-manifest-digest", out JsonElement digestElement) || digestElement.ValueKind != JsonValueKind.String)
            {
                error = "the payload has no 'critical.image.docker-manifest-digest' string";
                return false;
            }

            digest = digestElement.GetString();
            error = null;
            return true;
        }
        catch (JsonException ex)
        {
            error = "the payload is not valid JSON: " + ex.Message;
            return false;
        }
    }

    internal static bool TryGetObject(JsonElement element, string name, out JsonElement value) =>
        TryGetProperty(element, name, out value) && value.ValueKind == JsonValueKind.Object;

    internal static bool TryGetProperty(JsonElement element, string name, out JsonElement value)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            if (element.TryGetProperty(name, out value))
            {
                return true;
            }

            foreach (JsonProperty property in element.EnumerateObject())
            {
                if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
                {
                    value = property.Value;
                    return true;
                }
            }
        }

        value = default;
        return false;
    }

    /// <summary>Decodes standard or URL-safe base64 (DSSE allows both), padded or not.</summary>
    internal static bool TryDecodeBase64(string? text, out byte[] bytes)
    {
        bytes = [];
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        string normal = text.Replace('-', '+').Replace('_', '/');
        normal = normal.PadRight(normal.Length + ((4 - (normal.Length % 4)) % 4), '=');
        byte[] buffer = new byte[normal.Length];
        if (!Convert.TryFromBase64String(normal, buffer, out int written))
        {
            return false;
        }

        bytes = buffer[..written];
        return true;
    }
}
