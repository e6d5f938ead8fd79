using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace WarpGrid.Core.Oci;

/// <summary>
/// A repository in an OCI registry: <c>host[:port]/path/to/repo</c>. Created by <see cref="Parse"/> or taken from an
/// <see cref="OciReference"/>; always valid.
/// </summary>
public sealed class OciRepository : IEquatable<OciRepository>
{
    internal OciRepository(string registry, string name)
    {
        Registry = registry;
        Name = name;
    }

    /// <summary>The registry host, with the port when one was given (<c>127.0.0.1:5000</c>, <c>ghcr.io</c>); lowercase.</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry (<c>warpgrid/hello</c>).</summary>
    public string Name { get; }

    /// <summary>True when the registry host is <c>localhost</c> or a loopback address.</summary>
    public bool IsLoopback => OciReference.IsLoopbackRegistry(Registry);

    /// <summary>Parses <c>host[:port]/repo/path</c>; a tag or digest is not allowed here.</summary>
    /// <exception cref="FormatException">The text is not a repository; the message names the bad part.</exception>
    public static OciRepository Parse(string repository)
    {
        ArgumentNullException.ThrowIfNull(repository);
        if (!OciReference.TryParseCore(repository, requireNoTagOrDigest: true, out OciReference? parsed, out string? error))
        {
            throw new FormatException(error);
        }

        return parsed.RepositoryReference;
    }

    /// <summary>Returns a reference to <paramref name="tag"/> in this repository.</summary>
    /// <exception cref="FormatException"><paramref name="tag"/> is not a valid tag.</exception>
    public OciReference WithTag(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (!OciReference.IsValidTag(tag))
        {
            throw new FormatException(OciReference.TagError(this + ":" + tag, tag));
        }

        return new OciReference(Registry, Name, tag, null);
    }

    /// <summary>Returns a reference to the manifest <paramref name="digest"/> in this repository.</summary>
    /// <exception cref="FormatException"><paramref name="digest"/> is not <c>sha256:</c> + 64 lowercase hex digits.</exception>
    public OciReference WithDigest(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        if (OciDigest.Problem(digest) is { } problem)
        {
            throw new FormatException($"Invalid OCI reference '{this}@{digest}': {problem}.");
        }

        return new OciReference(Registry, Name, null, digest);
    }

    /// <inheritdoc />
    public bool Equals(OciRepository? other) =>
        other is not null && string.Equals(Registry, other.Registry, StringComparison.Ordinal) && string.Equals(Name, other.Name, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as OciRepository);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Registry, Name);

    /// <summary><c>host[:port]/name</c>.</summary>
    public override string ToString() => Registry + "/" + Name;
}

/// <summary>
/// A reference to a manifest in an OCI registry: <c>host[:port]/repo/path[:tag][@sha256:&lt;hex&gt;]</c>, following the
/// grammar of the OCI distribution specification and of <c>distribution/reference</c>.
/// </summary>
/// <remarks>
/// <para>The registry host is required (there is no implicit Docker Hub): the first path component must contain a
/// <c>.</c> or a <c>:</c>, be <c>localhost</c>, or be a bracketed IPv6 address.</para>
/// <para>Repository path components are lowercase letters and digits separated by <c>.</c>, <c>_</c>, <c>__</c> or
/// runs of <c>-</c>; the whole name (host included) is at most 255 characters. Tags are
/// <c>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}</c>. Digests must be sha256.</para>
/// <para>A reference with neither tag nor digest refers to the tag <c>latest</c>. A reference with both is pinned to
/// the digest; the tag is kept for display and for pushes.</para>
/// </remarks>
public sealed partial class OciReference : IEquatable<OciReference>
{
    /// <summary>The tag used when a reference names neither a tag nor a digest.</summary>
    public const string DefaultTag = "latest";

    private const int MaxNameLength = 255;

