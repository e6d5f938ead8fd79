using WarpGrid.Core.Clustering;
using WarpGrid.Core.Scheduling;
using static System.FormattableString;

namespace WarpGrid.Core.Manifest;

/// <summary>
/// Turns the merged TOML tree into a <see cref="WarpManifest"/>, collecting every error in one pass.
/// </summary>
internal sealed class ManifestValidator
{
    private static readonly string[] RootKeys = ["package", "build", "runtime", "capabilities", "health", "placement"];
    private static readonly string[] PackageKeys = ["name", "namespace", "version", "description", "authors", "labels"];
    private static readonly string[] BuildKeys = ["lang", "source", "command", "output"];
    private static readonly string[] RuntimeKeys = ["trigger", "min_instances", "max_instances", "request_timeout", "route", "host", "resources", "scaling"];
    private static readonly string[] ResourcesKeys = ["memory_limit", "cpu_weight"];
    private static readonly string[] ScalingKeys = ["metric", "target_value", "scale_up_window", "scale_down_window", "custom_metric"];
    private static readonly string[] CapabilitiesKeys = ["http_outbound", "logging", "key_value", "environment", "config"];
    private static readonly string[] PlacementKeys = ["node_selector", "tolerations", "affinity", "anti_affinity", "priority", "min_available", "strategy"];
    private static readonly string[] TolerationKeys = ["key", "operator", "value", "effect"];
    private static readonly string[] AffinityKeys = ["match_labels", "topology_key", "required", "weight"];
    private static readonly string[] HealthKeys = ["endpoint", "readiness_endpoint", "interval", "timeout", "unhealthy_threshold", "healthy_threshold"];

