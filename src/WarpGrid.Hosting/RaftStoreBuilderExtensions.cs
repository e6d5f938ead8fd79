using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Storage;
using WarpGrid.Raft;

namespace WarpGrid.Hosting;

/// <summary>Replaces the embedded single-node store with the Raft-replicated one.</summary>
public static class RaftStoreBuilderExtensions
{
    /// <summary>
    /// Makes this node a control-plane member: <see cref="IClusterStore"/> becomes a <see cref="RaftClusterStore"/>
    /// with <see cref="RaftStoreOptions"/> bound from <c>WarpGrid:Raft</c> (then <paramref name="configure"/>) and
    /// validated at start. <see cref="RaftStoreOptions.DataDirectory"/> defaults to <c>{WarpGrid:Node:DataDirectory}/raft</c>.
    /// The member joins the cluster before the node's other services start and leaves it when the host stops.
    /// Calling it again only applies <paramref name="configure"/>.
    /// </summary>
    public static IWarpGridBuilder UseRaftStore(this IWarpGridBuilder builder, Action<RaftStoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(RaftStoreMarker)))
        {
            return builder;
        }

        services.AddSingleton<RaftStoreMarker>();
        services.AddOptions<RaftStoreOptions>().BindConfiguration(RaftStoreOptions.Section).ValidateOnStart();
        services.AddOptions<RaftStoreOptions>().PostConfigure<IOptions<WarpGridNodeOptions>>((raft, node) =>
        {
            if (string.IsNullOrWhiteSpace(raft.DataDirectory))
            {
                raft.DataDirectory = Path.Combine(node.Value.DataDirectory, "raft");
            }
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RaftStoreOptions>, RaftStoreOptionsValidator>());
        services.TryAddSingleton(sp => new RaftClusterStore(
            sp.GetRequiredService<IOptions<RaftStoreOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>()));
        services.Replace(ServiceDescriptor.Singleton<IClusterStore>(sp => sp.GetRequiredService<RaftClusterStore>()));

        // Start before every other hosted service: the node's controller reads the store as it starts.
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService, RaftStoreHostedService>());
        return builder;
    }
}

/// <summary>Marks that the Raft store is registered, so a second <c>UseRaftStore()</c> adds nothing.</summary>
internal sealed class RaftStoreMarker;

/// <summary>Validates <see cref="RaftStoreOptions"/> at start; messages name the setting.</summary>
internal sealed class RaftStoreOptionsValidator : IValidateOptions<RaftStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, RaftStoreOptions options)
    {
        IReadOnlyList<string> errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Joins the cluster at host start and leaves it at host stop.</summary>
internal sealed class RaftStoreHostedService(RaftClusterStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => store.StartAsync(cancellationToken);

    public async Task StopAsync(CancellationToken cancellationToken) => await store.DisposeAsync().ConfigureAwait(false);
}
