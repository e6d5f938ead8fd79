using System.Globalization;
using System.Text;
using Tomlyn.Syntax;
using static System.FormattableString;

namespace WarpGrid.Core.Manifest;

/// <summary>Whether a field was absent, present but invalid (already reported), or present and valid.</summary>
internal enum FieldState
{
    Absent,
    Invalid,
    Valid,
}

/// <summary>The outcome of reading one field.</summary>
internal readonly record struct Field<T>(FieldState State, T Value, TomlPosition Position)
{
    public bool IsPresent => State != FieldState.Absent;

    public bool IsValid => State == FieldState.Valid;

    /// <summary>False when the field is invalid; cross-field checks are skipped then.</summary>
    public bool IsUsable => State != FieldState.Invalid;

    public T Or(T fallback) => State == FieldState.Valid ? Value : fallback;

    public Field<TOther> With<TOther>(TOther value) => new(State, value, Position);

    public Field<TOther> AsInvalid<TOther>() => new(FieldState.Invalid, default!, Position);
}

/// <summary>
/// Reads the keys of one table of the manifest. Creating it reports every key that is not allowed in the table;
/// each getter reports type errors with the field's dotted path and exact position.
/// </summary>
internal sealed class ManifestSection
{
    private readonly ManifestValidator _validator;

    public ManifestSection(ManifestValidator validator, string path, TomlTable? table, IReadOnlyList<string> allowedKeys)
    {
        _validator = validator;
        Path = path;
        Table = table;
        if (table is null)
        {
            return;
        }

        foreach (var entry in table.Entries)
        {
            if (!allowedKeys.Contains(entry.Key, StringComparer.Ordinal))
            {
                ReportUnknown(entry, allowedKeys);
            }
        }
    }

    public string Path { get; }

    public TomlTable? Table { get; }

    public bool IsPresent => Table is not null;

    /// <summary>The position of the section itself: its header, or the first line when it is absent.</summary>
    public TomlPosition Position => Table?.Position ?? TomlPosition.Start;

    private string Display => Path.Length == 0 ? "the top level" : "[" + Path + "]";

    public static string FieldPath(string parent, string key)
    {
        var segment = IsBareKey(key) ? key : "\"" + Escape(key) + "\"";
        return parent.Length == 0 ? segment : parent + "." + segment;
    }

    public string FieldOf(string key) => FieldPath(Path, key);

    public TomlPosition PositionOf(string key) => Table?.Find(key)?.ValuePosition ?? Position;

    public void Report(TomlPosition position, string key, string message) => _validator.Report(position, FieldOf(key), message);

