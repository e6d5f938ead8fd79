using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>
/// A minimal token service for the registry's token auth (distribution's "Token Authentication Implementation"): an
/// HttpListener on 127.0.0.1 that checks Basic credentials and issues ES256 JWTs whose header carries the signing
/// certificate (<c>x5c</c>), which the registry trusts through its <c>rootcertbundle</c>.
/// </summary>
internal sealed class TokenServer : IDisposable
{
    public const string User = "tokenuser";
    public const string Password = "token-pass";
    public const string Service = "warpgrid-test-registry";
    public const string Issuer = "warpgrid-test-issuer";

    private readonly HttpListener _listener;
    private readonly ECDsa _key;
    private readonly X509Certificate2 _certificate;
    private readonly string _workDirectory;
    private readonly Task _loop;
    private int _requests;
    private int _refusals;

    private TokenServer(HttpListener listener, ECDsa key, X509Certificate2 certificate, string workDirectory, int port)
    {
        _listener = listener;
        _key = key;
        _certificate = certificate;
        _workDirectory = workDirectory;
        Realm = $"http://127.0.0.1:{port}/token";
        Settings = new TokenAuthSettings(Realm, Service, Issuer, Path.Combine(workDirectory, "root.pem"));
        _loop = Task.Run(AcceptLoopAsync);
    }

    public string Realm { get; }

    public TokenAuthSettings Settings { get; }

    /// <summary>Token lifetime announced in <c>expires_in</c>.</summary>
    public int ExpiresInSeconds { get; set; } = 60;

    /// <summary>Tokens issued.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Requests refused for bad or missing credentials.</summary>
    public int Refusals => Volatile.Read(ref _refusals);

    public static TokenServer Start()
    {
        string work = Path.Combine(Path.GetTempPath(), "warpgrid-tokens-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(work);
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=warpgrid test token issuer", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        DateTimeOffset now = TimeProvider.System.GetUtcNow();
        X509Certificate2 certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
        File.WriteAllText(Path.Combine(work, "root.pem"), certificate.ExportCertificatePem() + "\n");

        for (int attempt = 0; ; attempt++)
        {
            int port = RegistryServer.FreePort();
            var listener = new HttpListener();
            listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                listener.Start();
            }
            catch (HttpListenerException) when (attempt < 3)
            {
                listener.Close();
                continue;
            }

            return new TokenServer(listener, key, certificate, work, port);
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                Handle(context);
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
            {
                // client went away
            }
        }
    }

    private void Handle(HttpListenerContext context)
    {
        HttpListenerResponse response = context.Response;
        if (context.Request.Url?.AbsolutePath != "/token")
        {
            Respond(response, 404, """{"errors":[{"code":"NOT_FOUND","message":"no such endpoint"}]}""");
            return;
        }

        string? authorization = context.Request.Headers["Authorization"];
        string expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(User + ":" + Password));
        if (authorization != expected)
        {
            Interlocked.Increment(ref _refusals);
            response.AddHeader("WWW-Authenticate", "Basic realm=\"warpgrid-test-tokens\"");
            Respond(response, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}""");
            return;
        }

        string[] scopes = context.Request.QueryString.GetValues("scope") ?? [];
        string service = context.Request.QueryString["service"] ?? "";
        string token = IssueToken(service, scopes);
        Interlocked.Increment(ref _requests);
        Respond(response, 200, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = ExpiresInSeconds,
            ["issued_at"] = TimeProvider.System.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        }));
    }

    private string IssueToken(string audience, string[] scopes)
    {
        var access = new List<Dictionary<string, object>>();
        foreach (string scope in scopes)
        {
            // type:name:actions, where only the name could (in general) contain ':'.
            int first = scope.IndexOf(':', StringComparison.Ordinal);
            int last = scope.LastIndexOf(':');
            if (first < 0 || last <= first)
            {
                continue;
            }

            access.Add(new Dictionary<string, object>
            {
                ["type"] = scope[..first],
                ["name"] = scope[(first + 1)..last],
                ["actions"] = scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries),
            });
        }

        long now = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds();
        string header = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["typ"] = "JWT",
            ["alg"] = "ES256",
            ["x5c"] = new[] { Convert.ToBase64String(_certificate.RawData) },
        }));
        string claims = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = User,
            ["aud"] = audience,
            ["exp"] = now + ExpiresInSeconds,
            ["nbf"] = now - 5,
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        }));
        string signingInput = header + "." + claims;
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static void Respond(HttpListenerResponse response, int status, string json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json);
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength64 = body.Length;
        response.OutputStream.Write(body);
        response.Close();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // the loop ends with the listener
        }

        _certificate.Dispose();
        _key.Dispose();
        try
        {
            Directory.Delete(_workDirectory, recursive: true);
        }
        catch (IOException)
        {
            // left for the OS to clean
        }
    }
}
