using System.Net;
using System.Net.NetworkInformation;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using WarpGrid.Core.Clustering;

namespace WarpGrid.Hosting;

/// <summary>Where the API listener's certificate comes from; asked once per new connection.</summary>
internal interface IApiCertificateSource
{
    /// <summary>The certificate (with its chain) to present on a new connection.</summary>
    SslStreamCertificateContext Current { get; }
}

/// <summary>
/// The API certificate from a PEM certificate (chain) file and a PEM key file, reloaded when either changes: a
/// <see cref="FileSystemWatcher"/> marks a change, and the files' last-write times and lengths are compared at most
/// once a second on a new connection (watchers miss events on some file systems). A new pair that does not load is
/// logged once and the old certificate stays.
/// </summary>
internal sealed partial class ApiCertificateFiles : IApiCertificateSource, IDisposable
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    private readonly string _certificateFile;
    private readonly string _keyFile;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private volatile SslStreamCertificateContext _current;
    private Stamp _loaded;
    private Stamp? _failed;
    private long _lastCheck;
    private int _changed;

    /// <summary>Loads the pair; throws <see cref="InvalidDataException"/> naming the problem when it does not load.</summary>
    public ApiCertificateFiles(string certificateFile, string keyFile, TimeProvider time, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(certificateFile);
        ArgumentException.ThrowIfNullOrEmpty(keyFile);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _certificateFile = Path.GetFullPath(certificateFile);
        _keyFile = Path.GetFullPath(keyFile);
        _time = time;
        _logger = logger;
        _loaded = StampOf();
        if (!TryLoad(_certificateFile, _keyFile, out var context, out var problem))
        {
            throw new InvalidDataException($"the API certificate '{certificateFile}' with key '{keyFile}' does not load: {problem}");
        }

        _current = context;
        _lastCheck = time.GetTimestamp();
        Watch(_certificateFile);
        if (!string.Equals(Path.GetDirectoryName(_keyFile), Path.GetDirectoryName(_certificateFile), StringComparison.Ordinal))
        {
            Watch(_keyFile);
        }

        Log.Loaded(_logger, _certificateFile, context.TargetCertificate.Subject, context.TargetCertificate.SerialNumber, context.TargetCertificate.NotAfter.ToUniversalTime());
    }

    public SslStreamCertificateContext Current
    {
        get
        {
            if (Volatile.Read(ref _changed) == 0 && _time.GetElapsedTime(Volatile.Read(ref _lastCheck)) < CheckInterval)
            {
                return _current;
            }

            lock (_lock)
            {
                if (Interlocked.Exchange(ref _changed, 0) == 0 && _time.GetElapsedTime(_lastCheck) < CheckInterval)
                {
                    return _current;
                }

                Volatile.Write(ref _lastCheck, _time.GetTimestamp());
                var stamp = StampOf();
                if (stamp == _loaded || stamp == _failed)
                {
                    return _current;
                }

                if (TryLoad(_certificateFile, _keyFile, out var context, out var problem))
                {
                    _current = context;
                    _loaded = stamp;
                    _failed = null;
                    Log.Reloaded(_logger, _certificateFile, context.TargetCertificate.Subject, context.TargetCertificate.SerialNumber, context.TargetCertificate.NotAfter.ToUniversalTime());
                }
                else
                {
                    _failed = stamp; // logged once per version of the files
                    Log.ReloadFailed(_logger, _certificateFile, _keyFile, problem);
                }

                return _current;
            }
        }
    }

    /// <summary>
    /// Loads a PEM certificate (the first certificate of the file; the rest are its chain) and its PEM key. False with
    /// the reason when a file is missing or unreadable, holds no certificate or key, the key does not match, or the key
    /// file can be read by others.
    /// </summary>
    internal static bool TryLoad(string certificateFile, string keyFile, out SslStreamCertificateContext context, out string problem)
    {
        context = null!;
        try
        {
            if (SecretFiles.Check(keyFile, "the API key file") is { } refusal)
            {
                problem = refusal;
                return false;
            }

            var chain = new X509Certificate2Collection();
            chain.ImportFromPem(File.ReadAllText(certificateFile));
            if (chain.Count == 0)
            {
                problem = $"'{certificateFile}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
                return false;
            }

            using var leaf = X509Certificate2.CreateFromPem(chain[0].ExportCertificatePem(), File.ReadAllText(keyFile));
            // A PKCS#12 round trip gives the key a form every platform's TLS stack accepts (an ephemeral key works on Linux only).
            var withKey = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
            var intermediates = new X509Certificate2Collection();
            for (int i = 1; i < chain.Count; i++)
            {
                intermediates.Add(chain[i]);
            }

            context = SslStreamCertificateContext.Create(withKey, intermediates, offline: true);
            problem = string.Empty;
            return true;
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            problem = ex.Message;
            return false;
        }
    }

    private void Watch(string file)
    {
        try
        {
            var watcher = new FileSystemWatcher(Path.GetDirectoryName(file)!)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            watcher.Changed += OnFileEvent;
            watcher.Created += OnFileEvent;
            watcher.Deleted += OnFileEvent;
            watcher.Renamed += OnFileEvent;
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException)
        {
            Log.WatchFailed(_logger, file, ex.Message); // the once-a-second check still sees changes
        }
    }

    private void OnFileEvent(object sender, FileSystemEventArgs e)
    {
        if (IsOurs(e.FullPath) || (e is RenamedEventArgs renamed && IsOurs(renamed.OldFullPath)))
        {
            Volatile.Write(ref _changed, 1);
        }
    }

    private bool IsOurs(string path) =>
        string.Equals(path, _certificateFile, StringComparison.Ordinal) || string.Equals(path, _keyFile, StringComparison.Ordinal);

    private Stamp StampOf() => new(Of(_certificateFile), Of(_keyFile));

    private static (DateTime, long) Of(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }

    public void Dispose()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }
    }

    private readonly record struct Stamp((DateTime Written, long Length) Certificate, (DateTime Written, long Length) Key);

    private static partial class Log
    {
        [LoggerMessage(EventId = 280, Level = LogLevel.Information, Message = "API certificate from {File}: {Subject}, serial {Serial}, valid until {NotAfter:O}")]
        public static partial void Loaded(ILogger logger, string file, string subject, string serial, DateTime notAfter);

        [LoggerMessage(EventId = 281, Level = LogLevel.Information, Message = "API certificate reloaded from {File}: {Subject}, serial {Serial}, valid until {NotAfter:O}; new connections get it")]
        public static partial void Reloaded(ILogger logger, string file, string subject, string serial, DateTime notAfter);

        [LoggerMessage(EventId = 282, Level = LogLevel.Error, Message = "The changed API certificate {File} with key {KeyFile} does not load, so the previous certificate stays: {Problem}")]
        public static partial void ReloadFailed(ILogger logger, string file, string keyFile, string problem);

        [LoggerMessage(EventId = 283, Level = LogLevel.Warning, Message = "Cannot watch {File} for changes ({Reason}); changes are still seen within a second on the next connection")]
        public static partial void WatchFailed(ILogger logger, string file, string reason);
    }
}

