using Tomlyn.Syntax;

namespace WarpGrid.Core.Manifest;

/// <summary>A 1-based position in the manifest text.</summary>
internal readonly record struct TomlPosition(int Line, int Column)
{
    public static readonly TomlPosition Start = new(1, 1);

    /// <summary>Converts a Tomlyn position (0-based line and column) to a 1-based one.</summary>
    public static TomlPosition From(TextPosition position) => new(position.Line + 1, position.Column + 1);
}

/// <summary>The TOML type of a value, as named in error messages.</summary>
internal enum TomlValueKind
{
    String,
    Integer,
    Float,
    Boolean,
    DateTime,
    Array,
    Table,
    TableArray,
}

/// <summary>
/// A TOML table merged from every place that defines it (<c>[a.b]</c> headers, dotted keys <c>b.c = 1</c>
/// and inline tables <c>b = { c = 1 }</c>), keeping the source position of every key and value.
/// </summary>
internal sealed class TomlTable
{
    private readonly Dictionary<string, TomlEntry> _byKey = new(StringComparer.Ordinal);
    private readonly List<TomlEntry> _entries = [];

    public TomlTable(TomlPosition position)
    {
        Position = position;
    }

    /// <summary>Where the table is introduced: its <c>[header]</c>, or the key that created it.</summary>
    public TomlPosition Position { get; set; }

    public bool HasHeader { get; set; }

    public IReadOnlyList<TomlEntry> Entries => _entries;

    public TomlEntry? Find(string key) => _byKey.GetValueOrDefault(key);

    public void Add(TomlEntry entry)
    {
        _byKey.Add(entry.Key, entry);
        _entries.Add(entry);
    }
}

/// <summary>One key of a <see cref="TomlTable"/>: a value, or a nested table.</summary>
internal sealed class TomlEntry
{
    public TomlEntry(string key, TomlPosition keyPosition, TomlPosition valuePosition)
    {
        Key = key;
        KeyPosition = keyPosition;
        ValuePosition = valuePosition;
    }

    public string Key { get; }

    public TomlPosition KeyPosition { get; }

    public TomlPosition ValuePosition { get; }

    /// <summary>The value when it is not a table (string, number, boolean, date-time or array).</summary>
    public ValueSyntax? Value { get; init; }

    /// <summary>The nested table (header, dotted key, inline table, or first element of an array of tables).</summary>
    public TomlTable? Table { get; init; }

    public bool IsTableArray { get; init; }

    /// <summary>Every element of an array of tables (<c>[[a.b]]</c> headers, or an array of inline tables), in order.</summary>
    public List<TomlTable> Elements { get; } = [];

    public TomlValueKind Kind => IsTableArray ? TomlValueKind.TableArray : Table is not null ? TomlValueKind.Table : KindOf(Value);

    public static TomlValueKind KindOf(ValueSyntax? value) => value switch
    {
        StringValueSyntax => TomlValueKind.String,
        IntegerValueSyntax => TomlValueKind.Integer,
        FloatValueSyntax => TomlValueKind.Float,
        BooleanValueSyntax => TomlValueKind.Boolean,
        DateTimeValueSyntax => TomlValueKind.DateTime,
        ArraySyntax => TomlValueKind.Array,
        _ => TomlValueKind.Table,
    };

    public static string Describe(TomlValueKind kind) => kind switch
    {
        TomlValueKind.String => "string",
        TomlValueKind.Integer => "integer",
        TomlValueKind.Float => "float",
        TomlValueKind.Boolean => "boolean",
        TomlValueKind.DateTime => "date-time",
        TomlValueKind.Array => "array",
        TomlValueKind.Table => "table",
        _ => "array of tables",
    };
}

/// <summary>
/// Builds the <see cref="TomlTable"/> tree from a Tomlyn syntax tree. Conflicting definitions (which Tomlyn's
/// validation already reports) keep the first definition. Key/value pairs that contain a syntax error are skipped:
/// their value is unreliable and validating it would only repeat the syntax error in other words.
/// </summary>
internal sealed class TomlTreeBuilder
{
    private readonly int[] _errorOffsets;

    private TomlTreeBuilder(int[] errorOffsets)
    {
        _errorOffsets = errorOffsets;
    }

    public static TomlTable Build(DocumentSyntax document)
    {
        var errorOffsets = document.Diagnostics
            .Where(d => d.Kind == DiagnosticMessageKind.Error)
            .Select(d => d.Span.Start.Offset)
            .ToArray();
        return new TomlTreeBuilder(errorOffsets).BuildTree(document);
    }

    private TomlTable BuildTree(DocumentSyntax document)
    {
        var root = new TomlTable(TomlPosition.Start);
        foreach (var keyValue in document.KeyValues)
        {
            AddKeyValue(root, keyValue);
        }

        foreach (var header in document.Tables)
        {
            var target = header.Name is null ? null : OpenHeader(root, header);
            if (target is null)
            {
                continue;
            }

            foreach (var keyValue in header.Items)
            {
                AddKeyValue(target, keyValue);
            }
        }

        return root;
    }

