//! The demo: a plugin host. Thousands of guests at once, each a client with a TCP
//! connection of its own, send requests one after the other; every request runs the C
//! plugin `guests/src/plugin.c` in a fresh store and instance, and the plugin calls async
//! host functions that take and return JSON and bytes, and await a timer and the network.
//! The same plugin runs four ways, in interleaved rounds, each run a process of its own.
//!
//! ```text
//! cargo run --release -p examples --bin demo -- --guests 2000 --requests 10 --runs 5
//! ```
//!
//! Per request the plugin gets its request as JSON (`host.request`), sleeps 10 ms on a host
//! timer (`host.sleep_ms`), sends a 64-byte message made from the request over its
//! connection to an echo server on 127.0.0.1 (`host.echo`, bytes in, bytes out), and
//! answers with JSON holding the request's id and user and a hash of the echoed bytes
//! (`host.respond`). The host checks every answer ([`plugin::check`]).
//!
//! The modes:
//!
//! 1. async-wasm's [`AsyncEngine`](async_wasm::AsyncEngine) on wasmtime's pooling
//!    allocator, every guest a task on one current-thread tokio runtime;
//! 2. the same with [`Allocation::StackPool`](async_wasm::Allocation::StackPool) (fresh
//!    memories, pooled stacks);
//! 3. the same host functions on `Engine::default()`, where wasmtime maps a fresh stack for
//!    every store: what a user gets without this crate's stack handling;
//! 4. synchronous wasmtime (pooling allocator) with a `std::thread` per guest and blocking
//!    host functions, the data ABI written by hand.
//!
//! Each run of a mode is a process of its own (this program again, with `--mode`), so the
//! peak RSS it reports is that run's alone; the echo server runs in the parent process.
//! RSS leaves out what the kernel keeps per thread (on x86-64 Linux a 16 KiB stack each),
//! so the memory per guest includes how much the kernel's thread stacks grew.

mod async_host;
mod plugin;
mod report;
mod threads;
mod wire;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::ops::Range;
use std::process::ExitCode;

use examples::thousands;
use wasmtime::Result;
use wasmtime::error::Context as _;

use report::{Report, Spread};
use wire::EchoServer;

const USAGE: &str = "usage: demo [--guests N] [--requests R] [--runs K]
  N guests at once (default 2000), each sending R requests in turn (default 10);
  K rounds (default 5), each running every mode once; the tables show medians and ranges";
const DEFAULT_GUESTS: usize = 2_000;
const DEFAULT_REQUESTS: usize = 10;
const DEFAULT_RUNS: usize = 5;

