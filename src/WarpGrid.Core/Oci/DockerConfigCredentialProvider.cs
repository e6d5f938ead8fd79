using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace WarpGrid.Core.Oci;

/// <summary>Settings of <see cref="DockerConfigCredentialProvider"/>.</summary>
public sealed class DockerConfigCredentialProviderOptions
{
    /// <summary>
    /// The <c>config.json</c> to read and write. When null: <c>$DOCKER_CONFIG/config.json</c> when <c>DOCKER_CONFIG</c> is
    /// set, else <c>~/.docker/config.json</c> (Docker's lookup).
    /// </summary>
    public string? ConfigPath { get; set; }

    /// <summary>
    /// Reads an environment variable (<c>DOCKER_CONFIG</c>, <c>HOME</c>, <c>PATH</c>); the process environment when null.
    /// Credential helpers are looked up on this <c>PATH</c> and run with it.
    /// </summary>
    public Func<string, string?>? GetEnvironmentVariable { get; set; }

    /// <summary>How long a credential helper may take to answer before it is killed (default 10 s).</summary>
    public TimeSpan HelperTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an answer (including "no credentials") is reused before the file or helper is asked again (default 1 minute; zero: never reused).</summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Credentials from Docker's <c>config.json</c>: <c>auths</c> entries (<c>auth</c>, <c>username</c>/<c>password</c>,
/// <c>identitytoken</c>), per-registry credential helpers (<c>credHelpers</c>) and the default helper (<c>credsStore</c>),
/// run as <c>docker-credential-&lt;name&gt;</c> from <c>PATH</c>. Also stores and erases credentials for <c>warp registry login/logout</c>.
/// </summary>
/// <remarks>
/// <para>Registry keys match the way Docker matches them: <c>host:port</c>, <c>https://host:port</c> and
/// <c>https://host/v1/</c> name the same registry, and <c>docker.io</c> is stored as <c>https://index.docker.io/v1/</c>.</para>
/// <para>A helper that has no credentials for the registry means anonymous access. A missing, failing or hanging helper
/// and an unreadable file are an <see cref="OciCredentialException"/>. Passwords and secrets never appear in a message or a log.</para>
/// <para>Thread-safe.</para>
/// </remarks>
public sealed partial class DockerConfigCredentialProvider : IOciCredentialProvider
{
    /// <summary>The user name that marks a secret as an identity (refresh) token, as Docker's helpers use it.</summary>
    public const string IdentityTokenUsername = "<token>";

    /// <summary>The key Docker stores Docker Hub's credentials under.</summary>
    public const string DockerHubKey = "https://index.docker.io/v1/";

    private const string HelperPrefix = "docker-credential-";

    private readonly DockerConfigCredentialProviderOptions _options;
    private readonly Func<string, string?> _getEnv;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, CacheEntry> _cache = new(StringComparer.OrdinalIgnoreCase);
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>Creates the provider.</summary>
    /// <param name="options">Settings; defaults (Docker's config lookup, the process environment) when null.</param>
    /// <param name="logger">Receives where each credential came from (never the secret).</param>
    /// <param name="timeProvider">The clock for <see cref="DockerConfigCredentialProviderOptions.CacheDuration"/>.</param>
    /// <exception cref="ArgumentException">A timeout is not positive, or the cache duration is negative.</exception>
    public DockerConfigCredentialProvider(DockerConfigCredentialProviderOptions? options = null, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? new DockerConfigCredentialProviderOptions();
        if (_options.HelperTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"DockerConfigCredentialProviderOptions.HelperTimeout must be positive (is {_options.HelperTimeout}).", nameof(options));
        }

        if (_options.CacheDuration < TimeSpan.Zero)
        {
            throw new ArgumentException($"DockerConfigCredentialProviderOptions.CacheDuration must not be negative (is {_options.CacheDuration}).", nameof(options));
        }

        _getEnv = _options.GetEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        ConfigPath = _options.ConfigPath ?? DefaultConfigPath(_getEnv);
    }