    private static TomlTable? OpenHeader(TomlTable root, TableSyntaxBase header)
    {
        var segments = Segments(header.Name!);
        if (segments is null)
        {
            return null;
        }

        var headerPosition = TomlPosition.From(header.Span.Start);
        var table = root;
        for (var i = 0; i < segments.Count - 1; i++)
        {
            table = OpenImplicit(table, segments[i]);
            if (table is null)
            {
                return null;
            }
        }

        var (name, position) = segments[^1];
        var existing = table.Find(name);
        if (header is TableArraySyntax)
        {
            var element = new TomlTable(headerPosition) { HasHeader = true };
            if (existing is not null)
            {
                if (!existing.IsTableArray || existing.Value is not null)
                {
                    return null; // a conflict: reported by Tomlyn
                }

                existing.Elements.Add(element); // a further element of the array of tables
                return element;
            }

            var entry = new TomlEntry(name, position, headerPosition) { Table = element, IsTableArray = true };
            entry.Elements.Add(element);
            table.Add(entry);
            return element;
        }

        if (existing is null)
        {
            var created = new TomlTable(headerPosition) { HasHeader = true };
            table.Add(new TomlEntry(name, position, headerPosition) { Table = created });
            return created;
        }

        if (existing.Table is null || existing.IsTableArray || existing.Table.HasHeader)
        {
            return null; // redefinition: reported by Tomlyn
        }

        existing.Table.HasHeader = true;
        existing.Table.Position = headerPosition;
        return existing.Table;
    }

    private static TomlTable? OpenImplicit(TomlTable table, (string Name, TomlPosition Position) segment)
    {
        var existing = table.Find(segment.Name);
        if (existing is null)
        {
            var created = new TomlTable(segment.Position);
            table.Add(new TomlEntry(segment.Name, segment.Position, segment.Position) { Table = created });
            return created;
        }

        return existing.Table;
    }

    private void AddKeyValue(TomlTable table, KeyValueSyntax keyValue)
    {
        if (keyValue.Key is null || keyValue.Value is null || ContainsError(keyValue))
        {
            return;
        }

        var segments = Segments(keyValue.Key);
        if (segments is null)
        {
            return;
        }

        var target = table;
        for (var i = 0; i < segments.Count - 1; i++)
        {
            target = OpenImplicit(target, segments[i]);
            if (target is null)
            {
                return;
            }
        }

        var (name, position) = segments[^1];
        if (target.Find(name) is not null)
        {
            return; // duplicate key: reported by Tomlyn
        }

        var valuePosition = TomlPosition.From(keyValue.Value.Span.Start);
        if (keyValue.Value is InlineTableSyntax inline)
        {
            var nested = new TomlTable(valuePosition);
            foreach (var item in inline.Items)
            {
                if (item.KeyValue is not null)
                {
                    AddKeyValue(nested, item.KeyValue);
                }
            }

            target.Add(new TomlEntry(name, position, valuePosition) { Table = nested });
        }
        else if (keyValue.Value is ArraySyntax array && array.Items.ChildrenCount > 0 && array.Items.All(i => i.Value is InlineTableSyntax))
        {
            // An array of inline tables is an array of tables written inline: [{ key = "a" }, { key = "b" }].
            var entry = new TomlEntry(name, position, valuePosition) { Value = keyValue.Value, IsTableArray = true };
            foreach (var item in array.Items)
            {
                var inlineTable = (InlineTableSyntax)item.Value!;
                var nested = new TomlTable(TomlPosition.From(inlineTable.Span.Start));
                foreach (var inlineItem in inlineTable.Items)
                {
                    if (inlineItem.KeyValue is not null)
                    {
                        AddKeyValue(nested, inlineItem.KeyValue);
                    }
                }

                entry.Elements.Add(nested);
            }

            target.Add(entry);
        }
        else
        {
            target.Add(new TomlEntry(name, position, valuePosition) { Value = keyValue.Value });
        }
    }

    private bool ContainsError(SyntaxNode node)
    {
        var start = node.Span.Start.Offset;
        var end = node.Span.End.Offset;
        return _errorOffsets.Any(offset => offset >= start && offset <= end);
    }

    private static List<(string Name, TomlPosition Position)>? Segments(KeySyntax key)
    {
        var segments = new List<(string, TomlPosition)>();
        if (!TryAddSegment(segments, key.Key))
        {
            return null;
        }

        foreach (var dotted in key.DotKeys)
        {
            if (!TryAddSegment(segments, dotted.Key))
            {
                return null;
            }
        }

        return segments;
    }

    private static bool TryAddSegment(List<(string, TomlPosition)> segments, BareKeyOrStringValueSyntax? key)
    {
        var name = key switch
        {
            BareKeySyntax bare => bare.Key?.Text,
            StringValueSyntax quoted => quoted.Value,
            _ => null,
        };
        if (name is null)
        {
            return false;
        }

        segments.Add((name, TomlPosition.From(key!.Span.Start)));
        return true;
    }
}
