//! What every benchmark shares: engines, the host future shapes, criterion's settings, and
//! for the store-per-request benchmarks the guests, the tuned pooling allocator and one
//! request made each way.
//!
//! Each `benches/*.rs` file is its own binary and uses only part of this module, hence the
//! `dead_code` allowance on the module declaration in each of them.

pub mod data;
pub mod host_calls;
pub mod rounds;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_wasm::Allocation;
use async_wasm::prelude::*;
use criterion::Criterion;
use wasmtime::{
    Caller, Config, Enabled, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    ModuleExport, PoolingAllocationConfig, Store,
};

/// Usable bytes of each pooled stack: above wasmtime's default `max_wasm_stack` (512 KiB),
/// which `Engine::new` requires, and half of wasmtime's default 2 MiB async stack. The
/// pooling allocator's stacks get the same size, so that both pools lend alike.
pub const STACK_SIZE: usize = 1 << 20;

/// Criterion settings that keep the whole `cargo bench -p async-wasm` run, every bench
/// included, to about three and a half minutes on a 2-core machine: the operations measured
/// here take nanoseconds to microseconds, so two seconds still collect tens of thousands of
/// them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// An engine whose async stacks come from `pool`, as `StackPool`'s users configure it.
pub fn pooled_engine(pool: &StackPool) -> Engine {
    pool.engine(&Config::new()).expect("a pooled engine")
}

/// Runs `future` to completion on the current thread. Every benchmark uses this one
/// executor, so raw wasmtime and async-wasm pay the same executor costs.
pub fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// A future that is pending once, waking itself, then ready: the cheapest host future that
/// really suspends the guest, without a timer or a runtime to wait on.
pub fn yield_once() -> YieldOnce {
    YieldOnce { yielded: false }
}

/// See [`yield_once`].
pub struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------------------
// A store per request
// ---------------------------------------------------------------------------------------

/// The guests a request instantiates. Both export `run(x)`, which calls the import
/// `env.host` once; the host answers `y + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guest {
    /// No memory, no table: a request pays for the instance and the call only.
    NoMemory,
    /// One 64 KiB page of linear memory with a data segment, which `run` reads:
    /// `run(x) = host(x + load(0))`, with 41 stored at address 0. The page is mapped,
    /// initialised from the module's image, touched, and reset for the next store.
    Memory,
}

impl Guest {
    pub const ALL: [Guest; 2] = [Guest::NoMemory, Guest::Memory];

    pub fn name(self) -> &'static str {
        match self {
            Guest::NoMemory => "no_memory",
            Guest::Memory => "memory_1_page",
        }
    }

    pub fn wat(self) -> &'static str {
        match self {
            Guest::NoMemory => {
                r#"(module
                    (import "env" "host" (func $host (param i32) (result i32)))
                    (func (export "run") (param i32) (result i32)
                        (call $host (local.get 0))))"#
            }
            Guest::Memory => {
                r#"(module
                    (import "env" "host" (func $host (param i32) (result i32)))
                    (memory 1)
                    (data (i32.const 0) "\29\00\00\00")
                    (func (export "run") (param i32) (result i32)
                        (call $host (i32.add (local.get 0) (i32.load (i32.const 0))))))"#
            }
        }
    }

    /// What `run(1)` answers; every variant checks it once before it is timed.
    pub fn expected(self) -> i32 {
        match self {
            Guest::NoMemory => 2,
            Guest::Memory => 43,
        }
    }
}

/// The pooling allocator's settings that matter to a store per request, gathered so the
/// tuning benchmark can change one at a time. [`PoolingSettings::config`] applies them.
#[derive(Clone, Copy, Debug)]
pub struct PoolingSettings {
    /// `total_core_instances`, `total_memories`, `total_tables`, `total_stacks`: slots in
    /// each pool, which bound how many stores may live at once.
    pub total: u32,
    /// `max_memory_size`.
    pub max_memory_size: usize,
    /// `linear_memory_keep_resident`.
    pub memory_keep_resident: usize,
    /// `table_keep_resident`.
    pub table_keep_resident: usize,
    /// `decommit_batch_size`.
    pub decommit_batch_size: usize,
    /// `async_stack_keep_resident`.
    pub stack_keep_resident: usize,
    /// `max_unused_warm_slots`.
    pub max_unused_warm_slots: u32,
    /// `pagemap_scan` (Linux 6.7+): reset only the pages a guest wrote, up to the
    /// keep-resident sizes.
    pub pagemap_scan: bool,
    /// `Config::memory_reservation`; `None` keeps wasmtime's 4 GiB.
    pub memory_reservation: Option<u64>,
    /// `Config::memory_guard_size`; `None` keeps wasmtime's 32 MiB.
    pub memory_guard_size: Option<u64>,
    /// `Config::memory_init_cow`.
    pub memory_init_cow: bool,
}

