//! One data host call driven by arbitrary bytes, with the invariants a hostile guest must not
//! break: shared by the fuzz target (`fuzz_targets/data_path.rs`) and its proptest version
//! (`tests/tests/integration/data_fuzz.rs`).
//!
//! The bytes choose the guest's memory (its size, up to 4 GiB, and what is in it), the three
//! data parameters' pointers and lengths (a `String`, a `Vec<u8>`, a `Json<Value>`), the cap,
//! the host function's answer (a result of some length, or a `GuestError`), and what the
//! guest's allocator does (return a pointer of the bytes' choosing, trap, grow the memory,
//! or call the data import again). Checked: the host never panics; every error is a
//! `DataError`; a result is exactly the host's bytes, inside the guest's memory and within
//! the cap; parameters within the cap, in bounds and well-formed are read; parameters over
//! the cap fail with `TooLarge` at the first one that passes it; a `GuestError` reaches the
//! guest's receiver with a zero result; and the store serves a good call afterwards.

use async_wasm::data::{DataError, DataErrorKind, GuestAbi, GuestError, Json};
use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Linker, Module, Store};

const GUEST: &str = r#"(module
    (import "env" "f" (func $f (param i32 i32 i32 i32 i32 i32) (result i64)))
    (memory (export "memory") 1)
    (global $mode (mut i32) (i32.const 0))
    (global $arg (mut i32) (i32.const 0))
    (global $allocs (mut i32) (i32.const 0))
    (global $code (mut i32) (i32.const 0))
    (global $errors (mut i32) (i32.const 0))
    (func (export "set") (param i32 i32) (global.set $mode (local.get 0)) (global.set $arg (local.get 1)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "allocs") (result i32) (global.get $allocs))
    (func (export "errors") (result i32) (global.get $errors))
    (func (export "code") (result i32) (global.get $code))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (local $old i32)
        (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
        (if (i32.eq (global.get $mode) (i32.const 1)) (then unreachable))
        (if (i32.eq (global.get $mode) (i32.const 2))
            (then (drop (call $f (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                                 (i32.const 0) (i32.const 4)))))
        (if (i32.eq (global.get $mode) (i32.const 3))
            (then
                (local.set $old (memory.grow (i32.and (global.get $arg) (i32.const 15))))
                (if (i32.eq (local.get $old) (i32.const -1)) (then (return (i32.const 0))))
                (return (i32.mul (local.get $old) (i32.const 65536)))))
        (global.get $arg))
    (func (export "async_wasm_set_error") (param i32 i32 i32)
        (global.set $errors (i32.add (global.get $errors) (i32.const 1)))
        (global.set $code (local.get 0)))
    (func (export "run") (param i32 i32 i32 i32 i32 i32) (result i64)
        (call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5))))"#;

/// What the host function does, per store.
#[derive(Default)]
struct Host {
    max_len: Option<u32>,
    result_len: u32,
    error: Option<(i32, usize)>,
    /// The parameters' lengths, when all three were read.
    read: Option<[usize; 3]>,
}

/// Reads the input's bytes as numbers; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A pointer or length: mostly small, sometimes anything.
    fn size(&mut self) -> u32 {
        match self.u8() % 8 {
            0 => self.u32(),
            1 => 0,
            2 => u32::from(self.u8()) << 16 | u32::from(self.u8()) << 8,
            _ => u32::from(self.u8()) << 4 | u32::from(self.u8() & 15),
        }
    }
}

