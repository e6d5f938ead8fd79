namespace WarpGrid.Cli.Validation;

/// <summary>An import or export of a component: its name and sort (<c>instance</c>, <c>func</c>, ...).</summary>
internal sealed record ComponentItem(string Name, string Sort);

/// <summary>What the top level of a component binary declares.</summary>
internal sealed record ComponentInfo(IReadOnlyList<ComponentItem> Imports, IReadOnlyList<ComponentItem> Exports, IReadOnlyList<ReadOnlyMemory<byte>> CoreModules);

/// <summary>
/// Reads the top-level import and export sections of a WebAssembly component (component model binary format) and
/// collects its embedded core modules, without compiling anything.
/// </summary>
internal static class ComponentInspector
{
    private const byte SectionCoreModule = 1;
    private const byte SectionComponent = 4;
    private const byte SectionImport = 10;
    private const byte SectionExport = 11;

    /// <summary>Parses <paramref name="bytes"/>; throws <see cref="FormatException"/> naming the offset when malformed.</summary>
    public static ComponentInfo Inspect(ReadOnlyMemory<byte> bytes)
    {
        var imports = new List<ComponentItem>();
        var exports = new List<ComponentItem>();
        var modules = new List<ReadOnlyMemory<byte>>();
        Walk(bytes, imports, exports, modules, topLevel: true);
        return new ComponentInfo(imports, exports, modules);
    }

    private static void Walk(ReadOnlyMemory<byte> bytes, List<ComponentItem> imports, List<ComponentItem> exports, List<ReadOnlyMemory<byte>> modules, bool topLevel)
    {
        var span = bytes.Span;
        if (span.Length < 8 || !span[..4].SequenceEqual("\0asm"u8) || span[6] != 1)
        {
            throw new FormatException("not a component: bad header");
        }

        var offset = 8;
        while (offset < span.Length)
        {
            var id = span[offset++];
            var size = (int)ReadU32(span, ref offset);
            if (size < 0 || offset + size > span.Length)
            {
                throw new FormatException($"section {id} at offset {offset} runs past the end of the file");
            }

            var body = bytes.Slice(offset, size);
            switch (id)
            {
                case SectionCoreModule:
                    modules.Add(body);
                    break;
                case SectionComponent:
                    Walk(body, [], [], modules, topLevel: false);
                    break;
                case SectionImport when topLevel:
                    ReadItems(body.Span, imports, isImport: true);
                    break;
                case SectionExport when topLevel:
                    ReadItems(body.Span, exports, isImport: false);
                    break;
            }

            offset += size;
        }
    }

    private static void ReadItems(ReadOnlySpan<byte> section, List<ComponentItem> items, bool isImport)
    {
        var offset = 0;
        var count = ReadU32(section, ref offset);
        for (var i = 0; i < count; i++)
        {
            var name = ReadName(section, ref offset);
            if (isImport)
            {
                items.Add(new ComponentItem(name, ReadExternDesc(section, ref offset)));
                continue;
            }

            var sort = ReadSort(section, ref offset);
            ReadU32(section, ref offset); // index
            if (section[offset++] == 1)
            {
                ReadExternDesc(section, ref offset);
            }

            items.Add(new ComponentItem(name, sort));
        }
    }

    private static string ReadName(ReadOnlySpan<byte> span, ref int offset)
    {
        var tag = span[offset++];
        if (tag > 1)
        {
            throw new FormatException($"unknown import/export name tag 0x{tag:x2} at offset {offset - 1}");
        }

        var length = (int)ReadU32(span, ref offset);
        var name = System.Text.Encoding.UTF8.GetString(span.Slice(offset, length));
        offset += length;
        return name;
    }

    private static string ReadSort(ReadOnlySpan<byte> span, ref int offset)
    {
        var sort = span[offset++];
        if (sort == 0)
        {
            var core = span[offset++];
            return core switch
            {
                0x00 => "core func",
                0x01 => "core table",
                0x02 => "core memory",
                0x03 => "core global",
                0x10 => "core type",
                0x11 => "core module",
                0x12 => "core instance",
                _ => throw new FormatException($"unknown core sort 0x{core:x2}"),
            };
        }

        return SortName(sort);
    }

    private static string SortName(byte sort) => sort switch
    {
        0x01 => "func",
        0x02 => "value",
        0x03 => "type",
        0x04 => "component",
        0x05 => "instance",
        _ => throw new FormatException($"unknown sort 0x{sort:x2}"),
    };

    private static string ReadExternDesc(ReadOnlySpan<byte> span, ref int offset)
    {
        var kind = span[offset++];
        switch (kind)
        {
            case 0x00: // core module: 0x00 0x11 typeidx
                offset++;
                ReadU32(span, ref offset);
                return "core module";
            case 0x02: // value bound
                offset++;
                ReadU32(span, ref offset);
                return "value";
            case 0x03: // type bound: 0x00 i (eq) | 0x01 (sub resource)
                if (span[offset++] == 0x00)
                {
                    ReadU32(span, ref offset);
                }

                return "type";
            case 0x01:
            case 0x04:
            case 0x05:
                ReadU32(span, ref offset);
                return SortName(kind);
            default:
                throw new FormatException($"unknown extern description 0x{kind:x2} at offset {offset - 1}");
        }
    }

    private static uint ReadU32(ReadOnlySpan<byte> span, ref int offset)
    {
        uint result = 0;
        var shift = 0;
        while (true)
        {
            if (offset >= span.Length || shift > 28)
            {
                throw new FormatException($"malformed LEB128 integer at offset {offset}");
            }

            var b = span[offset++];
            result |= (uint)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }

            shift += 7;
        }
    }
}
