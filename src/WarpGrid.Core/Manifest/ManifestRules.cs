using System.Text;
using System.Text.RegularExpressions;

namespace WarpGrid.Core.Manifest;

/// <summary>Lexical rules shared by the parser, the model and the writer.</summary>
internal static partial class ManifestRules
{
    public const string NamePattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    public const string EnvironmentKeyPattern = "^[A-Za-z_][A-Za-z0-9_]*$";
    public const int MaxHostLength = 253;

    public static bool IsValidName(string name) => name.Length <= PackageSection.MaxNameLength && NameRegex().IsMatch(name);

    public static string DescribeInvalidName(string name)
    {
        var builder = new StringBuilder();
        builder.Append("invalid package name '").Append(name).Append("': must be a DNS label of at most ")
            .Append(PackageSection.MaxNameLength)
            .Append(" characters: lowercase letters a-z, digits and '-', starting and ending with a letter or digit (")
            .Append(NamePattern).Append(')');
        if (name.Length > PackageSection.MaxNameLength)
        {
            builder.Append("; got ").Append(name.Length).Append(" characters");
        }

        var suggestion = SuggestName(name);
        if (suggestion is not null)
        {
            builder.Append("; try '").Append(suggestion).Append('\'');
        }

        return builder.ToString();
    }

    public static bool IsValidEnvironmentKey(string key) => EnvironmentKeyRegex().IsMatch(key);

    public static bool IsValidSemVer(string version) => SemVerRegex().IsMatch(version);

    /// <summary>A DNS host name, optionally with a leading <c>*.</c> wildcard label.</summary>
    public static bool IsValidHost(string host)
    {
        if (host.Length == 0 || host.Length > MaxHostLength)
        {
            return false;
        }

        var labels = host.Split('.');
        var first = labels[0] == "*" ? 1 : 0;
        if (first == labels.Length)
        {
            return false;
        }

        for (var i = first; i < labels.Length; i++)
        {
            if (labels[i].Length > 63 || !HostLabelRegex().IsMatch(labels[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A host glob for <c>capabilities.http_outbound</c>; returns why it is invalid, or null.</summary>
    public static string? DescribeInvalidHostGlob(string glob)
    {
        const string Allowed = "a host name or glob such as \"api.example.com\", \"*.internal.svc\" or \"*\": letters, digits, '-', '.' and '*' only";
        if (glob.Length == 0)
        {
            return "empty host; expected " + Allowed;
        }

        var scheme = glob.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            return $"'{glob}' is a URL; expected {Allowed} (no scheme, port or path), e.g. \"{glob[(scheme + 3)..].Split('/', ':')[0]}\"";
        }

        if (glob.Length > MaxHostLength)
        {
            return $"'{glob}' is longer than {MaxHostLength} characters";
        }

        foreach (var label in glob.Split('.'))
        {
            if (label.Length == 0 || !HostGlobLabelRegex().IsMatch(label))
            {
                return $"invalid host '{glob}'; expected {Allowed} (no scheme, port or path; no empty labels)";
            }
        }

        return null;
    }

    /// <summary>Turns an invalid name into a valid one when that is straightforward ("Hello_World" → "hello-world").</summary>
    private static string? SuggestName(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            var mapped = char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) ? c : '-';
            if (mapped == '-' && (builder.Length == 0 || builder[^1] == '-'))
            {
                continue;
            }

            builder.Append(mapped);
        }

        var candidate = builder.ToString().Trim('-');
        if (candidate.Length > PackageSection.MaxNameLength)
        {
            candidate = candidate[..PackageSection.MaxNameLength].TrimEnd('-');
        }

        return candidate.Length > 0 && candidate != name && IsValidName(candidate) ? candidate : null;
    }

    [GeneratedRegex(NamePattern, RegexOptions.CultureInvariant)]
    private static partial Regex NameRegex();

    [GeneratedRegex(EnvironmentKeyPattern, RegexOptions.CultureInvariant)]
    private static partial Regex EnvironmentKeyRegex();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex HostLabelRegex();

    [GeneratedRegex("^[-a-z0-9*]+$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex HostGlobLabelRegex();

    // Semantic Versioning 2.0.0, https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
    [GeneratedRegex(
        @"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
        RegexOptions.CultureInvariant)]
    private static partial Regex SemVerRegex();
}
