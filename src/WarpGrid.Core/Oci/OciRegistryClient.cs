using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WarpGrid.Core.Oci;

/// <summary>
/// A client of the OCI distribution API (<c>/v2/</c>) on <see cref="HttpClient"/>: resolve, fetch and push manifests,
/// list tags, push blobs (monolithic or chunked) and pull them with sha256 verification while streaming.
/// </summary>
/// <remarks>
/// <para>Authentication: anonymous until the registry challenges; then Basic with the registry's credentials, or the
/// Bearer token flow (token fetched from the challenge's realm with the credentials, if any, cached per registry and
/// scope until shortly before <c>expires_in</c>). A request is retried once after answering a challenge; a second 401
/// is an <see cref="OciAuthenticationException"/>.</para>
/// <para>Retries: connection failures, stalled bodies, 429 and 5xx are retried with exponential backoff and jitter,
/// honouring <c>Retry-After</c>, up to <see cref="OciClientOptions.MaxRetries"/> times in a row without progress; then
/// <see cref="OciRegistryUnavailableException"/>. Other 4xx answers are never retried. Interrupted blob downloads
/// resume with a <c>Range</c> request; interrupted chunk uploads resume from the offset the registry reports.</para>
/// <para>Thread-safe; one instance per process is enough.</para>
/// </remarks>
public sealed partial class OciRegistryClient : IDisposable
{
    private const int ErrorBodyLimit = 64 * 1024;
    private const int TokenBodyLimit = 1024 * 1024;
    private const int MinUploadBytesPerSecond = 256 * 1024;
    private static readonly TimeSpan s_defaultTokenLifetime = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_tokenRenewalMargin = TimeSpan.FromSeconds(10);

    private readonly HttpClient _http;
    private readonly bool _ownsHttpClient;
    private readonly OciClientOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, OciAuthChallenge> _challenges = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<(string Registry, string Scope), CachedToken> _tokens = new();

    /// <summary>Creates a client over an existing <see cref="HttpClient"/> (not disposed by this client).</summary>
    /// <param name="httpClient">The client that sends the requests. Its <see cref="HttpClient.Timeout"/> bounds each request up to its response headers.</param>
    /// <param name="options">Settings; defaults when null. Checked here.</param>
    /// <param name="logger">Receives retries, token fetches and transfers.</param>
    /// <param name="timeProvider">The clock for backoff delays, token expiry and read timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public OciRegistryClient(HttpClient httpClient, OciClientOptions? options = null, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _options = options ?? new OciClientOptions();
        _options.Validate();
        _http = httpClient;
        _logger = logger ?? NullLogger.Instance;
        TimeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Creates a client over a message handler.</summary>
    /// <param name="handler">The handler that sends the requests.</param>
    /// <param name="options">Settings; defaults when null. Checked here.</param>
    /// <param name="logger">Receives retries, token fetches and transfers.</param>
    /// <param name="timeProvider">The clock for backoff delays, token expiry and read timeouts.</param>
    /// <param name="disposeHandler">Whether disposing this client disposes <paramref name="handler"/>.</param>
    public OciRegistryClient(HttpMessageHandler handler, OciClientOptions? options = null, ILogger? logger = null, TimeProvider? timeProvider = null, bool disposeHandler = true)
        : this(new HttpClient(handler, disposeHandler) { Timeout = Timeout.InfiniteTimeSpan }, options, logger, timeProvider)
    {
        _ownsHttpClient = true;
    }

    /// <summary>Creates a client with its own <see cref="SocketsHttpHandler"/>.</summary>
    public OciRegistryClient(OciClientOptions? options = null, ILogger? logger = null, TimeProvider? timeProvider = null)
        : this(CreateDefaultHandler(), options, logger, timeProvider, disposeHandler: true)
    {
    }

    /// <summary>The clock this client uses (also for the <c>created</c> time of artifacts it packages).</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>The settings in use.</summary>
    public OciClientOptions Options => _options;

