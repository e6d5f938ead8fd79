using System.Text;
using WarpGrid.Core.Runtime.Components;

namespace WarpGrid.Core.Tests.Runtime.Components;

/// <summary>The validation and ordering of <c>wasi:http/types.fields</c> (the host functions only marshal these results).</summary>
public sealed class FieldsTests
{
    private static byte[] B(string text) => Encoding.Latin1.GetBytes(text);

    private static string Dump(Fields fields) => string.Join(";", fields.Entries.Select(e => e.Key + "=" + Encoding.Latin1.GetString(e.Value)));

    [Theory]
    [InlineData("x-test", true)]
    [InlineData("Content-Type", true)]
    [InlineData("!#$%&'*+-.^_`|~09azAZ", true)]
    [InlineData("", false)]
    [InlineData("bad name", false)]
    [InlineData("x:y", false)]
    [InlineData("x\"y", false)]
    [InlineData("(x)", false)]
    [InlineData("x/y", false)]
    [InlineData("x\ty", false)]
    [InlineData("café", false)]
    [InlineData("x\0", false)]
    public void Names_must_be_http_tokens(string name, bool valid) => Assert.Equal(valid, Fields.IsValidName(name));

    [Fact]
    public void A_name_longer_than_65535_characters_is_invalid()
    {
        Assert.True(Fields.IsValidName(new string('a', 65535)));
        Assert.False(Fields.IsValidName(new string('a', 65536)));
    }

    [Theory]
    [InlineData(new byte[] { }, true)]
    [InlineData(new byte[] { (byte)'a', (byte)'\t', (byte)' ', (byte)'b' }, true)]
    [InlineData(new byte[] { 0x80, 0xE9, 0xFF }, true)]
    [InlineData(new byte[] { (byte)'a', (byte)'\r', (byte)'b' }, false)]
    [InlineData(new byte[] { (byte)'a', (byte)'\n' }, false)]
    [InlineData(new byte[] { 0 }, false)]
    [InlineData(new byte[] { 0x01 }, false)]
    [InlineData(new byte[] { 0x1F }, false)]
    [InlineData(new byte[] { 0x7F }, false)]
    public void Values_may_not_hold_control_characters_other_than_tab(byte[] value, bool valid) => Assert.Equal(valid, Fields.IsValidValue(value));

    [Theory]
    [InlineData("Connection")]
    [InlineData("keep-alive")]
    [InlineData("Proxy-Authenticate")]
    [InlineData("PROXY-AUTHORIZATION")]
    [InlineData("proxy-connection")]
    [InlineData("Transfer-Encoding")]
    [InlineData("Upgrade")]
    [InlineData("host")]
    [InlineData("HTTP2-Settings")]
    public void Forbidden_names_are_refused_by_every_mutation_in_any_case(string name)
    {
        var fields = new Fields();
        Assert.Equal(HeaderError.Forbidden, fields.Append(name, B("x")));
        Assert.Equal(HeaderError.Forbidden, fields.Set(name, [B("x")]));
        Assert.Equal(HeaderError.Forbidden, fields.Delete(name));
        Assert.Equal(HeaderError.Forbidden, Fields.FromList([new("a", B("1")), new(name, B("x"))], out var created));
        Assert.Null(created);
        Assert.Empty(fields.Entries);
    }

    [Fact]
    public void Te_is_not_forbidden_in_wasi_http_0_2()
    {
        Assert.Null(new Fields().Append("te", B("trailers")));
    }

    [Fact]
    public void Set_is_all_or_nothing_and_replaces_the_values_in_place()
    {
        var fields = new Fields();
        Assert.Null(fields.Append("x-a", B("1")));
        Assert.Null(fields.Append("x-b", B("2")));
        Assert.Equal(HeaderError.InvalidSyntax, fields.Set("x-a", [B("ok"), B("bad\nvalue")]));
        Assert.Equal("x-a=1;x-b=2", Dump(fields));

        Assert.Null(fields.Set("X-A", [B("3"), B("4")]));
        Assert.Equal("X-A=3;X-A=4;x-b=2", Dump(fields));
        Assert.Null(fields.Set("x-b", []));
        Assert.Equal("X-A=3;X-A=4", Dump(fields));
    }