    internal OciReference(string registry, string repository, string? tag, string? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host, with the port when one was given (<c>127.0.0.1:5000</c>, <c>ghcr.io</c>); lowercase.</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry (<c>warpgrid/hello</c>).</summary>
    public string Repository { get; }

    /// <summary>The tag, or null when the reference is by digest only.</summary>
    public string? Tag { get; }

    /// <summary>The manifest digest (<c>sha256:&lt;hex&gt;</c>), or null when the reference is by tag only.</summary>
    public string? Digest { get; }

    /// <summary>What the registry's <c>/manifests/&lt;reference&gt;</c> endpoint is asked for: the digest if there is one, else the tag.</summary>
    public string ManifestReference => Digest ?? Tag ?? DefaultTag;

    /// <summary>The repository this reference points into.</summary>
    public OciRepository RepositoryReference => new(Registry, Repository);

    /// <summary>True when the registry host is <c>localhost</c> or a loopback address.</summary>
    public bool IsLoopback => IsLoopbackRegistry(Registry);

    /// <summary>Parses a reference.</summary>
    /// <param name="reference"><c>host[:port]/repo/path[:tag][@sha256:&lt;hex&gt;]</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="reference"/> is null.</exception>
    /// <exception cref="FormatException">The reference is malformed; the message quotes it and names the bad part.</exception>
    public static OciReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (!TryParseCore(reference, requireNoTagOrDigest: false, out OciReference? parsed, out string? error))
        {
            throw new FormatException(error);
        }

        return parsed;
    }

    /// <summary>Parses a reference; false (with the reason in <paramref name="error"/>) when it is malformed.</summary>
    public static bool TryParse([NotNullWhen(true)] string? reference, [NotNullWhen(true)] out OciReference? result, [NotNullWhen(false)] out string? error)
    {
        if (reference is null)
        {
            result = null;
            error = "The OCI reference is null.";
            return false;
        }

        return TryParseCore(reference, requireNoTagOrDigest: false, out result, out error);
    }

    /// <summary>This reference pinned to <paramref name="digest"/> (the tag is kept).</summary>
    public OciReference WithDigest(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        if (OciDigest.Problem(digest) is { } problem)
        {
            throw new FormatException($"Invalid OCI reference '{RepositoryReference}@{digest}': {problem}.");
        }

        return new OciReference(Registry, Repository, Tag, digest);
    }

