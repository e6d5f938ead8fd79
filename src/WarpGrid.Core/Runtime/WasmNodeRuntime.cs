using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using WarpGrid.Core.Runtime.Components;
using WarpGrid.Core.Runtime.Pooling;
using WarpGrid.Core.Runtime.Wasi;
using Wasmtime;

namespace WarpGrid.Core.Runtime;

/// <summary>
/// The node's WebAssembly runtime: one engine, the compiled-module cache, the shared WASI linker and the per-node
/// instance budget. Deployments get an <see cref="InstancePool"/> from <see cref="CreatePool"/>.
/// </summary>
public sealed class WasmNodeRuntime : IDisposable
{
    private readonly ILoggerFactory _loggerFactory;

    public WasmNodeRuntime(WasmRuntimeOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        Options = options;
        TimeProvider = timeProvider ?? TimeProvider.System;
        Engine = new WasmEngineHost(options, _loggerFactory.CreateLogger<WasmEngineHost>());
        Modules = new ModuleCache(Engine, _loggerFactory.CreateLogger<ModuleCache>());
        Linker = new Linker(Engine.Engine);
        WasiPreview1.Define(Linker);
        GuestLogging.Define(Linker);
        Budget = new NodeInstanceBudget(options.MaxInstancesPerNode);
        Logs = new Observability.GuestLogHub(Math.Max(1, options.LogRecordsPerDeployment), TimeProvider);
    }

    /// <summary>The guests' log records (a bounded ring per deployment).</summary>
    public Observability.GuestLogHub Logs { get; }

    /// <summary>The runtime settings.</summary>
    public WasmRuntimeOptions Options { get; }

    /// <summary>The engine and its epoch ticker.</summary>
    public WasmEngineHost Engine { get; }

    /// <summary>The compiled-module cache.</summary>
    public ModuleCache Modules { get; }

    /// <summary>The linker holding the host functions every guest may import.</summary>
    public Linker Linker { get; }

    /// <summary>The per-node cap on live instances.</summary>
    public NodeInstanceBudget Budget { get; }

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>
    /// Checks that a compiled module can serve the WAGI http trigger on this node: it exports <c>_start</c> and
    /// <c>memory</c>, and imports nothing the host does not provide. Throws <see cref="WasmValidationException"/>
    /// listing every problem.
    /// </summary>
    public static void ValidateWagiModule(CompiledModule module) => ValidateWagiModule(module, loggingGranted: true);

    /// <summary>
    /// As <see cref="ValidateWagiModule(CompiledModule)"/>; the log import (<see cref="GuestLogging"/>) is provided
    /// only when <paramref name="loggingGranted"/> (<c>[capabilities] logging</c>).
    /// </summary>
    public static void ValidateWagiModule(CompiledModule module, bool loggingGranted)
    {
        ArgumentNullException.ThrowIfNull(module);
        var problems = new List<string>();
        var start = module.Module.Exports.OfType<FunctionExport>().FirstOrDefault(e => e.Name == "_start");
        if (start is null)
        {
            var reactor = module.Module.Exports.Any(e => e.Name == "_initialize");
            problems.Add(reactor
                ? "the module is a WASI reactor (exports _initialize, not _start); the WAGI http trigger runs WASI commands: build with a main function and without -mexec-model=reactor"
                : "the module does not export _start; the WAGI http trigger runs WASI commands (a program with a main function built for wasm32-wasi)");
        }
        else if (start.Parameters.Count != 0 || start.Results.Count != 0)
        {
            problems.Add("the module's _start export must take no parameters and return nothing");
        }

        if (!module.Module.Exports.OfType<MemoryExport>().Any(e => e.Name == "memory"))
        {
            problems.Add("the module does not export a memory named \"memory\"");
        }

        foreach (var import in module.Module.Imports)
        {
            if (GuestLogging.IsLogModule(import.ModuleName))
            {
                if (import is not FunctionImport log || import.Name != GuestLogging.FunctionName)
                {
                    problems.Add($"import {import.ModuleName}.{import.Name} is not provided by this node ({import.ModuleName} provides only the function {GuestLogging.FunctionName})");
                }
                else if (!log.Parameters.SequenceEqual(GuestLogging.Parameters) || log.Results.Count != 0)
                {
                    problems.Add($"import {import.ModuleName}.{import.Name} has signature ({string.Join(", ", log.Parameters)}) -> ({string.Join(", ", log.Results)}) but the log import is (level i32, context_ptr i32, context_len i32, message_ptr i32, message_len i32) -> ()");
                }
                else if (!loggingGranted)
                {
                    problems.Add($"import {import.ModuleName}.{import.Name} needs the logging capability, which this manifest denies ([capabilities] logging = false): grant it or remove the import");
                }

                continue;
            }

            if (import.ModuleName != WasiPreview1.ModuleName)
            {
                problems.Add($"import {import.ModuleName}.{import.Name} is not provided by this node (only {WasiPreview1.ModuleName} functions and the log import {GuestLogging.WasiLoggingVersioned}.{GuestLogging.FunctionName} are)");
                continue;
            }

            if (import is not FunctionImport function || !WasiPreview1.Signatures.TryGetValue(import.Name, out var signature))
            {
                problems.Add($"import {import.ModuleName}.{import.Name} is not a WASI preview 1 function this node provides");
                continue;
            }

            if (!function.Parameters.SequenceEqual(signature.Parameters) || !function.Results.SequenceEqual(signature.Results))
            {
                problems.Add($"import {import.ModuleName}.{import.Name} has signature ({string.Join(", ", function.Parameters)}) -> ({string.Join(", ", function.Results)}) but WASI preview 1 defines ({string.Join(", ", signature.Parameters)}) -> ({string.Join(", ", signature.Results)})");
            }
        }

        if (problems.Count > 0)
        {
            throw new WasmValidationException(string.Join("; ", problems));
        }
    }

