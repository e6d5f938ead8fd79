using System.Net;
using System.Text.Json;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

/// <summary><c>warp deploy</c> and <c>warp status</c> against a real warpd process; the greeting comes back through its ingress.</summary>
public sealed class DeployTests(Warpd warpd) : IClassFixture<Warpd>
{
    private const string WatHello = """
        ;; Hello world in hand-written WAT, WAGI: one fd_write of a static response.
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "Content-Type: text/plain\n\nHello from WAT on WarpGrid!\n")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 54))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
        """;

    public static TheoryData<string, string> HttpSamples => new()
    {
        { "hello", "Hello from WarpGrid!" },
        { "hello-cpp", "Hello from C++ on WarpGrid! You asked for /greet" },
        { "hello-rust", "Hello from Rust on WarpGrid! You asked for /greet" },
        { "hello-go", "Hello from Go on WarpGrid! You asked for /greet" },
        { "hello-zig", "Hello from Zig on WarpGrid! You asked for /greet" },
        { "hello-ts", "Hello from TypeScript (AssemblyScript) on WarpGrid! You asked for /greet" },
    };

    [Theory]
    [MemberData(nameof(HttpSamples))]
    public async Task Deploy_of_a_sample_directory_serves_its_greeting_through_the_ingress(string sample, string greeting)
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo(sample, temp.Path);
        File.SetLastWriteTimeUtc(Path.Combine(dir, sample + ".wasm"), DateTime.UtcNow.AddMinutes(1)); // up to date: deploy uses it as is

