using System.Buffers;
using System.Text;
using WarpGrid.Core.Runtime.Wagi;

namespace WarpGrid.Core.Tests.Runtime;

public sealed class CgiResponseTests
{
    private static CgiResponse? Parse(string output, out string? error)
    {
        var bytes = Encoding.UTF8.GetBytes(output);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, bytes.Length));
        bytes.CopyTo(buffer, 0);
        return CgiResponse.TryParse(buffer, bytes.Length, out error);
    }

    [Theory]
    [InlineData("Content-Type: text/plain\n\nhi", 200, "hi")]
    [InlineData("Content-Type: text/plain\r\nX-A: 1\r\n\r\nhi\r\n", 200, "hi\r\n")]
    [InlineData("Status: 404 Not Found\nContent-Type: text/plain\n\nnope", 404, "nope")]
    [InlineData("Status: 201\n\n", 201, "")]
    [InlineData("Location: /elsewhere\n\n", 302, "")]
    [InlineData("Location: /elsewhere\nStatus: 307 Temporary Redirect\n\n", 307, "")]
    public void Parses_status_headers_and_body(string output, int status, string body)
    {
        using var response = Parse(output, out var error)!;
        Assert.Null(error);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(body, Encoding.UTF8.GetString(response.Body.Span));
        Assert.DoesNotContain(response.Headers, h => h.Key == "Status");
    }

    [Fact]
    public void Header_values_keep_their_bytes_one_char_each()
    {
        var output = "Content-Type: text/plain\nContent-Disposition: attachment; filename=\"caf\u00e9.txt\"\nX-Tab:\ta\tb \n\nbody"u8.ToArray();
        var buffer = ArrayPool<byte>.Shared.Rent(output.Length + 1);
        output.CopyTo(buffer, 0);
        buffer[output.Length] = 0;
        using var response = CgiResponse.TryParse(buffer, output.Length, out var error)!;
        Assert.Null(error);
        // "é" written as UTF-8 is the two bytes C3 A9, so two Latin-1 chars: written back as the same two bytes.
        Assert.Equal("attachment; filename=\"caf\u00c3\u00a9.txt\"", response.Headers.Single(h => h.Key == "Content-Disposition").Value);
        Assert.Equal("a\tb", response.Headers.Single(h => h.Key == "X-Tab").Value);
    }

    [Theory]
    [InlineData("", "wrote nothing")]
    [InlineData("Content-Type: text/plain", "no blank line")]
    [InlineData("no colon here\n\nbody", "malformed header")]
    [InlineData("Status: teapot\n\n", "not a 3-digit")]
    [InlineData("X-Only: 1\n\nbody", "neither a Content-Type")]
    [InlineData("Content-Type: text/plain\nX Bad: 1\n\nbody", "header name \"X Bad\" that is not an HTTP token")]
    [InlineData("Content-Type: text/plain\nX-\u00e9: 1\n\nbody", "header name \"X-\\xc3\\xa9\" that is not an HTTP token")]
    [InlineData("Content-Type: text/plain\nX-Bell: a\u0007b\n\nbody", "header X-Bell has a control character")]
    public void Rejects_malformed_output_with_a_reason(string output, string reason)
    {
        Assert.Null(Parse(output, out var error));
        Assert.Contains(reason, error);
    }
}
