using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace WarpGrid.Core.Oci;

/// <summary>
/// One challenge of a <c>WWW-Authenticate</c> header, such as
/// <c>Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"</c>.
/// </summary>
/// <param name="Scheme">The scheme (<c>Bearer</c>, <c>Basic</c>), as sent.</param>
/// <param name="Parameters">The auth parameters by name (case-insensitive), unquoted.</param>
public sealed record OciAuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary>True for the Bearer scheme.</summary>
    public bool IsBearer => string.Equals(Scheme, "Bearer", StringComparison.OrdinalIgnoreCase);

    /// <summary>True for the Basic scheme.</summary>
    public bool IsBasic => string.Equals(Scheme, "Basic", StringComparison.OrdinalIgnoreCase);

    /// <summary>The <c>realm</c> parameter (the token endpoint for Bearer), or null.</summary>
    public string? Realm => Parameters.GetValueOrDefault("realm");

    /// <summary>The <c>service</c> parameter, or null.</summary>
    public string? Service => Parameters.GetValueOrDefault("service");

    /// <summary>The <c>scope</c> parameter, or null.</summary>
    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>
    /// Parses the value of one <c>WWW-Authenticate</c> header, which can hold several challenges
    /// (<c>Basic realm="x", Bearer realm="y",scope="a,b"</c>). Quoted values may contain commas and escaped quotes.
    /// </summary>
    public static IReadOnlyList<OciAuthChallenge> ParseHeader(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var result = new List<OciAuthChallenge>();
        int i = 0;
        string? scheme = null;
        Dictionary<string, string>? parameters = null;

        while (i < value.Length)
        {
            SkipSeparators(value, ref i);
            if (i >= value.Length)
            {
                break;
            }

            string token = ReadToken(value, ref i);
            if (token.Length == 0)
            {
                i++; // not a token character: skip it rather than loop forever
                continue;
            }

            SkipSpaces(value, ref i);
            if (i < value.Length && value[i] == '=' && scheme is not null)
            {
                if (IsToken68Tail(value, i))
                {
                    while (i < value.Length && value[i] == '=')
                    {
                        i++;
                    }

                    continue;
                }

                i++;
                SkipSpaces(value, ref i);
                string paramValue = i < value.Length && value[i] == '"' ? ReadQuoted(value, ref i) : ReadToken(value, ref i);
                parameters![token] = paramValue;
                continue;
            }

            // A new scheme starts.
            if (scheme is not null)
            {
                result.Add(new OciAuthChallenge(scheme, parameters!));
            }

            scheme = token;
            parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        }

        if (scheme is not null)
        {
            result.Add(new OciAuthChallenge(scheme, parameters!));
        }

        return result;
    }

    /// <summary>Picks the challenge to answer from a response's headers: Bearer first, then Basic.</summary>
    internal static bool TrySelect(IEnumerable<string> headerValues, [NotNullWhen(true)] out OciAuthChallenge? challenge, out string schemes)
    {
        var all = headerValues.SelectMany(ParseHeader).ToList();
        schemes = all.Count == 0 ? "none" : string.Join(", ", all.Select(c => c.Scheme));
        challenge = all.FirstOrDefault(c => c.IsBearer && !string.IsNullOrEmpty(c.Realm)) ?? all.FirstOrDefault(c => c.IsBasic);
        return challenge is not null;
    }

    private static bool IsToken68Tail(string value, int i)
    {
        // "Basic abc==" style token68: '=' followed by '=' or end or ','.
        int j = i;
        while (j < value.Length && value[j] == '=')
        {
            j++;
        }

        SkipSpaces(value, ref j);
        return j - i > 1 || j >= value.Length || value[j] == ',';
    }

    private static void SkipSpaces(string s, ref int i)
    {
        while (i < s.Length && (s[i] == ' ' || s[i] == '\t'))
        {
            i++;
        }
    }

    private static void SkipSeparators(string s, ref int i)
    {
        while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
        {
            i++;
        }
    }

    private static string ReadToken(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && IsTokenChar(s[i]))
        {
            i++;
        }

        return s[start..i];
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~' or '/' or ':';

    private static string ReadQuoted(string s, ref int i)
    {
        var sb = new StringBuilder();
        i++; // opening quote
        while (i < s.Length && s[i] != '"')
        {
            if (s[i] == '\\' && i + 1 < s.Length)
            {
                i++;
            }

            sb.Append(s[i]);
            i++;
        }

        if (i < s.Length)
        {
            i++; // closing quote
        }

        return sb.ToString();
    }
}
