using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Oci;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Deployments;

/// <summary>The outcome of applying a deployment with <see cref="DeploymentManager"/>.</summary>
/// <param name="Record">The stored record.</param>
/// <param name="Created">True when the deployment did not exist before.</param>
/// <param name="Changed">False when the same manifest and module were already deployed (nothing written).</param>
public sealed record ApplyResult(DeploymentRecord Record, bool Created, bool Changed);

/// <summary>
/// The control path for deployments: validates a manifest and module completely (the module is compiled and linked
/// against this node's host functions), stores the module bytes by digest and the record in the cluster store.
/// Nothing invalid is ever written. Running it is the <see cref="DeploymentController"/>'s job.
/// </summary>
public sealed partial class DeploymentManager
{
    private readonly IClusterStore _store;
    private readonly IBlobStore _blobs;
    private readonly WasmNodeRuntime _runtime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly OciRegistryClient? _registry;
    private IReadOnlyList<IDeploymentAdmission> _admissions = [];

    /// <summary>
    /// Checks every create and update must pass before it is stored (quotas, signature policies), in order; each
    /// refuses by throwing <see cref="DeploymentAdmissionException"/>.
    /// </summary>
    public IReadOnlyList<IDeploymentAdmission> Admissions
    {
        get => _admissions;
        init => _admissions = value ?? throw new ArgumentNullException(nameof(value));
    }

