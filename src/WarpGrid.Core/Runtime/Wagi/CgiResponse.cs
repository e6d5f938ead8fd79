using System.Buffers;
using System.Text;

namespace WarpGrid.Core.Runtime.Wagi;

/// <summary>
/// A guest's CGI output parsed into status, headers and body. Owns a pooled buffer: dispose it once the body is sent.
/// </summary>
public sealed class CgiResponse : IDisposable
{
    private byte[]? _buffer;

    private CgiResponse(int status, List<KeyValuePair<string, string>> headers, byte[] buffer, int bodyOffset, int bodyLength)
    {
        StatusCode = status;
        Headers = headers;
        _buffer = buffer;
        BodyOffset = bodyOffset;
        BodyLength = bodyLength;
    }

    /// <summary>The HTTP status: from <c>Status</c>, else 302 with <c>Location</c>, else 200.</summary>
    public int StatusCode { get; }

    /// <summary>Response headers other than <c>Status</c>, in the order written.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    private int BodyOffset { get; }

    private int BodyLength { get; }

    /// <summary>The response body.</summary>
    public ReadOnlyMemory<byte> Body => _buffer is null ? default : _buffer.AsMemory(BodyOffset, BodyLength);

    /// <summary>
    /// Parses CGI output: header lines (<c>Name: value</c>, LF or CRLF) up to a blank line, then the body.
    /// Takes ownership of <paramref name="buffer"/> (a pooled array) whether it succeeds or not.
    /// </summary>
    /// <returns>The response, or null with <paramref name="error"/> saying what is wrong with the output.</returns>
    public static CgiResponse? TryParse(byte[] buffer, int length, out string? error)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        var data = buffer.AsSpan(0, length);
        var headers = new List<KeyValuePair<string, string>>(4);
        int? status = null;
        var hasLocation = false;
        var hasContentType = false;
        var position = 0;
        while (true)
        {
            var rest = data[position..];
            var newline = rest.IndexOf((byte)'\n');
            if (newline < 0)
            {
                Return(buffer);
                error = length == 0
                    ? "the guest wrote nothing to stdout; a WAGI handler must print headers (at least Content-Type), a blank line, then the body"
                    : "the guest's output has no blank line ending the headers; a WAGI handler must print headers, a blank line, then the body";
                return null;
            }

            var line = rest[..newline];
            position += newline + 1;
            if (line.Length > 0 && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }

            if (line.IsEmpty)
            {
                break;
            }

            var colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                Return(buffer);
                error = $"the guest's output has a malformed header line \"{Truncate(Encoding.UTF8.GetString(line))}\" (expected \"Name: value\")";
                return null;
            }

            // Field names are RFC 9110 tokens; values are bytes (visible ASCII, space, HTAB and obs-text 0x80-0xFF),
            // kept as they are: one Latin-1 char a byte, which the ingress writes back as the same byte.
            var name = Encoding.Latin1.GetString(line[..colon]).Trim(' ', '\t');
            var valueBytes = line[(colon + 1)..];
            if (!Components.HttpSyntax.IsToken(name))
            {
                Return(buffer);
                error = $"the guest's output has a header name \"{Truncate(Printable(name))}\" that is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)";
                return null;
            }

            if (!Components.Fields.IsValidValue(valueBytes))
            {
                Return(buffer);
                error = $"the guest's header {name} has a control character in its value (only HTAB, space, visible ASCII and bytes 0x80-0xFF may appear)";
                return null;
            }

            var value = Encoding.Latin1.GetString(valueBytes).Trim(' ', '\t');
            if (name.Equals("Status", StringComparison.OrdinalIgnoreCase))
            {
                var code = value.Length >= 3 && int.TryParse(value.AsSpan(0, 3), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) ? parsed : -1;
                if (code is < 100 or > 999 || (value.Length > 3 && value[3] != ' '))
                {
                    Return(buffer);
                    error = $"the guest's Status header \"{Truncate(value)}\" is not a 3-digit HTTP status code";
                    return null;
                }

                status = code;
                continue;
            }

            hasLocation |= name.Equals("Location", StringComparison.OrdinalIgnoreCase);
            hasContentType |= name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase);
            headers.Add(new KeyValuePair<string, string>(name, value));
        }

        if (status is null && !hasLocation && !hasContentType)
        {
            Return(buffer);
            error = "the guest's output has neither a Content-Type, a Location nor a Status header";
            return null;
        }

        error = null;
        return new CgiResponse(status ?? (hasLocation ? 302 : 200), headers, buffer, position, length - position);
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            Return(buffer);
        }
    }

    private static void Return(byte[] buffer)
    {
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "…";

    /// <summary>Control and non-ASCII characters as <c>\xNN</c>, so an error message shows what the guest wrote.</summary>
    private static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var ch in text)
        {
            _ = ch is >= ' ' and < '\x7F' ? builder.Append(ch) : builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{(int)ch:x2}");
        }

        return builder.ToString();
    }
}
