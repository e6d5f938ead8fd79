namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>
/// One warpd shared by the tests of a class (xunit class fixture): started on a fresh data directory before the
/// first test, stopped and its directory deleted after the last. Tests that share it must not restart or kill it.
/// </summary>
public class WarpdFixture : IAsyncLifetime
{
    private TempDirectory? _data;
    private WarpdProcess? _warpd;

    internal WarpdProcess Warpd => _warpd ?? throw new InvalidOperationException("warpd is not running");

    public async Task InitializeAsync()
    {
        _data = new TempDirectory();
        _warpd = await WarpdProcess.StartAsync(_data.Path, extraArguments: ExtraArguments).ConfigureAwait(false);
        await SeedAsync(_warpd).ConfigureAwait(false);
    }

    /// <summary>Extra warpd command-line arguments (configuration overrides such as <c>--WarpGrid:Runtime:...</c>).</summary>
    internal virtual IEnumerable<string> ExtraArguments => [];

    /// <summary>Deploys what the class's tests rely on.</summary>
    internal virtual Task SeedAsync(WarpdProcess warpd) => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_warpd is not null)
        {
            try
            {
                await _warpd.StopAsync().ConfigureAwait(false);
            }
            finally
            {
                await _warpd.DisposeAsync().ConfigureAwait(false);
            }
        }

        _data?.Dispose();
    }
}
