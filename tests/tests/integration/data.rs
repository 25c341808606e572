//! Data through async host functions with WAT guests, where every byte and pointer is the
//! test's to choose: each type round-trips, and each bad input from the guest is a
//! `DataError` naming the function, the parameter and the cause, after which the store
//! still works.

use async_wasm::data::{DataError, DataErrorKind, Json};
use async_wasm::prelude::*;
use serde::{Deserialize, Serialize};
use tests::pending;
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store, Trap};

#[derive(Deserialize)]
struct Order {
    item: String,
    quantity: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Quote {
    item: String,
    total: u64,
}

/// What the host functions count: how many each ran to completion.
#[derive(Default)]
struct Host {
    completed: u32,
}

#[async_host]
async fn echo(mut caller: Caller<'_, Host>, text: String) -> String {
    pending(3).await; // the data stays in flight across suspensions
    caller.data_mut().completed += 1;
    text
}

#[async_host]
async fn reverse(bytes: Vec<u8>) -> Vec<u8> {
    pending(1).await;
    bytes.into_iter().rev().collect()
}

#[async_host]
async fn quote(order: Json<Order>) -> wasmtime::Result<Json<Quote>> {
    pending(1).await;
    if order.quantity == 0 {
        wasmtime::bail!("nothing ordered");
    }
    Ok(Json(Quote {
        total: u64::from(order.quantity) * 250,
        item: order.0.item,
    }))
}

/// Numbers and data mixed, data in a `Result`.
#[async_host]
async fn tag(
    caller: Caller<'_, Host>,
    id: i32,
    text: String,
    salt: i64,
) -> wasmtime::Result<Vec<u8>> {
    pending(1).await;
    Ok(format!("{id}:{text}:{salt}:{}", caller.data().completed).into_bytes())
}

/// Data in, a number out.
#[async_host]
async fn count_words(text: String) -> i32 {
    text.split_whitespace().count() as i32
}

/// Data in, nothing out but success: its expansion must not trip clippy in the user's code
/// (`let_unit_value`), which `cargo clippy --all-targets -D warnings` checks here.
#[async_host]
async fn respond(mut caller: Caller<'_, Host>, text: String) -> wasmtime::Result<()> {
    pending(1).await;
    caller.data_mut().completed += text.len() as u32;
    Ok(())
}

/// A result as large as asked.
#[async_host]
async fn zeros(len: i32) -> Vec<u8> {
    vec![0; len as usize]
}

/// Other export names.
#[async_host(memory = "heap", realloc = "grab")]
async fn upper(text: String) -> String {
    text.to_uppercase()
}

/// A guest with a bump allocator (at 32 KiB and up, growing memory to at most 4 pages) that
/// can be told to misbehave, and one export per import that forwards its arguments.
const GUEST: &str = r#"(module
    (import "env" "echo" (func $echo (param i32 i32) (result i64)))
    (import "env" "reverse" (func $reverse (param i32 i32) (result i64)))
    (import "env" "quote" (func $quote (param i32 i32) (result i64)))
    (import "env" "tag" (func $tag (param i32 i32 i32 i64) (result i64)))
    (import "env" "count_words" (func $count_words (param i32 i32) (result i32)))
    (import "env" "zeros" (func $zeros (param i32) (result i64)))
    (memory (export "memory") 1 4)
    (global $next (mut i32) (i32.const 32768))
    (global $mode (mut i32) (i32.const 0))
    (global $allocations (mut i32) (i32.const 0))
    (func (export "set_alloc_mode") (param i32) (global.set $mode (local.get 0)))
    (func (export "allocations") (result i32) (global.get $allocations))
    ;; 0: bump; 1: return memory outside the guest; 2: trap; 3: return 0.
    (func (export "cabi_realloc") (param i32 i32 i32) (param $len i32) (result i32)
        (local $ptr i32)
        (if (i32.eq (global.get $mode) (i32.const 1)) (then (return (i32.const 0xfffff000))))
        (if (i32.eq (global.get $mode) (i32.const 2)) (then unreachable))
        (if (i32.eq (global.get $mode) (i32.const 3)) (then (return (i32.const 0))))
        (local.set $ptr (global.get $next))
        (block $fits
            (loop $grow
                (br_if $fits (i64.le_u
                    (i64.add (i64.extend_i32_u (local.get $ptr)) (i64.extend_i32_u (local.get $len)))
                    (i64.mul (i64.extend_i32_u (memory.size)) (i64.const 65536))))
                (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
                (br $grow)))
        (global.set $next (i32.add (local.get $ptr) (local.get $len)))
        (global.set $allocations (i32.add (global.get $allocations) (i32.const 1)))
        (local.get $ptr))
    (func (export "echo") (param i32 i32) (result i64) (call $echo (local.get 0) (local.get 1)))
    (func (export "reverse") (param i32 i32) (result i64) (call $reverse (local.get 0) (local.get 1)))
    (func (export "quote") (param i32 i32) (result i64) (call $quote (local.get 0) (local.get 1)))
    (func (export "tag") (param i32 i32 i32 i64) (result i64)
        (call $tag (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
    (func (export "count_words") (param i32 i32) (result i32)
        (call $count_words (local.get 0) (local.get 1)))
    (func (export "zeros") (param i32) (result i64) (call $zeros (local.get 0))))"#;

struct Guest {
    store: Store<Host>,
    instance: Instance,
}

impl Guest {
    async fn new(wat: &str) -> wasmtime::Result<Guest> {
        let engine = Engine::default();
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap_host("env", "echo", echo)?
            .func_wrap_host("env", "reverse", reverse)?
            .func_wrap_host("env", "quote", quote)?
            .func_wrap_host("env", "tag", tag)?
            .func_wrap_host("env", "count_words", count_words)?
            .func_wrap_host("env", "zeros", zeros)?
            .func_wrap_host("env", "respond", respond)?
            .func_wrap_host("env", "upper", upper)?;
        let module = Module::new(&engine, wat)?;
        let mut store = Store::new(&engine, Host::default());
        let instance = linker.instantiate_async(&mut store, &module).await?;
        Ok(Guest { store, instance })
    }

    /// Writes `bytes` at `ptr` in the guest's memory, as the guest would have.
    fn put(&mut self, ptr: usize, bytes: &[u8]) {
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.write(&mut self.store, ptr, bytes).unwrap();
    }

    /// The bytes of a packed data result.
    fn take(&mut self, packed: i64) -> Vec<u8> {
        let (ptr, len) = (packed as u32 as usize, (packed as u64 >> 32) as usize);
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.data(&self.store)[ptr..ptr + len].to_vec()
    }

    /// Calls the guest export `name(ptr, len)` that forwards to the import of that name.
    async fn call(&mut self, name: &str, ptr: u32, len: u32) -> wasmtime::Result<i64> {
        let f = self.instance.get_func(&mut self.store, name).unwrap();
        let f = f.get_async().get2::<i32, i32, i64>(&self.store)?;
        f.call(&mut self.store, ptr as i32, len as i32).await
    }

    async fn set_alloc_mode(&mut self, mode: i32) -> wasmtime::Result<()> {
        let f = self
            .instance
            .get_func(&mut self.store, "set_alloc_mode")
            .unwrap();
        f.get_async()
            .get1::<i32, ()>(&self.store)?
            .call(&mut self.store, mode)
            .await
    }

    async fn allocations(&mut self) -> wasmtime::Result<i32> {
        let f = self
            .instance
            .get_func(&mut self.store, "allocations")
            .unwrap();
        f.get_async()
            .get0::<i32>(&self.store)?
            .call(&mut self.store)
            .await
    }

    /// A call that works: after an error, the store must still serve it.
    async fn still_works(&mut self) {
        self.put(0, b"still here");
        let packed = self
            .call("echo", 0, 10)
            .await
            .expect("the store still works");
        assert_eq!(self.take(packed), b"still here");
    }
}

/// The `DataError` a failed call carries.
fn data_error(err: &wasmtime::Error) -> &DataError {
    err.downcast_ref::<DataError>()
        .unwrap_or_else(|| panic!("not a DataError: {err:?}"))
}

#[tokio::test(flavor = "current_thread")]
async fn strings_bytes_and_json_round_trip() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    for text in ["", "a", "héllo, wörld", &"long ".repeat(6_000)] {
        g.put(0, text.as_bytes());
        let packed = g.call("echo", 0, text.len() as u32).await?;
        assert_eq!(g.take(packed), text.as_bytes());
        if text.is_empty() {
            assert_eq!(packed, 0, "an empty result is (0, 0) and allocates nothing");
        }
    }
    let bytes: Vec<u8> = (0..=255).collect();
    g.put(100, &bytes);
    let packed = g.call("reverse", 100, 256).await?;
    assert_eq!(
        g.take(packed),
        bytes.iter().rev().copied().collect::<Vec<_>>()
    );

    g.put(0, br#"{"item":"tea","quantity":3}"#);
    let packed = g.call("quote", 0, 27).await?;
    let quote: Quote = serde_json::from_slice(&g.take(packed))?;
    assert_eq!(
        quote,
        Quote {
            item: "tea".into(),
            total: 750
        }
    );
    assert_eq!(g.store.data().completed, 4);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn numbers_and_data_mix_in_one_signature() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    g.put(0, b"mixed");
    let tag = g.instance.get_func(&mut g.store, "tag").unwrap();
    let tag = tag.get_async().get4::<i32, i32, i32, i64, i64>(&g.store)?;
    let packed = tag.call(&mut g.store, 7, 0, 5, -3).await?;
    assert_eq!(g.take(packed), b"7:mixed:-3:0");

    g.put(0, b"three small words");
    let count = g.instance.get_func(&mut g.store, "count_words").unwrap();
    let count = count.get_async().get2::<i32, i32, i32>(&g.store)?;
    assert_eq!(count.call(&mut g.store, 0, 17).await?, 3);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_host_error_with_data_comes_back_and_allocates_nothing() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    g.put(0, br#"{"item":"tea","quantity":0}"#);
    let err = g.call("quote", 0, 27).await.unwrap_err();
    assert!(format!("{err:?}").contains("nothing ordered"), "{err:?}");
    assert_eq!(g.allocations().await?, 0);
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_range_outside_memory_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    let err = g.call("echo", 65_530, 100).await.unwrap_err();
    let data = data_error(&err);
    assert_eq!((data.function(), data.param_name()), ("echo", Some("text")));
    assert_eq!(
        data.kind(),
        &DataErrorKind::OutOfBounds {
            ptr: 65_530,
            len: 100,
            memory_size: 65_536
        }
    );
    let message = data.to_string();
    assert!(
        message.starts_with("host function `echo`, parameter `text`: "),
        "{message}"
    );
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_range_that_wraps_past_4_gib_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    // 0xffff_fff0 + 0x20 wraps to 0x10 in 32 bits: it must not pass for a small range.
    let err = g.call("reverse", 0xffff_fff0, 0x20).await.unwrap_err();
    assert!(matches!(
        data_error(&err).kind(),
        DataErrorKind::OutOfBounds {
            ptr: 0xffff_fff0,
            len: 0x20,
            ..
        }
    ));
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn bytes_that_are_not_utf8_are_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    g.put(0, b"ok\xff\xfe");
    let err = g.call("echo", 0, 4).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::InvalidUtf8 { valid_up_to: 2 }
    );
    assert_eq!(g.store.data().completed, 0, "the host fn never ran");
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn json_that_is_not_the_type_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    for bad in [&br#"{"item":"tea""#[..], br#"{"item":"tea","quantity":-1}"#] {
        g.put(0, bad);
        let err = g.call("quote", 0, bad.len() as u32).await.unwrap_err();
        let data = data_error(&err);
        assert_eq!(data.param_name(), Some("order"));
        assert!(matches!(data.kind(), DataErrorKind::Json { .. }), "{data}");
    }
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_guest_without_memory_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(
        r#"(module
            (import "env" "echo" (func $echo (param i32 i32) (result i64)))
            (func (export "echo") (param i32 i32) (result i64) (call $echo (local.get 0) (local.get 1))))"#,
    )
    .await?;
    let err = g.call("echo", 0, 1).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::MissingMemory { name: "memory" }
    );
    // Empty data needs no memory.
    assert_eq!(g.call("echo", 0, 0).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_guest_without_allocator_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(
        r#"(module
            (import "env" "echo" (func $echo (param i32 i32) (result i64)))
            (memory (export "memory") 1)
            (data (i32.const 0) "hi")
            (func (export "echo") (param i32 i32) (result i64) (call $echo (local.get 0) (local.get 1))))"#,
    )
    .await?;
    let err = g.call("echo", 0, 2).await.unwrap_err();
    let data = data_error(&err);
    assert_eq!(data.param_name(), None, "about the result");
    assert_eq!(
        data.kind(),
        &DataErrorKind::MissingAllocator {
            name: "cabi_realloc"
        }
    );
    assert_eq!(
        g.store.data().completed,
        1,
        "the host fn ran; the result had nowhere to go"
    );
    // The store goes on: an empty result needs no allocator.
    assert_eq!(g.call("echo", 0, 0).await?, 0);
    assert_eq!(g.store.data().completed, 2);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn an_allocator_with_the_wrong_type_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(
        r#"(module
            (import "env" "echo" (func $echo (param i32 i32) (result i64)))
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32) (result i32) (i32.const 1024))
            (func (export "echo") (param i32 i32) (result i64) (call $echo (local.get 0) (local.get 1))))"#,
    )
    .await?;
    let err = g.call("echo", 0, 2).await.unwrap_err();
    let data = data_error(&err);
    assert_eq!((data.function(), data.param_name()), ("echo", None));
    assert!(matches!(data.kind(), DataErrorKind::AllocatorType { .. }));
    // The store goes on: an empty result needs no allocator.
    assert_eq!(g.call("echo", 0, 0).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn an_allocator_returning_memory_outside_the_guest_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    g.set_alloc_mode(1).await?;
    g.put(0, b"text");
    let err = g.call("echo", 0, 4).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::AllocatorOutOfBounds {
            ptr: 0xfffff000,
            len: 4,
            memory_size: 65_536
        }
    );
    g.set_alloc_mode(0).await?;
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn an_allocator_that_traps_is_an_error_with_the_trap() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    g.set_alloc_mode(2).await?;
    g.put(0, b"text");
    let err = g.call("echo", 0, 4).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::AllocatorFailed {
            name: "cabi_realloc"
        }
    );
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );
    g.set_alloc_mode(0).await?;
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn a_result_too_large_for_the_guest_is_an_error() -> wasmtime::Result<()> {
    let mut g = Guest::new(GUEST).await?;
    let zeros = g.instance.get_func(&mut g.store, "zeros").unwrap();
    let zeros = zeros.get_async().get1::<i32, i64>(&g.store)?;
    let packed = zeros.call(&mut g.store, 60_000).await?;
    assert_eq!(g.take(packed), vec![0; 60_000]);
    // The guest's memory grows to 4 pages at most: its allocator has no room for 300 KiB.
    let err = zeros.call(&mut g.store, 300 * 1024).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::OutOfGuestMemory { len: 300 * 1024 }
    );
    // An allocator that returns 0 outright is the same error.
    g.set_alloc_mode(3).await?;
    let err = zeros.call(&mut g.store, 10).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::OutOfGuestMemory { len: 10 }
    );
    g.set_alloc_mode(0).await?;
    g.still_works().await;
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn export_names_can_be_changed() -> wasmtime::Result<()> {
    let mut g = Guest::new(
        r#"(module
            (import "env" "upper" (func $upper (param i32 i32) (result i64)))
            (memory (export "heap") 1)
            (data (i32.const 0) "shout")
            (func (export "grab") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
            (func (export "echo") (param i32 i32) (result i64) (call $upper (local.get 0) (local.get 1))))"#,
    )
    .await?;
    let packed = g.call("echo", 0, 5).await?;
    assert_eq!(packed, (5 << 32) | 1024);
    let heap = g.instance.get_memory(&mut g.store, "heap").unwrap();
    assert_eq!(&heap.data(&g.store)[1024..1029], b"SHOUT");
    Ok(())
}

