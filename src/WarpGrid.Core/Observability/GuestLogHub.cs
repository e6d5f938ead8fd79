using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace WarpGrid.Core.Observability;

/// <summary>Where a guest log line came from.</summary>
public enum GuestLogStream
{
    /// <summary>The guest's standard error, one record per line.</summary>
    Stderr,

    /// <summary>The node about the deployment (probe failures, restarts, scaling).</summary>
    System,

    /// <summary>A component's standard output (a <c>wasi:http</c> component answers through wasi:http, so stdout is log output too).</summary>
    Stdout,

    /// <summary>The guest's log import (<c>wasi:logging/logging</c> <c>log</c>), with a level and a context.</summary>
    Log,
}

/// <summary>The level of a record written through the log import (the <c>wasi:logging</c> <c>level</c> enum, in its order).</summary>
public enum GuestLogLevel
{
    /// <summary>trace</summary>
    Trace,

    /// <summary>debug</summary>
    Debug,

    /// <summary>info</summary>
    Info,

    /// <summary>warn</summary>
    Warn,

    /// <summary>error</summary>
    Error,

    /// <summary>critical</summary>
    Critical,
}

/// <summary>One structured log record of a deployment.</summary>
/// <param name="Sequence">Increases by one per record of this node (for resuming a follow).</param>
/// <param name="Timestamp">When the line was written.</param>
/// <param name="Deployment">The deployment name.</param>
/// <param name="Version">The deployment version.</param>
/// <param name="Instance">The instance id, or null for node records.</param>
/// <param name="Stream">stderr or system.</param>
/// <param name="Message">The line, without its newline.</param>
/// <param name="TraceId">The W3C trace id of the request being served, when tracing is on.</param>
/// <param name="SpanId">The span id of the guest invocation, when tracing is on.</param>
public sealed record GuestLogRecord(long Sequence, DateTimeOffset Timestamp, string Deployment, string Version, string? Instance, GuestLogStream Stream, string Message, string? TraceId, string? SpanId)
{
    /// <summary>The level, for records of the log import (<see cref="GuestLogStream.Log"/>); null otherwise.</summary>
    public GuestLogLevel? Level { get; init; }

    /// <summary>The context the guest passed to the log import (often a logger or module name); null when empty or not a log-import record.</summary>
    public string? Context { get; init; }
}

/// <summary>
/// The node's guest logs: a bounded ring of the newest records per deployment (oldest dropped first) and live
/// subscriptions for <c>logs?follow=true</c>. A slow follower never blocks a guest: its buffer is bounded and drops
/// its oldest records.
/// </summary>
public sealed class GuestLogHub
{
    private readonly ConcurrentDictionary<string, Ring> _rings = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private long _sequence;

    /// <summary>Creates a hub keeping <paramref name="capacityPerDeployment"/> records per deployment.</summary>
    public GuestLogHub(int capacityPerDeployment = 1000, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityPerDeployment, 1);
        Capacity = capacityPerDeployment;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Records kept per deployment.</summary>
    public int Capacity { get; }

    /// <summary>Appends a record; trace ids come from the current activity (the guest span) when there is one.</summary>
    public void Append(string deployment, string version, string? instance, GuestLogStream stream, string message) =>
        Append(deployment, version, instance, stream, message, null, null);