/// wasmtime 48's own pooling defaults, the starting point of the tuning.
pub fn default_pooling() -> PoolingSettings {
    PoolingSettings {
        total: 1000,
        max_memory_size: 1 << 32,
        memory_keep_resident: 0,
        table_keep_resident: 0,
        decommit_batch_size: 1,
        stack_keep_resident: 0,
        max_unused_warm_slots: 100,
        pagemap_scan: false,
        memory_reservation: None,
        memory_guard_size: None,
        memory_init_cow: true,
    }
}

/// The pooling allocator as an expert tunes it for these guests, a fresh store per request.
/// Each value was chosen by measurement (`cargo bench -p async-wasm --bench pooling_tuning`,
/// interleaved rounds of thread CPU time; ratios below are per request, guest with memory,
/// against this configuration). Together: 0.32x wasmtime's pooling defaults synchronously,
/// 0.37x async, 0.29x async with zeroed stacks.
pub fn tuned_pooling() -> PoolingSettings {
    PoolingSettings {
        // Slots bound the stores alive at once: 1000 is wasmtime's default. It costs address
        // space (about 4 TiB reserved for memories) and set-up time, never per-request time:
        // 100 and 4000 measured within 2%. A service sets it to its peak concurrency.
        total: 1000,
        // The guests need one page; 1 MiB leaves room to grow and bounds a runaway guest.
        // It does not change the slot layout (`memory_reservation` does): 64 KiB and 4 GiB
        // measured within 1%.
        max_memory_size: 1 << 20,
        // One host page, the page the guest touches: on return it is copied back from the
        // module's image (a 4 KiB memcpy) and stays mapped, instead of being dropped with
        // madvise and refaulted from the image by the next store. 0 (the default) is 1.9x-2x
        // slower; 8 KiB 1.03x; 64 KiB memsets the whole page, 1.3x; `pagemap_scan` with
        // 64 KiB or 1 MiB, 1.4x-1.6x. The untouched rest of the 64 KiB page is released
        // with madvise, batched (below).
        memory_keep_resident: 4 << 10,
        // The guests have no table: 64 KiB measured equal.
        table_keep_resident: 0,
        // Released memory (and zeroed stacks) are decommitted 32 at a time, in one
        // process_madvise: 1 (the default) is 1.2x-1.3x slower, 8 equal without zeroing and
        // 1.05x with it. Past `max_unused_warm_slots` it backfires: slots waiting for the
        // batch cannot be reused, so new slots are taken and mapped afresh (128 with two
        // modules on one engine: 2.9x-3.6x). Keep batch x modules below the warm slots.
        decommit_batch_size: 32,
        // With `async_stack_zeroing`, memset the top 8 KiB of a returned stack (what a
        // short call touches) and madvise the rest (batched), so the next call does not
        // refault it: 0 is 1.9x slower, 64 KiB 1.15x; 4 KiB measured 0.98x for this guest,
        // but would refault as soon as a call goes deeper. No effect without zeroing.
        stack_keep_resident: 8 << 10,
        // The default. 0 is 2x slower: freed slots are then handed to other modules (or
        // cold) instead of back to the module they hold the image of. 1000 measured equal.
        max_unused_warm_slots: 100,
        // Off: the scan (an ioctl per returned memory) costs more than the memcpy of the
        // one page it would spare (see `memory_keep_resident`).
        pagemap_scan: false,
        // wasmtime's defaults: 4 GiB reservations with 32 MiB guards remove bounds checks;
        // the pool reserves its address space once, so per request they cost nothing
        // (1 MiB reservations with 64 KiB or no guard measured within 2%).
        memory_reservation: None,
        memory_guard_size: None,
        // Copy-on-write images: the data segment is mapped, not copied, and the instance
        // needs no initialisation, so `instantiate_async` does not enter a fiber for it.
        // Off measured 1.0x-1.07x with 4 KiB kept resident (2.1x with nothing kept).
        memory_init_cow: true,
    }
}

