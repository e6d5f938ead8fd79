using System.Globalization;
using System.Text;

namespace WarpGrid.Core.Manifest;

/// <summary>
/// Parses and formats durations such as <c>"500ms"</c>, <c>"30s"</c>, <c>"5m"</c>, <c>"1h"</c> or <c>"1m30s"</c>.
/// </summary>
/// <remarks>
/// Units are <c>h</c>, <c>m</c>, <c>s</c> and <c>ms</c> (lowercase). Several components may be combined,
/// each unit at most once and in decreasing order (<c>"1h30m"</c>, <c>"2s500ms"</c>). Numbers may have a decimal
/// part (<c>"1.5s"</c>) when the result is a whole number of 100 ns ticks. <c>"0"</c> is accepted for zero.
/// Negative durations are rejected.
/// </remarks>
public static class DurationParser
{
    /// <summary>The units accepted by <see cref="TryParse(string, out TimeSpan, out string?)"/>, for messages and documentation.</summary>
    public const string AllowedUnits = "ms (milliseconds), s (seconds), m (minutes), h (hours), e.g. \"500ms\", \"30s\", \"1m30s\"";

    private static readonly (string Unit, long Ticks)[] UnitsByRank =
    [
        ("ms", TimeSpan.TicksPerMillisecond),
        ("s", TimeSpan.TicksPerSecond),
        ("m", TimeSpan.TicksPerMinute),
        ("h", TimeSpan.TicksPerHour),
    ];

    /// <summary>Parses a duration.</summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="value">The duration when successful; otherwise <see cref="TimeSpan.Zero"/>.</param>
    /// <param name="error">Why the text is invalid, naming the allowed units; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a valid duration.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    public static bool TryParse(string text, out TimeSpan value, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = TimeSpan.Zero;
        var s = text.Trim();
        var quoted = "\"" + text + "\"";
        if (s.Length == 0)
        {
            error = $"empty duration; allowed units: {AllowedUnits}";
            return false;
        }

        if (s[0] == '-')
        {
            error = $"duration {quoted} must not be negative";
            return false;
        }

        if (s == "0")
        {
            error = null;
            return true;
        }

        decimal totalTicks = 0;
        var previousRank = int.MaxValue;
        var i = 0;
        while (i < s.Length)
        {
            var numberStart = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            var numberText = s[numberStart..i];
            if (numberText.Length == 0
                || !char.IsAsciiDigit(numberText[0])
                || !char.IsAsciiDigit(numberText[^1])
                || !decimal.TryParse(numberText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                error = $"invalid duration {quoted}; expected <number><unit>, allowed units: {AllowedUnits}";
                return false;
            }

            while (i < s.Length && char.IsWhiteSpace(s[i]))
            {
                i++;
            }

            var unitStart = i;
            while (i < s.Length && char.IsLetter(s[i]))
            {
                i++;
            }

            var unit = s[unitStart..i];
            if (unit.Length == 0)
            {
                error = $"missing unit after {numberText} in {quoted}; allowed units: {AllowedUnits}";
                return false;
            }

            var rank = Array.FindIndex(UnitsByRank, u => string.Equals(u.Unit, unit, StringComparison.Ordinal));
            if (rank < 0)
            {
                error = $"unknown unit '{unit}' in {quoted}; allowed units: {AllowedUnits}";
                return false;
            }

            if (rank >= previousRank)
            {
                error = $"invalid duration {quoted}: each unit may appear once, in decreasing order (h, m, s, ms), e.g. \"1h30m\"";
                return false;
            }

            previousRank = rank;
            if (number > (TimeSpan.MaxValue.Ticks - totalTicks) / UnitsByRank[rank].Ticks)
            {
                error = $"duration {quoted} is too large";
                return false;
            }

            totalTicks += number * UnitsByRank[rank].Ticks;
            if (totalTicks > TimeSpan.MaxValue.Ticks)
            {
                error = $"duration {quoted} is too large";
                return false;
            }

            while (i < s.Length && char.IsWhiteSpace(s[i]))
            {
                i++;
            }
        }

        if (totalTicks != decimal.Truncate(totalTicks))
        {
            error = $"duration {quoted} is more precise than 100 nanoseconds";
            return false;
        }

        value = TimeSpan.FromTicks((long)totalTicks);
        error = null;
        return true;
    }

    /// <summary>
    /// Formats a duration canonically: hours, minutes, seconds and milliseconds, omitting zero components
    /// (<c>"1h30m"</c>, <c>"1m30s500ms"</c>, <c>"0s"</c>). Days are expressed in hours. The result parses back to the same value.
    /// </summary>
    /// <param name="value">A duration, zero or more.</param>
    /// <returns>The formatted duration.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative.</exception>
    public static string Format(TimeSpan value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        var ticks = value.Ticks;
        var builder = new StringBuilder();
        Append(builder, ticks / TimeSpan.TicksPerHour, "h");
        Append(builder, ticks % TimeSpan.TicksPerHour / TimeSpan.TicksPerMinute, "m");
        Append(builder, ticks % TimeSpan.TicksPerMinute / TimeSpan.TicksPerSecond, "s");
        var subSecond = ticks % TimeSpan.TicksPerSecond;
        if (subSecond != 0)
        {
            var milliseconds = (decimal)subSecond / TimeSpan.TicksPerMillisecond;
            builder.Append(milliseconds.ToString("0.####", CultureInfo.InvariantCulture)).Append("ms");
        }

        return builder.ToString();
    }

    private static void Append(StringBuilder builder, long amount, string unit)
    {
        if (amount != 0)
        {
            builder.Append(amount.ToString(CultureInfo.InvariantCulture)).Append(unit);
        }
    }
}
