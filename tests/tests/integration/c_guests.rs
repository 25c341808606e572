//! Data through async host functions with a real guest compiled from C
//! (`guests/src/data_guest.c`): every type round-trips (empty, 1 byte, 1 MiB), host
//! futures suspend while data is in flight, hundreds of guests run at once without
//! cross-talk, a cancelled call leaves nothing in the guest's allocator, and bad input from
//! the guest is an error that leaves the store usable. Error values reach the guest next to
//! traps, a call cancelled inside the guest's allocator leaves what the docs say, and the
//! documentation's C example runs.

use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use async_wasm::data::{DataError, DataErrorKind, GuestError, Json};
use async_wasm::prelude::*;
use async_wasm::{Allocation, AsyncEngine};
use futures::stream::{FuturesUnordered, StreamExt};
use tests::c_guests::DATA_GUEST;
use tests::{instantiate_reactor, pending, poll_once, pooled_engine};

/// The C example of `async_wasm::data`'s documentation, `async-wasm/guest/example.c`.
const GREET_EXAMPLE: &[u8] = include_bytes!("../../../guests/greet_example.wasm");
use tokio::sync::oneshot;
use wasmtime::{Caller, Engine, Instance, Linker, Module, Store, Trap};

/// What `env.echo` does before it answers, per store.
enum Wait {
    /// Pending this many times (waking itself).
    Pending(usize),
    /// Until the channel fires.
    Gate(Option<oneshot::Receiver<()>>),
    /// Forever: the call can only be cancelled.
    Forever,
    /// At once, after raising the flag.
    Flag(Arc<AtomicBool>),
}

#[async_host]
async fn echo(mut caller: Caller<'_, Wait>, text: String) -> String {
    match caller.data_mut() {
        Wait::Pending(times) => pending(*times).await,
        Wait::Gate(gate) => {
            let gate = gate.take().expect("one gated call per store");
            gate.await.expect("the test opens the gate");
        }
        Wait::Forever => std::future::pending().await,
        Wait::Flag(flag) => flag.store(true, Ordering::SeqCst),
    }
    text
}

#[async_host]
async fn reverse(bytes: Vec<u8>) -> Vec<u8> {
    pending(2).await;
    bytes.into_iter().rev().collect()
}

#[async_host]
async fn score(value: Json<serde_json::Value>) -> Json<serde_json::Value> {
    pending(1).await;
    value
}

#[async_host]
async fn tag(id: i32, text: String, salt: i64) -> wasmtime::Result<String> {
    pending(1).await;
    Ok(format!("{id}/{text}/{salt}"))
}

/// A key-value lookup: `k` has a value, `trap` is a failure the guest must not survive,
/// and any other key is not found, which the guest handles.
#[async_host]
async fn lookup(key: String) -> wasmtime::Result<String> {
    pending(1).await;
    match key.as_str() {
        "k" => Ok("value".to_string()),
        "trap" => Err(wasmtime::format_err!("the database is down")),
        _ => Err(GuestError::new(404, format!("no key `{key}`")).into()),
    }
}

/// A number result with an error value for odd inputs (a caller-less fn).
#[async_host]
async fn checked_half(n: i32) -> Result<i32, GuestError> {
    pending(1).await;
    if n % 2 != 0 {
        return Err(GuestError::new(7, "odd"));
    }
    Ok(n / 2)
}

fn linker(engine: &Engine) -> wasmtime::Result<Linker<Wait>> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_host("env", "echo", echo)?
        .func_wrap_host("env", "reverse", reverse)?
        .func_wrap_host("env", "score", score)?
        .func_wrap_host("env", "tag", tag)?
        .func_wrap_host("env", "lookup", lookup)?
        .func_wrap_host("env", "checked_half", checked_half)?;
    Ok(linker)
}

struct Guest {
    store: Store<Wait>,
    instance: Instance,
}

