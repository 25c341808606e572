//! Single-threaded hosts: `Rc<RefCell<..>>` store data and host futures that hold `!Send`
//! values across `.await`s, through `Local` and `#[async_host(local)]`, on a tokio
//! `LocalSet`, a current-thread runtime and futures' `LocalPool`: suspension, many guests
//! interleaved, cancellation, host errors and traps. And misuse: a call moved to another
//! thread panics there, and dropped there leaks instead of running destructors on the
//! wrong thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use async_wasm::prelude::*;
use async_wasm::{Local, LocalFuture};
use futures::channel::oneshot;
use futures::stream::{FuturesUnordered, StreamExt};
use tests::{pending, poll_once, pooled_engine};
use wasmtime::{Caller, Engine, Linker, Module, Store, Trap};

/// What `env.host` does on its next call.
enum Step {
    /// Pending this many times, then returns x * 10.
    Pending(usize),
    /// Waits for the channel, then returns x plus what came through it.
    Channel(oneshot::Receiver<i32>),
    /// Never finishes; holds a guard that records the thread it is dropped on.
    Forever(ThreadRecorder),
    /// Returns -1, on which the guest traps.
    Trap,
    /// Returns an error.
    Fail,
}

/// The host's state: not `Send` (an `Rc`), shared by every store of a guest set.
#[derive(Default)]
struct Db {
    steps: VecDeque<Step>,
    calls: u32,
}

type Shared = Rc<RefCell<Db>>;

/// Records the thread its destructor runs on.
#[derive(Clone, Default)]
struct ThreadRecorder(Arc<Mutex<Vec<ThreadId>>>);

impl ThreadRecorder {
    fn guard(&self) -> ThreadGuard {
        ThreadGuard(self.0.clone())
    }

    fn threads(&self) -> Vec<ThreadId> {
        self.0.lock().unwrap().clone()
    }
}

struct ThreadGuard(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(std::thread::current().id());
    }
}

/// Holds the `Rc` (and, while waiting, a `RefCell` borrow's worth of `!Send` state) across
/// every `.await`.
#[async_host(local)]
async fn host(caller: Caller<'_, Local<Shared>>, x: i32) -> wasmtime::Result<i32> {
    let db: Shared = Rc::clone(caller.data());
    let step = {
        let mut db = db.borrow_mut();
        db.calls += 1;
        db.steps.pop_front().expect("a step per call")
    };
    match step {
        Step::Pending(times) => {
            pending(times).await;
            assert!(
                db.borrow().calls > 0,
                "the Rc is still usable after the await"
            );
            Ok(x * 10)
        }
        Step::Channel(rx) => {
            let got = rx.await?;
            let _still_here = Rc::clone(&db);
            Ok(x + got)
        }
        Step::Forever(recorder) => {
            let _guard = (recorder.guard(), Rc::clone(&db));
            std::future::pending::<()>().await;
            unreachable!()
        }
        Step::Trap => Ok(-1),
        Step::Fail => Err(wasmtime::format_err!("host failed on purpose")),
    }
}

const GUEST: &str = r#"(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "run") (param i32) (result i32)
        (local i32)
        (local.set 1 (call $host (local.get 0)))
        (if (i32.eq (local.get 1) (i32.const -1)) (then unreachable))
        (i32.add (local.get 1) (i32.const 1))))"#;

struct Guests {
    engine: Engine,
    linker: Linker<Local<Shared>>,
    module: Module,
    db: Shared,
}

impl Guests {
    fn new(pool: &StackPool) -> Guests {
        let engine = pooled_engine(pool);
        let mut linker = Linker::new(&engine);
        linker.func_wrap_host("env", "host", host).unwrap();
        let module = Module::new(&engine, GUEST).unwrap();
        Guests {
            engine,
            linker,
            module,
            db: Shared::default(),
        }
    }

    fn push(&self, step: Step) {
        self.db.borrow_mut().steps.push_back(step);
    }

