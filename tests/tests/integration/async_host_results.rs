//! `#[async_host]`'s one rule for `Result`, numbers and data alike (any error type that
//! converts into `wasmtime::Error`; an `Err` traps, a `GuestError` reaches the guest as a
//! value), its data parameters' generated names (which no parameter of the user's can
//! collide with), and `max_len`.

use async_wasm::data::{DataError, DataErrorKind, GuestError};
use async_wasm::prelude::*;
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store};

#[derive(Debug, PartialEq)]
struct Negative(i32);

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is negative", self.0)
    }
}

impl std::error::Error for Negative {}

/// A number in a `Result` with the user's own error type: did not compile in 0.2, while
/// `Result<String, Negative>` did.
#[async_host]
async fn root(n: i32) -> Result<i32, Negative> {
    if n < 0 {
        return Err(Negative(n));
    }
    Ok((n as f64).sqrt() as i32)
}

#[async_host]
async fn upper(text: String) -> Result<String, Negative> {
    if text.is_empty() {
        return Err(Negative(-1));
    }
    Ok(text.to_uppercase())
}

/// Parameters named as 0.2 named a data parameter's pointer and length (`s_ptr`,
/// `s_len`): in 0.2 they collided with the generated ones.
#[async_host]
async fn collide(s: String, s_ptr: i32, s_len: i32) -> i32 {
    s.len() as i32 * 100 + s_ptr * 10 + s_len
}

/// A `GuestError` from a number fn with a `Caller` of its own, and from a data fn.
#[async_host]
async fn half(caller: Caller<'_, u32>, n: i32) -> wasmtime::Result<i32> {
    let _ = caller.data();
    if n % 2 != 0 {
        return Err(GuestError::new(7, format!("{n} is odd")).into());
    }
    Ok(n / 2)
}

/// The message is cut to the cap, at a character boundary.
#[async_host(max_len = 3)]
async fn name(id: i32) -> Result<String, GuestError> {
    match id {
        0 => Err(GuestError::new(404, "ééé")),
        _ => Ok("ok".to_string()),
    }
}

const GUEST: &str = r#"(module
    (import "env" "root" (func $root (param i32) (result i32)))
    (import "env" "upper" (func $upper (param i32 i32) (result i64)))
    (import "env" "collide" (func $collide (param i32 i32 i32 i32) (result i32)))
    (import "env" "half" (func $half (param i32) (result i32)))
    (import "env" "name" (func $name (param i32) (result i64)))
    (memory (export "memory") 1)
    (data (i32.const 0) "abcd")
    (global $code (mut i32) (i32.const -1))
    (global $msg (mut i64) (i64.const -1))
    (global $next (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (global.get $next)
        (global.set $next (i32.add (global.get $next) (local.get 3))))
    (func (export "async_wasm_set_error") (param i32 i32 i32)
        (global.set $code (local.get 0))
        (global.set $msg (i64.or (i64.extend_i32_u (local.get 1))
            (i64.shl (i64.extend_i32_u (local.get 2)) (i64.const 32)))))
    (func (export "root") (param i32) (result i32) (call $root (local.get 0)))
    (func (export "upper") (param i32) (result i64) (call $upper (i32.const 0) (local.get 0)))
    (func (export "collide") (result i32)
        (call $collide (i32.const 0) (i32.const 4) (i32.const 5) (i32.const 6)))
    (func (export "half") (param i32) (result i32) (call $half (local.get 0)))
    (func (export "name") (param i32) (result i64) (call $name (local.get 0)))
    (func (export "code") (result i32) (global.get $code))
    (func (export "msg") (result i64) (global.get $msg)))"#;

fn linker(engine: &Engine) -> Linker<u32> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_host("env", "root", root)
        .unwrap()
        .func_wrap_host("env", "upper", upper)
        .unwrap()
        .func_wrap_host("env", "collide", collide)
        .unwrap()
        .func_wrap_host("env", "half", half)
        .unwrap()
        .func_wrap_host("env", "name", name)
        .unwrap();
    linker
}

