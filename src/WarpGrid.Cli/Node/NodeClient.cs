using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace WarpGrid.Cli.Node;

/// <summary>A client of a node's REST API (<c>/v1</c>) that turns transport errors into exit 4 and problem responses into exit 5.</summary>
internal sealed class NodeClient : IDisposable
{
    public const string DefaultNode = "http://127.0.0.1:9090";

    private readonly HttpClient _http;

    private NodeClient(Uri baseUri)
    {
        BaseUri = baseUri;
        _http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(5) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("warp", typeof(NodeClient).Assembly.GetName().Version?.ToString(3) ?? "0.1.0"));
    }

    public Uri BaseUri { get; }

    /// <summary>The node URL: <paramref name="option"/>, else <c>$WARP_NODE</c>, else <see cref="DefaultNode"/>.</summary>
    public static NodeClient Create(CliContext context, string? option)
    {
        var text = option ?? context.GetEnv("WARP_NODE");
        if (string.IsNullOrWhiteSpace(text))
        {
            text = DefaultNode;
        }

        if (!text.Contains("://", StringComparison.Ordinal))
        {
            text = "http://" + text;
        }

        if (!Uri.TryCreate(text.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CliFailure(ExitCodes.Usage, "usage", $"'{text}' is not a node URL", "pass --node http://HOST:PORT (the node's API address) or set WARP_NODE");
        }

        return new NodeClient(uri);
    }

    /// <summary>Sends a request and returns the JSON body of a success; throws <see cref="CliFailure"/> otherwise.</summary>
    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(ex.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unreachable($"no answer within {_http.Timeout.TotalSeconds:0} s");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            JsonNode? body = null;
            if (text.Length > 0)
            {
                try
                {
                    body = JsonNode.Parse(text);
                }
                catch (JsonException)
                {
                    body = null;
                }
            }

            if (response.IsSuccessStatusCode)
            {
                return (response.StatusCode, body);
            }

            throw Rejected(response, body, text);
        }
    }

    /// <summary>
    /// Sends a GET for a streamed body and yields its lines as they arrive (no overall timeout: a follow runs until
    /// cancelled); throws <see cref="CliFailure"/> for transport errors and problem responses.
    /// </summary>
    public async IAsyncEnumerable<string> StreamLinesAsync(string path, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        _http.Timeout = Timeout.InfiniteTimeSpan;
        HttpResponseMessage response;
        try
        {
            response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(ex.Message);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                JsonNode? body = null;
                try
                {
                    body = text.Length > 0 ? JsonNode.Parse(text) : null;
                }
                catch (JsonException)
                {
                }

                throw Rejected(response, body, text);
            }

            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0)
                {
                    yield return line;
                }
            }
        }
    }

    private CliFailure Unreachable(string reason) =>
        new(ExitCodes.Unreachable, "node_unreachable", $"cannot reach the node at {BaseUri}: {reason}",
            $"start one (warpd --api {BaseUri.Authority}) or point warp at a running node with --node URL or WARP_NODE");

    private static CliFailure Rejected(HttpResponseMessage response, JsonNode? body, string text)
    {
        var status = (int)response.StatusCode;
        if (body is JsonObject problem && problem["title"] is not null)
        {
            var title = problem["title"]?.GetValue<string>() ?? response.ReasonPhrase;
            var detail = problem["detail"]?.GetValue<string>();
            var errors = new List<ErrorItem>();
            if (problem["errors"] is JsonArray items)
            {
                foreach (var item in items.OfType<JsonObject>())
                {
                    errors.Add(new ErrorItem(
                        Str(item, "message") ?? item.ToJsonString(),
                        Str(item, "field"),
                        Str(item, "file"),
                        Int(item, "line"),
                        Int(item, "column")));
                }
            }

            // A single error usually repeats the detail: show it once.
            var message = $"the node rejected the request ({status} {title})" + (detail is null || (errors.Count == 1 && detail.EndsWith(errors[0].Message, StringComparison.Ordinal)) ? string.Empty : ": " + detail);
            return new CliFailure(ExitCodes.Rejected, "node_rejected", message, HintFor(status, problem), errors, problem);
        }

        var snippet = text.Length > 500 ? text[..500] + "…" : text;
        return new CliFailure(ExitCodes.Rejected, "node_rejected", $"the node answered {status} {response.ReasonPhrase}{(snippet.Length > 0 ? ": " + snippet : string.Empty)}",
            "check that --node points at a WarpGrid node's API address (not its ingress)");
    }

    private static string? HintFor(int status, JsonObject problem) => status switch
    {
        400 => "fix the fields listed above and deploy again",
        404 => "list deployments with: warp status",
        409 => "another deployment holds that name or route; pick another in warp.toml, or delete the other one",
        413 => "the module is larger than the node accepts (WarpGrid:MaxModuleBytes)",
        503 => "the node stored the deployment but could not start it; see the message above and the node's log",
        504 => "the node is slow to start it; check later with: warp status " + (problem["deployment"]?["name"]?.GetValue<string>() ?? string.Empty),
        _ => null,
    };

    private static string? Str(JsonObject item, string name) => item[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static int? Int(JsonObject item, string name) => item[name] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;

    public void Dispose() => _http.Dispose();
}