    /// A store whose data is the shared `Rc`, and the guest's `run`.
    async fn guest(
        &self,
    ) -> (
        Store<Local<Shared>>,
        async_wasm::AsyncTypedFunc<(i32,), i32>,
    ) {
        let mut store = Store::new(&self.engine, Local::new(Rc::clone(&self.db)));
        let instance = self
            .linker
            .instantiate_async(&mut store, &self.module)
            .await
            .unwrap();
        let run = instance.get_func(&mut store, "run").unwrap();
        let run = run.get_async().get1::<i32, i32>(&store).unwrap();
        (store, run)
    }
}

/// The same scenarios as the `Send` path's executor tests.
async fn scenarios() {
    let pool = StackPool::new(1 << 20);
    let guests = Guests::new(&pool);

    // A host future pending many times, holding its `Rc`.
    guests.push(Step::Pending(25));
    let (mut store, run) = guests.guest().await;
    assert_eq!(run.call(&mut store, 4).await.unwrap(), 41);

    // Many guests suspended at once on one thread, resumed out of order.
    let mut senders = Vec::new();
    let mut calls = FuturesUnordered::new();
    for id in 0..40 {
        let (tx, rx) = oneshot::channel();
        senders.push(Some(tx));
        guests.push(Step::Channel(rx));
        let (mut store, run) = guests.guest().await;
        calls.push(async move { (id, run.call(&mut store, id).await) });
    }
    assert!(futures::poll!(calls.next()).is_pending());
    for id in (0..40).rev() {
        senders[id as usize].take().unwrap().send(100).unwrap();
        let (done, result) = calls.next().await.unwrap();
        assert_eq!((done, result.unwrap()), (id, id + 101));
    }

    // Cancellation: the host future (with its `Rc`) is dropped on this thread, and runs its
    // destructors here.
    let recorder = ThreadRecorder::default();
    guests.push(Step::Forever(recorder.clone()));
    {
        let mut call = Box::pin(run.call(&mut store, 1));
        assert!(poll_once(&mut call).is_pending());
    }
    assert_eq!(recorder.threads(), [std::thread::current().id()]);
    guests.push(Step::Pending(1));
    assert_eq!(
        run.call(&mut store, 2).await.unwrap(),
        21,
        "the store goes on"
    );

    // A host error and a trap.
    guests.push(Step::Fail);
    let err = run.call(&mut store, 1).await.unwrap_err();
    assert!(format!("{err:?}").contains("host failed on purpose"));
    guests.push(Step::Trap);
    let err = run.call(&mut store, 1).await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );

    drop(store);
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(
        Rc::strong_count(&guests.db),
        1,
        "every store's Rc was dropped"
    );
}

/// Data through a local host function: a `String` in and out, its body holding an `Rc`
/// across its `.await`s.
#[async_host(local)]
async fn greet(caller: Caller<'_, Local<Shared>>, name: String) -> String {
    let db: Shared = Rc::clone(caller.data());
    pending(2).await;
    db.borrow_mut().calls += 1;
    format!("hello {name}")
}

/// A local host function without a `Caller`.
#[async_host(local)]
async fn twice(x: i32) -> i32 {
    let held = Rc::new(x);
    pending(1).await;
    *held * 2
}

const DATA_GUEST: &str = r#"(module
    (import "env" "greet" (func $greet (param i32 i32) (result i64)))
    (import "env" "twice" (func $twice (param i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "wasm")
    (global $next (mut i32) (i32.const 1024))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
        (local $ptr i32)
        (local.set $ptr (global.get $next))
        (global.set $next (i32.add (global.get $next) (local.get 3)))
        (local.get $ptr))
    (func (export "greet") (result i64) (call $greet (i32.const 0) (i32.const 4)))
    (func (export "twice") (param i32) (result i32) (call $twice (local.get 0))))"#;

