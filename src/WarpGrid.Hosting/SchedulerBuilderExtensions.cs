using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using WarpGrid.Core.Scheduling;

namespace WarpGrid.Hosting;

/// <summary>Registers the scheduler and its plugins on an <see cref="IWarpGridBuilder"/>.</summary>
public static class SchedulerBuilderExtensions
{
    /// <summary>
    /// Adds the default <see cref="PipelineScheduler"/> and the built-in plugins, with <see cref="SchedulerOptions"/> bound
    /// from <c>WarpGrid:Scheduler</c>. Idempotent; a scheduler registered with <see cref="UseScheduler{T}"/> is kept.
    /// </summary>
    public static IWarpGridBuilder AddWarpGridScheduler(this IWarpGridBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<SchedulerOptions>().BindConfiguration(SchedulerOptions.Section);
        services.TryAddSingleton<IScheduler, PipelineScheduler>();
        builder.AddSchedulerPlugin<NodeReadyFilter>();
        builder.AddSchedulerPlugin<NodeSelectorFilter>();
        builder.AddSchedulerPlugin<TaintTolerationPlugin>();
        builder.AddSchedulerPlugin<ResourceFitFilter>();
        builder.AddSchedulerPlugin<AffinityPlugin>();
        builder.AddSchedulerPlugin<ResourceAllocationScore>();
        builder.AddSchedulerPlugin<DeploymentSpreadScore>();
        return builder;
    }

    /// <summary>
    /// Adds a scheduler plugin: registered as <see cref="IFilterPlugin"/> and/or <see cref="IScorePlugin"/>, whichever
    /// <typeparamref name="T"/> implements. Calling it twice for the same type registers it once.
    /// </summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> implements neither plugin interface.</exception>
    public static IWarpGridBuilder AddSchedulerPlugin<T>(this IWarpGridBuilder builder)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        bool filter = typeof(IFilterPlugin).IsAssignableFrom(typeof(T));
        bool score = typeof(IScorePlugin).IsAssignableFrom(typeof(T));
        if (!filter && !score)
        {
            throw new ArgumentException($"{typeof(T).FullName} implements neither IFilterPlugin nor IScorePlugin.", nameof(T));
        }

        // One instance serves both roles of a plugin that filters and scores.
        builder.Services.TryAddSingleton<T>();
        if (filter)
        {
            RegisterRole.MakeGenericMethod(typeof(IFilterPlugin), typeof(T)).Invoke(null, [builder.Services]);
        }

        if (score)
        {
            RegisterRole.MakeGenericMethod(typeof(IScorePlugin), typeof(T)).Invoke(null, [builder.Services]);
        }

        return builder;
    }

    private static readonly System.Reflection.MethodInfo RegisterRole =
        typeof(SchedulerBuilderExtensions).GetMethod(nameof(AddRole), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;

    private static void AddRole<TService, TImplementation>(IServiceCollection services)
        where TService : class
        where TImplementation : class, TService
        => services.TryAddEnumerable(ServiceDescriptor.Singleton<TService, TImplementation>(sp => sp.GetRequiredService<TImplementation>()));

    /// <summary>Replaces the whole scheduler with <typeparamref name="T"/> (plugins stay registered for it to use or ignore).</summary>
    public static IWarpGridBuilder UseScheduler<T>(this IWarpGridBuilder builder)
        where T : class, IScheduler
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.RemoveAll<IScheduler>();
        builder.Services.AddSingleton<IScheduler, T>();
        return builder;
    }
}