    /// <summary>Creates the instance pool of a deployment and pre-warms its minimum instances.</summary>
    public InstancePool CreatePool(PoolSettings settings, CompiledModule module)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(module);
        if (settings.MemoryLimitBytes > Options.MaxMemoryPerInstanceBytes)
        {
            throw new WasmValidationException(
                $"memory_limit {settings.MemoryLimitBytes} bytes is above this node's maximum of {Options.MaxMemoryPerInstanceBytes} bytes (WarpGrid:Runtime:MaxMemoryPerInstanceBytes)");
        }

        ValidateWagiModule(module, settings.Logging);
        var pool = new InstancePool(this, settings, module, _loggerFactory.CreateLogger<InstancePool>(), _loggerFactory.CreateLogger("WarpGrid.Guest"));
        try
        {
            pool.WarmUp();
        }
        catch
        {
            pool.DisposeNow();
            throw;
        }

        return pool;
    }

    /// <summary>
    /// Checks that a compiled component can serve the http trigger: it exports <c>wasi:http/incoming-handler@0.2.x</c>
    /// and imports nothing the host does not provide (nor <c>wasi:logging</c> when <paramref name="loggingGranted"/> is
    /// false: <c>[capabilities] logging = false</c>). Throws <see cref="WasmValidationException"/> listing every
    /// unsatisfied import by name.
    /// </summary>
    public static string ValidateHttpComponent(CompiledComponent component, bool loggingGranted = true)
    {
        ArgumentNullException.ThrowIfNull(component);
        var problems = new List<string>();
        var export = component.FindExport("wasi:http/incoming-handler");
        if (export is null)
        {
            problems.Add($"the component does not export wasi:http/incoming-handler@0.2.x (it exports {(component.Exports.Count == 0 ? "nothing" : string.Join(", ", component.Exports))}); the http trigger runs wasi:http/proxy handlers, use trigger = \"cli\" for wasi:cli/run commands");
        }

        problems.AddRange(NativeComponentLinker.Check(component));
        if (!loggingGranted)
        {
            foreach (var import in component.Imports.Where(i => i.Interface == WasiLogging.Interface))
            {
                foreach (var function in import.Functions)
                {
                    problems.Add($"import {import.Name}.{function} needs the logging capability, which this manifest denies ([capabilities] logging = false): grant it or remove the import");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new WasmValidationException(string.Join("; ", problems));
        }

        return export!;
    }

    /// <summary>Creates the pool of an http-triggered component deployment and pre-instantiates its instances.</summary>
    public ComponentHttpPool CreateComponentPool(PoolSettings settings, CompiledComponent component, IEnumerable<string>? httpOutbound = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(component);
        if (settings.MemoryLimitBytes > Options.MaxMemoryPerInstanceBytes)
        {
            throw new WasmValidationException(
                $"memory_limit {settings.MemoryLimitBytes} bytes is above this node's maximum of {Options.MaxMemoryPerInstanceBytes} bytes (WarpGrid:Runtime:MaxMemoryPerInstanceBytes)");
        }

        var export = ValidateHttpComponent(component, settings.Logging);
        var policy = new OutboundHttpPolicy(httpOutbound ?? []);
        var pool = new ComponentHttpPool(this, settings, component, export, policy, OutboundClient, _loggerFactory.CreateLogger<ComponentHttpPool>(), _loggerFactory.CreateLogger("WarpGrid.Guest"));
        try
        {
            pool.WarmUp();
        }
        catch
        {
            pool.DisposeNow();
            throw;
        }

        return pool;
    }

    /// <summary>The linker of <c>wasi:cli/run</c> commands (Wasmtime's WASI 0.2), built on first use.</summary>
    internal NativeComponentLinker CommandLinker => _commandLinker.Value;

    private Lazy<NativeComponentLinker>? _commandLinkerField;

    private Lazy<NativeComponentLinker> _commandLinker => _commandLinkerField ??= new Lazy<NativeComponentLinker>(() => NativeComponentLinker.ForCommand(Engine.Engine));

    /// <summary>The client guests' outbound <c>wasi:http</c> requests use (no proxy, no redirects, no cookies).</summary>
    public HttpMessageInvoker OutboundClient => _outboundClient.Value;

    private readonly Lazy<HttpMessageInvoker> _outboundClient = new(() => new HttpMessageInvoker(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        ConnectCallback = ConnectOutboundAsync,
    }));

    /// <summary>
    /// Opens the TCP connection of a guest's outbound request within its <c>request-options.connect-timeout</c> (and
    /// the request's deadline): past it the request fails with <c>connection-timeout</c>, as in Wasmtime's wasi:http.
    /// </summary>
    private static async ValueTask<Stream> ConnectOutboundAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        context.InitialRequestMessage.Options.TryGetValue(OutboundTimeouts.Key, out var timeouts);
        timeouts?.Connecting();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeouts is not null)
        {
            limit.CancelAfter(timeouts.ConnectLimit());
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && timeouts is not null)
        {
            socket.Dispose();
            var code = timeouts.DeadlinePassed ? "HTTP-response-timeout" : "connection-timeout";
            throw new OutboundHttpException(new HttpErrorCode(code), ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        timeouts?.Connected();
        return new NetworkStream(socket, ownsSocket: true);
    }

    public void Dispose()
    {
        if (_outboundClient.IsValueCreated)
        {
            _outboundClient.Value.Dispose();
        }

        if (_commandLinkerField is { IsValueCreated: true } commands)
        {
            commands.Value.Dispose();
        }

        Linker.Dispose();
        Engine.Dispose();
    }
}