    private static readonly Dictionary<string, string> LanguageAliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["c++"] = "cpp",
        ["cxx"] = "cpp",
        ["rs"] = "rust",
        ["golang"] = "go",
        ["tinygo"] = "go",
        ["ts"] = "typescript",
        ["js"] = "javascript",
        ["node"] = "javascript",
        ["wasm"] = "wat",
    };

    private readonly string _file;
    private readonly bool _complete;
    private readonly List<ManifestError> _errors = [];

    /// <param name="file">The file name used in errors.</param>
    /// <param name="complete">
    /// False when the TOML had syntax errors: the tree may miss keys, so checks that a key is missing and checks
    /// that compare two fields are skipped to avoid reporting consequences of the syntax error.
    /// </param>
    public ManifestValidator(string file, bool complete)
    {
        _file = file;
        _complete = complete;
    }

    public IReadOnlyList<ManifestError> Errors => _errors;

    /// <summary>The section a key belongs to, used to explain a key written outside its section.</summary>
    public static string? SectionOfKey(string key)
    {
        (string Section, string[] Keys)[] sections =
        [
            ("package", PackageKeys), ("build", BuildKeys), ("runtime", RuntimeKeys), ("runtime.resources", ResourcesKeys),
            ("runtime.scaling", ScalingKeys), ("capabilities", CapabilitiesKeys), ("health", HealthKeys),
            ("placement", PlacementKeys),
        ];
        var homes = sections.Where(s => s.Keys.Contains(key, StringComparer.Ordinal)).Select(s => s.Section).ToArray();
        return homes.Length == 1 ? homes[0] : null;
    }

    public void Report(TomlPosition position, string field, string message) =>
        _errors.Add(new ManifestError(_file, position.Line, position.Column, field, message));

    public WarpManifest? Validate(TomlTable root, string sourcePath)
    {
        var top = new ManifestSection(this, string.Empty, root, RootKeys);

        var packageTable = top.SubTable("package");
        if (packageTable.State == FieldState.Absent && _complete)
        {
            Report(TomlPosition.Start, "package", "missing required section [package] with a 'name' key, e.g. [package] name = \"hello\"");
        }

        var package = ReadPackage(new ManifestSection(this, "package", packageTable.Or(null!), PackageKeys));
        var name = package?.Name;
        var build = ReadBuild(new ManifestSection(this, "build", top.SubTable("build").Or(null!), BuildKeys), name);
        var runtime = ReadRuntime(new ManifestSection(this, "runtime", top.SubTable("runtime").Or(null!), RuntimeKeys), name);
        var capabilities = ReadCapabilities(new ManifestSection(this, "capabilities", top.SubTable("capabilities").Or(null!), CapabilitiesKeys));
        var healthTable = top.SubTable("health");
        var health = healthTable.IsValid ? ReadHealth(new ManifestSection(this, "health", healthTable.Value, HealthKeys)) : null;
        var placement = ReadPlacement(new ManifestSection(this, "placement", top.SubTable("placement").Or(null!), PlacementKeys), runtime);

        if (_errors.Count > 0 || package is null || build is null || runtime is null || capabilities is null)
        {
            return null;
        }

        return new WarpManifest
        {
            Package = package,
            Build = build,
            Runtime = runtime,
            Capabilities = capabilities,
            Health = health,
            Placement = placement,
            SourcePath = sourcePath,
        };
    }

    private PackageSection? ReadPackage(ManifestSection section)
    {
        var name = section.String("name");
        if (name.State == FieldState.Absent && section.IsPresent && _complete)
        {
            section.Report(section.Position, "name", "missing required key 'name' in [package]: a DNS label such as \"hello\"");
        }

        if (name.IsValid && !ManifestRules.IsValidName(name.Value))
        {
            section.Report(name.Position, "name", ManifestRules.DescribeInvalidName(name.Value));
            name = name.AsInvalid<string>();
        }

        var ns = section.String("namespace");
        if (ns.IsValid && !ManifestRules.IsValidName(ns.Value))
        {
            section.Report(ns.Position, "namespace", $"invalid namespace \"{ns.Value}\": must be a DNS label (lowercase letters, digits and '-', at most 63 characters), e.g. \"team-a\"");
            ns = ns.AsInvalid<string>();
        }

        var version = section.String("version");
        if (version.IsValid && !ManifestRules.IsValidSemVer(version.Value))
        {
            section.Report(version.Position, "version",
                $"invalid version \"{version.Value}\": must be a semantic version MAJOR.MINOR.PATCH[-prerelease][+build], e.g. \"1.0.0\" or \"0.2.0-beta.1\"");
        }

        var description = section.String("description", allowEmpty: true);
        var authors = section.StringArray("authors");
        var labels = LabelTable(section, "labels", "label");

        if (!name.IsValid)
        {
            return null;
        }

        return new PackageSection
        {
            Name = name.Value,
            Namespace = ns.Or(PackageSection.DefaultNamespace),
            Version = version.Or(PackageSection.DefaultVersion),
            Description = description.Or(null!),
            Authors = [.. authors.Or([]).Select(a => a.Value)],
            Labels = labels.Or(new Dictionary<string, string>()),
        };
    }

    private BuildSection? ReadBuild(ManifestSection section, string? name)
    {
        var lang = section.Enum("lang", ManifestNames.Languages, DescribeUnsupportedLanguage);
        var source = section.String("source");
        var command = section.String("command");
        var output = section.String("output");

        if (name is null)
        {
            return null;
        }

        return new BuildSection
        {
            Lang = lang.IsValid ? lang.Value : null,
            Source = source.Or(null!),
            Command = command.Or(null!),
            Output = output.Or(BuildSection.DefaultOutputFor(name)),
        };
    }

    private static string? DescribeUnsupportedLanguage(string value)
    {
        if (value.StartsWith("python", StringComparison.OrdinalIgnoreCase) || string.Equals(value, "py", StringComparison.OrdinalIgnoreCase))
        {
            return $"\"{value}\" is not supported: there is no Python-to-WebAssembly toolchain here";
        }

        return LanguageAliases.TryGetValue(value, out var canonical)
            ? $"invalid value \"{value}\"; did you mean '{canonical}'?"
            : null;
    }

    private RuntimeSection? ReadRuntime(ManifestSection section, string? name)
    {
        var trigger = section.Enum("trigger", ManifestNames.Triggers);
        var minInstances = section.Int32("min_instances", 0, RuntimeSection.InstancesLimit);
        var maxInstances = section.Int32("max_instances", 1, RuntimeSection.InstancesLimit);
        if (_complete && minInstances.IsUsable && maxInstances.IsUsable)
        {
            var min = minInstances.Or(RuntimeSection.DefaultMinInstances);
            var max = maxInstances.Or(RuntimeSection.DefaultMaxInstances);
            if (max < min)
            {
                if (maxInstances.IsPresent)
                {
                    section.Report(maxInstances.Position, "max_instances", Invariant($"must be >= runtime.min_instances ({min}), got {max}"));
                }
                else
                {
                    section.Report(minInstances.Position, "min_instances",
                        Invariant($"must be <= runtime.max_instances ({max}, the default), got {min}; set max_instances too"));
                }
            }
        }

        var requestTimeout = section.Duration("request_timeout", positive: true, RuntimeSection.MaxRequestTimeout);

        var route = section.String("route");
        if (route.IsValid)
        {
            var problem = !route.Value.StartsWith('/')
                ? $"must start with \"/\", got \"{route.Value}\"; e.g. \"/{route.Value.TrimStart('/')}\""
                : route.Value.Any(c => char.IsWhiteSpace(c) || c is '?' or '#')
                    ? $"must be a URL path prefix without whitespace, '?' or '#', got \"{route.Value}\""
                    : null;
            if (problem is not null)
            {
                section.Report(route.Position, "route", problem);
            }
        }

        var host = section.String("host");
        if (host.IsValid && !ManifestRules.IsValidHost(host.Value))
        {
            section.Report(host.Position, "host",
                $"invalid host \"{host.Value}\": must be a DNS name such as \"hello.example.com\", optionally a wildcard \"*.example.com\" (no scheme, port or path)");
        }

        var resources = ReadResources(new ManifestSection(this, "runtime.resources", section.SubTable("resources").Or(null!), ResourcesKeys));
        var scaling = ReadScaling(new ManifestSection(this, "runtime.scaling", section.SubTable("scaling").Or(null!), ScalingKeys));

        if (name is null)
        {
            return null;
        }

        return new RuntimeSection
        {
            Trigger = trigger.Or(TriggerKind.Http),
            MinInstances = minInstances.Or(RuntimeSection.DefaultMinInstances),
            MaxInstances = maxInstances.Or(RuntimeSection.DefaultMaxInstances),
            RequestTimeout = requestTimeout.Or(RuntimeSection.DefaultRequestTimeout),
            Route = route.Or(RuntimeSection.DefaultRouteFor(name)),
            Host = host.IsValid ? host.Value.ToLowerInvariant() : null,
            Resources = resources,
            Scaling = scaling,
        };
    }

    private ResourcesSection ReadResources(ManifestSection section)
    {
        var memory = section.ByteSizeValue("memory_limit");
        if (memory.IsValid
            && (memory.Value < ResourcesSection.MinMemoryLimitBytes || memory.Value > ResourcesSection.MaxMemoryLimitBytes))
        {
            var bound = memory.Value < ResourcesSection.MinMemoryLimitBytes
                ? ">= " + ByteSize.Format(ResourcesSection.MinMemoryLimitBytes)
                : "<= " + ByteSize.Format(ResourcesSection.MaxMemoryLimitBytes);
            section.Report(memory.Position, "memory_limit",
                Invariant($"must be {bound}, got {ByteSize.Format(memory.Value)} ({memory.Value} bytes) (allowed: {ByteSize.Format(ResourcesSection.MinMemoryLimitBytes)}..{ByteSize.Format(ResourcesSection.MaxMemoryLimitBytes)})"));
        }

        var cpuWeight = section.Int32("cpu_weight", ResourcesSection.MinCpuWeight, ResourcesSection.MaxCpuWeight);
        return new ResourcesSection
        {
            MemoryLimitBytes = memory.Or(ResourcesSection.DefaultMemoryLimitBytes),
            CpuWeight = cpuWeight.Or(ResourcesSection.DefaultCpuWeight),
        };
    }

    private ScalingSection ReadScaling(ManifestSection section)
    {
        var metric = section.Enum("metric", ManifestNames.Metrics);
        var target = section.Number("target_value");
        if (target.IsValid && !(double.IsFinite(target.Value) && target.Value > 0))
        {
            section.Report(target.Position, "target_value", Invariant($"must be a finite number > 0, got {target.Value}"));
        }

        var scaleUp = section.Duration("scale_up_window", positive: false, max: null);
        var scaleDown = section.Duration("scale_down_window", positive: false, max: null);
        var customMetric = section.String("custom_metric");
        if (metric.IsUsable && customMetric.IsUsable)
        {
            var effective = metric.Or(ScalingMetric.RequestConcurrency);
            if (effective == ScalingMetric.Custom && !customMetric.IsPresent && _complete)
            {
                section.Report(metric.Position, "custom_metric",
                    "required when runtime.scaling.metric = \"custom\": the name of the metric to scale on, e.g. custom_metric = \"queue_depth\"");
            }
            else if (effective != ScalingMetric.Custom && customMetric.IsPresent)
            {
                section.Report(customMetric.Position, "custom_metric",
                    $"only allowed when runtime.scaling.metric = \"custom\" (metric is \"{ManifestNames.ToToml(effective)}\")");
            }
        }

        return new ScalingSection
        {
            Metric = metric.Or(ScalingMetric.RequestConcurrency),
            TargetValue = target.Or(ScalingSection.DefaultTargetValue),
            ScaleUpWindow = scaleUp.Or(ScalingSection.DefaultScaleUpWindow),
            ScaleDownWindow = scaleDown.Or(ScalingSection.DefaultScaleDownWindow),
            CustomMetric = customMetric.Or(null!),
        };
    }

    private CapabilitiesSection ReadCapabilities(ManifestSection section)
    {
        var outbound = section.StringArray("http_outbound");
        if (outbound.Value is not null)
        {
            foreach (var (glob, position, index) in outbound.Value)
            {
                if (ManifestRules.DescribeInvalidHostGlob(glob) is { } problem)
                {
                    Report(position, Invariant($"{section.FieldOf("http_outbound")}[{index}]"), problem);
                }
            }
        }

        var logging = section.Boolean("logging");
        var keyValue = section.StringArray("key_value");
        if (keyValue.Value is not null)
        {
            foreach (var (store, position, index) in keyValue.Value)
            {
                if (string.IsNullOrWhiteSpace(store))
                {
                    Report(position, Invariant($"{section.FieldOf("key_value")}[{index}]"), "store name must not be empty");
                }
            }
        }

        var environment = section.StringTable("environment", key => ManifestRules.IsValidEnvironmentKey(key)
            ? null
            : $"invalid environment variable name '{key}': must match {ManifestRules.EnvironmentKeyPattern} (letters, digits and '_', not starting with a digit)");
        var config = section.StringTable("config", key => key.Length == 0 ? "config keys must not be empty" : null);

        return new CapabilitiesSection
        {
            HttpOutbound = [.. outbound.Or([]).Select(o => o.Value)],
            Logging = logging.Or(true),
            KeyValue = [.. keyValue.Or([]).Select(k => k.Value)],
            Environment = environment.Or(new Dictionary<string, string>()),
            Config = config.Or(new Dictionary<string, string>()),
        };
    }

    private PlacementSection ReadPlacement(ManifestSection section, RuntimeSection? runtime)
    {
        var selector = LabelTable(section, "node_selector", "node label");

        var tolerations = new List<Toleration>();
        foreach (var (table, path) in section.TableArray("tolerations").Or([]))
        {
            if (ReadToleration(new ManifestSection(this, path, table, TolerationKeys)) is { } toleration)
            {
                tolerations.Add(toleration);
            }
        }

        var affinity = ReadTerms(section, "affinity");
        var antiAffinity = ReadTerms(section, "anti_affinity");

        int priority = 0;
        string? priorityClass = null;
        var priorityEntry = section.Table?.Find("priority");
        if (priorityEntry?.Value is Tomlyn.Syntax.StringValueSyntax)
        {
            var named = section.Enum("priority", PlacementSection.PriorityClasses.Select(c => (c.Name, c.Value)).ToArray());
            if (named.IsValid)
            {
                priority = named.Value;
                priorityClass = PlacementSection.PriorityClasses.First(c => c.Value == named.Value).Name;
            }
        }
        else if (priorityEntry is not null)
        {
            var number = section.Integer("priority");
            if (number.IsValid && section.CheckRange(number.Value, PlacementSection.MinPriority, PlacementSection.MaxPriority, number.Position, "priority"))
            {
                priority = (int)number.Value;
            }
        }

        var minAvailable = section.Int32("min_available", 0, RuntimeSection.InstancesLimit);
        if (_complete && minAvailable.IsValid && runtime is not null && minAvailable.Value > runtime.MaxInstances)
        {
            section.Report(minAvailable.Position, "min_available",
                Invariant($"must be <= runtime.max_instances ({runtime.MaxInstances}), got {minAvailable.Value}: the budget could never be met"));
        }

        var strategy = section.Enum("strategy", ManifestNames.Strategies);

        return new PlacementSection
        {
            NodeSelector = selector.Or(new Dictionary<string, string>()),
            Tolerations = tolerations,
            Affinity = affinity,
            AntiAffinity = antiAffinity,
            Priority = priority,
            PriorityClass = priorityClass,
            MinAvailable = minAvailable.Or(0),
            Strategy = strategy.Or(ScoringStrategy.Default),
        };
    }

    private Toleration? ReadToleration(ManifestSection section)
    {
        var key = section.String("key", allowEmpty: true);
        var op = section.Enum("operator", ManifestNames.Operators);
        var value = section.String("value", allowEmpty: true);
        var effect = section.Enum("effect", ManifestNames.Effects);
        var valid = key.IsUsable && op.IsUsable && value.IsUsable && effect.IsUsable;
        var operatorValue = op.Or(TolerationOperator.Equal);
        var keyValue = key.Or(string.Empty);
        if (key.IsValid && keyValue.Length > 0 && !NodeNames.IsValidLabelKey(keyValue))
        {
            section.Report(key.Position, "key", $"invalid taint key '{keyValue}': must be 1-63 letters, digits, '-', '_', '.' or '/'");
            valid = false;
        }

        if (keyValue.Length == 0 && key.IsUsable && op.IsUsable && operatorValue == TolerationOperator.Equal && _complete)
        {
            section.Report(key.IsPresent ? key.Position : section.Position, "key",
                "required with operator = \"Equal\": the taint key to tolerate, e.g. key = \"gpu\" (an empty key with operator = \"Exists\" tolerates every taint)");
            valid = false;
        }

        if (operatorValue == TolerationOperator.Exists && value.IsValid && value.Value.Length > 0)
        {
            section.Report(value.Position, "value", $"must be empty with operator = \"Exists\" (it matches any value), got \"{value.Value}\"");
            valid = false;
        }

        return valid
            ? new Toleration(keyValue, value.Or(string.Empty), effect.IsValid ? effect.Value : null, operatorValue)
            : null;
    }

    private List<AffinityTerm> ReadTerms(ManifestSection placement, string key)
    {
        var terms = new List<AffinityTerm>();
        foreach (var (table, path) in placement.TableArray(key).Or([]))
        {
            var section = new ManifestSection(this, path, table, AffinityKeys);
            var labels = LabelTable(section, "match_labels", "label");
            if (labels.State == FieldState.Absent && _complete)
            {
                section.Report(section.Position, "match_labels",
                    "missing required key 'match_labels': the [package] labels of the deployments to select, e.g. match_labels = { app = \"web\" }");
            }
            else if (labels.IsValid && labels.Value.Count == 0)
            {
                section.Report(labels.Position, "match_labels", "must select at least one label, e.g. { app = \"web\" }");
                labels = labels.AsInvalid<IReadOnlyDictionary<string, string>>();
            }

            var topology = section.String("topology_key");
            if (topology.IsValid && !NodeNames.IsValidLabelKey(topology.Value))
            {
                section.Report(topology.Position, "topology_key",
                    $"invalid topology key '{topology.Value}': \"node\", \"zone\", \"region\" or a node label key (1-63 letters, digits, '-', '_', '.' or '/')");
                topology = topology.AsInvalid<string>();
            }

            var required = section.Boolean("required");
            var weight = section.Int32("weight", 1, PlacementSection.MaxWeight);
            if (required.Or(true) && weight.IsPresent && required.IsUsable)
            {
                section.Report(weight.Position, "weight",
                    "only allowed with required = false: a required term filters nodes and has no weight; set required = false for a preferred term");
                weight = weight.AsInvalid<int>();
            }

            if (labels.IsValid && topology.IsUsable && required.IsUsable && weight.IsUsable)
            {
                terms.Add(new AffinityTerm
                {
                    MatchLabels = labels.Value,
                    TopologyKey = topology.Or(TopologyKeys.Node),
                    Required = required.Or(true),
                    Weight = weight.Or(1),
                });
            }
        }

        return terms;
    }

    /// <summary>A table of labels (keys and values follow the node label rules).</summary>
    private Field<IReadOnlyDictionary<string, string>> LabelTable(ManifestSection section, string key, string what)
    {
        var table = section.StringTable(key, k => NodeNames.IsValidLabelKey(k)
            ? null
            : $"invalid {what} key '{k}': must be 1-63 letters, digits, '-', '_', '.' or '/'");
        if (!table.IsValid)
        {
            return table;
        }

        var valid = true;
        foreach (var (k, v) in table.Value)
        {
            if (!NodeNames.IsValidLabelValue(v))
            {
                Report(section.Table!.Find(key)!.Table!.Find(k)!.ValuePosition, ManifestSection.FieldPath(section.FieldOf(key), k),
                    $"invalid {what} value \"{v}\": at most 63 letters, digits, '-', '_' or '.'");
                valid = false;
            }
        }

        return valid ? table : table.AsInvalid<IReadOnlyDictionary<string, string>>();
    }

    private HealthSection? ReadHealth(ManifestSection section)
    {
        var endpoint = section.String("endpoint");
        if (endpoint.State == FieldState.Absent && _complete)
        {
            section.Report(section.Position, "endpoint", "missing required key 'endpoint' in [health]: the HTTP path to probe, e.g. \"/healthz\"");
        }
        else if (endpoint.IsValid && (!endpoint.Value.StartsWith('/') || endpoint.Value.Any(char.IsWhiteSpace)))
        {
            section.Report(endpoint.Position, "endpoint", $"must be a path starting with \"/\" without whitespace, got \"{endpoint.Value}\"; e.g. \"/healthz\"");
        }

        var readiness = section.String("readiness_endpoint");
        if (readiness.IsValid && (!readiness.Value.StartsWith('/') || readiness.Value.Any(char.IsWhiteSpace)))
        {
            section.Report(readiness.Position, "readiness_endpoint", $"must be a path starting with \"/\" without whitespace, got \"{readiness.Value}\"; e.g. \"/ready\"");
        }

        var interval = section.Duration("interval", positive: true, max: null);
        var timeout = section.Duration("timeout", positive: true, max: null);
        if (_complete && interval.IsUsable && timeout.IsUsable)
        {
            var effectiveInterval = interval.Or(HealthSection.DefaultInterval);
            var effectiveTimeout = timeout.Or(HealthSection.DefaultTimeout);
            if (effectiveTimeout > effectiveInterval)
            {
                var intervalText = DurationParser.Format(effectiveInterval) + (interval.IsPresent ? string.Empty : ", the default");
                var position = timeout.IsPresent ? timeout.Position : interval.Position;
                section.Report(position, "timeout", $"must be <= health.interval ({intervalText}), got {DurationParser.Format(effectiveTimeout)}");
            }
        }

        var unhealthy = section.Int32("unhealthy_threshold", 1, int.MaxValue);
        var healthy = section.Int32("healthy_threshold", 1, int.MaxValue);

        if (!endpoint.IsValid)
        {
            return null;
        }

        return new HealthSection
        {
            Endpoint = endpoint.Value,
            ReadinessEndpoint = readiness.IsValid && readiness.Value.StartsWith('/') ? readiness.Value : null,
            Interval = interval.Or(HealthSection.DefaultInterval),
            Timeout = timeout.Or(HealthSection.DefaultTimeout),
            UnhealthyThreshold = unhealthy.Or(HealthSection.DefaultUnhealthyThreshold),
            HealthyThreshold = healthy.Or(HealthSection.DefaultHealthyThreshold),
        };
    }
}
