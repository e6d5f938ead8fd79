using System.Collections.Immutable;
using WarpGrid.Core.Manifest;
using WarpGrid.Core.Runtime.Pooling;

namespace WarpGrid.Core.Deployments;

/// <summary>Where a deployment is in its life on this node.</summary>
public enum DeploymentState
{
    /// <summary>Accepted, not yet running.</summary>
    Pending,

    /// <summary>Serving its newest revision.</summary>
    Running,

    /// <summary>The newest revision could not be started; an older revision may still be serving.</summary>
    Failed,
}

/// <summary>A deployment as it runs on this node: its record, parsed manifest, pool and status.</summary>
/// <param name="Record">The newest record seen.</param>
/// <param name="Manifest">The parsed manifest of the serving revision (or of the record when none serves).</param>
/// <param name="Pool">The pool serving requests, or null when nothing serves.</param>
/// <param name="State">The state of the newest record.</param>
/// <param name="Message">Why it failed, when it did.</param>
/// <param name="ServingRevision">The store revision the pool runs.</param>
public sealed record ActiveDeployment(DeploymentRecord Record, WarpManifest Manifest, InstancePool? Pool, DeploymentState State, string? Message, long ServingRevision)
{
    /// <summary>The deployment name.</summary>
    public string Name => Record.Name;

    /// <summary>The pool serving requests when the module is a <c>wasi:http</c> component (then <see cref="Pool"/> is null).</summary>
    public Runtime.Components.ComponentHttpPool? Components { get; init; }

    /// <summary>The compiled <c>wasi:cli/run</c> component of a <c>cli</c> deployment (run through the API).</summary>
    public Runtime.Components.CompiledComponent? Command { get; init; }

    /// <summary>True when some pool serves requests.</summary>
    public bool IsServing => Pool is not null || Components is not null;
}

/// <summary>
/// The deployments running on this node, as an immutable snapshot swapped on every change so the request path reads
/// it without locks.
/// </summary>
public sealed class DeploymentRegistry
{
    private readonly Lock _lock = new();
    private ImmutableDictionary<string, ActiveDeployment> _active = ImmutableDictionary.Create<string, ActiveDeployment>(StringComparer.Ordinal);
    private ImmutableList<(string Name, long Revision, TaskCompletionSource<ActiveDeployment?> Done)> _waiters = [];
    private ImmutableDictionary<string, long> _removedAt = ImmutableDictionary.Create<string, long>(StringComparer.Ordinal);
    private long _version;

    /// <summary>Raised after every change, on the thread that made it.</summary>
    public event Action? Changed;

    /// <summary>Increases on every change.</summary>
    public long Version => Volatile.Read(ref _version);

    /// <summary>The current snapshot.</summary>
    public ImmutableDictionary<string, ActiveDeployment> Active => Volatile.Read(ref _active);

    /// <summary>One deployment, or null.</summary>
    public ActiveDeployment? Get(string name) => Active.GetValueOrDefault(name);

    /// <summary>Adds or replaces a deployment.</summary>
    public void Set(ActiveDeployment deployment)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        lock (_lock)
        {
            _active = _active.SetItem(deployment.Name, deployment);
            _removedAt = _removedAt.Remove(deployment.Name);
            _version++;
            Complete(deployment.Name, deployment.Record.Revision, deployment);
        }

        Changed?.Invoke();
    }

    /// <summary>Removes a deployment; returns what was removed.</summary>
    public ActiveDeployment? Remove(string name, long revision)
    {
        ActiveDeployment? removed;
        lock (_lock)
        {
            _active.TryGetValue(name, out removed);
            _active = _active.Remove(name);
            _removedAt = _removedAt.SetItem(name, revision);
            _version++;
            Complete(name, revision, null);
        }

        Changed?.Invoke();
        return removed;
    }

    /// <summary>
    /// Waits until this node has acted on revision <paramref name="revision"/> (or later) of a deployment: returns the
    /// deployment (running or failed), or null when it was deleted.
    /// </summary>
    public async Task<ActiveDeployment?> WaitForRevisionAsync(string name, long revision, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        TaskCompletionSource<ActiveDeployment?> done;
        lock (_lock)
        {
            if (_active.TryGetValue(name, out var current) && current.Record.Revision >= revision)
            {
                return current;
            }

            if (current is null && _removedAt.TryGetValue(name, out var removedAt) && removedAt >= revision)
            {
                return null;
            }

            done = new TaskCompletionSource<ActiveDeployment?>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters = _waiters.Add((name, revision, done));
        }

        try
        {
            return await done.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_lock)
            {
                _waiters = _waiters.RemoveAll(w => w.Done == done);
            }
        }
    }

    private void Complete(string name, long revision, ActiveDeployment? deployment)
    {
        foreach (var waiter in _waiters)
        {
            if (waiter.Name == name && revision >= waiter.Revision)
            {
                waiter.Done.TrySetResult(deployment);
            }
        }
    }
}
