using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;
using DotNext.Buffers;
using DotNext.Net.Cluster.Consensus.Raft.Membership;

namespace WarpGrid.Raft;

/// <summary>
/// The cluster membership as DotNext sees it (in memory), seeded from and mirrored to the member's <c>members</c>
/// file so that members added or removed at runtime survive a restart.
/// </summary>
internal sealed class MemberStorage : InMemoryClusterConfigurationStorage<EndPoint>
{
    protected override IEqualityComparer<EndPoint> Comparer { get; } = new EndPointComparer();

    protected override void Encode(EndPoint address, ref BufferWriterSlim<byte> writer)
    {
        byte[] text = Encoding.UTF8.GetBytes(RaftStoreOptions.Format(address));
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, text.Length);
        writer.Write(length);
        writer.Write(text);
    }

    protected override EndPoint Decode(ref SequenceReader reader)
    {
        int length = reader.ReadLittleEndian<int>();
        byte[] text = new byte[length];
        reader.Read(text);
        string value = Encoding.UTF8.GetString(text);
        return RaftStoreOptions.TryParseEndPoint(value, out IPEndPoint endPoint)
            ? endPoint
            : throw new InvalidDataException($"The cluster configuration holds an address that is not HOST:PORT: '{value}'.");
    }

    /// <summary>Reads the persisted member list, or null when the member has none yet.</summary>
    public static List<IPEndPoint>? Load(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var members = new List<IPEndPoint>();
        foreach (string line in File.ReadAllLines(path))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (!RaftStoreOptions.TryParseEndPoint(line, out IPEndPoint endPoint))
            {
                throw new InvalidDataException($"The membership file '{path}' holds a line that is not HOST:PORT: '{line}'.");
            }

            members.Add(endPoint);
        }

        return members;
    }

    /// <summary>Writes the member list atomically (temporary file, fsync, rename).</summary>
    public static void Save(string path, IEnumerable<EndPoint> members)
    {
        string temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            byte[] text = Encoding.UTF8.GetBytes(string.Join('\n', members.Select(RaftStoreOptions.Format).Order(StringComparer.Ordinal)) + "\n");
            file.Write(text);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private sealed class EndPointComparer : IEqualityComparer<EndPoint>
    {
        public bool Equals(EndPoint? x, EndPoint? y) => x is null ? y is null : y is not null && RaftStoreOptions.Format(x) == RaftStoreOptions.Format(y);

        public int GetHashCode(EndPoint obj) => StringComparer.Ordinal.GetHashCode(RaftStoreOptions.Format(obj));
    }
}
