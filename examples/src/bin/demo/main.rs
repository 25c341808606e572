//! The demo: thousands of wasm guests at once, each awaiting real I/O from its host, run
//! three ways, with the time and the memory each way takes.
//!
//! ```text
//! cargo run --release -p examples --bin demo -- --guests 2000 --requests 10
//! ```
//!
//! Every guest is a client of a TCP echo server on 127.0.0.1, with a connection of its own,
//! and sends its requests one after the other. Each request gets a fresh `Store` and
//! instance of [`GUEST`] (the guest's connection is lent to the store and taken back), whose
//! `handle` export sleeps on a host timer, has the host echo a message over the connection,
//! and returns a hash of the reply, which is checked against the expected one. The same
//! guest runs in three modes:
//!
//! 1. async-wasm: all guests concurrent on one current-thread tokio runtime, their stacks
//!    lent by a [`StackPool`];
//! 2. the same code on an engine without the pool, where wasmtime maps a fresh stack for
//!    every store;
//! 3. synchronous wasmtime with a `std::thread` per guest and host functions that block.
//!
//! Each run of a mode is a process of its own (this program again, with `--mode`), so the
//! peak RSS it reports is that run's alone; the echo server runs in the parent process.
//! RSS leaves out what the kernel keeps per thread (on x86-64 Linux a 16 KiB stack each),
//! so the table also shows how much the kernel's thread stacks grew while the guests ran.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_wasm::prelude::*;
use examples::{rss, thousands};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use wasmtime::error::Context as _;
use wasmtime::{Caller, Config, Engine, Extern, Linker, Memory, Module, Result, Store};

const USAGE: &str = "usage: demo [--guests N] [--requests R] [--runs K]
  N guests at once (default 2000), each sending R requests in turn (default 10);
  every mode runs K times (default 3), and the table shows its median run";
const DEFAULT_GUESTS: usize = 2_000;
const DEFAULT_REQUESTS: usize = 10;
const DEFAULT_RUNS: usize = 3;
/// Mode 3 starts at most this many threads; past it, each thread serves several guests
/// in turn, so that a large `--guests` cannot exhaust the machine's threads.
const MAX_THREADS: usize = 4_000;
/// The stack size of the pool in mode 1.
const POOL_STACK_SIZE: usize = 1 << 20;
/// Bounds every connect, read and write, so that a lost peer fails a guest, not the demo.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest message the echo protocol carries.
const MAX_MESSAGE: usize = 1024;