type Call<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Guest {
    async fn new(engine: &Engine, linker: &Linker<Wait>, module: &Module, wait: Wait) -> Guest {
        let mut store = Store::new(engine, wait);
        let instance = instantiate_reactor(&mut store, linker, module)
            .await
            .expect("the C guest instantiates");
        Guest { store, instance }
    }

    /// Calls the guest's export `name` with `(a, b)` (i32 or i64 per its C signature).
    fn call2<A, B, R>(&mut self, name: &str, a: A, b: B) -> Call<'_, R>
    where
        A: wasmtime::WasmTy + Sync + 'static,
        B: wasmtime::WasmTy + Sync + 'static,
        R: wasmtime::WasmResults + Sync + 'static,
    {
        let f = self.instance.get_func(&mut self.store, name).unwrap();
        let f = f.get_async().get2::<A, B, R>(&self.store).unwrap();
        Box::pin(async move { f.call(&mut self.store, a, b).await })
    }

    async fn call0<R: wasmtime::WasmResults + Sync + 'static>(&mut self, name: &str) -> R {
        let f = self.instance.get_func(&mut self.store, name).unwrap();
        let f = f.get_async().get0::<R>(&self.store).unwrap();
        f.call(&mut self.store).await.unwrap()
    }

    async fn set_alloc_mode(&mut self, mode: i32) {
        let f = self
            .instance
            .get_func(&mut self.store, "set_alloc_mode")
            .unwrap();
        let f = f.get_async().get1::<i32, ()>(&self.store).unwrap();
        f.call(&mut self.store, mode).await.unwrap();
    }

    async fn live_host_allocations(&mut self) -> i32 {
        self.call0("live_host_allocations").await
    }

    /// Places `bytes` in a buffer the guest allocated; returns its address.
    async fn place(&mut self, bytes: &[u8]) -> u32 {
        let f = self.instance.get_func(&mut self.store, "buffer").unwrap();
        let f = f.get_async().get1::<u32, u32>(&self.store).unwrap();
        let ptr = f.call(&mut self.store, bytes.len() as u32).await.unwrap();
        assert_ne!(ptr, 0, "the guest has memory for {} bytes", bytes.len());
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.write(&mut self.store, ptr as usize, bytes).unwrap();
        ptr
    }

    /// Reads a packed data result and frees it in the guest.
    async fn take(&mut self, packed: u64) -> Vec<u8> {
        let (ptr, len) = (packed as u32, (packed >> 32) as u32);
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        let bytes = memory.data(&self.store)[ptr as usize..][..len as usize].to_vec();
        self.call2::<u32, u32, ()>("free_reply", ptr, len)
            .await
            .unwrap();
        bytes
    }

    async fn echo_roundtrip(&mut self, len: u32, seed: u32) -> wasmtime::Result<i32> {
        self.call2("echo_roundtrip", len, seed).await
    }

    /// A good call after a bad one: the store still serves it, and nothing is left over.
    async fn still_works(&mut self) {
        *self.store.data_mut() = Wait::Pending(1);
        assert_eq!(self.echo_roundtrip(100, 1).await.unwrap(), 1);
        assert_eq!(self.live_host_allocations().await, 0);
    }
}

struct Setup {
    pool: StackPool,
    engine: Engine,
    linker: Linker<Wait>,
    module: Module,
}

fn setup() -> Setup {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let linker = linker(&engine).unwrap();
    let module = Module::new(&engine, DATA_GUEST).unwrap();
    Setup {
        pool,
        engine,
        linker,
        module,
    }
}

fn data_error(err: &wasmtime::Error) -> &DataError {
    err.downcast_ref::<DataError>()
        .unwrap_or_else(|| panic!("not a DataError: {err:?}"))
}

const MIB: u32 = 1 << 20;

#[tokio::test(flavor = "current_thread")]
async fn strings_and_bytes_round_trip_empty_small_and_large() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(3)).await;
    for len in [0, 1, 4096, MIB] {
        assert_eq!(
            g.echo_roundtrip(len, len).await.unwrap(),
            1,
            "string of {len}"
        );
        let same: i32 = g.call2("reverse_roundtrip", len, 7u32).await.unwrap();
        assert_eq!(same, 1, "bytes of {len}");
    }
    assert_eq!(
        g.live_host_allocations().await,
        0,
        "the guest freed every result"
    );
    drop(g);
    assert_eq!(
        s.pool.stats().in_use,
        0,
        "every stack is back, nested ones too"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn json_round_trips_small_and_large() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(1)).await;
    let large = serde_json::json!({ "items": vec!["wasm"; (MIB / 8) as usize] });
    for value in [
        serde_json::json!(1),
        serde_json::json!({"a": [1, "b"]}),
        large,
    ] {
        let text = serde_json::to_vec(&value).unwrap();
        let ptr = g.place(&text).await;
        let packed: u64 = g.call2("score_raw", ptr, text.len() as u32).await.unwrap();
        let back: serde_json::Value = serde_json::from_slice(&g.take(packed).await).unwrap();
        assert_eq!(back, value);
    }
    assert_eq!(g.live_host_allocations().await, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn numbers_and_a_string_mix_in_one_import() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(0)).await;
    let len: i64 = g.call2("tag_len", 42i32, -7i64).await.unwrap();
    assert_eq!(len, "42/tagged/-7".len() as i64);
}

