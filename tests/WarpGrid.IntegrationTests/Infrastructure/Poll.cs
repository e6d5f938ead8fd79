using System.Diagnostics;
using Xunit.Sdk;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>Waits for a condition by polling it until a deadline: no fixed sleeps standing in for state.</summary>
internal static class Poll
{
    /// <summary>Generous default deadline for state changes, sized for a loaded 2-core machine.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);

    /// <summary>Polls <paramref name="condition"/> until it returns true; fails the test naming <paramref name="what"/> at the deadline.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, Func<string>? diagnostics = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await condition().ConfigureAwait(false))
            {
                return;
            }

            if (clock.Elapsed >= limit)
            {
                throw new XunitException($"timed out after {limit.TotalSeconds:0.#} s waiting for {what}" + (diagnostics is null ? string.Empty : Environment.NewLine + diagnostics()));
            }

            await Task.Delay(Interval).ConfigureAwait(false);
        }
    }

    /// <summary>Synchronous-condition overload.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null, Func<string>? diagnostics = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout, diagnostics);
}
