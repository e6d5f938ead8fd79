using WarpGrid.Cli.Tests.Infrastructure;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Oci.Signing;

namespace WarpGrid.Cli.Tests;

/// <summary><c>warp keys generate</c>, <c>warp sign</c> and <c>warp verify</c> against a real CNCF distribution registry.</summary>
public sealed class SigningTests : IAsyncLifetime
{
    private static readonly byte[] Module = "\0asm\u0001\0\0\0"u8.ToArray();

    private readonly TempDir _dir = new("warp-cli-signing-");
    private DockerRegistry? _registry;

    private string Registry => _registry!.Address;

    public async Task InitializeAsync() => _registry = await DockerRegistry.StartAsync();

    public async Task DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _dir.Dispose();
    }

    private async Task<string> PushAsync(string reference)
    {
        using var client = new OciRegistryClient();
        return await client.PushWasmAsync(OciReference.Parse(reference), Module, new Dictionary<string, string> { [OciAnnotations.Created] = "2025-01-02T03:04:05Z" });
    }

    [Fact]
    public async Task Keys_generate_sign_and_verify_round_trip_and_another_key_is_refused_with_exit_5()
    {
        var reference = $"{Registry}/demo/signed:1.0";
        var digest = await PushAsync(reference);
        var keys = Path.Combine(_dir.Path, "keys");

        var generate = await Warp.RunAsync("keys", "generate", "--out-dir", keys, "--json");
        Assert.True(generate.ExitCode == 0, generate.ToString());
        var keyPath = Path.Combine(keys, "cosign.key");
        var pubPath = Path.Combine(keys, "cosign.pub");
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", await File.ReadAllTextAsync(keyPath), StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", await File.ReadAllTextAsync(pubPath), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        }

        Assert.False(generate.Json.GetProperty("encrypted").GetBoolean());

        var again = await Warp.RunAsync("keys", "generate", "--out-dir", keys);
        Assert.True(again.ExitCode == 2, again.ToString());

        var unsigned = await Warp.RunAsync("verify", reference, "--key", pubPath, "--json");
        Assert.True(unsigned.ExitCode == 5, unsigned.ToString());
        Assert.Equal("signature_refused", unsigned.Json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("no signature", unsigned.Json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        var sign = await Warp.RunAsync("sign", reference, "--key", keyPath, "--json");
        Assert.True(sign.ExitCode == 0, sign.ToString());
        Assert.Equal(digest, sign.Json.GetProperty("digest").GetString());
        Assert.Equal($"{Registry}/demo/signed:{CosignFormat.SignatureTag(digest)}", sign.Json.GetProperty("signature").GetString());
        Assert.StartsWith("sha256:", sign.Json.GetProperty("signatureDigest").GetString(), StringComparison.Ordinal);

        var verify = await Warp.RunAsync("verify", $"{Registry}/demo/signed@{digest}", "--key", pubPath, "--json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.True(verify.Json.GetProperty("verified").GetBoolean());
        Assert.Equal(generate.Json.GetProperty("keyId").GetString(), verify.Json.GetProperty("keyId").GetString());

        var text = await Warp.RunAsync("verify", reference, "--key", pubPath);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.StartsWith($"verified {Registry}/demo/signed@{digest}", text.Stdout, StringComparison.Ordinal);

        var other = Path.Combine(_dir.Path, "other");
        Assert.Equal(0, (await Warp.RunAsync("keys", "generate", "--out-dir", other)).ExitCode);
        var refused = await Warp.RunAsync("verify", reference, "--key", Path.Combine(other, "cosign.pub"));
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains("signed by none of the keys", refused.Stderr, StringComparison.Ordinal);

        // Either of several keys is enough.
        var either = await Warp.RunAsync("verify", reference, "--key", Path.Combine(other, "cosign.pub"), "--key", pubPath);
        Assert.True(either.ExitCode == 0, either.ToString());
    }

    [Fact]
    public async Task An_encrypted_key_signs_with_COSIGN_PASSWORD_and_fails_without_it()
    {
        var reference = $"{Registry}/demo/encrypted:1.0";
        await PushAsync(reference);
        var env = new Dictionary<string, string?> { ["COSIGN_PASSWORD"] = "open sesame" };

        var generate = await Warp.RunAsync(env, "keys", "generate", "--out-dir", _dir.Path, "--json");
        Assert.True(generate.ExitCode == 0, generate.ToString());
        Assert.True(generate.Json.GetProperty("encrypted").GetBoolean());
        var keyPath = Path.Combine(_dir.Path, "cosign.key");
        Assert.StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----", await File.ReadAllTextAsync(keyPath), StringComparison.Ordinal);

        var noPassword = await Warp.RunAsync(new Dictionary<string, string?> { ["COSIGN_PASSWORD"] = null }, "sign", reference, "--key", keyPath, "--json");
        Assert.True(noPassword.ExitCode == 2, noPassword.ToString());
        Assert.Equal("key_invalid", noPassword.Json.GetProperty("error").GetProperty("code").GetString());

        var wrong = await Warp.RunAsync(new Dictionary<string, string?> { ["COSIGN_PASSWORD"] = "wrong" }, "sign", reference, "--key", keyPath);
        Assert.True(wrong.ExitCode == 2, wrong.ToString());

        var sign = await Warp.RunAsync(env, "sign", reference, "--key", keyPath);
        Assert.True(sign.ExitCode == 0, sign.ToString());
        var verify = await Warp.RunAsync("verify", reference, "--key", Path.Combine(_dir.Path, "cosign.pub"));
        Assert.True(verify.ExitCode == 0, verify.ToString());
    }

    [Fact]
    public async Task Usage_and_input_errors_have_their_exit_codes()
    {
        Assert.Equal(1, (await Warp.RunAsync("verify", $"{Registry}/demo/x:1.0")).ExitCode); // --key is required
        Assert.Equal(1, (await Warp.RunAsync("sign", "not a reference", "--key", "k")).ExitCode);

        var missingKey = await Warp.RunAsync("sign", $"{Registry}/demo/x:1.0", "--key", Path.Combine(_dir.Path, "absent.key"), "--json");
        Assert.True(missingKey.ExitCode == 2, missingKey.ToString());
        Assert.Equal("key_unreadable", missingKey.Json.GetProperty("error").GetProperty("code").GetString());

        Assert.Equal(0, (await Warp.RunAsync("keys", "generate", "--out-dir", _dir.Path)).ExitCode);
        var missingTag = await Warp.RunAsync("sign", $"{Registry}/demo/nothing:1.0", "--key", Path.Combine(_dir.Path, "cosign.key"));
        Assert.True(missingTag.ExitCode == 5, missingTag.ToString());

        var privateAsPublic = await Warp.RunAsync("verify", $"{Registry}/demo/nothing:1.0", "--key", Path.Combine(_dir.Path, "cosign.key"));
        Assert.True(privateAsPublic.ExitCode == 2, privateAsPublic.ToString());
    }
}
