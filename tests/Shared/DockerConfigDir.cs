using System.Runtime.Versioning;
using System.Text;

namespace WarpGrid.Testing;

/// <summary>
/// A temporary Docker config directory (what <c>DOCKER_CONFIG</c> points at) with a <c>bin</c> directory for
/// <c>docker-credential-*</c> scripts that tests put first on <c>PATH</c>. Deleted on dispose.
/// </summary>
[UnsupportedOSPlatform("windows")]
internal sealed class DockerConfigDir : IDisposable
{
    public DockerConfigDir()
    {
        Path = Directory.CreateTempSubdirectory("warpgrid-docker-config-").FullName;
        Bin = System.IO.Path.Combine(Path, "bin");
        Directory.CreateDirectory(Bin);
    }

    /// <summary>The directory (the value for <c>DOCKER_CONFIG</c>).</summary>
    public string Path { get; }

    /// <summary>Where helper scripts go.</summary>
    public string Bin { get; }

    public string ConfigFile => System.IO.Path.Combine(Path, "config.json");

    /// <summary><see cref="Bin"/> first, then the process PATH (for sh, cat, sleep).</summary>
    public string SearchPath => Bin + ":" + (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin");

    /// <summary>Variables for the code under test: DOCKER_CONFIG and PATH.</summary>
    public IReadOnlyDictionary<string, string?> Environment => new Dictionary<string, string?>
    {
        ["DOCKER_CONFIG"] = Path,
        ["PATH"] = SearchPath,
    };

    public string? GetEnv(string name) => Environment.TryGetValue(name, out string? value) ? value : System.Environment.GetEnvironmentVariable(name);

    public void WriteConfig(string json) => File.WriteAllText(ConfigFile, json);

    public static string Base64(string userColonPassword) => Convert.ToBase64String(Encoding.UTF8.GetBytes(userColonPassword));

    /// <summary>
    /// Writes <c>bin/docker-credential-NAME</c>: a shell script that records each call (verb, then its standard input)
    /// in <c>bin/NAME.calls</c> and runs <paramref name="body"/> with <c>$verb</c> and <c>$input</c> set.
    /// </summary>
    public string WriteHelper(string name, string body)
    {
        string path = System.IO.Path.Combine(Bin, "docker-credential-" + name);
        string calls = System.IO.Path.Combine(Bin, name + ".calls");
        File.WriteAllText(path, $"""
            #!/bin/sh
            verb="$1"
            input="$(cat)"
            printf '%s %s\n' "$verb" "$input" >> '{calls}'
            {body}

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        return path;
    }

    /// <summary>A helper that answers <c>get</c> for <paramref name="server"/> with the credential and "not found" for anything else.</summary>
    public string WriteGetHelper(string name, string server, string username, string secret) => WriteHelper(name, $$"""
        if [ "$verb" = get ] && [ "$input" = '{{server}}' ]; then
          printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' '{{server}}' '{{username}}' '{{secret}}'
          exit 0
        fi
        echo "credentials not found in native keychain"
        exit 1
        """);

    /// <summary>The lines <see cref="WriteHelper"/> recorded: "verb input".</summary>
    public IReadOnlyList<string> Calls(string name)
    {
        string calls = System.IO.Path.Combine(Bin, name + ".calls");
        return File.Exists(calls) ? File.ReadAllLines(calls) : [];
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }
}
