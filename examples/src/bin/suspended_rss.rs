//! What a suspended guest costs in memory: N guests (default 10,000) at once on one
//! current-thread runtime, each stopped inside a host future until the program releases
//! them all.
//!
//! ```text
//! cargo run --release -p examples --bin suspended_rss -- 10000
//! ```
//!
//! It reads the resident set size (`VmRSS`, Linux) before the first guest and again while
//! all are suspended, prints the difference per guest, then releases them and checks every
//! answer. Stacks come from a [`StackPool`] of 1 MiB stacks. Two guests are measured, each
//! in a process of its own (this program again, with `--guest`), so that memory one leaves
//! to the allocator does not lower the other's figure: one without memory, one with a
//! memory page.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_wasm::prelude::*;
use examples::{rss, thousands};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use wasmtime::error::Context as _;
use wasmtime::{Caller, Config, Engine, Linker, Module, Result, Store};

const USAGE: &str = "usage: suspended_rss [N]   (N guests suspended at once, default 10000)";
const DEFAULT_GUESTS: usize = 10_000;
const STACK_SIZE: usize = 1 << 20;
/// What the release hands every waiting host call.
const RELEASE: i32 = 1_000_000;

/// The guests measured. Each `run(id)` calls `wait(id)`, which returns `RELEASE + id` once
/// released, and returns that plus `id`: [`expected_answer`].
#[derive(Clone, Copy)]
enum Guest {
    NoMemory,
    /// Keeps `id` in its memory across the wait, so the page is touched, as a real guest's
    /// would be.
    OnePage,
}

impl Guest {
    const ALL: [Guest; 2] = [Guest::NoMemory, Guest::OnePage];

    fn name(self) -> &'static str {
        match self {
            Guest::NoMemory => "no-memory",
            Guest::OnePage => "one-page",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Guest::NoMemory => "without memory",
            Guest::OnePage => "one memory page",
        }
    }

    fn wat(self) -> &'static str {
        match self {
            Guest::NoMemory => {
                r#"(module
                (import "env" "wait" (func $wait (param i32) (result i32)))
                (func (export "run") (param $id i32) (result i32)
                    (i32.add (call $wait (local.get $id)) (local.get $id))))"#
            }
            Guest::OnePage => {
                r#"(module
                (import "env" "wait" (func $wait (param i32) (result i32)))
                (memory 1)
                (func (export "run") (param $id i32) (result i32)
                    (local $waited i32)
                    (i32.store (i32.const 0) (local.get $id))
                    (local.set $waited (call $wait (local.get $id)))
                    (i32.add (local.get $waited) (i32.load (i32.const 0)))))"#
            }
        }
    }
}

fn expected_answer(id: i32) -> i32 {
    RELEASE + 2 * id
}

fn main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let mut guests = DEFAULT_GUESTS;
    let mut only = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--guest" => {
                let name = args.next().context("--guest needs a name")?;
                only = Some(
                    Guest::ALL
                        .into_iter()
                        .find(|guest| guest.name() == name)
                        .with_context(|| format!("no guest named {name:?}"))?,
                );
            }
            number => {
                guests = number
                    .parse::<usize>()
                    .with_context(|| format!("{number:?} is not a number\n{USAGE}"))?
            }
        }
    }
    // `expected_answer` must fit an i32.
    if guests == 0 || guests > 100_000_000 {
        wasmtime::bail!("N must be between 1 and 100,000,000");
    }
    match only {
        Some(guest) => measure(guest, guests).map(|()| ExitCode::SUCCESS),
        None => measure_each_in_a_child(guests),
    }
}

