using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Storage;

namespace WarpGrid.Core.Security;

/// <summary>
/// One audit record: a mutating call, or an authentication or authorization failure. It names who, from where, what
/// and the outcome; it never holds a secret, a request body or module bytes.
/// </summary>
public sealed record AuditRecord
{
    /// <summary>When the call finished.</summary>
    public DateTimeOffset Time { get; init; }

    /// <summary>The caller (<c>serviceaccount:ns:name</c>, <c>user:alice</c>, <c>node:agent-a</c>), or <c>anonymous</c>.</summary>
    public required string Identity { get; init; }

    /// <summary>How the caller authenticated (<c>token</c> with its id, <c>certificate</c> with its serial).</summary>
    public string? Credential { get; init; }

    /// <summary>The client's address.</summary>
    public string? SourceAddress { get; init; }

    /// <summary>The verb of the permission the call needs (create, update, delete, …).</summary>
    public required string Verb { get; init; }

    /// <summary>The resource (deployments, nodes, tokens, …).</summary>
    public required string Resource { get; init; }

    /// <summary>The resource's name, when the call names one.</summary>
    public string? Name { get; init; }

    /// <summary>The namespace, for namespaced resources.</summary>
    public string? Namespace { get; init; }

    /// <summary>The HTTP method and path.</summary>
    public string? Request { get; init; }

    /// <summary><c>allowed</c> (the call ran; see <see cref="Status"/>), <c>unauthenticated</c> or <c>forbidden</c>.</summary>
    public required string Outcome { get; init; }

    /// <summary>The HTTP status answered.</summary>
    public int Status { get; init; }

    /// <summary>Why it was refused, when it was.</summary>
    public string? Reason { get; init; }

    /// <summary>The request id (the trace id when tracing is on).</summary>
    public string? RequestId { get; init; }
}

/// <summary>Filters of <see cref="AuditLog.QueryAsync"/>.</summary>
public sealed record AuditQuery
{
    /// <summary>Only records at or after this time.</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>Only this identity (exact).</summary>
    public string? Identity { get; init; }

    /// <summary>Only this namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>Only this resource.</summary>
    public string? Resource { get; init; }

    /// <summary>Only this verb.</summary>
    public string? Verb { get; init; }

    /// <summary>Only this outcome.</summary>
    public string? Outcome { get; init; }

    /// <summary>At most this many, the newest. Default 100.</summary>
    public int Limit { get; init; } = 100;

    /// <summary>Only namespaces in this set, and no cluster-scoped records (null: everything).</summary>
    public IReadOnlySet<string>? VisibleNamespaces { get; init; }
}

/// <summary>Retention of the audit log.</summary>
public sealed record AuditSettings
{
    /// <summary>Records kept at most. Default 10,000.</summary>
    public int MaxRecords { get; init; } = 10_000;

    /// <summary>Records older than this are dropped. Default 7 days.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Records waiting to be written at most; beyond, the oldest waiting is dropped and counted. Default 10,000.</summary>
    public int QueueCapacity { get; init; } = 10_000;
}

/// <summary>
/// The audit log, kept in the cluster store under <c>audit/&lt;time&gt;-&lt;random&gt;</c> (replicated with the cluster
/// state on a control plane), written in the background so a call does not wait for its record, pruned to the
/// retention limits.
/// </summary>
public sealed partial class AuditLog : IAsyncDisposable
{
    /// <summary>The store prefix.</summary>
    public const string KeyPrefix = "audit/";

    private readonly IClusterStore _store;
    private readonly AuditSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<AuditRecord> _queue;
    private readonly Task _writer;
    private long _dropped;
    private int _sincePrune;

