using System.CommandLine;
using System.Net;
using WarpGrid.Core.Oci;

namespace WarpGrid.Cli.Commands;

/// <summary><c>--username USER --password-stdin</c>: a credential for one registry given on the command line.</summary>
internal sealed class RegistryCredentialOptions
{
    public Option<string?> Username { get; } = new("--username", "-u")
    {
        Description = "User name for the registry (with --password-stdin); overrides Docker's config.json for that registry.",
        HelpName = "USER",
    };

    public Option<bool> PasswordStdin { get; } = new("--password-stdin")
    {
        Description = "Read the registry password (or token) from standard input, to its end; one trailing newline is dropped.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Username);
        command.Options.Add(PasswordStdin);
    }

    /// <summary>The credential the flags give, or null without them. Reads standard input for <c>--password-stdin</c>.</summary>
    public async Task<OciCredential?> ReadAsync(CliContext context, ParseResult parse, CancellationToken cancellationToken)
    {
        var username = parse.GetValue(Username);
        var fromStdin = parse.GetValue(PasswordStdin);
        if (username is null && !fromStdin)
        {
            return null;
        }

        if (string.IsNullOrEmpty(username))
        {
            throw new CliFailure(ExitCodes.Usage, "usage", "--password-stdin needs --username", "pass both: --username USER --password-stdin, with the password on standard input");
        }

        if (!fromStdin)
        {
            throw new CliFailure(ExitCodes.Usage, "usage", "--username needs --password-stdin (passwords are not taken as arguments)", "pipe the password in: echo \"$PASSWORD\" | warp ... --username USER --password-stdin");
        }

        var password = await context.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        if (password.EndsWith("\r\n", StringComparison.Ordinal))
        {
            password = password[..^2];
        }
        else if (password.EndsWith('\n'))
        {
            password = password[..^1];
        }

        if (password.Length == 0)
        {
            throw new CliFailure(ExitCodes.Usage, "usage", "--password-stdin read an empty password from standard input", "pipe the password in: echo \"$PASSWORD\" | warp ... --username USER --password-stdin");
        }

        return new OciCredential(username, password);
    }
}

/// <summary>
/// The one place the CLI makes registry clients: credentials from the command line for the named registry, then
/// Docker's config.json (<see cref="DockerConfigCredentialProvider"/>, found through the context's environment).
/// Also maps registry failures to exit codes.
/// </summary>
internal static class RegistryClientFactory
{
    /// <summary>The Docker config provider over <paramref name="context"/>'s environment (<c>DOCKER_CONFIG</c>, <c>HOME</c>, <c>PATH</c>).</summary>
    public static DockerConfigCredentialProvider DockerConfig(CliContext context) =>
        new(new DockerConfigCredentialProviderOptions { GetEnvironmentVariable = context.GetEnv });

    /// <summary>A client that uses <paramref name="credential"/> for <paramref name="registry"/> (when given), else config.json.</summary>
    public static OciRegistryClient Create(CliContext context, string registry, OciCredential? credential)
    {
        var options = new OciClientOptions { CredentialProvider = DockerConfig(context) };
        if (credential is not null)
        {
            options.Credentials[registry] = credential;
        }

        return new OciRegistryClient(options);
    }

    /// <summary>Reads the credential flags and makes the client for <paramref name="registry"/>.</summary>
    public static async Task<OciRegistryClient> CreateAsync(CliContext context, ParseResult parse, RegistryCredentialOptions flags, string registry, CancellationToken cancellationToken) =>
        Create(context, registry, await flags.ReadAsync(context, parse, cancellationToken).ConfigureAwait(false));

    /// <summary>Maps registry failures to exit codes: unreachable 4, any answer the registry refused 5, a bad artifact 2, unusable credentials 2.</summary>
    public static async Task<T> CallAsync<T>(string registry, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (OciRegistryUnavailableException ex)
        {
            throw new CliFailure(ExitCodes.Unreachable, "registry_unreachable", ex.Message, $"check that the registry at {registry} is running and reachable");
        }
        catch (HttpRequestException ex)
        {
            throw new CliFailure(ExitCodes.Unreachable, "registry_unreachable", $"cannot reach the registry {registry}: {ex.Message}", $"check that the registry at {registry} is running and reachable");
        }
        catch (OciInvalidArtifactException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "invalid_artifact", ex.Message, "pull a Wasm artifact (config application/vnd.wasm.config.v0+json, one application/wasm layer), e.g. one pushed with warp push");
        }
        catch (OciDigestMismatchException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "digest_mismatch", ex.Message, "the registry served content that does not match its digest; do not use it");
        }
        catch (OciNotFoundException ex)
        {
            throw new CliFailure(ExitCodes.Rejected, "not_found", ex.Message, "check the repository and tag (warp push prints them)");
        }
        catch (OciCredentialException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "credentials_unavailable", ex.Message, "fix Docker's config.json (or its credential helper), or pass --username USER --password-stdin");
        }
        catch (OciAuthenticationException ex)
        {
            throw new CliFailure(ExitCodes.Rejected, "unauthorized", ex.Message,
                $"log in with `warp registry login {registry} --username USER --password-stdin`, or pass --username USER --password-stdin");
        }
        catch (OciException ex)
        {
            var unreachable = ex.StatusCode is null or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
            throw new CliFailure(unreachable ? ExitCodes.Unreachable : ExitCodes.Rejected, unreachable ? "registry_unreachable" : "registry_rejected", ex.Message);
        }
    }
}
