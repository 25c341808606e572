//! The async modes: every guest a task on one current-thread tokio runtime, the plugin's
//! imports `#[async_host]` fns that await tokio's sockets and timers.

use std::net::SocketAddr;
use std::sync::Arc;

use async_wasm::data::Json;
use async_wasm::prelude::*;
use async_wasm::{Allocation, AsyncEngine};
use tokio::task::JoinSet;
use wasmtime::error::Context as _;
use wasmtime::{Caller, Engine, Instance, InstancePre, Linker, Module, Result, Store};

use crate::plugin::{self, Answer, PLUGIN, Plugin, Reply, Request};
use crate::report::{Readings, Report, Tally};
use crate::wire::{self, AsyncConnection};
use crate::{Load, Mode};

/// The largest linear memory a plugin may grow to. The plugin needs 2 pages (128 KiB);
/// under the pooling allocator this is the size of each memory slot.
const MAX_MEMORY: usize = 1 << 20;

type State = Plugin<AsyncConnection>;

#[async_host]
async fn request(caller: Caller<'_, State>) -> Json<Request> {
    Json(caller.data().request.clone())
}

#[async_host]
async fn sleep_ms(ms: i32) -> Result<()> {
    tokio::time::sleep(plugin::sleep_duration(ms)?).await;
    Ok(())
}

/// Sends the plugin's message over its connection and hands it what came back.
#[async_host]
async fn echo(mut caller: Caller<'_, State>, message: Vec<u8>) -> Result<Vec<u8>> {
    wire::exchange_async(&mut caller.data_mut().connection, &message).await
}

#[async_host]
async fn respond(mut caller: Caller<'_, State>, reply: Json<Reply>) -> Result<()> {
    caller.data_mut().respond(reply.into_inner())
}

/// Where a mode's stores come from: this crate's recipe, or a plain engine.
enum Stores {
    Recipe(AsyncEngine),
    Plain(Engine),
}

impl Stores {
    fn for_mode(mode: Mode, guests: usize) -> Result<Stores> {
        let allocation = match mode {
            Mode::Pooling => Allocation::Pooling,
            Mode::StackPool => Allocation::StackPool,
            // What a user gets without this crate's stack handling: wasmtime maps a stack
            // (2 MiB by default) for each store and unmaps it when the store is dropped.
            Mode::DefaultStacks => return Ok(Stores::Plain(Engine::default())),
            Mode::Threads => unreachable!("the threads mode is not async"),
        };
        // One store per guest at a time. (The second stack a store holds while its plugin's
        // allocator runs for a data result is counted by `max_stores` itself.)
        let stores = u32::try_from(guests).context("too many guests for one engine")?;
        let builder = AsyncEngine::builder()
            .allocation(allocation)
            .max_stores(stores);
        let builder = match allocation {
            Allocation::Pooling => builder.max_memory_size(MAX_MEMORY),
            _ => builder,
        };
        Ok(Stores::Recipe(builder.build()?))
    }

    fn engine(&self) -> &Engine {
        match self {
            Stores::Recipe(recipe) => recipe.engine(),
            Stores::Plain(engine) => engine,
        }
    }

    fn store(&self, state: State) -> Store<State> {
        match self {
            Stores::Recipe(recipe) => recipe.store(state),
            Stores::Plain(engine) => Store::new(engine, state),
        }
    }
}

/// What every guest of a run shares, behind an `Arc`: a cloned `Linker` or `InstancePre`
/// per guest would be counted as the guests' memory.
struct Setup {
    stores: Stores,
    plugin: InstancePre<State>,
    load: Load,
    server: SocketAddr,
}

pub fn run(mode: Mode, load: Load, server: SocketAddr) -> Result<Report> {
    let stores = Stores::for_mode(mode, load.guests)?;
    let mut linker = Linker::new(stores.engine());
    linker
        .func_wrap_host(plugin::MODULE, "request", request)?
        .func_wrap_host(plugin::MODULE, "sleep_ms", sleep_ms)?
        .func_wrap_host(plugin::MODULE, "echo", echo)?
        .func_wrap_host(plugin::MODULE, "respond", respond)?;
    let module = Module::new(stores.engine(), PLUGIN)?;
    let setup = Arc::new(Setup {
        plugin: linker.instantiate_pre(&module)?,
        stores,
        load,
        server,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut readings = Readings::start();
    let tally = runtime.block_on(async {
        let mut guests = JoinSet::new();
        for guest in 0..load.guests {
            guests.spawn(guest_session(Arc::clone(&setup), guest));
        }
        // No thread was started; read anyway, to measure every mode the same way.
        readings.all_started();
        let mut tally = Tally::default();
        while let Some(done) = guests.join_next().await {
            tally.merge(done?);
        }
        Result::<_>::Ok(tally)
    })?;
    Ok(readings.finish(mode.name(), tally, 1))
}

/// One guest: a connection, its requests in turn, a goodbye.
async fn guest_session(setup: Arc<Setup>, guest: usize) -> Tally {
    let ids = setup.load.ids(guest);
    let mut tally = Tally::default();
    let session = async {
        let mut connection = wire::connect_async(setup.server).await?;
        for id in ids.clone() {
            let request = Request::new(guest, id);
            let (back, answer) = handle(&setup, connection, request.clone()).await?;
            tally.record(&request, &answer);
            connection = back;
        }
        wire::goodbye_async(connection).await
    };
    let session = session.await;
    tally.end_session(ids, session);
    tally
}

/// One request: a fresh store and instance, the connection lent to the store for the
/// request and taken back with the answer.
async fn handle(
    setup: &Setup,
    connection: AsyncConnection,
    request: Request,
) -> Result<(AsyncConnection, Answer)> {
    let mut store = setup.stores.store(Plugin::new(connection, request));
    let instance = setup.plugin.instantiate_async(&mut store).await?;
    call::<()>(&mut store, &instance, "_initialize").await?;
    let status = call::<i32>(&mut store, &instance, "handle").await?;
    let state = store.into_data();
    let answer = Answer {
        status,
        reply: state.reply,
    };
    Ok((state.connection, answer))
}

/// Calls the plugin's export `name`, which takes nothing.
async fn call<R>(store: &mut Store<State>, instance: &Instance, name: &str) -> Result<R>
where
    R: wasmtime::WasmResults + Sync + 'static,
{
    let func = instance
        .get_func(&mut *store, name)
        .with_context(|| format!("the plugin exports no `{name}`"))?;
    func.get_async().get0::<R>(&*store)?.call(&mut *store).await
}
