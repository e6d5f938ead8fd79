using Wasmtime;

namespace WarpGrid.Core.Runtime.Pooling;

/// <summary>How a guest invocation ended.</summary>
public enum InvocationOutcome
{
    /// <summary>The guest ran to completion (or exited with code 0).</summary>
    Completed,

    /// <summary>The guest ran past the request deadline and was interrupted.</summary>
    Timeout,

    /// <summary>The guest trapped after its memory reached the deployment's memory limit.</summary>
    OutOfMemory,

    /// <summary>The guest exhausted its stack.</summary>
    StackOverflow,

    /// <summary>The guest trapped (unreachable, out-of-bounds access, division by zero...).</summary>
    Trap,

    /// <summary>The guest called <c>proc_exit</c> with a non-zero code.</summary>
    Exit,

    /// <summary>A host function failed while the guest called it.</summary>
    HostError,

    /// <summary>The guest wrote more to stdout than the node allows.</summary>
    ResponseTooLarge,

    /// <summary>The guest's output was not a valid CGI response.</summary>
    BadResponse,

    /// <summary>No instance was free and the wait queue was full or the wait timed out.</summary>
    Overloaded,

    /// <summary>A new instance could not be created (node instance cap reached, or instantiation failed).</summary>
    Unavailable,
}

/// <summary>Why an invocation failed, for the response and the log.</summary>
/// <param name="Outcome">The kind of failure.</param>
/// <param name="Message">A sentence for humans.</param>
/// <param name="TrapCode">The Wasmtime trap code, for traps.</param>
/// <param name="ExitCode">The exit code, for <see cref="InvocationOutcome.Exit"/>.</param>
public sealed record InvocationFault(InvocationOutcome Outcome, string Message, TrapCode? TrapCode = null, int? ExitCode = null)
{
    /// <summary>The HTTP status this fault maps to.</summary>
    public int HttpStatus => Outcome switch
    {
        InvocationOutcome.Timeout => 504,
        InvocationOutcome.Overloaded or InvocationOutcome.Unavailable => 503,
        InvocationOutcome.BadResponse => 502,
        _ => 500,
    };

    /// <summary>A short machine-readable name, e.g. <c>timeout</c>, <c>out_of_memory</c>.</summary>
    public string Code => Outcome switch
    {
        InvocationOutcome.Timeout => "timeout",
        InvocationOutcome.OutOfMemory => "out_of_memory",
        InvocationOutcome.StackOverflow => "stack_overflow",
        InvocationOutcome.Trap => "trap",
        InvocationOutcome.Exit => "exit",
        InvocationOutcome.HostError => "host_error",
        InvocationOutcome.ResponseTooLarge => "response_too_large",
        InvocationOutcome.BadResponse => "bad_response",
        InvocationOutcome.Overloaded => "overloaded",
        InvocationOutcome.Unavailable => "unavailable",
        _ => "ok",
    };

    /// <summary>True when the instance that produced this fault must not be used again.</summary>
    public bool PoisonsInstance => Outcome is InvocationOutcome.Timeout or InvocationOutcome.OutOfMemory or InvocationOutcome.StackOverflow
        or InvocationOutcome.Trap or InvocationOutcome.HostError or InvocationOutcome.Exit;
}

/// <summary>The result of one WAGI invocation: a response, or a fault. Dispose it after sending the body.</summary>
public readonly struct InvocationResult : IDisposable
{
    internal InvocationResult(Wagi.CgiResponse? response, InvocationFault? fault, string? instanceId, bool coldStart)
    {
        Response = response;
        Fault = fault;
        InstanceId = instanceId;
        ColdStart = coldStart;
    }

    /// <summary>The parsed response, when the guest completed and wrote a valid one.</summary>
    public Wagi.CgiResponse? Response { get; }

    /// <summary>Why the invocation failed, otherwise.</summary>
    public InvocationFault? Fault { get; }

    /// <summary>The instance that ran the request, if one did.</summary>
    public string? InstanceId { get; }

    /// <summary>True when the request had to wait for a new instance to be created.</summary>
    public bool ColdStart { get; }

    public void Dispose() => Response?.Dispose();
}