    /// <summary>The <c>config.json</c> this provider reads and writes (it need not exist).</summary>
    public string ConfigPath { get; }

    /// <summary>Docker's config path: <c>$DOCKER_CONFIG/config.json</c>, else <c>$HOME/.docker/config.json</c>.</summary>
    /// <param name="getEnvironmentVariable">Reads an environment variable; the process environment when null.</param>
    public static string DefaultConfigPath(Func<string, string?>? getEnvironmentVariable = null)
    {
        Func<string, string?> env = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        if (env("DOCKER_CONFIG") is { Length: > 0 } dockerConfig)
        {
            return Path.Combine(dockerConfig, "config.json");
        }

        string home = env("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".docker", "config.json");
    }

    /// <summary>
    /// The host a registry key names, the way Docker compares keys: without <c>http(s)://</c> and without a path,
    /// lower-case, with Docker Hub's aliases (<c>index.docker.io</c>, <c>registry-1.docker.io</c>) as <c>docker.io</c>.
    /// </summary>
    public static string NormalizeRegistry(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        string host = key.Trim();
        foreach (string scheme in new[] { "https://", "http://" })
        {
            if (host.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
            {
                host = host[scheme.Length..];
                break;
            }
        }

        int slash = host.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            host = host[..slash];
        }

        host = host.ToLowerInvariant();
        return host is "index.docker.io" or "registry-1.docker.io" ? "docker.io" : host;
    }

    /// <summary>The key a registry's credentials are stored under and the server URL handed to helpers: <see cref="DockerHubKey"/> for Docker Hub, else the host.</summary>
    public static string ServerKey(string registry)
    {
        string host = NormalizeRegistry(registry);
        return host == "docker.io" ? DockerHubKey : host;
    }

    /// <inheritdoc />
    /// <exception cref="OciCredentialException">The file is unreadable or malformed, or a credential helper is missing, fails or hangs.</exception>
    public async ValueTask<OciCredential?> GetCredentialAsync(string registry, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(registry);
        string host = NormalizeRegistry(registry);
        if (_cache.TryGetValue(host, out CacheEntry? hit) && hit.Expires > _time.GetUtcNow())
        {
            return hit.Credential;
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_cache.TryGetValue(host, out hit) && hit.Expires > _time.GetUtcNow())
            {
                return hit.Credential;
            }

            OciCredential? credential = await LookUpAsync(registry, host, cancellationToken).ConfigureAwait(false);
            if (_options.CacheDuration > TimeSpan.Zero)
            {
                _cache[host] = new CacheEntry(credential, _time.GetUtcNow() + _options.CacheDuration);
            }

            return credential;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Forgets cached answers (after a login or logout through another instance).</summary>
    public void ClearCache() => _cache.Clear();

    /// <summary>
    /// Stores <paramref name="credential"/> for <paramref name="registry"/>: through the registry's credential helper
    /// (<c>credHelpers</c>, else <c>credsStore</c>) with its <c>store</c> verb, else as <c>auths[key].auth</c> in the
    /// file. The file is written with mode 0600 (created with its directory when missing); its other settings are kept.
    /// </summary>
    /// <returns>Where the credential went: the file path or <c>docker-credential-&lt;name&gt;</c>.</returns>
    /// <exception cref="OciCredentialException">The file is malformed or cannot be written, or the helper fails.</exception>
    public async Task<string> StoreAsync(string registry, OciCredential credential, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(registry);
        ArgumentNullException.ThrowIfNull(credential);
        string host = NormalizeRegistry(registry);
        string key = ServerKey(registry);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            JsonObject root = await ReadFileAsync(cancellationToken).ConfigureAwait(false) ?? new JsonObject();
            string? helper = HelperFor(root, host);
            JsonObject auths = root["auths"] as JsonObject ?? new JsonObject();
            root["auths"] = auths;
            RemoveMatching(auths, host);
            string destination;
            if (helper is not null)
            {
                string input = JsonSerializer.Serialize(new Dictionary<string, string> { ["ServerURL"] = key, ["Username"] = credential.Username, ["Secret"] = credential.Password });
                HelperResult result = await RunHelperAsync(helper, "store", input, registry, cancellationToken).ConfigureAwait(false);
                if (result.ExitCode != 0)
                {
                    throw new OciCredentialException($"The credential helper {HelperPrefix}{helper} could not store the credentials for {registry} (exit {result.ExitCode}: {Summary(result)}).", registry);
                }

                auths[key] = new JsonObject(); // Docker keeps an empty entry, so the file still lists the registry
                destination = HelperPrefix + helper;
            }
            else
            {
                auths[key] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(credential.Username + ":" + credential.Password)) };
                destination = ConfigPath;
            }

            await WriteFileAsync(root, cancellationToken).ConfigureAwait(false);
            _cache.Clear();
            Log.Stored(_logger, host, credential.Username, destination);
            return destination;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Removes the credentials for <paramref name="registry"/> from the file and, when one is configured, from its helper (<c>erase</c>).</summary>
    /// <returns>True when there was something to remove.</returns>
    /// <exception cref="OciCredentialException">The file is malformed or cannot be written, or the helper fails.</exception>
    public async Task<bool> EraseAsync(string registry, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(registry);
        string host = NormalizeRegistry(registry);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            JsonObject? root = await ReadFileAsync(cancellationToken).ConfigureAwait(false);
            if (root is null)
            {
                return false;
            }

            bool removed = false;
            if (HelperFor(root, host) is { } helper)
            {
                HelperResult result = await RunHelperAsync(helper, "erase", ServerKey(registry), registry, cancellationToken).ConfigureAwait(false);
                if (result.ExitCode == 0)
                {
                    removed = true;
                }
                else if (!result.IsNotFound)
                {
                    throw new OciCredentialException($"The credential helper {HelperPrefix}{helper} could not erase the credentials for {registry} (exit {result.ExitCode}: {Summary(result)}).", registry);
                }
            }

            if (root["auths"] is JsonObject auths)
            {
                removed |= RemoveMatching(auths, host);
            }

            await WriteFileAsync(root, cancellationToken).ConfigureAwait(false);
            _cache.Clear();
            return removed;
        }
        finally
        {
            _lock.Release();
        }
    }