        var run = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl, "--json");

        Assert.True(run.ExitCode == 0, run + warpd.Tail);
        var deployment = run.Json.GetProperty("deployment");
        Assert.Equal(sample, deployment.GetProperty("name").GetString());
        Assert.Equal("/" + sample, deployment.GetProperty("route").GetString());
        Assert.Equal("running", deployment.GetProperty("status").GetString());
        Assert.False(run.Json.GetProperty("pack").GetProperty("build").GetProperty("built").GetBoolean());

        var (status, body) = await warpd.GetUntilOkAsync($"/{sample}/greet", TimeSpan.FromSeconds(30));
        Assert.True(status == HttpStatusCode.OK, $"{status}: {body}\n{warpd.Tail}");
        Assert.Contains(greeting, body);
    }

    [Fact]
    public async Task Deploy_of_a_wat_package_converts_it_and_serves_it()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), "[package]\nname = \"hello-wat\"\n\n[build]\nlang = \"wat\"\nsource = \"hello.wat\"\n");
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "hello.wat"), WatHello);

        var run = await Warp.RunAsync("deploy", temp.Path, "--node", warpd.ApiUrl);

        Assert.True(run.ExitCode == 0, run + warpd.Tail);
        Assert.Contains("created deployment hello-wat 0.1.0", run.Stdout);
        Assert.Contains("route     /hello-wat", run.Stdout);
        var (status, body) = await warpd.GetUntilOkAsync("/hello-wat", TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Hello from WAT on WarpGrid!\n", body);
    }

    [Fact]
    public async Task Deploy_rebuilds_a_stale_output_then_updates_the_deployment()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello-cpp", temp.Path);
        var source = Path.Combine(dir, "main.cpp");
        await File.WriteAllTextAsync(source, (await File.ReadAllTextAsync(source)).Replace("Hello from C++", "Rebuilt C++", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello-cpp.wasm"), DateTime.UtcNow.AddHours(-1));
        File.SetLastWriteTimeUtc(source, DateTime.UtcNow);
        var toml = Path.Combine(dir, "warp.toml");
        await File.WriteAllTextAsync(toml, (await File.ReadAllTextAsync(toml)).Replace("hello-cpp", "rebuilt-cpp", StringComparison.Ordinal).Replace("\"hello-cpp.wasm\"", "\"rebuilt-cpp.wasm\"", StringComparison.Ordinal));

        var first = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl, "--json");
        Assert.True(first.ExitCode == 0, first + warpd.Tail);
        Assert.True(first.Json.GetProperty("pack").GetProperty("build").GetProperty("built").GetBoolean());
        Assert.True(first.Json.GetProperty("created").GetBoolean());
        var (_, body) = await warpd.GetUntilOkAsync("/rebuilt-cpp/x", TimeSpan.FromSeconds(30));
        Assert.Contains("Rebuilt C++ on WarpGrid! You asked for /x", body);

        var second = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl, "--json");
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.False(second.Json.GetProperty("created").GetBoolean());
        Assert.False(second.Json.GetProperty("pack").GetProperty("build").GetProperty("built").GetBoolean());
    }

    [Fact]
    public async Task Status_lists_deployments_as_json_and_as_a_table()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello-zig", temp.Path);
        var toml = Path.Combine(dir, "warp.toml");
        await File.WriteAllTextAsync(toml, (await File.ReadAllTextAsync(toml)).Replace("name = \"hello-zig\"", "name = \"status-zig\"", StringComparison.Ordinal).Replace("route = \"/hello-zig\"", "route = \"/status-zig\"", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello-zig.wasm"), DateTime.UtcNow.AddMinutes(1));
        var deploy = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl);
        Assert.True(deploy.ExitCode == 0, deploy + warpd.Tail);
        var (status, _) = await warpd.GetUntilOkAsync("/status-zig", TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, status);

        var list = await Warp.RunAsync("status", "--node", warpd.ApiUrl, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var entry = list.Json.GetProperty("deployments").EnumerateArray().Single(d => d.GetProperty("name").GetString() == "status-zig");
        Assert.Equal("running", entry.GetProperty("status").GetString());
        Assert.Equal("/status-zig", entry.GetProperty("route").GetString());
        Assert.True(entry.GetProperty("instances").GetProperty("requests").GetInt64() >= 1);

        var one = await Warp.RunAsync("status", "status-zig", "--node", warpd.ApiUrl, "--json");
        Assert.Equal(0, one.ExitCode);
        Assert.Equal("0.1.0", one.Json.GetProperty("deployment").GetProperty("version").GetString());

        var table = await Warp.RunAsync("status", "--node", warpd.ApiUrl);
        Assert.Equal(0, table.ExitCode);
        Assert.Matches(@"(?m)^NAME\s+VERSION\s+STATUS\s+ROUTE\s+LIVE/BUSY\s+REQUESTS\s+FAULTS$", table.Stdout);
        Assert.Matches(@"(?m)^status-zig\s+0\.1\.0\s+running\s+/status-zig\s+\d+/\d+\s+\d+\s+0$", table.Stdout);

        var missing = await Warp.RunAsync("status", "no-such-app", "--node", warpd.ApiUrl);
        Assert.Equal(5, missing.ExitCode);
        Assert.Contains("404 Deployment not found", missing.Stderr);
        Assert.Contains("no deployment named 'no-such-app'", missing.Stderr);
    }

    [Fact]
    public async Task Deploying_the_javascript_component_runs_it()
    {
        using var temp = new TempDir();
        var dir = Samples.CopyTo("hello-js", temp.Path);
        File.SetLastWriteTimeUtc(Path.Combine(dir, "hello-js.wasm"), DateTime.UtcNow.AddMinutes(1));

        var human = await Warp.RunAsync("deploy", dir, "--node", warpd.ApiUrl);
        Assert.True(human.ExitCode == 0, human + warpd.Tail);
        Assert.Contains("packed hello-js 0.1.0: javascript, WASI 0.2 component", human.Stdout);

        using var response = await warpd.Ingress.GetAsync("hello-js");
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"hello-js answered {(int)response.StatusCode}: {body}{warpd.Tail}");
        Assert.Equal("Hello from JavaScript on WarpGrid! You asked for /hello-js\n", body);
    }

    [Fact]
    public async Task Deploy_of_an_invalid_manifest_fails_locally_with_exit_2()
    {
        using var temp = new TempDir();
        await File.WriteAllTextAsync(Path.Combine(temp.Path, "warp.toml"), "[package]\nname = \"x\"\n[runtime]\nmin_instances = 5\nmax_instances = 2\n");
        var run = await Warp.RunAsync("deploy", temp.Path, "--node", warpd.ApiUrl);
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("runtime.max_instances", run.Stderr);
    }

    [Fact]
    public async Task Deploy_of_an_unreachable_reference_is_reported_by_the_node()
    {
        var run = await Warp.RunAsync("deploy", "127.0.0.1:1/team/hello-ref:1.2.3", "--node", warpd.ApiUrl, "--json");
        Assert.True(run.ExitCode == 5, run.ToString());
        using var document = JsonDocument.Parse(run.Stdout);
        Assert.Equal("node_rejected", document.RootElement.GetProperty("error").GetProperty("code").GetString());
    }
}
