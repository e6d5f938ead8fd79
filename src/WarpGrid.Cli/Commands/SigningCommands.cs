using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using WarpGrid.Cli.Build;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Oci.Signing;

namespace WarpGrid.Cli.Commands;

/// <summary>
/// <c>warp sign</c>, <c>warp verify</c> and <c>warp keys generate</c>: cosign key-based signatures of artifacts in a
/// registry (<see cref="CosignSigner"/>, <see cref="CosignVerifier"/>, <see cref="CosignKeys"/>).
/// </summary>
internal static class SigningCommands
{
    /// <summary>The variable that holds the password of an encrypted private key (cosign's name for it).</summary>
    public const string PasswordVariable = "COSIGN_PASSWORD";

    public static Command CreateSign(CliContext context)
    {
        var reference = CommandHelpers.NoOptionLikeValues(new Argument<string>("reference") { Description = "The artifact to sign: HOST/REPO:TAG or HOST/REPO@sha256:HEX (a tag is resolved to its digest first)." });
        var key = new Option<string>("--key") { Description = "The ECDSA P-256 private key (PKCS#8 PEM, encrypted PKCS#8 with $COSIGN_PASSWORD, or EC PRIVATE KEY), e.g. cosign.key.", HelpName = "FILE", Required = true };
        var json = CommandHelpers.JsonOption();
        var command = new Command("sign", "Sign an artifact's manifest digest in cosign's format and push the signature to the tag sha256-<hex>.sig of its repository.") { reference, key, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var target = RegistryCommands.ParseReference(parse.GetValue(reference)!);
            using var privateKey = LoadPrivateKey(context, parse.GetValue(key)!);
            using var client = RegistryClientFactory.Create(context, target.Registry, null);
            var digest = await RegistryClientFactory.CallAsync(target.Registry, () => client.ResolveAsync(target, cancellationToken)).ConfigureAwait(false);
            var signature = await RegistryClientFactory.CallAsync(target.Registry, () => CosignSigner.SignAsync(client, target, digest, privateKey, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = true,
                    ["reference"] = target.ToString(),
                    ["digest"] = digest,
                    ["signature"] = signature.SignatureReference.ToString(),
                    ["signatureDigest"] = signature.SignatureManifestDigest,
                    ["payloadDigest"] = signature.PayloadDigest,
                    ["signatures"] = signature.SignatureCount,
                    ["keyId"] = CosignKeys.KeyId(privateKey),
                });
            }
            else
            {
                context.Out.WriteLine($"signed {target.RepositoryReference}@{digest}");
                context.Out.WriteLine($"  signature {signature.SignatureReference}");
                context.Out.WriteLine($"  digest    {signature.SignatureManifestDigest} ({signature.SignatureCount} signature{(signature.SignatureCount == 1 ? "" : "s")})");
                context.Out.WriteLine($"  key       {CosignKeys.KeyId(privateKey)}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command CreateVerify(CliContext context)
    {
        var reference = CommandHelpers.NoOptionLikeValues(new Argument<string>("reference") { Description = "The artifact to verify: HOST/REPO:TAG or HOST/REPO@sha256:HEX." });
        var keys = new Option<string[]>("--key") { Description = "A public key (PEM 'PUBLIC KEY', e.g. cosign.pub); repeat for several, any of which may have signed.", HelpName = "FILE", Required = true };
        var json = CommandHelpers.JsonOption();
        var command = new Command("verify", "Verify an artifact's cosign signature (simple signing under sha256-<hex>.sig, or a Sigstore DSSE bundle) with public keys; exit 5 when refused.") { reference, keys, json };
        CommandHelpers.SetAction(command, context, json, async (parse, cancellationToken) =>
        {
            var target = RegistryCommands.ParseReference(parse.GetValue(reference)!);
            var publicKeys = new List<ECDsa>();
            try
            {
                foreach (var path in parse.GetValue(keys)!)
                {
                    publicKeys.Add(LoadPublicKey(path));
                }

                using var client = RegistryClientFactory.Create(context, target.Registry, null);
                var digest = await RegistryClientFactory.CallAsync(target.Registry, () => client.ResolveAsync(target, cancellationToken)).ConfigureAwait(false);
                var result = await RegistryClientFactory.CallAsync(target.Registry, () => CosignVerifier.VerifyAsync(client, target, digest, publicKeys, cancellationToken)).ConfigureAwait(false);
                if (!result.Verified)
                {
                    throw new CliFailure(ExitCodes.Rejected, "signature_refused", $"{target.RepositoryReference}@{digest} is not verified: {result.Reason}",
                        "sign it with the matching private key (warp sign --key cosign.key), or pass the public key it was signed with");
                }

                if (parse.GetValue(json))
                {
                    context.WriteJson(new JsonObject
                    {
                        ["ok"] = true,
                        ["verified"] = true,
                        ["reference"] = target.ToString(),
                        ["digest"] = digest,
                        ["keyId"] = result.KeyId,
                        ["reason"] = result.Reason,
                    });
                }
                else
                {
                    context.Out.WriteLine($"verified {target.RepositoryReference}@{digest}");
                    context.Out.WriteLine($"  {result.Reason}");
                }

                return ExitCodes.Ok;
            }
            finally
            {
                foreach (var publicKey in publicKeys)
                {
                    publicKey.Dispose();
                }
            }
        });
        return command;
    }

    public static Command CreateKeys(CliContext context)
    {
        var outDir = new Option<string?>("--out-dir") { Description = "Where to write cosign.key and cosign.pub (default: the current directory).", HelpName = "DIR" };
        var force = new Option<bool>("--force") { Description = "Overwrite existing cosign.key and cosign.pub." };
        var json = CommandHelpers.JsonOption();
        var generate = new Command("generate", "Create an ECDSA P-256 key pair: cosign.key (PKCS#8 PEM, mode 0600; encrypted when $COSIGN_PASSWORD is set) and cosign.pub.") { outDir, force, json };
        CommandHelpers.SetAction(generate, context, json, async (parse, cancellationToken) =>
        {
            var dir = Path.GetFullPath(parse.GetValue(outDir) ?? ".");
            var keyPath = Path.Combine(dir, "cosign.key");
            var pubPath = Path.Combine(dir, "cosign.pub");
            if (!parse.GetValue(force) && (File.Exists(keyPath) || File.Exists(pubPath)))
            {
                throw new CliFailure(ExitCodes.Invalid, "key_exists", $"{(File.Exists(keyPath) ? keyPath : pubPath)} already exists; not overwriting it", "pass --force to replace the key pair, or --out-dir to write it elsewhere");
            }

            var password = context.GetEnv(PasswordVariable);
            var (privatePem, publicPem) = CosignKeys.Generate(string.IsNullOrEmpty(password) ? null : password);
            Directory.CreateDirectory(dir);
            await WritePrivateAsync(keyPath, privatePem, cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(pubPath, publicPem, cancellationToken).ConfigureAwait(false);
            using var publicKey = CosignKeys.LoadPublic(publicPem);
            if (parse.GetValue(json))
            {
                context.WriteJson(new JsonObject
                {
                    ["ok"] = true,
                    ["privateKey"] = keyPath,
                    ["publicKey"] = pubPath,
                    ["encrypted"] = !string.IsNullOrEmpty(password),
                    ["keyId"] = CosignKeys.KeyId(publicKey),
                });
            }
            else
            {
                context.Out.WriteLine($"private key {Packer.DisplayPath(keyPath)} ({(string.IsNullOrEmpty(password) ? "not encrypted: set $COSIGN_PASSWORD to encrypt it" : "encrypted with $COSIGN_PASSWORD")})");
                context.Out.WriteLine($"public key  {Packer.DisplayPath(pubPath)}");
                context.Out.WriteLine($"key id      {CosignKeys.KeyId(publicKey)}");
            }

            return ExitCodes.Ok;
        });
        var keys = new Command("keys", "Key pairs for signing artifacts (warp sign, warp verify).");
        keys.Subcommands.Add(generate);
        return keys;
    }

    private static async Task WritePrivateAsync(string path, string pem, CancellationToken cancellationToken)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using (var stream = new FileStream(temp, options))
        await using (var writer = new StreamWriter(stream))
        {
            await writer.WriteAsync(pem.AsMemory(), cancellationToken).ConfigureAwait(false);
        }

        File.Move(temp, path, overwrite: true);
    }

    private static ECDsa LoadPrivateKey(CliContext context, string path)
    {
        var pem = ReadKeyFile(path);
        try
        {
            return CosignKeys.LoadPrivate(pem, context.GetEnv(PasswordVariable));
        }
        catch (FormatException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "key_invalid", $"{path}: {ex.Message}", $"pass an ECDSA P-256 private key PEM (warp keys generate writes one); set ${PasswordVariable} for an encrypted one");
        }
    }

    private static ECDsa LoadPublicKey(string path)
    {
        var pem = ReadKeyFile(path);
        try
        {
            return CosignKeys.LoadPublic(pem);
        }
        catch (FormatException ex)
        {
            throw new CliFailure(ExitCodes.Invalid, "key_invalid", $"{path}: {ex.Message}", "pass the public key PEM (cosign.pub, 'PUBLIC KEY')");
        }
    }

    private static string ReadKeyFile(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.Invalid, "key_unreadable", $"cannot read the key file {path}: {ex.Message}", "check the --key path (warp keys generate writes cosign.key and cosign.pub)");
        }
    }
}
