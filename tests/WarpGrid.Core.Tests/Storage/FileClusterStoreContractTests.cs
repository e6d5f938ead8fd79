using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Tests.Storage;

/// <summary>The contract run against the embedded store.</summary>
public sealed class FileClusterStoreContractTests : ClusterStoreContractTests
{
    protected override async Task<IClusterStore> OpenAsync(string directory) => await FileClusterStore.OpenAsync(directory);
}
