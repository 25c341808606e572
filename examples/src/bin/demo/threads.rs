//! The synchronous mode: plain wasmtime, a `std::thread` per guest, the plugin's imports
//! blocking host functions over std's sockets and `thread::sleep`. Without async-wasm
//! there is no data ABI either, so it is done here by hand, as an embedder would.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use wasmtime::error::Context as _;
use wasmtime::{
    Caller, Config, Engine, Extern, InstanceAllocationStrategy, InstancePre, Linker, Memory,
    Module, PoolingAllocationConfig, Result, Store,
};

use crate::plugin::{self, Answer, PLUGIN, Plugin, Reply, Request};
use crate::report::{Readings, Report, Tally};
use crate::wire::{self, BlockingConnection};
use crate::{Load, Mode};

/// At most this many threads; past it, each thread serves several guests in turn, so
/// that a large `--guests` cannot exhaust the machine's threads.
pub const MAX_THREADS: usize = 4_000;
/// As in the async modes.
const MAX_MEMORY: usize = 1 << 20;

type State = Plugin<BlockingConnection>;

struct Setup {
    plugin: InstancePre<State>,
    load: Load,
    server: SocketAddr,
}

pub fn run(load: Load, server: SocketAddr) -> Result<Report> {
    let engine = engine(load.guests.min(MAX_THREADS))?;
    let module = Module::new(&engine, PLUGIN)?;
    let setup = Setup {
        plugin: linker(&engine)?.instantiate_pre(&module)?,
        load,
        server,
    };
    let next_guest = AtomicUsize::new(0);
    let take_guest = || {
        let guest = next_guest.fetch_add(1, Ordering::Relaxed);
        (guest < load.guests).then_some(guest)
    };
    let thread_count = load.guests.min(MAX_THREADS);
    // Holds every thread until all are started. Without it the first threads finish
    // before the last start (starting 2,000 threads takes longer than one guest's
    // requests), and fewer guests than asked would run at once. A write lock rather than
    // a `Barrier` because it is released on every path, even when a spawn fails.
    let start_gate = RwLock::new(());
    let mut readings = Readings::start();
    let tally = std::thread::scope(|scope| {
        let held = start_gate.write().unwrap_or_else(PoisonError::into_inner);
        let mut threads = Vec::new();
        for _ in 0..thread_count {
            // Default thread settings (a 2 MiB stack), as a user would start them.
            threads.push(std::thread::Builder::new().spawn_scoped(scope, || {
                drop(start_gate.read().unwrap_or_else(PoisonError::into_inner));
                let mut tally = Tally::default();
                while let Some(guest) = take_guest() {
                    tally.merge(guest_session(&setup, guest));
                }
                tally
            })?);
        }
        readings.all_started();
        drop(held);
        let mut tally = Tally::default();
        for thread in threads {
            let done = thread
                .join()
                .map_err(|_| wasmtime::format_err!("a guest thread panicked"))?;
            tally.merge(done);
        }
        Result::<_>::Ok(tally)
    })?;
    Ok(readings.finish(Mode::Threads.name(), tally, thread_count))
}

/// wasmtime's pooling allocator for `stores` stores at once, tuned as `AsyncEngine` tunes
/// it for a store per request, with the same memory bound as the async modes: so that
/// what differs from async-wasm's Pooling mode is threads against tasks, nothing else.
fn engine(stores: usize) -> Result<Engine> {
    // Twice the slots, as the async modes have (for their stacks). Here it is for the
    // batched decommits: a dropped store's slot waits in a queue until its batch is
    // flushed, and a thread that finds no slot free flushes the queues, but can miss a batch
    // that another thread is flushing at that moment. With exactly `stores` slots, 2,000
    // threads made a few requests fail that way ("maximum concurrent limit ... reached").
    let stores = u32::try_from(2 * stores)?;
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_core_instances(stores)
        .total_memories(stores)
        .total_tables(stores)
        .max_memory_size(MAX_MEMORY)
        .linear_memory_keep_resident(4 << 10)
        .decommit_batch_size(32)
        .max_unused_warm_slots(stores);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config)
}

/// One guest, as in the async modes.
fn guest_session(setup: &Setup, guest: usize) -> Tally {
    let ids = setup.load.ids(guest);
    let mut tally = Tally::default();
    let mut session = || {
        let mut connection = wire::connect_blocking(setup.server)?;
        for id in ids.clone() {
            let request = Request::new(guest, id);
            let (back, answer) = handle(setup, connection, request.clone())?;
            tally.record(&request, &answer);
            connection = back;
        }
        Ok(wire::goodbye_blocking(connection)?)
    };
    let session = session();
    tally.end_session(ids, session);
    tally
}