    // ---- lookup --------------------------------------------------------------------------------------------------------

    private async Task<OciCredential?> LookUpAsync(string registry, string host, CancellationToken cancellationToken)
    {
        JsonObject? root = await ReadFileAsync(cancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            Log.NoConfig(_logger, host, ConfigPath);
            return null;
        }

        if (HelperFor(root, host) is { } helper)
        {
            return await FromHelperAsync(helper, registry, host, cancellationToken).ConfigureAwait(false);
        }

        if (root["auths"] is not JsonObject auths)
        {
            return null;
        }

        foreach ((string key, JsonNode? value) in auths)
        {
            if (NormalizeRegistry(key) == host && value is JsonObject entry && FromEntry(entry, key) is { } credential)
            {
                Log.Found(_logger, host, credential.Username, ConfigPath);
                return credential;
            }
        }

        return null;
    }

    private OciCredential? FromEntry(JsonObject entry, string key)
    {
        string? identityToken = Text(entry, "identitytoken", key);
        string? username = Text(entry, "username", key);
        string? password = Text(entry, "password", key);
        if (Text(entry, "auth", key) is { Length: > 0 } auth)
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            }
            catch (FormatException)
            {
                throw new OciCredentialException($"{ConfigPath}: auths[\"{key}\"].auth is not base64 of user:password.", NormalizeRegistry(key));
            }

