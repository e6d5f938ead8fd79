using System.Text.Json.Nodes;

namespace WarpGrid.Cli;

/// <summary>One located problem (a manifest error, a field the node rejected).</summary>
/// <param name="Message">What is wrong.</param>
/// <param name="Field">Dotted field path, when known.</param>
/// <param name="File">File, when known.</param>
/// <param name="Line">1-based line, when known.</param>
/// <param name="Column">1-based column, when known.</param>
public sealed record ErrorItem(string Message, string? Field = null, string? File = null, int? Line = null, int? Column = null)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var where = File is null ? string.Empty : Line is null ? File + ": " : $"{File}:{Line}:{Column ?? 1}: ";
        return string.IsNullOrEmpty(Field) ? where + Message : $"{where}{Field}: {Message}";
    }
}

/// <summary>A command failed; carries the exit code, a machine-readable code and what to do next.</summary>
public sealed class CliFailure : Exception
{
    public CliFailure(int exitCode, string code, string message, string? hint = null, IReadOnlyList<ErrorItem>? errors = null, JsonNode? problem = null, string? log = null)
        : base(message)
    {
        ExitCode = exitCode;
        Code = code;
        Hint = hint;
        Errors = errors ?? [];
        Problem = problem;
        Log = log;
    }

    /// <summary>The process exit code (<see cref="ExitCodes"/>).</summary>
    public int ExitCode { get; }

    /// <summary>A stable snake_case code, e.g. <c>manifest_invalid</c>.</summary>
    public string Code { get; }

    /// <summary>What to do next.</summary>
    public string? Hint { get; }

    /// <summary>Every located problem.</summary>
    public IReadOnlyList<ErrorItem> Errors { get; }

    /// <summary>The node's <c>application/problem+json</c> body, when the node rejected a request.</summary>
    public JsonNode? Problem { get; }

    /// <summary>Output of a failed tool (compiler), when relevant.</summary>
    public string? Log { get; }
}
