namespace WarpGrid.Core.Manifest;

/// <summary>"Did you mean …?" helper based on the optimal-string-alignment edit distance.</summary>
internal static class Suggestions
{
    /// <summary>Returns the candidate closest to <paramref name="input"/> when it is close enough to be a likely typo.</summary>
    public static string? Closest(string input, IEnumerable<string> candidates)
    {
        var normalizedInput = Normalize(input);
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var normalized = Normalize(candidate);
            var distance = Distance(normalizedInput, normalized);
            var threshold = Math.Clamp(normalized.Length / 3, 1, 3);
            var close = distance <= threshold
                || (normalizedInput.Length >= 4 && (normalized.Contains(normalizedInput, StringComparison.Ordinal)
                    || normalizedInput.Contains(normalized, StringComparison.Ordinal)));
            if (close && distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best;
    }

    private static string Normalize(string value) => value.ToLowerInvariant().Replace('-', '_');

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
