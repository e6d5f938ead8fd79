using System.Text;
using System.Text.RegularExpressions;

namespace WarpGrid.LoadDriver;

/// <summary>Derives a deployment's <c>warp.toml</c> from a sample's by replacing <c>[package] name</c> and <c>[runtime] route</c>.</summary>
internal static partial class ManifestText
{
    public static string WithNameAndRoute(string toml, string name, string route)
    {
        var section = string.Empty;
        var sawName = false;
        var sawRoute = false;
        var output = new StringBuilder(toml.Length + 32);
        foreach (var rawLine in toml.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            var header = SectionHeader().Match(line);
            if (header.Success)
            {
                section = header.Groups[1].Value.Trim();
            }
            else if (section == "package" && Key("name").IsMatch(line))
            {
                line = $"name = \"{name}\"";
                sawName = true;
            }
            else if (section == "runtime" && Key("route").IsMatch(line))
            {
                line = $"route = \"{route}\"";
                sawRoute = true;
            }

            output.Append(line).Append('\n');
        }

        if (!sawName || !sawRoute)
        {
            throw new FormatException("the sample manifest has no [package] name or no [runtime] route to replace");
        }

        return output.ToString().TrimEnd('\n') + "\n";
    }

    private static Regex Key(string key) => new(@"^\s*" + key + @"\s*=", RegexOptions.CultureInvariant);

    [GeneratedRegex(@"^\s*\[([^\[\]]+)\]\s*(#.*)?$", RegexOptions.CultureInvariant)]
    private static partial Regex SectionHeader();
}
