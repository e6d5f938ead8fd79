using System.Net;
using Microsoft.Extensions.Options;
using WarpGrid.Daemon;
using WarpGrid.Hosting;

// warpd: the WarpGrid reference daemon, a thin host over AddWarpGridNode().
if (!DaemonArguments.TryParse(args, out var options, out var error))
{
    Console.Error.WriteLine(error);
    Console.Error.WriteLine(DaemonArguments.Usage);
    return error is null ? 0 : 2;
}

ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 64), io); // guests run on request threads; keep the pool responsive

var builder = WebApplication.CreateSlimBuilder(options.RemainingArgs);
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "HH:mm:ss.fff ";
});
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.Logging.AddFilter("Grpc", LogLevel.Warning);
builder.Logging.AddFilter("DotNext", LogLevel.Error); // Raft transport retries log a warning per heartbeat while a member is down; the store logs leader and membership changes

// Plain HTTP beyond loopback sends credentials in clear text: refuse it before anything binds, unless accepted.
var apiTls = new WarpGridApiTlsOptions();
builder.Configuration.GetSection(WarpGridApiTlsOptions.Section).Bind(apiTls);
ApplyApiTlsFlags(apiTls);
if (ApiListenerSecurity.Decide(options.Api, apiTls.Enabled, options.InsecureApi) == ApiListenerDecision.Refuse)
{
    Console.Error.WriteLine(ApiListenerSecurity.RefusalMessage(options.Api));
    return 2;
}

var apiScheme = apiTls.Enabled ? "https" : "http";
builder.WebHost.UseKestrelHttpsConfiguration(); // the slim builder leaves TLS out; the cluster listener needs it
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 257L << 20;
    kestrel.ListenForApi(options.Api, kestrel.ApplicationServices.GetRequiredService<IOptions<WarpGridApiTlsOptions>>().Value);
    kestrel.Listen(options.Ingress);
    if (options.Cluster is { } cluster)
    {
        kestrel.ListenForAgents(cluster);
    }
});

var node = builder.Services.AddWarpGridNode(node =>
{
    if (options.DataDirectory is not null)
    {
        node.DataDirectory = options.DataDirectory;
    }

    node.IngressPort = options.Ingress.Port;
    foreach (var dir in options.Deploy)
    {
        node.DeployOnStart.Add(dir);
    }
});
node.AddApiTls(ApplyApiTlsFlags);

if (options.Cluster is { } agentListener)
{
    node.AddClusterControlPlane(cluster =>
    {
        if (options.ClusterSecretFile is not null)
        {
            cluster.SecretFile = options.ClusterSecretFile; // flags win over configuration
        }

        if (!agentListener.Address.Equals(IPAddress.Any) && !agentListener.Address.Equals(IPAddress.IPv6Any))
        {
            cluster.AdvertiseUrl ??= $"https://{agentListener}";
        }
    });
}
else if (options.Agent)
{
    node.AddNodeAgent(agent =>
    {
        agent.Join = options.Join;
        if (options.Token is not null)
        {
            agent.Token = options.Token; // flags win over configuration
        }

        if (options.NodeName is not null)
        {
            agent.NodeName = options.NodeName;
        }
        foreach (var label in options.Labels)
        {
            agent.Labels.Add(label);
        }

        foreach (var taint in options.Taints)
        {
            agent.Taints.Add(taint);
        }

        agent.ApiUrl ??= $"{apiScheme}://{options.Api}";
        agent.IngressUrl ??= $"http://{options.Ingress}";
    });
}

// A control-plane member replicates the store with Raft; otherwise the embedded single-node store (zero configuration).
if (options.RaftListen is not null || builder.Configuration["WarpGrid:Raft:Listen"] is { Length: > 0 })
{
    node.UseRaftStore(raft =>
    {
        if (options.RaftListen is not null)
        {
            raft.Listen = options.RaftListen;
            raft.Join = options.RaftJoin;
            if (options.RaftPeers.Count > 0)
            {
                raft.Peers = [.. options.RaftPeers];
            }
        }
    });
}

var app = builder.Build();
app.UseWarpGridIngress();
app.MapWarpGridApi().RequireHost($"*:{options.Api.Port}");
app.MapWarpGridClusterApi().RequireHost($"*:{options.Api.Port}");
app.MapWarpGridMetrics().RequireHost($"*:{options.Api.Port}");
app.MapWarpGridCluster(options.Cluster?.Port);
app.Logger.LogInformation("warpd API on {Scheme}://{Api}, ingress on http://{Ingress}", apiScheme, options.Api, options.Ingress);
if (options.Cluster is { } listener)
{
    app.Logger.LogInformation("warpd control plane: agents join on https://{Cluster}", listener);
}

try
{
    await app.RunAsync();
}
catch (OptionsValidationException ex)
{
    // A bad setting (named in the message) is the operator's to fix: say what, without a stack trace.
    foreach (var failure in ex.Failures)
    {
        Console.Error.WriteLine("warpd: " + failure);
    }

    return 2;
}

return 0;

void ApplyApiTlsFlags(WarpGridApiTlsOptions tls)
{
    // flags win over configuration
    if (options.ApiTlsCertificate is not null)
    {
        tls.CertificateFile = options.ApiTlsCertificate;
        tls.KeyFile = options.ApiTlsKey;
        tls.SelfIssued = false;
    }

    if (options.ApiTlsSelf)
    {
        tls.SelfIssued = true;
        tls.CertificateFile = null;
        tls.KeyFile = null;
    }
}
