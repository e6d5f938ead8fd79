;; greeting: the smallest WAGI guest, uploaded as WAT text to exercise the API's .wat conversion.
;; Writes "Content-Type: text/plain\n\nhello from wat\n" to stdout with one fd_write and returns.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0..8 iovec, 8..12 nwritten, 16.. response
  (data (i32.const 16) "Content-Type: text/plain\n\nhello from wat\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 41))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
