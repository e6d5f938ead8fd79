using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using Wasmtime;

namespace WarpGrid.Core.Runtime.Wasi;

/// <summary>
/// A managed implementation of WASI preview 1 (<c>wasi_snapshot_preview1</c>) for sandboxed request handlers:
/// arguments, environment, clocks, randomness and in-memory standard streams. There is no filesystem and no network:
/// file and socket functions exist (so any wasm32-wasi program links) but fail with <c>EBADF</c> or <c>ENOTCAPABLE</c>.
/// </summary>
/// <remarks>
/// Host functions are defined once per engine on a shared <see cref="Linker"/>; each reads its per-store state from
/// the store data, a <see cref="GuestContext"/>. This avoids Wasmtime's own WASI context, whose per-store set-up and
/// first call cost more than a whole request here.
/// </remarks>
public static class WasiPreview1
{
    /// <summary>The import module name.</summary>
    public const string ModuleName = "wasi_snapshot_preview1";

    private const int Success = 0;
    private const int Ebadf = 8;
    private const int Efault = 21;
    private const int Efbig = 22;
    private const int Einval = 28;
    private const int Enosys = 52;
    private const int Enotsup = 58;
    private const int Espipe = 70;
    private const int Enotcapable = 76;

    private const ulong RightsStdin = (1UL << 1) | (1UL << 27);   // fd_read | poll_fd_readwrite
    private const ulong RightsStdout = (1UL << 6) | (1UL << 27);  // fd_write | poll_fd_readwrite

    private static readonly ValueKind I32 = ValueKind.Int32;
    private static readonly ValueKind I64 = ValueKind.Int64;

    /// <summary>Every function this host provides, with its signature (parameters, results).</summary>
    public static IReadOnlyDictionary<string, (ValueKind[] Parameters, ValueKind[] Results)> Signatures { get; } = new Dictionary<string, (ValueKind[], ValueKind[])>
    {
        ["args_get"] = ([I32, I32], [I32]),
        ["args_sizes_get"] = ([I32, I32], [I32]),
        ["environ_get"] = ([I32, I32], [I32]),
        ["environ_sizes_get"] = ([I32, I32], [I32]),
        ["clock_res_get"] = ([I32, I32], [I32]),
        ["clock_time_get"] = ([I32, I64, I32], [I32]),
        ["fd_advise"] = ([I32, I64, I64, I32], [I32]),
        ["fd_allocate"] = ([I32, I64, I64], [I32]),
        ["fd_close"] = ([I32], [I32]),
        ["fd_datasync"] = ([I32], [I32]),
        ["fd_fdstat_get"] = ([I32, I32], [I32]),
        ["fd_fdstat_set_flags"] = ([I32, I32], [I32]),
        ["fd_fdstat_set_rights"] = ([I32, I64, I64], [I32]),
        ["fd_filestat_get"] = ([I32, I32], [I32]),
        ["fd_filestat_set_size"] = ([I32, I64], [I32]),
        ["fd_filestat_set_times"] = ([I32, I64, I64, I32], [I32]),
        ["fd_pread"] = ([I32, I32, I32, I64, I32], [I32]),
        ["fd_prestat_get"] = ([I32, I32], [I32]),
        ["fd_prestat_dir_name"] = ([I32, I32, I32], [I32]),
        ["fd_pwrite"] = ([I32, I32, I32, I64, I32], [I32]),
        ["fd_read"] = ([I32, I32, I32, I32], [I32]),
        ["fd_readdir"] = ([I32, I32, I32, I64, I32], [I32]),
        ["fd_renumber"] = ([I32, I32], [I32]),
        ["fd_seek"] = ([I32, I64, I32, I32], [I32]),
        ["fd_sync"] = ([I32], [I32]),
        ["fd_tell"] = ([I32, I32], [I32]),
        ["fd_write"] = ([I32, I32, I32, I32], [I32]),
        ["path_create_directory"] = ([I32, I32, I32], [I32]),
        ["path_filestat_get"] = ([I32, I32, I32, I32, I32], [I32]),
        ["path_filestat_set_times"] = ([I32, I32, I32, I32, I64, I64, I32], [I32]),
        ["path_link"] = ([I32, I32, I32, I32, I32, I32, I32], [I32]),
        ["path_open"] = ([I32, I32, I32, I32, I32, I64, I64, I32, I32], [I32]),
        ["path_readlink"] = ([I32, I32, I32, I32, I32, I32], [I32]),
        ["path_remove_directory"] = ([I32, I32, I32], [I32]),
        ["path_rename"] = ([I32, I32, I32, I32, I32, I32], [I32]),
        ["path_symlink"] = ([I32, I32, I32, I32, I32], [I32]),
        ["path_unlink_file"] = ([I32, I32, I32], [I32]),
        ["poll_oneoff"] = ([I32, I32, I32, I32], [I32]),
        ["proc_exit"] = ([I32], []),
        ["proc_raise"] = ([I32], [I32]),
        ["sched_yield"] = ([], [I32]),
        ["random_get"] = ([I32, I32], [I32]),
        ["sock_accept"] = ([I32, I32, I32], [I32]),
        ["sock_recv"] = ([I32, I32, I32, I32, I32, I32], [I32]),
        ["sock_send"] = ([I32, I32, I32, I32, I32], [I32]),
        ["sock_shutdown"] = ([I32, I32], [I32]),
    };