fn measure_each_in_a_child(guests: usize) -> Result<ExitCode> {
    println!(
        "{} guests suspended at once, each in a host future awaiting a release, on one \
         current-thread runtime;\nstacks from a StackPool of 1 MiB stacks. Each guest is \
         measured in a process of its own.\n",
        thousands(guests as u64)
    );
    println!(
        "{}",
        row([
            "guest",
            "VmRSS before",
            "while suspended",
            "per guest",
            "stacks in use",
            "answers right",
        ])
    );
    let mut code = ExitCode::SUCCESS;
    for guest in Guest::ALL {
        let args = [
            "--guest".to_string(),
            guest.name().to_string(),
            guests.to_string(),
        ];
        let status = examples::run_self(&args)?;
        if !status.success() {
            eprintln!("measuring the guest {} failed: {status}", guest.label());
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// One line of the table, the header or a guest's.
fn row(cells: [&str; 6]) -> String {
    let [guest, before, suspended, per_guest, stacks, right] = cells;
    format!("{guest:<18}{before:>14}{suspended:>17}{per_guest:>11}{stacks:>15}{right:>20}")
}

/// What every guest's store holds: how to learn of the release, and whom to tell that it
/// is waiting.
struct Host {
    release: watch::Receiver<Option<i32>>,
    arrivals: Arc<Arrivals>,
}

/// Counts the guests that reached their wait; the last one to arrive tells the program.
struct Arrivals {
    expected: usize,
    count: AtomicUsize,
    all_waiting: Notify,
}

impl Arrivals {
    fn arrive(&self) {
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            // `notify_one` keeps the wakeup if the program is not waiting yet.
            self.all_waiting.notify_one();
        }
    }
}

#[async_host]
async fn wait(mut caller: Caller<'_, Host>, id: i32) -> Result<i32> {
    let host = caller.data_mut();
    host.arrivals.arrive();
    let released = *host
        .release
        .wait_for(Option::is_some)
        .await
        .context("the program dropped the release")?;
    Ok(released.context("the release holds a value")? + id)
}

fn measure(guest: Guest, guests: usize) -> Result<()> {
    let pool = StackPool::new(STACK_SIZE);
    let mut config = Config::new();
    pool.configure(&mut config)?;
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, guest.wat())?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap_async1("env", "wait", wait)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shared = Arc::new(Shared {
        engine,
        linker,
        module,
    });
    runtime.block_on(suspend_and_release(guest, guests, shared, &pool))
}

/// What every guest's task needs, shared rather than cloned per guest, so that it is not
/// counted as the guests' memory.
struct Shared {
    engine: Engine,
    linker: Linker<Host>,
    module: Module,
}

async fn suspend_and_release(
    guest: Guest,
    guests: usize,
    shared: Arc<Shared>,
    pool: &StackPool,
) -> Result<()> {
    let (release, released) = watch::channel(None);
    let arrivals = Arc::new(Arrivals {
        expected: guests,
        count: AtomicUsize::new(0),
        all_waiting: Notify::new(),
    });
    let before = rss::current_kib();

    let mut calls = JoinSet::new();
    for id in 0..guests as i32 {
        let host = Host {
            release: released.clone(),
            arrivals: Arc::clone(&arrivals),
        };
        let shared = Arc::clone(&shared);
        calls.spawn(async move { (id, run_guest(&shared, host, id).await) });
    }
    // Every guest runs until its host call waits; one that ends first has failed.
    tokio::select! {
        () = arrivals.all_waiting.notified() => {}
        Some(done) = calls.join_next() => {
            let (id, answer) = done?;
            wasmtime::bail!("guest {id} ended before the release, with {answer:?}");
        }
    }
    // Only this task runs between the last arrival and here, so every guest is suspended.
    let suspended = rss::current_kib();
    let in_use = pool.stats().in_use;

    release.send(Some(RELEASE))?;
    let mut right: usize = 0;
    let mut first_wrong = None;
    while let Some(done) = calls.join_next().await {
        let (id, answer) = done?;
        match answer {
            Ok(answer) if answer == expected_answer(id) => right += 1,
            Ok(answer) => {
                let expected = expected_answer(id);
                first_wrong.get_or_insert(format!("guest {id} answered {answer}, not {expected}"));
            }
            Err(error) => {
                first_wrong.get_or_insert(format!("guest {id}: {error:#}"));
            }
        }
    }
    let per_guest = before
        .zip(suspended)
        .map(|(before, suspended)| suspended.saturating_sub(before) as f64 / guests as f64);
    let kib =
        |kib: Option<u64>| kib.map_or("n/a".to_string(), |kib| format!("{} KiB", thousands(kib)));
    println!(
        "{}",
        row([
            guest.label(),
            &kib(before),
            &kib(suspended),
            &per_guest.map_or("n/a".to_string(), |kib| format!("{kib:.1} KiB")),
            &thousands(in_use as u64),
            &format!(
                "{} of {}",
                thousands(right as u64),
                thousands(guests as u64)
            ),
        ])
    );
    match first_wrong {
        None => Ok(()),
        Some(wrong) => wasmtime::bail!("{} wrong; the first: {wrong}", guests - right),
    }
}

async fn run_guest(shared: &Shared, host: Host, id: i32) -> Result<i32> {
    let mut store = Store::new(&shared.engine, host);
    let instance = shared
        .linker
        .instantiate_async(&mut store, &shared.module)
        .await?;
    let run = instance
        .get_func(&mut store, "run")
        .context("the guest exports no `run`")?;
    run.get_async()
        .get1::<i32, i32>(&store)?
        .call(&mut store, id)
        .await
}