/// <summary>
/// An API certificate issued by a cluster CA (a control plane's, or a standalone node's node-local CA), for loopback,
/// the host name, the listener's address and any extra names; a new one is issued after two thirds of its lifetime.
/// </summary>
internal sealed partial class ApiSelfIssuedCertificate : IApiCertificateSource
{
    private readonly ClusterCertificateAuthority _authority;
    private readonly List<string> _dnsNames = ["localhost"];
    private readonly List<IPAddress> _addresses = [IPAddress.Loopback, IPAddress.IPv6Loopback];
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private SslStreamCertificateContext? _current;
    private DateTime _renewAt;

    public ApiSelfIssuedCertificate(ClusterCertificateAuthority authority, IPEndPoint listener, WarpGridApiTlsOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(options);
        _authority = authority;
        _lifetime = options.SelfIssuedLifetime;
        _time = time ?? TimeProvider.System;
        _logger = logger;
        _dnsNames.Add(Environment.MachineName);
        try
        {
            _dnsNames.Add(Dns.GetHostName());
        }
        catch (System.Net.Sockets.SocketException)
        {
            // the machine name is in already
        }

        if (listener.Address.Equals(IPAddress.Any) || listener.Address.Equals(IPAddress.IPv6Any))
        {
            _addresses.AddRange(InterfaceAddresses());
        }
        else
        {
            _addresses.Add(listener.Address);
        }

        foreach (var name in options.ServerNames)
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                _addresses.Add(ip);
            }
            else
            {
                _dnsNames.Add(name);
            }
        }
    }

    public SslStreamCertificateContext Current
    {
        get
        {
            lock (_lock)
            {
                if (_current is null || _time.GetUtcNow().UtcDateTime >= _renewAt)
                {
                    var certificate = _authority.IssueServer("warpd-api", _dnsNames, _addresses, _lifetime);
                    var from = certificate.NotBefore.ToUniversalTime();
                    _renewAt = from + ((certificate.NotAfter.ToUniversalTime() - from) * 2 / 3);
                    _current = SslStreamCertificateContext.Create(certificate, null, offline: true);
                    Log.Issued(_logger, certificate.SerialNumber, certificate.NotAfter.ToUniversalTime(), _renewAt);
                }

                return _current;
            }
        }
    }

    /// <summary>Writes the CA certificate (public, PEM) to <paramref name="path"/>, replacing it atomically.</summary>
    public static void WriteCaCertificate(ClusterCertificateAuthority authority, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, authority.Certificate.ExportCertificatePem() + "\n");
        File.Move(temp, path, overwrite: true);
    }

    private static IEnumerable<IPAddress> InterfaceAddresses()
    {
        NetworkInterface[] interfaces;
        try
        {
            interfaces = NetworkInterface.GetAllNetworkInterfaces();
        }
        catch (NetworkInformationException)
        {
            yield break;
        }

        foreach (var nic in interfaces)
        {
            if (nic.OperationalStatus is not (OperationalStatus.Up or OperationalStatus.Unknown))
            {
                continue;
            }

            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                var address = unicast.Address;
                if (!address.IsIPv6LinkLocal && !IPAddress.IsLoopback(address))
                {
                    yield return address;
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 284, Level = LogLevel.Information, Message = "API certificate issued by the cluster CA: serial {Serial}, valid until {NotAfter:O}, renewed from {RenewAt:O}")]
        public static partial void Issued(ILogger logger, string serial, DateTime notAfter, DateTime renewAt);
    }
}
