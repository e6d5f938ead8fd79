using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Runtime;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Deployments;

/// <summary>
/// Reconciles this node with the store: lists and then watches <c>deployments/</c>, and for each record starts,
/// replaces or stops the deployment's instance pool. An update starts the new pool, switches traffic to it, then
/// drains the old one, so no request is dropped. A revision that cannot start leaves the previous one serving and
/// is reported as failed.
/// </summary>
public sealed partial class DeploymentController
{
    private readonly IClusterStore _store;
    private readonly IBlobStore _blobs;
    private readonly WasmNodeRuntime _runtime;
    private readonly DeploymentRegistry _registry;
    private readonly ILogger _logger;

    public DeploymentController(IClusterStore store, IBlobStore blobs, WasmNodeRuntime runtime, DeploymentRegistry registry, ILogger<DeploymentController>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(blobs);
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(registry);
        _store = store;
        _blobs = blobs;
        _runtime = runtime;
        _registry = registry;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>How long an old pool may take to finish in-flight requests after it is replaced or deleted.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once everything stored at start has been started (or has failed).</summary>
    public Task Ready => _ready.Task;

    /// <summary>Starts everything stored, then follows changes until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var revision = _store.Revision;
                var entries = await _store.ListAsync(DeploymentRecord.KeyPrefix, cancellationToken).ConfigureAwait(false);
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var entry in entries)
                {
                    var record = DeploymentRecord.FromBytes(entry.Value.Span, entry.ModRevision);
                    seen.Add(record.Name);
                    await ApplyAsync(record, cancellationToken).ConfigureAwait(false);
                }

                foreach (var name in _registry.Active.Keys.Where(n => !seen.Contains(n)).ToList())
                {
                    await StopAsync(name, revision).ConfigureAwait(false);
                }

