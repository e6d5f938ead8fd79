using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Oci;
using WarpGrid.Testing;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>config.json parsing, key matching, the credential-helper protocol and the writer, on real files and real helper scripts.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class DockerConfigCredentialProviderTests : IDisposable
{
    private readonly DockerConfigDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private DockerConfigCredentialProvider Provider(TimeSpan? helperTimeout = null, TimeProvider? time = null, TimeSpan? cache = null) =>
        new(new DockerConfigCredentialProviderOptions
        {
            GetEnvironmentVariable = _dir.GetEnv,
            HelperTimeout = helperTimeout ?? TimeSpan.FromSeconds(10),
            CacheDuration = cache ?? TimeSpan.FromMinutes(1),
        }, timeProvider: time);

    private static async Task<OciCredential?> Get(DockerConfigCredentialProvider provider, string registry) =>
        await provider.GetCredentialAsync(registry, CancellationToken.None);

    [Fact]
    public void The_path_comes_from_DOCKER_CONFIG_else_HOME()
    {
        Assert.Equal(_dir.ConfigFile, Provider().ConfigPath);
        Assert.Equal("/home/someone/.docker/config.json", DockerConfigCredentialProvider.DefaultConfigPath(n => n == "HOME" ? "/home/someone" : null));
        Assert.Equal("/explicit.json", new DockerConfigCredentialProvider(new DockerConfigCredentialProviderOptions { ConfigPath = "/explicit.json", GetEnvironmentVariable = _dir.GetEnv }).ConfigPath);
    }

    [Theory]
    [InlineData("127.0.0.1:5000", "127.0.0.1:5000")]
    [InlineData("https://127.0.0.1:5000", "127.0.0.1:5000")]
    [InlineData("http://127.0.0.1:5000/v2/", "127.0.0.1:5000")]
    [InlineData("https://Registry.Example.com/v1/", "registry.example.com")]
    [InlineData("https://index.docker.io/v1/", "docker.io")]
    [InlineData("registry-1.docker.io", "docker.io")]
    [InlineData("docker.io", "docker.io")]
    public void Keys_normalize_the_way_Docker_compares_them(string key, string expected) =>
        Assert.Equal(expected, DockerConfigCredentialProvider.NormalizeRegistry(key));

    [Fact]
    public void Docker_Hub_is_stored_under_the_v1_index_key() =>
        Assert.Equal("https://index.docker.io/v1/", DockerConfigCredentialProvider.ServerKey("docker.io"));

    [Fact]
    public async Task No_file_means_anonymous() => Assert.Null(await Get(Provider(), "127.0.0.1:5000"));

    [Theory]
    [InlineData("127.0.0.1:5000")]
    [InlineData("https://127.0.0.1:5000")]
    [InlineData("https://127.0.0.1:5000/v1/")]
    public async Task An_auth_entry_is_base64_user_colon_password_under_any_key_form(string key)
    {
        _dir.WriteConfig($$$$"""{"auths":{"{{{{key}}}}":{"auth":"{{{{DockerConfigDir.Base64("alice:pa:ss")}}}}"},"other:1":{"auth":"{{{{DockerConfigDir.Base64("bob:x")}}}}"}}}""");

        OciCredential? credential = await Get(Provider(), "127.0.0.1:5000");

        Assert.NotNull(credential);
        Assert.Equal("alice", credential.Username);
        Assert.Equal("pa:ss", credential.Password); // split at the first colon only
        Assert.Null(await Get(Provider(), "127.0.0.1:5001"));
    }

    [Fact]
    public async Task Username_and_password_fields_work_too()
    {
        _dir.WriteConfig("""{"auths":{"reg.example.com":{"username":"carol","password":"pw"}}}""");

        OciCredential? credential = await Get(Provider(), "reg.example.com");

        Assert.Equal(("carol", "pw"), (credential!.Username, credential.Password));
    }

    [Fact]
    public async Task An_identity_token_is_the_secret_for_the_token_user()
    {
        _dir.WriteConfig($$$$"""{"auths":{"reg.example.com":{"auth":"{{{{DockerConfigDir.Base64("dave:ignored")}}}}","identitytoken":"refresh-123"}}}""");

        OciCredential? credential = await Get(Provider(), "reg.example.com");

        Assert.Equal((DockerConfigCredentialProvider.IdentityTokenUsername, "refresh-123"), (credential!.Username, credential.Password));
    }

    [Fact]
    public async Task Docker_Hub_entries_match_docker_io()
    {
        _dir.WriteConfig($$$$"""{"auths":{"https://index.docker.io/v1/":{"auth":"{{{{DockerConfigDir.Base64("hub:pw")}}}}"}}}""");

        Assert.Equal("hub", (await Get(Provider(), "docker.io"))!.Username);
        Assert.Equal("hub", (await Get(Provider(), "registry-1.docker.io"))!.Username);
    }

    [Fact]
    public async Task A_bad_file_is_an_error_naming_the_file_and_never_the_secret()
    {
        _dir.WriteConfig("""{"auths":{"reg.example.com":{"auth":"not base64!!! topsecret"}}}""");
        var bad64 = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(), "reg.example.com"));
        Assert.Contains(_dir.ConfigFile, bad64.Message, StringComparison.Ordinal);
        Assert.Contains("auths[\"reg.example.com\"].auth", bad64.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("topsecret", bad64.Message, StringComparison.Ordinal);

        _dir.WriteConfig("""{"auths": {"reg.example.com": {"password": "topsecret" """);
        var json = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(), "reg.example.com"));
        Assert.Contains("is not valid JSON", json.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("topsecret", json.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cred_helper_answers_get_with_the_server_on_stdin()
    {
        _dir.WriteGetHelper("test", "127.0.0.1:5000", "helper-user", "helper-secret");
        _dir.WriteConfig($$$$"""{"auths":{"127.0.0.1:5000":{"auth":"{{{{DockerConfigDir.Base64("file:ignored")}}}}"}},"credHelpers":{"127.0.0.1:5000":"test"}}""");

        OciCredential? credential = await Get(Provider(), "127.0.0.1:5000");

        Assert.Equal(("helper-user", "helper-secret"), (credential!.Username, credential.Password));
        Assert.Equal(["get 127.0.0.1:5000"], _dir.Calls("test"));
    }

    [Fact]
    public async Task CredHelpers_win_over_credsStore_which_covers_every_other_registry()
    {
        _dir.WriteGetHelper("specific", "a.example.com", "a-user", "a-secret");
        _dir.WriteGetHelper("store", "b.example.com", "b-user", "b-secret");
        _dir.WriteConfig("""{"credsStore":"store","credHelpers":{"a.example.com":"specific"}}""");

        Assert.Equal("a-user", (await Get(Provider(), "a.example.com"))!.Username);
        Assert.Equal("b-user", (await Get(Provider(), "b.example.com"))!.Username);
        Assert.DoesNotContain(_dir.Calls("store"), c => c.Contains("a.example.com", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Docker_Hub_is_asked_of_a_helper_as_the_v1_index_url()
    {
        _dir.WriteGetHelper("store", "https://index.docker.io/v1/", "hub", "s");
        _dir.WriteConfig("""{"credsStore":"store"}""");

        Assert.Equal("hub", (await Get(Provider(), "docker.io"))!.Username);
    }

    [Fact]
    public async Task A_helper_with_no_credentials_means_anonymous()
    {
        _dir.WriteGetHelper("test", "elsewhere:1", "u", "s");
        _dir.WriteConfig("""{"credsStore":"test"}""");

        Assert.Null(await Get(Provider(), "127.0.0.1:5000"));
        Assert.Single(_dir.Calls("test"));
    }

    [Fact]
    public async Task A_failing_helper_is_an_error_naming_it_without_the_secret()
    {
        _dir.WriteHelper("broken", """
            echo "keychain locked" >&2
            exit 3
            """);
        _dir.WriteConfig("""{"credHelpers":{"127.0.0.1:5000":"broken"}}""");

        var ex = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(), "127.0.0.1:5000"));

        Assert.Contains("docker-credential-broken", ex.Message, StringComparison.Ordinal);
        Assert.Contains("exit 3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("keychain locked", ex.Message, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1:5000", ex.Registry);
    }

    [Fact]
    public async Task A_helper_answering_garbage_does_not_leak_its_output()
    {
        _dir.WriteHelper("garbage", "echo 'Secret=hunter2 not json'");
        _dir.WriteConfig("""{"credsStore":"garbage"}""");

        var ex = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(), "127.0.0.1:5000"));

        Assert.Contains("docker-credential-garbage", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hanging_helper_is_stopped_after_the_timeout()
    {
        _dir.WriteHelper("slow", "exec sleep 60");
        _dir.WriteConfig("""{"credsStore":"slow"}""");
        var clock = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(helperTimeout: TimeSpan.FromMilliseconds(500)), "127.0.0.1:5000"));

        Assert.Contains("docker-credential-slow did not answer 'get'", ex.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_helper_missing_from_PATH_is_an_error_naming_it()
    {
        _dir.WriteConfig("""{"credHelpers":{"127.0.0.1:5000":"nosuchhelper"}}""");

        var ex = await Assert.ThrowsAsync<OciCredentialException>(() => Get(Provider(), "127.0.0.1:5000"));

        Assert.Contains("docker-credential-nosuchhelper", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not found on PATH", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Answers_are_reused_until_the_cache_duration_passes()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        _dir.WriteGetHelper("test", "127.0.0.1:5000", "u", "s");
        _dir.WriteConfig("""{"credsStore":"test"}""");
        DockerConfigCredentialProvider provider = Provider(time: time, cache: TimeSpan.FromSeconds(30));

        await Get(provider, "127.0.0.1:5000");
        await Get(provider, "127.0.0.1:5000");
        int afterTwo = _dir.Calls("test").Count;
        time.Advance(TimeSpan.FromSeconds(31));
        await Get(provider, "127.0.0.1:5000");

        Assert.Equal(1, afterTwo);
        Assert.Equal(2, _dir.Calls("test").Count);
    }

    [Fact]
    public async Task Store_writes_an_auth_entry_with_mode_0600_and_keeps_other_settings()
    {
        _dir.WriteConfig($$$$"""{"auths":{"https://127.0.0.1:5000":{"auth":"{{{{DockerConfigDir.Base64("old:old")}}}}"}},"psFormat":"table"}""");
        DockerConfigCredentialProvider provider = Provider();

        string destination = await provider.StoreAsync("127.0.0.1:5000", new OciCredential("new", "new-pw"));

        Assert.Equal(_dir.ConfigFile, destination);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_dir.ConfigFile));
        using JsonDocument file = JsonDocument.Parse(File.ReadAllText(_dir.ConfigFile));
        JsonElement auths = file.RootElement.GetProperty("auths");
        Assert.Equal(["127.0.0.1:5000"], auths.EnumerateObject().Select(p => p.Name)); // the old key form is replaced
        Assert.Equal(DockerConfigDir.Base64("new:new-pw"), auths.GetProperty("127.0.0.1:5000").GetProperty("auth").GetString());
        Assert.Equal("table", file.RootElement.GetProperty("psFormat").GetString());
        Assert.Equal(("new", "new-pw"), ((await Get(provider, "127.0.0.1:5000"))!.Username, (await Get(provider, "127.0.0.1:5000"))!.Password));

        Assert.True(await provider.EraseAsync("127.0.0.1:5000"));
        Assert.Null(await Get(provider, "127.0.0.1:5000"));
        Assert.False(await provider.EraseAsync("127.0.0.1:5000"));
    }

    [Fact]
    public async Task Store_creates_the_directory_and_file()
    {
        string path = Path.Combine(_dir.Path, "fresh", "config.json");
        var provider = new DockerConfigCredentialProvider(new DockerConfigCredentialProviderOptions { ConfigPath = path, GetEnvironmentVariable = _dir.GetEnv });

        await provider.StoreAsync("docker.io", new OciCredential("hub", "pw"));

        Assert.Contains("https://index.docker.io/v1/", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public async Task With_a_credsStore_store_and_erase_go_through_the_helper()
    {
        _dir.WriteHelper("store", """
            [ "$verb" = store ] && exit 0
            [ "$verb" = erase ] && exit 0
            echo "credentials not found in native keychain"; exit 1
            """);
        _dir.WriteConfig("""{"credsStore":"store"}""");
        DockerConfigCredentialProvider provider = Provider();

        string destination = await provider.StoreAsync("127.0.0.1:5000", new OciCredential("u", "p"));
        bool erased = await provider.EraseAsync("127.0.0.1:5000");

        Assert.Equal("docker-credential-store", destination);
        Assert.DoesNotContain("\"auth\"", File.ReadAllText(_dir.ConfigFile), StringComparison.Ordinal);
        IReadOnlyList<string> calls = _dir.Calls("store");
        Assert.Equal("store", calls[0].Split(' ')[0]);
        using (JsonDocument stored = JsonDocument.Parse(calls[0]["store ".Length..]))
        {
            Assert.Equal("127.0.0.1:5000", stored.RootElement.GetProperty("ServerURL").GetString());
            Assert.Equal("u", stored.RootElement.GetProperty("Username").GetString());
            Assert.Equal("p", stored.RootElement.GetProperty("Secret").GetString());
        }

        Assert.Equal("erase 127.0.0.1:5000", calls[1]);
        Assert.True(erased);
    }
}
