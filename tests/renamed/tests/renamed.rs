//! `#[async_host(crate = "aw")]` where the dependency is renamed: the fns compile (in the
//! library) and register and run.

use aw::prelude::*;
use wasmtime::{Engine, Func, Linker, Module, Store};

/// Passes "ab" to `repeat` and returns the packed result; a bump allocator from offset 1024.
const GUEST: &str = r#"(module
    (import "env" "repeat" (func $repeat (param i32 i32) (result i64)))
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (data (i32.const 0) "ab")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (global.get $next)
        (global.set $next (i32.add (global.get $next) (local.get 3))))
    (func (export "run") (result i64) (call $repeat (i32.const 0) (i32.const 2))))"#;

#[test]
fn host_fns_of_a_renamed_dependency_register_and_run() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let mut store = Store::new(&engine, 2);
    let f: Func = FuncExt::wrap_async(&mut store, renamed_dependency::double);
    let f = f.get_async().get1::<i32, i32>(&store)?;
    assert_eq!(futures::executor::block_on(f.call(&mut store, 4))?, 8);

    let mut linker = Linker::<i32>::new(&engine);
    linker.func_wrap_host("env", "repeat", renamed_dependency::repeat)?;
    let module = Module::new(&engine, GUEST)?;
    futures::executor::block_on(async {
        let instance = linker.instantiate_async(&mut store, &module).await?;
        let run = instance.get_func(&mut store, "run").unwrap();
        let packed = run
            .get_async()
            .get0::<i64>(&store)?
            .call(&mut store)
            .await?;
        let (ptr, len) = (packed as u32 as usize, (packed as u64 >> 32) as usize);
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        assert_eq!(&memory.data(&store)[ptr..ptr + len], b"abab");
        wasmtime::Result::<()>::Ok(())
    })
}
