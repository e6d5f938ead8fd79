using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Tests.Manifest;

public class ManifestWriterTests
{
    [Fact]
    public void FullExample_RoundTrips()
    {
        var original = ManifestParser.ParseOrThrow(ManifestTestHelpers.FullExample);

        var toml = ManifestWriter.ToToml(original);
        var reparsed = ManifestParser.ParseOrThrow(toml, "stored.toml");

        Assert.Equal(original, reparsed);
        Assert.Equal("stored.toml", reparsed.SourcePath); // provenance, not content
        Assert.Equal(toml, ManifestWriter.ToToml(reparsed)); // canonical: writing again is stable
    }

    [Fact]
    public void Defaults_RoundTrip_AndAreWrittenExplicitly()
    {
        var original = WarpManifest.CreateDefault("hello");

        var toml = ManifestWriter.ToToml(original);

        Assert.Equal(original, ManifestParser.ParseOrThrow(toml));
        Assert.Equal(
            """
            [package]
            name = "hello"
            version = "0.1.0"
            authors = []

            [build]
            output = "hello.wasm"

            [runtime]
            trigger = "http"
            min_instances = 1
            max_instances = 10
            request_timeout = "30s"
            route = "/hello"

            [runtime.resources]
            memory_limit = "128MiB"
            cpu_weight = 100

            [runtime.scaling]
            metric = "request_concurrency"
            target_value = 10
            scale_up_window = "0s"
            scale_down_window = "5m"

            [capabilities]
            http_outbound = []
            logging = true
            key_value = []
            environment = {}
            config = {}

            """.ReplaceLineEndings("\n"),
            toml);
    }

    [Fact]
    public void ProgrammaticManifest_WithAwkwardValues_RoundTrips()
    {
        var original = WarpManifest.CreateDefault("edge") with
        {
            Package = new PackageSection
            {
                Name = "edge",
                Version = "2.0.0-rc.1",
                Description = "Quotes \" backslashes \\ tabs \t newlines \n unicode é 🚀 control \u0001",
                Authors = ["O'Brien <ob@example.com>"],
            },
            Build = new BuildSection { Lang = BuildLanguage.Wat, Source = "edge.wat", Command = "wat2wasm edge.wat -o \"edge.wasm\"", Output = "edge.wasm" },
            Runtime = new RuntimeSection
            {
                Trigger = TriggerKind.Cli,
                MinInstances = 0,
                MaxInstances = 10000,
                RequestTimeout = TimeSpan.FromMilliseconds(1500),
                Route = "/edge/v1",
                Host = "edge.example.com",
                Resources = new ResourcesSection { MemoryLimitBytes = 65537 * 1024L, CpuWeight = 1 },
                Scaling = new ScalingSection
                {
                    Metric = ScalingMetric.Cpu,
                    TargetValue = 0.1 + 0.2,
                    ScaleUpWindow = TimeSpan.FromTicks(12_345),
                    ScaleDownWindow = TimeSpan.FromHours(25),
                },
            },
            Capabilities = new CapabilitiesSection
            {
                HttpOutbound = ["*"],
                Logging = false,
                KeyValue = ["a", "b"],
                Environment = new Dictionary<string, string> { ["Z"] = "last", ["_A"] = "first \"quoted\"" },
                Config = new Dictionary<string, string> { ["with space"] = "v", ["dotted.key"] = "", ["plain"] = "x" },
            },
            Health = new HealthSection { Endpoint = "/ready", Interval = TimeSpan.FromMinutes(1), Timeout = TimeSpan.FromMinutes(1), UnhealthyThreshold = 1, HealthyThreshold = 99 },
        };

        var toml = ManifestWriter.ToToml(original);
        var result = ManifestParser.Parse(toml);

        Assert.True(result.Success, string.Join("\n", result.Errors) + "\n" + toml);
        Assert.Equal(original, result.Manifest);
        Assert.Equal(0.1 + 0.2, result.Manifest!.Runtime.Scaling.TargetValue);
    }

    [Fact]
    public void Equality_DetectsDifferencesInCollections()
    {
        var a = WarpManifest.CreateDefault("app");
        var b = a with { Capabilities = a.Capabilities with { Environment = new Dictionary<string, string> { ["K"] = "v" } } };
        var c = a with { Capabilities = a.Capabilities with { Environment = new Dictionary<string, string> { ["K"] = "w" } } };
        var d = a with { Package = a.Package with { Authors = ["x"] } };

        Assert.NotEqual(a, b);
        Assert.NotEqual(b, c);
        Assert.NotEqual(a, d);
        Assert.Equal(b, a with { Capabilities = a.Capabilities with { Environment = new Dictionary<string, string> { ["K"] = "v" } } });
        Assert.Equal(a, a with { SourcePath = "elsewhere" });
    }

    [Fact]
    public void Collections_AreCopied_SoTheModelStaysImmutable()
    {
        var authors = new List<string> { "a" };
        var env = new Dictionary<string, string> { ["K"] = "v" };
        var package = new PackageSection { Name = "app", Authors = authors };
        var capabilities = new CapabilitiesSection { Environment = env };

        authors.Add("b");
        env["K"] = "changed";

        Assert.Equal(["a"], package.Authors);
        Assert.Equal("v", capabilities.Environment["K"]);
    }
}
