//! Hello world for WarpGrid in Zig 0.11, WAGI convention (WASI preview 1 command).
//! Reads PATH_INFO and QUERY_STRING from the environment, writes a CGI header,
//! a blank line and the body to stdout in one buffered flush.
const std = @import("std");

pub fn main() !void {
    // Fixed buffer: no heap needed beyond the environment block.
    var env_buf: [16 * 1024]u8 = undefined;
    var fba = std.heap.FixedBufferAllocator.init(&env_buf);
    const alloc = fba.allocator();

    const path_info = getEnv(alloc, "PATH_INFO") orelse "";
    const query = getEnv(alloc, "QUERY_STRING") orelse "";

    var bw = std.io.bufferedWriter(std.io.getStdOut().writer());
    const out = bw.writer();
    try out.writeAll("Content-Type: text/plain\n\n");
    try out.print("Hello from Zig on WarpGrid! You asked for {s}\n", .{path_info});
    if (query.len > 0) {
        try out.print("Query string: {s}\n", .{query});
    }
    try bw.flush();
}

/// Looks a variable up in the WASI environment (std.os.getenv is not
/// available on WASI without libc, so read environ via std.process).
fn getEnv(alloc: std.mem.Allocator, name: []const u8) ?[]const u8 {
    return std.process.getEnvVarOwned(alloc, name) catch null;
}
