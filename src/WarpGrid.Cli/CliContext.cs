using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace WarpGrid.Cli;

/// <summary>Where a command reads its environment and writes its output. Tests pass their own writers and variables.</summary>
public sealed class CliContext
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly IReadOnlyDictionary<string, string?>? _environment;

    /// <param name="output">Standard output: results (tables, JSON).</param>
    /// <param name="error">Standard error: progress, warnings and errors.</param>
    /// <param name="environment">Environment overrides (a key mapped to <see langword="null"/> hides the process variable); other variables come from the process.</param>
    /// <param name="interactive">True when <paramref name="error"/> is a terminal: progress is drawn in place.</param>
    /// <param name="input">Standard input (read by <c>--password-stdin</c>); empty when null.</param>
    public CliContext(TextWriter output, TextWriter error, IReadOnlyDictionary<string, string?>? environment = null, bool interactive = false, TextReader? input = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        Out = output;
        Err = error;
        _environment = environment;
        Interactive = interactive;
        In = input ?? TextReader.Null;
    }

    /// <summary>Standard input.</summary>
    public TextReader In { get; }

    /// <summary>Standard output.</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error.</summary>
    public TextWriter Err { get; }

    /// <summary>True when progress may be redrawn in place on <see cref="Err"/>.</summary>
    public bool Interactive { get; }

    /// <summary>A context over the process console.</summary>
    public static CliContext FromConsole() =>
        new(Console.Out, Console.Error, null, !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"), Console.In);

    /// <summary>Reads an environment variable, overrides first.</summary>
    public string? GetEnv(string name) =>
        _environment is not null && _environment.TryGetValue(name, out var value) ? value : Environment.GetEnvironmentVariable(name);

    /// <summary>Writes one JSON document to standard output.</summary>
    public void WriteJson(object value)
    {
        var text = value is JsonNode node ? node.ToJsonString(Json) : JsonSerializer.Serialize(value, value.GetType(), Json);
        Out.WriteLine(text);
    }

    /// <summary>Reports a failure: JSON on standard output with <paramref name="json"/>, readable text on standard error otherwise.</summary>
    public void Report(CliFailure failure, bool json)
    {
        if (json)
        {
            var error = new JsonObject
            {
                ["code"] = failure.Code,
                ["message"] = failure.Message,
                ["exitCode"] = failure.ExitCode,
            };
            if (failure.Hint is not null)
            {
                error["hint"] = failure.Hint;
            }

            if (failure.Errors.Count > 0)
            {
                error["errors"] = JsonSerializer.SerializeToNode(failure.Errors, Json);
            }

            if (failure.Problem is not null)
            {
                error["problem"] = failure.Problem.DeepClone();
            }

            if (failure.Log is not null)
            {
                error["log"] = failure.Log;
            }

            WriteJson(new JsonObject { ["ok"] = false, ["error"] = error });
            return;
        }

        if (failure.Log is { Length: > 0 } log)
        {
            Err.WriteLine(log.TrimEnd());
        }

        Err.WriteLine("error: " + failure.Message);
        foreach (var item in failure.Errors)
        {
            Err.WriteLine("  " + item);
        }

        if (failure.Hint is not null)
        {
            Err.WriteLine("hint: " + failure.Hint);
        }
    }
}
