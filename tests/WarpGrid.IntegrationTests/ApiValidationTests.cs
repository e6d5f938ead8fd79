using System.Net;
using System.Text;
using WarpGrid.IntegrationTests.Infrastructure;

namespace WarpGrid.IntegrationTests;

/// <summary>Bad input to the REST API gets a problem+json that names the field or the cause, and changes nothing.</summary>
public sealed class ApiValidationTests(WarpdFixture fixture) : IClassFixture<WarpdFixture>
{
    private WarpdProcess Warpd => fixture.Warpd;

    [Fact]
    public async Task Manifest_with_several_mistakes_lists_every_error_with_field_and_line()
    {
        const string manifest = """
            [package]
            name = "broken"

            [runtime]
            min_instances = 3
            max_instances = 2
            request_timeout = "5 parsecs"
            colour = "blue"

            [runtime.resources]
            memory_limit = "12XB"
            """;
        using var response = await Warpd.PutDeploymentAsync("broken", manifest.ReplaceLineEndings("\n"), await File.ReadAllBytesAsync(TestPaths.Hello));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var errors = problem.Errors();
        Assert.True(errors.Count == 4, "expected 4 errors, got: " + problem.ToJsonString());

        AssertError(errors, "runtime.max_instances", line: 6, "min_instances");
        AssertError(errors, "runtime.request_timeout", line: 7, "parsecs");
        AssertError(errors, "runtime.colour", line: 8, "colour");
        AssertError(errors, "runtime.resources.memory_limit", line: 11, "XB");
        Assert.Null(await Warpd.GetDeploymentAsync("broken"));
    }

    [Fact]
    public async Task A_single_node_validates_placement_but_runs_the_deployment_whatever_its_constraints()
    {
        var module = await File.ReadAllBytesAsync(TestPaths.Hello);
        const string Placement = """
            [placement]
            node_selector = { zone = "nowhere" }
            priority = "critical"
            strategy = "binpack"

            [[placement.anti_affinity]]
            match_labels = { app = "placed" }
            """;
        using (var put = await Warpd.PutDeploymentAsync("placed", WarpApi.Manifest("placed", route: "/placed", minInstances: 2, extra: Placement.ReplaceLineEndings("\n")), module, "hello.wasm"))
        {
            var body = await put.ReadJsonAsync();
            Assert.True(put.StatusCode == HttpStatusCode.Created, body.ToJsonString());
            Assert.Equal("running", (string?)body["status"]);
        }

        using (var served = await Warpd.Ingress.GetAsync("placed"))
        {
            Assert.Equal("Hello from WarpGrid!\n", await served.Content.ReadAsStringAsync());
        }

        using (await Warpd.Api.DeleteAsync("v1/deployments/placed"))
        {
        }

        // A bad value is still refused, naming the field.
        using var bad = await Warpd.PutDeploymentAsync("misplaced", WarpApi.Manifest("misplaced", extra: "[placement]\nstrategy = \"spreed\""), module, "hello.wasm");
        var problem = await bad.AssertProblemAsync(HttpStatusCode.BadRequest);
        var error = Assert.Single(problem.Errors());
        Assert.Equal("placement.strategy", error.Field);
        Assert.Contains("did you mean 'spread'?", error.Message, StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("misplaced"));
    }

    [Fact]
    public async Task Missing_manifest_part_is_a_400_naming_manifest()
    {
        using var response = await Warpd.Api.PutAsync("v1/deployments/nomanifest", WarpApi.DeploymentForm(null, await File.ReadAllBytesAsync(TestPaths.Hello)));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("manifest", Assert.Single(problem.Errors()).Field);
    }

    [Fact]
    public async Task Missing_module_part_is_a_400_naming_module()
    {
        using var response = await Warpd.Api.PutAsync("v1/deployments/nomodule", WarpApi.DeploymentForm(WarpApi.Manifest("nomodule"), null));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("module", Assert.Single(problem.Errors()).Field);
        Assert.Null(await Warpd.GetDeploymentAsync("nomodule"));
    }

    [Fact]
    public async Task Wrong_content_type_is_a_415()
    {
        using var content = new StringContent(WarpApi.Manifest("plain"), Encoding.UTF8, "text/plain");
        using var response = await Warpd.Api.PutAsync("v1/deployments/plain", content);
        var problem = await response.AssertProblemAsync(HttpStatusCode.UnsupportedMediaType);
        Assert.Contains("text/plain", (string?)problem["detail"]);
    }

