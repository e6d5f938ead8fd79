using System.Net;
using System.Net.Http.Headers;
using WarpGrid.Cli.Tests.Infrastructure;

namespace WarpGrid.Cli.Tests;

public sealed class LogsTests(Warpd warpd) : IClassFixture<Warpd>
{
    [Fact]
    public async Task Logs_prints_the_newest_guest_records_with_their_instance_and_names_a_missing_deployment()
    {
        using var api = warpd.CreateAdminApi();
        using var form = new MultipartFormDataContent { { new StringContent("[package]\nname = \"logs-tb\"\n\n[runtime]\nroute = \"/logs-tb\"\n"), "manifest" } };
        var module = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(Repo.Root, "tests", "guests", "testbed.wasm")));
        module.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
        form.Add(module, "module", "testbed.wasm");
        using (var put = await api.PutAsync("/v1/deployments/logs-tb", form))
        {
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync() + warpd.Tail);
        }

        using (var logged = await warpd.Ingress.GetAsync("/logs-tb/log"))
        {
            Assert.Equal(HttpStatusCode.OK, logged.StatusCode);
        }

        var run = await Warp.RunAsync("logs", "logs-tb", "--tail", "2", "--node", warpd.ApiUrl);
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z logs-tb-\d{4} second log line$", lines[0]);
        Assert.EndsWith(" third log line", lines[1], StringComparison.Ordinal);

        var json = await Warp.RunAsync("logs", "logs-tb", "--tail", "1", "--json", "--node", warpd.ApiUrl);
        Assert.Equal(0, json.ExitCode);
        Assert.Contains("\"message\":\"third log line\"", json.Stdout, StringComparison.Ordinal);

        var missing = await Warp.RunAsync("logs", "no-such-app", "--node", warpd.ApiUrl);
        Assert.Equal(5, missing.ExitCode);
        Assert.Contains("no deployment named 'no-such-app'", missing.Stderr, StringComparison.Ordinal);
    }
}
