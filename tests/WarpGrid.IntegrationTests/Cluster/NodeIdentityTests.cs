using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests.Cluster;

/// <summary>
/// Node identity on a real control plane with two agents: an impostor under a live node's name, a token past its usage
/// limit, a revoked token and a deleted node's certificate are all refused, each with an audit record; the join token
/// never reaches a log.
/// </summary>
public sealed class NodeIdentityTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task An_impostor_under_a_registered_nodes_name_is_refused_and_audited()
    {
        var before = await cluster.NodeAsync("agent-b");
        await using var impostor = await cluster.StartAgentAsync("agent-b");
        await impostor.WaitForLineAsync(l => l.Contains("belongs to a registered node", StringComparison.Ordinal), "the impostor's refused join");
        var after = await cluster.NodeAsync("agent-b");
        Assert.Equal((string?)before!["apiUrl"], (string?)after!["apiUrl"]);
        await WaitForAuditAsync(r => (string?)r["identity"] == "node:agent-b" && (string?)r["outcome"] == "forbidden" && ((string?)r["reason"] ?? string.Empty).Contains("registered node", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_token_with_a_usage_limit_a_revoked_token_and_a_deleted_nodes_certificate_are_refused()
    {
        using var created = await cluster.PostAsync("v1/tokens", new { ttl = "10m", uses = 1 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var once = (await created.ReadJsonAsync())["token"]!.GetValue<string>();

        await using var first = await cluster.StartAgentAsync("agent-once", token: once);
        await cluster.WaitForNodeAsync("agent-once", "ready");
        await using var second = await cluster.StartAgentAsync("agent-twice", token: once);
        await second.WaitForLineAsync(l => l.Contains("used as often as it allows", StringComparison.Ordinal), "the second join with a one-use token refused");

        using var revocable = await cluster.PostAsync("v1/tokens", new { ttl = "10m" });
        var revokedToken = (await revocable.ReadJsonAsync()).AsObject();
        using (var deleted = await cluster.ControlPlane.Api.DeleteAsync($"v1/tokens/{revokedToken["id"]!.GetValue<string>()}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        var listed = await cluster.ControlPlane.Api.GetStringAsync("v1/tokens");
        Assert.DoesNotContain(revokedToken["id"]!.GetValue<string>(), listed, StringComparison.Ordinal);
        await using var third = await cluster.StartAgentAsync("agent-revoked", token: revokedToken["token"]!.GetValue<string>());
        await third.WaitForLineAsync(l => l.Contains("unknown (deleted", StringComparison.Ordinal), "the join with a revoked token refused");

        // Deleting a node revokes its certificate: the agent's next call is refused, and its used-up token cannot bring it back.
        using (var removed = await cluster.ControlPlane.Api.DeleteAsync("v1/nodes/agent-once"))
        {
            Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        }

        await first.WaitForLineAsync(l => l.Contains("was revoked", StringComparison.Ordinal), "the deleted node's certificate refused");
        await first.WaitForLineAsync(l => l.Contains("used as often as it allows", StringComparison.Ordinal), "the deleted node's rejoin refused");
        Assert.Null(await cluster.NodeAsync("agent-once"));
        await WaitForAuditAsync(r => (string?)r["identity"] == "node:agent-once" && (string?)r["outcome"] == "unauthenticated" && ((string?)r["reason"] ?? string.Empty).Contains("revoked", StringComparison.Ordinal));
    }

    [Fact]
    public void The_join_token_secret_is_never_logged()
    {
        var secret = cluster.Token.Split('.')[2];
        Assert.DoesNotContain(cluster.ControlPlane.Lines, l => l.Contains(secret, StringComparison.Ordinal));
        foreach (var agent in cluster.Agents.Values)
        {
            Assert.DoesNotContain(agent.Lines, l => l.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Every_call_on_the_control_plane_and_the_agents_needs_a_credential()
    {
        foreach (var node in cluster.Agents.Values.Append(cluster.ControlPlane))
        {
            using var anonymous = WarpdProcess.CreateClient(new Uri($"http://127.0.0.1:{node.ApiPort}/"));
            foreach (var path in new[] { "v1/deployments", "v1/nodes", "v1/tokens", "v1/kv/x", "v1/cluster" })
            {
                using var response = await anonymous.GetAsync(path);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{path} on {node.ApiPort}: {(int)response.StatusCode}");
            }

            using var minted = await anonymous.PostAsJsonAsync("v1/tokens", new { ttl = "1h" });
            Assert.Equal(HttpStatusCode.Unauthorized, minted.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("v1/health")).StatusCode);
        }
    }

    private async Task WaitForAuditAsync(Func<JsonObject, bool> predicate) =>
        await Poll.UntilAsync(
            async () => (await cluster.ControlPlane.Api.GetFromJsonAsync<JsonArray>("v1/audit?limit=1000"))!.OfType<JsonObject>().Any(predicate),
            "the audit record",
            diagnostics: cluster.Diagnostics);
}