#[tokio::test(flavor = "current_thread")]
async fn hundreds_of_guests_at_once_keep_their_own_data() {
    const GUESTS: u32 = 300;
    let s = setup();
    let mut gates = Vec::new();
    let mut calls = FuturesUnordered::new();
    for id in 0..GUESTS {
        let (open, gate) = oneshot::channel();
        gates.push(open);
        let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Gate(Some(gate))).await;
        calls.push(async move {
            // Each guest sends a different string (length and bytes from its id).
            let same = g.echo_roundtrip(1000 + id, id).await;
            (same, g.live_host_allocations().await)
        });
    }
    // Every guest is suspended in `echo` with its string copied out, at once.
    assert!(futures::poll!(calls.next()).is_pending());
    assert_eq!(s.pool.stats().in_use, GUESTS as usize);
    // Answer them in reverse order.
    for open in gates.into_iter().rev() {
        open.send(()).unwrap();
    }
    let mut done = 0;
    while let Some((same, live)) = calls.next().await {
        assert_eq!(same.unwrap(), 1, "a guest got another guest's data back");
        assert_eq!(live, 0);
        done += 1;
    }
    assert_eq!(done, GUESTS);
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_call_leaves_nothing_in_the_guest_allocator() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Forever).await;
    {
        let f = g.instance.get_func(&mut g.store, "echo_static").unwrap();
        let f = f.get_async().get0::<i32>(&g.store).unwrap();
        let mut call = Box::pin(f.call(&mut g.store));
        assert!(
            poll_once(&mut call).is_pending(),
            "suspended with its string in flight"
        );
    } // dropped: cancelled while the host future waits
    assert_eq!(
        g.live_host_allocations().await,
        0,
        "the host allocates a result only once its future is done"
    );
    *g.store.data_mut() = Wait::Pending(2);
    assert_eq!(
        g.call0::<i32>("echo_static").await,
        1,
        "the next call works"
    );
    assert_eq!(g.live_host_allocations().await, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_pointers_from_c_are_errors() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(1)).await;
    for (ptr, len) in [
        (0xffff_ff00u32, 1000u32),
        (0xffff_fff0, 0x20),
        (16 * MIB, 1),
    ] {
        let err = g
            .call2::<u32, u32, u64>("echo_raw", ptr, len)
            .await
            .unwrap_err();
        let data = data_error(&err);
        assert_eq!((data.function(), data.param_name()), ("echo", Some("text")));
        assert!(
            matches!(data.kind(), DataErrorKind::OutOfBounds { .. }),
            "{data}"
        );
        g.still_works().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_utf8_and_invalid_json_from_c_are_errors() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(1)).await;
    let ptr = g.place(b"caf\xe9").await; // Latin-1, not UTF-8
    let err = g
        .call2::<u32, u32, u64>("echo_raw", ptr, 4)
        .await
        .unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::InvalidUtf8 { valid_up_to: 3 }
    );
    g.still_works().await;
    let ptr = g.place(b"{\"unclosed\": ").await;
    let err = g
        .call2::<u32, u32, u64>("score_raw", ptr, 13)
        .await
        .unwrap_err();
    assert!(matches!(
        data_error(&err).kind(),
        DataErrorKind::Json { .. }
    ));
    g.still_works().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_misbehaving_c_allocator_is_an_error() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(1)).await;
    // Memory outside the guest.
    g.set_alloc_mode(1).await;
    let err = g.echo_roundtrip(10, 1).await.unwrap_err();
    assert!(matches!(
        data_error(&err).kind(),
        DataErrorKind::AllocatorOutOfBounds { .. }
    ));
    // A trap: both the data error and the trap are there.
    g.set_alloc_mode(2).await;
    let err = g.echo_roundtrip(10, 1).await.unwrap_err();
    assert!(matches!(
        data_error(&err).kind(),
        DataErrorKind::AllocatorFailed { .. }
    ));
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );
    // No memory.
    g.set_alloc_mode(3).await;
    let err = g.echo_roundtrip(10, 1).await.unwrap_err();
    assert_eq!(
        data_error(&err).kind(),
        &DataErrorKind::OutOfGuestMemory { len: 10 }
    );
    g.set_alloc_mode(0).await;
    // The guest's own frames of the failed calls were abandoned, its heap is intact.
    assert_eq!(g.echo_roundtrip(100, 1).await.unwrap(), 1);
    drop(g);
    assert_eq!(s.pool.stats().in_use, 0);
}

