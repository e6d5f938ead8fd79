using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Tests.Manifest;

public class ManifestParserTests
{
    [Fact]
    public void FullExample_ParsesEveryField()
    {
        var result = ManifestParser.Parse(ManifestTestHelpers.FullExample, "apps/hello/warp.toml");

        Assert.True(result.Success, string.Join("\n", result.Errors));
        Assert.Empty(result.Errors);
        var m = result.Manifest!;
        Assert.Equal("apps/hello/warp.toml", m.SourcePath);

        Assert.Equal("hello", m.Package.Name);
        Assert.Equal("1.2.3-beta.1+build.5", m.Package.Version);
        Assert.Equal("Says hello", m.Package.Description);
        Assert.Equal(["Ada <ada@example.com>", "Grace <grace@example.com>"], m.Package.Authors);

        Assert.Equal(BuildLanguage.Rust, m.Build.Lang);
        Assert.Equal("src/lib.rs", m.Build.Source);
        Assert.Equal("cargo build --target wasm32-wasip1 --release", m.Build.Command);
        Assert.Equal("target/wasm32-wasip1/release/hello.wasm", m.Build.Output);

        Assert.Equal(TriggerKind.Http, m.Runtime.Trigger);
        Assert.Equal(2, m.Runtime.MinInstances);
        Assert.Equal(20, m.Runtime.MaxInstances);
        Assert.Equal(TimeSpan.FromSeconds(90), m.Runtime.RequestTimeout);
        Assert.Equal("/api/hello", m.Runtime.Route);
        Assert.Equal("*.example.com", m.Runtime.Host);

        Assert.Equal(1536L * 1024 * 1024, m.Runtime.Resources.MemoryLimitBytes);
        Assert.Equal(250, m.Runtime.Resources.CpuWeight);

        Assert.Equal(ScalingMetric.Custom, m.Runtime.Scaling.Metric);
        Assert.Equal(2.5, m.Runtime.Scaling.TargetValue);
        Assert.Equal(TimeSpan.FromSeconds(15), m.Runtime.Scaling.ScaleUpWindow);
        Assert.Equal(TimeSpan.FromMinutes(10), m.Runtime.Scaling.ScaleDownWindow);
        Assert.Equal("queue_depth", m.Runtime.Scaling.CustomMetric);

        Assert.Equal(["*.internal.svc", "api.example.com"], m.Capabilities.HttpOutbound);
        Assert.False(m.Capabilities.Logging);
        Assert.Equal(["default", "sessions"], m.Capabilities.KeyValue);
        Assert.Equal(new Dictionary<string, string> { ["RUST_LOG"] = "info", ["GREETING"] = "hi" }, m.Capabilities.Environment);
        Assert.Equal(new Dictionary<string, string> { ["db.url"] = "postgres://db", ["key"] = "value" }, m.Capabilities.Config);

        var health = Assert.IsType<HealthSection>(m.Health);
        Assert.Equal("/healthz", health.Endpoint);
        Assert.Equal(TimeSpan.FromSeconds(5), health.Interval);
        Assert.Equal(TimeSpan.FromMilliseconds(500), health.Timeout);
        Assert.Equal(5, health.UnhealthyThreshold);
        Assert.Equal(2, health.HealthyThreshold);
    }

