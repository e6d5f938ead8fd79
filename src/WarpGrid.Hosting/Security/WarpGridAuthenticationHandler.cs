using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Security;

namespace WarpGrid.Hosting.Security;

/// <summary>
/// Authenticates API callers: a bearer service-account token (<c>Authorization: Bearer wgt.…</c>), or a client
/// certificate issued by the cluster CA (users: <c>O=WarpGrid users</c>; nodes: <c>O=WarpGrid nodes</c>) that is
/// within its validity and not on the deny list. Unauthenticated calls get 401 problem+json with
/// <c>WWW-Authenticate: Bearer realm="warpgrid"</c>.
/// </summary>
internal sealed class WarpGridAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AccessControl access,
    ClientCertificateTrust trust) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "WarpGrid";
    internal const string FailureItem = "warpgrid.authn.failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        WarpIdentity? identity;
        string? refusal;
        if (header.Length > 0)
        {
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                return Failed("the Authorization header must be 'Bearer <token>'");
            }

            (identity, refusal) = await access.AuthenticateTokenAsync(header["Bearer ".Length..].Trim(), Context.RequestAborted).ConfigureAwait(false);
        }
        else if (Context.Connection.ClientCertificate is { } certificate)
        {
            (identity, refusal) = await trust.AuthenticateAsync(certificate, Context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            return AuthenticateResult.NoResult();
        }

        if (identity is null)
        {
            return Failed(refusal ?? "credential refused");
        }

        Context.Items[typeof(WarpIdentity)] = identity;
        var claims = new List<Claim> { new(ClaimTypes.NameIdentifier, identity.Subject), new(ClaimTypes.Name, identity.Name), new(ClaimTypes.AuthenticationMethod, identity.Method) };
        claims.AddRange(identity.Groups.Select(g => new Claim(ClaimTypes.Role, g)));
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));
    }

    private AuthenticateResult Failed(string reason)
    {
        Context.Items[FailureItem] = reason;
        return AuthenticateResult.Fail(reason);
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = Context.Items.TryGetValue(FailureItem, out var f) ? f as string : null;
        Response.Headers.WWWAuthenticate = failure is null
            ? "Bearer realm=\"warpgrid\""
            : $"Bearer realm=\"warpgrid\", error=\"invalid_token\", error_description=\"{failure.Replace('"', '\'')}\"";
        var detail = failure is null
            ? "this call needs a credential: a service-account token (Authorization: Bearer wgt.…) or a client certificate of the cluster CA; on the node itself the bootstrap admin token is in <data-dir>/admin-token (the warp CLI finds it)"
            : "the credential was refused: " + failure;
        var body = WarpGrid.Proxy.WarpGridProblem.Create(401, "unauthenticated", "Unauthenticated", detail);
        await Results.Json(body, WarpGridApplicationJson.Options, WarpGrid.Proxy.WarpGridProblem.ContentType, 401).ExecuteAsync(Context).ConfigureAwait(false);
    }
}

/// <summary>
/// Which CA's client certificates identify API callers: the cluster CA on a control plane, the CA learned at join on an
/// agent, the node-local CA (<c>&lt;data&gt;/cluster/ca.crt</c>) on a standalone node when one exists.
/// </summary>
public sealed class ClientCertificateTrust
{
    private readonly Func<X509Certificate2?> _ca;
    private readonly AccessControl _access;
    private readonly TimeProvider _time;

    /// <summary>Creates the trust over a CA source.</summary>
    public ClientCertificateTrust(Func<X509Certificate2?> ca, AccessControl access, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(access);
        _ca = ca;
        _access = access;
        _time = time ?? TimeProvider.System;
    }

    private const int MaxCachedCertificates = 10_000;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _chained = new(StringComparer.Ordinal);

    /// <summary>The organisation of user certificates.</summary>
    public const string UserOrganization = "WarpGrid users";

    /// <summary>The organisation of node certificates.</summary>
    public const string NodeOrganization = "WarpGrid nodes";

    /// <summary>The identity a client certificate stands for, or why it is refused.</summary>
    public async ValueTask<(WarpIdentity? Identity, string? Refusal)> AuthenticateAsync(X509Certificate2 certificate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (_ca() is not { } ca)
        {
            return (null, "this node has no cluster CA, so client certificates cannot identify callers here; use a token");
        }

        var now = _time.GetUtcNow().UtcDateTime;
        if (certificate.NotAfter.ToUniversalTime() <= now || certificate.NotBefore.ToUniversalTime() > now.AddMinutes(5))
        {
            return (null, $"the client certificate '{certificate.Subject}' is not valid now (valid {certificate.NotBefore.ToUniversalTime():O} to {certificate.NotAfter.ToUniversalTime():O})");
        }

        // Building the chain costs most of a call; a certificate that chained to this CA once always does (expiry
        // and revocation are checked on every call above and below).
        var cacheKey = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(certificate.RawData)) + "/" + ca.Thumbprint;
        if (!_chained.ContainsKey(cacheKey))
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
            if (!chain.Build(certificate) || !chain.ChainElements[^1].Certificate.RawData.AsSpan().SequenceEqual(ca.RawData))
            {
                return (null, "the client certificate is not signed by this cluster's CA");
            }

            if (_chained.Count >= MaxCachedCertificates)
            {
                _chained.Clear();
            }

            _chained[cacheKey] = true;
        }

        if (await _access.IsRevokedAsync(certificate.SerialNumber, cancellationToken).ConfigureAwait(false))
        {
            return (null, $"the client certificate {certificate.SerialNumber} was revoked");
        }

        var name = certificate.GetNameInfo(X509NameType.SimpleName, false);
        var rdns = certificate.SubjectName.EnumerateRelativeDistinguishedNames().ToList();
        string? Attr(string oid) => rdns.FirstOrDefault(r => r.GetSingleElementType().Value == oid)?.GetSingleElementValue();
        var organization = Attr("2.5.4.10");
        var groups = rdns.Where(r => r.GetSingleElementType().Value == "2.5.4.11").Select(r => r.GetSingleElementValue()!).ToList();
        if (string.IsNullOrEmpty(name))
        {
            return (null, "the client certificate has no common name");
        }

        return organization switch
        {
            UserOrganization => (new WarpIdentity(WarpIdentity.UserKind, name, groups, "certificate", certificate.SerialNumber), null),
            NodeOrganization => (new WarpIdentity(WarpIdentity.NodeKind, name, [WarpIdentity.NodesGroup], "certificate", certificate.SerialNumber), null),
            _ => (null, $"the client certificate '{certificate.Subject}' is neither a user nor a node certificate of the cluster CA"),
        };
    }
}
