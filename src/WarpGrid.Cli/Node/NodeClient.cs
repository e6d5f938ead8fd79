using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace WarpGrid.Cli.Node;

/// <summary>A client of a node's REST API (<c>/v1</c>) that turns transport errors into exit 4 and problem responses into exit 5.</summary>
internal sealed class NodeClient : IDisposable
{
    public const string DefaultNode = "http://127.0.0.1:9090";

    private static readonly TimeSpan DiscoveryTimeout = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private string? _token;
    private bool _discover;

    private NodeClient(Uri baseUri, HttpMessageHandler handler, string? token, bool discover, WarpContext? configContext)
    {
        BaseUri = baseUri;
        _token = token;
        _discover = discover;
        ConfigContext = configContext;
        _http = new HttpClient(handler) { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(5) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("warp", typeof(NodeClient).Assembly.GetName().Version?.ToString(3) ?? "0.1.0"));
    }

    public Uri BaseUri { get; }

    /// <summary>The context of the warp configuration this client took its node or credentials from, if any.</summary>
    public WarpContext? ConfigContext { get; }

    /// <summary>
    /// A client of the node <see cref="NodeTarget.Node"/>, else <c>$WARP_NODE</c>, else the current context's node, else
    /// <see cref="DefaultNode"/>. Its credential: <see cref="NodeTarget.Token"/>, else <c>$WARP_TOKEN</c>, else the current
    /// context's token or client certificate (when the context is for this node), else, for a node on loopback, the
    /// bootstrap admin token in the file the node's <c>/v1/health</c> names. The CA file (<see cref="NodeTarget.CaFile"/>,
    /// <c>$WARP_CA_FILE</c>, the context's <c>certificate-authority</c>) is the only root trusted for an https node.
    /// </summary>
    /// <param name="context">Environment and output.</param>
    /// <param name="target">The command line's node and credential options.</param>
    /// <param name="useConfig">False for <c>warp login</c>: only the credential given, no configuration and no discovery.</param>
    public static NodeClient Create(CliContext context, NodeTarget target, bool useConfig = true)
    {
        ArgumentNullException.ThrowIfNull(target);
        var current = useConfig ? WarpConfig.Load(context).Current : null;
        var explicitNode = target.Node ?? (context.GetEnv("WARP_NODE") is { Length: > 0 } env ? env : null);
        var uri = ParseNode(explicitNode ?? current?.Node ?? DefaultNode);
        var scoped = current is not null && (explicitNode is null || (current.Node is not null && SameNode(ParseNode(current.Node), uri))) ? current : null;
        var token = target.Token ?? (useConfig && context.GetEnv("WARP_TOKEN") is { Length: > 0 } t ? t : null) ?? scoped?.Token;
        var caFile = target.CaFile ?? (context.GetEnv("WARP_CA_FILE") is { Length: > 0 } ca ? ca : null) ?? scoped?.CertificateAuthority;
        var certificate = target.ClientCertificate ?? scoped?.ClientCertificate;
        var key = target.ClientCertificate is not null ? target.ClientKey : scoped?.ClientKey;
        var handler = new SocketsHttpHandler();
        if (certificate is not null)
        {
            handler.SslOptions.ClientCertificates = [LoadClientCertificate(certificate, key)];
        }

        if (caFile is not null)
        {
            var roots = LoadRoots(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, errors) => TrustedBy(roots, presented, errors);
        }

        var discover = useConfig && token is null && certificate is null && uri.IsLoopback;
        return new NodeClient(uri, handler, token?.Trim(), discover, explicitNode is null || scoped is not null ? scoped : null);
    }

