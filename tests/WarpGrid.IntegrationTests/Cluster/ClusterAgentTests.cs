using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using WarpGrid.Core.Clustering;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests.Cluster;

/// <summary>A control plane and two agents as real processes: join, heartbeats, placement, drain, taints, pending reasons, refusals.</summary>
public sealed class ClusterAgentTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    [Fact]
    public async Task Agents_join_with_a_token_and_appear_ready_with_capacity_and_labels()
    {
        var a = (await cluster.NodeAsync("agent-a"))!;
        var b = (await cluster.NodeAsync("agent-b"))!;
        Assert.Equal("ready", (string?)a["status"]);
        Assert.Equal("z1", (string?)a["labels"]!["zone"]);
        Assert.Equal("z2", (string?)b["labels"]!["zone"]);
        Assert.Equal(ClusterFixture.AgentMemory, (long)a["capacity"]!["memoryBytes"]!);
        Assert.True((int)a["capacity"]!["instanceSlots"]! > 0);
        Assert.Equal(cluster.Agents["agent-a"].Api.BaseAddress!.ToString().TrimEnd('/'), (string?)a["apiUrl"]);
        Assert.True(DateTimeOffset.Parse((string)a["certificateNotAfter"]!, System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow);

        // The CA key and the node keys are readable by their owner only.
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(cluster.ControlPlaneData, "cluster", "ca.key")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(cluster.Agents["agent-a"].DataDirectory, "agent", "node.key")));
        }

        // An agent's node certificate is signed by the cluster CA and names the node.
        using var ca = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(cluster.ControlPlaneData, "cluster", "ca.crt")));
        using var node = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(cluster.Agents["agent-b"].DataDirectory, "agent", "node.crt")));
        Assert.Equal("agent-b", node.GetNameInfo(X509NameType.SimpleName, false));
        Assert.Equal(ca.SubjectName.Name, node.IssuerName.Name);

        // An agent does not take deployment writes: they belong to the control plane.
        using var refused = await cluster.Agents["agent-a"].PutDeploymentAsync("x", WarpApi.Manifest("x"), await File.ReadAllBytesAsync(TestPaths.Hello), "hello.wasm");
        var problem = await refused.AssertProblemAsync(HttpStatusCode.Conflict);
        Assert.Contains("control plane", (string?)problem["detail"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deployment_runs_on_an_agent_serves_from_its_ingress_and_drain_moves_it_off()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        using (var put = await cluster.ControlPlane.PutDeploymentAsync("web", WarpApi.Manifest("web", route: "/web", memoryLimit: "16MB"), module, "hello.wasm"))
        {
            var body = await put.ReadJsonAsync();
            Assert.True(put.StatusCode == HttpStatusCode.Created, $"{(int)put.StatusCode}: {body}");
            Assert.Equal("running", (string?)body["status"]);
        }

        string first = await PlacedNodeAsync("web");
        var firstAgent = cluster.Agents[first];
        await Poll.UntilAsync(async () => await GetTextAsync(firstAgent, "web") == "Hello from WarpGrid!\n", $"web served by {first}'s ingress", diagnostics: cluster.Diagnostics);

        // Drain: the instance moves to the other agent, which starts it before the drained one stops.
        using (var drain = await cluster.PostAsync($"v1/nodes/{first}/drain"))
        {
            var node = await drain.ReadJsonAsync();
            Assert.Equal(HttpStatusCode.OK, drain.StatusCode);
            Assert.True((bool)node["draining"]!);
            Assert.True((bool)node["cordoned"]!);
        }

        string other = first == "agent-a" ? "agent-b" : "agent-a";
        await Poll.UntilAsync(async () =>
        {
            var p = await cluster.PlacementAsync("web");
            return p["nodes"] is JsonObject nodes && nodes.Count == 1 && nodes[other] is not null && (int)p["draining"]! == 0;
        }, $"web to move from {first} to {other}", diagnostics: cluster.Diagnostics);
        Assert.Equal("Hello from WarpGrid!\n", await GetTextAsync(cluster.Agents[other], "web"));
        await Poll.UntilAsync(async () => (await firstAgent.Api.GetAsync("v1/deployments/web")).StatusCode == HttpStatusCode.NotFound, $"web to stop on drained {first}", diagnostics: cluster.Diagnostics);
        Assert.Equal(0, (int)(await cluster.NodeAsync(first))!["allocated"]!["instances"]!);

        using (await cluster.PostAsync($"v1/nodes/{first}/uncordon"))
        {
        }

        Assert.False((bool)(await cluster.NodeAsync(first))!["draining"]!);
        using var deleted = await cluster.ControlPlane.Api.DeleteAsync("v1/deployments/web");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await Poll.UntilAsync(async () => (await cluster.Agents[other].Api.GetAsync("v1/deployments/web")).StatusCode == HttpStatusCode.NotFound, "web to stop after delete", diagnostics: cluster.Diagnostics);
    }

    [Fact]
    public async Task A_deployment_no_node_can_take_stays_pending_with_the_reasons()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);

        // Larger than either agent offers (512 MiB): pending, with the count of nodes per reason.
        using (var put = await cluster.ControlPlane.PutDeploymentAsync("big", WarpApi.Manifest("big", route: "/big", memoryLimit: "1GB"), module, "hello.wasm"))
        {
            var body = await put.ReadJsonAsync();
            Assert.True(put.IsSuccessStatusCode, body.ToJsonString());
            Assert.Equal("pending", (string?)body["status"]);
            Assert.Equal("1 of 1 instance(s) pending: 2 nodes: insufficient memory", (string?)body["message"]);
        }

        var placement = await cluster.PlacementAsync("big");
        Assert.Equal("2 nodes: insufficient memory", (string?)placement["pending"]);
        Assert.Equal(0, (int)placement["placed"]!);

        // --explain: every node's filter verdicts.
        using (var explain = await cluster.ControlPlane.Api.GetAsync("v1/deployments/big/placement?explain=true"))
        {
            var nodes = (JsonArray)(await explain.ReadJsonAsync())["explain"]!["nodes"]!;
            Assert.Equal(2, nodes.Count);
            Assert.All(nodes, n => Assert.Contains(n!["filters"]!.AsArray(), f => (string?)f!["plugin"] == "ResourceFit" && !(bool)f["passed"]! && (string?)f["reason"] == "insufficient memory"));
        }

        using (await cluster.ControlPlane.Api.DeleteAsync("v1/deployments/big"))
        {
        }

        // Taints set through the API: nothing tolerates them, so the deployment waits; removing one lets it run there.
        foreach (var node in new[] { "agent-a", "agent-b" })
        {
            using var taint = await cluster.PostAsync($"v1/nodes/{node}/taints", new { add = new[] { "gpu=true:NoSchedule" } });
            Assert.Equal(HttpStatusCode.OK, taint.StatusCode);
        }

        using (var put = await cluster.ControlPlane.PutDeploymentAsync("tainted", WarpApi.Manifest("tainted", route: "/tainted", memoryLimit: "16MB"), module, "hello.wasm"))
        {
            var body = await put.ReadJsonAsync();
            Assert.Equal("pending", (string?)body["status"]);
            Assert.Equal("1 of 1 instance(s) pending: 2 nodes: taint gpu=true not tolerated", (string?)body["message"]);
        }

        using (var untaint = await cluster.PostAsync("v1/nodes/agent-b/taints", new { remove = new[] { "gpu" } }))
        {
            Assert.Empty((await untaint.ReadJsonAsync())["taints"]!.AsArray());
        }

        Assert.Equal("agent-b", await PlacedNodeAsync("tainted"));
        await Poll.UntilAsync(async () => await GetTextAsync(cluster.Agents["agent-b"], "tainted") == "Hello from WarpGrid!\n", "tainted served by agent-b", diagnostics: cluster.Diagnostics);
        var status = await cluster.ControlPlane.GetDeploymentAsync("tainted");
        Assert.Equal("running", (string?)status!["status"]);

        using (await cluster.ControlPlane.Api.DeleteAsync("v1/deployments/tainted"))
        using (await cluster.PostAsync("v1/nodes/agent-a/taints", new { remove = new[] { "gpu" } }))
        {
        }

        // Bad input names the field.
        using var bad = await cluster.PostAsync("v1/nodes/agent-a/taints", new { add = new[] { "gpu=true:Sometimes" } });
        var problem = await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Contains("add[0]", (string?)problem["detail"], StringComparison.Ordinal);
        using var missing = await cluster.PostAsync("v1/nodes/nope/cordon");
        await missing.AssertProblemAsync(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Manifest_placement_selects_nodes_tolerates_taints_and_a_NoExecute_taint_moves_what_does_not_tolerate_it()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        var api = cluster.ControlPlane.Api.BaseAddress!.ToString();
        try
        {
            // agent-a (zone=z1) is tainted; a deployment selecting zone=z1 has nowhere to go until it tolerates the taint.
            using (var taint = await cluster.PostAsync("v1/nodes/agent-a/taints", new { add = new[] { "dedicated=ml:NoSchedule" } }))
            {
                Assert.Equal(HttpStatusCode.OK, taint.StatusCode);
            }

            const string Selector = "[placement]\nnode_selector = { zone = \"z1\" }\n";
            using (var put = await cluster.ControlPlane.PutDeploymentAsync("picky", WarpApi.Manifest("picky", route: "/picky", memoryLimit: "16MB", extra: Selector), module, "hello.wasm"))
            {
                var body = await put.ReadJsonAsync();
                Assert.True(put.IsSuccessStatusCode, body.ToJsonString());
                Assert.Equal("pending", (string?)body["status"]);
                Assert.Equal(
                    "1 of 1 instance(s) pending: 1 node: node selector zone=z1 not matched; 1 node: taint dedicated=ml not tolerated (placement: node_selector zone=z1)",
                    (string?)body["message"]);
            }

            Assert.Equal("node_selector zone=z1", (string?)(await cluster.PlacementAsync("picky"))["constraints"]);

            // The same deployment with a toleration: it runs on agent-a, and only there.
            var tolerant = Selector + "[[placement.tolerations]]\nkey = \"dedicated\"\nvalue = \"ml\"\neffect = \"NoSchedule\"\n";
            using (var put = await cluster.ControlPlane.PutDeploymentAsync("picky", WarpApi.Manifest("picky", route: "/picky", memoryLimit: "16MB", minInstances: 2, maxInstances: 4, extra: tolerant), module, "hello.wasm"))
            {
                Assert.True(put.IsSuccessStatusCode, (await put.ReadJsonAsync()).ToJsonString());
            }

            await Poll.UntilAsync(async () =>
            {
                var p = await cluster.PlacementAsync("picky");
                return (int)p["placed"]! == 2 && p["nodes"] is JsonObject nodes && nodes.Count == 1 && (int?)nodes["agent-a"] == 2;
            }, "both picky instances on agent-a", diagnostics: cluster.Diagnostics);
            await Poll.UntilAsync(async () => await GetTextAsync(cluster.Agents["agent-a"], "picky") == "Hello from WarpGrid!\n", "picky served by agent-a", diagnostics: cluster.Diagnostics);
            Assert.Equal(HttpStatusCode.NotFound, (await cluster.Agents["agent-b"].Api.GetAsync("v1/deployments/picky")).StatusCode);

            // NoExecute: "roam" (no constraints) and "sticky" (tolerates maint) both run on agent-b (agent-a is tainted).
            var sticky = "[placement]\nnode_selector = { zone = \"z2\" }\n[[placement.tolerations]]\nkey = \"maint\"\noperator = \"Exists\"\neffect = \"NoExecute\"\n";
            using (var put = await cluster.ControlPlane.PutDeploymentAsync("sticky", WarpApi.Manifest("sticky", route: "/sticky", memoryLimit: "16MB", extra: sticky), module, "hello.wasm"))
            using (var put2 = await cluster.ControlPlane.PutDeploymentAsync("roam", WarpApi.Manifest("roam", route: "/roam", memoryLimit: "16MB"), module, "hello.wasm"))
            {
                Assert.Equal("running", (string?)(await put.ReadJsonAsync())["status"]);
                Assert.Equal("running", (string?)(await put2.ReadJsonAsync())["status"]);
            }

            Assert.Equal("agent-b", await PlacedNodeAsync("roam"));
            Assert.Equal("agent-b", await PlacedNodeAsync("sticky"));
            await Poll.UntilAsync(async () => await GetTextAsync(cluster.Agents["agent-b"], "roam") == "Hello from WarpGrid!\n", "roam served by agent-b", diagnostics: cluster.Diagnostics);

            // Untaint agent-a, then taint agent-b NoExecute with the CLI: roam moves to agent-a (started there before it
            // stops on agent-b); sticky tolerates the taint and stays.
            using (await cluster.PostAsync("v1/nodes/agent-a/taints", new { remove = new[] { "dedicated" } }))
            {
            }

            var (code, output, error) = await WarpAsync("nodes", "taint", "agent-b", "maint=now:NoExecute", "--node", api);
            Assert.True(code == 0, error);
            Assert.Contains("maint=now:NoExecute", output, StringComparison.Ordinal);
            await Poll.UntilAsync(async () =>
            {
                var p = await cluster.PlacementAsync("roam");
                return p["nodes"] is JsonObject nodes && nodes.Count == 1 && nodes["agent-a"] is not null && (int)p["draining"]! == 0;
            }, "roam to move from agent-b to agent-a", diagnostics: cluster.Diagnostics);
            Assert.Equal("Hello from WarpGrid!\n", await GetTextAsync(cluster.Agents["agent-a"], "roam"));
            await Poll.UntilAsync(async () => (await cluster.Agents["agent-b"].Api.GetAsync("v1/deployments/roam")).StatusCode == HttpStatusCode.NotFound, "roam to stop on agent-b", diagnostics: cluster.Diagnostics);
            Assert.Equal("agent-b", await PlacedNodeAsync("sticky"));
            Assert.Equal("Hello from WarpGrid!\n", await GetTextAsync(cluster.Agents["agent-b"], "sticky"));

            // Cordon moves nothing, and says how to move what the node keeps.
            (code, output, error) = await WarpAsync("nodes", "cordon", "agent-b", "--node", api);
            Assert.True(code == 0, error);
            Assert.Contains("agent-b keeps its 1 instance(s); 'warp nodes drain agent-b' moves them elsewhere", output, StringComparison.Ordinal);
            Assert.Equal("agent-b", await PlacedNodeAsync("sticky"));
        }
        finally
        {
            using (await cluster.PostAsync("v1/nodes/agent-b/uncordon"))
            {
            }

            foreach (var name in new[] { "picky", "sticky", "roam" })
            {
                using (await cluster.ControlPlane.Api.DeleteAsync($"v1/deployments/{name}"))
                {
                }
            }

            using (await cluster.PostAsync("v1/nodes/agent-a/taints", new { remove = new[] { "dedicated" } }))
            using (await cluster.PostAsync("v1/nodes/agent-b/taints", new { remove = new[] { "maint" } }))
            {
            }
        }

        foreach (var agent in new[] { "agent-a", "agent-b" })
        {
            await Poll.UntilAsync(async () => (int)(await cluster.NodeAsync(agent))!["allocated"]!["instances"]! == 0, $"{agent} to run nothing after the deletes", diagnostics: cluster.Diagnostics);
        }
    }

    [Fact]
    public async Task Agents_with_a_bad_token_a_foreign_certificate_or_an_expired_certificate_are_refused()
    {
        // 1. The right CA hash but a wrong secret.
        var parts = cluster.Token.Split('.');
        var wrongSecret = string.Join('.', parts[0], parts[1], new string('x', 16), parts[3]);
        var badToken = await cluster.StartAgentAsync("bad-token", token: wrongSecret);
        await badToken.WaitForLineAsync(l => l.Contains("the control plane refused", StringComparison.Ordinal) && l.Contains("wrong secret", StringComparison.Ordinal), "the join refusal");
        await badToken.DisposeAsync();

        // 2. A token pinning another CA: the agent does not even send it.
        var otherHash = string.Join('.', parts[0], parts[1], parts[2], new string('0', 64));
        var wrongCa = await cluster.StartAgentAsync("wrong-ca", token: otherHash);
        await wrongCa.WaitForLineAsync(l => l.Contains("but the join token pins", StringComparison.Ordinal), "the CA pin mismatch");
        await wrongCa.DisposeAsync();

        using var realCa = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(cluster.ControlPlaneData, "cluster", "ca.crt")));

        // 3. A certificate signed by another CA (the agent trusts the real control plane, but presents a foreign cert).
        using (var rogue = new TempDirectory("warpgrid-rogue-ca"))
        {
            var (foreign, _) = ClusterCertificateAuthority.LoadOrCreate(rogue.Path, "rogue");
            using (foreign)
            {
                var dir = cluster.NewDirectory();
                WriteCredentials(dir, foreign, "foreign", TimeSpan.FromHours(1), realCa);
                var agent = await cluster.StartAgentAsync("foreign", token: string.Empty, dataDirectory: dir);
                await agent.WaitForLineAsync(l => l.Contains("not signed by this cluster's CA", StringComparison.Ordinal), "the foreign-certificate refusal");
                await agent.DisposeAsync();
            }
        }

        // 4. A certificate from the real CA that expired an hour ago.
        var (authority, created) = ClusterCertificateAuthority.LoadOrCreate(Path.Combine(cluster.ControlPlaneData, "cluster"), "warpgrid", new PastTime(TimeSpan.FromHours(2)));
        Assert.False(created);
        using (authority)
        {
            var dir = cluster.NewDirectory();
            WriteCredentials(dir, authority, "stale", TimeSpan.FromHours(1), realCa);
            var agent = await cluster.StartAgentAsync("stale", token: string.Empty, dataDirectory: dir);
            await agent.WaitForLineAsync(l => l.Contains("the control plane refused", StringComparison.Ordinal) && l.Contains("expired", StringComparison.Ordinal), "the expired-certificate refusal");
            await agent.DisposeAsync();
        }

        var names = (await cluster.NodesAsync()).Select(n => (string?)n!["name"]).ToList();
        Assert.DoesNotContain("bad-token", names);
        Assert.DoesNotContain("wrong-ca", names);
        Assert.DoesNotContain("foreign", names);
        Assert.DoesNotContain("stale", names);
    }

    [Fact]
    public async Task Warp_nodes_tokens_and_status_explain_work_against_the_control_plane()
    {
        var api = cluster.ControlPlane.Api.BaseAddress!.ToString();
        var (code, output, error) = await WarpAsync("nodes", "list", "--node", api);
        Assert.True(code == 0, error);
        Assert.Matches(@"agent-a\s+ready\s+schedulable\s+\d+/\d+\s+\d+Mi/512Mi\s+\d+/\d+\s+zone=z1", output);

        (code, output, error) = await WarpAsync("nodes", "label", "agent-b", "tier=edge", "--node", api);
        Assert.True(code == 0, error);
        Assert.Contains("tier=edge", output, StringComparison.Ordinal);
        Assert.Equal("edge", (string?)(await cluster.NodeAsync("agent-b"))!["labels"]!["tier"]);
        (code, _, error) = await WarpAsync("nodes", "label", "agent-b", "tier-", "--node", api);
        Assert.True(code == 0, error);
        Assert.Null((await cluster.NodeAsync("agent-b"))!["labels"]!["tier"]);

        (code, output, _) = await WarpAsync("nodes", "taint", "agent-b", "gpu=true:Sometimes", "--node", api);
        Assert.Equal(5, code);

        (code, output, error) = await WarpAsync("nodes", "cordon", "agent-b", "--node", api);
        Assert.True(code == 0, error);
        Assert.Contains("cordoned", output, StringComparison.Ordinal);
        (code, _, error) = await WarpAsync("nodes", "uncordon", "agent-b", "--node", api);
        Assert.True(code == 0, error);

        (code, output, error) = await WarpAsync("tokens", "create", "--ttl", "10m", "--node", api);
        Assert.True(code == 0, error);
        Assert.True(JoinToken.TryParse(output.Trim(), out var token, out _), output);
        Assert.Equal(cluster.Token.Split('.')[3], token!.CaHash);

        // A pending deployment: warp status shows why, --explain shows every node's verdict.
        using (await cluster.ControlPlane.PutDeploymentAsync("huge", WarpApi.Manifest("huge", route: "/huge", memoryLimit: "1GB"), await File.ReadAllBytesAsync(TestPaths.Hello), "hello.wasm"))
        {
        }

        (code, output, error) = await WarpAsync("status", "huge", "--explain", "--node", api);
        Assert.True(code == 0, error);
        Assert.Contains("huge: 1 of 1 instance(s) pending: 2 nodes: insufficient memory", output, StringComparison.Ordinal);
        Assert.Matches(@"agent-a\s+no\s+-\s+ResourceFit: insufficient memory", output);
        using (await cluster.ControlPlane.Api.DeleteAsync("v1/deployments/huge"))
        {
        }
    }

    private static async Task<(int Code, string Output, string Error)> WarpAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await WarpGrid.Cli.WarpCli.RunAsync(args, new WarpGrid.Cli.CliContext(output, error));
        return (code, output.ToString(), error.ToString());
    }

    private static void WriteCredentials(string dataDirectory, ClusterCertificateAuthority signer, string name, TimeSpan lifetime, X509Certificate2 trustedCa)
    {
        var dir = Path.Combine(dataDirectory, "agent");
        Directory.CreateDirectory(dir);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        using var cert = signer.SignNode(csr, name, lifetime);
        ClusterCertificateAuthority.WritePrivate(Path.Combine(dir, "node.key"), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(Path.Combine(dir, "node.crt"), cert.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "ca.crt"), trustedCa.ExportCertificatePem());
    }

    private async Task<string> PlacedNodeAsync(string deployment)
    {
        string? node = null;
        await Poll.UntilAsync(async () =>
        {
            var p = await cluster.PlacementAsync(deployment);
            node = p["nodes"] is JsonObject nodes && nodes.Count == 1 ? nodes.First().Key : null;
            return node is not null;
        }, $"{deployment} to be placed", diagnostics: cluster.Diagnostics);
        return node!;
    }

    private static async Task<string?> GetTextAsync(WarpdProcess agent, string path)
    {
        using var response = await agent.Ingress.GetAsync(path);
        return response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadAsStringAsync() : null;
    }

    /// <summary>A clock some time in the past, to issue a certificate that has already expired.</summary>
    private sealed class PastTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() - offset;
    }
}
