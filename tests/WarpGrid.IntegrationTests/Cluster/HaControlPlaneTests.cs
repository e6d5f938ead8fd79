using System.Net;
using System.Text.Json.Nodes;
using WarpGrid.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace WarpGrid.IntegrationTests.Cluster;

/// <summary>
/// A highly available control plane on real processes: <c>warpd --cluster … --cluster-secret-file … --raft-listen …</c>
/// members (Raft store, member-to-member mTLS, CA derived from the secret) with agents that were given every member's
/// URL. The leader member is killed with SIGKILL; a new leader must take over the controllers without marking the
/// agents lost, and a deployment created afterwards must be placed and served through an agent.
/// </summary>
public sealed class HaControlPlaneTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Leader_member_killed_a_new_leader_takes_over_agents_stay_ready_and_new_deployments_are_served()
    {
        await using var plane = await HaPlane.StartAsync(3);
        var token = await plane.TokenAsync();
        var a = plane.StartAgentAsync("agent-a", token);
        var b = plane.StartAgentAsync("agent-b", token);
        await Task.WhenAll(a, b);
        await plane.WaitForNodesAsync(["agent-a", "agent-b"], "ready");

        int leader = await plane.WaitForLeaderAsync();
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        using (var put = await plane.Members[(leader + 1) % 3].Process!.PutDeploymentAsync("before", WarpApi.Manifest("before", route: "/before", memoryLimit: "16MB"), module, "hello.wasm"))
        {
            Assert.True(put.StatusCode == HttpStatusCode.Created, $"{(int)put.StatusCode}: {await put.Content.ReadAsStringAsync()}");
        }

        await plane.WaitServedAsync("before");

        await plane.KillAsync(leader);
        int next = await plane.WaitForLeaderAsync(except: leader);
        Assert.NotEqual(leader, next);
        var survivor = plane.Members[next].Process!;
        await Poll.UntilAsync(() => survivor.Output.Contains("This control-plane member leads", StringComparison.Ordinal), "the new leader to take over the controllers", Timeout, plane.Tails);

        // Both agents reach the new leader (they knew every member's URL) and keep heartbeating: never marked lost.
        var newLeaderUrl = plane.Members[next].ClusterUrl;
        foreach (var agent in plane.Agents.Values)
        {
            await Poll.UntilAsync(() => agent.Output.Contains($"connected to {newLeaderUrl} (mTLS)", StringComparison.Ordinal), "the agents to connect to the new leader", Timeout, plane.Tails);
        }

        // A deployment created after the failover, through a follower: placed by the new leader, served by an agent.
        int follower = Enumerable.Range(0, 3).First(i => i != leader && i != next);
        using (var put = await plane.Members[follower].Process!.PutDeploymentAsync("after", WarpApi.Manifest("after", route: "/after", memoryLimit: "16MB"), module, "hello.wasm"))
        {
            var body = await put.ReadJsonAsync();
            Assert.True(put.StatusCode == HttpStatusCode.Created, $"{(int)put.StatusCode}: {body}");
        }

        await plane.WaitServedAsync("after");
        await plane.WaitServedAsync("before"); // still running where it was

        // Past the not-ready timeout since the takeover: both nodes ready on every surviving member, never lost.
        await Poll.UntilAsync(
            () => survivor.Lines.Any(l => l.Contains("Allocated", StringComparison.Ordinal) && l.Contains("after", StringComparison.Ordinal)),
            "the new leader to allocate 'after'",
            Timeout,
            plane.Tails);
        foreach (var i in new[] { next, follower })
        {
            var nodes = await plane.NodesAsync(plane.Members[i].Process!);
            foreach (var name in new[] { "agent-a", "agent-b" })
            {
                Assert.Equal("ready", (string?)nodes.OfType<JsonObject>().Single(n => (string?)n["name"] == name)["status"]);
            }
        }

        Assert.DoesNotContain(survivor.Lines, l => l.Contains("-> Lost", StringComparison.Ordinal) || l.Contains("-> NotReady", StringComparison.Ordinal));
        output.WriteLine($"leader {plane.Members[leader].RaftAddress} killed; new leader {plane.Members[next].RaftAddress}");
    }

    [Fact]
    public async Task Five_member_control_plane_elects_a_leader_and_keeps_taking_writes_after_two_members_are_killed()
    {
        await using var plane = await HaPlane.StartAsync(5);
        int leader = await plane.WaitForLeaderAsync();
        await plane.PutAsync(plane.Members[(leader + 2) % 5].Process!, "before", "1");

        int follower = (leader + 1) % 5;
        await plane.KillAsync(leader);
        await plane.KillAsync(follower);
        int next = await plane.WaitForLeaderAsync(except: leader);
        var survivors = Enumerable.Range(0, 5).Where(i => plane.Members[i].Process is not null).ToArray();
        Assert.Equal(3, survivors.Length);
        for (int i = 0; i < 6; i++)
        {
            await plane.PutAsync(plane.Members[survivors[i % 3]].Process!, $"after/{i}", $"{i}");
        }

        foreach (int member in survivors)
        {
            using var response = await plane.Members[member].Process!.Api.GetAsync("v1/kv/ha/after/5");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("1", await (await plane.Members[member].Process!.Api.GetAsync("v1/kv/ha/before")).Content.ReadAsStringAsync());
        }

        output.WriteLine($"5 members; killed {plane.Members[leader].RaftAddress} (leader) and {plane.Members[follower].RaftAddress}; new leader {plane.Members[next].RaftAddress}");
    }

    private sealed class HaMember(string raftAddress, int clusterPort, string dataDirectory)
    {
        public string RaftAddress { get; } = raftAddress;

        public int ClusterPort { get; } = clusterPort;

        public string ClusterUrl => $"https://127.0.0.1:{ClusterPort}";

        public string DataDirectory { get; } = dataDirectory;

        public WarpdProcess? Process { get; set; }
    }

    private sealed class HaPlane : IAsyncDisposable
    {
        private readonly TempDirectory _root = new("warpgrid-ha");

        private HaPlane(int size)
        {
            SecretFile = Path.Combine(_root.Path, "cluster-secret");
            File.WriteAllText(SecretFile, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(SecretFile, UnixFileMode.UserRead | UnixFileMode.UserWrite); // warpd refuses a secret others can read
            }

            Members = [.. Enumerable.Range(0, size).Select(i => new HaMember($"127.0.0.1:{FreePort()}", FreePort(), Path.Combine(_root.Path, $"m{i}")))];
            foreach (var member in Members)
            {
                Directory.CreateDirectory(member.DataDirectory);
            }
        }

        public string SecretFile { get; }

        public HaMember[] Members { get; }

        public Dictionary<string, WarpdProcess> Agents { get; } = new(StringComparer.Ordinal);

        public static async Task<HaPlane> StartAsync(int size)
        {
            var plane = new HaPlane(size);
            try
            {
                // All at once: a member reports healthy only once a majority is up to elect a leader.
                await Task.WhenAll(Enumerable.Range(0, size).Select(plane.StartMemberAsync));
                return plane;
            }
            catch
            {
                await plane.DisposeAsync();
                throw;
            }
        }

        private async Task StartMemberAsync(int index)
        {
            var member = Members[index];
            member.Process = await WarpdProcess.StartAsync(member.DataDirectory, extraArguments:
            [
                "--cluster", $"127.0.0.1:{member.ClusterPort}",
                "--cluster-secret-file", SecretFile,
                "--raft-listen", member.RaftAddress,
                "--raft-peers", string.Join(',', Members.Select(m => m.RaftAddress)),
                "--WarpGrid:Cluster:HeartbeatInterval=00:00:00.500",
                "--WarpGrid:Cluster:NodeNotReadyAfter=00:00:05",
                "--WarpGrid:Cluster:NodeLostAfter=00:00:10",
            ]);
        }

        public async Task<string> TokenAsync()
        {
            var file = Path.Combine(Members[0].DataDirectory, "cluster", "join-token");
            await Poll.UntilAsync(() => File.Exists(file), "the first join token", Timeout, Tails);
            return (await File.ReadAllTextAsync(file)).Trim();
        }

        public async Task StartAgentAsync(string name, string token)
        {
            var dir = Path.Combine(_root.Path, name);
            Directory.CreateDirectory(dir);
            var agent = await WarpdProcess.StartAsync(dir, extraArguments:
            [
                "--agent", "--join", string.Join(',', Members.Select(m => m.ClusterUrl)), "--token", token, "--node-name", name,
                "--WarpGrid:Agent:MemoryBytes=536870912",
            ]);
            lock (Agents)
            {
                Agents[name] = agent;
            }
        }

        public async Task<JsonArray> NodesAsync(WarpdProcess member)
        {
            using var response = await member.Api.GetAsync("v1/nodes");
            response.EnsureSuccessStatusCode();
            return (JsonArray)await response.ReadJsonAsync();
        }

        public Task WaitForNodesAsync(string[] names, string status) => Poll.UntilAsync(
            async () =>
            {
                var live = Members.First(m => m.Process is not null).Process!;
                var nodes = await NodesAsync(live);
                return names.All(n => nodes.OfType<JsonObject>().Any(o => (string?)o["name"] == n && (string?)o["status"] == status));
            },
            $"nodes {string.Join(", ", names)} to be {status}",
            Timeout,
            Tails);

        /// <summary>Waits until some agent's ingress serves <c>/name</c> with the hello guest's answer.</summary>
        public Task WaitServedAsync(string name) => Poll.UntilAsync(
            async () =>
            {
                foreach (var agent in Agents.Values)
                {
                    using var response = await agent.Ingress.GetAsync("/" + name);
                    if (response.StatusCode == HttpStatusCode.OK && await response.Content.ReadAsStringAsync() == "Hello from WarpGrid!\n")
                    {
                        return true;
                    }
                }

                return false;
            },
            $"'{name}' to be served by an agent",
            Timeout,
            Tails);

        public async Task PutAsync(WarpdProcess member, string key, string value)
        {
            using var response = await member.Api.PutAsync($"v1/kv/ha/{key}", new StringContent(value));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"PUT {key}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        public async Task KillAsync(int index)
        {
            var process = Members[index].Process!;
            await process.KillAsync();
            await process.DisposeAsync();
            Members[index].Process = null;
        }

        /// <summary>Waits until every live member names the same leader (not <paramref name="except"/>) and returns its index.</summary>
        public async Task<int> WaitForLeaderAsync(int except = -1)
        {
            int leader = -1;
            await Poll.UntilAsync(
                async () =>
                {
                    var views = new List<JsonNode>();
                    foreach (var member in Members.Where(m => m.Process is not null))
                    {
                        try
                        {
                            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                            views.Add(JsonNode.Parse(await member.Process!.Api.GetStringAsync("v1/cluster", timeout.Token))!);
                        }
                        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                        {
                            return false;
                        }
                    }

                    if (views.Select(v => (string?)v["leader"]).Distinct().ToList() is not [string address])
                    {
                        return false;
                    }

                    leader = Array.FindIndex(Members, m => m.RaftAddress == address);
                    return leader >= 0 && leader != except && Members[leader].Process is not null;
                },
                "an agreed Raft leader",
                Timeout,
                Tails);
            return leader;
        }

        public string Tails()
        {
            var parts = Members.Where(m => m.Process is not null).Select(m => m.RaftAddress + Environment.NewLine + m.Process!.Tail(30)).ToList();
            parts.AddRange(Agents.Select(a => a.Key + Environment.NewLine + a.Value.Tail(20)));
            return string.Join(Environment.NewLine, parts);
        }

        private static int FreePort() => WarpGrid.Testing.LoopbackPorts.Next();

        public async ValueTask DisposeAsync()
        {
            await Task.WhenAll(Agents.Values.Select(a => a.DisposeAsync().AsTask()).Concat(Members.Where(m => m.Process is not null).Select(m => m.Process!.DisposeAsync().AsTask())));
            _root.Dispose();
        }
    }
}
