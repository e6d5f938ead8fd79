using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Runtime;
using WarpGrid.Hosting;

namespace WarpGrid.Hosting.Tests;

public sealed class AddWarpGridNodeTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "wg-hosting-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data))
        {
            Directory.Delete(_data, recursive: true);
        }
    }

    [Fact]
    public void Calling_it_twice_registers_nothing_twice()
    {
        var once = new ServiceCollection();
        once.AddWarpGridNode();
        var twice = new ServiceCollection();
        var first = twice.AddWarpGridNode(o => o.DataDirectory = "a");
        var second = twice.AddWarpGridNode(o => o.DataDirectory = "b");

        Assert.Same(twice, first.Services);
        Assert.Same(twice, second.Services);
        // Only the second configure delegate is extra; every service is registered once.
        var onceTypes = once.Where(d => d.ServiceType != typeof(IConfigureOptions<WarpGridNodeOptions>)).Select(d => d.ServiceType).ToList();
        var twiceTypes = twice.Where(d => d.ServiceType != typeof(IConfigureOptions<WarpGridNodeOptions>)).Select(d => d.ServiceType).ToList();
        Assert.Equal(onceTypes.Count, twiceTypes.Count);
        Assert.Equal(once.Count(d => d.ServiceType == typeof(IHostedService)), twice.Count(d => d.ServiceType == typeof(IHostedService)));
        Assert.Single(twice, d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Name == "WarpGridNodeService");
        Assert.Single(twice, d => d.ServiceType == typeof(WasmNodeRuntime));
    }

    [Fact]
    public async Task Invalid_settings_fail_at_start_naming_the_setting()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Configuration["WarpGrid:Runtime:MaxInstancesPerNode"] = "50000";
        builder.Services.AddWarpGridNode(o => o.DataDirectory = _data);
        await using var app = builder.Build();
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("WarpGrid:Runtime:MaxInstancesPerNode", ex.Message);
        Assert.Contains("50000", ex.Message);
    }

    [Fact]
    public async Task Empty_data_directory_is_refused_naming_the_setting()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddWarpGridNode(o => o.DataDirectory = " ");
        await using var app = builder.Build();
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("WarpGrid:Node:DataDirectory", ex.Message);
    }

    [Fact]
    public async Task Embedded_node_shares_the_port_with_the_host_application()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddWarpGridNode(o => o.DataDirectory = _data);
        await using var app = builder.Build();
        app.UseWarpGridIngress();
        app.MapWarpGridApi("/warpgrid/v1");
        app.MapGet("/mine", () => "my own endpoint");
        await app.StartAsync();
        var client = await TestAdmin.AuthorizeAsync(app.GetTestClient(), _data);

        var root = FindRoot();
        using var form = new MultipartFormDataContent
        {
            { new StringContent(await File.ReadAllTextAsync(Path.Combine(root, "samples", "hello", "warp.toml"))), "manifest" },
        };
        var module = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(root, "samples", "hello", "hello.wasm")));
        module.Headers.ContentType = new MediaTypeHeaderValue("application/wasm");
        form.Add(module, "module", "hello.wasm");
        using var put = await client.PutAsync("/warpgrid/v1/deployments/hello", form);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);

        Assert.Equal("Hello from WarpGrid!\n", await client.GetStringAsync("/hello"));
        Assert.Equal("my own endpoint", await client.GetStringAsync("/mine"));
        using var missing = await client.GetAsync("/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await app.StopAsync();
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
        {
            dir = dir.Parent;
        }

        return dir!.FullName;
    }
}
