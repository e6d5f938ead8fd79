using System.Net;
using WarpGrid.Core.Runtime.Wasi;

namespace WarpGrid.Core.Runtime.Wagi;

/// <summary>An HTTP request as the WAGI (CGI-style) trigger presents it to a WASI preview 1 guest.</summary>
public sealed class WagiRequest
{
    /// <summary>HTTP method, e.g. GET.</summary>
    public string Method { get; init; } = "GET";

    /// <summary>The route prefix that matched (the deployment's route, without a trailing slash), e.g. <c>/hello</c>.</summary>
    public string ScriptName { get; init; } = string.Empty;

    /// <summary>The URL-decoded path after <see cref="ScriptName"/>, e.g. <c>/a b</c>.</summary>
    public string PathInfo { get; init; } = string.Empty;

    /// <summary>The raw (still encoded) path after <see cref="ScriptName"/>, e.g. <c>/a%20b</c>.</summary>
    public string RawPathInfo { get; init; } = string.Empty;

    /// <summary>The query string without the leading '?'.</summary>
    public string QueryString { get; init; } = string.Empty;

    /// <summary>Host name the request was sent to.</summary>
    public string ServerName { get; init; } = "localhost";

    /// <summary>Port the request arrived on.</summary>
    public int ServerPort { get; init; }

    /// <summary>e.g. HTTP/1.1.</summary>
    public string Protocol { get; init; } = "HTTP/1.1";

    /// <summary>Client address.</summary>
    public string RemoteAddress { get; init; } = "127.0.0.1";

    /// <summary>The full request URL.</summary>
    public string FullUrl { get; init; } = string.Empty;

    /// <summary>The route pattern that matched, e.g. <c>/hello/...</c>.</summary>
    public string MatchedRoute { get; init; } = string.Empty;

    /// <summary>Request headers (name, value); repeated names may appear more than once.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];

    /// <summary>The request body, given to the guest on stdin.</summary>
    public ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>
    /// Fills a guest's environment and arguments per the WAGI convention: CGI variables, <c>HTTP_*</c> for each header,
    /// the deployment's own variables first (request variables win), and argv = [script name, query parameters...].
    /// </summary>
    public void ApplyTo(GuestContext context, IReadOnlyList<KeyValuePair<string, string>>? deploymentEnvironment)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (deploymentEnvironment is not null)
        {
            foreach (var (name, value) in deploymentEnvironment)
            {
                context.AddEnvironment(name, value);
            }
        }

        string? contentType = null;
        Span<char> buffer = stackalloc char[128];
        foreach (var (name, value) in Headers)
        {
            if (contentType is null && name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                contentType = value;
            }

            var variable = name.Length + 5 <= buffer.Length ? buffer[..(name.Length + 5)] : new char[name.Length + 5];
            WriteHeaderVariable(name, variable);
            context.AddEnvironment(variable, value);
        }

        context.AddEnvironment("GATEWAY_INTERFACE", "CGI/1.1");
        context.AddEnvironment("SERVER_SOFTWARE", "WarpGrid");
        context.AddEnvironment("REQUEST_METHOD", Method);
        context.AddEnvironment("SCRIPT_NAME", ScriptName);
        context.AddEnvironment("PATH_INFO", PathInfo);
        context.AddEnvironment("PATH_TRANSLATED", PathInfo);
        context.AddEnvironment("X_RAW_PATH_INFO", RawPathInfo);
        context.AddEnvironment("QUERY_STRING", QueryString);
        context.AddEnvironment("SERVER_NAME", ServerName);
        context.AddEnvironment("SERVER_PORT", ServerPort);
        context.AddEnvironment("SERVER_PROTOCOL", Protocol);
        context.AddEnvironment("REMOTE_ADDR", RemoteAddress);
        context.AddEnvironment("REMOTE_HOST", RemoteAddress);
        context.AddEnvironment("AUTH_TYPE", string.Empty);
        context.AddEnvironment("REMOTE_USER", string.Empty);
        context.AddEnvironment("CONTENT_TYPE", contentType ?? string.Empty);
        context.AddEnvironment("CONTENT_LENGTH", Body.Length);
        context.AddEnvironment("X_FULL_URL", FullUrl);
        context.AddEnvironment("X_MATCHED_ROUTE", MatchedRoute);

        context.AddArgument(ScriptName.Length == 0 ? "/" : ScriptName);
        if (QueryString.Length > 0)
        {
            foreach (var part in QueryString.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                context.AddArgument(WebUtility.UrlDecode(part));
            }
        }
    }

    /// <summary>Maps a header name to its CGI variable: <c>X-Request-Id</c> → <c>HTTP_X_REQUEST_ID</c>.</summary>
    public static string HeaderVariable(string headerName)
    {
        ArgumentNullException.ThrowIfNull(headerName);
        return string.Create(headerName.Length + 5, headerName, static (span, name) => WriteHeaderVariable(name, span));
    }

    private static void WriteHeaderVariable(ReadOnlySpan<char> headerName, Span<char> destination)
    {
        "HTTP_".CopyTo(destination);
        for (var i = 0; i < headerName.Length; i++)
        {
            var c = headerName[i];
            destination[i + 5] = c == '-' ? '_' : char.ToUpperInvariant(c);
        }
    }
}