impl PoolingSettings {
    /// An engine configuration that uses the pooling allocator with these settings, with
    /// [`STACK_SIZE`] async stacks and `zeroing` as `async_stack_zeroing`.
    pub fn config(&self, zeroing: bool) -> Config {
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_core_instances(self.total)
            .total_memories(self.total)
            .total_tables(self.total)
            .total_stacks(self.total)
            .max_memory_size(self.max_memory_size)
            .linear_memory_keep_resident(self.memory_keep_resident)
            .table_keep_resident(self.table_keep_resident)
            .decommit_batch_size(self.decommit_batch_size)
            .async_stack_keep_resident(self.stack_keep_resident)
            .max_unused_warm_slots(self.max_unused_warm_slots)
            .pagemap_scan(if self.pagemap_scan {
                Enabled::Yes
            } else {
                Enabled::No
            });
        let mut config = Config::new();
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling))
            .async_stack_size(STACK_SIZE)
            .async_stack_zeroing(zeroing)
            .memory_init_cow(self.memory_init_cow);
        if let Some(bytes) = self.memory_reservation {
            config.memory_reservation(bytes);
        }
        if let Some(bytes) = self.memory_guard_size {
            config.memory_guard_size(bytes);
        }
        config
    }

    pub fn engine(&self, zeroing: bool) -> Engine {
        Engine::new(&self.config(zeroing)).expect("a pooling engine")
    }
}

/// Makes the on-demand allocator put linear memories on the heap: no address-space
/// reservation, no guard region, no signal-based traps, so wasmtime allocates each memory
/// with `malloc` (glibc serves 64 KiB from its heap, no `mmap`) and copies the data
/// segments in, instead of mapping, protecting and unmapping a 4 GiB reservation per store.
///
/// The price is paid in the guest's code: every memory access is bounds-checked and the
/// stack limit, division and the like are checked explicitly instead of trapping through
/// signals (a loop of loads measured 2x slower than on the pooling allocator); a memory is
/// zeroed and its data copied at every instantiation, which makes `instantiate_async` enter
/// a fiber to initialise it; so this suits small memories and short requests. It is also
/// the configuration for tight virtual memory: nothing is reserved beyond what the guest
/// uses.
pub fn malloc_memory(config: &mut Config) -> &mut Config {
    config
        .memory_reservation(0)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        .signals_based_traps(false)
        .memory_init_cow(false)
}

/// Where a request's instance, memory and async stack come from.
#[derive(Clone, Debug)]
pub enum Allocator {
    /// wasmtime's default on-demand allocator and its own async stacks: an `mmap` and a
    /// `munmap` of a 2 MiB stack per store.
    OnDemand,
    /// The on-demand allocator, with async stacks from this `StackPool`.
    StackPool(StackPool),
    /// The pooling allocator with these settings, with its own pooled stacks.
    Pooling(PoolingSettings),
}

impl Allocator {
    pub fn engine(&self, zeroing: bool) -> Engine {
        let mut config = Config::new();
        config.async_stack_zeroing(zeroing);
        match self {
            Allocator::OnDemand => Engine::new(&config).expect("an on-demand engine"),
            Allocator::StackPool(pool) => pool.engine(&config).expect("a StackPool engine"),
            Allocator::Pooling(settings) => settings.engine(zeroing),
        }
    }
}

/// How a request instantiates and calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `Func::wrap` host, `InstancePre::instantiate`, `TypedFunc::call`: no fiber at all.
    Sync,
    /// `Linker::func_wrap_async`, `InstancePre::instantiate_async`, `TypedFunc::call_async`.
    WasmtimeAsync,
    /// As `WasmtimeAsync` but `Linker::instantiate_async` per request, which resolves the
    /// imports by name each time.
    WasmtimeAsyncLinker,
    /// async-wasm as its users write it: `LinkerExt::func_wrap_async1`,
    /// `InstancePre::instantiate_async`, `get_async().get1().call()`.
    AsyncWasm,
}

/// One request, run to completion on the calling thread; returns `run(1)`.
pub type BlockingRequest = Arc<dyn Fn() -> i32 + Send + Sync>;
/// One request as a future, for a runtime to run many at once; `None` for [`Api::Sync`].
pub type AsyncRequest = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = i32> + Send>> + Send + Sync>;

/// Everything a request needs that an expert makes once: the engine, the module compiled
/// for it, the imports resolved (`InstancePre`), the export's index.
#[derive(Clone)]
pub struct Prepared {
    linker: Arc<Linker<()>>,
    module: Module,
    pre: InstancePre<()>,
    run: ModuleExport,
    api: Api,
    /// Where stores come from when the engine is an `AsyncEngine`: its `store`, as its
    /// users make them.
    recipe: Option<AsyncEngine>,
}

