using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Tests.Manifest;

internal static class ManifestTestHelpers
{
    public const string FullExample = """
        [package]
        name = "hello"
        version = "1.2.3-beta.1+build.5"
        description = "Says hello"
        authors = ["Ada <ada@example.com>", "Grace <grace@example.com>"]

        [build]
        lang = "rust"
        source = "src/lib.rs"
        command = "cargo build --target wasm32-wasip1 --release"
        output = "target/wasm32-wasip1/release/hello.wasm"

        [runtime]
        trigger = "http"
        min_instances = 2
        max_instances = 20
        request_timeout = "1m30s"
        route = "/api/hello"
        host = "*.example.com"

        [runtime.resources]
        memory_limit = "1.5GB"
        cpu_weight = 250

        [runtime.scaling]
        metric = "custom"
        target_value = 2.5
        scale_up_window = "15s"
        scale_down_window = "10m"
        custom_metric = "queue_depth"

        [capabilities]
        http_outbound = ["*.internal.svc", "api.example.com"]
        logging = false
        key_value = ["default", "sessions"]
        environment = { RUST_LOG = "info", GREETING = "hi" }
        config = { "db.url" = "postgres://db", key = "value" }

        [health]
        endpoint = "/healthz"
        interval = "5s"
        timeout = "500ms"
        unhealthy_threshold = 5
        healthy_threshold = 2
        """;

    /// <summary>Parses text that must be invalid and returns its errors.</summary>
    public static IReadOnlyList<ManifestError> Errors(string toml)
    {
        var result = ManifestParser.Parse(toml);
        Assert.False(result.Success, "expected the manifest to be invalid");
        Assert.Null(result.Manifest);
        Assert.NotEmpty(result.Errors);
        return result.Errors;
    }

    /// <summary>Asserts that exactly one error names <paramref name="field"/>, at <paramref name="line"/>, with <paramref name="phrase"/> in its message.</summary>
    public static ManifestError AssertError(IReadOnlyList<ManifestError> errors, string field, int line, string phrase)
    {
        var matching = errors.Where(e => e.Field == field).ToArray();
        var error = Assert.Single(matching);
        Assert.True(line == error.Line, $"expected line {line}, got {error}");
        Assert.Contains(phrase, error.Message, StringComparison.Ordinal);
        Assert.Equal("warp.toml", error.File);
        Assert.True(error.Column >= 1, error.ToString());
        return error;
    }

    /// <summary>Parses a manifest containing only a valid [package] plus <paramref name="rest"/>.</summary>
    public static IReadOnlyList<ManifestError> ErrorsWithPackage(string rest) =>
        Errors("[package]\nname = \"app\"\n" + rest);

    public static WarpManifest ValidWithPackage(string rest)
    {
        var result = ManifestParser.Parse("[package]\nname = \"app\"\n" + rest);
        Assert.True(result.Success, string.Join("\n", result.Errors));
        return result.Manifest!;
    }
}
