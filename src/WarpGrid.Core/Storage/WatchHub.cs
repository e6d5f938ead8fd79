using System.Diagnostics;
using System.Threading.Channels;

namespace WarpGrid.Core.Storage;

/// <summary>
/// The bounded history of recent changes plus the set of live watchers. Appending committed changes and registering a
/// watcher happen under one lock, so a watcher gets every change exactly once: those committed before it registered
/// from the history copy, those committed after through its channel.
/// </summary>
/// <remarks>
/// Revisions in the history are consecutive: the event at ring position <c>i</c> has revision <c>Floor + 1 + i</c>.
/// Writers never wait for watchers: a watcher whose channel is full is detached and told where to resume from.
/// </remarks>
internal sealed class WatchHub
{
    private readonly Lock _lock = new();
    private readonly StoreEvent[] _ring;
    private readonly long _maxBytes;
    private readonly int _bufferCapacity;
    private readonly List<Watcher> _watchers = [];
    private int _start;
    private int _count;
    private long _bytes;
    private long _floor;
    private bool _closed;

    public WatchHub(int capacity, long maxBytes, int bufferCapacity, long floor)
    {
        _ring = new StoreEvent[capacity];
        _maxBytes = maxBytes;
        _bufferCapacity = bufferCapacity;
        _floor = floor;
    }

    /// <summary>Every change with a revision greater than this is retained.</summary>
    public long Floor
    {
        get
        {
            lock (_lock)
            {
                return _floor;
            }
        }
    }

    public int WatcherCount
    {
        get
        {
            lock (_lock)
            {
                return _watchers.Count;
            }
        }
    }

    /// <summary>Appends committed changes (in revision order) to the history and hands them to the watchers.</summary>
    public void Publish(IReadOnlyList<StoreEvent> events)
    {
        lock (_lock)
        {
            foreach (StoreEvent e in events)
            {
                Append(e);
                Dispatch(e);
            }
        }
    }