    [Fact]
    public void MinimalManifest_GetsEveryDefault()
    {
        var m = ManifestParser.ParseOrThrow("[package]\nname = \"hello\"\n");

        Assert.Equal("hello", m.Package.Name);
        Assert.Equal("0.1.0", m.Package.Version);
        Assert.Null(m.Package.Description);
        Assert.Empty(m.Package.Authors);

        Assert.Null(m.Build.Lang);
        Assert.Null(m.Build.Source);
        Assert.Null(m.Build.Command);
        Assert.Equal("hello.wasm", m.Build.Output);

        Assert.Equal(TriggerKind.Http, m.Runtime.Trigger);
        Assert.Equal(1, m.Runtime.MinInstances);
        Assert.Equal(10, m.Runtime.MaxInstances);
        Assert.Equal(TimeSpan.FromSeconds(30), m.Runtime.RequestTimeout);
        Assert.Equal("/hello", m.Runtime.Route);
        Assert.Null(m.Runtime.Host);
        Assert.Equal(128L * 1024 * 1024, m.Runtime.Resources.MemoryLimitBytes);
        Assert.Equal(100, m.Runtime.Resources.CpuWeight);
        Assert.Equal(ScalingMetric.RequestConcurrency, m.Runtime.Scaling.Metric);
        Assert.Equal(10, m.Runtime.Scaling.TargetValue);
        Assert.Equal(TimeSpan.Zero, m.Runtime.Scaling.ScaleUpWindow);
        Assert.Equal(TimeSpan.FromMinutes(5), m.Runtime.Scaling.ScaleDownWindow);
        Assert.Null(m.Runtime.Scaling.CustomMetric);

        Assert.Empty(m.Capabilities.HttpOutbound);
        Assert.True(m.Capabilities.Logging);
        Assert.Empty(m.Capabilities.KeyValue);
        Assert.Empty(m.Capabilities.Environment);
        Assert.Empty(m.Capabilities.Config);

        Assert.Null(m.Health);
        Assert.Equal("warp.toml", m.SourcePath);
    }

    [Fact]
    public void MinimalManifest_EqualsCreateDefault()
    {
        var parsed = ManifestParser.ParseOrThrow("[package]\nname = \"hello\"\n");

        Assert.Equal(WarpManifest.CreateDefault("hello"), parsed);
    }

    [Fact]
    public void CreateDefault_RejectsInvalidName()
    {
        var ex = Assert.Throws<ArgumentException>(() => WarpManifest.CreateDefault("Hello_World"));
        Assert.Contains("DNS label", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => WarpManifest.CreateDefault(null!));
    }

    [Fact]
    public void HealthSection_DefaultsApplyWhenOnlyEndpointIsGiven()
    {
        var m = ManifestTestHelpers.ValidWithPackage("[health]\nendpoint = \"/healthz\"\n");

        var health = Assert.IsType<HealthSection>(m.Health);
        Assert.Equal(TimeSpan.FromSeconds(10), health.Interval);
        Assert.Equal(TimeSpan.FromSeconds(2), health.Timeout);
        Assert.Equal(3, health.UnhealthyThreshold);
        Assert.Equal(1, health.HealthyThreshold);
    }

    [Fact]
    public void DottedKeys_InlineTables_AndSubTableHeaders_AreEquivalent()
    {
        var headers = ManifestTestHelpers.ValidWithPackage("""
            [runtime.resources]
            memory_limit = "256MB"
            cpu_weight = 7
            [runtime.scaling]
            metric = "cpu"
            [capabilities.environment]
            A = "1"
            """);
        var dotted = ManifestTestHelpers.ValidWithPackage("""
            [runtime]
            resources.memory_limit = "256MB"
            resources.cpu_weight = 7
            scaling.metric = "cpu"
            [capabilities]
            environment.A = "1"
            """);
        var inline = ManifestTestHelpers.ValidWithPackage("""
            [runtime]
            resources = { memory_limit = "256MB", cpu_weight = 7 }
            scaling = { metric = "cpu" }
            [capabilities]
            environment = { A = "1" }
            """);
        var topLevelDotted = ManifestParser.ParseOrThrow("""
            package.name = "app"
            runtime.resources.memory_limit = 268435456
            runtime.resources.cpu_weight = 7
            runtime.scaling.metric = "cpu"
            capabilities.environment.A = "1"
            """);

        Assert.Equal(256L * 1024 * 1024, headers.Runtime.Resources.MemoryLimitBytes);
        Assert.Equal(7, headers.Runtime.Resources.CpuWeight);
        Assert.Equal(ScalingMetric.Cpu, headers.Runtime.Scaling.Metric);
        Assert.Equal("1", headers.Capabilities.Environment["A"]);
        Assert.Equal(headers, dotted);
        Assert.Equal(headers, inline);
        Assert.Equal(headers, topLevelDotted);
    }