async fn setup(guest: &str) -> (Store<u32>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, guest).unwrap();
    let mut store = Store::new(&engine, 0);
    let instance = linker(&engine)
        .instantiate_async(&mut store, &module)
        .await
        .unwrap();
    (store, instance)
}

async fn call<P, R>(
    store: &mut Store<u32>,
    instance: Instance,
    export: &str,
    arg: P,
) -> wasmtime::Result<R>
where
    P: wasmtime::WasmParams + Sync + 'static,
    R: wasmtime::WasmResults + Sync + 'static,
{
    let f = instance.get_typed_func::<P, R>(&mut *store, export)?;
    f.call_async(&mut *store, arg).await
}

/// The error value the guest received: its code, and its message from the guest's memory.
async fn received(store: &mut Store<u32>, instance: Instance) -> (i32, String) {
    let code = call::<(), i32>(store, instance, "code", ()).await.unwrap();
    let msg = call::<(), i64>(store, instance, "msg", ()).await.unwrap() as u64;
    let memory = instance.get_memory(&mut *store, "memory").unwrap();
    let bytes = &memory.data(&*store)[msg as u32 as usize..][..(msg >> 32) as usize];
    (code, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test(flavor = "current_thread")]
async fn a_result_of_any_error_type_traps_for_numbers_and_data_alike() {
    let (mut store, instance) = setup(GUEST).await;
    assert_eq!(
        call::<i32, i32>(&mut store, instance, "root", 81)
            .await
            .unwrap(),
        9
    );
    let err = call::<i32, i32>(&mut store, instance, "root", -4)
        .await
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Negative>(), Some(&Negative(-4)));
    let packed = call::<i32, i64>(&mut store, instance, "upper", 4)
        .await
        .unwrap();
    assert_eq!(packed >> 32, 4);
    let err = call::<i32, i64>(&mut store, instance, "upper", 0)
        .await
        .unwrap_err();
    assert_eq!(err.downcast_ref::<Negative>(), Some(&Negative(-1)));
}

#[tokio::test(flavor = "current_thread")]
async fn user_parameters_named_like_the_generated_ones_do_not_collide() {
    let (mut store, instance) = setup(GUEST).await;
    assert_eq!(
        call::<(), i32>(&mut store, instance, "collide", ())
            .await
            .unwrap(),
        456
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_error_reaches_the_guest_as_a_value_with_a_zero_result() {
    let (mut store, instance) = setup(GUEST).await;
    assert_eq!(
        call::<i32, i32>(&mut store, instance, "half", 8)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        call::<i32, i32>(&mut store, instance, "half", 7)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        received(&mut store, instance).await,
        (7, "7 is odd".to_string())
    );
    assert_eq!(
        call::<i32, i64>(&mut store, instance, "name", 0)
            .await
            .unwrap(),
        0
    );
    // "ééé" is 6 bytes; the cap is 3: one "é".
    assert_eq!(received(&mut store, instance).await, (404, "é".to_string()));
    let ok = call::<i32, i64>(&mut store, instance, "name", 1)
        .await
        .unwrap();
    assert_eq!(ok >> 32, 2);
}

/// A guest without `async_wasm_set_error` cannot take an error value: the call fails with
/// `MissingErrorReceiver`, the `GuestError` as its cause.
#[tokio::test(flavor = "current_thread")]
async fn a_guest_without_the_receiver_gets_a_typed_error() {
    let guest = GUEST.replace("\"async_wasm_set_error\"", "\"something_else\"");
    let (mut store, instance) = setup(&guest).await;
    let err = call::<i32, i32>(&mut store, instance, "half", 7)
        .await
        .unwrap_err();
    let data = err.downcast_ref::<DataError>().unwrap();
    assert_eq!(
        data.kind(),
        &DataErrorKind::MissingErrorReceiver {
            name: "async_wasm_set_error"
        }
    );
    let guest_error = err.chain().find_map(|e| e.downcast_ref::<GuestError>());
    assert_eq!(guest_error.map(GuestError::code), Some(7), "{err:?}");
}
