using WarpGrid.Cli.Tests.Infrastructure;
using WarpGrid.Cli.Validation;

namespace WarpGrid.Cli.Tests;

public sealed class ComponentInspectorTests
{
    [Fact]
    public void Reads_the_exports_and_imports_of_the_committed_javascript_component()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Repo.Samples, "hello-js", "hello-js.wasm"));

        var info = ComponentInspector.Inspect(bytes);

        Assert.Contains(info.Exports, e => e.Name == "wasi:http/incoming-handler@0.2.10" && e.Sort == "instance");
        Assert.Contains(info.Imports, i => i.Name.StartsWith("wasi:io/streams@0.2.", StringComparison.Ordinal));
        Assert.NotEmpty(info.CoreModules);
    }

    [Fact]
    public void Rejects_a_truncated_component()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Repo.Samples, "hello-js", "hello-js.wasm"));
        Assert.Throws<FormatException>(() => ComponentInspector.Inspect(bytes.AsMemory(0, 4096)));
    }
}
