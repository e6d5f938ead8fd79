using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Clustering;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Health;
using WarpGrid.Core.Manifest;

namespace WarpGrid.Hosting;

/// <summary>
/// Runs the node: starts every stored deployment before the server takes traffic, deploys the
/// <see cref="WarpGridNodeOptions.DeployOnStart"/> directories, follows the store, and drains pools at shutdown.
/// On a control plane the scheduling controller follows the store instead (deployments run on agents); on an agent
/// nothing follows the local store (the agent service applies its allocations).
/// </summary>
internal sealed partial class WarpGridNodeService(
    DeploymentController controller,
    DeploymentManager manager,
    DeploymentRegistry registry,
    DeploymentSupervisor supervisor,
    IOptions<WarpGridNodeOptions> options,
    ILogger<WarpGridNodeService> logger,
    IServiceProvider services) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;
    private Task? _supervision;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var role = ClusterBuilderExtensions.RoleOf(services);
        if (role == ClusterRole.Agent)
        {
            if (options.Value.DeployOnStart.Count > 0)
            {
                throw new InvalidOperationException($"{WarpGridNodeOptions.Section}:DeployOnStart (--deploy) cannot be used on an agent: deploy through the control plane");
            }

            Log.Ready(logger, 0);
            return;
        }

        Task ready;
        if (role == ClusterRole.ControlPlane)
        {
            var controlPlane = services.GetRequiredService<ClusterControlPlane>();
            _loop = Task.Run(() => controlPlane.RunAsync(_stopping.Token), CancellationToken.None);
            ready = controlPlane.Ready;
        }
        else
        {
            _loop = Task.Run(() => controller.RunAsync(_stopping.Token), CancellationToken.None);
            ready = controller.Ready;
        }

        await Task.WhenAny(ready, _loop).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_loop.IsFaulted)
        {
            await _loop.ConfigureAwait(false);
        }

        foreach (var root in options.Value.DeployOnStart)
        {
            foreach (var dir in ManifestDirectories(root))
            {
                await DeployDirectoryAsync(dir, cancellationToken).ConfigureAwait(false);
            }
        }

        _supervision = Task.Run(() => supervisor.RunAsync(_stopping.Token), CancellationToken.None);
        Log.Ready(logger, registry.Active.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        if (_supervision is not null)
        {
            await _supervision.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        await controller.StopAllAsync(options.Value.DrainTimeout).WaitAsync(cancellationToken).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private static IEnumerable<string> ManifestDirectories(string root)
    {
        if (File.Exists(Path.Combine(root, "warp.toml")))
        {
            return [root];
        }

        return Directory.EnumerateDirectories(root).Where(d => File.Exists(Path.Combine(d, "warp.toml"))).Order(StringComparer.Ordinal);
    }

    private async Task DeployDirectoryAsync(string dir, CancellationToken cancellationToken)
    {
        var manifestPath = Path.Combine(dir, "warp.toml");
        try
        {
            var text = await File.ReadAllTextAsync(manifestPath, cancellationToken).ConfigureAwait(false);
            var manifest = DeploymentManager.ParseManifest(text, manifestPath);
            var modulePath = Path.Combine(dir, manifest.Build.Output);
            var bytes = await File.ReadAllBytesAsync(modulePath, cancellationToken).ConfigureAwait(false);
            var result = await manager.ApplyAsync(text, bytes, cancellationToken: cancellationToken).ConfigureAwait(false);
            var active = await registry.WaitForRevisionAsync(result.Record.Name, result.Record.Revision, options.Value.ApplyTimeout, cancellationToken).ConfigureAwait(false);
            Log.Deployed(logger, result.Record.Name, dir, active?.State.ToString() ?? "deleted");
        }
        catch (Exception ex) when (ex is DeploymentValidationException or DeploymentConflictException or IOException or TimeoutException or ManifestException)
        {
            Log.DeployFailed(logger, dir, ex.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "WarpGrid node ready with {Count} deployments")]
        public static partial void Ready(ILogger logger, int count);

        [LoggerMessage(EventId = 61, Level = LogLevel.Information, Message = "Deployed {Name} from {Directory}: {State}")]
        public static partial void Deployed(ILogger logger, string name, string directory, string state);

        [LoggerMessage(EventId = 62, Level = LogLevel.Error, Message = "Could not deploy {Directory}: {Reason}")]
        public static partial void DeployFailed(ILogger logger, string directory, string reason);
    }
}