            int colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new OciCredentialException($"{ConfigPath}: auths[\"{key}\"].auth does not decode to user:password.", NormalizeRegistry(key));
            }

            username = decoded[..colon];
            password = decoded[(colon + 1)..];
        }

        if (!string.IsNullOrEmpty(identityToken))
        {
            return new OciCredential(IdentityTokenUsername, identityToken);
        }

        return string.IsNullOrEmpty(username) ? null : new OciCredential(username, password ?? "");
    }

    private string? Text(JsonObject entry, string name, string key)
    {
        JsonNode? node = entry[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue(out string? text))
        {
            return text;
        }

        throw new OciCredentialException($"{ConfigPath}: auths[\"{key}\"].{name} must be a string.", NormalizeRegistry(key));
    }

    private string? HelperFor(JsonObject root, string host)
    {
        if (root["credHelpers"] is JsonObject helpers)
        {
            foreach ((string key, JsonNode? value) in helpers)
            {
                if (NormalizeRegistry(key) == host)
                {
                    return HelperName(value, $"credHelpers[\"{key}\"]");
                }
            }
        }

        return root["credsStore"] is { } store ? HelperName(store, "credsStore") : null;
    }

    private string? HelperName(JsonNode? node, string setting)
    {
        if (node is JsonValue value && value.TryGetValue(out string? name))
        {
            if (name.Length == 0)
            {
                return null;
            }

            if (name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal))
            {
                throw new OciCredentialException($"{ConfigPath}: {setting} must name a helper (docker-credential-<name> on PATH), not a path ('{name}').");
            }

            return name;
        }

        throw new OciCredentialException($"{ConfigPath}: {setting} must be a string naming a credential helper.");
    }

    private async Task<OciCredential?> FromHelperAsync(string helper, string registry, string host, CancellationToken cancellationToken)
    {
        HelperResult result = await RunHelperAsync(helper, "get", ServerKey(registry), registry, cancellationToken).ConfigureAwait(false);
        if (result.IsNotFound)
        {
            Log.HelperHasNone(_logger, host, HelperPrefix + helper);
            return null;
        }

        if (result.ExitCode != 0)
        {
            throw new OciCredentialException($"The credential helper {HelperPrefix}{helper} failed to get the credentials for {registry} (exit {result.ExitCode}: {Summary(result)}).", registry);
        }

        string? username = null;
        string? secret = null;
        try
        {
            using JsonDocument document = JsonDocument.Parse(result.Stdout);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (JsonProperty property in document.RootElement.EnumerateObject())
                {
                    if (property.Value.ValueKind != JsonValueKind.String)
                    {
                        continue;
                    }

                    if (property.NameEquals("Username"))
                    {
                        username = property.Value.GetString();
                    }
                    else if (property.NameEquals("Secret"))
                    {
                        secret = property.Value.GetString();
                    }
                }
            }
        }
        catch (JsonException)
        {
            // reported below without echoing the output, which may hold the secret
        }

        if (secret is null)
        {
            throw new OciCredentialException($"The credential helper {HelperPrefix}{helper} answered 'get' for {registry} with something other than JSON {{\"ServerURL\",\"Username\",\"Secret\"}}.", registry);
        }

        if (secret.Length == 0)
        {
            return null;
        }

        var credential = new OciCredential(username ?? "", secret);
        Log.Found(_logger, host, credential.Username, HelperPrefix + helper);
        return credential;
    }

    // ---- helpers -------------------------------------------------------------------------------------------------------

    private sealed record HelperResult(int ExitCode, string Stdout, string Stderr)
    {
        /// <summary>docker-credential-helpers answer "credentials not found in native keychain" (exit 1) when they hold nothing for the server.</summary>
        public bool IsNotFound => ExitCode != 0 &&
            (Stdout.Contains("credentials not found", StringComparison.OrdinalIgnoreCase) || Stderr.Contains("credentials not found", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>A helper's error output, one line, bounded. Helpers print errors, not secrets, on failure.</summary>
    private static string Summary(HelperResult result)
    {
        string text = (result.Stderr.Trim().Length > 0 ? result.Stderr : result.Stdout).Trim().ReplaceLineEndings(" ");
        if (text.Length == 0)
        {
            return "no output";
        }

        return text.Length > 300 ? text[..300] + "…" : text;
    }

    private string? FindHelper(string helper)
    {
        string file = HelperPrefix + helper;
        foreach (string dir in (_getEnv("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, file);
            if (File.Exists(candidate))
            {
                return candidate;
            }

            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe"))
            {
                return candidate + ".exe";
            }
        }

        return null;
    }

    private async Task<HelperResult> RunHelperAsync(string helper, string verb, string input, string registry, CancellationToken cancellationToken)
    {
        string name = HelperPrefix + helper;
        string executable = FindHelper(helper) ?? throw new OciCredentialException(
            $"The credential helper {name} configured in {ConfigPath} for {registry} was not found on PATH; install it or remove it from the file.", registry);

        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { verb },
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_getEnv("PATH") is { } path)
        {
            start.Environment["PATH"] = path;
        }

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            throw new OciCredentialException($"The credential helper {name} ({executable}) could not be started for {registry}: {ex.Message}.", registry, ex);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.HelperTimeout);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            try
            {
                await process.StandardInput.WriteAsync(input.AsMemory(), timeout.Token).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // the helper exited without reading its input; its exit code tells
            }

            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            return new HelperResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Kill(process);
            throw new OciCredentialException(
                $"The credential helper {name} did not answer '{verb}' for {registry} within {_options.HelperTimeout.TotalSeconds:0.#} s and was stopped.", registry);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    // ---- the file ------------------------------------------------------------------------------------------------------

    private async Task<JsonObject?> ReadFileAsync(CancellationToken cancellationToken)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(ConfigPath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OciCredentialException($"Cannot read the Docker config {ConfigPath}: {ex.Message}", null, ex);
        }

        if (Array.TrueForAll(bytes, b => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
        {
            return new JsonObject();
        }

        try
        {
            return JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }) as JsonObject
                ?? throw new OciCredentialException($"The Docker config {ConfigPath} is not a JSON object.");
        }
        catch (JsonException ex)
        {
            // JsonException messages give the position, not the content.
            throw new OciCredentialException($"The Docker config {ConfigPath} is not valid JSON: {ex.Message}", null, ex);
        }
    }

    private async Task WriteFileAsync(JsonObject root, CancellationToken cancellationToken)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(ConfigPath))!;
        string temp = Path.Combine(directory, "." + Path.GetFileName(ConfigPath) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            if (!Directory.Exists(directory))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(directory);
                }
                else
                {
                    Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }

            var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using (var stream = new FileStream(temp, fileOptions))
            {
                await using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                root.WriteTo(writer);
                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.WriteByte((byte)'\n');
            }

            File.Move(temp, ConfigPath, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new OciCredentialException($"Cannot write the Docker config {ConfigPath}: {ex.Message}", null, ex);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // left behind
        }
    }

    private static bool RemoveMatching(JsonObject auths, string host)
    {
        List<string> keys = [.. auths.Select(a => a.Key).Where(k => NormalizeRegistry(k) == host)];
        foreach (string key in keys)
        {
            auths.Remove(key);
        }

        return keys.Count > 0;
    }

    private sealed record CacheEntry(OciCredential? Credential, DateTimeOffset Expires);

    private static partial class Log
    {
        [LoggerMessage(EventId = 3420, Level = LogLevel.Debug, Message = "Credentials for registry {Registry} (user '{Username}') from {Source}.")]
        public static partial void Found(ILogger logger, string registry, string username, string source);

        [LoggerMessage(EventId = 3421, Level = LogLevel.Debug, Message = "No Docker config at {Path}: registry {Registry} is accessed anonymously.")]
        public static partial void NoConfig(ILogger logger, string registry, string path);

        [LoggerMessage(EventId = 3422, Level = LogLevel.Debug, Message = "The credential helper {Helper} has no credentials for registry {Registry}: anonymous access.")]
        public static partial void HelperHasNone(ILogger logger, string registry, string helper);

        [LoggerMessage(EventId = 3423, Level = LogLevel.Information, Message = "Stored credentials for registry {Registry} (user '{Username}') in {Destination}.")]
        public static partial void Stored(ILogger logger, string registry, string username, string destination);
    }
}
