using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("WarpGrid.Raft.Tests")]
