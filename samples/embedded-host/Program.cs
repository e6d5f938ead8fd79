// A custom ASP.NET Core application that embeds a WarpGrid node next to its own endpoints, on one port.
//   dotnet run --project samples/embedded-host -- --urls http://127.0.0.1:5080
//   curl http://127.0.0.1:5080/hello            -> served by the Wasm guest samples/hello
//   curl http://127.0.0.1:5080/status           -> this application's own endpoint
//   curl http://127.0.0.1:5080/admin/v1/deployments
using WarpGrid.Core.Deployments;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddWarpGridNode(node =>
{
    node.DataDirectory = Path.Combine(Path.GetTempPath(), "warpgrid-embedded");
    node.DeployOnStart.Add(Path.Combine(FindRepoRoot(), "samples", "hello"));
});

var app = builder.Build();
app.UseWarpGridIngress();                 // requests whose route matches a deployment go to its instances
app.MapWarpGridApi("/admin/v1");          // the node's REST API, under a prefix of our choosing
app.MapGet("/status", (DeploymentRegistry registry) => new
{
    app = "embedded-host",
    deployments = registry.Active.Keys,
});
app.Run();

static string FindRepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "WarpGrid.sln")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? Directory.GetCurrentDirectory();
}
