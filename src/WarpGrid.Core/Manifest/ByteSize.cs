using System.Globalization;

namespace WarpGrid.Core.Manifest;

/// <summary>
/// Parses and formats byte sizes such as <c>"128MB"</c>, <c>"64 KiB"</c> or <c>"1.5GB"</c>.
/// </summary>
/// <remarks>
/// Every unit is binary: 1 KB = 1 KiB = 1024 B, 1 MB = 1 MiB = 1024² B, 1 GB = 1 GiB = 1024³ B.
/// This matches what Docker and Nomad do for memory limits, and WebAssembly memory, which grows in 64 KiB pages.
/// Units are case-insensitive; a space between number and unit is allowed; a decimal number is allowed
/// when the result is a whole number of bytes.
/// </remarks>
public static class ByteSize
{
    /// <summary>The units accepted by <see cref="TryParse(string, out long, out string?)"/>, for messages and documentation.</summary>
    public const string AllowedUnits = "B, KB, KiB, MB, MiB, GB, GiB (binary: 1 KB = 1 KiB = 1024 B)";

    private const long KiB = 1024;
    private const long MiB = 1024 * KiB;
    private const long GiB = 1024 * MiB;

    private static readonly Dictionary<string, long> Units = new(StringComparer.OrdinalIgnoreCase)
    {
        ["B"] = 1,
        ["KB"] = KiB,
        ["KiB"] = KiB,
        ["MB"] = MiB,
        ["MiB"] = MiB,
        ["GB"] = GiB,
        ["GiB"] = GiB,
    };

    /// <summary>Parses <c>&lt;number&gt;&lt;unit&gt;</c>, e.g. <c>"128MB"</c> or <c>"1.5 GiB"</c>.</summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="bytes">The size in bytes when successful; otherwise 0.</param>
    /// <param name="error">Why the text is invalid, naming the allowed units; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a valid byte size.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public static bool TryParse(string text, out long bytes, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        bytes = 0;
        var s = text.Trim();
        var quoted = Quote(text);
        if (s.Length == 0)
        {
            error = $"empty byte size; expected <number><unit> such as \"128MB\"; allowed units: {AllowedUnits}";
            return false;
        }

        if (s[0] == '-')
        {
            error = $"byte size {quoted} must not be negative";
            return false;
        }

        var i = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i]))
        {
            i++;
        }

        if (i < s.Length && s[i] == '.')
        {
            var fractionStart = ++i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (i == fractionStart)
            {
                i = 0; // "1." is not a number
            }
        }

        if (i == 0 || !char.IsAsciiDigit(s[0]))
        {
            error = $"invalid byte size {quoted}; expected <number><unit> such as \"128MB\" or \"1.5GiB\"; allowed units: {AllowedUnits}";
            return false;
        }

        var numberText = s[..i];
        var unit = s[i..].TrimStart();
        if (unit.Length == 0)
        {
            error = $"missing unit in {quoted}; allowed units: {AllowedUnits} (write a TOML integer, without quotes, for a plain number of bytes)";
            return false;
        }

        if (!Units.TryGetValue(unit, out var factor))
        {
            error = $"unknown unit '{unit}' in {quoted}; allowed units: {AllowedUnits}";
            return false;
        }

        if (!decimal.TryParse(numberText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)
            || number > long.MaxValue / (decimal)factor)
        {
            error = $"byte size {quoted} is too large";
            return false;
        }

        var total = number * factor;
        if (total != decimal.Truncate(total))
        {
            error = $"byte size {quoted} is not a whole number of bytes ({total.ToString(CultureInfo.InvariantCulture)})";
            return false;
        }

        bytes = (long)total;
        error = null;
        return true;
    }

    /// <summary>
    /// Formats a size with the largest binary unit that represents it exactly (up to two decimals),
    /// e.g. <c>128MiB</c>, <c>1.5GiB</c>, <c>1000B</c>. The result parses back to the same value.
    /// </summary>
    /// <param name="bytes">A size in bytes, zero or more.</param>
    /// <returns>The formatted size.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is negative.</exception>
    public static string Format(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        foreach (var (unit, factor) in new[] { ("GiB", GiB), ("MiB", MiB), ("KiB", KiB) })
        {
            if (bytes < factor)
            {
                continue;
            }

            var value = (decimal)bytes / factor;
            if (value * 100 == decimal.Truncate(value * 100))
            {
                return value.ToString("0.##", CultureInfo.InvariantCulture) + unit;
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }

    private static string Quote(string text) => "\"" + text + "\"";
}
