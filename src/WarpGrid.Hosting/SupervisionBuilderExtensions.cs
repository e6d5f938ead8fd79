using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Health;
using WarpGrid.Core.Scaling;
using WarpGrid.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Extends the autoscaler.</summary>
public static class SupervisionBuilderExtensions
{
    /// <summary>
    /// Adds a scaling metric: deployments with <c>runtime.scaling.metric = "custom"</c> and
    /// <c>custom_metric = "&lt;Name&gt;"</c> scale on it. Adding the same type twice registers it once.
    /// </summary>
    public static IWarpGridBuilder AddScalingMetricSource<T>(this IWarpGridBuilder builder)
        where T : class, IScalingMetricSource
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IScalingMetricSource, T>());
        return builder;
    }
}

/// <summary>Validates <see cref="SupervisorOptions"/> at start; messages name the setting.</summary>
internal sealed class SupervisorOptionsValidator : IValidateOptions<SupervisorOptions>
{
    public ValidateOptionsResult Validate(string? name, SupervisorOptions options)
    {
        var errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