    /// <inheritdoc />
    public bool Equals(OciReference? other) =>
        other is not null &&
        string.Equals(Registry, other.Registry, StringComparison.Ordinal) &&
        string.Equals(Repository, other.Repository, StringComparison.Ordinal) &&
        string.Equals(Tag, other.Tag, StringComparison.Ordinal) &&
        string.Equals(Digest, other.Digest, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as OciReference);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Registry, Repository, Tag, Digest);

    /// <summary>The canonical text: <c>host[:port]/repo[:tag][@digest]</c>.</summary>
    public override string ToString() =>
        Registry + "/" + Repository + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    internal static bool IsLoopbackRegistry(string registry)
    {
        string host = HostWithoutPort(registry);
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? address) && IPAddress.IsLoopback(address);
    }

    internal static string HostWithoutPort(string registry)
    {
        if (registry.StartsWith('['))
        {
            int close = registry.IndexOf(']', StringComparison.Ordinal);
            return close < 0 ? registry : registry[..(close + 1)];
        }

        int colon = registry.LastIndexOf(':');
        return colon < 0 ? registry : registry[..colon];
    }

    internal static bool IsValidTag(string tag) => TagRegex().IsMatch(tag);

    internal static string TagError(string reference, string tag) =>
        $"Invalid OCI reference '{reference}': tag '{tag}' is not valid; a tag is 1 to 128 characters from [A-Za-z0-9_.-] and cannot start with '.' or '-'.";

    internal static bool TryParseCore(string text, bool requireNoTagOrDigest, [NotNullWhen(true)] out OciReference? result, [NotNullWhen(false)] out string? error)
    {
        result = null;
        string what = requireNoTagOrDigest ? "repository" : "reference";
        string Fail(string reason) => $"Invalid OCI {what} '{text}': {reason}.";

        if (text.Length == 0 || string.IsNullOrWhiteSpace(text))
        {
            error = $"Invalid OCI {what}: it is empty; expected host[:port]/repository" + (requireNoTagOrDigest ? "." : "[:tag][@sha256:<hex>].");
            return false;
        }

        if (text.Any(char.IsWhiteSpace))
        {
            error = Fail("it contains whitespace");
            return false;
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            error = Fail("it must not include a URL scheme; write host[:port]/repository (loopback hosts use http, others https unless listed in OciClientOptions.InsecureRegistries)");
            return false;
        }

        string rest = text;
        string? digest = null;
        int at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (OciDigest.Problem(digest) is { } problem)
            {
                error = Fail(problem);
                return false;
            }
        }

        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            error = Fail("it has no registry host; write it as host[:port]/repository[:tag], for example 127.0.0.1:5000/hello:1.0");
            return false;
        }

        string host = rest[..slash];
        string path = rest[(slash + 1)..];
        if (!LooksLikeHost(host))
        {
            error = Fail($"it must start with a registry host, and '{host}' is not one (a host contains a '.' or a ':', or is 'localhost'); " +
                $"for example registry.example.com/{rest} or 127.0.0.1:5000/{rest}");
            return false;
        }

        if (HostProblem(host) is { } hostProblem)
        {
            error = Fail(hostProblem);
            return false;
        }

        string? tag = null;
        int lastSlash = path.LastIndexOf('/');
        int colon = path.IndexOf(':', lastSlash + 1);
        if (colon >= 0)
        {
            tag = path[(colon + 1)..];
            path = path[..colon];
            if (!IsValidTag(tag))
            {
                error = TagError(text, tag);
                return false;
            }
        }

        if (path.Length == 0)
        {
            error = Fail("the repository name is empty");
            return false;
        }

        foreach (string component in path.Split('/'))
        {
            if (component.Length == 0)
            {
                error = Fail("the repository name has an empty path component (two '/' in a row, or a trailing '/')");
                return false;
            }

            if (!PathComponentRegex().IsMatch(component))
            {
                error = PathComponentRegex().IsMatch(component.ToLowerInvariant())
                    ? Fail($"repository path component '{component}' must be lowercase ('{component.ToLowerInvariant()}')")
                    : Fail($"repository path component '{component}' is not valid; use lowercase letters and digits separated by '.', '_', '__' or '-'");
                return false;
            }
        }

        string registry = host.ToLowerInvariant();
        if (registry.Length + 1 + path.Length > MaxNameLength)
        {
            error = Fail($"the name '{registry}/{path}' is longer than {MaxNameLength} characters");
            return false;
        }

        if (requireNoTagOrDigest && (tag is not null || digest is not null))
        {
            error = Fail("a repository cannot have a tag or a digest here");
            return false;
        }

        if (tag is null && digest is null && !requireNoTagOrDigest)
        {
            tag = DefaultTag;
        }

        result = new OciReference(registry, path, tag, digest);
        error = null;
        return true;
    }

    private static bool LooksLikeHost(string host) =>
        host.Contains('.', StringComparison.Ordinal) || host.Contains(':', StringComparison.Ordinal) ||
        host.StartsWith('[') || string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase);

    private static string? HostProblem(string host)
    {
        string name = host;
        string? port = null;
        if (host.StartsWith('['))
        {
            int close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !IPAddress.TryParse(host[1..close], out IPAddress? v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return $"registry host '{host}' is not a valid bracketed IPv6 address";
            }

            string after = host[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    return $"registry host '{host}' has unexpected text after the IPv6 address";
                }

                port = after[1..];
            }
        }
        else
        {
            int colon = host.LastIndexOf(':');
            if (colon >= 0)
            {
                name = host[..colon];
                port = host[(colon + 1)..];
            }

            if (name.Length == 0 || !HostNameRegex().IsMatch(name))
            {
                return $"registry host '{name}' is not a valid host name or IPv4 address";
            }
        }

        if (port is not null &&
            (port.Length == 0 || port.Length > 5 || !port.All(char.IsAsciiDigit) ||
             int.Parse(port, NumberStyles.None, CultureInfo.InvariantCulture) is < 1 or > 65535))
        {
            return $"registry port '{port}' is not a number from 1 to 65535";
        }

        return null;
    }

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex PathComponentRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*$", RegexOptions.CultureInvariant)]
    private static partial Regex HostNameRegex();
}