/// A map with keys JSON cannot have: its serialization fails.
#[async_host]
async fn unserializable(ok: i32) -> Json<std::collections::BTreeMap<(i32, i32), i32>> {
    pending(1).await;
    let mut map = std::collections::BTreeMap::new();
    if ok == 0 {
        map.insert((1, 2), 3);
    }
    Json(map)
}

#[tokio::test(flavor = "current_thread")]
async fn a_json_result_that_does_not_serialize_is_an_error() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker.func_wrap_host("env", "unserializable", unserializable)?;
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "unserializable" (func $f (param i32) (result i64)))
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
            (func (export "run") (param i32) (result i64) (call $f (local.get 0))))"#,
    )?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let run = instance.get_func(&mut store, "run").unwrap();
    let run = run.get_async().get1::<i32, i64>(&store)?;
    let err = run.call(&mut store, 0).await.unwrap_err();
    let data = data_error(&err);
    assert_eq!(
        (data.function(), data.param_name()),
        ("unserializable", None)
    );
    assert!(matches!(data.kind(), DataErrorKind::Json { .. }), "{data}");
    // The store goes on: `{}` serializes.
    let packed = run.call(&mut store, 1).await?;
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let (ptr, len) = (packed as u32 as usize, (packed >> 32) as usize);
    assert_eq!(&memory.data(&store)[ptr..ptr + len], b"{}");
    Ok(())
}
