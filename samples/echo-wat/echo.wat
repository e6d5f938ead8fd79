;; echo-wat: hand-written WASI preview 1 command for WarpGrid (WAGI convention).
;; Writes "Content-Type: application/octet-stream\n\n", then copies stdin (the
;; request body) to stdout in 64 KiB chunks until fd_read returns 0 bytes.
;; Exits normally by returning from _start (no proc_exit) on success; on a
;; WASI error (or a zero-byte write) it calls proc_exit(1).
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))

  ;; Layout: 0..8 iovec, 8..12 nread/nwritten, 64.. header, 65536.. buffer (64 KiB)
  (memory (export "memory") 2)
  (data (i32.const 64) "Content-Type: application/octet-stream\n\n")
  (global $hdr_ptr i32 (i32.const 64))
  (global $hdr_len i32 (i32.const 40))
  (global $buf i32 (i32.const 65536))
  (global $buf_len i32 (i32.const 65536))

  ;; Write all of [ptr, ptr+len) to stdout, retrying short writes.
  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        ;; a zero-byte write would loop forever: treat it as an error
        (if (i32.eqz (i32.load (i32.const 8)))
          (then (call $proc_exit (i32.const 1))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $again))))

  (func (export "_start")
    (local $n i32)
    (call $write_all (global.get $hdr_ptr) (global.get $hdr_len))
    (block $eof
      (loop $read
        (i32.store (i32.const 0) (global.get $buf))
        (i32.store (i32.const 4) (global.get $buf_len))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (call $write_all (global.get $buf) (local.get $n))
        (br $read))))
)
