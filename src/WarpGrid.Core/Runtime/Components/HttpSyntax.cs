namespace WarpGrid.Core.Runtime.Components;

/// <summary>
/// The syntax checks of <c>wasi:http/types</c> setters, as Wasmtime's reference host applies them through the Rust
/// <c>http</c> crate: method tokens (RFC 9110), path-with-query, scheme (RFC 3986) and authority. Each answers whether
/// the guest's value may be stored; the setter answers <c>err</c> otherwise and nothing changes.
/// </summary>
internal static class HttpSyntax
{
    private const int MaxSchemeLength = 64;

    /// <summary>An RFC 9110 <c>token</c>: field names and extension methods.</summary>
    public static bool IsToken(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return false;
        }

        foreach (var ch in text)
        {
            if (!IsTokenChar(ch))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>set-path-with-query</c>: the bytes a request target may hold unencoded (as <c>http::uri::PathAndQuery</c>):
    /// no space, control or non-ASCII character; <c>"</c>, <c>{</c>, <c>}</c> pass in the path as clients send them,
    /// the query also takes <c>?</c>, <c>`</c>, <c>|</c>, <c>^</c>, <c>[</c>, <c>]</c>, <c>\</c>; a <c>#</c> starts a fragment, which is not checked.
    /// Stricter than the crate: a non-empty value must start with <c>/</c> (origin-form).
    /// </summary>
    public static bool IsValidPathWithQuery(ReadOnlySpan<char> text)
    {
        // origin-form: the path starts with "/" (or is empty). The http crate would also take "abc" or "@host/x", which
        // glued to the authority names another host.
        if (!text.IsEmpty && text[0] != '/')
        {
            return false;
        }

        var query = false;
        foreach (var ch in text)
        {
            if (ch == '#')
            {
                return true;
            }

            if (!query && ch == '?')
            {
                query = true;
                continue;
            }

            var ok = query
                ? ch is '!' or (>= '$' and <= ';') or '=' or (>= '?' and <= '~')
                : ch is '!' or (>= '$' and <= ';') or '=' or (>= '@' and <= '_') or (>= 'a' and <= 'z') or '|' or '~' or '"' or '{' or '}';
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary><c>set-scheme</c> with <c>other</c>: RFC 3986 <c>ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )</c>, at most 64 characters.</summary>
    public static bool IsValidScheme(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text.Length > MaxSchemeLength || !char.IsAsciiLetter(text[0]))
        {
            return false;
        }

        foreach (var ch in text)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '+' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>set-authority</c>: <c>[userinfo@]host[:port]</c> as <c>http::uri::Authority</c> parses it (URI characters only,
    /// no <c>/</c>, <c>?</c> or <c>#</c>, one bracketed IPv6 literal, a non-empty host), and a port, when there is a
    /// <c>:</c> after the host, of 1 to 5 digits up to 65535 (Wasmtime's own check on top).
    /// </summary>
    public static bool IsValidAuthority(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return false;
        }

        var at = text.LastIndexOf('@');
        var userinfo = at >= 0 ? text[..at] : [];
        var hostPort = at >= 0 ? text[(at + 1)..] : text;
        foreach (var ch in userinfo)
        {
            if (!(IsUnreserved(ch) || IsSubDelim(ch) || ch is ':' or '%'))
            {
                return false;
            }
        }

        if (hostPort.IsEmpty)
        {
            return false;
        }

        ReadOnlySpan<char> host;
        ReadOnlySpan<char> rest;
        if (hostPort[0] == '[')
        {
            var close = hostPort.IndexOf(']');
            if (close < 0)
            {
                return false;
            }

            foreach (var ch in hostPort[1..close])
            {
                if (!(char.IsAsciiHexDigit(ch) || ch is ':' or '.'))
                {
                    return false;
                }
            }

            host = hostPort[..(close + 1)];
            rest = hostPort[(close + 1)..];
        }
        else
        {
            var colon = hostPort.IndexOf(':');
            host = colon >= 0 ? hostPort[..colon] : hostPort;
            rest = colon >= 0 ? hostPort[colon..] : [];
            if (host.IsEmpty)
            {
                return false;
            }

            foreach (var ch in host)
            {
                if (!(IsUnreserved(ch) || IsSubDelim(ch)))
                {
                    return false;
                }
            }
        }

        if (rest.IsEmpty)
        {
            return true;
        }

        if (rest[0] != ':')
        {
            return false;
        }

        var port = rest[1..];
        return port.Length is >= 1 and <= 5 && !port.ContainsAnyExceptInRange('0', '9') && int.Parse(port, provider: null) <= ushort.MaxValue;
    }

    private static bool IsTokenChar(char ch) =>
        char.IsAsciiLetterOrDigit(ch) || ch is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    private static bool IsUnreserved(char ch) => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' or '_' or '~';

    private static bool IsSubDelim(char ch) => ch is '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=';
}
