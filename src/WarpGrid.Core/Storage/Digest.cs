using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace WarpGrid.Core.Storage;

/// <summary>
/// A content digest in its canonical text form <c>sha256:&lt;64 lowercase hex digits&gt;</c>, as used to name blobs
/// (the same form as OCI image digests).
/// </summary>
public readonly record struct Digest
{
    /// <summary>The algorithm prefix, including the colon.</summary>
    public const string Sha256Prefix = "sha256:";

    /// <summary>The length of a digest string: the prefix plus 64 hex digits.</summary>
    public const int Length = 7 + 64;

    private readonly string? _value;

    private Digest(string value) => _value = value;

    /// <summary>The 64 lowercase hex digits of the SHA-256 hash.</summary>
    public string Hex => Value[Sha256Prefix.Length..];

    /// <summary>The canonical form, <c>sha256:&lt;hex&gt;</c>.</summary>
    public string Value => _value ?? Sha256Prefix + new string('0', 64);

    /// <summary>Hashes <paramref name="data"/> with SHA-256.</summary>
    public static Digest Compute(ReadOnlySpan<byte> data)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(data, hash);
        return FromHash(hash);
    }

    /// <summary>Parses the canonical form; false for anything else (including upper-case hex).</summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest)
    {
        if (value is not null && IsValid(value))
        {
            digest = new Digest(value);
            return true;
        }

        digest = default;
        return false;
    }

    /// <summary>Parses the canonical form.</summary>
    /// <param name="value">The text to parse.</param>
    /// <param name="paramName">The parameter name reported when <paramref name="value"/> is invalid.</param>
    /// <exception cref="ArgumentException"><paramref name="value"/> is not <c>sha256:</c> followed by 64 lowercase hex digits.</exception>
    public static Digest Parse(string value, string? paramName = null)
    {
        ArgumentNullException.ThrowIfNull(value, paramName ?? nameof(value));
        if (!TryParse(value, out Digest digest))
        {
            throw new ArgumentException($"'{Truncate(value)}' is not a valid digest; expected 'sha256:' followed by 64 lowercase hex digits.", paramName ?? nameof(value));
        }

        return digest;
    }

    /// <summary>True when <paramref name="value"/> is a digest in canonical form.</summary>
    public static bool IsValid([NotNullWhen(true)] string? value)
    {
        if (value is null || value.Length != Length || !value.StartsWith(Sha256Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (char c in value.AsSpan(Sha256Prefix.Length))
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Returns <see cref="Value"/>.</summary>
    public override string ToString() => Value;

    internal static Digest FromHash(ReadOnlySpan<byte> sha256) => new(Sha256Prefix + Convert.ToHexStringLower(sha256));

    private static string Truncate(string value) => value.Length <= 100 ? value : string.Concat(value.AsSpan(0, 100), "…");
}