    /// <summary>Defines every <c>wasi_snapshot_preview1</c> function on <paramref name="linker"/>.</summary>
    public static void Define(Linker linker)
    {
        ArgumentNullException.ThrowIfNull(linker);
        const string M = ModuleName;

        linker.DefineFunction(M, "args_sizes_get", (Caller c, int countPtr, int sizePtr) =>
        {
            var ctx = Ctx(c);
            var mem = Mem(c, ctx);
            return TryWriteU32(mem, countPtr, (uint)ctx.ArgCount) && TryWriteU32(mem, sizePtr, (uint)ctx.ArgBlock.Length) ? Success : Efault;
        });
        linker.DefineFunction(M, "args_get", (Caller c, int argv, int buf) =>
        {
            var ctx = Ctx(c);
            return WriteStringTable(Mem(c, ctx), ctx.ArgBlock, argv, buf);
        });
        linker.DefineFunction(M, "environ_sizes_get", (Caller c, int countPtr, int sizePtr) =>
        {
            var ctx = Ctx(c);
            var mem = Mem(c, ctx);
            return TryWriteU32(mem, countPtr, (uint)ctx.EnvCount) && TryWriteU32(mem, sizePtr, (uint)ctx.EnvBlock.Length) ? Success : Efault;
        });
        linker.DefineFunction(M, "environ_get", (Caller c, int environ, int buf) =>
        {
            var ctx = Ctx(c);
            return WriteStringTable(Mem(c, ctx), ctx.EnvBlock, environ, buf);
        });
        linker.DefineFunction(M, "clock_res_get", (Caller c, int id, int resPtr) =>
        {
            if (id is < 0 or > 3)
            {
                return Einval;
            }

            return TryWriteU64(Mem(c, Ctx(c)), resPtr, id == 0 ? 1_000UL : 100UL) ? Success : Efault;
        });
        linker.DefineFunction(M, "clock_time_get", (Caller c, int id, long precision, int timePtr) =>
        {
            var ctx = Ctx(c);
            ulong now;
            switch (id)
            {
                case 0:
                    now = (ulong)(ctx.Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100UL;
                    break;
                case 1:
                case 2:
                case 3:
                    now = (ulong)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));
                    break;
                default:
                    return Einval;
            }

            return TryWriteU64(Mem(c, ctx), timePtr, now) ? Success : Efault;
        });
        linker.DefineFunction(M, "fd_advise", (Caller c, int fd, long offset, long len, int advice) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_allocate", (Caller c, int fd, long offset, long len) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_close", (Caller c, int fd) => fd is >= 0 and <= 2 ? Success : Ebadf);
        linker.DefineFunction(M, "fd_datasync", (Caller c, int fd) => StdioOr(fd, Einval));
        linker.DefineFunction(M, "fd_sync", (Caller c, int fd) => StdioOr(fd, Einval));
        linker.DefineFunction(M, "fd_fdstat_get", (Caller c, int fd, int bufPtr) =>
        {
            if (fd is < 0 or > 2)
            {
                return Ebadf;
            }

            if (!TrySpan(Mem(c, Ctx(c)), bufPtr, 24, out var span))
            {
                return Efault;
            }

            // filetype unknown (not a tty: guests fully buffer stdout), no flags.
            span.Clear();
            var rights = fd == 0 ? RightsStdin : RightsStdout;
            BinaryPrimitives.WriteUInt64LittleEndian(span[8..], rights);
            return Success;
        });
        linker.DefineFunction(M, "fd_fdstat_set_flags", (Caller c, int fd, int flags) => StdioOr(fd, Enotsup));
        linker.DefineFunction(M, "fd_fdstat_set_rights", (Caller c, int fd, long b, long i) => StdioOr(fd, Enotcapable));
        linker.DefineFunction(M, "fd_filestat_get", (Caller c, int fd, int bufPtr) =>
        {
            if (fd is < 0 or > 2)
            {
                return Ebadf;
            }

            if (!TrySpan(Mem(c, Ctx(c)), bufPtr, 64, out var span))
            {
                return Efault;
            }

            span.Clear();
            return Success;
        });
        linker.DefineFunction(M, "fd_filestat_set_size", (Caller c, int fd, long size) => StdioOr(fd, Einval));
        linker.DefineFunction(M, "fd_filestat_set_times", (Caller c, int fd, long a, long m, int f) => StdioOr(fd, Enotcapable));
        linker.DefineFunction(M, "fd_pread", (Caller c, int fd, int iovs, int n, long off, int nread) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_pwrite", (Caller c, int fd, int iovs, int n, long off, int nwritten) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_prestat_get", (Caller c, int fd, int bufPtr) => Ebadf);
        linker.DefineFunction(M, "fd_prestat_dir_name", (Caller c, int fd, int path, int len) => Ebadf);
        linker.DefineFunction(M, "fd_read", (Caller c, int fd, int iovs, int iovsLen, int nreadPtr) =>
        {
            var ctx = Ctx(c);
            if (fd != 0)
            {
                return fd is 1 or 2 ? Ebadf : Ebadf;
            }

            var mem = Mem(c, ctx);
            var stdin = ctx.Stdin.Span;
            long total = 0;
            for (var i = 0; i < iovsLen; i++)
            {
                if (!TryReadIovec(mem, iovs, i, out var ptr, out var len))
                {
                    return Efault;
                }

                var remaining = stdin.Length - ctx.StdinPosition;
                if (remaining <= 0)
                {
                    break;
                }

                var count = (int)Math.Min(len, (uint)remaining);
                if (!TrySpan(mem, ptr, count, out var target))
                {
                    return Efault;
                }

                stdin.Slice(ctx.StdinPosition, count).CopyTo(target);
                ctx.StdinPosition += count;
                total += count;
            }

            return TryWriteU32(mem, nreadPtr, (uint)total) ? Success : Efault;
        });
        linker.DefineFunction(M, "fd_readdir", (Caller c, int fd, int buf, int len, long cookie, int used) => StdioOr(fd, Enotsup));
        linker.DefineFunction(M, "fd_renumber", (Caller c, int fd, int to) => StdioOr(fd, Enotsup));
        linker.DefineFunction(M, "fd_seek", (Caller c, int fd, long offset, int whence, int newOffsetPtr) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_tell", (Caller c, int fd, int offsetPtr) => StdioOr(fd, Espipe));
        linker.DefineFunction(M, "fd_write", (Caller c, int fd, int iovs, int iovsLen, int nwrittenPtr) =>
        {
            if (fd is not (1 or 2))
            {
                return Ebadf;
            }

            var ctx = Ctx(c);
            var mem = Mem(c, ctx);
            long total = 0;
            for (var i = 0; i < iovsLen; i++)
            {
                if (!TryReadIovec(mem, iovs, i, out var ptr, out var len) || !TrySpan(mem, ptr, (int)Math.Min(len, int.MaxValue), out var data))
                {
                    return Efault;
                }

                if (fd == 1)
                {
                    if (!ctx.Stdout.Write(data))
                    {
                        return Efbig;
                    }
                }
                else
                {
                    ctx.WriteStderr(data);
                }

                total += data.Length;
            }

            return TryWriteU32(mem, nwrittenPtr, (uint)total) ? Success : Efault;
        });
        linker.DefineFunction(M, "path_create_directory", (Caller c, int fd, int p, int l) => Enotcapable);
        linker.DefineFunction(M, "path_filestat_get", (Caller c, int fd, int f, int p, int l, int b) => Enotcapable);
        linker.DefineFunction(M, "path_filestat_set_times", (Caller c, int fd, int f, int p, int l, long a, long m, int fl) => Enotcapable);
        linker.DefineFunction(M, "path_link", (Caller c, int a, int b, int d, int e, int f, int g, int h) => Enotcapable);
        linker.DefineFunction(M, "path_open", (Caller c, int fd, int df, int p, int l, int of, long rb, long ri, int ff, int fdPtr) => Enotcapable);
        linker.DefineFunction(M, "path_readlink", (Caller c, int fd, int p, int l, int b, int bl, int u) => Enotcapable);
        linker.DefineFunction(M, "path_remove_directory", (Caller c, int fd, int p, int l) => Enotcapable);
        linker.DefineFunction(M, "path_rename", (Caller c, int fd, int p, int l, int nfd, int np, int nl) => Enotcapable);
        linker.DefineFunction(M, "path_symlink", (Caller c, int p, int l, int fd, int np, int nl) => Enotcapable);
        linker.DefineFunction(M, "path_unlink_file", (Caller c, int fd, int p, int l) => Enotcapable);
        linker.DefineFunction(M, "poll_oneoff", (Caller c, int inPtr, int outPtr, int nsubs, int neventsPtr) => PollOneoff(c, inPtr, outPtr, nsubs, neventsPtr));
        linker.DefineFunction(M, "proc_exit", (Caller c, int code) =>
        {
            Ctx(c).ExitCode = code;
            throw new GuestExitException(code);
        });
        linker.DefineFunction(M, "proc_raise", (Caller c, int sig) => Enosys);
        linker.DefineFunction(M, "sched_yield", (Caller c) => Success);
        linker.DefineFunction(M, "random_get", (Caller c, int buf, int len) =>
        {
            if (!TrySpan(Mem(c, Ctx(c)), buf, len, out var span))
            {
                return Efault;
            }

            RandomNumberGenerator.Fill(span);
            return Success;
        });
        linker.DefineFunction(M, "sock_accept", (Caller c, int fd, int flags, int fdPtr) => Enotcapable);
        linker.DefineFunction(M, "sock_recv", (Caller c, int fd, int a, int b, int d, int e, int f) => Enotcapable);
        linker.DefineFunction(M, "sock_send", (Caller c, int fd, int a, int b, int d, int e) => Enotcapable);
        linker.DefineFunction(M, "sock_shutdown", (Caller c, int fd, int how) => Enotcapable);
    }