/// The guest. `handle(id)` writes a message made from `id` at offset 0 (`id` itself, then
/// bytes `id * 7 + i`), sleeps 10 ms, has the host echo the message to offset 1024, and
/// returns the FNV-1a hash of what came back, or -1 when its length is wrong.
/// [`expected_answer`] computes the same in Rust.
const GUEST: &str = r#"(module
    (import "env" "sleep_ms" (func $sleep_ms (param i32)))
    (import "env" "echo" (func $echo (param i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "handle") (param $id i32) (result i64)
        (local $i i32) (local $hash i64)
        (i32.store (i32.const 0) (local.get $id))
        (local.set $i (i32.const 4))
        (loop $fill
            (i32.store8 (local.get $i)
                (i32.add (i32.mul (local.get $id) (i32.const 7)) (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $fill (i32.lt_u (local.get $i) (i32.const 64))))
        (call $sleep_ms (i32.const 10))
        (if (i32.ne (call $echo (i32.const 0) (i32.const 64) (i32.const 1024)) (i32.const 64))
            (then (return (i64.const -1))))
        (local.set $hash (i64.const 0xcbf29ce484222325))
        (local.set $i (i32.const 0))
        (loop $mix
            (local.set $hash
                (i64.mul
                    (i64.xor (local.get $hash) (i64.load8_u offset=1024 (local.get $i)))
                    (i64.const 0x100000001b3)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $mix (i32.lt_u (local.get $i) (i32.const 64))))
        (local.get $hash)))"#;

/// The message length `GUEST` uses.
const MESSAGE_LEN: usize = 64;

/// What the guest must answer for `id`: the hash of the message it sent, when the echo came
/// back whole.
fn expected_answer(id: i32) -> i64 {
    let mut message = [0u8; MESSAGE_LEN];
    message[..4].copy_from_slice(&id.to_le_bytes());
    for (i, byte) in message.iter_mut().enumerate().skip(4) {
        // The guest stores the low byte of an i32 sum; `as u8` keeps the same byte.
        *byte = id.wrapping_mul(7).wrapping_add(i as i32) as u8;
    }
    let hash = message
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    hash as i64
}

fn main() -> Result<ExitCode> {
    match parse_args(std::env::args().skip(1))? {
        Command::Help => println!("{USAGE}"),
        Command::Compare { load, runs } => return compare(load, runs),
        Command::Child { mode, load, server } => {
            let report = run_mode(mode, load, server)?;
            println!("{}", report.encode());
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// The command line.

/// The ways of running the same guests that the demo compares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Pooled,
    DefaultStacks,
    Threads,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Pooled, Mode::DefaultStacks, Mode::Threads];

    /// Its name on the command line of a child.
    fn name(self) -> &'static str {
        match self {
            Mode::Pooled => "pooled",
            Mode::DefaultStacks => "default-stacks",
            Mode::Threads => "threads",
        }
    }

    fn from_name(name: &str) -> Result<Mode> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.name() == name)
            .with_context(|| format!("no mode named {name:?}"))
    }

    /// Its row in the table.
    fn label(self) -> &'static str {
        match self {
            Mode::Pooled => "async-wasm, StackPool (1 MiB stacks)",
            Mode::DefaultStacks => "wasmtime default async stacks",
            Mode::Threads => "sync wasmtime, std::thread per guest",
        }
    }
}

/// How much work a run is.
#[derive(Clone, Copy)]
struct Load {
    /// Guests at once.
    guests: usize,
    /// Requests each guest sends, one after the other.
    requests: usize,
}

impl Load {
    /// The ids of `guest`'s requests: every request of the run has its own.
    fn ids(self, guest: usize) -> Range<i32> {
        // `parse_args` checked that every id fits an i32.
        let first = (guest * self.requests) as i32;
        first..first + self.requests as i32
    }
}

