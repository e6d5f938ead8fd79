using Microsoft.Extensions.Options;
using WarpGrid.Core.Runtime;

namespace WarpGrid.Hosting;

/// <summary>Settings of a WarpGrid node (configuration section <c>WarpGrid:Node</c>).</summary>
public sealed class WarpGridNodeOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "WarpGrid:Node";

    /// <summary>Where the node keeps its state: the embedded store, module blobs and the compiled-code cache. Default <c>.warpgrid</c>.</summary>
    public string DataDirectory { get; set; } = ".warpgrid";

    /// <summary>
    /// The local port of the ingress listener. Requests arriving on it always go to the ingress (404 when no route
    /// matches). When null, the ingress serves only requests whose route matches and passes the rest on, so a host
    /// application can share one port with its own endpoints.
    /// </summary>
    public int? IngressPort { get; set; }

    /// <summary>Directories to deploy at start: each holds a <c>warp.toml</c>, or has subdirectories that do.</summary>
    public IList<string> DeployOnStart { get; } = [];

    /// <summary>How long in-flight requests may take to finish at shutdown or when a deployment is replaced. Default 10 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a create or update request waits for the node to start the new revision. Default 30 s.</summary>
    public TimeSpan ApplyTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Validates <see cref="WarpGridNodeOptions"/> at start; messages name the setting.</summary>
internal sealed class WarpGridNodeOptionsValidator : IValidateOptions<WarpGridNodeOptions>
{
    public ValidateOptionsResult Validate(string? name, WarpGridNodeOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
        {
            errors.Add($"{WarpGridNodeOptions.Section}:DataDirectory must be a directory path (got an empty value).");
        }
        else if (File.Exists(options.DataDirectory))
        {
            errors.Add($"{WarpGridNodeOptions.Section}:DataDirectory '{options.DataDirectory}' is a file, not a directory.");
        }

        if (options.IngressPort is < 0 or > 65535)
        {
            errors.Add($"{WarpGridNodeOptions.Section}:IngressPort must be between 0 and 65535 (got {options.IngressPort}).");
        }

        foreach (var dir in options.DeployOnStart)
        {
            if (!Directory.Exists(dir))
            {
                errors.Add($"{WarpGridNodeOptions.Section}:DeployOnStart '{dir}' is not a directory.");
            }
        }

        if (options.DrainTimeout < TimeSpan.Zero || options.DrainTimeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{WarpGridNodeOptions.Section}:DrainTimeout must be between 0 and 10 minutes (got {options.DrainTimeout}).");
        }

        if (options.ApplyTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{WarpGridNodeOptions.Section}:ApplyTimeout must be positive (got {options.ApplyTimeout}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Validates <see cref="WasmRuntimeOptions"/> at start; messages name the setting.</summary>
internal sealed class WasmRuntimeOptionsValidator : IValidateOptions<WasmRuntimeOptions>
{
    public const string Section = "WarpGrid:Runtime";

    public ValidateOptionsResult Validate(string? name, WasmRuntimeOptions options)
    {
        var errors = options.Validate(Section);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