    /// <summary>Creates the log and starts its writer.</summary>
    public AuditLog(IClusterStore store, AuditSettings? settings = null, TimeProvider? timeProvider = null, ILogger<AuditLog>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _settings = settings ?? new AuditSettings();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _queue = Channel.CreateBounded<AuditRecord>(new BoundedChannelOptions(_settings.QueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true }, _ => Interlocked.Increment(ref _dropped));
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Records dropped because the store could not keep up.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues a record (never blocks).</summary>
    public void Write(AuditRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        _queue.Writer.TryWrite(record.Time == default ? record with { Time = _time.GetUtcNow() } : record);
    }

    /// <summary>Waits until every record queued so far is in the store (for tests and shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _writing) != 0)
        {
            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    private int _writing;

    private async Task WriteLoopAsync()
    {
        await foreach (var record in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            Interlocked.Exchange(ref _writing, 1);
            try
            {
                var key = $"{KeyPrefix}{record.Time.UtcTicks:D19}-{System.Security.Cryptography.RandomNumberGenerator.GetHexString(6, lowercase: true)}";
                for (int attempt = 1; ; attempt++)
                {
                    try
                    {
                        await _store.PutAsync(key, JsonSerializer.SerializeToUtf8Bytes(record, AuditJson.Default.AuditRecord)).ConfigureAwait(false);
                        break;
                    }
                    catch (Exception ex) when (attempt < 5 && ex is IOException or InvalidOperationException)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), _time).ConfigureAwait(false);
                    }
                }

                if (++_sincePrune >= Math.Max(50, _settings.MaxRecords / 20))
                {
                    _sincePrune = 0;
                    await PruneAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _dropped);
                Log.WriteFailed(_logger, ex.Message);
            }
            finally
            {
                Interlocked.Exchange(ref _writing, 0);
            }
        }
    }

    /// <summary>Drops records beyond <see cref="AuditSettings.MaxRecords"/> or older than <see cref="AuditSettings.MaxAge"/>.</summary>
    public async Task<int> PruneAsync(CancellationToken cancellationToken = default)
    {
        var entries = await _store.ListAsync(KeyPrefix, cancellationToken).ConfigureAwait(false);
        var oldest = (_time.GetUtcNow() - _settings.MaxAge).UtcTicks.ToString("D19", System.Globalization.CultureInfo.InvariantCulture);
        int excess = entries.Count - _settings.MaxRecords;
        int removed = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            var stamp = entries[i].Key.AsSpan(KeyPrefix.Length, Math.Min(19, entries[i].Key.Length - KeyPrefix.Length));
            if (i < excess || stamp.CompareTo(oldest, StringComparison.Ordinal) < 0)
            {
                await _store.DeleteAsync(entries[i].Key, cancellationToken: cancellationToken).ConfigureAwait(false);
                removed++;
            }
            else
            {
                break; // keys are in time order
            }
        }

        return removed;
    }

    /// <summary>The newest records that match <paramref name="query"/>, newest first.</summary>
    public async Task<IReadOnlyList<AuditRecord>> QueryAsync(AuditQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var entries = await _store.ListAsync(KeyPrefix, cancellationToken).ConfigureAwait(false);
        var result = new List<AuditRecord>();
        for (int i = entries.Count - 1; i >= 0 && result.Count < query.Limit; i--)
        {
            AuditRecord? record;
            try
            {
                record = JsonSerializer.Deserialize(entries[i].Value.Span, AuditJson.Default.AuditRecord);
            }
            catch (JsonException)
            {
                continue;
            }

            if (record is null || (query.Since is { } since && record.Time < since))
            {
                continue;
            }

            if ((query.Identity is { } id && record.Identity != id)
                || (query.Namespace is { } ns && record.Namespace != ns)
                || (query.Resource is { } resource && record.Resource != resource)
                || (query.Verb is { } verb && record.Verb != verb)
                || (query.Outcome is { } outcome && record.Outcome != outcome)
                || (query.VisibleNamespaces is { } visible && (record.Namespace is null || !visible.Contains(record.Namespace))))
            {
                continue;
            }

            result.Add(record);
        }

        return result;
    }

    /// <summary>Writes what is queued and stops the writer.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try
        {
            await _writer.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // the store is gone; what is left is lost
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 610, Level = LogLevel.Warning, Message = "Audit record could not be written: {Reason}")]
        public static partial void WriteFailed(ILogger logger, string reason);
    }
}

[JsonSerializable(typeof(AuditRecord))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class AuditJson : JsonSerializerContext;