    public DeploymentManager(IClusterStore store, IBlobStore blobs, WasmNodeRuntime runtime, TimeProvider? timeProvider = null, ILogger<DeploymentManager>? logger = null, OciRegistryClient? registry = null)
    {
        _registry = registry;
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(blobs);
        ArgumentNullException.ThrowIfNull(runtime);
        _store = store;
        _blobs = blobs;
        _runtime = runtime;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Largest module accepted, in bytes.</summary>
    public long MaxModuleBytes { get; init; } = 256L << 20;

    /// <summary>Parses a manifest or throws <see cref="DeploymentValidationException"/> naming every problem.</summary>
    public static WarpManifest ParseManifest(string manifestText, string fileName = "warp.toml")
    {
        ArgumentNullException.ThrowIfNull(manifestText);
        var result = ManifestParser.Parse(manifestText, fileName);
        if (!result.Success || result.Manifest is null)
        {
            throw new DeploymentValidationException(result.Errors.Select(e => new DeploymentError(e.Field, e.Message, e.File, e.Line, e.Column)).ToList());
        }

        return result.Manifest;
    }

    /// <summary>Maps a manifest to the settings of its instance pool.</summary>
    public static PoolSettings ToPoolSettings(WarpManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var runtime = manifest.Runtime;
        return new PoolSettings
        {
            Deployment = manifest.Package.Name,
            Version = manifest.Package.Version,
            MinInstances = runtime.MinInstances,
            MaxInstances = runtime.MaxInstances,
            RequestTimeout = runtime.RequestTimeout,
            MemoryLimitBytes = runtime.Resources.MemoryLimitBytes,
            Environment = [.. manifest.Capabilities.Environment],
            Logging = manifest.Capabilities.Logging,
            QueueLimit = Math.Max(64, runtime.MaxInstances * 16),
            QueueTimeout = runtime.RequestTimeout < TimeSpan.FromSeconds(10) ? runtime.RequestTimeout : TimeSpan.FromSeconds(10),
        };
    }

    /// <summary>
    /// Normalises a route prefix: no trailing slash except for the root, and no trailing <c>/...</c> (Spin and WAGI
    /// write a prefix route as <c>/hello/...</c>; every WarpGrid route is a prefix, so <c>/hello/...</c> is <c>/hello</c>).
    /// </summary>
    public static string NormalizeRoute(string route)
    {
        ArgumentNullException.ThrowIfNull(route);
        if (route.EndsWith("/...", StringComparison.Ordinal))
        {
            route = route[..^4];
        }

        var trimmed = route.TrimEnd('/');
        return trimmed.Length == 0 ? "/" : trimmed;
    }

    /// <summary>
    /// Creates or updates a deployment from manifest text and module bytes (or the digest of a module this node
    /// already stores). Throws <see cref="DeploymentValidationException"/> or <see cref="DeploymentConflictException"/>
    /// without changing anything.
    /// </summary>
    public async Task<ApplyResult> ApplyAsync(string manifestText, ReadOnlyMemory<byte>? module, string? digest = null, string? expectedName = null, CancellationToken cancellationToken = default)
        => await ApplyAsync(manifestText, module, digest, reference: null, expectedName, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Creates or updates a deployment whose module comes as bytes, as the digest of a module this node stores, or as
    /// an OCI <paramref name="reference"/>: the tag is resolved to a manifest digest once, the Wasm layer pulled (or
    /// found in the blob store by its digest) and verified, and the record pins the digests so every instance runs
    /// exactly those bytes.
    /// </summary>
    public async Task<ApplyResult> ApplyAsync(string manifestText, ReadOnlyMemory<byte>? module, string? digest, string? reference, string? expectedName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifestText);
        var manifest = ParseManifest(manifestText);
        var errors = new List<DeploymentError>();
        var name = manifest.Package.Name;
        if (expectedName is not null && !string.Equals(expectedName, name, StringComparison.Ordinal))
        {
            errors.Add(new DeploymentError("package.name", $"the manifest names the deployment '{name}' but the request is for '{expectedName}'"));
        }

        var cliTrigger = manifest.Runtime.Trigger == TriggerKind.Cli;

        if (manifest.Runtime.Resources.MemoryLimitBytes > _runtime.Options.MaxMemoryPerInstanceBytes)
        {
            errors.Add(new DeploymentError("runtime.resources.memory_limit", $"{ByteSize.Format(manifest.Runtime.Resources.MemoryLimitBytes)} is above this node's maximum of {ByteSize.Format(_runtime.Options.MaxMemoryPerInstanceBytes)} per instance (WarpGrid:Runtime:MaxMemoryPerInstanceBytes)"));
        }

        ReadOnlyMemory<byte> bytes = default;
        string? manifestDigest = null;
        if (reference is not null && (module is not null || digest is not null))
        {
            errors.Add(new DeploymentError("reference", "give the module as bytes, a digest or an OCI reference, not several"));
        }
        else if (reference is not null)
        {
            if (!OciReference.TryParse(reference, out var parsed, out var referenceError))
            {
                errors.Add(new DeploymentError("reference", referenceError));
            }
            else if (_registry is null)
            {
                errors.Add(new DeploymentError("reference", "this node has no OCI registry client; upload the module bytes instead"));
            }
            else
            {
                try
                {
                    (manifestDigest, bytes) = await PullAsync(parsed, cancellationToken).ConfigureAwait(false);
                    digest = ModuleCache.ComputeDigest(bytes.Span);
                }
                catch (OciRegistryUnavailableException ex)
                {
                    throw new DeploymentSourceUnavailableException($"could not pull {reference}: {ex.Message}", ex);
                }
                catch (OciException ex)
                {
                    errors.Add(new DeploymentError("reference", $"could not pull {reference}: {ex.Message}"));
                }
            }
        }
        else if (module is { } given)
        {
            if (given.Length > MaxModuleBytes)
            {
                errors.Add(new DeploymentError("module", $"the module is {given.Length} bytes; the largest accepted is {MaxModuleBytes} bytes"));
            }

            bytes = given;
            digest = ModuleCache.ComputeDigest(given.Span);
        }
        else if (digest is not null)
        {
            if (!Digest.TryParse(digest, out _))
            {
                errors.Add(new DeploymentError("digest", $"'{digest}' is not a digest of the form sha256:<64 lowercase hex digits>"));
            }
            else
            {
                var stored = await _blobs.ReadAsync(digest, cancellationToken).ConfigureAwait(false);
                if (stored is null)
                {
                    errors.Add(new DeploymentError("digest", $"this node stores no module with digest {digest}; upload the module bytes instead"));
                }
                else
                {
                    bytes = stored;
                }
            }
        }
        else
        {
            errors.Add(new DeploymentError("module", "no module given: send the .wasm bytes (multipart part 'module') , the digest of a module this node already stores, or an OCI reference (part 'reference')"));
        }

        if (errors.Count == 0)
        {
            try
            {
                if (ModuleCache.Classify(bytes.Span) == WasmBinaryKind.Component)
                {
                    var component = _runtime.Modules.GetOrCompileComponent(bytes);
                    if (manifest.Runtime.Trigger == TriggerKind.Http)
                    {
                        WasmNodeRuntime.ValidateHttpComponent(component, manifest.Capabilities.Logging);
                    }
                    else
                    {
                        Runtime.Components.ComponentCommand.Validate(_runtime, component);
                    }
                }
                else if (cliTrigger)
                {
                    throw new WasmValidationException("trigger = \"cli\" runs WASI 0.2 components that export wasi:cli/run; this is a core module: wrap a WASI preview 1 command with `jco new app.wasm --wasi-command -o app.component.wasm`");
                }
                else
                {
                    var compiled = _runtime.Modules.GetOrCompile(bytes);
                    WasmNodeRuntime.ValidateWagiModule(compiled, manifest.Capabilities.Logging);
                }
            }
            catch (WasmValidationException ex)
            {
                errors.Add(new DeploymentError("module", ex.Message));
            }
        }

        if (errors.Count > 0)
        {
            throw new DeploymentValidationException(errors);
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var route = NormalizeRoute(manifest.Runtime.Route);
            var host = manifest.Runtime.Host?.ToLowerInvariant();
            var ns = manifest.Package.Namespace;
            var others = new List<DeploymentRecord>();
            foreach (var entry in await _store.ListAsync(DeploymentRecord.KeyPrefix, cancellationToken).ConfigureAwait(false))
            {
                var other = DeploymentRecord.FromBytes(entry.Value.Span, entry.ModRevision);
                if (other.Name == name)
                {
                    continue;
                }

                others.Add(other);
                var otherManifest = ParseManifest(other.Manifest);
                if (NormalizeRoute(otherManifest.Runtime.Route) == route && otherManifest.Runtime.Host?.ToLowerInvariant() == host)
                {
                    // Another namespace's deployment is not named: a tenant learns only that the route is taken.
                    throw new DeploymentConflictException(other.Namespace == ns
                        ? $"route {(host is null ? string.Empty : host)}{route} is already served by deployment '{other.Name}'; choose another runtime.route or runtime.host"
                        : $"route {(host is null ? string.Empty : host)}{route} is claimed by a deployment of another namespace; choose another runtime.route or runtime.host");
                }
            }

            var existingEntry = await _store.GetAsync(DeploymentRecord.KeyFor(name), cancellationToken).ConfigureAwait(false);
            var existing = existingEntry is null ? null : DeploymentRecord.FromBytes(existingEntry.Value.Span, existingEntry.ModRevision);
            if (existing is not null && existing.Namespace != ns)
            {
                throw new DeploymentConflictException($"deployment '{name}' belongs to namespace '{existing.Namespace}'; a deployment cannot move to namespace '{ns}' (delete it and create it there, or choose another name)");
            }

            foreach (var admission in _admissions)
            {
                await admission.AdmitAsync(new DeploymentAdmission(manifest, bytes.Length, reference, manifestDigest, existing, others), cancellationToken).ConfigureAwait(false);
            }
            if (existing is not null && existing.Digest == digest && existing.Manifest == manifestText && existing.Reference == reference)
            {
                return new ApplyResult(existing, Created: false, Changed: false);
            }

            if (!_blobs.Exists(digest!))
            {
                await _blobs.PutAsync(bytes, cancellationToken).ConfigureAwait(false);
            }

            var now = _time.GetUtcNow();
            var record = new DeploymentRecord
            {
                Name = name,
                Namespace = ns,
                ModuleBytes = bytes.Length,
                Version = manifest.Package.Version,
                Manifest = manifestText,
                Digest = digest!,
                Reference = reference,
                ManifestDigest = manifestDigest,
                Generation = (existing?.Generation ?? 0) + 1,
                CreatedAt = existing?.CreatedAt ?? now,
                UpdatedAt = now,
            };
            var revision = await _store.PutAsync(DeploymentRecord.KeyFor(name), record.ToBytes(), existingEntry?.ModRevision ?? 0, cancellationToken).ConfigureAwait(false);
            Log.Applied(_logger, name, record.Generation, digest!, revision);
            return new ApplyResult(record with { Revision = revision }, Created: existing is null, Changed: true);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task<(string ManifestDigest, ReadOnlyMemory<byte> Wasm)> PullAsync(OciReference reference, CancellationToken cancellationToken)
    {
        var manifestDigest = reference.Digest ?? await _registry!.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
        var pinned = reference.WithDigest(manifestDigest);
        var fetched = await _registry!.GetManifestAsync(pinned, cancellationToken).ConfigureAwait(false);
        var layers = OciImageManifest.Parse(fetched.Content, reference.ToString()).Layers.Where(l => l.MediaType == "application/wasm").ToList();
        if (layers.Count == 1 && _blobs.Exists(layers[0].Digest) && await _blobs.ReadAsync(layers[0].Digest, cancellationToken).ConfigureAwait(false) is { } cached)
        {
            Log.PullCached(_logger, reference.ToString(), manifestDigest);
            return (manifestDigest, cached);
        }

        var artifact = await _registry.PullWasmAsync(pinned, MaxModuleBytes, cancellationToken: cancellationToken).ConfigureAwait(false);
        Log.Pulled(_logger, reference.ToString(), manifestDigest, artifact.Wasm.Length);
        return (manifestDigest, artifact.Wasm);
    }

    /// <summary>Deletes a deployment; returns the revision of the delete, or throws <see cref="DeploymentNotFoundException"/>.</summary>
    public async Task<long> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!await _store.DeleteAsync(DeploymentRecord.KeyFor(name), cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                throw new DeploymentNotFoundException(name);
            }

            Log.Deleted(_logger, name);
            return _store.Revision;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Reads every stored deployment record.</summary>
    public async Task<IReadOnlyList<DeploymentRecord>> ListAsync(CancellationToken cancellationToken = default)
    {
        var entries = await _store.ListAsync(DeploymentRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
        return entries.Select(e => DeploymentRecord.FromBytes(e.Value.Span, e.ModRevision)).ToList();
    }

    /// <summary>Reads one stored deployment record, or null.</summary>
    public async Task<DeploymentRecord?> GetAsync(string name, CancellationToken cancellationToken = default)
    {
        var entry = await _store.GetAsync(DeploymentRecord.KeyFor(name), cancellationToken).ConfigureAwait(false);
        return entry is null ? null : DeploymentRecord.FromBytes(entry.Value.Span, entry.ModRevision);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Deployment {Name} generation {Generation} stored ({Digest}, revision {Revision})")]
        public static partial void Applied(ILogger logger, string name, long generation, string digest, long revision);

        [LoggerMessage(EventId = 32, Level = LogLevel.Information, Message = "Pulled {Reference} ({ManifestDigest}, {Bytes} bytes)")]
        public static partial void Pulled(ILogger logger, string reference, string manifestDigest, int bytes);

        [LoggerMessage(EventId = 33, Level = LogLevel.Information, Message = "Resolved {Reference} to {ManifestDigest}; its module is already stored")]
        public static partial void PullCached(ILogger logger, string reference, string manifestDigest);

        [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Deployment {Name} deleted")]
        public static partial void Deleted(ILogger logger, string name);
    }
}