    public Field<string> String(string key, bool allowEmpty = false)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Value is not StringValueSyntax text || text.Value is null)
        {
            ReportType(entry, FieldOf(key), "string");
            return Invalid<string>(entry);
        }

        if (!allowEmpty && string.IsNullOrWhiteSpace(text.Value))
        {
            _validator.Report(entry.ValuePosition, FieldOf(key), "must not be empty");
            return Invalid<string>(entry);
        }

        return new(FieldState.Valid, text.Value, entry.ValuePosition);
    }

    public Field<long> Integer(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Value is not IntegerValueSyntax integer)
        {
            ReportType(entry, FieldOf(key), "integer");
            return Invalid<long>(entry);
        }

        return new(FieldState.Valid, integer.Value, entry.ValuePosition);
    }

    /// <summary>An integer within <paramref name="min"/>..<paramref name="max"/>.</summary>
    public Field<int> Int32(string key, int min, int max)
    {
        var field = Integer(key);
        if (!field.IsValid)
        {
            return field.State == FieldState.Absent ? default : field.AsInvalid<int>();
        }

        if (!CheckRange(field.Value, min, max, field.Position, key))
        {
            return field.AsInvalid<int>();
        }

        return field.With((int)field.Value);
    }

    /// <summary>An integer or a float.</summary>
    public Field<double> Number(string key)
    {
        var entry = Table?.Find(key);
        switch (entry?.Value)
        {
            case null when entry is null:
                return default;
            case IntegerValueSyntax integer:
                return new(FieldState.Valid, integer.Value, entry.ValuePosition);
            case FloatValueSyntax number:
                return new(FieldState.Valid, number.Value, entry.ValuePosition);
            default:
                ReportType(entry, FieldOf(key), "number (integer or float)");
                return Invalid<double>(entry);
        }
    }

    public Field<bool> Boolean(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Value is not BooleanValueSyntax boolean)
        {
            ReportType(entry, FieldOf(key), "boolean (true or false)");
            return Invalid<bool>(entry);
        }

        return new(FieldState.Valid, boolean.Value, entry.ValuePosition);
    }

    /// <summary>A sub-table, written as <c>[path.key]</c>, as dotted keys, or as an inline table.</summary>
    public Field<TomlTable> SubTable(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Table is null || entry.IsTableArray)
        {
            ReportType(entry, FieldOf(key), "table");
            return Invalid<TomlTable>(entry);
        }

        return new(FieldState.Valid, entry.Table, entry.ValuePosition);
    }

    /// <summary>
    /// An array of tables, written as <c>[[path.key]]</c> headers or as an array of inline tables
    /// (<c>key = [{ a = 1 }, { a = 2 }]</c>); an empty array <c>key = []</c> is an empty list.
    /// Each element comes with its dotted path (<c>path.key[i]</c>).
    /// </summary>
    public Field<IReadOnlyList<(TomlTable Table, string Path)>> TableArray(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (!entry.IsTableArray)
        {
            if (entry.Value is ArraySyntax { Items.ChildrenCount: 0 })
            {
                return new(FieldState.Valid, [], entry.ValuePosition);
            }

            ReportType(entry, FieldOf(key), "array of tables", hint: Invariant($"write [[{FieldOf(key)}]] sections, or {key} = [{{ ... }}, {{ ... }}]"));
            return Invalid<IReadOnlyList<(TomlTable, string)>>(entry);
        }

        var items = entry.Elements.Select((t, i) => (t, Invariant($"{FieldOf(key)}[{i}]"))).ToArray();
        return new(FieldState.Valid, items, entry.ValuePosition);
    }

    /// <summary>
    /// An array of strings; every element that is not a string is reported with its own position.
    /// The string elements are returned even when the field is invalid.
    /// </summary>
    public Field<IReadOnlyList<(string Value, TomlPosition Position, int Index)>> StringArray(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Value is not ArraySyntax array)
        {
            ReportType(entry, FieldOf(key), "array of strings");
            return Invalid<IReadOnlyList<(string, TomlPosition, int)>>(entry);
        }

        var items = new List<(string, TomlPosition, int)>();
        var valid = true;
        var index = 0;
        foreach (var item in array.Items)
        {
            if (item.Value is null)
            {
                continue;
            }

            var position = TomlPosition.From(item.Value.Span.Start);
            if (item.Value is StringValueSyntax text && text.Value is not null)
            {
                items.Add((text.Value, position, index));
            }
            else
            {
                _validator.Report(position, FieldOf(key) + "[" + index.ToString(CultureInfo.InvariantCulture) + "]",
                    "expected string, got " + DescribeValue(item.Value));
                valid = false;
            }

            index++;
        }

        // When invalid, the string elements are still returned so that callers can check them too.
        return new(valid ? FieldState.Valid : FieldState.Invalid, items, entry.ValuePosition);
    }

    /// <summary>A table whose values are all strings (e.g. <c>environment</c>); keys are checked by <paramref name="keyRule"/>.</summary>
    public Field<IReadOnlyDictionary<string, string>> StringTable(string key, Func<string, string?> keyRule)
    {
        var table = SubTable(key);
        if (!table.IsValid)
        {
            return table.State == FieldState.Absent ? default : table.AsInvalid<IReadOnlyDictionary<string, string>>();
        }

        var path = FieldOf(key);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var valid = true;
        foreach (var entry in table.Value.Entries)
        {
            var entryPath = FieldPath(path, entry.Key);
            var keyError = keyRule(entry.Key);
            if (keyError is not null)
            {
                _validator.Report(entry.KeyPosition, entryPath, keyError);
                valid = false;
            }

            if (entry.Value is StringValueSyntax text && text.Value is not null)
            {
                values[entry.Key] = text.Value;
            }
            else
            {
                ReportType(entry, entryPath, "string");
                valid = false;
            }
        }

        return valid
            ? table.With<IReadOnlyDictionary<string, string>>(values)
            : table.AsInvalid<IReadOnlyDictionary<string, string>>();
    }

    /// <summary>A duration string such as <c>"30s"</c>.</summary>
    public Field<TimeSpan> Duration(string key)
    {
        var entry = Table?.Find(key);
        if (entry is null)
        {
            return default;
        }

        if (entry.Value is not StringValueSyntax text || text.Value is null)
        {
            ReportType(entry, FieldOf(key), "duration string such as \"30s\"", hint: "durations need a unit: " + DurationParser.AllowedUnits);
            return Invalid<TimeSpan>(entry);
        }

        if (!DurationParser.TryParse(text.Value, out var value, out var error))
        {
            _validator.Report(entry.ValuePosition, FieldOf(key), error!);
            return Invalid<TimeSpan>(entry);
        }

        return new(FieldState.Valid, value, entry.ValuePosition);
    }

    /// <summary>A duration within bounds: greater than zero when <paramref name="positive"/>, else zero or more; at most <paramref name="max"/> when given.</summary>
    public Field<TimeSpan> Duration(string key, bool positive, TimeSpan? max)
    {
        var field = Duration(key);
        if (!field.IsValid)
        {
            return field;
        }

        var allowed = (positive ? "> 0" : ">= 0") + (max is { } limit ? " and <= " + DurationParser.Format(limit) : string.Empty);
        if (positive && field.Value <= TimeSpan.Zero)
        {
            Report(field.Position, key, $"must be > 0, got {DurationParser.Format(field.Value)} (allowed: {allowed})");
            return field.AsInvalid<TimeSpan>();
        }

        if (max is { } upper && field.Value > upper)
        {
            Report(field.Position, key, $"must be <= {DurationParser.Format(upper)}, got {DurationParser.Format(field.Value)} (allowed: {allowed})");
            return field.AsInvalid<TimeSpan>();
        }

        return field;
    }

    /// <summary>A byte size: a TOML integer (bytes) or a string such as <c>"128MB"</c>.</summary>
    public Field<long> ByteSizeValue(string key)
    {
        var entry = Table?.Find(key);
        switch (entry?.Value)
        {
            case null when entry is null:
                return default;
            case IntegerValueSyntax integer:
                if (integer.Value < 0)
                {
                    _validator.Report(entry.ValuePosition, FieldOf(key), $"byte size must not be negative, got {integer.Value.ToString(CultureInfo.InvariantCulture)}");
                    return Invalid<long>(entry);
                }

                return new(FieldState.Valid, integer.Value, entry.ValuePosition);
            case StringValueSyntax { Value: { } text }:
                if (!ByteSize.TryParse(text, out var bytes, out var error))
                {
                    _validator.Report(entry.ValuePosition, FieldOf(key), error!);
                    return Invalid<long>(entry);
                }

                return new(FieldState.Valid, bytes, entry.ValuePosition);
            default:
                ReportType(entry, FieldOf(key), "byte size (an integer number of bytes, or a string such as \"128MB\")");
                return Invalid<long>(entry);
        }
    }

    /// <summary>One of the allowed string values of an enum.</summary>
    public Field<T> Enum<T>(string key, IReadOnlyList<(string Name, T Value)> values, Func<string, string?>? special = null)
        where T : struct
    {
        var field = String(key, allowEmpty: true);
        if (!field.IsValid)
        {
            return field.State == FieldState.Absent ? default : field.AsInvalid<T>();
        }

        foreach (var (name, value) in values)
        {
            if (string.Equals(name, field.Value, StringComparison.Ordinal))
            {
                return field.With(value);
            }
        }

        var names = values.Select(v => v.Name).ToArray();
        var allowed = "allowed values: " + string.Join(", ", names);
        var message = special?.Invoke(field.Value);
        if (message is null)
        {
            var suggestion = Suggestions.Closest(field.Value, names);
            message = $"invalid value \"{field.Value}\"; {allowed}" + (suggestion is null ? string.Empty : $"; did you mean '{suggestion}'?");
        }
        else
        {
            message += "; " + allowed;
        }

        Report(field.Position, key, message);
        return field.AsInvalid<T>();
    }

    public bool CheckRange(long value, long min, long max, TomlPosition position, string key)
    {
        var allowed = max == int.MaxValue ? Invariant($">= {min}") : Invariant($"{min}..{max}");
        if (value < min)
        {
            Report(position, key, Invariant($"must be >= {min}, got {value} (allowed: {allowed})"));
            return false;
        }

        if (value > max)
        {
            Report(position, key, Invariant($"must be <= {max}, got {value} (allowed: {allowed})"));
            return false;
        }

        return true;
    }

    public static string DescribeValue(ValueSyntax? value)
    {
        var kind = TomlEntry.Describe(TomlEntry.KindOf(value));
        var text = value?.ToString()?.Trim() ?? string.Empty;
        if (value is InlineTableSyntax || text.Length == 0)
        {
            return kind;
        }

        if (text.Length > 40)
        {
            text = text[..37] + "...";
        }

        return kind + " " + text;
    }

    private static bool IsBareKey(string key) =>
        key.Length > 0 && key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_' || c == '-');

    private static string Escape(string key)
    {
        var builder = new StringBuilder(key.Length);
        foreach (var c in key)
        {
            builder.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when char.IsControl(c) => "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }

        return builder.ToString();
    }

    private static Field<T> Invalid<T>(TomlEntry entry) => new(FieldState.Invalid, default!, entry.ValuePosition);

    private void ReportType(TomlEntry entry, string path, string expected, string? hint = null)
    {
        var got = entry.Table is not null ? TomlEntry.Describe(entry.Kind) : DescribeValue(entry.Value);
        var message = $"expected {expected}, got {got}";
        if (expected == "string" && entry.Value is IntegerValueSyntax or FloatValueSyntax or BooleanValueSyntax)
        {
            hint ??= $"quote it: \"{entry.Value.ToString()?.Trim()}\"";
        }

        _validator.Report(entry.ValuePosition, path, hint is null ? message : message + "; " + hint);
    }

    private void ReportUnknown(TomlEntry entry, IReadOnlyList<string> allowedKeys)
    {
        var path = FieldOf(entry.Key);
        var isTable = entry.Table is not null;
        var builder = new StringBuilder();
        if (Path.Length == 0)
        {
            builder.Append(isTable ? $"unknown section [{entry.Key}]" : $"unknown top-level key '{entry.Key}'");
        }
        else
        {
            builder.Append($"unknown key '{entry.Key}' in {Display}");
        }

        var suggestion = Suggestions.Closest(entry.Key, allowedKeys);
        if (suggestion is not null)
        {
            builder.Append($"; did you mean '{suggestion}'?");
        }
        else if (Path.Length == 0 && ManifestValidator.SectionOfKey(entry.Key) is { } home)
        {
            builder.Append($"; '{entry.Key}' belongs in [{home}]");
        }

        builder.Append(Path.Length == 0 ? " (allowed sections: " : $" (allowed keys in {Display}: ")
            .Append(string.Join(", ", allowedKeys))
            .Append(')');
        _validator.Report(entry.KeyPosition, path, builder.ToString());
    }
}
