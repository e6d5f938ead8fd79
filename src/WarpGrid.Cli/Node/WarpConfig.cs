using System.Globalization;
using System.Text;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace WarpGrid.Cli.Node;

/// <summary>One named way to reach a node: its URL, a credential and a default namespace (a <c>[contexts.NAME]</c> table).</summary>
internal sealed record WarpContext(string Name)
{
    public string? Node { get; init; }

    public string? Token { get; init; }

    public string? Namespace { get; init; }

    public string? ClientCertificate { get; init; }

    public string? ClientKey { get; init; }

    public string? CertificateAuthority { get; init; }
}

/// <summary>
/// The warp client configuration, <c>$WARP_CONFIG</c>, else <c>$XDG_CONFIG_HOME/warp/config.toml</c>, else
/// <c>~/.config/warp/config.toml</c>: <c>current-context = "NAME"</c> and <c>[contexts.NAME]</c> tables. It may hold
/// tokens, so it is written with mode 0600.
/// </summary>
internal sealed class WarpConfig
{
    private static readonly string[] Keys = ["node", "token", "namespace", "client-certificate", "client-key", "certificate-authority"];

    private WarpConfig(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public string? CurrentContext { get; set; }

    public List<WarpContext> Contexts { get; } = [];

    public WarpContext? Current => CurrentContext is null ? null : Find(CurrentContext);

    public WarpContext? Find(string name) => Contexts.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.Ordinal));

    public static string Locate(CliContext context)
    {
        if (context.GetEnv("WARP_CONFIG") is { Length: > 0 } explicitPath)
        {
            return System.IO.Path.GetFullPath(explicitPath);
        }

        if (context.GetEnv("XDG_CONFIG_HOME") is { Length: > 0 } xdg)
        {
            return System.IO.Path.Combine(xdg, "warp", "config.toml");
        }

        var home = context.GetEnv("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return System.IO.Path.Combine(home, ".config", "warp", "config.toml");
    }

    /// <summary>Reads the configuration; an absent file is an empty configuration, a malformed one a usage error.</summary>
    public static WarpConfig Load(CliContext context)
    {
        var config = new WarpConfig(Locate(context));
        if (!File.Exists(config.Path))
        {
            return config;
        }

        string text;
        try
        {
            text = File.ReadAllText(config.Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliFailure(ExitCodes.Usage, "config_unreadable", $"cannot read {config.Path}: {ex.Message}", "fix its permissions, or point WARP_CONFIG at another file");
        }

        var document = SyntaxParser.Parse(text, config.Path, validate: true);
        if (document.Diagnostics.FirstOrDefault(d => d.Kind == DiagnosticMessageKind.Error) is { } error)
        {
            throw new CliFailure(ExitCodes.Usage, "config_invalid", $"{config.Path}:{error.Span.Start.Line + 1}:{error.Span.Start.Column + 1}: invalid TOML: {error.Message}", "fix the file, or log in again with: warp login --node URL --token-stdin");
        }

        foreach (var item in document.KeyValues)
        {
            if (Segments(item.Key) is ["current-context"] && String(item.Value) is { } current)
            {
                config.CurrentContext = current;
            }
        }

        foreach (var table in document.Tables)
        {
            if (table is not TableSyntax || Segments(table.Name) is not ["contexts", var name])
            {
                continue;
            }

            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var item in table.Items)
            {
                if (Segments(item.Key) is [var key] && String(item.Value) is { } value)
                {
                    values[key] = value;
                }
            }

            config.Contexts.RemoveAll(c => c.Name == name);
            config.Contexts.Add(new WarpContext(name)
            {
                Node = values.GetValueOrDefault("node"),
                Token = values.GetValueOrDefault("token"),
                Namespace = values.GetValueOrDefault("namespace"),
                ClientCertificate = values.GetValueOrDefault("client-certificate"),
                ClientKey = values.GetValueOrDefault("client-key"),
                CertificateAuthority = values.GetValueOrDefault("certificate-authority"),
            });
        }

        return config;
    }

    /// <summary>Adds or replaces a context.</summary>
    public void Put(WarpContext context)
    {
        var index = Contexts.FindIndex(c => c.Name == context.Name);
        if (index >= 0)
        {
            Contexts[index] = context;
        }
        else
        {
            Contexts.Add(context);
        }
    }

    /// <summary>Writes the file (owner read/write only) through a temporary file in the same directory.</summary>
    public void Save()
    {
        var text = new StringBuilder();
        text.Append("# warp client configuration (warp login, warp config use-context). Holds credentials: keep it mode 0600.\n");
        if (CurrentContext is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"current-context = {Quote(CurrentContext)}\n");
        }

        foreach (var c in Contexts)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n[contexts.{Quote(c.Name)}]\n");
            string?[] values = [c.Node, c.Token, c.Namespace, c.ClientCertificate, c.ClientKey, c.CertificateAuthority];
            for (var i = 0; i < Keys.Length; i++)
            {
                if (values[i] is { } value)
                {
                    text.Append(CultureInfo.InvariantCulture, $"{Keys[i]} = {Quote(value)}\n");
                }
            }
        }

        var directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory);
        var temporary = System.IO.Path.Combine(directory, $".config.toml.{Guid.NewGuid():N}");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
        {
            writer.Write(text.ToString());
        }

        File.Move(temporary, Path, overwrite: true);
    }

    private static string Quote(string value)
    {
        var text = new StringBuilder("\"");
        foreach (var ch in value)
        {
            _ = ch switch
            {
                '"' => text.Append("\\\""),
                '\\' => text.Append("\\\\"),
                '\n' => text.Append("\\n"),
                '\t' => text.Append("\\t"),
                '\r' => text.Append("\\r"),
                _ when char.IsControl(ch) => text.Append(CultureInfo.InvariantCulture, $"\\u{(int)ch:X4}"),
                _ => text.Append(ch),
            };
        }

        return text.Append('"').ToString();
    }

    private static string? String(ValueSyntax? value) => value is StringValueSyntax s ? s.Value : null;

    private static List<string>? Segments(KeySyntax? key)
    {
        if (key is null || Name(key.Key) is not { } first)
        {
            return null;
        }

        var segments = new List<string> { first };
        foreach (var dotted in key.DotKeys)
        {
            if (Name(dotted.Key) is not { } next)
            {
                return null;
            }

            segments.Add(next);
        }

        return segments;
    }

    private static string? Name(BareKeyOrStringValueSyntax? key) => key switch
    {
        BareKeySyntax bare => bare.Key?.Text,
        StringValueSyntax quoted => quoted.Value,
        _ => null,
    };
}