impl Prepared {
    pub fn new(engine: &Engine, guest: Guest, api: Api) -> Prepared {
        let mut linker = Linker::new(engine);
        match api {
            Api::Sync => {
                linker.func_wrap("env", "host", |y: i32| y + 1).unwrap();
            }
            Api::WasmtimeAsync | Api::WasmtimeAsyncLinker => {
                linker
                    .func_wrap_async("env", "host", |_: Caller<'_, ()>, (y,): (i32,)| {
                        Box::new(async move {
                            yield_once().await;
                            y + 1
                        })
                    })
                    .unwrap();
            }
            Api::AsyncWasm => {
                linker
                    .func_wrap_async1("env", "host", |_: Caller<'_, ()>, y: i32| {
                        Box::new(async move {
                            yield_once().await;
                            y + 1
                        })
                    })
                    .unwrap();
            }
        }
        let module = Module::new(engine, guest.wat()).unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        let run = module.get_export_index("run").unwrap();
        Prepared {
            linker: Arc::new(linker),
            module,
            pre,
            run,
            api,
            recipe: None,
        }
    }

    /// Prepared for `recipe`'s engine, its stores made by `recipe.store`, through
    /// async-wasm's API.
    pub fn recipe(recipe: &AsyncEngine, guest: Guest) -> Prepared {
        Prepared {
            recipe: Some(recipe.clone()),
            ..Prepared::new(recipe.engine(), guest, Api::AsyncWasm)
        }
    }

    /// A synchronous request: new store, instantiate, call, drop the store.
    pub fn sync_request(&self) -> i32 {
        let mut store = Store::new(self.module.engine(), ());
        let instance = self.pre.instantiate(&mut store).unwrap();
        let run = instance.get_module_export(&mut store, &self.run).unwrap();
        let run = run.into_func().unwrap().typed::<i32, i32>(&store).unwrap();
        run.call(&mut store, 1).unwrap()
    }

    /// An async request, through the API this was prepared for.
    pub async fn async_request(&self) -> i32 {
        let mut store = match &self.recipe {
            Some(recipe) => recipe.store(()),
            None => Store::new(self.module.engine(), ()),
        };
        let instance = match self.api {
            Api::WasmtimeAsyncLinker => self
                .linker
                .instantiate_async(&mut store, &self.module)
                .await
                .unwrap(),
            _ => self.pre.instantiate_async(&mut store).await.unwrap(),
        };
        let run = instance.get_module_export(&mut store, &self.run).unwrap();
        let run = run.into_func().unwrap();
        match self.api {
            Api::AsyncWasm => {
                let run = run.get_async().get1::<i32, i32>(&store).unwrap();
                run.call(&mut store, 1).await.unwrap()
            }
            _ => {
                let run = run.typed::<i32, i32>(&store).unwrap();
                run.call_async(&mut store, 1).await.unwrap()
            }
        }
    }

    /// One request on the calling thread (an async one under [`block_on`]).
    pub fn blocking(self) -> BlockingRequest {
        match self.api {
            Api::Sync => Arc::new(move || self.sync_request()),
            _ => Arc::new(move || block_on(self.async_request())),
        }
    }

    /// One request as a boxed `Send` future; `None` for the synchronous API.
    pub fn future(self) -> Option<AsyncRequest> {
        if self.api == Api::Sync {
            return None;
        }
        let this = Arc::new(self);
        Some(Arc::new(move || {
            let this = this.clone();
            Box::pin(async move { this.async_request().await })
        }))
    }
}

/// A named way of serving a request, ready to run.
#[derive(Clone)]
pub struct Variant {
    pub name: String,
    pub guest: Guest,
    pub zeroing: bool,
    pub request: BlockingRequest,
}

impl Variant {
    /// Prepares `guest` for `api` on `engine`, and checks the answer once, so that a broken
    /// set-up cannot pass for a fast one.
    pub fn new(name: &str, engine: &Engine, api: Api, guest: Guest, zeroing: bool) -> Self {
        Variant::prepared(name, Prepared::new(engine, guest, api), guest, zeroing)
    }

    /// A request through `recipe`, an `AsyncEngine`, as the README recommends it.
    pub fn recipe(name: &str, recipe: &AsyncEngine, guest: Guest, zeroing: bool) -> Self {
        Variant::prepared(name, Prepared::recipe(recipe, guest), guest, zeroing)
    }

    fn prepared(name: &str, prepared: Prepared, guest: Guest, zeroing: bool) -> Self {
        let request = prepared.blocking();
        let variant = Variant {
            name: name.to_string(),
            guest,
            zeroing,
            request,
        };
        variant.check();
        variant
    }

