using Microsoft.Extensions.Time.Testing;
using WarpGrid.Core.Oci;

namespace WarpGrid.Core.Tests.Oci;

/// <summary>Basic auth against a real registry with an htpasswd (bcrypt) file.</summary>
public sealed class BasicAuthRegistryTests(BasicAuthRegistryFixture fixture) : IClassFixture<BasicAuthRegistryFixture>
{
    private RegistryServer Registry => fixture.Server;

    private OciReference Ref(string repositoryAndTag) => OciReference.Parse($"{Registry.Address}/{repositoryAndTag}");

    [Fact]
    public async Task Right_credentials_push_and_pull()
    {
        using OciRegistryClient client = OciTestSupport.Client(o => o.Credentials[Registry.Address] = new OciCredential(RegistryServer.HtpasswdUser, RegistryServer.HtpasswdPassword));
        OciReference reference = Ref(OciTestSupport.UniqueRepository("basic") + ":1");

        string digest = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        WasmArtifactContent pulled = await client.PullWasmAsync(reference);

        Assert.Equal(digest, pulled.ManifestDigest);
        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
        Assert.Contains("1", await client.ListTagsAsync(reference.RepositoryReference));
    }

    [Fact]
    public async Task Credentials_can_come_from_a_provider()
    {
        var provider = new FixedCredentialProvider(Registry.Address, new OciCredential(RegistryServer.HtpasswdUser, RegistryServer.HtpasswdPassword));
        using OciRegistryClient client = OciTestSupport.Client(o => o.CredentialProvider = provider);
        OciReference reference = Ref(OciTestSupport.UniqueRepository("provider") + ":1");

        await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());

        Assert.Equal(OciTestSupport.HelloWasm, (await client.PullWasmAsync(reference)).Wasm);
        Assert.Contains(Registry.Address, provider.AskedFor);
    }

    [Fact]
    public async Task Wrong_credentials_are_an_authentication_error_naming_the_registry()
    {
        using OciRegistryClient client = OciTestSupport.Client(o => o.Credentials[Registry.Address] = new OciCredential(RegistryServer.HtpasswdUser, "wrong-password"));

        var ex = await Assert.ThrowsAsync<OciAuthenticationException>(() => client.PushWasmAsync(Ref("denied:1"), OciTestSupport.HelloWasm));

        Assert.Contains($"Registry {Registry.Address} refused the credentials for user '{RegistryServer.HtpasswdUser}'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(Registry.Address, ex.Registry);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.DoesNotContain("wrong-password", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_credentials_are_an_authentication_error()
    {
        using OciRegistryClient client = OciTestSupport.Client();

        var ex = await Assert.ThrowsAsync<OciAuthenticationException>(() => client.ResolveAsync(Ref("anything:1")));

        Assert.Contains($"Registry {Registry.Address} requires credentials", ex.Message, StringComparison.Ordinal);
        Assert.Contains("none are configured", ex.Message, StringComparison.Ordinal);
    }

    private sealed class FixedCredentialProvider(string registry, OciCredential credential) : IOciCredentialProvider
    {
        public List<string> AskedFor { get; } = [];

        public ValueTask<OciCredential?> GetCredentialAsync(string requested, CancellationToken cancellationToken)
        {
            lock (AskedFor)
            {
                AskedFor.Add(requested);
            }

            return ValueTask.FromResult(requested == registry ? credential : null);
        }
    }
}

/// <summary>
/// The Bearer token flow against a real registry configured with <c>auth: token</c>, whose JWTs come from an in-test
/// token service (<see cref="TokenServer"/>) and are verified by the registry against the signing certificate.
/// </summary>
public sealed class BearerAuthRegistryTests(TokenAuthRegistryFixture fixture) : IClassFixture<TokenAuthRegistryFixture>
{
    private RegistryServer Registry => fixture.Server;

    private OciReference Ref(string repositoryAndTag) => OciReference.Parse($"{Registry.Address}/{repositoryAndTag}");

    private Action<OciClientOptions> Credentials(string password = TokenServer.Password) =>
        o => o.Credentials[Registry.Address] = new OciCredential(TokenServer.User, password);

    [Fact]
    public async Task Push_and_pull_with_tokens_from_the_realm()
    {
        using OciRegistryClient client = OciTestSupport.Client(Credentials());
        OciReference reference = Ref(OciTestSupport.UniqueRepository("bearer") + ":1");

        string digest = await client.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());
        WasmArtifactContent pulled = await client.PullWasmAsync(reference);

        Assert.Equal(digest, pulled.ManifestDigest);
        Assert.Equal(OciTestSupport.HelloWasm, pulled.Wasm);
    }

    [Fact]
    public async Task Tokens_are_cached_per_scope_until_shortly_before_they_expire()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        using OciRegistryClient pusher = OciTestSupport.Client(Credentials());
        OciReference reference = Ref(OciTestSupport.UniqueRepository("cache") + ":1");
        await pusher.PushWasmAsync(reference, OciTestSupport.HelloWasm, OciTestSupport.Annotations());

        using OciRegistryClient client = OciTestSupport.Client(Credentials(), timeProvider: time);
        int before = fixture.Tokens.Requests;
        await client.PullWasmAsync(reference);
        int afterFirst = fixture.Tokens.Requests;
        await client.PullWasmAsync(reference);
        await client.ResolveAsync(reference);
        int afterSecond = fixture.Tokens.Requests;
        time.Advance(TimeSpan.FromSeconds(fixture.Tokens.ExpiresInSeconds - 11)); // still inside expires_in minus the margin
        await client.ResolveAsync(reference);
        int beforeExpiry = fixture.Tokens.Requests;
        time.Advance(TimeSpan.FromSeconds(2)); // past expires_in minus the 10 s margin
        await client.ResolveAsync(reference);
        int afterExpiry = fixture.Tokens.Requests;

        Assert.Equal(1, afterFirst - before);     // one token for repository:<name>:pull
        Assert.Equal(afterFirst, afterSecond);    // reused
        Assert.Equal(afterSecond, beforeExpiry);  // still reused
        Assert.Equal(beforeExpiry + 1, afterExpiry); // renewed
    }

    [Fact]
    public async Task Wrong_credentials_are_refused_by_the_token_service()
    {
        using OciRegistryClient client = OciTestSupport.Client(Credentials("wrong-password"));

        var ex = await Assert.ThrowsAsync<OciAuthenticationException>(() => client.PullWasmAsync(Ref("whatever:1")));

        Assert.Contains($"The credentials for registry {Registry.Address} (user '{TokenServer.User}') were refused", ex.Message, StringComparison.Ordinal);
        Assert.Contains(fixture.Tokens.Realm, ex.Message, StringComparison.Ordinal);
        Assert.Equal(Registry.Address, ex.Registry);
    }

    [Fact]
    public async Task Anonymous_access_is_refused_with_a_hint_to_configure_credentials()
    {
        using OciRegistryClient client = OciTestSupport.Client();

        var ex = await Assert.ThrowsAsync<OciAuthenticationException>(() => client.ListTagsAsync(OciRepository.Parse($"{Registry.Address}/whatever")));

        Assert.Contains($"Registry {Registry.Address} requires authentication", ex.Message, StringComparison.Ordinal);
        Assert.Contains("configure credentials", ex.Message, StringComparison.Ordinal);
    }
}
