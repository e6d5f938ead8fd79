using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using WarpGrid.Cli.Tests.Infrastructure;
using WarpGrid.Core.Tests.Oci;
using WarpGrid.Testing;

namespace WarpGrid.Cli.Tests;

/// <summary>
/// <c>warp push/pull/deploy</c> and <c>warp registry login/logout</c> against a real registry with htpasswd basic auth:
/// credentials from a Docker config.json in a temporary DOCKER_CONFIG, from a credential helper script on PATH, and
/// from <c>--username/--password-stdin</c>.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class BasicAuthRegistryCliTests(BasicAuthRegistryFixture fixture) : IClassFixture<BasicAuthRegistryFixture>, IDisposable
{
    private readonly TempDir _work = new("warp-cli-creds-");
    private readonly DockerConfigDir _docker = new();

    private string Registry => fixture.Server.Address;

    private static string GoodAuth => DockerConfigDir.Base64(RegistryServer.HtpasswdUser + ":" + RegistryServer.HtpasswdPassword);

    public void Dispose()
    {
        _docker.Dispose();
        _work.Dispose();
    }

    private string Sample() => Samples.CopyTo("hello", Path.Combine(_work.Path, Guid.NewGuid().ToString("N")[..8]));

    private string Reference(string name) => $"{Registry}/creds/{name}-{Guid.NewGuid().ToString("N")[..8]}:1.0";

    private Task<CliRun> Run(params string[] args) => Warp.RunAsync(_docker.Environment, args);

    private Task<CliRun> RunWithPassword(string password, params string[] args) => Warp.RunWithInputAsync(password + "\n", _docker.Environment, args);

    [Fact]
    public async Task Push_and_pull_use_the_auths_entry_in_config_json()
    {
        _docker.WriteConfig($$$$"""{"auths":{"{{{{Registry}}}}":{"auth":"{{{{GoodAuth}}}}"}}}""");
        var reference = Reference("auths");

        var push = await Run("push", reference, Sample(), "--json");
        Assert.True(push.ExitCode == 0, push.ToString());

        var target = Path.Combine(_work.Path, "pulled.wasm");
        var pull = await Run("pull", reference, "--out", target, "--json");
        Assert.True(pull.ExitCode == 0, pull.ToString());
        Assert.Equal(push.Json.GetProperty("digest").GetString(), pull.Json.GetProperty("digest").GetString());
        Assert.True(File.Exists(target));
    }

    [Fact]
    public async Task Anonymous_push_is_refused_with_exit_5_naming_the_registry()
    {
        var human = await Run("push", Reference("anonymous"), Sample());
        Assert.True(human.ExitCode == 5, human.ToString());
        Assert.Contains($"Registry {Registry} requires credentials", human.Stderr, StringComparison.Ordinal);
        Assert.Contains("warp registry login", human.Stderr, StringComparison.Ordinal);

        var json = await Run("pull", Reference("anonymous"), "--json");
        Assert.Equal(5, json.ExitCode);
        Assert.Equal("unauthorized", json.Json.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Username_and_password_stdin_override_config_json_for_that_registry()
    {
        _docker.WriteConfig($$$$"""{"auths":{"{{{{Registry}}}}":{"auth":"{{{{DockerConfigDir.Base64(RegistryServer.HtpasswdUser + ":stale-password")}}}}"}}}""");
        var reference = Reference("flags");

        var refused = await Run("push", reference, Sample());
        Assert.True(refused.ExitCode == 5, refused.ToString());
        Assert.Contains($"Registry {Registry} refused the credentials for user '{RegistryServer.HtpasswdUser}'", refused.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("stale-password", refused.Stderr, StringComparison.Ordinal);

        var push = await RunWithPassword(RegistryServer.HtpasswdPassword, "push", reference, Sample(), "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");
        Assert.True(push.ExitCode == 0, push.ToString());

        var pull = await RunWithPassword(RegistryServer.HtpasswdPassword, "pull", reference, "--out", Path.Combine(_work.Path, "f.wasm"), "-u", RegistryServer.HtpasswdUser, "--password-stdin");
        Assert.True(pull.ExitCode == 0, pull.ToString());

        var wrong = await RunWithPassword("nope", "pull", reference, "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");
        Assert.Equal(5, wrong.ExitCode);
        Assert.DoesNotContain("nope", wrong.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_flags_must_come_together()
    {
        var noPassword = await Run("pull", Reference("x"), "--username", "someone");
        Assert.Equal(1, noPassword.ExitCode);
        Assert.Contains("--password-stdin", noPassword.Stderr, StringComparison.Ordinal);

        var noUser = await RunWithPassword("pw", "pull", Reference("x"), "--password-stdin");
        Assert.Equal(1, noUser.ExitCode);
    }

    [Theory]
    [InlineData("credHelpers")]
    [InlineData("credsStore")]
    public async Task A_credential_helper_on_PATH_supplies_the_credentials(string setting)
    {
        _docker.WriteGetHelper("test", Registry, RegistryServer.HtpasswdUser, RegistryServer.HtpasswdPassword);
        _docker.WriteConfig(setting == "credsStore"
            ? """{"credsStore":"test"}"""
            : $$$$"""{"credHelpers":{"{{{{Registry}}}}":"test"}}""");
        var reference = Reference("helper");

        var push = await Run("push", reference, Sample(), "--json");
        Assert.True(push.ExitCode == 0, push.ToString());
        var pull = await Run("pull", reference, "--out", Path.Combine(_work.Path, "h.wasm"), "--json");
        Assert.True(pull.ExitCode == 0, pull.ToString());

        Assert.Contains("get " + Registry, _docker.Calls("test"));
    }

    [Fact]
    public async Task A_failing_helper_is_reported_by_name()
    {
        _docker.WriteHelper("test", "echo 'helper exploded' >&2; exit 2");
        _docker.WriteConfig("""{"credsStore":"test"}""");

        var run = await Run("pull", Reference("broken"), "--json");

        Assert.Equal(2, run.ExitCode);
        var error = run.Json.GetProperty("error");
        Assert.Equal("credentials_unavailable", error.GetProperty("code").GetString());
        Assert.Contains("docker-credential-test", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_checks_the_credentials_saves_them_and_logout_removes_them()
    {
        var wrong = await RunWithPassword("wrong", "registry", "login", Registry, "--username", RegistryServer.HtpasswdUser, "--password-stdin");
        Assert.True(wrong.ExitCode == 5, wrong.ToString());
        Assert.False(File.Exists(_docker.ConfigFile));

        var login = await RunWithPassword(RegistryServer.HtpasswdPassword, "registry", "login", Registry, "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");
        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Equal(_docker.ConfigFile, login.Json.GetProperty("storedIn").GetString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_docker.ConfigFile));
        using (var config = JsonDocument.Parse(await File.ReadAllTextAsync(_docker.ConfigFile)))
        {
            Assert.Equal(GoodAuth, config.RootElement.GetProperty("auths").GetProperty(Registry).GetProperty("auth").GetString());
        }

        var reference = Reference("login");
        var push = await Run("push", reference, Sample());
        Assert.True(push.ExitCode == 0, push.ToString());

        var logout = await Run("registry", "logout", Registry, "--json");
        Assert.True(logout.ExitCode == 0, logout.ToString());
        Assert.True(logout.Json.GetProperty("removed").GetBoolean());

        var refused = await Run("pull", reference);
        Assert.Equal(5, refused.ExitCode);
    }

    [Fact]
    public async Task Login_with_a_credsStore_stores_through_the_helper()
    {
        _docker.WriteHelper("test", "[ \"$verb\" = store ] && exit 0; echo 'credentials not found in native keychain'; exit 1");
        _docker.WriteConfig("""{"credsStore":"test"}""");

        var login = await RunWithPassword(RegistryServer.HtpasswdPassword, "registry", "login", "https://" + Registry, "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");

        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Equal("docker-credential-test", login.Json.GetProperty("storedIn").GetString());
        var store = Assert.Single(_docker.Calls("test"), c => c.StartsWith("store ", StringComparison.Ordinal));
        Assert.Contains($"\"ServerURL\":\"{Registry}\"", store, StringComparison.Ordinal);
        Assert.DoesNotContain(RegistryServer.HtpasswdPassword, await File.ReadAllTextAsync(_docker.ConfigFile), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deploy_of_a_private_reference_with_flags_pulls_in_warp_and_a_node_pulls_with_its_docker_config()
    {
        var reference = Reference("deploy");
        var push = await RunWithPassword(RegistryServer.HtpasswdPassword, "push", reference, Sample(), "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");
        Assert.True(push.ExitCode == 0, push.ToString());
        var manifest = Path.Combine(Sample(), "warp.toml");

        // A node with the credentials in the Docker config it is pointed at pulls the reference itself.
        using var nodeConfig = new DockerConfigDir();
        nodeConfig.WriteConfig($$$$"""{"auths":{"https://{{{{Registry}}}}/v1/":{"auth":"{{{{GoodAuth}}}}"}}}""");
        var warpd = new Warpd { ExtraEnvironment = new Dictionary<string, string> { ["WarpGrid__Oci__DockerConfig"] = nodeConfig.ConfigFile } };
        await warpd.InitializeAsync();
        try
        {
            var byNode = await Run("deploy", reference, "--manifest", manifest, "--node", warpd.ApiUrl, "--json");
            Assert.True(byNode.ExitCode == 0, byNode.ToString() + warpd.Tail);
            Assert.Equal(reference, byNode.Json.GetProperty("deployment").GetProperty("reference").GetString());
            var (status, body) = await warpd.GetUntilOkAsync("hello", TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("Hello from WarpGrid!\n", body);
        }
        finally
        {
            await warpd.DisposeAsync();
        }

        // A node without credentials: warp pulls with the flags and uploads the module.
        var bare = new Warpd();
        await bare.InitializeAsync();
        try
        {
            var refusedByNode = await Run("deploy", reference, "--manifest", manifest, "--node", bare.ApiUrl, "--json");
            Assert.True(refusedByNode.ExitCode != 0, refusedByNode.ToString());

            var viaWarp = await RunWithPassword(RegistryServer.HtpasswdPassword, "deploy", reference, "--manifest", manifest, "--node", bare.ApiUrl, "--username", RegistryServer.HtpasswdUser, "--password-stdin", "--json");
            Assert.True(viaWarp.ExitCode == 0, viaWarp.ToString() + bare.Tail);
            Assert.Equal(push.Json.GetProperty("digest").GetString(), viaWarp.Json.GetProperty("pulledManifestDigest").GetString());
            var (status, body) = await bare.GetUntilOkAsync("hello", TimeSpan.FromSeconds(30));
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("Hello from WarpGrid!\n", body);
        }
        finally
        {
            await bare.DisposeAsync();
        }
    }
}

/// <summary><c>warp push/pull</c> and <c>warp registry login</c> against a real registry with token auth and an in-test token service.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class TokenAuthRegistryCliTests(TokenAuthRegistryFixture fixture) : IClassFixture<TokenAuthRegistryFixture>, IDisposable
{
    private readonly TempDir _work = new("warp-cli-tokens-");
    private readonly DockerConfigDir _docker = new();

    private string Registry => fixture.Server.Address;

    public void Dispose()
    {
        _docker.Dispose();
        _work.Dispose();
    }

    private Task<CliRun> Run(params string[] args) => Warp.RunAsync(_docker.Environment, args);

    [Fact]
    public async Task Push_and_pull_with_config_json_credentials_for_the_token_service()
    {
        _docker.WriteConfig($$$$"""{"auths":{"https://{{{{Registry}}}}":{"username":"{{{{TokenServer.User}}}}","password":"{{{{TokenServer.Password}}}}"}}}""");
        var reference = $"{Registry}/tokens/hello-{Guid.NewGuid().ToString("N")[..8]}:1.0";
        int issued = fixture.Tokens.Requests;

        var push = await Run("push", reference, Samples.CopyTo("hello", _work.Path), "--json");
        Assert.True(push.ExitCode == 0, push.ToString());
        var pull = await Run("pull", reference, "--out", Path.Combine(_work.Path, "t.wasm"), "--json");
        Assert.True(pull.ExitCode == 0, pull.ToString());

        Assert.Equal(push.Json.GetProperty("digest").GetString(), pull.Json.GetProperty("digest").GetString());
        Assert.True(fixture.Tokens.Requests > issued);
    }

    [Fact]
    public async Task A_wrong_password_is_refused_by_the_token_service()
    {
        _docker.WriteConfig($$$$"""{"auths":{"{{{{Registry}}}}":{"auth":"{{{{DockerConfigDir.Base64(TokenServer.User + ":wrong-pass")}}}}"}}}""");

        var pull = await Run("pull", $"{Registry}/tokens/anything:1.0", "--json");

        Assert.Equal(5, pull.ExitCode);
        var message = pull.Json.GetProperty("error").GetProperty("message").GetString();
        Assert.Contains($"The credentials for registry {Registry} (user '{TokenServer.User}') were refused", message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-pass", pull.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_gets_a_token_from_the_token_service_before_saving()
    {
        var wrong = await Warp.RunWithInputAsync("bad\n", _docker.Environment, "registry", "login", Registry, "--username", TokenServer.User, "--password-stdin");
        Assert.True(wrong.ExitCode == 5, wrong.ToString());
        Assert.False(File.Exists(_docker.ConfigFile));

        var login = await Warp.RunWithInputAsync(TokenServer.Password + "\n", _docker.Environment, "registry", "login", Registry, "--username", TokenServer.User, "--password-stdin");
        Assert.True(login.ExitCode == 0, login.ToString());

        var reference = $"{Registry}/tokens/login-{Guid.NewGuid().ToString("N")[..8]}:1.0";
        var push = await Run("push", reference, Samples.CopyTo("hello", _work.Path));
        Assert.True(push.ExitCode == 0, push.ToString());
    }
}