    /// <summary>Appends a record with a level and context (from the log import); trace ids as for <see cref="Append(string, string, string?, GuestLogStream, string)"/>.</summary>
    public void Append(string deployment, string version, string? instance, GuestLogStream stream, string message, GuestLogLevel? level, string? context)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        var activity = Activity.Current;
        var record = new GuestLogRecord(
            Interlocked.Increment(ref _sequence),
            _time.GetUtcNow(),
            deployment,
            version,
            instance,
            stream,
            message,
            activity?.TraceId.ToHexString(),
            activity?.SpanId.ToHexString())
        {
            Level = level,
            Context = string.IsNullOrEmpty(context) ? null : context,
        };
        _rings.GetOrAdd(deployment, static (_, capacity) => new Ring(capacity), Capacity).Add(record);
    }

    /// <summary>The newest <paramref name="tail"/> records of a deployment, oldest first.</summary>
    public IReadOnlyList<GuestLogRecord> Tail(string deployment, int tail)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        return _rings.TryGetValue(deployment, out var ring) ? ring.Tail(tail) : [];
    }

    /// <summary>
    /// Subscribes to a deployment's records now: the newest <paramref name="tail"/> records, then every record written
    /// after this call, read with <see cref="GuestLogFollower.ReadAllAsync"/>. Nothing written between this call and the
    /// first read is missed (subscribe before telling a client the stream is open). Dispose to unsubscribe.
    /// </summary>
    public GuestLogFollower Follow(string deployment, int tail)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        var ring = _rings.GetOrAdd(deployment, static (_, capacity) => new Ring(capacity), Capacity);
        var channel = Channel.CreateBounded<GuestLogRecord>(new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var backlog = ring.Subscribe(channel.Writer, tail);
        return new GuestLogFollower(backlog, channel.Reader, () => ring.Unsubscribe(channel.Writer));
    }

    /// <summary>
    /// The newest <paramref name="tail"/> records, then every new one until <paramref name="cancellationToken"/> is
    /// cancelled. Subscribes when enumeration starts; use <see cref="Follow"/> to subscribe earlier.
    /// </summary>
    public async IAsyncEnumerable<GuestLogRecord> FollowAsync(string deployment, int tail, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var follower = Follow(deployment, tail);
        await foreach (var record in follower.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return record;
        }
    }

    /// <summary>Forgets a deployment's records (it was deleted).</summary>
    public void Remove(string deployment) => _rings.TryRemove(deployment, out _);

    private sealed class Ring(int capacity)
    {
        private readonly Lock _lock = new();
        private readonly GuestLogRecord?[] _items = new GuestLogRecord?[capacity];
        private ChannelWriter<GuestLogRecord>[] _followers = [];
        private int _next;
        private int _count;

        public void Add(GuestLogRecord record)
        {
            ChannelWriter<GuestLogRecord>[] followers;
            lock (_lock)
            {
                _items[_next] = record;
                _next = (_next + 1) % _items.Length;
                _count = Math.Min(_count + 1, _items.Length);
                followers = _followers;
            }

            foreach (var follower in followers)
            {
                follower.TryWrite(record);
            }
        }

        public List<GuestLogRecord> Tail(int tail)
        {
            lock (_lock)
            {
                return TailLocked(tail);
            }
        }

        public List<GuestLogRecord> Subscribe(ChannelWriter<GuestLogRecord> writer, int tail)
        {
            lock (_lock)
            {
                _followers = [.. _followers, writer];
                return TailLocked(tail);
            }
        }

        public void Unsubscribe(ChannelWriter<GuestLogRecord> writer)
        {
            lock (_lock)
            {
                _followers = [.. _followers.Where(f => !ReferenceEquals(f, writer))];
            }
        }

        private List<GuestLogRecord> TailLocked(int tail)
        {
            var take = Math.Clamp(tail, 0, _count);
            var result = new List<GuestLogRecord>(take);
            for (var i = take; i > 0; i--)
            {
                result.Add(_items[(_next - i + _items.Length) % _items.Length]!);
            }

            return result;
        }
    }
}

/// <summary>A live subscription to one deployment's guest log records, from <see cref="GuestLogHub.Follow"/>.</summary>
public sealed class GuestLogFollower : IDisposable
{
    private readonly List<GuestLogRecord> _backlog;
    private readonly ChannelReader<GuestLogRecord> _reader;
    private Action? _unsubscribe;

    internal GuestLogFollower(List<GuestLogRecord> backlog, ChannelReader<GuestLogRecord> reader, Action unsubscribe)
    {
        _backlog = backlog;
        _reader = reader;
        _unsubscribe = unsubscribe;
    }

    /// <summary>The backlog, then each new record in order (a slow reader loses the oldest), until cancelled or disposed.</summary>
    public async IAsyncEnumerable<GuestLogRecord> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var last = 0L;
        foreach (var record in _backlog)
        {
            last = record.Sequence;
            yield return record;
        }

        while (await _reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_reader.TryRead(out var record))
            {
                if (record.Sequence > last)
                {
                    last = record.Sequence;
                    yield return record;
                }
            }
        }
    }

    /// <summary>Unsubscribes.</summary>
    public void Dispose() => Interlocked.Exchange(ref _unsubscribe, null)?.Invoke();
}
