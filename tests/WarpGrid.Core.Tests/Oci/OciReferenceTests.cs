using WarpGrid.Core.Oci;

namespace WarpGrid.Core.Tests.Oci;

public sealed class OciReferenceTests
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("127.0.0.1:5000/hello:1.2", "127.0.0.1:5000", "hello", "1.2", null)]
    [InlineData("localhost/hello", "localhost", "hello", "latest", null)]
    [InlineData("LOCALHOST:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1", null)]
    [InlineData("ghcr.io/warpgrid/hello-world_x.y__z:_tag-1.0", "ghcr.io", "warpgrid/hello-world_x.y__z", "_tag-1.0", null)]
    [InlineData("[::1]:5000/hello@" + Digest, "[::1]:5000", "hello", null, Digest)]
    [InlineData("registry.example.com/team/app:2.0@" + Digest, "registry.example.com", "team/app", "2.0", Digest)]
    [InlineData("my-registry.local:443/a--b/c", "my-registry.local:443", "a--b/c", "latest", null)]
    public void Parses_valid_references(string text, string registry, string repository, string? tag, string? digest)
    {
        var reference = OciReference.Parse(text);

        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(digest, reference.Digest);
        Assert.Equal(digest ?? tag, reference.ManifestReference);
        Assert.Equal(reference, OciReference.Parse(reference.ToString()));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("hello:1.0", "no registry host")]
    [InlineData("library/hello:1.0", "'library' is not one")]
    [InlineData("127.0.0.1:5000/Hello:1.0", "'Hello' must be lowercase")]
    [InlineData("127.0.0.1:5000/hello world", "whitespace")]
    [InlineData("127.0.0.1:5000/hello:-bad", "tag '-bad' is not valid")]
    [InlineData("127.0.0.1:5000/hello@sha256:abc", "64 lowercase hex")]
    [InlineData("127.0.0.1:5000/hello@md5:0123456789abcdef0123456789abcdef", "only sha256")]
    [InlineData("127.0.0.1:99999/hello", "port '99999'")]
    [InlineData("127.0.0.1:5000/", "repository name is empty")]
    [InlineData("127.0.0.1:5000/a//b", "empty path component")]
    [InlineData("127.0.0.1:5000/a_-b", "'a_-b' is not valid")]
    [InlineData("http://127.0.0.1:5000/hello", "URL scheme")]
    [InlineData("[zz::1]:5000/hello", "IPv6")]
    [InlineData("bad_host.example.com/hello", "not a valid host name")]
    public void Rejects_malformed_references_naming_the_problem(string text, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => OciReference.Parse(text));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        if (text.Length > 0)
        {
            Assert.Contains($"'{text}'", ex.Message, StringComparison.Ordinal);
        }

        Assert.False(OciReference.TryParse(text, out _, out string? error));
        Assert.Equal(ex.Message, error);
    }

    [Fact]
    public void Rejects_names_longer_than_255_characters()
    {
        string text = "127.0.0.1:5000/" + new string('a', 250);

        var ex = Assert.Throws<FormatException>(() => OciReference.Parse(text));

        Assert.Contains("longer than 255", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Null_reference_is_an_argument_error()
    {
        Assert.Throws<ArgumentNullException>(() => OciReference.Parse(null!));
    }

    [Theory]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("localhost", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("127.1.2.3", true)]
    [InlineData("registry.example.com", false)]
    [InlineData("10.0.0.5:5000", false)]
    public void Loopback_registries_use_plain_http_and_others_https_unless_listed(string registry, bool loopback)
    {
        var reference = OciReference.Parse(registry + "/hello:1");
        var options = new OciClientOptions();

        Assert.Equal(loopback, reference.IsLoopback);
        Assert.Equal(loopback, options.UsesPlainHttp(reference.Registry));

        options.InsecureRegistries.Add(registry);
        Assert.True(options.UsesPlainHttp(reference.Registry));
    }

    [Fact]
    public void Repository_parse_refuses_tags_and_builds_references()
    {
        var repository = OciRepository.Parse("127.0.0.1:5000/team/app");

        Assert.Equal("127.0.0.1:5000/team/app:2", repository.WithTag("2").ToString());
        Assert.Equal($"127.0.0.1:5000/team/app@{Digest}", repository.WithDigest(Digest).ToString());
        Assert.Contains("cannot have a tag", Assert.Throws<FormatException>(() => OciRepository.Parse("127.0.0.1:5000/team/app:2")).Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => repository.WithTag("bad tag"));
    }

    [Fact]
    public void Options_validation_names_the_setting()
    {
        var options = new OciClientOptions { UploadChunkSize = 10 };

        var ex = Assert.Throws<ArgumentException>(() => new OciRegistryClient(options));

        Assert.Contains("OciClientOptions.UploadChunkSize", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parses_bearer_challenges_with_quoted_commas()
    {
        var challenges = OciAuthChallenge.ParseHeader(
            "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"");

        OciAuthChallenge challenge = Assert.Single(challenges);
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.example.com/token", challenge.Realm);
        Assert.Equal("registry.example.com", challenge.Service);
        Assert.Equal("repository:team/app:pull,push", challenge.Scope);
        Assert.Equal("insufficient_scope", challenge.Parameters["error"]);
    }

    [Fact]
    public void Parses_several_challenges_in_one_header()
    {
        var challenges = OciAuthChallenge.ParseHeader("Basic realm=\"Registry \\\"Realm\\\"\", Bearer realm=\"http://127.0.0.1:1/token\", Negotiate abc==");

        Assert.Equal(["Basic", "Bearer", "Negotiate"], challenges.Select(c => c.Scheme));
        Assert.Equal("Registry \"Realm\"", challenges[0].Realm);
        Assert.Equal("http://127.0.0.1:1/token", challenges[1].Realm);
    }

    [Theory]
    [InlineData("</v2/hello/tags/list?last=b&n=2>; rel=\"next\"", "/v2/hello/tags/list?last=b&n=2")]
    [InlineData("<https://r.example.com/v2/x/tags/list?n=1&last=a>; rel=next", "https://r.example.com/v2/x/tags/list?n=1&last=a")]
    [InlineData("</v2/prev>; rel=\"prev\", </v2/next?x=1>; rel=\"next\"", "/v2/next?x=1")]
    [InlineData("</v2/prev>; rel=\"prev\"", null)]
    public void Finds_the_next_link(string header, string? expected)
    {
        using var response = new HttpResponseMessage();
        response.Headers.TryAddWithoutValidation("Link", header);

        Assert.Equal(expected, OciRegistryClient.NextLink(response));
    }

    [Fact]
    public void Wasm_packaging_is_deterministic_and_marks_components()
    {
        byte[] module = OciTestSupport.HelloWasm;
        byte[] component = [0, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        var annotations = OciTestSupport.Annotations();

        var first = WasmArtifact.Package(module, annotations, TimeProvider.System, "x");
        var second = WasmArtifact.Package(module, annotations, TimeProvider.System, "x");

        Assert.Equal(first.ManifestDigest, second.ManifestDigest);
        Assert.Contains("\"os\":\"wasip1\"", System.Text.Encoding.UTF8.GetString(first.Config), StringComparison.Ordinal);
        Assert.Contains("\"os\":\"wasip2\"", System.Text.Encoding.UTF8.GetString(WasmArtifact.Package(component, annotations, TimeProvider.System, "x").Config), StringComparison.Ordinal);
        Assert.True(WasmArtifact.IsComponent(component));
        Assert.False(WasmArtifact.IsComponent(module));
        var ex = Assert.Throws<ArgumentException>(() => WasmArtifact.Package("#!/bin/sh\n"u8, annotations, TimeProvider.System, "127.0.0.1:5000/x:1"));
        Assert.Contains("not WebAssembly", ex.Message, StringComparison.Ordinal);
    }
}
