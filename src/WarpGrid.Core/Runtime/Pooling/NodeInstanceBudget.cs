namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>Thrown when the node already runs as many instances as it may.</summary>
public sealed class InstanceLimitException(int limit)
    : Exception($"this node already runs its maximum of {limit} instances (WarpGrid:Runtime:MaxInstancesPerNode); the instance was refused")
{
    /// <summary>The node's cap.</summary>
    public int Limit { get; } = limit;
}

/// <summary>The per-node cap on live instances, shared by every pool on the node.</summary>
public sealed class NodeInstanceBudget(int limit)
{
    private int _live;

    /// <summary>The cap.</summary>
    public int Limit { get; } = limit;

    /// <summary>Instances alive now.</summary>
    public int Live => Volatile.Read(ref _live);

    /// <summary>Reserves one instance, or returns false when the node is at its cap.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _live);
            if (current >= Limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _live, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Returns one reservation.</summary>
    public void Release() => Interlocked.Decrement(ref _live);
}
