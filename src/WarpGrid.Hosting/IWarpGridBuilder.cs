using Microsoft.Extensions.DependencyInjection;

namespace WarpGrid.Hosting;

/// <summary>Configures a WarpGrid node's services; returned by <c>AddWarpGridNode()</c>. Features are extension methods.</summary>
public interface IWarpGridBuilder
{
    /// <summary>The service collection the node is registered in.</summary>
    IServiceCollection Services { get; }
}

internal sealed class WarpGridBuilder(IServiceCollection services) : IWarpGridBuilder
{
    public IServiceCollection Services { get; } = services;
}

/// <summary>Marks that the node's services are registered, so a second <c>AddWarpGridNode()</c> adds nothing.</summary>
internal sealed class WarpGridMarker;
