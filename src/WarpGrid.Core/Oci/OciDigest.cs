using System.Security.Cryptography;

namespace WarpGrid.Core.Oci;

/// <summary>sha256 content digests in their OCI form, <c>sha256:&lt;64 lowercase hex digits&gt;</c>.</summary>
public static class OciDigest
{
    /// <summary>The algorithm prefix.</summary>
    public const string Sha256Prefix = "sha256:";

    /// <summary>Hashes <paramref name="content"/>.</summary>
    public static string Compute(ReadOnlySpan<byte> content)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(content, hash);
        return FromHash(hash);
    }

    /// <summary>True when <paramref name="digest"/> is <c>sha256:</c> followed by 64 lowercase hex digits.</summary>
    public static bool IsValid(string? digest) => digest is not null && Problem(digest) is null;

    /// <summary>Throws unless <paramref name="digest"/> is a valid sha256 digest.</summary>
    /// <exception cref="ArgumentException">The digest is malformed or not sha256.</exception>
    public static void Validate(string digest, string paramName)
    {
        ArgumentNullException.ThrowIfNull(digest, paramName);
        if (Problem(digest) is { } problem)
        {
            throw new ArgumentException(problem + ".", paramName);
        }
    }

    internal static string FromHash(ReadOnlySpan<byte> hash) => Sha256Prefix + Convert.ToHexStringLower(hash);

    internal static string Hex(string digest) => digest[Sha256Prefix.Length..];

    /// <summary>What is wrong with <paramref name="digest"/>, or null.</summary>
    internal static string? Problem(string digest)
    {
        int colon = digest.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return $"digest '{Shorten(digest)}' is not of the form sha256:<64 lowercase hex digits>";
        }

        string algorithm = digest[..colon];
        if (!string.Equals(algorithm, "sha256", StringComparison.Ordinal))
        {
            return $"digest algorithm '{Shorten(algorithm)}' is not supported; only sha256 digests are";
        }

        string hex = digest[(colon + 1)..];
        if (hex.Length != 64 || !hex.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            return $"digest '{Shorten(digest)}' must be sha256: followed by 64 lowercase hex digits";
        }

        return null;
    }

    private static string Shorten(string text) => text.Length <= 100 ? text : text[..100] + "…";
}