    [Fact]
    public async Task Malformed_json_is_a_400_naming_the_body()
    {
        using var content = new StringContent("{\"manifest\": \"[package]\\nname = \\\"x\\\"\", \"module\": ", Encoding.UTF8, "application/json");
        using var response = await Warpd.Api.PostAsync("v1/deployments", content);
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("body", Assert.Single(problem.Errors()).Field);
    }

    [Fact]
    public async Task Json_module_that_is_not_base64_is_a_400_naming_module()
    {
        using var content = new StringContent("{\"manifest\": \"[package]\\nname = \\\"b64\\\"\\n\", \"module\": \"%%% not base64 %%%\"}", Encoding.UTF8, "application/json");
        using var response = await Warpd.Api.PostAsync("v1/deployments", content);
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("module", Assert.Single(problem.Errors()).Field);
        Assert.Null(await Warpd.GetDeploymentAsync("b64"));
    }

    [Fact]
    public async Task Post_of_an_existing_name_is_a_409_and_leaves_it_unchanged()
    {
        var hello = await File.ReadAllBytesAsync(TestPaths.Hello);
        using (var created = await Warpd.Api.PostAsync("v1/deployments", WarpApi.DeploymentForm(WarpApi.Manifest("once"), hello)))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var testbed = await File.ReadAllBytesAsync(TestPaths.Testbed);
        using (var again = await Warpd.Api.PostAsync("v1/deployments", WarpApi.DeploymentForm(WarpApi.Manifest("once", version: "2.0.0"), testbed)))
        {
            var problem = await again.AssertProblemAsync(HttpStatusCode.Conflict);
            Assert.Contains("once", (string?)problem["detail"]);
        }

        var stored = await Warpd.GetDeploymentAsync("once");
        Assert.Equal(1, (long)stored!["generation"]!);
        Assert.Equal("0.1.0", (string?)stored["version"]);
    }

    [Fact]
    public async Task Route_used_by_another_deployment_is_a_409_and_stores_nothing()
    {
        var hello = await File.ReadAllBytesAsync(TestPaths.Hello);
        await Warpd.DeployAsync("alpha", WarpApi.Manifest("alpha", route: "/shared"), hello);

        using (var conflict = await Warpd.PutDeploymentAsync("beta", WarpApi.Manifest("beta", route: "/shared/"), await File.ReadAllBytesAsync(TestPaths.Testbed)))
        {
            var problem = await conflict.AssertProblemAsync(HttpStatusCode.Conflict);
            Assert.Contains("alpha", (string?)problem["detail"]);
        }

        Assert.Null(await Warpd.GetDeploymentAsync("beta"));
        using var served = await Warpd.Ingress.GetAsync("shared");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal("Hello from WarpGrid!\n", await served.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Manifest_name_different_from_the_url_is_a_400_naming_package_name()
    {
        using var response = await Warpd.PutDeploymentAsync("url-name", WarpApi.Manifest("other-name"), await File.ReadAllBytesAsync(TestPaths.Hello));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        Assert.Equal("package.name", Assert.Single(problem.Errors()).Field);
        Assert.Null(await Warpd.GetDeploymentAsync("url-name"));
        Assert.Null(await Warpd.GetDeploymentAsync("other-name"));
    }

    [Fact]
    public async Task Module_importing_what_the_node_does_not_provide_is_a_400_naming_the_import()
    {
        using var response = await Warpd.PutDeploymentAsync("bad-import", WarpApi.Manifest("bad-import"), await File.ReadAllBytesAsync(TestPaths.Guest("bad-import.wat")), "bad-import.wat");
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var error = Assert.Single(problem.Errors());
        Assert.Equal("module", error.Field);
        Assert.Contains("env.launch_missiles", error.Message, StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("bad-import"));
    }

    [Fact]
    public async Task Invalid_wat_text_is_a_400_naming_module()
    {
        using var response = await Warpd.PutDeploymentAsync("bad-wat", WarpApi.Manifest("bad-wat"), "(module (func $oops (result i32)"u8.ToArray(), "bad.wat");
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest);
        var error = Assert.Single(problem.Errors());
        Assert.Equal("module", error.Field);
        Assert.Contains(".wat", error.Message, StringComparison.Ordinal);
        Assert.Null(await Warpd.GetDeploymentAsync("bad-wat"));
    }

    private static void AssertError(List<(string Field, string Message, int? Line)> errors, string field, int line, string mentions)
    {
        var error = errors.SingleOrDefault(e => e.Field == field);
        Assert.True(error.Field is not null, $"no error for {field}; errors: {string.Join(" | ", errors)}");
        Assert.True(error.Line == line, $"{field}: expected line {line}, got {error.Line}");
        Assert.Contains(mentions, error.Message, StringComparison.Ordinal);
    }
}
