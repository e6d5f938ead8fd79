using System.Security.Cryptography;
using System.Text;

namespace WarpGrid.Core.Security;

/// <summary>Who made a request, once authenticated.</summary>
/// <param name="Kind"><c>serviceaccount</c>, <c>user</c> (a client certificate of the cluster CA) or <c>node</c> (a node certificate).</param>
/// <param name="Name">For a service account <c>namespace:name</c>; otherwise the certificate's common name.</param>
/// <param name="Groups">Groups (a user certificate's organizational units; nodes are in <c>system:nodes</c>).</param>
/// <param name="Method"><c>token</c> or <c>certificate</c>.</param>
/// <param name="CredentialId">The token id or the certificate serial (never the secret).</param>
public sealed record WarpIdentity(string Kind, string Name, IReadOnlyList<string> Groups, string Method, string CredentialId)
{
    /// <summary>The kind of a service-account identity.</summary>
    public const string ServiceAccountKind = "serviceaccount";

    /// <summary>The kind of a client-certificate user.</summary>
    public const string UserKind = "user";

    /// <summary>The kind of a node certificate.</summary>
    public const string NodeKind = "node";

    /// <summary>The group every node is in.</summary>
    public const string NodesGroup = "system:nodes";

    /// <summary><c>kind:name</c>, as role bindings and audit records name it.</summary>
    public string Subject => $"{Kind}:{Name}";

    /// <summary>For a service account, its namespace.</summary>
    public string? ServiceAccountNamespace => Kind == ServiceAccountKind ? Name[..Name.IndexOf(':', StringComparison.Ordinal)] : null;

    /// <inheritdoc />
    public override string ToString() => Subject;
}

/// <summary>
/// A service-account token: <c>wgt.&lt;id&gt;.&lt;secret&gt;</c>, 8 + 32 random lowercase letters and digits (165 bits
/// of secret). The store keeps the id and the SHA-256 of the secret; the token itself is shown once, at creation.
/// </summary>
/// <param name="Id">8 lowercase letters or digits.</param>
/// <param name="Secret">32 lowercase letters or digits.</param>
public sealed record ApiToken(string Id, string Secret)
{
    /// <summary>The prefix of every API token.</summary>
    public const string Prefix = "wgt";

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>A fresh random token.</summary>
    public static ApiToken Create() => new(RandomNumberGenerator.GetString(Alphabet, 8), RandomNumberGenerator.GetString(Alphabet, 32));

    /// <summary>Parses a token; the error never echoes the secret.</summary>
    public static bool TryParse(string? text, out ApiToken? token)
    {
        token = null;
        if (text is not { Length: 45 } || !text.StartsWith(Prefix + ".", StringComparison.Ordinal) || text[12] != '.')
        {
            return false;
        }

        var id = text.AsSpan(4, 8);
        var secret = text.AsSpan(13);
        foreach (var c in id)
        {
            if (!Alphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        foreach (var c in secret)
        {
            if (!Alphabet.Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        token = new ApiToken(id.ToString(), secret.ToString());
        return true;
    }

    /// <summary>Hex SHA-256 of the secret.</summary>
    public string SecretHash => Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(Secret)));

    /// <inheritdoc />
    public override string ToString() => $"{Prefix}.{Id}.{Secret}";
}
