using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Sdk;

namespace WarpGrid.IntegrationTests.Infrastructure;

/// <summary>Calls to warpd's REST API and ingress, and the manifests the tests deploy.</summary>
internal static class WarpApi
{
    /// <summary>A manifest for <paramref name="name"/>; unset values keep the documented defaults.</summary>
    public static string Manifest(
        string name,
        string? route = null,
        int? minInstances = null,
        int? maxInstances = null,
        string? requestTimeout = null,
        string? memoryLimit = null,
        string? version = null,
        string? host = null,
        string? extra = null)
    {
        var toml = new StringBuilder();
        toml.Append("[package]\n").Append($"name = \"{name}\"\n");
        if (version is not null)
        {
            toml.Append($"version = \"{version}\"\n");
        }

        toml.Append("\n[runtime]\n");
        if (route is not null)
        {
            toml.Append($"route = \"{route}\"\n");
        }

        if (host is not null)
        {
            toml.Append($"host = \"{host}\"\n");
        }

        if (minInstances is not null)
        {
            toml.Append($"min_instances = {minInstances}\n");
        }

        if (maxInstances is not null)
        {
            toml.Append($"max_instances = {maxInstances}\n");
        }

        if (requestTimeout is not null)
        {
            toml.Append($"request_timeout = \"{requestTimeout}\"\n");
        }

        if (memoryLimit is not null)
        {
            toml.Append("\n[runtime.resources]\n").Append($"memory_limit = \"{memoryLimit}\"\n");
        }

        if (extra is not null)
        {
            toml.Append('\n').Append(extra).Append('\n');
        }

        return toml.ToString();
    }

    /// <summary>The multipart body the API takes: a <c>manifest</c> text field and a <c>module</c> file part.</summary>
    public static MultipartFormDataContent DeploymentForm(string? manifest, byte[]? module, string moduleFileName = "module.wasm")
    {
        var form = new MultipartFormDataContent();
        if (manifest is not null)
        {
            form.Add(new StringContent(manifest, Encoding.UTF8), "manifest");
        }

        if (module is not null)
        {
            var part = new ByteArrayContent(module);
            part.Headers.ContentType = new MediaTypeHeaderValue(moduleFileName.EndsWith(".wat", StringComparison.Ordinal) ? "text/plain" : "application/wasm");
            form.Add(part, "module", moduleFileName);
        }

        return form;
    }

    /// <summary><c>PUT /v1/deployments/{name}</c> (create or update).</summary>
    public static Task<HttpResponseMessage> PutDeploymentAsync(this WarpdProcess warpd, string name, string manifest, byte[] module, string moduleFileName = "module.wasm") =>
        warpd.Api.PutAsync($"v1/deployments/{name}", DeploymentForm(manifest, module, moduleFileName));

    /// <summary>Creates or updates a deployment and fails the test unless the API answered 200 or 201; returns the deployment JSON.</summary>
    public static async Task<JsonObject> DeployAsync(this WarpdProcess warpd, string name, string manifest, byte[] module, string moduleFileName = "module.wasm")
    {
        using var response = await warpd.PutDeploymentAsync(name, manifest, module, moduleFileName).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.OK))
        {
            throw new XunitException($"PUT /v1/deployments/{name} answered {(int)response.StatusCode}: {body}" + Environment.NewLine + warpd.Tail());
        }

        return JsonNode.Parse(body)!.AsObject();
    }

    /// <summary><c>GET /v1/deployments/{name}</c>: the deployment JSON, or null on 404.</summary>
    public static async Task<JsonObject?> GetDeploymentAsync(this WarpdProcess warpd, string name)
    {
        using var response = await warpd.Api.GetAsync($"v1/deployments/{name}").ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET /v1/deployments/{name} answered {(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!.AsObject();
    }

    /// <summary>Reads a response body as JSON.</summary>
    public static async Task<JsonNode> ReadJsonAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        try
        {
            return JsonNode.Parse(body) ?? throw new XunitException("the body is JSON null");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new XunitException($"expected a JSON body from {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} ({(int)response.StatusCode}), got: {body}", ex);
        }
    }

    /// <summary>Asserts an <c>application/problem+json</c> response with <paramref name="status"/>; returns the problem.</summary>
    public static async Task<JsonObject> AssertProblemAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        Assert.True(response.StatusCode == status, $"expected {(int)status} from {response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonNode.Parse(body)!.AsObject();
        Assert.Equal((int)status, (int)problem["status"]!);
        Assert.False(string.IsNullOrWhiteSpace((string?)problem["title"]), "a problem has a title: " + body);
        Assert.False(string.IsNullOrWhiteSpace((string?)problem["detail"]), "a problem has a detail: " + body);
        return problem;
    }

    /// <summary>The <c>errors</c> array of a problem as (field, message, line) tuples.</summary>
    public static List<(string Field, string Message, int? Line)> Errors(this JsonObject problem) =>
        problem["errors"]?.AsArray().Select(e => ((string)e!["field"]!, (string)e["message"]!, (int?)e["line"])).ToList() ?? [];

    /// <summary>Value of a response header (response or content headers), or null.</summary>
    public static string? Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values)
            : null;
}
