using System.Runtime.CompilerServices;

// The storage tests check internals that have no public surface: the software CRC path, flush and compaction counters.
[assembly: InternalsVisibleTo("WarpGrid.Core.Tests")]

// The Raft-replicated store reuses the watch history, key validation and CRC of the embedded store.
[assembly: InternalsVisibleTo("WarpGrid.Raft")]