    /// Runs one request and asserts its answer.
    pub fn check(&self) {
        assert_eq!(
            (self.request)(),
            self.guest.expected(),
            "{} answers run(1)",
            self.id()
        );
    }

    /// `guest[/zeroed]/name`, for tables and criterion ids.
    pub fn id(&self) -> String {
        format!(
            "{}{}/{}",
            self.guest.name(),
            if self.zeroing { "/zeroed" } else { "" },
            self.name
        )
    }
}

/// The name of the variant ratios are quoted against: synchronous wasmtime with the tuned
/// pooling allocator, the fastest way wasmtime serves a store per request.
pub const BASELINE: &str = "sync_pooling";

/// The variants every per-request benchmark compares, for both guests, with or without
/// `async_stack_zeroing`; the first of each guest is [`BASELINE`]. Synchronous calls use no
/// async stack, so zeroing changes nothing for them: with `zeroing` the baseline is still
/// listed (made without it), and the other synchronous variants are left out.
///
/// Each pooling variant gets an engine, so a pool of its own, as a service that serves one
/// guest would: modules sharing a pool compete for its warm slots (each returned memory
/// stays affine to its module, and a slot taken over by another module must be remapped),
/// which is a different measurement. That is up to 10 pooling engines per call, each
/// reserving about 4 TiB of address space (1000 slots of 4 GiB): 18 for both calls of
/// `per_request_rounds`, of the 128 TiB a 47-bit address space has.
pub fn per_request_variants(zeroing: bool) -> Vec<Variant> {
    let pool = StackPool::new(STACK_SIZE);
    let on_demand_sync = Allocator::OnDemand.engine(false);
    let on_demand = Allocator::OnDemand.engine(zeroing);
    let stack_pool = Allocator::StackPool(pool.clone()).engine(zeroing);
    let mut config = Config::new();
    malloc_memory(&mut config).async_stack_zeroing(zeroing);
    let malloc_sync = Engine::new(&config).expect("a malloc-memory engine");
    let malloc_stack_pool = pool
        .engine(&config)
        .expect("a malloc-memory StackPool engine");
    let mut variants = Vec::new();
    for guest in Guest::ALL {
        let mut add = |name: &str, engine: &Engine, api: Api| {
            let z = zeroing && api != Api::Sync;
            variants.push(Variant::new(name, engine, api, guest, z));
        };
        let pooling = |zeroing| tuned_pooling().engine(zeroing);
        add(BASELINE, &pooling(false), Api::Sync);
        if !zeroing {
            add("sync_on_demand", &on_demand_sync, Api::Sync);
        }
        add("async_default_stacks", &on_demand, Api::WasmtimeAsync);
        add("async_stackpool_raw", &stack_pool, Api::WasmtimeAsync);
        add("async_stackpool_async_wasm", &stack_pool, Api::AsyncWasm);
        add("async_pooling_raw", &pooling(zeroing), Api::WasmtimeAsync);
        add(
            "async_pooling_async_wasm",
            &pooling(zeroing),
            Api::AsyncWasm,
        );
        if !zeroing {
            add(
                "async_pooling_linker",
                &pooling(zeroing),
                Api::WasmtimeAsyncLinker,
            );
            add("sync_malloc_memory", &malloc_sync, Api::Sync);
        }
        add(
            "async_stackpool_async_wasm_malloc_memory",
            &malloc_stack_pool,
            Api::AsyncWasm,
        );
        // The crate's own recipe, as the README's per-request section configures it.
        for (name, allocation) in [
            ("async_engine_pooling", Allocation::Pooling),
            ("async_engine_stackpool", Allocation::StackPool),
        ] {
            let recipe = async_engine(allocation, zeroing);
            variants.push(Variant::recipe(name, &recipe, guest, zeroing));
        }
    }
    variants
}

/// An `AsyncEngine` as the README recommends it for a store per request: the guests' memory
/// bound fitted (pooling), 1,000 stores at once, stacks of [`STACK_SIZE`].
pub fn async_engine(allocation: Allocation, zeroing: bool) -> AsyncEngine {
    let builder = AsyncEngine::builder()
        .allocation(allocation)
        .max_stores(1000)
        .stack_size(STACK_SIZE)
        .zeroed_stacks(zeroing);
    let builder = match allocation {
        Allocation::Pooling => builder.max_memory_size(1 << 20),
        _ => builder,
    };
    builder.build().expect("an AsyncEngine")
}