enum Command {
    Help,
    Compare {
        load: Load,
        runs: usize,
    },
    /// Run one mode and print its [`Report`]: what the parent starts for each mode.
    Child {
        mode: Mode,
        load: Load,
        server: SocketAddr,
    },
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command> {
    let mut load = Load {
        guests: DEFAULT_GUESTS,
        requests: DEFAULT_REQUESTS,
    };
    let (mut runs, mut mode, mut server) = (DEFAULT_RUNS, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--guests" => load.guests = value()?.parse::<usize>().context("--guests: a number")?,
            "--requests" => {
                load.requests = value()?.parse::<usize>().context("--requests: a number")?;
            }
            "--runs" => runs = value()?.parse::<usize>().context("--runs: a number")?,
            "--mode" => mode = Some(Mode::from_name(&value()?)?),
            "--echo" => server = Some(value()?.parse::<SocketAddr>().context("--echo: ip:port")?),
            "-h" | "--help" => return Ok(Command::Help),
            other => wasmtime::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    // Request ids are wasm i32s.
    let total = load.guests.checked_mul(load.requests);
    if load.guests == 0 || load.requests == 0 || total.is_none_or(|n| n > i32::MAX as usize) {
        wasmtime::bail!("N and R must be at least 1, and N * R at most {}", i32::MAX);
    }
    if runs == 0 {
        wasmtime::bail!("K must be at least 1");
    }
    Ok(match (mode, server) {
        (None, _) => Command::Compare { load, runs },
        (Some(mode), Some(server)) => Command::Child { mode, load, server },
        (Some(_), None) => wasmtime::bail!("--mode needs --echo"),
    })
}

// ---------------------------------------------------------------------------------------
// The parent: the echo server, one child per mode, the table.

/// Runs every mode `runs` times, each run in a child process, against one echo server;
/// prints the table, and fails when any request of any run failed or was answered wrong.
fn compare(load: Load, runs: usize) -> Result<ExitCode> {
    print_intro(load, runs);
    let connections = load.guests * Mode::ALL.len() * runs;
    let server = EchoServer::start(connections, load.requests)?;
    let mut reports: Vec<(Mode, Vec<Report>)> = Mode::ALL
        .into_iter()
        .map(|mode| (mode, Vec::new()))
        .collect();
    // Round by round rather than mode by mode, so that whatever else the machine is doing
    // meanwhile weighs on every mode alike.
    for _ in 0..runs {
        for (mode, reports) in &mut reports {
            reports.push(run_child(*mode, load, server.addr)?);
        }
    }
    server.stop();
    let rows: Vec<(Mode, Report)> = reports
        .into_iter()
        .map(|(mode, reports)| (mode, Report::median(reports)))
        .collect();
    print_table(load, &rows);
    print_ratios(load, &rows);
    let failed: usize = rows.iter().map(|(_, report)| report.failed).sum();
    if failed > 0 {
        eprintln!("{failed} requests failed or were answered wrong (see above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_intro(load: Load, runs: usize) {
    println!(
        "{} guests at once, each sending {} requests in turn over its own TCP connection to an \
         echo server on 127.0.0.1;\nper request a fresh Store + instance of a WAT guest (one \
         memory page) sleeps 10 ms on a host timer, echoes 64 bytes\nand returns a hash of the \
         reply, which is checked. {}, each run in a process of its own.\n",
        thousands(load.guests as u64),
        thousands(load.requests as u64),
        match runs {
            1 => "One run per mode".to_string(),
            _ => format!("Median of {runs} runs per mode"),
        },
    );
}

fn run_child(mode: Mode, load: Load, server: SocketAddr) -> Result<Report> {
    let args = [
        "--mode",
        mode.name(),
        "--guests",
        &load.guests.to_string(),
        "--requests",
        &load.requests.to_string(),
        "--echo",
        &server.to_string(),
    ]
    .map(String::from);
    let output = examples::run_self_captured(&args)?;
    if !output.status.success() {
        wasmtime::bail!("the {} process failed: {}", mode.name(), output.status);
    }
    Report::decode(std::str::from_utf8(&output.stdout)?)
}

fn print_table(load: Load, rows: &[(Mode, Report)]) {
    println!(
        "{:<38}{:>9}{:>12}{:>9}{:>11}{:>15}{:>14}{:>8}",
        "mode",
        "wall",
        "requests/s",
        "threads",
        "peak RSS",
        "kernel stacks",
        "memory/guest",
        "failed"
    );
    let mib = |kib: Option<u64>| or_na(kib.map(|kib| format!("{:.1} MiB", kib as f64 / 1024.0)));
    for (mode, report) in rows {
        let per_guest = report
            .memory_per_guest_kib(load)
            .map(|kib| format!("{kib:.1} KiB"));
        println!(
            "{:<38}{:>6.0} ms{:>12}{:>9}{:>11}{:>15}{:>14}{:>8}",
            mode.label(),
            report.wall.as_secs_f64() * 1e3,
            thousands(report.requests_per_second() as u64),
            thousands(report.threads as u64),
            mib(report.peak_rss_kib),
            mib(report.kernel_stacks_kib),
            or_na(per_guest),
            thousands(report.failed as u64),
        );
    }
    println!(
        "memory/guest = (peak RSS - RSS before the guests + the kernel stacks of the threads, \
         which RSS leaves out) / guests;\nfailed counts the requests of every run.\n"
    );
}

/// One line: how async-wasm compares with each other mode.
fn print_ratios(load: Load, rows: &[(Mode, Report)]) {
    let report = |mode| rows.iter().find(|(m, _)| *m == mode).map(|(_, r)| r);
    let Some(pooled) = report(Mode::Pooled) else {
        return;
    };
    let versus = |mode: Mode, name: &str| {
        let other = report(mode)?;
        let speed = pooled.requests_per_second() / other.requests_per_second();
        let memory = match (
            pooled.memory_per_guest_kib(load),
            other.memory_per_guest_kib(load),
        ) {
            (Some(ours), Some(theirs)) => format!("{:.2}x", ours / theirs),
            _ => "n/a".to_string(),
        };
        Some(format!(
            "vs {name}: {speed:.2}x the throughput, {memory} the memory per guest"
        ))
    };
    let parts: Vec<String> = [
        versus(Mode::Threads, "thread per guest"),
        versus(Mode::DefaultStacks, "default async stacks"),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!("async-wasm {}", parts.join("; "));
}

fn or_na(value: Option<String>) -> String {
    value.unwrap_or_else(|| "n/a".to_string())
}

// ---------------------------------------------------------------------------------------
// What a child reports.

/// One mode's run, as a child prints it and the parent reads it back.
#[derive(Debug, Default)]
struct Report {
    wall: Duration,
    ok: usize,
    failed: usize,
    /// Threads that ran guests.
    threads: usize,
    /// RSS just before the first guest: the engine, the compiled guest, the runtime.
    rss_before_kib: Option<u64>,
    /// The highest RSS of the whole run (`VmHWM`).
    peak_rss_kib: Option<u64>,
    /// What the kernel's thread stacks grew by while the guests ran (machine-wide, so
    /// other programs starting threads meanwhile are counted too).
    kernel_stacks_kib: Option<u64>,
}

impl Report {
    /// The run with the median wall time, with the failures of every run.
    fn median(mut runs: Vec<Report>) -> Report {
        let failed = runs.iter().map(|run| run.failed).sum();
        runs.sort_by_key(|run| run.wall);
        let mut median = runs.swap_remove(runs.len() / 2);
        median.failed = failed;
        median
    }

    /// Requests answered right, per second.
    fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }

    /// What one more guest at once costs: the RSS the guests added at the peak, and the
    /// kernel stacks of their threads, shared out.
    fn memory_per_guest_kib(&self, load: Load) -> Option<f64> {
        let rss = self.peak_rss_kib?.saturating_sub(self.rss_before_kib?);
        Some((rss + self.kernel_stacks_kib?) as f64 / load.guests as f64)
    }

    /// One line of `key=value` pairs; `n/a` for what this platform cannot tell.
    fn encode(&self) -> String {
        let kib = |v: Option<u64>| v.map_or("n/a".to_string(), |v| v.to_string());
        format!(
            "wall_us={} ok={} failed={} threads={} rss_before_kib={} peak_rss_kib={} \
             kernel_stacks_kib={}",
            self.wall.as_micros(),
            self.ok,
            self.failed,
            self.threads,
            kib(self.rss_before_kib),
            kib(self.peak_rss_kib),
            kib(self.kernel_stacks_kib),
        )
    }

    fn decode(line: &str) -> Result<Report> {
        let mut report = Report::default();
        for pair in line.split_whitespace() {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("a child printed {line:?}"))?;
            let kib = || (value != "n/a").then(|| value.parse()).transpose();
            match key {
                "wall_us" => report.wall = Duration::from_micros(value.parse()?),
                "ok" => report.ok = value.parse()?,
                "failed" => report.failed = value.parse()?,
                "threads" => report.threads = value.parse()?,
                "rss_before_kib" => report.rss_before_kib = kib()?,
                "peak_rss_kib" => report.peak_rss_kib = kib()?,
                "kernel_stacks_kib" => report.kernel_stacks_kib = kib()?,
                _ => wasmtime::bail!("a child printed an unknown key {key:?}"),
            }
        }
        Ok(report)
    }
}

/// Requests answered right and not, with the first thing that went wrong.
#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Tally {
    /// Checks one answer.
    fn record(&mut self, id: i32, answer: i64) {
        let expected = expected_answer(id);
        if answer == expected {
            self.ok += 1;
        } else {
            self.fail(
                1,
                format!("request {id}: answered {answer:#x}, expected {expected:#x}"),
            );
        }
    }

    /// Ends the session of the guest whose requests are `ids`, on that guest's own tally:
    /// when the session failed, the requests it got no answer for count as failed.
    fn end_session(&mut self, ids: Range<i32>, session: Result<()>) {
        if let Err(error) = session {
            let unanswered = ids.len() - (self.ok + self.failed);
            self.fail(unanswered, format!("requests {ids:?}: {error:#}"));
        }
    }

    fn fail(&mut self, requests: usize, error: String) {
        self.failed += requests;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        if let Some(error) = other.first_error {
            self.first_error.get_or_insert(error);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A child: one mode.

fn run_mode(mode: Mode, load: Load, server: SocketAddr) -> Result<Report> {
    match mode {
        Mode::Pooled => {
            let pool = StackPool::new(POOL_STACK_SIZE);
            let mut config = Config::new();
            pool.configure(&mut config)?;
            run_async(mode, &Engine::new(&config)?, load, server)
        }
        // Everything as in `Pooled` but the stacks: wasmtime's default creator maps a
        // stack (2 MiB by default) for each store and unmaps it when the store is dropped.
        Mode::DefaultStacks => run_async(mode, &Engine::new(&Config::new())?, load, server),
        Mode::Threads => run_threads(mode, &Engine::new(&Config::new())?, load, server),
    }
}

/// What every request of a mode shares. The store data `T` is the guest's connection.
struct Setup<T: 'static> {
    engine: Engine,
    linker: Linker<T>,
    module: Module,
    load: Load,
    server: SocketAddr,
}

/// A child's memory readings around its guests.
struct Readings {
    rss_before_kib: Option<u64>,
    kernel_stacks_before_kib: Option<u64>,
    kernel_stacks_started_kib: Option<u64>,
}

impl Readings {
    /// Reads what the process holds before its first guest.
    fn before() -> Readings {
        Readings {
            rss_before_kib: rss::current_kib(),
            kernel_stacks_before_kib: rss::kernel_stacks_kib(),
            kernel_stacks_started_kib: None,
        }
    }

    /// Reads the kernel's thread stacks once every guest has started, when all its threads
    /// are alive.
    fn all_started(&mut self) {
        self.kernel_stacks_started_kib = rss::kernel_stacks_kib();
    }
}

/// Ends a child's run: the peak RSS is read now, after the last guest; the first failure,
/// if any, goes to standard error, which the parent passes on.
fn finish(mode: Mode, start: Instant, tally: Tally, threads: usize, readings: Readings) -> Report {
    let wall = start.elapsed();
    if let Some(error) = &tally.first_error {
        eprintln!("{}: first failure: {error}", mode.name());
    }
    let kernel_stacks_kib = readings
        .kernel_stacks_started_kib
        .zip(readings.kernel_stacks_before_kib)
        .map(|(started, before)| started.saturating_sub(before));
    Report {
        wall,
        ok: tally.ok,
        failed: tally.failed,
        threads,
        rss_before_kib: readings.rss_before_kib,
        peak_rss_kib: rss::peak_kib(),
        kernel_stacks_kib,
    }
}

// --- Modes 1 and 2: every guest a task on one current-thread runtime.

type AsyncConnection = tokio::net::TcpStream;

fn run_async(mode: Mode, engine: &Engine, load: Load, server: SocketAddr) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Shared behind an `Arc`: a cloned `Linker` would be a deep copy per guest.
    let setup = Arc::new(Setup {
        engine: engine.clone(),
        linker: async_linker(engine)?,
        module: Module::new(engine, GUEST)?,
        load,
        server,
    });
    let mut readings = Readings::before();
    let start = Instant::now();
    let tally = runtime.block_on(async {
        let mut guests = JoinSet::new();
        for guest in 0..load.guests {
            guests.spawn(guest_async(Arc::clone(&setup), guest));
        }
        // No thread was started; read anyway, to measure every mode the same way.
        readings.all_started();
        let mut tally = Tally::default();
        while let Some(done) = guests.join_next().await {
            tally.merge(done?);
        }
        Result::<_>::Ok(tally)
    })?;
    Ok(finish(mode, start, tally, 1, readings))
}

/// One guest: a connection, its requests in turn, a goodbye.
async fn guest_async(setup: Arc<Setup<AsyncConnection>>, guest: usize) -> Tally {
    let ids = setup.load.ids(guest);
    let mut tally = Tally::default();
    let session = async {
        let mut connection = with_timeout(AsyncConnection::connect(setup.server)).await?;
        for id in ids.clone() {
            let (back, answer) = request_async(&setup, connection, id).await?;
            tally.record(id, answer);
            connection = back;
        }
        with_timeout(goodbye_async(connection)).await
    };
    let session = session.await;
    tally.end_session(ids, session);
    tally
}

/// One request, the async-wasm way: the connection is the store's data while the guest
/// runs, and comes back with the answer.
async fn request_async(
    setup: &Setup<AsyncConnection>,
    connection: AsyncConnection,
    id: i32,
) -> Result<(AsyncConnection, i64)> {
    let mut store = Store::new(&setup.engine, connection);
    let instance = setup
        .linker
        .instantiate_async(&mut store, &setup.module)
        .await?;
    let handle = instance
        .get_func(&mut store, "handle")
        .context("the guest exports no `handle`")?;
    let answer = handle
        .get_async()
        .get1::<i32, i64>(&store)?
        .call(&mut store, id)
        .await?;
    Ok((store.into_data(), answer))
}

fn async_linker(engine: &Engine) -> Result<Linker<AsyncConnection>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap_async1("env", "sleep_ms", sleep_ms)?;
    linker.func_wrap_async3("env", "echo", echo)?;
    Ok(linker)
}

#[async_host]
async fn sleep_ms(_caller: Caller<'_, AsyncConnection>, ms: i32) -> Result<()> {
    tokio::time::sleep(Duration::from_millis(u64::try_from(ms)?)).await;
    Ok(())
}

/// Echoes the guest's `len` bytes at `src` through the echo server into `dst`; returns how
/// many bytes came back.
#[async_host]
async fn echo(
    mut caller: Caller<'_, AsyncConnection>,
    src: i32,
    len: i32,
    dst: i32,
) -> Result<i32> {
    let memory = guest_memory(&mut caller)?;
    let message = read_guest(&memory, &caller, src, len)?;
    let reply = with_timeout(exchange_async(caller.data_mut(), &message)).await?;
    write_guest(&memory, &mut caller, dst, &reply)
}

async fn exchange_async(connection: &mut AsyncConnection, message: &[u8]) -> io::Result<Vec<u8>> {
    connection.write_all(&frame(message)?).await?;
    let len = checked_len(connection.read_u16().await?)?;
    let mut reply = vec![0; len];
    connection.read_exact(&mut reply).await?;
    Ok(reply)
}

/// Says goodbye (an empty message) and waits for the server to close first, so that the
/// server keeps the TIME_WAIT and this side's port is free again at once: thousands of
/// guests would otherwise hold thousands of ports for a minute.
async fn goodbye_async(mut connection: AsyncConnection) -> io::Result<()> {
    connection.write_all(&frame(&[])?).await?;
    expect_eof(connection.read(&mut [0]).await?)
}

async fn with_timeout<T>(io: impl Future<Output = io::Result<T>>) -> Result<T> {
    let done = tokio::time::timeout(IO_TIMEOUT, io)
        .await
        .context("the echo server did not answer in time")?;
    Ok(done?)
}

// --- Mode 3: synchronous wasmtime, a thread per guest, host functions that block.

type BlockingConnection = std::net::TcpStream;

fn run_threads(mode: Mode, engine: &Engine, load: Load, server: SocketAddr) -> Result<Report> {
    let setup = Setup {
        engine: engine.clone(),
        linker: blocking_linker(engine)?,
        module: Module::new(engine, GUEST)?,
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
    let mut readings = Readings::before();
    let start = Instant::now();
    let tally = std::thread::scope(|scope| {
        let held = start_gate.write().unwrap_or_else(PoisonError::into_inner);
        let mut threads = Vec::new();
        for _ in 0..thread_count {
            // Default thread settings (a 2 MiB stack), as a user would start them.
            threads.push(std::thread::Builder::new().spawn_scoped(scope, || {
                drop(start_gate.read().unwrap_or_else(PoisonError::into_inner));
                let mut tally = Tally::default();
                while let Some(guest) = take_guest() {
                    tally.merge(guest_blocking(&setup, guest));
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
    Ok(finish(mode, start, tally, thread_count, readings))
}

/// One guest, as in [`guest_async`].
fn guest_blocking(setup: &Setup<BlockingConnection>, guest: usize) -> Tally {
    let ids = setup.load.ids(guest);
    let mut tally = Tally::default();
    let mut session = || {
        let mut connection = connect_blocking(setup.server)?;
        for id in ids.clone() {
            let (back, answer) = request_blocking(setup, connection, id)?;
            tally.record(id, answer);
            connection = back;
        }
        Ok(goodbye_blocking(connection)?)
    };
    let session = session();
    tally.end_session(ids, session);
    tally
}

/// One request, as in [`request_async`], with synchronous calls.
fn request_blocking(
    setup: &Setup<BlockingConnection>,
    connection: BlockingConnection,
    id: i32,
) -> Result<(BlockingConnection, i64)> {
    let mut store = Store::new(&setup.engine, connection);
    let instance = setup.linker.instantiate(&mut store, &setup.module)?;
    let handle = instance.get_typed_func::<i32, i64>(&mut store, "handle")?;
    let answer = handle.call(&mut store, id)?;
    Ok((store.into_data(), answer))
}

/// The same imports as [`async_linker`], blocking their thread instead of awaiting.
fn blocking_linker(engine: &Engine) -> Result<Linker<BlockingConnection>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        "env",
        "sleep_ms",
        |_: Caller<'_, BlockingConnection>, ms: i32| -> Result<()> {
            std::thread::sleep(Duration::from_millis(u64::try_from(ms)?));
            Ok(())
        },
    )?;
    linker.func_wrap(
        "env",
        "echo",
        |mut caller: Caller<'_, BlockingConnection>, src: i32, len: i32, dst: i32| -> Result<i32> {
            let memory = guest_memory(&mut caller)?;
            let message = read_guest(&memory, &caller, src, len)?;
            let reply = exchange_blocking(caller.data_mut(), &message)?;
            write_guest(&memory, &mut caller, dst, &reply)
        },
    )?;
    Ok(linker)
}

fn connect_blocking(server: SocketAddr) -> io::Result<BlockingConnection> {
    let connection = std::net::TcpStream::connect_timeout(&server, IO_TIMEOUT)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(connection)
}

fn exchange_blocking(connection: &mut BlockingConnection, message: &[u8]) -> io::Result<Vec<u8>> {
    connection.write_all(&frame(message)?)?;
    let mut len = [0; 2];
    connection.read_exact(&mut len)?;
    let mut reply = vec![0; checked_len(u16::from_be_bytes(len))?];
    connection.read_exact(&mut reply)?;
    Ok(reply)
}

/// As [`goodbye_async`].
fn goodbye_blocking(mut connection: BlockingConnection) -> io::Result<()> {
    connection.write_all(&frame(&[])?)?;
    expect_eof(connection.read(&mut [0])?)
}

// ---------------------------------------------------------------------------------------
// The guest's memory and the echo protocol, shared by both kinds of host functions.

fn guest_memory<T>(caller: &mut Caller<'_, T>) -> Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .context("the guest exports no memory")
}

/// The guest's `len` bytes at `ptr`; wasm pointers and lengths are unsigned.
fn read_guest<T>(memory: &Memory, caller: &Caller<'_, T>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let len = len as u32 as usize;
    if len > MAX_MESSAGE {
        wasmtime::bail!("the guest's message is {len} bytes, more than {MAX_MESSAGE}");
    }
    let mut bytes = vec![0; len];
    memory.read(caller, ptr as u32 as usize, &mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` at the guest's `ptr` and returns their length, which is what the guest's
/// import returns.
fn write_guest<T>(
    memory: &Memory,
    caller: &mut Caller<'_, T>,
    ptr: i32,
    bytes: &[u8],
) -> Result<i32> {
    memory.write(caller, ptr as u32 as usize, bytes)?;
    Ok(i32::try_from(bytes.len())?)
}

/// A message on the wire, either way: its length (big-endian u16), then its bytes. An empty
/// message from a client means goodbye.
fn frame(message: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(message.len()).map_err(|_| too_long())?;
    checked_len(len)?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Ok(framed)
}

fn checked_len(len: u16) -> io::Result<usize> {
    let len = usize::from(len);
    if len > MAX_MESSAGE {
        return Err(too_long());
    }
    Ok(len)
}

fn too_long() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "message too long")
}

/// Checks that a read found the end of the stream.
fn expect_eof(read: usize) -> io::Result<()> {
    if read != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the echo server sent more than it was asked for",
        ));
    }
    Ok(())
}

/// A TCP echo server on 127.0.0.1, on a runtime of its own in the parent process. Every
/// loop in it is bounded: it accepts at most a given number of connections, serves each
/// at most a given number of messages, and stops early when told to.
struct EchoServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    fn start(max_connections: usize, messages_per_connection: usize) -> Result<EchoServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
            // Thousands of guests connect at the same moment: a short backlog would drop
            // their SYNs, and each drop costs a guest a one-second retransmit.
            socket.listen(4096)
        })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(accept(
            listener,
            max_connections,
            messages_per_connection,
            stopped,
        ));
        Ok(EchoServer {
            addr,
            stop,
            runtime,
        })
    }

    fn stop(self) {
        // The accept loop may already have ended on its own; then no one hears this.
        let _ = self.stop.send(());
        self.runtime.shutdown_timeout(IO_TIMEOUT);
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    messages_per_connection: usize,
    mut stop: oneshot::Receiver<()>,
) {
    for _ in 0..max_connections {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => return,
        };
        // A failed accept or exchange fails one guest, which reports it.
        if let Ok((connection, _)) = accepted {
            tokio::spawn(serve(connection, messages_per_connection));
        }
    }
}

/// Echoes messages until the client says goodbye, then closes the connection first.
async fn serve(mut connection: tokio::net::TcpStream, max_messages: usize) -> io::Result<()> {
    for _ in 0..=max_messages {
        let header = tokio::time::timeout(IO_TIMEOUT, connection.read_u16()).await??;
        let len = checked_len(header)?;
        if len == 0 {
            break;
        }
        let mut message = vec![0; 2 + len];
        message[..2].copy_from_slice(&header.to_be_bytes());
        connection.read_exact(&mut message[2..]).await?;
        connection.write_all(&message).await?;
    }
    Ok(())
}