fn main() -> Result<ExitCode> {
    match parse_args(std::env::args().skip(1))? {
        Command::Help => println!("{USAGE}"),
        Command::Compare { load, runs } => return compare(load, runs),
        Command::Child { mode, load, server } => {
            let report = match mode {
                Mode::Threads => threads::run(load, server)?,
                _ => async_host::run(mode, load, server)?,
            };
            println!("{}", report.encode());
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// The command line.

/// The ways of running the same plugin that the demo compares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Pooling,
    StackPool,
    DefaultStacks,
    Threads,
}

impl Mode {
    const ALL: [Mode; 4] = [
        Mode::Pooling,
        Mode::StackPool,
        Mode::DefaultStacks,
        Mode::Threads,
    ];

    /// Its name on the command line of a child.
    fn name(self) -> &'static str {
        match self {
            Mode::Pooling => "pooling",
            Mode::StackPool => "stack-pool",
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

    /// Its row in the tables.
    fn label(self) -> &'static str {
        match self {
            Mode::Pooling => "async-wasm, AsyncEngine Pooling",
            Mode::StackPool => "async-wasm, AsyncEngine StackPool",
            Mode::DefaultStacks => "wasmtime default async stacks",
            Mode::Threads => "sync wasmtime (pooling), thread per guest",
        }
    }

    fn is_async_wasm(self) -> bool {
        matches!(self, Mode::Pooling | Mode::StackPool)
    }
}

/// How much work a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Load {
    /// Guests at once.
    guests: usize,
    /// Requests each guest sends, one after the other.
    requests: usize,
}

impl Load {
    /// The ids of `guest`'s requests: every request of the run has its own.
    fn ids(self, guest: usize) -> Range<u32> {
        // `parse_args` checked that every id fits a u32.
        let first = (guest * self.requests) as u32;
        first..first + self.requests as u32
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Compare {
        load: Load,
        runs: usize,
    },
    /// Run one mode and print its [`Report`]: what the parent starts for each run.
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
            "--guests" => {
                load.guests = value()?
                    .parse::<usize>()
                    .context("--guests takes a number")?
            }
            "--requests" => {
                load.requests = value()?
                    .parse::<usize>()
                    .context("--requests takes a number")?;
            }
            "--runs" => runs = value()?.parse::<usize>().context("--runs takes a number")?,
            "--mode" => mode = Some(Mode::from_name(&value()?)?),
            "--echo" => {
                server = Some(
                    value()?
                        .parse::<SocketAddr>()
                        .context("--echo takes ip:port")?,
                )
            }
            "-h" | "--help" => return Ok(Command::Help),
            other => wasmtime::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    // Request ids are u32s.
    let total = load.guests.checked_mul(load.requests);
    if load.guests == 0 || load.requests == 0 || total.is_none_or(|n| n > u32::MAX as usize) {
        wasmtime::bail!("N and R must be at least 1, and N * R at most {}", u32::MAX);
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
// The parent: the echo server, one child per run, the tables.

/// Runs `runs` rounds, each running every mode once in a child process, against one echo
/// server; prints the tables, and fails when any request of any run failed or was answered
/// wrong.
fn compare(load: Load, runs: usize) -> Result<ExitCode> {
    check_mappings(load)?;
    print_conditions(load, runs);
    // The children's error messages go straight to standard error: what is printed
    // before them must be out first.
    std::io::stdout().flush()?;
    let server = EchoServer::start(load.guests * Mode::ALL.len() * runs, load.requests)?;
    // A line rewritten in place: only where a person watches it.
    let progress = std::io::stderr().is_terminal();
    // rounds[r][m]: round r's run of Mode::ALL[m].
    let mut rounds: Vec<Vec<Report>> = Vec::with_capacity(runs);
    for round in 0..runs {
        // Every mode in turn, so that whatever else the machine does meanwhile weighs on
        // every mode alike; each round starts with the next mode, so that none is always
        // first (after the pause while the previous run's process ends) or last.
        let mut reports = vec![Report::default(); Mode::ALL.len()];
        for i in 0..Mode::ALL.len() {
            let m = (round + i) % Mode::ALL.len();
            reports[m] = run_child(Mode::ALL[m], load, server.addr)?;
        }
        if progress {
            eprint!("\rround {} of {runs} done", round + 1);
        }
        rounds.push(reports);
    }
    if progress {
        eprintln!();
    }
    server.stop();
    let summaries: Vec<Summary> = (0..Mode::ALL.len())
        .map(|m| Summary::of(Mode::ALL[m], load, rounds.iter().map(|round| &round[m])))
        .collect();
    print_table(load, &summaries);
    print_ratios(&summaries, &rounds);
    println!(
        "load average (1, 5, 15 min) at the end: {} (the thread-per-guest runs add to it)",
        load_average()
    );
    let failed: usize = summaries.iter().map(|summary| summary.failed).sum();
    if failed > 0 {
        eprintln!("{failed} requests failed or were answered wrong (see above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Memory mappings a guest holds while it waits, measured from `/proc/<pid>/maps` at 4,000
/// guests: about 7 under the pooling allocator, 8 with fresh memories (its stacks, with
/// their guard pages, and its linear memory), 9.6 per thread of a thread per guest.
const MAPPINGS_PER_GUEST: usize = 9;

/// Refuses a `--guests` that would run out of the kernel's memory mappings
/// (`vm.max_map_count`, Linux): past it every new stack or memory fails, and so would most
/// requests.
fn check_mappings(load: Load) -> Result<()> {
    let Some(max) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
    else {
        return Ok(());
    };
    let needed = load.guests.saturating_mul(MAPPINGS_PER_GUEST);
    if needed > max {
        wasmtime::bail!(
            "{} guests at once need about {} memory mappings, more than this machine's \
             vm.max_map_count ({}) allows: run at most {} guests, or raise the limit \
             (sysctl -w vm.max_map_count={})",
            thousands(load.guests as u64),
            thousands(needed as u64),
            thousands(max as u64),
            thousands((max / MAPPINGS_PER_GUEST) as u64),
            needed.next_multiple_of(65_536),
        );
    }
    Ok(())
}

fn print_conditions(load: Load, runs: usize) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "A plugin host: {} guests at once, each sending {} requests in turn over its own TCP \
         connection;\nper request a fresh store and instance of a C plugin, which gets its \
         request as JSON, sleeps 10 ms\non a host timer, echoes 64 bytes through an echo server \
         on 127.0.0.1 and answers with JSON, checked.\n{runs} rounds, each running every mode \
         once, each run a process of its own; medians and (min-max).\nMachine: {cores} cores, \
         load average (1, 5, 15 min) at the start: {}\n",
        thousands(load.guests as u64),
        thousands(load.requests as u64),
        load_average(),
    );
}

fn load_average() -> String {
    examples::load_average().unwrap_or_else(|| "n/a".to_string())
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

/// A mode's figures over all its runs.
struct Summary {
    mode: Mode,
    wall_ms: Option<Spread>,
    requests_per_second: Option<Spread>,
    cpu_us_per_request: Option<Spread>,
    memory_per_guest_kib: Option<Spread>,
    threads: usize,
    /// Requests that failed or were answered wrong, in every run.
    failed: usize,
}

impl Summary {
    fn of<'a>(mode: Mode, load: Load, runs: impl Iterator<Item = &'a Report> + Clone) -> Summary {
        let spread =
            |figure: fn(&Report) -> Option<f64>| Spread::of(runs.clone().filter_map(figure));
        Summary {
            mode,
            wall_ms: spread(|run| Some(run.wall.as_secs_f64() * 1e3)),
            requests_per_second: spread(|run| Some(run.requests_per_second())),
            cpu_us_per_request: spread(Report::cpu_us_per_request),
            memory_per_guest_kib: Spread::of(
                runs.clone()
                    .filter_map(|run| run.memory_per_guest_kib(load.guests)),
            ),
            threads: runs.clone().map(|run| run.threads).max().unwrap_or(0),
            failed: runs.map(|run| run.failed).sum(),
        }
    }
}

fn print_table(load: Load, summaries: &[Summary]) {
    println!(
        "{:<42}{:>20}{:>23}{:>16}{:>18}{:>8}{:>8}",
        "mode", "wall ms", "requests/s", "CPU µs/request", "KiB/guest", "threads", "failed"
    );
    for summary in summaries {
        println!(
            "{:<42}{:>20}{:>23}{:>16}{:>18}{:>8}{:>8}",
            summary.mode.label(),
            spread(summary.wall_ms, |ms| thousands(ms.round() as u64)),
            spread(summary.requests_per_second, |n| thousands(n.round() as u64)),
            spread(summary.cpu_us_per_request, |us| format!("{us:.0}")),
            spread(summary.memory_per_guest_kib, |kib| format!("{kib:.1}")),
            thousands(summary.threads as u64),
            thousands(summary.failed as u64),
        );
    }
    println!(
        "KiB/guest = (peak RSS - RSS before the guests + the kernel stacks of the threads, which \
         RSS leaves out) / guests.\nCPU µs/request: the process's user + system time (10 ms \
         ticks) per request, the figure least moved by the machine's load."
    );
    if load.guests > threads::MAX_THREADS {
        println!(
            "The thread-per-guest mode starts at most {} threads, each then serving guests in \
             turn: fewer guests at once than the other modes.",
            thousands(threads::MAX_THREADS as u64)
        );
    }
    println!();
}

/// `median (min-max)`, each formatted by `show`; "n/a" when nothing was measured.
fn spread(spread: Option<Spread>, show: impl Fn(f64) -> String) -> String {
    match spread {
        None => "n/a".to_string(),
        Some(s) if s.min == s.max => show(s.median),
        Some(s) => format!("{} ({}-{})", show(s.median), show(s.min), show(s.max)),
    }
}

/// async-wasm's best mode (by median throughput) against each other mode. Throughput ratios
/// are taken round by round, each between two runs made moments apart, and summarized.
fn print_ratios(summaries: &[Summary], rounds: &[Vec<Report>]) {
    let median_rps = |s: &Summary| s.requests_per_second.map_or(0.0, |rps| rps.median);
    let Some(best) = (0..summaries.len())
        .filter(|&m| summaries[m].mode.is_async_wasm())
        .max_by(|&a, &b| median_rps(&summaries[a]).total_cmp(&median_rps(&summaries[b])))
    else {
        return;
    };
    println!("{} against", summaries[best].mode.label());
    for (m, other) in summaries.iter().enumerate().filter(|&(m, _)| m != best) {
        let throughput = Spread::of(
            rounds
                .iter()
                .map(|round| round[best].requests_per_second() / round[m].requests_per_second()),
        );
        let ratio_of_medians = |figure: fn(&Summary) -> Option<Spread>| {
            figure(&summaries[best])
                .zip(figure(other))
                .map_or("n/a".to_string(), |(ours, theirs)| {
                    format!("{:.2}x", ours.median / theirs.median)
                })
        };
        println!(
            "  {:<42} {} the throughput, {} the memory per guest, {} the CPU per request",
            other.mode.label(),
            spread(throughput, |ratio| format!("{ratio:.2}x")),
            ratio_of_medians(|s| s.memory_per_guest_kib),
            ratio_of_medians(|s| s.cpu_us_per_request),
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Command> {
        parse_args(args.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments_have_defaults_and_bad_ones_are_errors() {
        assert_eq!(
            parse("").unwrap(),
            Command::Compare {
                load: Load {
                    guests: DEFAULT_GUESTS,
                    requests: DEFAULT_REQUESTS
                },
                runs: DEFAULT_RUNS
            }
        );
        assert!(matches!(
            parse("--mode threads --guests 3 --echo 127.0.0.1:9").unwrap(),
            Command::Child {
                mode: Mode::Threads,
                load: Load { guests: 3, .. },
                ..
            }
        ));
        for bad in [
            "--guests",
            "--guests many",
            "--guests 0",
            "--runs 0",
            "--guests 100000 --requests 100000",
            "--mode fast --echo 127.0.0.1:9",
            "--mode threads",
            "--frobnicate",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn request_ids_are_distinct_across_guests() {
        let load = Load {
            guests: 3,
            requests: 4,
        };
        assert_eq!(load.ids(0), 0..4);
        assert_eq!(load.ids(2), 8..12);
    }

    #[test]
    fn too_many_guests_for_the_memory_mappings_is_an_error() {
        let load = |guests| Load {
            guests,
            requests: 1,
        };
        assert!(check_mappings(load(10)).is_ok());
        if std::path::Path::new("/proc/sys/vm/max_map_count").exists() {
            let err = check_mappings(load(100_000_000)).unwrap_err().to_string();
            assert!(err.contains("vm.max_map_count"), "{err}");
        }
    }

    /// Every mode end to end, small: the plugin, the host functions and the echo server
    /// agree, in both kinds of host.
    #[test]
    fn every_mode_answers_every_request_right() -> Result<()> {
        let load = Load {
            guests: 3,
            requests: 2,
        };
        let server = EchoServer::start(load.guests * Mode::ALL.len(), load.requests)?;
        for mode in Mode::ALL {
            let report = match mode {
                Mode::Threads => threads::run(load, server.addr)?,
                _ => async_host::run(mode, load, server.addr)?,
            };
            assert_eq!(
                (report.ok, report.failed),
                (load.guests * load.requests, 0),
                "{mode:?}"
            );
        }
        server.stop();
        Ok(())
    }
}