    private static int StdioOr(int fd, int errno) => fd is >= 0 and <= 2 ? errno : Ebadf;

    internal static GuestContext Ctx(Caller caller) =>
        caller.GetData() as GuestContext ?? throw new InvalidOperationException("The store has no WarpGrid guest context.");

    internal static Memory Mem(Caller caller, GuestContext ctx) =>
        ctx.Memory ?? caller.GetMemory("memory") ?? throw new InvalidOperationException("The module exports no memory named 'memory'.");

    internal static unsafe bool TrySpan(Memory memory, int address, int length, out Span<byte> span)
    {
        var start = (ulong)(uint)address;
        var size = (ulong)memory.GetLength();
        if (length < 0 || start + (ulong)length > size)
        {
            span = default;
            return false;
        }

        span = new Span<byte>((byte*)memory.GetPointer() + start, length);
        return true;
    }

    private static bool TryWriteU32(Memory memory, int address, uint value)
    {
        if (!TrySpan(memory, address, 4, out var span))
        {
            return false;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(span, value);
        return true;
    }

    private static bool TryWriteU64(Memory memory, int address, ulong value)
    {
        if (!TrySpan(memory, address, 8, out var span))
        {
            return false;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(span, value);
        return true;
    }

    private static bool TryReadIovec(Memory memory, int iovs, int index, out int pointer, out uint length)
    {
        if (!TrySpan(memory, (int)((uint)iovs + ((uint)index * 8)), 8, out var span))
        {
            pointer = 0;
            length = 0;
            return false;
        }

        pointer = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
        length = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
        return true;
    }

    /// <summary>Writes a NUL-separated string block and the pointer table to it (argv/environ).</summary>
    private static int WriteStringTable(Memory memory, ReadOnlySpan<byte> block, int table, int buffer)
    {
        if (!TrySpan(memory, buffer, block.Length, out var target))
        {
            return Efault;
        }

        block.CopyTo(target);
        var offset = 0;
        var index = 0;
        while (offset < block.Length)
        {
            if (!TryWriteU32(memory, (int)((uint)table + ((uint)index * 4)), (uint)buffer + (uint)offset))
            {
                return Efault;
            }

            var end = block[offset..].IndexOf((byte)0);
            offset += end + 1;
            index++;
        }

        return Success;
    }

    private static int PollOneoff(Caller caller, int inPtr, int outPtr, int nsubs, int neventsPtr)
    {
        var ctx = Ctx(caller);
        var mem = Mem(caller, ctx);
        if (nsubs <= 0)
        {
            return Einval;
        }

        if (!TrySpan(mem, inPtr, checked(nsubs * 48), out var subs) || !TrySpan(mem, outPtr, checked(nsubs * 32), out _))
        {
            return Efault;
        }

        // Streams are in memory and always ready; a clock subscription sleeps for the shortest relative timeout.
        var events = 0;
        long sleepNanos = long.MaxValue;
        ulong clockUserData = 0;
        for (var i = 0; i < nsubs; i++)
        {
            var sub = subs.Slice(i * 48, 48);
            var userData = BinaryPrimitives.ReadUInt64LittleEndian(sub);
            var tag = sub[8];
            if (tag == 0)
            {
                var timeout = BinaryPrimitives.ReadUInt64LittleEndian(sub[24..]);
                var flags = BinaryPrimitives.ReadUInt16LittleEndian(sub[40..]);
                long nanos = (flags & 1) != 0
                    ? (long)Math.Max(0, (decimal)timeout - (decimal)(DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100)
                    : (long)Math.Min(timeout, long.MaxValue);
                if (nanos < sleepNanos)
                {
                    sleepNanos = nanos;
                    clockUserData = userData;
                }

                continue;
            }

            var fd = (int)BinaryPrimitives.ReadUInt32LittleEndian(sub[16..]);
            if (!TrySpan(mem, outPtr + (events * 32), 32, out var ev))
            {
                return Efault;
            }

            ev.Clear();
            BinaryPrimitives.WriteUInt64LittleEndian(ev, userData);
            var ok = (tag == 1 && fd == 0) || (tag == 2 && fd is 1 or 2);
            BinaryPrimitives.WriteUInt16LittleEndian(ev[8..], (ushort)(ok ? Success : Ebadf));
            ev[10] = tag;
            if (ok && tag == 1)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(ev[16..], (ulong)Math.Max(0, ctx.Stdin.Length - ctx.StdinPosition));
            }

            events++;
        }

        if (events == 0 && sleepNanos != long.MaxValue)
        {
            // The request deadline is enforced by epoch interruption once the guest resumes; never sleep past a minute.
            var untilDeadline = ctx.DeadlineTimestamp == long.MaxValue ? TimeSpan.MaxValue : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), ctx.DeadlineTimestamp);
            var sleep = TimeSpan.FromTicks(Math.Min(sleepNanos / 100, TimeSpan.TicksPerMinute));
            if (sleep > untilDeadline)
            {
                sleep = untilDeadline;
            }

            if (sleep > TimeSpan.Zero)
            {
                Thread.Sleep(sleep);
            }

            if (!TrySpan(mem, outPtr, 32, out var ev))
            {
                return Efault;
            }

            ev.Clear();
            BinaryPrimitives.WriteUInt64LittleEndian(ev, clockUserData);
            ev[10] = 0;
            events = 1;
        }

        return TryWriteU32(mem, neventsPtr, (uint)events) ? Success : Efault;
    }
}