fn pattern(len: u32) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// The compiled guest and the host function, made once.
pub struct Driver {
    engine: Engine,
    module: Module,
    linker: Linker<Host>,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        let engine = Engine::default();
        let module = Module::new(&engine, GUEST).expect("the guest compiles");
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap_async6(
                "env",
                "f",
                |mut caller: Caller<'_, Host>,
                 a: i32,
                 al: i32,
                 b: i32,
                 bl: i32,
                 c: i32,
                 cl: i32| {
                    let abi = match caller.data().max_len {
                        Some(max_len) => GuestAbi::new("f").with_max_len(max_len),
                        None => GuestAbi::new("f"),
                    };
                    let mut data = abi.call_data();
                    let a = data.read::<String, _>(&mut caller, "a", a, al);
                    let b = a
                        .is_ok()
                        .then(|| data.read::<Vec<u8>, _>(&mut caller, "b", b, bl));
                    let c = b
                        .as_ref()
                        .is_some_and(Result::is_ok)
                        .then(|| data.read::<Json<serde_json::Value>, _>(&mut caller, "c", c, cl));
                    Box::new(async move {
                        let a = a?;
                        let b = b.expect("read after a")?;
                        let c = c.expect("read after b")?;
                        let c_len = serde_json::to_vec(&c.0).map_or(0, |v| v.len());
                        caller.data_mut().read = Some([a.len(), b.len(), c_len]);
                        if let Some((code, len)) = caller.data().error {
                            let error = GuestError::new(code, "é".repeat(len));
                            data.write_error(&mut caller, error).await?;
                            return Ok(0);
                        }
                        let result = pattern(caller.data().result_len);
                        data.write(&mut caller, result).await
                    })
                },
            )
            .expect("defined once");
        Driver {
            engine,
            module,
            linker,
        }
    }

    /// Runs one case; panics when an invariant breaks.
    pub fn run(&self, input: &[u8]) {
        let mut bytes = Bytes(input);
        let mut store = Store::new(&self.engine, Host::default());
        let instance =
            futures::executor::block_on(self.linker.instantiate_async(&mut store, &self.module))
                .expect("the guest instantiates");
        let call = |store: &mut Store<Host>, name: &str, args: &[i32]| -> i32 {
            let f = instance.get_func(&mut *store, name).unwrap();
            let mut out = [wasmtime::Val::I32(0)];
            let params: Vec<_> = args.iter().map(|&a| wasmtime::Val::I32(a)).collect();
            let results = if f.ty(&*store).results().len() == 0 {
                &mut out[..0]
            } else {
                &mut out[..]
            };
            futures::executor::block_on(FuncExt::call_async(&f, &mut *store, &params, results))
                .unwrap();
            out[0].unwrap_i32()
        };

        // The memory: its size (sometimes all 4 GiB, reserved and never touched) and bytes.
        let grow = match bytes.u8() % 16 {
            0 => 65535,
            n => i32::from(n % 4),
        };
        call(&mut store, "grow", &[grow]);
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        for _ in 0..bytes.u8() % 4 {
            let at = bytes.size() as usize;
            let text: &[u8] = match bytes.u8() % 4 {
                0 => b"{\"k\":[1,2,{\"x\":null}]}",
                1 => b"\xff\xfe not utf-8",
                2 => b"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
                _ => b"\"text\"",
            };
            let _ = memory.write(&mut store, at, text);
        }

        // The host function and the guest's allocator.
        let host = store.data_mut();
        host.max_len = match bytes.u8() % 4 {
            0 => None,
            _ => Some(bytes.size() % (1 << 20)),
        };
        host.result_len = bytes.size() % (1 << 20);
        host.error = (bytes.u8() % 4 == 0).then(|| (bytes.u32() as i32, usize::from(bytes.u8())));
        let mode = i32::from(bytes.u8() % 4);
        let arg = bytes.size() as i32;
        call(&mut store, "set", &[mode, arg]);

        let params: Vec<(u32, u32)> = (0..3).map(|_| (bytes.size(), bytes.size())).collect();
        let args: Vec<i32> = params
            .iter()
            .flat_map(|&(p, l)| [p as i32, l as i32])
            .collect();
        let f = instance.get_func(&mut store, "run").unwrap();
        let run = f
            .get_async()
            .get6::<i32, i32, i32, i32, i32, i32, i64>(&store)
            .unwrap();
        let result = futures::executor::block_on(run.call(
            &mut store, args[0], args[1], args[2], args[3], args[4], args[5],
        ));
        let max_len = store.data().max_len.unwrap_or(GuestAbi::DEFAULT_MAX_LEN);
        let memory_size = memory.data_size(&store) as u64;

        // Parameters: over the cap exactly at the first that passes it; otherwise read when
        // in bounds (their contents decide the rest).
        let mut total = 0u64;
        let mut over = None;
        for (i, &(_, len)) in params.iter().enumerate() {
            total += u64::from(len);
            if len != 0 && total > u64::from(max_len) && over.is_none() {
                over = Some(i);
            }
        }
        let param_error = result
            .as_ref()
            .err()
            .and_then(|err| err.downcast_ref::<DataError>())
            .filter(|data| data.param_name().is_some() && store.data().read.is_none());
        match (over, param_error) {
            (Some(i), Some(data)) => {
                let name = ["a", "b", "c"][i];
                // An earlier parameter may fail for its own reason first.
                if data.param_name() == Some(name) {
                    assert!(
                        matches!(data.kind(), DataErrorKind::TooLarge { .. }),
                        "{name} over the cap: {data}"
                    );
                }
            }
            (Some(i), None) => {
                panic!("parameter {i} over the cap of {max_len} was read: {result:?}")
            }
            (None, Some(data)) => assert!(
                !matches!(data.kind(), DataErrorKind::TooLarge { .. }),
                "within the cap, yet {data}"
            ),
            (None, None) => {}
        }

        match &result {
            Ok(packed) => {
                let packed = *packed as u64;
                let (read, error, result_len) = (
                    store.data().read,
                    store.data().error,
                    store.data().result_len,
                );
                let read = read.expect("a call that succeeded read its parameters");
                assert_eq!(read[0], params[0].1 as usize);
                assert_eq!(read[1], params[1].1 as usize);
                if let Some((code, _)) = error {
                    assert_eq!(packed, 0, "an error value comes with a zero result");
                    assert!(call(&mut store, "errors", &[]) >= 1);
                    assert_eq!(call(&mut store, "code", &[]), code);
                } else if result_len == 0 {
                    assert_eq!(packed, 0, "an empty result is 0");
                } else {
                    let (ptr, len) = (packed as u32, (packed >> 32) as u32);
                    assert_eq!(len, result_len);
                    assert!(len <= max_len, "a result over the cap reached the guest");
                    assert!(u64::from(ptr) + u64::from(len) <= memory_size);
                    let got = &memory.data(&store)[ptr as usize..][..len as usize];
                    assert!(got == pattern(len), "the result's bytes differ");
                }
            }
            Err(err) => {
                assert!(
                    err.downcast_ref::<DataError>().is_some(),
                    "not a DataError: {err:?}"
                );
            }
        }

        // The store serves a good call next: a JSON `null` at 0, an allocator that works.
        let good = *b"null";
        memory.write(&mut store, 0, &good).unwrap();
        *store.data_mut() = Host {
            result_len: 3,
            ..Host::default()
        };
        call(&mut store, "set", &[0, 64]);
        let packed = futures::executor::block_on(run.call(&mut store, 0, 0, 0, 0, 0, 4))
            .expect("a good call after any case");
        assert_eq!(packed as u64 >> 32, 3);
    }
}
