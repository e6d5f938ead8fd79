using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using WarpGrid.Core.Deployments;
using WarpGrid.Core.Health;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Security;
using WarpGrid.Hosting;
using WarpGrid.Hosting.Security;
using WarpGrid.Proxy;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the WarpGrid REST API and the ingress into an ASP.NET Core application.</summary>
public static partial class WarpGridApplicationExtensions
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>
    /// Maps the versioned REST API under <paramref name="prefix"/> (default <c>/v1</c>):
    /// <c>GET /health</c>, <c>GET /node</c>, <c>GET|POST /deployments</c>,
    /// <c>GET|PUT|DELETE /deployments/{name}</c>, <c>GET /deployments/{name}/instances</c>.
    /// </summary>
    public static RouteGroupBuilder MapWarpGridApi(this IEndpointRouteBuilder endpoints, string prefix = "/v1")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = endpoints.MapGroup(prefix);
        api.RequirePolicyOnEveryEndpoint();
        api.MapGet("/health", (HttpContext http, DeploymentRegistry registry, IOptions<WarpGridSecurityOptions> security, IOptions<WarpGridNodeOptions> node) =>
            Results.Json(
                new
                {
                    status = "ok",
                    deployments = registry.Active.Count,
                    // A caller on this machine learns where the bootstrap admin credential is (readable by its owner only).
                    credentialFile = LoopbackCaller.Is(http) ? Path.GetFullPath(security.Value.TokenFileFor(node.Value)) : null,
                },
                Json)).AllowAnonymous();
        api.MapGet("/node", (DeploymentRegistry registry, WasmNodeRuntime runtime) => Results.Json(
            new
            {
                version = typeof(WarpGridApplicationExtensions).Assembly.GetName().Version?.ToString(),
                deployments = registry.Active.Count,
                instances = new { live = runtime.Budget.Live, limit = runtime.Budget.Limit },
                compiledCache = runtime.Modules.Stats,
                engine = runtime.Engine.Fingerprint,
            },
            Json)).RequirePermission("get", "nodes", PermissionScope.Cluster);
        api.MapGet("/deployments", async (HttpContext http, DeploymentRegistry registry, DeploymentSupervisor supervisor, AccessControl access) =>
        {
            var visible = await access.AllowedNamespacesAsync(http.WarpIdentity()!, new Permission("list", "deployments"), http.RequestAborted).ConfigureAwait(false);
            string? only = http.Request.Query.TryGetValue("namespace", out var q) && q.Count > 0 ? q.ToString() : null;
            return Results.Json(
                registry.Active.Values
                    .Where(d => (visible is null || visible.Contains(d.Record.Namespace)) && (only is null || d.Record.Namespace == only))
                    .OrderBy(d => d.Name, StringComparer.Ordinal)
                    .Select(d => DeploymentView.From(d, supervisor)).ToList(),
                Json);
        }).RequirePermission("list", "deployments", PermissionScope.AnyNamespace);
        api.MapGet("/deployments/{name}", (string name, DeploymentRegistry registry, DeploymentSupervisor supervisor) =>
            registry.Get(name) is { } active ? Results.Json(DeploymentView.From(active, supervisor), Json) : NotFound(name))
            .RequirePermission("get", "deployments", PermissionScope.Deployment);
        api.MapGet("/deployments/{name}/instances", (string name, DeploymentRegistry registry) =>
            registry.Get(name) is { } active ? Results.Json(active.Pool?.Instances() ?? [], Json) : NotFound(name))
            .RequirePermission("get", "deployments", PermissionScope.Deployment);
        MapObservability(api);
        api.MapPost("/deployments/{name}/runs", (string name, HttpContext context, DeploymentRegistry registry, WasmNodeRuntime runtime) => RunAsync(name, context, registry, runtime))
            .RequirePermission("run", "deployments", PermissionScope.Deployment);
        api.MapPost("/deployments", (Func<HttpContext, Task<IResult>>)(context => ApplyAsync(context, null, createOnly: true))).AddEndpointFilter(WarpGridNodesApiExtensions.RefuseOnAgent)
            .RequirePermission("create", "deployments", PermissionScope.Namespace);
        api.MapPut("/deployments/{name}", (string name, HttpContext context) => ApplyAsync(context, name, createOnly: false)).AddEndpointFilter(WarpGridNodesApiExtensions.RefuseOnAgent)
            .RequirePermission("update", "deployments", PermissionScope.Deployment);
        api.MapDelete("/deployments/{name}", async (string name, DeploymentManager manager, DeploymentRegistry registry, IOptions<WarpGridNodeOptions> options, CancellationToken cancellationToken) =>
        {
            try
            {
                var revision = await manager.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
                await registry.WaitForRevisionAsync(name, revision, options.Value.ApplyTimeout, cancellationToken).ConfigureAwait(false);
                return Results.NoContent();
            }
            catch (DeploymentNotFoundException)
            {
                return NotFound(name);
            }
        }).AddEndpointFilter(WarpGridNodesApiExtensions.RefuseOnAgent).RequirePermission("delete", "deployments", PermissionScope.Deployment);
        api.MapWarpGridNodesApi();
        api.MapWarpGridAuthApi();
        return api;
    }

    /// <summary>
    /// Adds the ingress to the pipeline. Requests on <see cref="WarpGridNodeOptions.IngressPort"/> always go to it;
    /// without an ingress port, requests whose host and path match a deployment's route go to it and the rest
    /// continue down the pipeline.
    /// </summary>
    public static IApplicationBuilder UseWarpGridIngress(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var ingress = app.ApplicationServices.GetRequiredService<WagiIngress>();
        var port = app.ApplicationServices.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value.IngressPort;
        return app.Use((context, next) =>
        {
            if (port is { } ingressPort)
            {
                return context.Connection.LocalPort == ingressPort ? ingress.HandleAsync(context) : next(context);
            }

            var route = ingress.Match(context);
            return route is null ? next(context) : ingress.ServeAsync(context, route);
        });
    }

    /// <summary>
    /// <c>POST /deployments/{name}/runs</c>: runs a <c>cli</c> deployment (a <c>wasi:cli/run</c> component) once to
    /// completion. Query parameters <c>arg</c> (repeatable) are its arguments, the request body is its stdin; the
    /// answer is the run's exit code, stdout and stderr.
    /// </summary>
    private static async Task<IResult> RunAsync(string name, HttpContext context, DeploymentRegistry registry, WasmNodeRuntime runtime)
    {
        if (registry.Get(name) is not { } active)
        {
            return NotFound(name);
        }

        if (active.Command is not { } command)
        {
            return Problem(409, "not_a_command", "Not a command", $"deployment '{name}' is not a cli deployment (runtime.trigger = \"cli\" with a wasi:cli/run component); only those can be run");
        }

        var limit = runtime.Options.MaxRequestBodyBytes;
        using var stdin = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            if (stdin.Length + read > limit)
            {
                return Problem(413, "body_too_large", "Request body too large", $"stdin is larger than {limit} bytes (WarpGrid:Runtime:MaxRequestBodyBytes)");
            }

            stdin.Write(buffer, 0, read);
        }

        var arguments = context.Request.Query["arg"].Where(a => a is not null).Select(a => a!).ToList();
        var settings = DeploymentManager.ToPoolSettings(active.Manifest);
        var input = stdin.ToArray();
        ComponentRunResult result;
        try
        {
            result = await Task.Run(() => ComponentCommand.Run(runtime, command, settings, arguments, input), context.RequestAborted).ConfigureAwait(false);
        }
        catch (InstanceLimitException ex)
        {
            return Problem(503, "instance_limit", "Node instance limit reached", ex.Message);
        }
        catch (WasmValidationException ex)
        {
            return Problem(500, "run_failed", "The command could not start", ex.Message);
        }

        return Results.Json(
            new
            {
                deployment = name,
                status = result.Fault is null && result.ExitCode == 0 ? "succeeded" : "failed",
                exitCode = result.ExitCode,
                stdout = result.Stdout,
                stderr = result.Stderr,
                outputTruncated = result.OutputTruncated,
                durationMs = Math.Round(result.Duration.TotalMilliseconds, 3),
                error = result.Fault is { } fault ? new { code = fault.Code, message = fault.Message } : null,
            },
            Json);
    }

    private static IResult NotFound(string name) =>
        Problem(404, "not_found", "Deployment not found", $"no deployment named '{name}' on this node");

    internal static IResult Problem(int status, string code, string title, string detail, object? extra = null, IReadOnlyList<DeploymentError>? errors = null)
    {
        var body = WarpGridProblem.Create(status, code, title, detail);
        if (errors is not null)
        {
            body["errors"] = errors;
        }

        if (extra is not null)
        {
            body["deployment"] = extra;
        }

        return Results.Json(body, Json, WarpGridProblem.ContentType, status);
    }

    private static async Task<IResult> ApplyAsync(HttpContext context, string? name, bool createOnly)
    {
        var services = context.RequestServices;
        var manager = services.GetRequiredService<DeploymentManager>();
        var registry = services.GetRequiredService<DeploymentRegistry>();
        var options = services.GetRequiredService<IOptions<WarpGridNodeOptions>>().Value;
        var cancellationToken = context.RequestAborted;

        var (body, error) = await DeploymentRequestBody.ReadAsync(context.Request, manager.MaxModuleBytes, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        WarpManifest manifest;
        try
        {
            manifest = DeploymentManager.ParseManifest(body!.Manifest);
        }
        catch (DeploymentValidationException ex)
        {
            return Problem(400, "invalid_deployment", "Invalid deployment", ex.Errors.Count == 1 ? ex.Errors[0].ToString() : "the manifest has errors", errors: ex.Errors);
        }

        // The endpoint's policy checked the namespace of the request (or of the existing deployment); the manifest's must allow it too.
        var target = manifest.Package.Namespace;
        var verb = createOnly || await manager.GetAsync(manifest.Package.Name, cancellationToken).ConfigureAwait(false) is null ? "create" : "update";
        var access = services.GetRequiredService<AccessControl>();
        if (context.WarpIdentity() is { } identity && !await access.IsAllowedAsync(identity, new Permission(verb, "deployments"), target, cancellationToken).ConfigureAwait(false))
        {
            var reason = $"missing permission '{verb} deployments' in namespace '{target}' ([package] namespace of the manifest)";
            context.Items[WarpGridPermissionExtensions.ReasonItem] = reason;
            var forbidden = WarpGridProblem.Create(403, "forbidden", "Forbidden", $"{identity.Subject} is not allowed to do this: {reason}");
            forbidden["permission"] = $"{verb} deployments";
            return Results.Json(forbidden, Json, WarpGridProblem.ContentType, 403);
        }

        if (createOnly)
        {
            if (await manager.GetAsync(manifest.Package.Name, cancellationToken).ConfigureAwait(false) is not null)
            {
                return Problem(409, "exists", "Deployment exists", $"a deployment named '{manifest.Package.Name}' already exists; update it with PUT /v1/deployments/{manifest.Package.Name}");
            }
        }

        ApplyResult result;
        try
        {
            result = await manager.ApplyAsync(body!.Manifest, body.Module, body.Digest, body.Reference, name, cancellationToken).ConfigureAwait(false);
        }
        catch (DeploymentValidationException ex)
        {
            return Problem(400, "invalid_deployment", "Invalid deployment", ex.Errors.Count == 1 ? ex.Errors[0].ToString() : $"{ex.Errors.Count} problems; see errors", errors: ex.Errors);
        }
        catch (DeploymentConflictException ex)
        {
            return Problem(409, "conflict", "Conflict", ex.Message);
        }
        catch (DeploymentSourceUnavailableException ex)
        {
            return Problem(502, "registry_unavailable", "Registry unavailable", ex.Message);
        }
        catch (DeploymentAdmissionException ex)
        {
            return Problem(403, ex.Code, "Refused by admission", ex.Message);
        }

        ActiveDeployment? active;
        try
        {
            active = await registry.WaitForRevisionAsync(result.Record.Name, result.Record.Revision, options.ApplyTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return Problem(504, "apply_timeout", "Deployment not started in time", $"the deployment was stored (revision {result.Record.Revision}) but did not start within {options.ApplyTimeout.TotalSeconds:0} s; check GET /v1/deployments/{result.Record.Name}");
        }

        if (active is null)
        {
            return Problem(409, "conflict", "Deployment deleted", "the deployment was deleted while it was being applied");
        }

        var view = DeploymentView.From(active, services.GetService<DeploymentSupervisor>());
        if (active.State == DeploymentState.Failed && active.ServingRevision < result.Record.Revision)
        {
            return Problem(503, "start_failed", "Deployment stored but not started", active.Message ?? "the node could not start it", view);
        }

        var status = result.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK;
        return Results.Json(view, Json, statusCode: status);
    }
}

/// <summary>A deployment as the API shows it.</summary>
internal sealed record DeploymentView(
    string Name,
    string Version,
    long Generation,
    long Revision,
    string Digest,
    string? Reference,
    string? ManifestDigest,
    string Trigger,
    string Route,
    string? Host,
    int MinInstances,
    int MaxInstances,
    long MemoryLimitBytes,
    string RequestTimeout,
    DeploymentState Status,
    string? Message,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    PoolStats? Instances,
    DeploymentHealthStatus? Health,
    DeploymentScalingStatus? Scaling,
    string Manifest)
{
    public static DeploymentView From(ActiveDeployment active, DeploymentSupervisor? supervisor = null)
    {
        var m = active.Manifest;
        return new DeploymentView(
            active.Name,
            active.Record.Version,
            active.Record.Generation,
            active.Record.Revision,
            active.Record.Digest,
            active.Record.Reference,
            active.Record.ManifestDigest,
            m.Runtime.Trigger.ToString().ToLowerInvariant(),
            m.Runtime.Route,
            m.Runtime.Host,
            m.Runtime.MinInstances,
            m.Runtime.MaxInstances,
            m.Runtime.Resources.MemoryLimitBytes,
            DurationParser.Format(m.Runtime.RequestTimeout),
            active.State,
            active.Message,
            active.Record.CreatedAt,
            active.Record.UpdatedAt,
            active.Pool?.Stats ?? active.Components?.Stats,
            supervisor?.GetHealth(active.Name),
            supervisor?.GetScaling(active.Name),
            active.Record.Manifest);
    }
}

/// <summary>The body of a create/update request.</summary>
internal sealed record DeploymentRequestBody(string Manifest, ReadOnlyMemory<byte>? Module, string? Digest, string? Reference = null)
{
    private const string Usage = "send multipart/form-data with a part 'manifest' (the warp.toml text) and a part 'module' (the .wasm file, or a .wat file), or a part 'digest' naming a module this node already stores, or a part 'reference' naming an OCI artifact (registry:5000/repo:tag); or application/json {\"manifest\": \"...\", \"module\": \"<base64>\" | \"digest\": \"sha256:...\"}";

    public static async Task<(DeploymentRequestBody? Body, IResult? Error)> ReadAsync(HttpRequest request, long maxModuleBytes, CancellationToken cancellationToken)
    {
        if (request.HasFormContentType)
        {
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(new Microsoft.AspNetCore.Http.Features.FormOptions { MultipartBodyLengthLimit = maxModuleBytes + (1 << 20) }, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or BadHttpRequestException)
            {
                return (null, Bad("body", "the multipart body could not be read: " + ex.Message));
            }

            string? manifest = form.Files.GetFile("manifest") is { } manifestFile
                ? await ReadTextAsync(manifestFile, cancellationToken).ConfigureAwait(false)
                : form.TryGetValue("manifest", out var manifestField) ? manifestField.ToString() : null;
            if (string.IsNullOrWhiteSpace(manifest))
            {
                return (null, Bad("manifest", "the 'manifest' part is missing or empty; " + Usage));
            }

            ReadOnlyMemory<byte>? module = null;
            if (form.Files.GetFile("module") is { } moduleFile)
            {
                using var stream = new MemoryStream();
                await moduleFile.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
                var bytes = stream.ToArray();
                if (moduleFile.FileName.EndsWith(".wat", StringComparison.OrdinalIgnoreCase))
                {
                    try
                    {
                        bytes = Wasmtime.Module.ConvertText(Encoding.UTF8.GetString(bytes));
                    }
                    catch (Wasmtime.WasmtimeException ex)
                    {
                        return (null, Bad("module", "the .wat text is invalid: " + ex.Message.Trim()));
                    }
                }

                module = bytes;
            }

            var digest = form.TryGetValue("digest", out var digestField) ? digestField.ToString() : null;
            var reference = form.TryGetValue("reference", out var referenceField) ? referenceField.ToString() : null;
            return (new DeploymentRequestBody(manifest, module, string.IsNullOrEmpty(digest) ? null : digest, string.IsNullOrEmpty(reference) ? null : reference), null);
        }

        if (request.HasJsonContentType())
        {
            JsonDocument document;
            try
            {
                document = await JsonDocument.ParseAsync(request.Body, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException ex)
            {
                return (null, Bad("body", $"the JSON body is malformed at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}: {ex.Message}"));
            }

            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                {
                    return (null, Bad("body", "the JSON body must be an object; " + Usage));
                }

                if (!root.TryGetProperty("manifest", out var manifest) || manifest.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(manifest.GetString()))
                {
                    return (null, Bad("manifest", "'manifest' must be a non-empty string holding the warp.toml text"));
                }

                ReadOnlyMemory<byte>? module = null;
                if (root.TryGetProperty("module", out var moduleElement))
                {
                    if (moduleElement.ValueKind != JsonValueKind.String || !moduleElement.TryGetBytesFromBase64(out var bytes))
                    {
                        return (null, Bad("module", "'module' must be a base64 string of the .wasm bytes"));
                    }

                    module = bytes;
                }

                string? digest = null;
                if (root.TryGetProperty("digest", out var digestElement))
                {
                    if (digestElement.ValueKind != JsonValueKind.String)
                    {
                        return (null, Bad("digest", "'digest' must be a string like sha256:<hex>"));
                    }

                    digest = digestElement.GetString();
                }

                string? reference = null;
                if (root.TryGetProperty("reference", out var referenceElement))
                {
                    if (referenceElement.ValueKind != JsonValueKind.String)
                    {
                        return (null, Bad("reference", "'reference' must be a string like registry:5000/repo:tag"));
                    }

                    reference = referenceElement.GetString();
                }

                return (new DeploymentRequestBody(manifest.GetString()!, module, digest, reference), null);
            }
        }

        return (null, WarpGridApplicationExtensions.Problem(415, "unsupported_media_type", "Unsupported media type", $"content type '{request.ContentType ?? "(none)"}' is not accepted; " + Usage));
    }

    private static async Task<string> ReadTextAsync(IFormFile file, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(file.OpenReadStream(), Encoding.UTF8);
        return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
    }

    private static IResult Bad(string field, string message) =>
        WarpGridApplicationExtensions.Problem(400, "invalid_request", "Invalid request", $"{field}: {message}", errors: [new DeploymentError(field, message)]);
}
