using System.Runtime.CompilerServices;

// The storage tests check internals that have no public surface: the software CRC path, flush and compaction counters.
[assembly: InternalsVisibleTo("WarpGrid.Core.Tests")]