    private static Uri ParseNode(string text)
    {
        if (!text.Contains("://", StringComparison.Ordinal))
        {
            text = "http://" + text;
        }

        if (!Uri.TryCreate(text.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CliFailure(ExitCodes.Usage, "usage", $"'{text}' is not a node URL", "pass --node http://HOST:PORT (the node's API address) or set WARP_NODE");
        }

        return uri;
    }

    private static bool SameNode(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private static X509Certificate2 LoadClientCertificate(string certificateFile, string? keyFile)
    {
        try
        {
            using var pem = keyFile is null ? X509Certificate2.CreateFromPemFile(certificateFile) : X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
            // An ephemeral PEM key is not usable for TLS client authentication everywhere: round-trip through PKCS#12.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CliFailure(ExitCodes.Usage, "client_certificate_unreadable", $"cannot load the client certificate {certificateFile}{(keyFile is null ? string.Empty : " with key " + keyFile)}: {ex.Message}",
                "pass PEM files: --client-certificate NAME.crt --client-key NAME.key (as written by warp certificate request)");
        }
    }

    private static X509Certificate2Collection LoadRoots(string caFile)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(caFile);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.Usage, "ca_unreadable", $"cannot read the CA file {caFile}: {ex.Message}", "pass the cluster CA certificate in PEM (ca.crt, as written by warp certificate request)");
        }

        if (roots.Count == 0)
        {
            throw new CliFailure(ExitCodes.Usage, "ca_unreadable", $"{caFile} holds no PEM certificate", "pass the cluster CA certificate in PEM (ca.crt)");
        }

        return roots;
    }

    /// <summary>The node's certificate must name the host and chain to one of <paramref name="roots"/> (and nothing else).</summary>
    private static bool TrustedBy(X509Certificate2Collection roots, X509Certificate? presented, SslPolicyErrors errors)
    {
        if (presented is not X509Certificate2 certificate || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    /// <summary>
    /// A node on loopback with no credential configured: ask its health endpoint where the bootstrap admin token is
    /// and use it when this user may read it.
    /// </summary>
    private async Task DiscoverAsync(CancellationToken cancellationToken)
    {
        if (!_discover)
        {
            return;
        }

        _discover = false;
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/health");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(DiscoveryTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, deadline.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(ex.Message);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unreachable($"no answer within {DiscoveryTimeout.TotalSeconds:0} s");
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                return;
            }

            try
            {
                var health = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
                if (health?["credentialFile"] is JsonValue file && file.TryGetValue<string>(out var path) && File.Exists(path))
                {
                    var token = (await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)).Trim();
                    _token = token.Length > 0 ? token : null;
                }
            }
            catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // not readable by this user: go on without a credential (the node answers 401 with a hint)
            }
        }
    }

    private void Authorize(HttpRequestMessage request)
    {
        if (_token is not null && request.Headers.Authorization is null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }
    }

    /// <summary>Sends a request and returns the JSON body of a success; throws <see cref="CliFailure"/> otherwise.</summary>
    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        await DiscoverAsync(cancellationToken).ConfigureAwait(false);
        Authorize(request);
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
        await DiscoverAsync(cancellationToken).ConfigureAwait(false);
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            Authorize(request);
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
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

    private CliFailure Rejected(HttpResponseMessage response, JsonNode? body, string text)
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
            status is 401 or 403 ? HintFor(status, new JsonObject()) : "check that --node points at a WarpGrid node's API address (not its ingress)");
    }

    private string? HintFor(int status, JsonObject problem) => status switch
    {
        401 => $"log in with: warp login --node {BaseUri.GetLeftPart(UriPartial.Authority)} --token-stdin (or --token TOKEN), or set WARP_TOKEN",
        403 => problem["permission"] is JsonValue p && p.TryGetValue<string>(out var permission)
            ? $"missing permission '{permission}': ask a cluster admin for a role binding that grants it (warp rolebindings create NAME --role ROLE --subject ...); check with: warp auth can-i {permission}"
            : "the credential is not allowed to do this; see what it may do with: warp auth whoami",
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

/// <summary>What a command line says about the node to call and how to authenticate; null parts come from the environment and the configuration.</summary>
internal sealed record NodeTarget(string? Node, string? Token = null, string? CaFile = null, string? ClientCertificate = null, string? ClientKey = null);
