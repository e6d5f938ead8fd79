;; bad-import: a well-formed command module that imports a function no WarpGrid node provides.
;; Deploying it must fail with 400 naming the module and the import, and store nothing.
(module
  (import "env" "launch_missiles" (func $launch (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $launch (i32.const 1)))))