/// One request, as in the async modes, with synchronous calls.
fn handle(
    setup: &Setup,
    connection: BlockingConnection,
    request: Request,
) -> Result<(BlockingConnection, Answer)> {
    let mut store = Store::new(
        setup.plugin.module().engine(),
        Plugin::new(connection, request),
    );
    let instance = setup.plugin.instantiate(&mut store)?;
    let initialize = instance.get_typed_func::<(), ()>(&mut store, "_initialize")?;
    initialize.call(&mut store, ())?;
    let handle = instance.get_typed_func::<(), i32>(&mut store, "handle")?;
    let status = handle.call(&mut store, ())?;
    let state = store.into_data();
    let answer = Answer {
        status,
        reply: state.reply,
    };
    Ok((state.connection, answer))
}

/// The plugin's imports, blocking their thread instead of awaiting.
fn linker(engine: &Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        plugin::MODULE,
        "request",
        |mut caller: Caller<'_, State>| -> Result<i64> {
            let json = serde_json::to_vec(&caller.data().request)?;
            write_result(&mut caller, &json)
        },
    )?;
    linker.func_wrap(
        plugin::MODULE,
        "sleep_ms",
        |_: Caller<'_, State>, ms: i32| -> Result<()> {
            std::thread::sleep(plugin::sleep_duration(ms)?);
            Ok(())
        },
    )?;
    linker.func_wrap(
        plugin::MODULE,
        "echo",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<i64> {
            let message = read_param(&mut caller, ptr, len)?;
            let echoed = wire::exchange_blocking(&mut caller.data_mut().connection, &message)?;
            write_result(&mut caller, &echoed)
        },
    )?;
    linker.func_wrap(
        plugin::MODULE,
        "respond",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<()> {
            let json = read_param(&mut caller, ptr, len)?;
            let reply: Reply =
                serde_json::from_slice(&json).context("the plugin's reply is not a Reply")?;
            caller.data_mut().respond(reply)
        },
    )?;
    Ok(linker)
}

// The data ABI by hand (see `async_wasm::data`): a parameter is a pointer and a length,
// both unsigned; a result is bytes placed in memory from the guest's `cabi_realloc`,
// returned as one i64, the pointer low and the length high.

fn guest_memory(caller: &mut Caller<'_, State>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .context("the plugin exports no memory")
}

/// Copies the guest's `len` bytes at `ptr`.
fn read_param(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = guest_memory(caller)?;
    let data = memory.data(&*caller);
    // In u64, so that `ptr + len` cannot wrap past 4 GiB.
    let (start, end) = (
        u64::from(ptr as u32),
        u64::from(ptr as u32) + u64::from(len as u32),
    );
    if end > data.len() as u64 {
        wasmtime::bail!(
            "the plugin passed bytes {start}..{end}, outside its memory of {} bytes",
            data.len()
        );
    }
    Ok(data[start as usize..end as usize].to_vec())
}

/// Hands `bytes` to the guest: allocates them with its `cabi_realloc` (a synchronous call
/// back into the guest, which wasmtime allows from a synchronous host function), writes
/// them there, and returns the packed pointer and length.
fn write_result(caller: &mut Caller<'_, State>, bytes: &[u8]) -> Result<i64> {
    if bytes.is_empty() {
        return Ok(0);
    }
    let len = u32::try_from(bytes.len()).context("a result of 4 GiB or more")?;
    let realloc = caller
        .get_export("cabi_realloc")
        .and_then(Extern::into_func)
        .context("the plugin exports no `cabi_realloc`")?
        .typed::<(i32, i32, i32, i32), i32>(&*caller)?;
    let ptr = realloc.call(&mut *caller, (0, 0, 1, len as i32))? as u32;
    if ptr == 0 {
        wasmtime::bail!("the plugin has no memory left for {len} bytes");
    }
    // Looked up after the allocator ran: it may have grown the memory.
    guest_memory(caller)?
        .write(&mut *caller, ptr as usize, bytes)
        .with_context(|| format!("the plugin's allocator gave {ptr:#x}, outside its memory"))?;
    Ok((u64::from(len) << 32 | u64::from(ptr)) as i64)
}
