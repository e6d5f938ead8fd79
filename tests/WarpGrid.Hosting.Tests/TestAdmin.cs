using System.Diagnostics;
using System.Net.Http.Headers;

namespace WarpGrid.Hosting.Tests;

/// <summary>Acts as the node's bootstrap administrator: the token the node writes to its data directory at start.</summary>
internal static class TestAdmin
{
    public static async Task<HttpClient> AuthorizeAsync(HttpClient client, string dataDirectory)
    {
        var file = Path.Combine(dataDirectory, "admin-token");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(file) || new FileInfo(file).Length == 0)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"the node did not write {file} within 30 s");
            }

            await Task.Delay(20);
        }

        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", (await File.ReadAllTextAsync(file)).Trim());
        return client;
    }
}
