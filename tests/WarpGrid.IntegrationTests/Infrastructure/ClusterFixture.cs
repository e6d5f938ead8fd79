using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>
/// A control-plane warpd (<c>--cluster</c>) and two agent warpd processes (<c>--agent --join … --token …</c>) on
/// loopback, with short heartbeat timeouts so that status changes happen in seconds. Agent A carries
/// <c>zone=z1</c>, agent B <c>zone=z2</c>; both offer 512 MiB.
/// </summary>
public class ClusterFixture : IAsyncLifetime
{
    internal const long AgentMemory = 512L << 20;

    private readonly List<TempDirectory> _dirs = [];
    private readonly List<WarpdProcess> _processes = [];

    internal WarpdProcess ControlPlane { get; private set; } = null!;

    internal int ClusterPort { get; private set; }

    internal string Token { get; private set; } = string.Empty;

    internal string ControlPlaneData { get; private set; } = string.Empty;

    internal Dictionary<string, WarpdProcess> Agents { get; } = new(StringComparer.Ordinal);

    internal virtual IEnumerable<string> ControlPlaneArguments =>
    [
        "--WarpGrid:Cluster:HeartbeatInterval=00:00:00.500",
        "--WarpGrid:Cluster:NodeNotReadyAfter=00:00:03",
        "--WarpGrid:Cluster:NodeLostAfter=00:00:06",
    ];

    public async Task InitializeAsync()
    {
        var data = NewDirectory();
        ControlPlaneData = data;
        for (int attempt = 0; ; attempt++)
        {
            ClusterPort = FreePort();
            try
            {
                ControlPlane = Track(await WarpdProcess.StartAsync(data, extraArguments: ["--cluster", $"127.0.0.1:{ClusterPort}", .. ControlPlaneArguments]).ConfigureAwait(false));
                break;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                // the cluster port was taken between choosing and binding it
            }
        }

        var tokenFile = Path.Combine(data, "cluster", "join-token");
        await Poll.UntilAsync(() => File.Exists(tokenFile), "the first join token file", diagnostics: () => ControlPlane.Tail()).ConfigureAwait(false);
        Token = (await File.ReadAllTextAsync(tokenFile).ConfigureAwait(false)).Trim();
        var a = StartAgentAsync("agent-a", ["--label", "zone=z1"]);
        var b = StartAgentAsync("agent-b", ["--label", "zone=z2"]);
        Agents["agent-a"] = await a.ConfigureAwait(false);
        Agents["agent-b"] = await b.ConfigureAwait(false);
        await WaitForNodeAsync("agent-a", "ready").ConfigureAwait(false);
        await WaitForNodeAsync("agent-b", "ready").ConfigureAwait(false);
    }

    /// <summary>Starts an agent warpd joining this control plane (with the fixture's token unless <paramref name="token"/> is given; "" for none).</summary>
    internal async Task<WarpdProcess> StartAgentAsync(string name, IEnumerable<string>? extra = null, string? token = null, string? dataDirectory = null)
    {
        var args = new List<string> { "--agent", "--join", $"https://127.0.0.1:{ClusterPort}", "--node-name", name, $"--WarpGrid:Agent:MemoryBytes={AgentMemory}" };
        token ??= Token;
        if (token.Length > 0)
        {
            args.Add("--token");
            args.Add(token);
        }

        args.AddRange(extra ?? []);
        return Track(await WarpdProcess.StartAsync(dataDirectory ?? NewDirectory(), extraArguments: args).ConfigureAwait(false));
    }

    internal string NewDirectory()
    {
        var dir = new TempDirectory("warpgrid-cluster");
        _dirs.Add(dir);
        return dir.Path;
    }

    private WarpdProcess Track(WarpdProcess process)
    {
        lock (_processes)
        {
            _processes.Add(process);
        }

        return process;
    }

    internal async Task<JsonArray> NodesAsync()
    {
        using var response = await ControlPlane.Api.GetAsync("v1/nodes").ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return (JsonArray)(await response.ReadJsonAsync().ConfigureAwait(false));
    }

    internal async Task<JsonObject?> NodeAsync(string name) =>
        (await NodesAsync().ConfigureAwait(false)).OfType<JsonObject>().FirstOrDefault(n => (string?)n["name"] == name);

    internal Task WaitForNodeAsync(string name, string status, TimeSpan? timeout = null) =>
        Poll.UntilAsync(async () => (string?)(await NodeAsync(name).ConfigureAwait(false))?["status"] == status, $"node {name} to be {status}", timeout ?? TimeSpan.FromSeconds(60), Diagnostics);

    internal async Task<JsonObject> PlacementAsync(string deployment)
    {
        using var response = await ControlPlane.Api.GetAsync($"v1/deployments/{deployment}/placement").ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return (JsonObject)await response.ReadJsonAsync().ConfigureAwait(false);
    }

    internal async Task<HttpResponseMessage> PostAsync(string path, object? body = null) =>
        body is null ? await ControlPlane.Api.PostAsync(path, null).ConfigureAwait(false) : await ControlPlane.Api.PostAsJsonAsync(path, body).ConfigureAwait(false);

    internal string Diagnostics()
    {
        var parts = new List<string> { "control plane:", ControlPlane.Tail(40) };
        foreach (var (name, agent) in Agents)
        {
            parts.Add(name + ":");
            parts.Add(agent.Tail(25));
        }

        return string.Join(Environment.NewLine, parts);
    }

    public async Task DisposeAsync()
    {
        List<WarpdProcess> all;
        lock (_processes)
        {
            all = [.. _processes];
        }

        await Task.WhenAll(all.Select(p => p.DisposeAsync().AsTask())).ConfigureAwait(false);
        foreach (var dir in _dirs)
        {
            dir.Dispose();
        }
    }

    private static int FreePort() => WarpGrid.Testing.LoopbackPorts.Next();
}