    /// <summary>Forgets cached bearer tokens and auth challenges (for example after credentials changed).</summary>
    public void ClearAuthenticationCache()
    {
        _tokens.Clear();
        _challenges.Clear();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttpClient)
        {
            _http.Dispose();
        }
    }

    private static SocketsHttpHandler CreateDefaultHandler() => new()
    {
        AllowAutoRedirect = true,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };

    // ---- URLs and scopes ---------------------------------------------------------------------------------------------

    private string BaseUrl(string registry) => (_options.UsesPlainHttp(registry) ? "http://" : "https://") + registry + "/v2/";

    private Uri ManifestUri(OciReference reference) => new(BaseUrl(reference.Registry) + reference.Repository + "/manifests/" + reference.ManifestReference);

    private Uri BlobUri(OciRepository repository, string digest) => new(BaseUrl(repository.Registry) + repository.Name + "/blobs/" + digest);

    private static string PullScope(string repository) => "repository:" + repository + ":pull";

    private static string PushScope(string repository) => "repository:" + repository + ":pull,push";

    // ---- the request pipeline ----------------------------------------------------------------------------------------

    /// <summary>One logical request; the message is rebuilt for every attempt.</summary>
    private sealed class OciRequest(string registry, HttpMethod method, Uri uri, string? scope)
    {
        public string Registry { get; } = registry;

        public HttpMethod Method { get; } = method;

        public Uri Uri { get; set; } = uri;

        /// <summary>The token scope this request needs (<c>repository:name:pull</c>), or null.</summary>
        public string? Scope { get; } = scope;

        public Func<HttpContent>? Content { get; init; }

        public Action<HttpRequestMessage>? Configure { get; init; }

        public bool AcceptManifests { get; init; }

        /// <summary>False for requests whose retry needs more than a resend (chunk PATCH): the caller handles failures.</summary>
        public bool AllowRetry { get; init; } = true;

        /// <summary>A request to a token service: sent with <see cref="FixedAuthorization"/>, 401 returned as is.</summary>
        public bool IsTokenRequest { get; init; }

        public AuthenticationHeaderValue? FixedAuthorization { get; init; }

        /// <summary>Method and URL without the query (upload URLs carry opaque state in theirs).</summary>
        public string Display => Method.Method + " " + Uri.GetLeftPart(UriPartial.Path);
    }

    /// <summary>Failed attempts in a row without progress, shared by the requests of one operation.</summary>
    private sealed class RetryState
    {
        public int Failures { get; set; }
    }

    private sealed record CachedToken(string Token, DateTimeOffset RenewAt);

    private async Task<HttpResponseMessage> SendAsync(OciRequest request, RetryState retry, CancellationToken cancellationToken)
    {
        bool answeredChallenge = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var message = new HttpRequestMessage(request.Method, request.Uri);
            message.Headers.TryAddWithoutValidation("User-Agent", _options.UserAgent);
            if (request.AcceptManifests)
            {
                foreach (string mediaType in OciMediaTypes.ManifestAccept)
                {
                    message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
                }
            }

            request.Configure?.Invoke(message);
            if (request.Content is not null)
            {
                message.Content = request.Content();
            }

            message.Headers.Authorization = request.IsTokenRequest
                ? request.FixedAuthorization
                : await GetAuthorizationAsync(request, retry, cancellationToken).ConfigureAwait(false);

            HttpResponseMessage response;
            try
            {
                response = await SendWithHeaderTimeoutAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (request.AllowRetry && IsTransientFailure(ex, cancellationToken))
            {
                message.Dispose();
                await BackOffAsync(request, retry, ex, null, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (response.StatusCode == HttpStatusCode.Unauthorized && !request.IsTokenRequest)
            {
                using (response)
                {
                    if (answeredChallenge)
                    {
                        throw await RefusedAsync(request, response, cancellationToken).ConfigureAwait(false);
                    }

                    answeredChallenge = true;
                    await AnswerChallengeAsync(request, response, retry, cancellationToken).ConfigureAwait(false);
                }

                continue;
            }

            if (request.AllowRetry && IsTransientStatus(response.StatusCode))
            {
                FailedStatus failed;
                using (response)
                {
                    failed = new FailedStatus(response.StatusCode, response.ReasonPhrase, await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false), RetryAfter(response));
                }

                await BackOffAsync(request, retry, null, failed, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return response;
        }
    }

    /// <summary>
    /// Sends one attempt and waits for the response headers for at most <see cref="OciClientOptions.ReadIdleTimeout"/>,
    /// plus one second per <see cref="MinUploadBytesPerSecond"/> bytes of request body (uploads must average at least that).
    /// </summary>
    private async Task<HttpResponseMessage> SendWithHeaderTimeoutAsync(HttpRequestMessage message, CancellationToken cancellationToken)
    {
        if (_options.ReadIdleTimeout == Timeout.InfiniteTimeSpan)
        {
            return await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }

        long bodyBytes = message.Content?.Headers.ContentLength ?? 0;
        TimeSpan limit = _options.ReadIdleTimeout + TimeSpan.FromSeconds((double)bodyBytes / MinUploadBytesPerSecond);
        using var timeout = new CancellationTokenSource(limit, TimeProvider);
        using CancellationTokenRegistration link = cancellationToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), timeout);
        try
        {
            return await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"No response within {limit.TotalSeconds:0.#} s (OciClientOptions.ReadIdleTimeout, plus time for {bodyBytes} bytes of body at {MinUploadBytesPerSecond / 1024} KiB/s).", ex);
        }
    }

    private sealed record FailedStatus(HttpStatusCode StatusCode, string? Reason, IReadOnlyList<OciError> Errors, TimeSpan? RetryAfter);

    private static bool IsTransientStatus(HttpStatusCode status) =>
        status == HttpStatusCode.TooManyRequests || ((int)status >= 500 && status != HttpStatusCode.NotImplemented && status != HttpStatusCode.HttpVersionNotSupported);

    private static bool IsTransientFailure(Exception ex, CancellationToken cancellationToken) => ex switch
    {
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        HttpRequestException => true,
        IOException => true,
        TimeoutException => true,
        SocketException => true,
        _ => false,
    };

    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        RetryConditionHeaderValue? retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }

        if (retryAfter?.Date is { } date)
        {
            TimeSpan wait = date - TimeProvider.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    /// <summary>Counts a failure; waits before the next attempt, or throws when the retries are used up.</summary>
    private async Task BackOffAsync(OciRequest request, RetryState retry, Exception? exception, FailedStatus? status, CancellationToken cancellationToken)
    {
        retry.Failures++;
        string reason = exception is not null
            ? DescribeException(exception)
            : $"{(int)status!.StatusCode} {status.Reason}{ErrorsText(status.Errors)}";
        if (retry.Failures > _options.MaxRetries)
        {
            string what = status?.StatusCode == HttpStatusCode.TooManyRequests ? "is rate limiting requests" : "is unavailable";
            throw new OciRegistryUnavailableException(
                $"Registry {request.Registry} {what}: {request.Display} failed {retry.Failures} times in a row (OciClientOptions.MaxRetries = {_options.MaxRetries}); last error: {reason}.",
                request.Registry, retry.Failures, status?.StatusCode, status?.Errors, exception);
        }

        TimeSpan delay = status?.RetryAfter is { } retryAfter ? retryAfter : Backoff(retry.Failures);
        if (delay > _options.MaxRetryDelay)
        {
            delay = _options.MaxRetryDelay;
        }

        Log.Retrying(_logger, request.Display, request.Registry, reason, retry.Failures, _options.MaxRetries, (long)delay.TotalMilliseconds);
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    private TimeSpan Backoff(int failures)
    {
        double factor = Math.Pow(2, Math.Min(failures - 1, 20)) * (0.5 + Random.Shared.NextDouble());
        double ms = Math.Min(_options.RetryBaseDelay.TotalMilliseconds * factor, _options.MaxRetryDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms);
    }

    private static string DescribeException(Exception exception)
    {
        var parts = new List<string>();
        for (Exception? e = exception; e is not null && parts.Count < 3; e = e.InnerException)
        {
            if (!parts.Contains(e.Message))
            {
                parts.Add(e.Message);
            }
        }

        return string.Join(" → ", parts);
    }

    // ---- authentication ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Sends <c>GET /v2/</c> to <paramref name="registry"/>, answering its challenge with the credentials for it (Basic,
    /// or a token from its token service): checks that the registry speaks the distribution API and accepts them.
    /// A registry that allows anonymous access answers without a challenge, so any credentials pass.
    /// </summary>
    /// <param name="registry">The registry, <c>host[:port]</c>.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <exception cref="OciAuthenticationException">The registry or its token service refused the credentials, or wants some and there are none.</exception>
    /// <exception cref="OciRegistryUnavailableException">The registry could not be reached.</exception>
    /// <exception cref="OciException">The registry answered with another error.</exception>
    public async Task CheckAuthenticationAsync(string registry, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(registry);
        var request = new OciRequest(registry, HttpMethod.Get, new Uri(BaseUrl(registry)), null);
        using HttpResponseMessage response = await SendAsync(request, new RetryState(), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await UnexpectedAsync(request, response, "check the credentials", cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<OciCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken)
    {
        if (_options.Credentials.TryGetValue(registry, out OciCredential? credential))
        {
            return credential;
        }

        return _options.CredentialProvider is { } provider
            ? await provider.GetCredentialAsync(registry, cancellationToken).ConfigureAwait(false)
            : null;
    }

    private static AuthenticationHeaderValue BasicHeader(OciCredential credential) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credential.Username + ":" + credential.Password)));

    private async ValueTask<AuthenticationHeaderValue?> GetAuthorizationAsync(OciRequest request, RetryState retry, CancellationToken cancellationToken)
    {
        if (!_challenges.TryGetValue(request.Registry, out OciAuthChallenge? challenge))
        {
            return null;
        }

        if (challenge.IsBasic)
        {
            OciCredential? credential = await GetCredentialAsync(request.Registry, cancellationToken).ConfigureAwait(false);
            return credential is null ? null : BasicHeader(credential);
        }

        if (_tokens.TryGetValue((request.Registry, request.Scope ?? ""), out CachedToken? cached) && cached.RenewAt > TimeProvider.GetUtcNow())
        {
            return new AuthenticationHeaderValue("Bearer", cached.Token);
        }

        string token = await FetchTokenAsync(request, challenge, retry, cancellationToken).ConfigureAwait(false);
        return new AuthenticationHeaderValue("Bearer", token);
    }

    private async Task AnswerChallengeAsync(OciRequest request, HttpResponseMessage response, RetryState retry, CancellationToken cancellationToken)
    {
        IEnumerable<string> headerValues = response.Headers.NonValidated.TryGetValues("WWW-Authenticate", out HeaderStringValues values)
            ? values
            : [];
        if (!OciAuthChallenge.TrySelect(headerValues, out OciAuthChallenge? challenge, out string schemes))
        {
            IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
            throw new OciAuthenticationException(
                $"Registry {request.Registry} answered 401 Unauthorized to {request.Display} without a challenge this client can answer (WWW-Authenticate schemes: {schemes}; Basic and Bearer are supported){ErrorsText(errors)}.",
                request.Registry, HttpStatusCode.Unauthorized, errors);
        }

        _challenges[request.Registry] = challenge;
        if (challenge.IsBasic)
        {
            if (await GetCredentialAsync(request.Registry, cancellationToken).ConfigureAwait(false) is null)
            {
                IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
                throw new OciAuthenticationException(
                    $"Registry {request.Registry} requires credentials (Basic auth, realm \"{challenge.Realm}\") for {request.Display}, and none are configured for it (OciClientOptions.Credentials or CredentialProvider){ErrorsText(errors)}.",
                    request.Registry, HttpStatusCode.Unauthorized, errors);
            }

            return;
        }

        _tokens.TryRemove((request.Registry, request.Scope ?? ""), out _);
        await FetchTokenAsync(request, challenge, retry, cancellationToken).ConfigureAwait(false);
    }

    private async Task<string> FetchTokenAsync(OciRequest request, OciAuthChallenge challenge, RetryState retry, CancellationToken cancellationToken)
    {
        string registry = request.Registry;
        if (!Uri.TryCreate(challenge.Realm, UriKind.Absolute, out Uri? realm) || (realm.Scheme != Uri.UriSchemeHttps && realm.Scheme != Uri.UriSchemeHttp))
        {
            throw new OciAuthenticationException($"Registry {registry} asked for a bearer token from realm '{challenge.Realm}', which is not an http(s) URL.", registry, HttpStatusCode.Unauthorized);
        }

        var scopes = new List<string>();
        foreach (string? scope in new[] { request.Scope, challenge.Scope })
        {
            if (!string.IsNullOrEmpty(scope) && !scopes.Contains(scope))
            {
                scopes.Add(scope);
            }
        }

        var query = new StringBuilder(realm.Query.TrimStart('?'));
        void Add(string name, string value) => query.Append(query.Length == 0 ? "" : "&").Append(name).Append('=').Append(Uri.EscapeDataString(value));
        if (!string.IsNullOrEmpty(challenge.Service))
        {
            Add("service", challenge.Service);
        }

        foreach (string scope in scopes)
        {
            Add("scope", scope);
        }

        var tokenUri = new UriBuilder(realm) { Query = query.ToString() }.Uri;
        OciCredential? credential = await GetCredentialAsync(registry, cancellationToken).ConfigureAwait(false);
        var tokenRequest = new OciRequest(registry, HttpMethod.Get, tokenUri, null)
        {
            IsTokenRequest = true,
            FixedAuthorization = credential is null ? null : BasicHeader(credential),
        };

        string scopeText = scopes.Count == 0 ? "(no scope)" : string.Join(" ", scopes);
        using HttpResponseMessage response = await SendAsync(tokenRequest, retry, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
            string status = $"{(int)response.StatusCode} {response.ReasonPhrase}{ErrorsText(errors)}";
            throw new OciAuthenticationException(
                credential is null
                    ? $"Registry {registry} requires authentication: its token service {realm.GetLeftPart(UriPartial.Path)} refused anonymous access to {scopeText} ({status}); configure credentials for {registry}."
                    : $"The credentials for registry {registry} (user '{credential.Username}') were refused by its token service {realm.GetLeftPart(UriPartial.Path)} for {scopeText} ({status}).",
                registry, response.StatusCode, errors);
        }

        if (!response.IsSuccessStatusCode)
        {
            IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
            throw new OciException(
                $"The token service {realm.GetLeftPart(UriPartial.Path)} of registry {registry} answered {(int)response.StatusCode} {response.ReasonPhrase}{ErrorsText(errors)} for {scopeText}.",
                registry, response.StatusCode, errors);
        }

        byte[] body = await ReadLimitedAsync(response, TokenBodyLimit, "the token response", registry, cancellationToken).ConfigureAwait(false);
        string? token = null;
        TimeSpan lifetime = s_defaultTokenLifetime;
        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            JsonElement root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("token", out JsonElement t) && t.ValueKind == JsonValueKind.String)
                {
                    token = t.GetString();
                }

                if (string.IsNullOrEmpty(token) && root.TryGetProperty("access_token", out JsonElement a) && a.ValueKind == JsonValueKind.String)
                {
                    token = a.GetString();
                }

                if (root.TryGetProperty("expires_in", out JsonElement e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long seconds) && seconds > 0)
                {
                    lifetime = TimeSpan.FromSeconds(Math.Min(seconds, 365L * 24 * 3600));
                }
            }
        }
        catch (JsonException)
        {
            token = null;
        }

        if (string.IsNullOrEmpty(token))
        {
            throw new OciAuthenticationException($"The token service {realm.GetLeftPart(UriPartial.Path)} of registry {registry} answered without a token (expected JSON with 'token' or 'access_token').", registry, response.StatusCode);
        }

        TimeSpan margin = lifetime / 2 < s_tokenRenewalMargin ? lifetime / 2 : s_tokenRenewalMargin;
        _tokens[(registry, request.Scope ?? "")] = new CachedToken(token, TimeProvider.GetUtcNow() + lifetime - margin);
        Log.TokenIssued(_logger, registry, scopeText, realm.GetLeftPart(UriPartial.Path), (long)lifetime.TotalSeconds);
        return token;
    }

    private async Task<OciAuthenticationException> RefusedAsync(OciRequest request, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        string status = $"401 Unauthorized{ErrorsText(errors)}";
        OciCredential? credential = await GetCredentialAsync(request.Registry, cancellationToken).ConfigureAwait(false);
        _challenges.TryGetValue(request.Registry, out OciAuthChallenge? challenge);
        string message = challenge?.IsBearer == true
            ? $"Registry {request.Registry} refused the bearer token issued by {challenge.Realm} for {request.Scope ?? "(no scope)"} on {request.Display} ({status})" +
              (credential is null ? "; configure credentials for it." : $"; the credentials (user '{credential.Username}') were refused or lack access.")
            : credential is null
                ? $"Registry {request.Registry} requires credentials for {request.Display} and none are configured for it ({status})."
                : $"Registry {request.Registry} refused the credentials for user '{credential.Username}' on {request.Display} ({status}).";
        _tokens.TryRemove((request.Registry, request.Scope ?? ""), out _);
        return new OciAuthenticationException(message, request.Registry, HttpStatusCode.Unauthorized, errors);
    }

    // ---- errors and bodies -------------------------------------------------------------------------------------------

    internal static string ErrorsText(IReadOnlyList<OciError>? errors) =>
        errors is null || errors.Count == 0 ? "" : " (" + string.Join("; ", errors) + ")";

    private static async Task<IReadOnlyList<OciError>> ReadErrorsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.RequestMessage?.Method == HttpMethod.Head)
        {
            return [];
        }

        byte[] body;
        try
        {
            using Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new MemoryStream();
            byte[] chunk = new byte[8192];
            int n;
            while (buffer.Length < ErrorBodyLimit && (n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, n);
            }

            body = buffer.ToArray();
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return [];
        }

        if (body.Length == 0)
        {
            return [];
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object &&
                document.RootElement.TryGetProperty("errors", out JsonElement errors) && errors.ValueKind == JsonValueKind.Array)
            {
                var result = new List<OciError>();
                foreach (JsonElement error in errors.EnumerateArray().Take(10))
                {
                    if (error.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    string code = error.TryGetProperty("code", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
                    string message = error.TryGetProperty("message", out JsonElement m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
                    string? detail = error.TryGetProperty("detail", out JsonElement d) && d.ValueKind != JsonValueKind.Null ? Shorten(d.GetRawText(), 500) : null;
                    result.Add(new OciError(code, Shorten(message, 500), detail));
                }

                return result;
            }
        }
        catch (JsonException)
        {
            // not JSON: fall through and show the start of the text
        }

        string text = Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 300))).Trim();
        return text.Length == 0 ? [] : [new OciError("", Shorten(text, 300), null)];
    }

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    /// <summary>The error for an answer the operation cannot use (after 401 handling and retries).</summary>
    private static async Task<OciException> UnexpectedAsync(OciRequest request, HttpResponseMessage response, string doing, CancellationToken cancellationToken)
    {
        IReadOnlyList<OciError> errors = await ReadErrorsAsync(response, cancellationToken).ConfigureAwait(false);
        string status = $"{(int)response.StatusCode} {response.ReasonPhrase}{ErrorsText(errors)}";
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => new OciAuthenticationException($"Registry {request.Registry} refused {doing}: {status}.", request.Registry, response.StatusCode, errors),
            HttpStatusCode.Forbidden => new OciAuthenticationException($"Registry {request.Registry} denied {doing}: {status}; the credentials in use are not allowed to do this.", request.Registry, response.StatusCode, errors),
            HttpStatusCode.NotFound => new OciNotFoundException($"Registry {request.Registry} could not {doing}: not found{ErrorsText(errors)}.", request.Registry, errors),
            _ when IsTransientStatus(response.StatusCode) => new OciRegistryUnavailableException($"Registry {request.Registry} failed to {doing}: {status}.", request.Registry, 1, response.StatusCode, errors),
            _ => new OciException($"Registry {request.Registry} rejected {doing} ({request.Display}): {status}.", request.Registry, response.StatusCode, errors),
        };
    }

    /// <summary>Reads a small body (manifest, tag list, token) completely, with the idle timeout; more than <paramref name="limit"/> bytes is an error.</summary>
    private async Task<byte[]> ReadLimitedAsync(HttpResponseMessage response, int limit, string what, string registry, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength is { } declared && declared > limit)
        {
            throw new OciSizeLimitException($"Registry {registry} sent {what} of {declared} bytes, more than the limit of {limit} bytes.", limit, declared, registry);
        }

        using Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var idle = new IdleTimeout(_options.ReadIdleTimeout, TimeProvider, cancellationToken);
        var buffer = new MemoryStream();
        byte[] chunk = new byte[16 * 1024];
        while (true)
        {
            int n = await idle.ReadAsync(body, chunk).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            if (buffer.Length + n > limit)
            {
                throw new OciSizeLimitException($"Registry {registry} sent {what} of more than the limit of {limit} bytes.", limit, buffer.Length + n, registry);
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>Cancels a read that gets no data for the idle timeout; the timer restarts for every read.</summary>
    private sealed class IdleTimeout : IDisposable
    {
        private readonly TimeSpan _timeout;
        private readonly CancellationTokenSource _cts;
        private readonly CancellationTokenRegistration _link;
        private readonly CancellationToken _outer;

        public IdleTimeout(TimeSpan timeout, TimeProvider timeProvider, CancellationToken outer)
        {
            _timeout = timeout;
            _outer = outer;
            _cts = new CancellationTokenSource(Timeout.InfiniteTimeSpan, timeProvider);
            _link = outer.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _cts);
        }

        public async ValueTask<int> ReadAsync(Stream stream, Memory<byte> buffer)
        {
            _cts.CancelAfter(_timeout);
            try
            {
                return await stream.ReadAsync(buffer, _cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!_outer.IsCancellationRequested && _cts.IsCancellationRequested)
            {
                throw new TimeoutException($"No data received for {_timeout.TotalSeconds:0.#} s (OciClientOptions.ReadIdleTimeout).", ex);
            }
        }

        public void Dispose()
        {
            _link.Dispose();
            _cts.Dispose();
        }
    }

    private static string? HeaderValue(HttpResponseMessage response, string name) =>
        response.Headers.NonValidated.TryGetValues(name, out HeaderStringValues values) ? values.FirstOrDefault() : null;

    private static Uri ResolveLocation(OciRequest request, HttpResponseMessage response, string doing)
    {
        Uri? location = response.Headers.Location;
        if (location is null)
        {
            throw new OciException($"Registry {request.Registry} answered {(int)response.StatusCode} to {doing} without a Location header.", request.Registry, response.StatusCode);
        }

        return location.IsAbsoluteUri ? location : new Uri(request.Uri, location);
    }

    private static Uri AppendQuery(Uri uri, string name, string value)
    {
        string url = uri.AbsoluteUri;
        char separator = url.Contains('?', StringComparison.Ordinal) ? '&' : '?';
        return new Uri(url + separator + name + "=" + Uri.EscapeDataString(value));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3400, Level = LogLevel.Warning, Message = "{Request} to registry {Registry} failed ({Reason}); retry {Attempt} of {MaxRetries} in {DelayMs} ms.")]
        public static partial void Retrying(ILogger logger, string request, string registry, string reason, int attempt, int maxRetries, long delayMs);

        [LoggerMessage(EventId = 3401, Level = LogLevel.Debug, Message = "Got a bearer token for registry {Registry} ({Scope}) from {Realm}, valid for {Seconds} s.")]
        public static partial void TokenIssued(ILogger logger, string registry, string scope, string realm, long seconds);

        [LoggerMessage(EventId = 3402, Level = LogLevel.Information, Message = "Pushed blob {Digest} ({Size} bytes) to {Repository} ({Mode}).")]
        public static partial void BlobPushed(ILogger logger, string digest, long size, string repository, string mode);

        [LoggerMessage(EventId = 3403, Level = LogLevel.Debug, Message = "Blob {Digest} is already in {Repository}; not uploaded.")]
        public static partial void BlobExists(ILogger logger, string digest, string repository);

        [LoggerMessage(EventId = 3404, Level = LogLevel.Information, Message = "Pulled blob {Digest} ({Size} bytes) from {Repository}.")]
        public static partial void BlobPulled(ILogger logger, string digest, long size, string repository);

        [LoggerMessage(EventId = 3405, Level = LogLevel.Warning, Message = "Registry {Registry} did not honour the Range request resuming blob {Digest} at byte {Offset}; downloading it again from the start.")]
        public static partial void DownloadRestarted(ILogger logger, string registry, string digest, long offset);

        [LoggerMessage(EventId = 3406, Level = LogLevel.Error, Message = "Blob {Digest} from {Repository} hashes to {ActualDigest}; discarded.")]
        public static partial void DigestMismatch(ILogger logger, string digest, string repository, string actualDigest);

        [LoggerMessage(EventId = 3407, Level = LogLevel.Information, Message = "Pushed manifest {Digest} to {Reference}.")]
        public static partial void ManifestPushed(ILogger logger, string digest, string reference);

        [LoggerMessage(EventId = 3408, Level = LogLevel.Warning, Message = "Resuming the upload to {Repository} at byte {Offset}.")]
        public static partial void UploadResumed(ILogger logger, string repository, long offset);
    }
}