/// The data and caller-less shapes of the local mode, on the executor this runs on.
async fn data_and_no_caller() {
    let pool = StackPool::new(1 << 20);
    let engine = pooled_engine(&pool);
    let mut linker: Linker<Local<Shared>> = Linker::new(&engine);
    linker.func_wrap_host("env", "greet", greet).unwrap();
    linker.func_wrap_host("env", "twice", twice).unwrap();
    let module = Module::new(&engine, DATA_GUEST).unwrap();
    let db = Shared::default();
    let mut store = Store::new(&engine, Local::new(Rc::clone(&db)));
    let instance = linker.instantiate_async(&mut store, &module).await.unwrap();

    let greet = instance.get_func(&mut store, "greet").unwrap();
    let reply = greet.get_async().get0::<i64>(&store).unwrap();
    let reply = reply.call(&mut store).await.unwrap();
    let (ptr, len) = (reply as u32 as usize, (reply >> 32) as usize);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[ptr..ptr + len], b"hello wasm");
    assert_eq!(db.borrow().calls, 1);

    let twice = instance.get_func(&mut store, "twice").unwrap();
    let twice = twice.get_async().get1::<i32, i32>(&store).unwrap();
    assert_eq!(twice.call(&mut store, 21).await.unwrap(), 42);
}

#[test]
fn on_a_tokio_local_set() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        tokio::task::spawn_local(scenarios()).await.unwrap();
        tokio::task::spawn_local(data_and_no_caller())
            .await
            .unwrap();
    });
}

#[test]
fn on_a_tokio_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(scenarios());
    rt.block_on(data_and_no_caller());
}

#[test]
fn on_futures_local_pool() {
    use futures::task::LocalSpawnExt;
    let mut pool = futures::executor::LocalPool::new();
    let handle = pool.spawner().spawn_local_with_handle(scenarios()).unwrap();
    pool.run_until(handle);
    let handle = pool
        .spawner()
        .spawn_local_with_handle(data_and_no_caller())
        .unwrap();
    pool.run_until(handle);
}

/// Closures take the same road: the future in a `LocalFuture`, the state in a `Local`.
#[test]
fn a_closure_with_a_local_future() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, Local::new(Rc::new(RefCell::new(vec![1, 2]))));
    let f = wasmtime::Func::wrap_async1(
        &mut store,
        |caller: Caller<'_, Local<Rc<RefCell<Vec<i32>>>>>, x: i32| {
            let list = Rc::clone(caller.data());
            Box::new(LocalFuture::new(async move {
                pending(2).await;
                list.borrow_mut().push(x);
                list.borrow().iter().sum::<i32>()
            }))
        },
    );
    let f = f.get_async().get1::<i32, i32>(&store).unwrap();
    assert_eq!(
        futures::executor::block_on(f.call(&mut store, 3)).unwrap(),
        6
    );
}

/// A guest suspended in a local host future, its call boxed with the store it borrows, so
/// that the whole call can be sent to another thread (it is `Send`).
fn suspended_call(
    recorder: &ThreadRecorder,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<i32>> + Send>> {
    let pool = StackPool::new(1 << 20);
    let guests = Guests::new(&pool);
    guests.push(Step::Forever(recorder.clone()));
    let (store, run) = futures::executor::block_on(guests.guest());
    let mut call = Box::pin(async move {
        let mut store = store;
        run.call(&mut store, 1).await
    });
    assert!(poll_once(&mut call).is_pending(), "suspended in the host");
    call
}

#[test]
fn a_call_polled_on_another_thread_panics_there() {
    let recorder = ThreadRecorder::default();
    let mut call = suspended_call(&recorder);
    let message = std::thread::spawn(move || {
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = poll_once(&mut call);
        }));
        let payload = polled.expect_err("polling on another thread panics");
        drop(call);
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap()
    })
    .join()
    .unwrap();
    assert!(message.contains("async_wasm::LocalFuture"), "{message}");
    assert!(
        message.contains("on a thread other than the one that made it"),
        "{message}"
    );
    assert!(
        recorder.threads().is_empty(),
        "no destructor of the host future ran on the other thread: {:?}",
        recorder.threads()
    );
}

#[test]
fn a_call_dropped_on_another_thread_leaks_instead_of_dropping_there() {
    let recorder = ThreadRecorder::default();
    let call = suspended_call(&recorder);
    let other = std::thread::spawn(move || {
        drop(call); // cancels the guest: wasmtime unwinds its fiber here
        std::thread::current().id()
    })
    .join()
    .unwrap();
    let ran_on = recorder.threads();
    assert!(
        !ran_on.contains(&other),
        "a destructor of the local future ran on the wrong thread"
    );
    assert!(
        ran_on.is_empty(),
        "the local future was leaked, not dropped"
    );
}