    [Fact]
    public void Values_of_a_name_stay_together_in_first_added_order_with_the_case_given()
    {
        var fields = new Fields();
        fields.Append("x-a", B("1"));
        fields.Append("x-b", B("2"));
        fields.Append("X-A", B("3"));
        fields.Set("x-c", [B("4")]);
        Assert.Equal("x-a=1;X-A=3;x-b=2;x-c=4", Dump(fields));
        Assert.Equal(["1", "3"], fields.Get("X-a").Select(Encoding.Latin1.GetString));
        Assert.True(fields.Has("X-B"));
        Assert.Null(fields.Delete("X-a"));
        Assert.Null(fields.Delete("x-missing"));
        Assert.Equal("x-b=2;x-c=4", Dump(fields));
    }

    [Fact]
    public void Get_and_has_answer_empty_for_invalid_names()
    {
        var fields = new Fields();
        Assert.Empty(fields.Get("bad name"));
        Assert.False(fields.Has("bad name"));
        Assert.Equal(HeaderError.InvalidSyntax, fields.Delete("bad name"));
    }

    [Fact]
    public void From_list_checks_every_entry_and_groups_values()
    {
        Assert.Equal(HeaderError.InvalidSyntax, Fields.FromList([new("a", B("1")), new("b c", B("2"))], out _));
        Assert.Equal(HeaderError.InvalidSyntax, Fields.FromList([new("a", B("1")), new("b", B("x\0y"))], out _));
        Assert.Null(Fields.FromList([new("a", B("1")), new("B", B("2")), new("A", B("3"))], out var fields));
        Assert.Equal("a=1;A=3;B=2", Dump(fields!));
        Assert.False(fields!.Immutable);
    }

    [Fact]
    public void Immutable_fields_refuse_mutations_after_the_name_and_value_checks()
    {
        var fields = new Fields();
        fields.AddReceived("X-Client", B("hello"));
        fields.AddReceived("Host", B("example"));
        fields.AddReceived("connection", B("keep-alive"));
        fields.Immutable = true;
        Assert.Equal("x-client=hello", Dump(fields));
        Assert.Equal(HeaderError.Immutable, fields.Append("x-new", B("v")));
        Assert.Equal(HeaderError.Immutable, fields.Set("x-client", [B("v")]));
        Assert.Equal(HeaderError.Immutable, fields.Delete("x-client"));
        Assert.Equal(HeaderError.Forbidden, fields.Append("host", B("v")));
        Assert.Equal(HeaderError.InvalidSyntax, fields.Append("x-new", B("a\rb")));
        Assert.Equal("x-client=hello", Dump(fields));

        var clone = fields.Clone();
        Assert.False(clone.Immutable);
        Assert.Null(clone.Append("x-new", B("v")));
        Assert.Equal("x-client=hello", Dump(fields));
        Assert.Equal("x-client=hello;x-new=v", Dump(clone));
    }

    [Fact]
    public void More_than_128_KiB_of_fields_is_a_trap_and_leaves_them_unchanged()
    {
        var fields = new Fields();
        var value = B(new string('v', 1000));
        var appended = 0;
        void Fill()
        {
            while (fields.Append("x-big", value) is null)
            {
                appended++;
            }
        }

        var trap = Assert.Throws<HostTrapException>(Fill);
        Assert.Contains("131072", trap.Message, StringComparison.Ordinal);
        Assert.Equal(Fields.MaxBytes / (1000 + 5 + Fields.EntryOverhead), appended);
        Assert.Equal(appended, fields.Entries.Count);
        Assert.Throws<HostTrapException>(() => fields.Set("x-other", [value, value, value, value, value]));
        Assert.Equal(appended, fields.Entries.Count);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("0", true)]
    [InlineData("18446744073709551615", true)]
    [InlineData("18446744073709551616", false)]
    [InlineData("abc", false)]
    [InlineData("+5", false)]
    [InlineData(" 5", false)]
    [InlineData("", false)]
    public void Content_length_must_be_digits_for_a_body(string? value, bool valid)
    {
        var fields = new Fields();
        if (value is not null)
        {
            Assert.Null(fields.Append("Content-Length", B(value)));
        }

        Assert.Equal(valid, fields.HasValidContentLength());
    }
}
