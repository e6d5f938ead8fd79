using WarpGrid.Core.Manifest;
using WarpGrid.Core.Scheduling;
using static WarpGrid.Core.Tests.Manifest.ManifestTestHelpers;

namespace WarpGrid.Core.Tests.Manifest;

public class PlacementManifestTests
{
    private const string Full = """
        [package]
        name = "web"
        labels = { app = "web", tier = "frontend" }

        [runtime]
        min_instances = 3

        [placement]
        node_selector = { zone = "z1", "disk.type" = "ssd" }
        priority = "high"
        min_available = 2
        strategy = "binpack"

        [[placement.tolerations]]
        key = "gpu"
        operator = "Equal"
        value = "true"
        effect = "NoSchedule"

        [[placement.tolerations]]
        key = "maintenance"
        operator = "Exists"

        [[placement.anti_affinity]]
        match_labels = { app = "web" }
        topology_key = "node"

        [[placement.affinity]]
        match_labels = { app = "cache" }
        topology_key = "zone"
        required = false
        weight = 40
        """;

    [Fact]
    public void Every_placement_field_parses_onto_the_scheduler_model()
    {
        var manifest = ManifestParser.ParseOrThrow(Full);
        var p = manifest.Placement;

        Assert.Equal(new Dictionary<string, string> { ["app"] = "web", ["tier"] = "frontend" }, manifest.Package.Labels);
        Assert.Equal(new Dictionary<string, string> { ["disk.type"] = "ssd", ["zone"] = "z1" }, p.NodeSelector);
        Assert.Equal(100, p.Priority);
        Assert.Equal("high", p.PriorityClass);
        Assert.Equal(2, p.MinAvailable);
        Assert.Equal(ScoringStrategy.BinPack, p.Strategy);
        Assert.Equal([new Toleration("gpu", "true", TaintEffect.NoSchedule), new Toleration("maintenance", "", null, TolerationOperator.Exists)], p.Tolerations);
        var anti = Assert.Single(p.AntiAffinity);
        Assert.True(anti.Required);
        Assert.Equal(TopologyKeys.Node, anti.TopologyKey);
        Assert.Equal("web", anti.MatchLabels["app"]);
        var affinity = Assert.Single(p.Affinity);
        Assert.False(affinity.Required);
        Assert.Equal(40, affinity.Weight);
        Assert.Equal(TopologyKeys.Zone, affinity.TopologyKey);

        // 1:1 onto the scheduler's request.
        var request = p.ToRequest("web", manifest.Package.Labels, 1 << 20, 10, 3);
        Assert.Equal(100, request.Priority);
        Assert.Equal(2, request.MinAvailable);
        Assert.Equal(ScoringStrategy.BinPack, request.Strategy);
        Assert.Equal(p.Tolerations, request.Tolerations);
        Assert.Equal("frontend", request.Labels["tier"]);
        Assert.Equal(3, request.Instances);

        Assert.Equal(
            "node_selector disk.type=ssd,zone=z1; tolerates gpu=true:NoSchedule,maintenance; affinity app=cache per zone (preferred, weight 40); "
            + "anti_affinity app=web per node (required); priority high (100); min_available 2; strategy binpack",
            p.Describe());
    }

    [Fact]
    public void Placement_round_trips_through_the_writer_and_inline_arrays_equal_headers()
    {
        var original = ManifestParser.ParseOrThrow(Full);
        var toml = ManifestWriter.ToToml(original);
        Assert.Equal(original, ManifestParser.ParseOrThrow(toml));
        Assert.Equal(toml, ManifestWriter.ToToml(ManifestParser.ParseOrThrow(toml)));

        var inline = ValidWithPackage("""
            [placement]
            priority = -5
            tolerations = [{ key = "gpu", value = "true", effect = "NoSchedule" }, { operator = "Exists" }]
            anti_affinity = []
            """);
        Assert.Equal(-5, inline.Placement.Priority);
        Assert.Null(inline.Placement.PriorityClass);
        Assert.Equal([new Toleration("gpu", "true", TaintEffect.NoSchedule), new Toleration("", "", null, TolerationOperator.Exists)], inline.Placement.Tolerations);
        Assert.True(inline.Placement.Tolerations[1].Tolerates(new Taint("anything", "x", TaintEffect.NoExecute)));
        Assert.Equal(inline, ManifestParser.ParseOrThrow(ManifestWriter.ToToml(inline)));

        // No [placement]: the default, not written (manifests stored before it existed are unchanged).
        var plain = ValidWithPackage(string.Empty);
        Assert.True(plain.Placement.IsDefault);
        Assert.Null(plain.Placement.Describe());
        Assert.DoesNotContain("placement", ManifestWriter.ToToml(plain), StringComparison.Ordinal);
        Assert.NotEqual(plain, plain with { Placement = new PlacementSection { MinAvailable = 1 } });
    }

    [Fact]
    public void Bad_placement_values_are_reported_with_the_field_and_what_is_allowed()
    {
        var errors = ErrorsWithPackage("""
            labels = { "bad key!" = "x" }
            [runtime]
            max_instances = 2
            [placement]
            node_selector = { zone = 3 }
            priority = "urgent"
            min_available = 5
            strategy = "binpak"
            affinty = []

            [[placement.tolerations]]
            key = "gpu"
            operator = "Exist"
            effect = "NoScheduel"

            [[placement.tolerations]]
            value = "true"

            [[placement.tolerations]]
            key = "disk"
            operator = "Exists"
            value = "ssd"

            [[placement.anti_affinity]]
            topology_key = "zone"

            [[placement.affinity]]
            match_labels = { app = "db" }
            topology_key = "has space"
            weight = 10
            """);

        AssertError(errors, "package.labels.\"bad key!\"", 3, "invalid label key 'bad key!'");
        AssertError(errors, "placement.node_selector.zone", 7, "expected string, got integer 3");
        AssertError(errors, "placement.priority", 8, "allowed values: low, normal, high, critical");
        AssertError(errors, "placement.min_available", 9, "must be <= runtime.max_instances (2), got 5");
        AssertError(errors, "placement.strategy", 10, "did you mean 'binpack'?");
        AssertError(errors, "placement.affinty", 11, "did you mean 'affinity'?");
        AssertError(errors, "placement.tolerations[0].operator", 15, "did you mean 'Exists'?");
        AssertError(errors, "placement.tolerations[0].effect", 16, "did you mean 'NoSchedule'?");
        AssertError(errors, "placement.tolerations[1].key", 18, "required with operator = \"Equal\"");
        AssertError(errors, "placement.tolerations[2].value", 24, "must be empty with operator = \"Exists\"");
        AssertError(errors, "placement.anti_affinity[0].match_labels", 26, "missing required key 'match_labels'");
        AssertError(errors, "placement.affinity[0].topology_key", 31, "invalid topology key 'has space'");
        AssertError(errors, "placement.affinity[0].weight", 32, "only allowed with required = false");
    }

    [Fact]
    public void Out_of_range_and_mistyped_placement_values_are_refused()
    {
        var errors = ErrorsWithPackage("""
            [placement]
            priority = 2000000000
            tolerations = "gpu"
            strategy = 1

            [[placement.affinity]]
            match_labels = {}
            required = false
            weight = 101
            """);

        AssertError(errors, "placement.priority", 4, "must be <= 1000000000");
        AssertError(errors, "placement.tolerations", 5, "expected array of tables");
        AssertError(errors, "placement.strategy", 6, "expected string");
        AssertError(errors, "placement.affinity[0].match_labels", 9, "must select at least one label");
        AssertError(errors, "placement.affinity[0].weight", 11, "must be <= 100");
    }
}