    [Fact]
    public void RootLevelDottedKeys_Work()
    {
        var m = ManifestParser.ParseOrThrow("package.name = \"dotted\"\nruntime.max_instances = 3\n");

        Assert.Equal("dotted", m.Package.Name);
        Assert.Equal(3, m.Runtime.MaxInstances);
    }

    [Theory]
    [InlineData("c", BuildLanguage.C)]
    [InlineData("cpp", BuildLanguage.Cpp)]
    [InlineData("rust", BuildLanguage.Rust)]
    [InlineData("go", BuildLanguage.Go)]
    [InlineData("zig", BuildLanguage.Zig)]
    [InlineData("typescript", BuildLanguage.TypeScript)]
    [InlineData("javascript", BuildLanguage.JavaScript)]
    [InlineData("wat", BuildLanguage.Wat)]
    public void EveryLanguage_IsAccepted(string lang, BuildLanguage expected)
    {
        var m = ManifestTestHelpers.ValidWithPackage($"[build]\nlang = \"{lang}\"\n");

        Assert.Equal(expected, m.Build.Lang);
    }

    [Fact]
    public void CliTrigger_IntegerTargetValue_ByteSizeAsInteger_AndHostCase_AreAccepted()
    {
        var m = ManifestTestHelpers.ValidWithPackage("""
            [runtime]
            trigger = "cli"
            min_instances = 0
            max_instances = 10000
            request_timeout = "1h"
            host = "API.Example.COM"
            [runtime.resources]
            memory_limit = 65536
            cpu_weight = 10000
            [runtime.scaling]
            target_value = 3
            """);

        Assert.Equal(TriggerKind.Cli, m.Runtime.Trigger);
        Assert.Equal(0, m.Runtime.MinInstances);
        Assert.Equal(10000, m.Runtime.MaxInstances);
        Assert.Equal(TimeSpan.FromHours(1), m.Runtime.RequestTimeout);
        Assert.Equal("api.example.com", m.Runtime.Host);
        Assert.Equal(65536, m.Runtime.Resources.MemoryLimitBytes);
        Assert.Equal(3.0, m.Runtime.Scaling.TargetValue);
    }

    [Fact]
    public void Load_ReadsFile_AndNamesItInErrors()
    {
        var directory = Directory.CreateTempSubdirectory("warpgrid-manifest-");
        try
        {
            var good = Path.Combine(directory.FullName, "warp.toml");
            File.WriteAllText(good, "[package]\nname = \"loaded\"\n");
            var m = ManifestParser.Load(good);
            Assert.Equal("loaded", m.Package.Name);
            Assert.Equal(good, m.SourcePath);

            var bad = Path.Combine(directory.FullName, "bad.toml");
            File.WriteAllText(bad, "[package]\nname = 5\n");
            var ex = Assert.Throws<ManifestException>(() => ManifestParser.Load(bad));
            var error = Assert.Single(ex.Errors);
            Assert.Equal(bad, error.File);
            Assert.StartsWith(bad + ":2:8: package.name: expected string, got integer", ex.Message, StringComparison.Ordinal);

            Assert.Throws<FileNotFoundException>(() => ManifestParser.Load(Path.Combine(directory.FullName, "missing.toml")));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void NullArguments_Throw()
    {
        Assert.Throws<ArgumentNullException>(() => ManifestParser.Parse(null!));
        Assert.Throws<ArgumentNullException>(() => ManifestParser.Parse("", null!));
        Assert.Throws<ArgumentNullException>(() => ManifestParser.Load(null!));
        Assert.Throws<ArgumentNullException>(() => ManifestWriter.ToToml(null!));
    }
}
