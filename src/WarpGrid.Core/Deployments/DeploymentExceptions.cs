namespace WarpGrid.Core.Deployments;

/// <summary>One problem with a deployment request, naming where it is.</summary>
/// <param name="Field">The field or part, e.g. <c>runtime.max_instances</c> or <c>module</c>.</param>
/// <param name="Message">What is wrong and what is allowed.</param>
/// <param name="File">The file, for manifest errors.</param>
/// <param name="Line">1-based line, for manifest errors.</param>
/// <param name="Column">1-based column, for manifest errors.</param>
public sealed record DeploymentError(string Field, string Message, string? File = null, int? Line = null, int? Column = null)
{
    /// <inheritdoc />
    public override string ToString() => Line is null ? $"{Field}: {Message}" : $"{File}:{Line}:{Column}: {Field}: {Message}";
}

/// <summary>The deployment request is invalid; nothing was changed.</summary>
public sealed class DeploymentValidationException(IReadOnlyList<DeploymentError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    /// <summary>Every problem found.</summary>
    public IReadOnlyList<DeploymentError> Errors { get; } = errors;
}

/// <summary>The request conflicts with the current state (e.g. a route already taken); nothing was changed.</summary>
public sealed class DeploymentConflictException(string message) : Exception(message);

/// <summary>No deployment has that name.</summary>
public sealed class DeploymentNotFoundException(string name) : Exception($"no deployment named '{name}'")
{
    /// <summary>The name asked for.</summary>
    public string Name { get; } = name;
}

/// <summary>The module's source (an OCI registry) could not be reached; nothing was changed.</summary>
public sealed class DeploymentSourceUnavailableException(string message, Exception? innerException = null) : Exception(message, innerException);