                Log.Synced(_logger, entries.Count, revision);
                _ready.TrySetResult();
                await foreach (var change in _store.WatchAsync(DeploymentRecord.KeyPrefix, revision, cancellationToken).ConfigureAwait(false))
                {
                    var name = change.Entry.Key[DeploymentRecord.KeyPrefix.Length..];
                    if (change.Kind == StoreEventKind.Delete)
                    {
                        await StopAsync(name, change.Entry.ModRevision).ConfigureAwait(false);
                    }
                    else
                    {
                        await ApplyAsync(DeploymentRecord.FromBytes(change.Entry.Value.Span, change.Entry.ModRevision), cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is StoreCompactedException or IOException or InvalidDataException)
            {
                Log.WatchRestarted(_logger, ex);
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Starts or replaces the pool of one record (idempotent per revision).</summary>
    public Task ApplyAsync(DeploymentRecord record, CancellationToken cancellationToken = default) => ApplyAsync(record, null, cancellationToken);

    /// <summary>
    /// Starts or replaces the pool of one record (idempotent per revision), with <paramref name="adjust"/> changing the
    /// pool settings derived from the manifest (a node agent sizes the pool to the instances allocated to it).
    /// </summary>
    public async Task ApplyAsync(DeploymentRecord record, Func<PoolSettings, PoolSettings>? adjust, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        var current = _registry.Get(record.Name);
        if (current is not null && current.Record.Revision >= record.Revision)
        {
            return;
        }

        InstancePool? pool = null;
        try
        {
            var manifest = DeploymentManager.ParseManifest(record.Manifest);
            if (!_runtime.Modules.TryGet(record.Digest, out _) && await StartComponentAsync(record, manifest, current, cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (!_runtime.Modules.TryGet(record.Digest, out var compiled))
            {
                var bytes = await _blobs.ReadAsync(record.Digest, cancellationToken).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"module {record.Digest} is missing from the blob store");
                compiled = _runtime.Modules.GetOrCompile(bytes);
            }

            var settings = DeploymentManager.ToPoolSettings(manifest);
            pool = _runtime.CreatePool(adjust is null ? settings : adjust(settings), compiled!);
            _registry.Set(new ActiveDeployment(record, manifest, pool, DeploymentState.Running, null, record.Revision));
            Log.Started(_logger, record.Name, record.Generation, record.Revision, compiled!.FromCache);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.StartFailed(_logger, record.Name, record.Revision, ex);
            var message = ex is DeploymentValidationException v ? v.Message : ex.Message;
            if (current?.IsServing == true)
            {
                _registry.Set(current with { Record = record, State = DeploymentState.Failed, Message = message });
                return;
            }

            _registry.Set(new ActiveDeployment(record, TryParse(record.Manifest) ?? Manifest.WarpManifest.CreateDefault(record.Name), null, DeploymentState.Failed, message, 0));
            return;
        }

        if (current?.Pool is { } old && !ReferenceEquals(old, pool))
        {
            _ = DrainInBackground(old);
        }

        if (current?.Components is { } oldComponents)
        {
            _ = DrainComponentsInBackground(oldComponents);
        }
    }

    /// <summary>Starts a component deployment; returns false when the module is a core module (the caller starts a WAGI pool).</summary>
    private async Task<bool> StartComponentAsync(DeploymentRecord record, Manifest.WarpManifest manifest, ActiveDeployment? current, CancellationToken cancellationToken)
    {
        if (!_runtime.Modules.TryGetComponent(record.Digest, out var component))
        {
            var bytes = await _blobs.ReadAsync(record.Digest, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"module {record.Digest} is missing from the blob store");
            if (ModuleCache.Classify(bytes) != WasmBinaryKind.Component)
            {
                return false;
            }

            component = _runtime.Modules.GetOrCompileComponent(bytes);
        }

        var settings = DeploymentManager.ToPoolSettings(manifest);
        if (manifest.Runtime.Trigger == Manifest.TriggerKind.Cli)
        {
            Runtime.Components.ComponentCommand.Validate(_runtime, component!);
            _registry.Set(new ActiveDeployment(record, manifest, null, DeploymentState.Running, null, record.Revision) { Command = component });
        }
        else
        {
            var pool = _runtime.CreateComponentPool(settings, component!, manifest.Capabilities.HttpOutbound);
            _registry.Set(new ActiveDeployment(record, manifest, null, DeploymentState.Running, null, record.Revision) { Components = pool });
        }

        Log.Started(_logger, record.Name, record.Generation, record.Revision, component!.FromCache);
        DrainOld(current);
        return true;
    }

    private void DrainOld(ActiveDeployment? old)
    {
        if (old?.Pool is { } pool)
        {
            _ = DrainInBackground(pool);
        }

        if (old?.Components is { } components)
        {
            _ = DrainComponentsInBackground(components);
        }
    }

    private async Task DrainComponentsInBackground(Runtime.Components.ComponentHttpPool pool)
    {
        try
        {
            await pool.DrainAsync(DrainTimeout).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.DrainFailed(_logger, pool.Settings.Deployment, ex);
        }
    }

    /// <summary>Stops and removes a deployment from this node; in-flight requests finish (a node agent's deallocation).</summary>
    public Task RemoveAsync(string name, long revision)
    {
        ArgumentNullException.ThrowIfNull(name);
        return StopAsync(name, revision);
    }

    private Task StopAsync(string name, long revision)
    {
        var removed = _registry.Remove(name, revision);
        _runtime.Logs.Remove(name);
        if (removed?.Pool is { } pool)
        {
            Log.Stopped(_logger, name);
            _ = DrainInBackground(pool);
        }

        if (removed?.Components is { } components)
        {
            Log.Stopped(_logger, name);
            _ = DrainComponentsInBackground(components);
        }

        return Task.CompletedTask;
    }

    private async Task DrainInBackground(InstancePool pool)
    {
        try
        {
            await pool.DrainAsync(DrainTimeout).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.DrainFailed(_logger, pool.Settings.Deployment, ex);
        }
    }

    /// <summary>Drains every pool (node shutdown).</summary>
    public async Task StopAllAsync(TimeSpan timeout)
    {
        var pools = _registry.Active.Values.Select(a => a.Pool).OfType<InstancePool>().ToList();
        var components = _registry.Active.Values.Select(a => a.Components).OfType<Runtime.Components.ComponentHttpPool>().ToList();
        await Task.WhenAll(pools.Select(p => p.DrainAsync(timeout)).Concat(components.Select(c => c.DrainAsync(timeout)))).ConfigureAwait(false);
    }

    private static Manifest.WarpManifest? TryParse(string text)
    {
        try
        {
            return DeploymentManager.ParseManifest(text);
        }
        catch (DeploymentValidationException)
        {
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "Started {Name} generation {Generation} (revision {Revision}, compiled code from cache: {FromCache})")]
        public static partial void Started(ILogger logger, string name, long generation, long revision, bool fromCache);

        [LoggerMessage(EventId = 41, Level = LogLevel.Error, Message = "Could not start {Name} revision {Revision}")]
        public static partial void StartFailed(ILogger logger, string name, long revision, Exception exception);

        [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "Stopped {Name}")]
        public static partial void Stopped(ILogger logger, string name);

        [LoggerMessage(EventId = 43, Level = LogLevel.Warning, Message = "Draining {Name} failed")]
        public static partial void DrainFailed(ILogger logger, string name, Exception exception);

        [LoggerMessage(EventId = 44, Level = LogLevel.Information, Message = "Synchronised {Count} deployments at store revision {Revision}")]
        public static partial void Synced(ILogger logger, int count, long revision);

        [LoggerMessage(EventId = 45, Level = LogLevel.Warning, Message = "Deployment watch restarted")]
        public static partial void WatchRestarted(ILogger logger, Exception exception);
    }
}
