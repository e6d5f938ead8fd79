using WarpGrid.Core.Deployments;
using WarpGrid.Core.Manifest;

namespace WarpGrid.Core.Tests.Deployments;

public sealed class DeploymentRegistryTests
{
    private static ActiveDeployment Active(string name, long revision) => new(
        new DeploymentRecord { Name = name, Version = "0.1.0", Manifest = string.Empty, Digest = "sha256:" + new string('a', 64), Revision = revision },
        WarpManifest.CreateDefault(name),
        Pool: null,
        DeploymentState.Running,
        null,
        revision);

    [Fact]
    public async Task Waiting_for_a_delete_that_already_happened_returns_at_once()
    {
        var registry = new DeploymentRegistry();
        registry.Set(Active("hello", 3));
        registry.Remove("hello", 4);
        var result = await registry.WaitForRevisionAsync("hello", 4, TimeSpan.FromSeconds(30));
        Assert.Null(result);
    }

    [Fact]
    public async Task Waiting_for_a_future_revision_completes_when_it_is_applied()
    {
        var registry = new DeploymentRegistry();
        registry.Set(Active("hello", 1));
        var wait = registry.WaitForRevisionAsync("hello", 2, TimeSpan.FromSeconds(30));
        Assert.False(wait.IsCompleted);
        registry.Set(Active("hello", 2));
        Assert.Equal(2, (await wait)!.Record.Revision);
    }

    [Fact]
    public async Task Waiting_for_a_pending_delete_completes_when_it_is_removed()
    {
        var registry = new DeploymentRegistry();
        registry.Set(Active("hello", 1));
        var wait = registry.WaitForRevisionAsync("hello", 2, TimeSpan.FromSeconds(30));
        registry.Remove("hello", 2);
        Assert.Null(await wait);
        Assert.Null(registry.Get("hello"));
    }

    [Fact]
    public async Task Recreating_after_delete_waits_for_the_new_revision()
    {
        var registry = new DeploymentRegistry();
        registry.Remove("hello", 5);
        var wait = registry.WaitForRevisionAsync("hello", 6, TimeSpan.FromSeconds(30));
        Assert.False(wait.IsCompleted);
        registry.Set(Active("hello", 6));
        Assert.NotNull(await wait);
    }
}
