using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests.Cluster;

/// <summary>A cluster whose node certificates live 15 s, so agents renew them within the test.</summary>
public sealed class ShortCertificateClusterFixture : ClusterFixture
{
    internal override IEnumerable<string> ControlPlaneArguments => [.. base.ControlPlaneArguments, "--WarpGrid:Cluster:CertificateLifetime=00:00:15"];
}

/// <summary>Stopping an agent: it is marked lost after the heartbeat timeout and its instances run elsewhere; certificates rotate.</summary>
public sealed class NodeLostTests(ShortCertificateClusterFixture cluster) : IClassFixture<ShortCertificateClusterFixture>
{
    [Fact]
    public async Task A_killed_agent_is_marked_lost_and_its_instances_are_rescheduled_on_the_other()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        using (var put = await cluster.ControlPlane.PutDeploymentAsync("survivor", WarpApi.Manifest("survivor", route: "/survivor", memoryLimit: "16MB"), module, "hello.wasm"))
        {
            Assert.True(put.IsSuccessStatusCode, (await put.ReadJsonAsync()).ToJsonString());
        }

        string? victim = null;
        await Poll.UntilAsync(async () =>
        {
            var p = await cluster.PlacementAsync("survivor");
            victim = p["nodes"] is JsonObject nodes && nodes.Count == 1 ? nodes.First().Key : null;
            return victim is not null;
        }, "survivor to be placed", diagnostics: cluster.Diagnostics);
        var other = victim == "agent-a" ? "agent-b" : "agent-a";
        await Poll.UntilAsync(async () => (await cluster.Agents[victim!].Ingress.GetAsync("survivor")).StatusCode == HttpStatusCode.OK, "survivor served", diagnostics: cluster.Diagnostics);

        await cluster.Agents[victim!].KillAsync();
        await cluster.WaitForNodeAsync(victim!, "lost");
        await Poll.UntilAsync(async () =>
        {
            var p = await cluster.PlacementAsync("survivor");
            return p["nodes"] is JsonObject nodes && nodes.Count == 1 && nodes[other] is not null;
        }, $"survivor to be rescheduled on {other}", diagnostics: cluster.Diagnostics);
        await Poll.UntilAsync(async () => (await cluster.Agents[other].Ingress.GetAsync("survivor")).StatusCode == HttpStatusCode.OK, $"survivor served by {other}", diagnostics: cluster.Diagnostics);
        Assert.Equal("lost", (string?)(await cluster.NodeAsync(victim!))!["status"]);
        Assert.Equal("ready", (string?)(await cluster.NodeAsync(other))!["status"]);
    }

    [Fact]
    public async Task Agents_renew_their_certificates_before_they_expire_and_stay_ready()
    {
        // Whichever agent is still alive (the other test may have killed one).
        var (name, agent) = cluster.Agents.First(p => !p.Value.HasExited);
        var before = (string?)(await cluster.NodeAsync(name))!["certificateNotAfter"];
        await agent.WaitForLineAsync(l => l.Contains("renewed its certificate", StringComparison.Ordinal), "a certificate renewal", TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(async () =>
        {
            var node = (await cluster.NodeAsync(name))!;
            return (string?)node["status"] == "ready" && (string?)node["certificateNotAfter"] != before;
        }, $"{name} ready with its renewed certificate", TimeSpan.FromSeconds(60), cluster.Diagnostics);

        // Still ready well past the first certificate's expiry: every renewal was accepted.
        var expiry = DateTimeOffset.Parse(before!, System.Globalization.CultureInfo.InvariantCulture);
        await Poll.UntilAsync(() => DateTimeOffset.UtcNow > expiry.AddSeconds(3), "the first certificate to expire", TimeSpan.FromSeconds(60));
        await cluster.WaitForNodeAsync(name, "ready");
        Assert.DoesNotContain(agent.Lines, l => l.Contains("the control plane refused", StringComparison.Ordinal));
    }
}
