using System.Globalization;
using System.Text;

namespace WarpGrid.Core.Manifest;

/// <summary>Writes a <see cref="WarpManifest"/> as canonical TOML.</summary>
public static class ManifestWriter
{
    /// <summary>
    /// Writes every section and every field explicitly (defaults included, <see langword="null"/> fields omitted),
    /// in a fixed order, with durations and sizes in canonical form. Parsing the result with
    /// <see cref="ManifestParser.Parse(string, string)"/> gives a manifest equal to <paramref name="manifest"/>.
    /// <see cref="WarpManifest.SourcePath"/> is not written.
    /// </summary>
    /// <param name="manifest">The manifest to write.</param>
    /// <returns>The TOML text, with <c>\n</c> line endings.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="manifest"/> is <see langword="null"/>.</exception>
    public static string ToToml(WarpManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var w = new StringBuilder();

        var package = manifest.Package;
        w.Append("[package]\n");
        Line(w, "name", Str(package.Name));
        if (package.Namespace != PackageSection.DefaultNamespace)
        {
            Line(w, "namespace", Str(package.Namespace));
        }

        Line(w, "version", Str(package.Version));
        if (package.Description is not null)
        {
            Line(w, "description", Str(package.Description));
        }

        Line(w, "authors", Array(package.Authors));
        if (package.Labels.Count > 0)
        {
            Line(w, "labels", InlineTable(package.Labels));
        }

        var build = manifest.Build;
        w.Append("\n[build]\n");
        if (build.Lang is { } lang)
        {
            Line(w, "lang", Str(ManifestNames.ToToml(lang)));
        }

        if (build.Source is not null)
        {
            Line(w, "source", Str(build.Source));
        }

        if (build.Command is not null)
        {
            Line(w, "command", Str(build.Command));
        }

        Line(w, "output", Str(build.Output));

        var runtime = manifest.Runtime;
        w.Append("\n[runtime]\n");
        Line(w, "trigger", Str(ManifestNames.ToToml(runtime.Trigger)));
        Line(w, "min_instances", Int(runtime.MinInstances));
        Line(w, "max_instances", Int(runtime.MaxInstances));
        Line(w, "request_timeout", Str(DurationParser.Format(runtime.RequestTimeout)));
        Line(w, "route", Str(runtime.Route));
        if (runtime.Host is not null)
        {
            Line(w, "host", Str(runtime.Host));
        }

        w.Append("\n[runtime.resources]\n");
        Line(w, "memory_limit", Str(ByteSize.Format(runtime.Resources.MemoryLimitBytes)));
        Line(w, "cpu_weight", Int(runtime.Resources.CpuWeight));

        var scaling = runtime.Scaling;
        w.Append("\n[runtime.scaling]\n");
        Line(w, "metric", Str(ManifestNames.ToToml(scaling.Metric)));
        Line(w, "target_value", Number(scaling.TargetValue));
        Line(w, "scale_up_window", Str(DurationParser.Format(scaling.ScaleUpWindow)));
        Line(w, "scale_down_window", Str(DurationParser.Format(scaling.ScaleDownWindow)));
        if (scaling.CustomMetric is not null)
        {
            Line(w, "custom_metric", Str(scaling.CustomMetric));
        }

        var capabilities = manifest.Capabilities;
        w.Append("\n[capabilities]\n");
        Line(w, "http_outbound", Array(capabilities.HttpOutbound));
        Line(w, "logging", capabilities.Logging ? "true" : "false");
        Line(w, "key_value", Array(capabilities.KeyValue));
        Line(w, "environment", InlineTable(capabilities.Environment));
        Line(w, "config", InlineTable(capabilities.Config));

        if (manifest.Health is { } health)
        {
            w.Append("\n[health]\n");
            Line(w, "endpoint", Str(health.Endpoint));
            if (health.ReadinessEndpoint is { } readiness)
            {
                Line(w, "readiness_endpoint", Str(readiness));
            }

            Line(w, "interval", Str(DurationParser.Format(health.Interval)));
            Line(w, "timeout", Str(DurationParser.Format(health.Timeout)));
            Line(w, "unhealthy_threshold", Int(health.UnhealthyThreshold));
            Line(w, "healthy_threshold", Int(health.HealthyThreshold));
        }

        if (!manifest.Placement.IsDefault)
        {
            WritePlacement(w, manifest.Placement);
        }

        return w.ToString();
    }

    private static void WritePlacement(StringBuilder w, PlacementSection placement)
    {
        w.Append("\n[placement]\n");
        Line(w, "node_selector", InlineTable(placement.NodeSelector));
        Line(w, "priority", placement.PriorityClass is { } priorityClass ? Str(priorityClass) : Int(placement.Priority));
        Line(w, "min_available", Int(placement.MinAvailable));
        if (placement.Strategy != Scheduling.ScoringStrategy.Default)
        {
            Line(w, "strategy", Str(ManifestNames.ToToml(placement.Strategy)));
        }

        foreach (var t in placement.Tolerations)
        {
            w.Append("\n[[placement.tolerations]]\n");
            if (t.Key.Length > 0)
            {
                Line(w, "key", Str(t.Key));
            }

            Line(w, "operator", Str(ManifestNames.ToToml(t.Operator)));
            if (t.Operator == Scheduling.TolerationOperator.Equal)
            {
                Line(w, "value", Str(t.Value));
            }

            if (t.Effect is { } effect)
            {
                Line(w, "effect", Str(ManifestNames.ToToml(effect)));
            }
        }

        foreach (var (name, terms) in new[] { ("affinity", placement.Affinity), ("anti_affinity", placement.AntiAffinity) })
        {
            foreach (var term in terms)
            {
                w.Append("\n[[placement.").Append(name).Append("]]\n");
                Line(w, "match_labels", InlineTable(term.MatchLabels));
                Line(w, "topology_key", Str(term.TopologyKey));
                Line(w, "required", term.Required ? "true" : "false");
                if (!term.Required)
                {
                    Line(w, "weight", Int(term.Weight));
                }
            }
        }
    }

    private static void Line(StringBuilder w, string key, string value) => w.Append(key).Append(" = ").Append(value).Append('\n');

    private static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double value)
    {
        if (!double.IsFinite(value))
        {
            return double.IsNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
        }

        // Shortest round-trippable form; "10" stays an integer (target_value accepts both), "1E+20" becomes "1e+20".
        return value.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
    }

    private static string Array(IReadOnlyList<string> values) =>
        values.Count == 0 ? "[]" : "[" + string.Join(", ", values.Select(Str)) + "]";

    private static string InlineTable(IReadOnlyDictionary<string, string> values) =>
        values.Count == 0
            ? "{}"
            : "{ " + string.Join(", ", values.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => Key(p.Key) + " = " + Str(p.Value))) + " }";

    private static string Key(string key) =>
        key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-') ? key : Str(key);

    private static string Str(string value)
    {
        var builder = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    builder.Append("\\\"");
                    break;
                case '\\':
                    builder.Append("\\\\");
                    break;
                case '\n':
                    builder.Append("\\n");
                    break;
                case '\r':
                    builder.Append("\\r");
                    break;
                case '\t':
                    builder.Append("\\t");
                    break;
                default:
                    if (char.IsControl(c))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        return builder.Append('"').ToString();
    }
}