/// The committed `.wasm` files are what `guests/build.sh` makes of their sources, when the
/// clang that built them is installed; otherwise there is nothing to compare with.
#[test]
fn committed_guests_match_their_sources() {
    let guests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests");
    let recorded = std::fs::read_to_string(guests.join("CLANG_VERSION")).unwrap();
    let installed = std::process::Command::new("clang")
        .arg("--version")
        .output();
    let Ok(installed) = installed else {
        eprintln!("clang is not installed: the committed guests are used as they are");
        return;
    };
    let installed = String::from_utf8_lossy(&installed.stdout);
    if installed.lines().next() != recorded.lines().next() {
        eprintln!("clang is {installed:?}, the guests were built with {recorded:?}: not compared");
        return;
    }
    let out = std::env::temp_dir().join(format!("async-wasm-guests-{}", std::process::id()));
    let status = std::process::Command::new(guests.join("build.sh"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "guests/build.sh failed");
    let sources = std::fs::read_dir(guests.join("src")).unwrap();
    let names = sources
        .map(|source| {
            let source = source.unwrap().path();
            source.file_stem().unwrap().to_str().unwrap().to_string()
        })
        .chain(["greet_example".to_string()]);
    for name in names {
        let fresh = std::fs::read(out.join(format!("{name}.wasm"))).unwrap();
        let committed = std::fs::read(guests.join(format!("{name}.wasm"))).unwrap();
        assert!(
            fresh == committed,
            "guests/{name}.wasm is not what guests/src/{name}.c builds to: run guests/build.sh"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

impl Guest {
    async fn half_or_code(&mut self, n: i32) -> i32 {
        let f = self
            .instance
            .get_func(&mut self.store, "half_or_code")
            .unwrap();
        let f = f.get_async().get1::<i32, i32>(&self.store).unwrap();
        f.call(&mut self.store, n).await.unwrap()
    }

    /// `lookup_len(key, expected message)` in the guest.
    async fn lookup_len(&mut self, key: &str, expected: &str) -> wasmtime::Result<i32> {
        let key_ptr = self.place(key.as_bytes()).await;
        // `buffer` is one buffer: the message goes after the key.
        let both = format!("{key}{expected}");
        let ptr = self.place(both.as_bytes()).await;
        assert_eq!(ptr, key_ptr);
        let f = self
            .instance
            .get_func(&mut self.store, "lookup_len")
            .unwrap();
        let f = f.get_async().get4::<u32, u32, u32, u32, i32>(&self.store)?;
        let (len, expected_len) = (key.len() as u32, expected.len() as u32);
        f.call(&mut self.store, ptr, len, ptr + len, expected_len)
            .await
    }
}

/// A `GuestError` reaches the C guest as a value (a zero result, then `aw_error_take` gives
/// its code and message) for a string and for a number, and the guest goes on; any other
/// error still traps. Fails without error values: every `Err` was a trap.
#[tokio::test(flavor = "current_thread")]
async fn error_values_reach_the_c_guest_and_other_errors_trap() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(0)).await;
    assert_eq!(g.lookup_len("k", "").await.unwrap(), 5);
    assert_eq!(g.lookup_len("nope", "no key `nope`").await.unwrap(), -404);
    assert_eq!(g.half_or_code(8).await, 4);
    assert_eq!(g.half_or_code(7).await, 1007);
    g.still_works().await;

    let err = g.lookup_len("trap", "").await.unwrap_err();
    assert!(err.downcast_ref::<GuestError>().is_none(), "{err:?}");
    assert!(
        format!("{err:#}").contains("the database is down"),
        "{err:#}"
    );
    g.still_works().await;
    drop(g);
    assert_eq!(s.pool.stats().in_use, 0);
}

/// The header's `aw_realloc` grows a block aligned above 16 (keeping its bytes and
/// alignment), and refuses a size that would wrap and an alignment that is not a power of
/// two. Fails with 0.2's header, which grew such a block with `realloc` (losing the
/// alignment) and computed `new_len + align - 1` unchecked.
#[tokio::test(flavor = "current_thread")]
async fn the_headers_allocator_holds_at_its_edges() {
    let s = setup();
    let mut g = Guest::new(&s.engine, &s.linker, &s.module, Wait::Pending(0)).await;
    assert_eq!(g.call0::<i32>("realloc_edges").await, 1);
}

#[async_host]
async fn greet(name: String, times: i32) -> String {
    pending(1).await;
    format!("hello, {name}!").repeat(times as usize)
}

#[async_host]
async fn find(key: String) -> Result<String, GuestError> {
    Err(GuestError::new(404, format!("no key `{key}`")))
}

/// The C example in `async_wasm::data`'s documentation (`async-wasm/guest/example.c`)
/// runs and passes. Fails with 0.2's example, which expected 26 bytes for 24.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documentations_c_example_runs() {
    let engine = AsyncEngine::builder().build().unwrap();
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_host("env", "greet", greet).unwrap();
    linker.func_wrap_host("env", "find", find).unwrap();
    let module = Module::new(engine.engine(), GREET_EXAMPLE).unwrap();
    let mut store = engine.store(());
    let instance = instantiate_reactor(&mut store, &linker, &module)
        .await
        .unwrap();
    for export in ["run", "missing"] {
        let f = instance.get_func(&mut store, export).unwrap();
        let f = f.get_async().get0::<i32>(&store).unwrap();
        assert_eq!(f.call(&mut store).await.unwrap(), 1, "{export}");
    }
}

/// With `yield_every`, a call can be suspended inside the guest's allocator, and dropped
/// there: the guest's heap is then as the allocator left it (here: an allocation made and
/// never returned, the allocator's "inside" flag still up), as the docs say, and the
/// store goes on: the host does not take the next call for a re-entry.
#[tokio::test(flavor = "current_thread")]
async fn a_call_cancelled_inside_the_allocator_leaves_what_the_docs_say() {
    let engine = AsyncEngine::builder()
        .allocation(Allocation::StackPool)
        .yield_every(std::time::Duration::from_millis(1))
        .build()
        .unwrap();
    let linker = linker(engine.engine()).unwrap();
    let module = Module::new(engine.engine(), DATA_GUEST).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let store = engine.store(Wait::Flag(flag.clone()));
    let mut store = store;
    let instance = instantiate_reactor(&mut store, &linker, &module)
        .await
        .unwrap();
    let mut g = Guest { store, instance };
    g.set_alloc_mode(4).await; // ALLOC_SPIN
    {
        let f = g.instance.get_func(&mut g.store, "echo_static").unwrap();
        let f = f.get_async().get0::<i32>(&g.store).unwrap();
        let mut call = Box::pin(f.call(&mut g.store));
        // Once the host function has answered, every suspension is in the allocator; the
        // first may be at its entry, the later ones are in its loop.
        let mut inside = 0;
        while inside < 3 {
            match poll_once(&mut call) {
                Poll::Ready(result) => panic!("the spinning allocator returned: {result:?}"),
                Poll::Pending if flag.load(Ordering::SeqCst) => inside += 1,
                Poll::Pending => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    assert_eq!(g.call0::<i32>("in_allocator").await, 1);
    assert_eq!(g.live_host_allocations().await, 1);
    g.set_alloc_mode(0).await;
    assert_eq!(g.call0::<i32>("echo_static").await, 1);
}