    /// <summary>
    /// Registers a watcher for changes after <paramref name="afterRevision"/> and returns the retained changes it has
    /// missed so far.
    /// </summary>
    /// <exception cref="StoreCompactedException">The history no longer reaches back to <paramref name="afterRevision"/>.</exception>
    /// <exception cref="ObjectDisposedException">The store has been disposed.</exception>
    public (List<StoreEvent> Backlog, Watcher Watcher) Subscribe(string prefix, long afterRevision)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, typeof(FileClusterStore));
            if (afterRevision < _floor)
            {
                throw new StoreCompactedException(afterRevision, _floor);
            }

            var backlog = new List<StoreEvent>();
            for (long i = afterRevision - _floor; i < _count; i++)
            {
                StoreEvent e = _ring[(_start + (int)i) % _ring.Length];
                Debug.Assert(e.Entry.ModRevision == _floor + 1 + i, "history revisions are consecutive");
                if (e.Entry.Key.StartsWith(prefix, StringComparison.Ordinal))
                {
                    backlog.Add(e);
                }
            }

            var watcher = new Watcher(prefix, afterRevision, Channel.CreateBounded<StoreEvent>(new BoundedChannelOptions(_bufferCapacity)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.Wait,
            }));
            _watchers.Add(watcher);
            return (backlog, watcher);
        }
    }

    /// <summary>
    /// Streams the changes under <paramref name="prefix"/> after <paramref name="afterRevision"/>: the history first,
    /// then live changes. A watcher that falls behind is detached by the writer; this resubscribes from where it got to
    /// (calling <paramref name="catchingUp"/> with that revision) so the caller sees no gap. Ends with
    /// <see cref="ObjectDisposedException"/> naming <paramref name="storeName"/> when the hub is closed.
    /// </summary>
    public async IAsyncEnumerable<StoreEvent> StreamAsync(
        string prefix,
        long afterRevision,
        string storeName,
        Action<long>? catchingUp,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long resumeAfter = afterRevision;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            (List<StoreEvent> backlog, Watcher watcher) = Subscribe(prefix, resumeAfter);
            try
            {
                foreach (StoreEvent e in backlog)
                {
                    yield return e;
                    resumeAfter = e.Entry.ModRevision;
                }

                ChannelReader<StoreEvent> reader = watcher.Channel.Reader;
                while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (reader.TryRead(out StoreEvent? e))
                    {
                        yield return e;
                        resumeAfter = e.Entry.ModRevision;
                    }
                }
            }
            finally
            {
                Unsubscribe(watcher);
            }

            if (!watcher.Overflowed)
            {
                throw new ObjectDisposedException(storeName, "The store was disposed while the watch was running.");
            }

            resumeAfter = Math.Max(resumeAfter, watcher.ResumeAfter);
            catchingUp?.Invoke(resumeAfter);
        }
    }

    public void Unsubscribe(Watcher watcher)
    {
        lock (_lock)
        {
            _watchers.Remove(watcher);
        }
    }

    /// <summary>
    /// Forgets the history and restarts it at <paramref name="floor"/> (the state was replaced wholesale, e.g. by an
    /// installed snapshot). Live watchers are detached as if they had overflowed, so they resubscribe and observe
    /// <see cref="StoreCompactedException"/> when they had not seen everything up to <paramref name="floor"/>.
    /// </summary>
    public void Reset(long floor)
    {
        lock (_lock)
        {
            Array.Clear(_ring);
            _start = 0;
            _count = 0;
            _bytes = 0;
            _floor = floor;
            foreach (Watcher watcher in _watchers)
            {
                watcher.ResumeAfter = watcher.AfterRevision;
                watcher.Overflowed = true;
                watcher.Channel.Writer.TryComplete();
            }

            _watchers.Clear();
        }
    }

    /// <summary>Ends every watcher (they observe <see cref="ObjectDisposedException"/>) and refuses new ones.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            foreach (Watcher watcher in _watchers)
            {
                watcher.Channel.Writer.TryComplete();
            }

            _watchers.Clear();
        }
    }

    private void Append(StoreEvent e)
    {
        Debug.Assert(e.Entry.ModRevision == _floor + _count + 1, "history revisions are consecutive");
        if (_count == _ring.Length)
        {
            Evict();
        }

        _ring[(_start + _count) % _ring.Length] = e;
        _count++;
        _bytes += Size(e);
        while (_bytes > _maxBytes && _count > 0)
        {
            Evict();
        }
    }

    private void Evict()
    {
        StoreEvent oldest = _ring[_start];
        _ring[_start] = null!;
        _start = (_start + 1) % _ring.Length;
        _count--;
        _bytes -= Size(oldest);
        _floor = oldest.Entry.ModRevision;
    }

    private void Dispatch(StoreEvent e)
    {
        for (int i = _watchers.Count - 1; i >= 0; i--)
        {
            Watcher watcher = _watchers[i];
            if (e.Entry.ModRevision <= watcher.AfterRevision || !e.Entry.Key.StartsWith(watcher.Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            if (!watcher.Channel.Writer.TryWrite(e))
            {
                // Everything before e reached the channel; the watcher resumes from the history after draining it.
                watcher.ResumeAfter = e.Entry.ModRevision - 1;
                watcher.Overflowed = true;
                watcher.Channel.Writer.TryComplete();
                _watchers.RemoveAt(i);
            }
        }
    }

    private static long Size(StoreEvent e) => 64 + ((long)e.Entry.Key.Length * 2) + e.Entry.Value.Length;

    /// <summary>One registered watch.</summary>
    internal sealed class Watcher(string prefix, long afterRevision, Channel<StoreEvent> channel)
    {
        public string Prefix { get; } = prefix;

        public long AfterRevision { get; } = afterRevision;

        public Channel<StoreEvent> Channel { get; } = channel;

        /// <summary>Set (before the channel is completed) when the watcher was detached because its buffer was full.</summary>
        public bool Overflowed { get; set; }

        /// <summary>When <see cref="Overflowed"/>: every matching change up to this revision was put in the channel.</summary>
        public long ResumeAfter { get; set; }
    }
}
