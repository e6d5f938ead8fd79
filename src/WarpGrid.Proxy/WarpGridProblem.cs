namespace WarpGrid.Proxy;

/// <summary>The <c>application/problem+json</c> body (RFC 9457) every WarpGrid error uses, on the ingress and the API.</summary>
public static class WarpGridProblem
{
    /// <summary>The media type of problem bodies.</summary>
    public const string ContentType = "application/problem+json";

    /// <summary>Builds the body: <c>type</c> (from <paramref name="code"/>), <c>title</c>, <c>status</c> and <c>detail</c>; callers add extensions.</summary>
    public static Dictionary<string, object?> Create(int status, string code, string title, string detail) => new()
    {
        ["type"] = "https://warpgrid.dev/errors/" + code,
        ["title"] = title,
        ["status"] = status,
        ["detail"] = detail,
    };
}
