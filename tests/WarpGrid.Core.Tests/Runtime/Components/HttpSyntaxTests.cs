using WarpGrid.Core.Runtime.Components;

namespace WarpGrid.Core.Tests.Runtime.Components;

/// <summary>The checks behind the <c>outgoing-request</c> setters.</summary>
public sealed class HttpSyntaxTests
{
    [Theory]
    [InlineData("/", true)]
    [InlineData("", true)]
    [InlineData("/a/b?c=d&e=%20", true)]
    [InlineData("/a\"{}", true)]
    [InlineData("/?q=`|^[]\\?", true)]
    [InlineData("/a#frag ment", true)]
    [InlineData("/a b", false)]
    [InlineData("/a\nb", false)]
    [InlineData("/a<b>", false)]
    [InlineData("/a`b", false)]
    [InlineData("/?q=a b", false)]
    [InlineData("/?q=\"", false)]
    [InlineData("/é", false)]
    [InlineData("abc", false)]
    [InlineData("@evil.example/x", false)]
    [InlineData("?q=1", false)]
    [InlineData("*", false)]
    public void Path_with_query(string path, bool valid) => Assert.Equal(valid, HttpSyntax.IsValidPathWithQuery(path));

    [Theory]
    [InlineData("ftp", true)]
    [InlineData("git+ssh", true)]
    [InlineData("a1.-+", true)]
    [InlineData("", false)]
    [InlineData("1http", false)]
    [InlineData("ht tp", false)]
    [InlineData("http:", false)]
    public void Scheme(string scheme, bool valid) => Assert.Equal(valid, HttpSyntax.IsValidScheme(scheme));

    [Fact]
    public void A_scheme_longer_than_64_characters_is_invalid()
    {
        Assert.True(HttpSyntax.IsValidScheme(new string('a', 64)));
        Assert.False(HttpSyntax.IsValidScheme(new string('a', 65)));
    }

    [Theory]
    [InlineData("example.com", true)]
    [InlineData("example.com:8080", true)]
    [InlineData("127.0.0.1:80", true)]
    [InlineData("[::1]", true)]
    [InlineData("[2001:db8::1]:443", true)]
    [InlineData("user:pw@example.com", true)]
    [InlineData("example.com:65535", true)]
    [InlineData("", false)]
    [InlineData("example.com:", false)]
    [InlineData("example.com:8o", false)]
    [InlineData("example.com:65536", false)]
    [InlineData("example.com:123456", false)]
    [InlineData("example.com/x", false)]
    [InlineData("example.com?x", false)]
    [InlineData("exa mple.com", false)]
    [InlineData("a:b:c", false)]
    [InlineData("[::1", false)]
    [InlineData("[::1]x", false)]
    [InlineData("user@", false)]
    [InlineData("host%20name", false)]
    public void Authority(string authority, bool valid) => Assert.Equal(valid, HttpSyntax.IsValidAuthority(authority));

    [Theory]
    [InlineData("GET", true)]
    [InlineData("PURGE", true)]
    [InlineData("get", true)]
    [InlineData("", false)]
    [InlineData("BAD METHOD", false)]
    [InlineData("GET\n", false)]
    public void Method(string method, bool valid) => Assert.Equal(valid, HttpSyntax.IsToken(method));
}
