using WarpGrid.Core.Manifest;
using static WarpGrid.Core.Tests.Manifest.ManifestTestHelpers;

namespace WarpGrid.Core.Tests.Manifest;

public class ManifestErrorTests
{
    [Fact]
    public void TomlSyntaxError_IsReportedWithTomlynPosition()
    {
        var errors = Errors("""
            [package]
            name = "app"
            [runtime]
            min_instances = = 3
            """);

        var first = errors[0];
        Assert.Equal(4, first.Line);
        Assert.Equal(17, first.Column);
        Assert.Equal(string.Empty, first.Field);
        Assert.Contains("invalid TOML", first.Message, StringComparison.Ordinal);
        Assert.Contains("Unexpected token", first.Message, StringComparison.Ordinal);
        Assert.StartsWith("warp.toml:4:17: invalid TOML: ", first.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TomlSyntaxError_DoesNotHideErrorsOnOtherLines_NorCauseSpuriousOnes()
    {
        var errors = Errors("""
            [package]
            name = "app"
            [runtime]
            min_instances = 20
            max_instances = = 3
            [runtime.resources]
            memory_limit = 128MB
            cpu_weight = 0
            """);

        Assert.All(errors.Where(e => e.Field.Length == 0), e => Assert.Contains("invalid TOML", e.Message, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Field.Length == 0 && e.Line == 5);
        Assert.Contains(errors, e => e.Field.Length == 0 && e.Line == 7);
        AssertError(errors, "runtime.resources.cpu_weight", 8, "must be >= 1, got 0");
        // max_instances is unreadable: comparing min_instances with the default max would be noise.
        Assert.DoesNotContain(errors, e => e.Field is "runtime.min_instances" or "runtime.max_instances");
        Assert.DoesNotContain(errors, e => e.Field == "runtime.resources.memory_limit");
    }

    [Fact]
    public void UnterminatedString_ReportsOnlyTheSyntaxErrors()
    {
        var errors = Errors("[package]\nname = \"hello\nversion = \"1.0.0\"\n");

        Assert.All(errors, e => Assert.Equal(string.Empty, e.Field));
        Assert.Equal(2, errors[0].Line);
    }

    [Fact]
    public void DuplicateKey_IsReportedByTomlValidation()
    {
        var errors = Errors("[package]\nname = \"a\"\nname = \"b\"\n");

        var error = Assert.Single(errors);
        Assert.Equal(3, error.Line);
        Assert.Contains("already defined", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownSection_ListsAllowedSections_AndSuggests()
    {
        var errors = ErrorsWithPackage("[foo]\nbar = 1\n[capabilites]\nlogging = true\n");

        var foo = AssertError(errors, "foo", 3, "unknown section [foo]");
        Assert.Contains("allowed sections: package, build, runtime, capabilities, health", foo.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("did you mean", foo.Message, StringComparison.Ordinal);
        AssertError(errors, "capabilites", 5, "did you mean 'capabilities'?");
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void UnknownKey_ListsAllowedKeys_AndSuggestsClosest()
    {
        var errors = ErrorsWithPackage("[runtime]\nmax_instance = 5\n");

        var error = AssertError(errors, "runtime.max_instance", 4, "unknown key 'max_instance' in [runtime]; did you mean 'max_instances'?");
        Assert.Contains("allowed keys in [runtime]: trigger, min_instances, max_instances, request_timeout, route, host, resources, scaling", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, error.Column);
    }

    [Theory]
    [InlineData("[runtime.resources]\nmemroy_limit = \"1MB\"\n", "runtime.resources.memroy_limit", "did you mean 'memory_limit'?")]
    [InlineData("[runtime]\nresources.memory = \"1MB\"\n", "runtime.resources.memory", "did you mean 'memory_limit'?")]
    [InlineData("[health]\nendpoint = \"/h\"\nintervall = \"1s\"\n", "health.intervall", "did you mean 'interval'?")]
    [InlineData("[build]\nLang = \"c\"\n", "build.Lang", "did you mean 'lang'?")]
    public void UnknownKey_Suggestions(string rest, string field, string phrase)
    {
        var errors = ErrorsWithPackage(rest);

        Assert.Contains(phrase, Assert.Single(errors, e => e.Field == field).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownKey_FarFromEveryKey_HasNoSuggestion()
    {
        var errors = ErrorsWithPackage("[build]\nzzz = 1\n");

        var error = AssertError(errors, "build.zzz", 4, "unknown key 'zzz' in [build]");
        Assert.DoesNotContain("did you mean", error.Message, StringComparison.Ordinal);
        Assert.Contains("allowed keys in [build]: lang, source, command, output", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TopLevelKey_SaysWhichSectionItBelongsIn()
    {
        var errors = Errors("max_instances = 3\n[package]\nname = \"app\"\n");

        AssertError(errors, "max_instances", 1, "'max_instances' belongs in [runtime]");
    }

    [Theory]
    [InlineData("[runtime]\nmin_instances = \"3\"\n", "runtime.min_instances", "expected integer, got string \"3\"")]
    [InlineData("[runtime]\nmax_instances = 2.5\n", "runtime.max_instances", "expected integer, got float 2.5")]
    [InlineData("[capabilities]\nlogging = \"yes\"\n", "capabilities.logging", "expected boolean (true or false), got string")]
    [InlineData("[capabilities]\nkey_value = \"default\"\n", "capabilities.key_value", "expected array of strings, got string")]
    [InlineData("[runtime]\nresources = 5\n", "runtime.resources", "expected table, got integer 5")]
    [InlineData("[runtime.resources]\nmemory_limit = 1.5\n", "runtime.resources.memory_limit", "expected byte size (an integer number of bytes, or a string such as \"128MB\"), got float")]
    [InlineData("[runtime]\nrequest_timeout = 30\n", "runtime.request_timeout", "expected duration string such as \"30s\", got integer 30; durations need a unit")]
    [InlineData("[runtime.scaling]\ntarget_value = \"10\"\n", "runtime.scaling.target_value", "expected number (integer or float), got string")]
    public void WrongType_SaysExpectedAndActual(string rest, string field, string phrase)
    {
        var errors = ErrorsWithPackage(rest);

        AssertError(errors, field, 4, phrase);
    }

    [Fact]
    public void WrongType_ForStringField_SuggestsQuoting()
    {
        var errors = ErrorsWithPackage("version = 1.0\n");

        AssertError(errors, "package.version", 3, "expected string, got float 1.0; quote it: \"1.0\"");
    }

    [Fact]
    public void WrongType_ForWholeSection()
    {
        var errors = Errors("[package]\nname = \"app\"\n[[runtime]]\nmin_instances = 1\n");

        AssertError(errors, "runtime", 3, "expected table, got array of tables");
    }

    [Fact]
    public void ByteSize_UnknownUnit_NamesAllowedUnits()
    {
        var errors = ErrorsWithPackage("[runtime.resources]\nmemory_limit = \"12XB\"\n");

        var error = AssertError(errors, "runtime.resources.memory_limit", 4, "unknown unit 'XB' in \"12XB\"");
        Assert.Contains("allowed units: B, KB, KiB, MB, MiB, GB, GiB", error.Message, StringComparison.Ordinal);
        Assert.Equal(16, error.Column);
        Assert.Equal("warp.toml:4:16: runtime.resources.memory_limit: " + error.Message, error.ToString());
    }

    [Theory]
    [InlineData("\"32KB\"", "must be >= 64KiB, got 32KiB")]
    [InlineData("\"5GB\"", "must be <= 4GiB, got 5GiB")]
    [InlineData("-1", "must not be negative")]
    [InlineData("\"0.1KB\"", "not a whole number of bytes")]
    public void ByteSize_OutOfRange(string value, string phrase)
    {
        var errors = ErrorsWithPackage($"[runtime.resources]\nmemory_limit = {value}\n");

        AssertError(errors, "runtime.resources.memory_limit", 4, phrase);
    }

    [Fact]
    public void MaxBelowMin_IsReportedOnMaxInstances()
    {
        var errors = ErrorsWithPackage("[runtime]\nmin_instances = 3\nmax_instances = 2\n");

        var error = Assert.Single(errors);
        Assert.Equal("warp.toml:5:17: runtime.max_instances: must be >= runtime.min_instances (3), got 2", error.ToString());
    }

    [Fact]
    public void MinAboveDefaultMax_IsReportedOnMinInstances()
    {
        var errors = ErrorsWithPackage("[runtime]\nmin_instances = 20\n");

        AssertError(errors, "runtime.min_instances", 4, "must be <= runtime.max_instances (10, the default), got 20");
    }

    [Theory]
    [InlineData("min_instances = -1", "runtime.min_instances", "must be >= 0, got -1 (allowed: 0..10000)")]
    [InlineData("max_instances = 0", "runtime.max_instances", "must be >= 1, got 0 (allowed: 1..10000)")]
    [InlineData("max_instances = 10001", "runtime.max_instances", "must be <= 10000, got 10001")]
    [InlineData("request_timeout = \"0s\"", "runtime.request_timeout", "must be > 0, got 0s (allowed: > 0 and <= 1h)")]
    [InlineData("request_timeout = \"61m\"", "runtime.request_timeout", "must be <= 1h, got 1h1m")]
    [InlineData("request_timeout = \"5 parsecs\"", "runtime.request_timeout", "unknown unit 'parsecs' in \"5 parsecs\"; allowed units: ms (milliseconds), s (seconds), m (minutes), h (hours)")]
    [InlineData("route = \"hello\"", "runtime.route", "must start with \"/\", got \"hello\"")]
    [InlineData("route = \"/a b\"", "runtime.route", "without whitespace")]
    [InlineData("host = \"https://example.com\"", "runtime.host", "must be a DNS name")]
    [InlineData("host = \"exa_mple.com\"", "runtime.host", "must be a DNS name")]
    [InlineData("trigger = \"grpc\"", "runtime.trigger", "allowed values: http, cli")]
    public void RuntimeValues_OutOfRange(string line, string field, string phrase)
    {
        var errors = ErrorsWithPackage("[runtime]\n" + line + "\n");

        AssertError(errors, field, 4, phrase);
        Assert.Single(errors);
    }

    [Theory]
    [InlineData(0, "must be >= 1, got 0 (allowed: 1..10000)")]
    [InlineData(10001, "must be <= 10000, got 10001 (allowed: 1..10000)")]
    [InlineData(-5, "must be >= 1, got -5")]
    public void CpuWeight_OutOfRange(int value, string phrase)
    {
        var errors = ErrorsWithPackage($"[runtime.resources]\ncpu_weight = {value}\n");

        AssertError(errors, "runtime.resources.cpu_weight", 4, phrase);
    }

    [Fact]
    public void MissingPackageSection_IsReportedOnLine1()
    {
        var errors = Errors("# my app\n[runtime]\nmin_instances = 1\n");

        var error = AssertError(errors, "package", 1, "missing required section [package]");
        Assert.Equal(1, error.Column);
    }

    [Fact]
    public void EmptyDocument_ReportsMissingPackage()
    {
        var error = Assert.Single(Errors(string.Empty));

        Assert.Equal("warp.toml:1:1: package: missing required section [package] with a 'name' key, e.g. [package] name = \"hello\"", error.ToString());
    }

    [Fact]
    public void MissingName_IsReportedOnPackageHeaderLine()
    {
        var errors = Errors("# comment\n\n[package]\nversion = \"1.0.0\"\n");

        var error = AssertError(errors, "package.name", 3, "missing required key 'name'");
        Assert.Equal(1, error.Column);
    }

    [Theory]
    [InlineData("Hello_World", "must be a DNS label", "try 'hello-world'")]
    [InlineData("-app", "starting and ending with a letter or digit", "try 'app'")]
    [InlineData("app.v2", "lowercase letters a-z, digits and '-'", "try 'app-v2'")]
    public void BadName_ExplainsTheRule(string name, string phrase, string suggestion)
    {
        var errors = Errors($"[package]\nname = \"{name}\"\n");

        var error = AssertError(errors, "package.name", 2, phrase);
        Assert.Contains(suggestion, error.Message, StringComparison.Ordinal);
        Assert.Contains("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", error.Message, StringComparison.Ordinal);
        Assert.Equal(8, error.Column);
    }

    [Fact]
    public void TooLongName_SaysItsLength()
    {
        var errors = Errors($"[package]\nname = \"{new string('a', 64)}\"\n");

        AssertError(errors, "package.name", 2, "got 64 characters");
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("v1.0.0")]
    [InlineData("01.2.3")]
    public void BadVersion_RequiresSemver(string version)
    {
        var errors = ErrorsWithPackage($"version = \"{version}\"\n");

        AssertError(errors, "package.version", 3, "must be a semantic version MAJOR.MINOR.PATCH");
    }

    [Fact]
    public void HealthTimeoutAboveInterval_IsReportedOnTimeout()
    {
        var errors = ErrorsWithPackage("[health]\nendpoint = \"/healthz\"\ninterval = \"1s\"\ntimeout = \"2s\"\n");

        var error = AssertError(errors, "health.timeout", 6, "must be <= health.interval (1s), got 2s");
        Assert.Equal(11, error.Column);
    }

    [Fact]
    public void HealthTimeoutAboveDefaultInterval_SaysItIsTheDefault()
    {
        var errors = ErrorsWithPackage("[health]\nendpoint = \"/healthz\"\ntimeout = \"15s\"\n");

        AssertError(errors, "health.timeout", 5, "must be <= health.interval (10s, the default), got 15s");
    }

    [Theory]
    [InlineData("endpoint = \"healthz\"", "health.endpoint", "must be a path starting with \"/\"")]
    [InlineData("endpoint = \"/h\"\ninterval = \"0s\"", "health.interval", "must be > 0")]
    [InlineData("endpoint = \"/h\"\nunhealthy_threshold = 0", "health.unhealthy_threshold", "must be >= 1, got 0")]
    [InlineData("endpoint = \"/h\"\nhealthy_threshold = -1", "health.healthy_threshold", "must be >= 1, got -1")]
    public void HealthValues_AreChecked(string body, string field, string phrase)
    {
        var errors = ErrorsWithPackage("[health]\n" + body + "\n");

        Assert.Contains(phrase, Assert.Single(errors, e => e.Field == field).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HealthWithoutEndpoint_IsReportedOnHeader()
    {
        var errors = ErrorsWithPackage("[health]\ninterval = \"5s\"\n");

        AssertError(errors, "health.endpoint", 3, "missing required key 'endpoint'");
    }

    [Fact]
    public void CustomMetric_RequiredWhenMetricIsCustom()
    {
        var errors = ErrorsWithPackage("[runtime.scaling]\nmetric = \"custom\"\n");

        AssertError(errors, "runtime.scaling.custom_metric", 4, "required when runtime.scaling.metric = \"custom\"");
    }

    [Theory]
    [InlineData("metric = \"cpu\"\ncustom_metric = \"queue_depth\"", 5, "(metric is \"cpu\")")]
    [InlineData("custom_metric = \"queue_depth\"", 4, "(metric is \"request_concurrency\")")]
    public void CustomMetric_NotAllowedOtherwise(string body, int line, string phrase)
    {
        var errors = ErrorsWithPackage("[runtime.scaling]\n" + body + "\n");

        var error = AssertError(errors, "runtime.scaling.custom_metric", line, "only allowed when runtime.scaling.metric = \"custom\"");
        Assert.Contains(phrase, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("metric = \"cpus\"", "runtime.scaling.metric", "did you mean 'cpu'?")]
    [InlineData("target_value = 0", "runtime.scaling.target_value", "must be a finite number > 0, got 0")]
    [InlineData("target_value = -1.5", "runtime.scaling.target_value", "must be a finite number > 0, got -1.5")]
    [InlineData("target_value = inf", "runtime.scaling.target_value", "must be a finite number > 0")]
    [InlineData("scale_down_window = \"-5m\"", "runtime.scaling.scale_down_window", "must not be negative")]
    [InlineData("scale_up_window = \"30s1m\"", "runtime.scaling.scale_up_window", "decreasing order")]
    public void ScalingValues_AreChecked(string line, string field, string phrase)
    {
        var errors = ErrorsWithPackage("[runtime.scaling]\n" + line + "\n");

        AssertError(errors, field, 4, phrase);
    }

    [Fact]
    public void EnvironmentValues_MustBeStrings_AndKeysMustBeVariableNames()
    {
        var errors = ErrorsWithPackage("""
            [capabilities]
            environment = { PORT = 8080, DEBUG = true, BAD-KEY = "x", "MY.VAR" = "y", OK = "fine" }
            """);

        var port = AssertError(errors, "capabilities.environment.PORT", 4, "expected string, got integer 8080; quote it: \"8080\"");
        Assert.Equal(24, port.Column);
        AssertError(errors, "capabilities.environment.DEBUG", 4, "expected string, got boolean true");
        AssertError(errors, "capabilities.environment.BAD-KEY", 4, "invalid environment variable name 'BAD-KEY': must match ^[A-Za-z_][A-Za-z0-9_]*$");
        AssertError(errors, "capabilities.environment.\"MY.VAR\"", 4, "invalid environment variable name 'MY.VAR'");
        Assert.Equal(4, errors.Count);
    }

    [Fact]
    public void EnvironmentAsSubTable_ReportsEachLine()
    {
        var errors = ErrorsWithPackage("[capabilities.environment]\nA = \"1\"\nB = 2\n1X = \"y\"\n");

        AssertError(errors, "capabilities.environment.B", 5, "expected string, got integer 2");
        AssertError(errors, "capabilities.environment.1X", 6, "invalid environment variable name '1X'");
    }

    [Fact]
    public void ConfigValues_MustBeStrings()
    {
        var errors = ErrorsWithPackage("[capabilities]\nconfig = { nested = { a = \"b\" }, n = 1 }\n");

        AssertError(errors, "capabilities.config.nested", 4, "expected string, got table");
        AssertError(errors, "capabilities.config.n", 4, "expected string, got integer 1");
    }

    [Fact]
    public void HttpOutbound_EveryElementIsChecked()
    {
        var errors = ErrorsWithPackage("[capabilities]\nhttp_outbound = [\"https://api.example.com/v1\", 3, \"a..b\", \"*.ok.svc\"]\n");

        AssertError(errors, "capabilities.http_outbound[0]", 4, "is a URL; expected a host name or glob");
        AssertError(errors, "capabilities.http_outbound[1]", 4, "expected string, got integer 3");
        AssertError(errors, "capabilities.http_outbound[2]", 4, "invalid host 'a..b'");
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void PythonLanguage_SaysThereIsNoToolchain()
    {
        var errors = ErrorsWithPackage("[build]\nlang = \"python\"\n");

        var error = AssertError(errors, "build.lang", 4, "\"python\" is not supported: there is no Python-to-WebAssembly toolchain here");
        Assert.Contains("allowed values: c, cpp, rust, go, zig, typescript, javascript, wat", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Rust", "did you mean 'rust'?")]
    [InlineData("c++", "did you mean 'cpp'?")]
    [InlineData("ts", "did you mean 'typescript'?")]
    [InlineData("cobol", "allowed values: c, cpp, rust")]
    public void UnknownLanguage_ListsAllowedValues(string lang, string phrase)
    {
        var errors = ErrorsWithPackage($"[build]\nlang = \"{lang}\"\n");

        AssertError(errors, "build.lang", 4, phrase);
    }

    [Fact]
    public void EmptyStrings_AreRejected()
    {
        var errors = ErrorsWithPackage("[build]\noutput = \"\"\n");

        AssertError(errors, "build.output", 4, "must not be empty");
    }

    [Fact]
    public void ManyMistakes_AreAllReportedInOnePass_SortedByPosition()
    {
        var errors = Errors("""
            [package]
            name = "Hello_World"

            [build]
            lang = "python"

            [runtime]
            min_instances = -1
            max_instance = 5
            request_timeout = "5 parsecs"
            route = "hello"

            [runtime.resources]
            memory_limit = "12XB"
            cpu_weight = 0

            [runtime.scaling]
            metric = "custom"

            [capabilities]
            environment = { PORT = 8080 }

            [health]
            endpoint = "/healthz"
            interval = "1s"
            timeout = "2s"

            [foo]
            """);

        AssertError(errors, "package.name", 2, "DNS label");
        AssertError(errors, "build.lang", 5, "no Python-to-WebAssembly toolchain");
        AssertError(errors, "runtime.min_instances", 8, "must be >= 0");
        AssertError(errors, "runtime.max_instance", 9, "did you mean 'max_instances'?");
        AssertError(errors, "runtime.request_timeout", 10, "unknown unit 'parsecs'");
        AssertError(errors, "runtime.route", 11, "must start with \"/\"");
        AssertError(errors, "runtime.resources.memory_limit", 14, "unknown unit 'XB'");
        AssertError(errors, "runtime.resources.cpu_weight", 15, "must be >= 1");
        AssertError(errors, "runtime.scaling.custom_metric", 18, "required when");
        AssertError(errors, "capabilities.environment.PORT", 21, "expected string, got integer");
        AssertError(errors, "health.timeout", 26, "must be <= health.interval (1s)");
        AssertError(errors, "foo", 28, "unknown section [foo]");
        Assert.Equal(12, errors.Count);
        Assert.Equal(errors.OrderBy(e => e.Line).ThenBy(e => e.Column), errors);
    }

    [Fact]
    public void ParseOrThrow_MessageListsEveryErrorOnItsOwnLine()
    {
        var ex = Assert.Throws<ManifestException>(() => ManifestParser.ParseOrThrow(
            "[package]\nname = \"app\"\n[runtime]\nmin_instances = 3\nmax_instances = 2\n[runtime.resources]\ncpu_weight = 0\n",
            "svc/warp.toml"));

        Assert.Equal(2, ex.Errors.Count);
        var lines = ex.Message.Split(Environment.NewLine);
        Assert.Equal(
            [
                "svc/warp.toml:5:17: runtime.max_instances: must be >= runtime.min_instances (3), got 2",
                "svc/warp.toml:7:14: runtime.resources.cpu_weight: must be >= 1, got 0 (allowed: 1..10000)",
            ],
            lines);
    }

    [Fact]
    public void Parse_NeverThrowsForGarbage()
    {
        foreach (var garbage in new[] { "\0\0\0", "[[[", "= = =", "a = [1, 2", "\"unterminated", "[package]\nname = { }", "x = 1979-05-27" })
        {
            var result = ManifestParser.Parse(garbage);
            Assert.False(result.Success);
            Assert.NotEmpty(result.Errors);
            Assert.All(result.Errors, e => Assert.True(e.Line >= 1 && e.Column >= 1, e.ToString()));
        }
    }
}
