//! Hostile guests against the host's memory: each attack in a process of its own, with the
//! host's peak resident memory during the attack, the typed error it ended with, and a
//! fresh request served afterwards.
//!
//! ```text
//! cargo run --release -p examples --bin hostile
//! ```
//!
//! For each attack the program runs itself again (`--attack NAME`): the child sets up its
//! engine and guest, reads its resident set size (`VmRSS`), runs the attack, reads its peak
//! (`VmHWM`), checks the error, serves one ordinary request on a fresh store, and prints
//! the growth. The parent prints the table and fails when an attack's growth passes the
//! bound the table states, or when a child fails. Linux only (`/proc/self/status`).

use std::process::ExitCode;
use std::time::Duration;

use async_wasm::data::{DataError, DataErrorKind, Json};
use async_wasm::extism::{CompiledPlugin, ExtismError, Manifest};
use async_wasm::prelude::*;
use async_wasm::{Allocation, DeadlineExceeded, MIN_HOST_STACK};
use examples::{rss, run_self_captured, thousands};
use wasmtime::{Instance, InstancePre, Linker, Module, Store};

/// An attack: its name (`--attack NAME`), what it does, and the bound on the host's peak
/// memory growth while it runs, in MiB.
struct Attack {
    name: &'static str,
    what: &'static str,
    bound_mib: u64,
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "gib-parameters",
        what: "a guest grown to 4 GiB passes (0, 0xFFFF0000) for 7 String parameters",
        bound_mib: 64,
    },
    Attack {
        name: "reentrant-pooling",
        what: "an allocator that calls the data import it allocates for (pooling allocator)",
        bound_mib: 64,
    },
    Attack {
        name: "reentrant-stackpool",
        what: "the same on Allocation::StackPool without max_stores",
        bound_mib: 64,
    },
    Attack {
        name: "deep-json",
        what: "127-deep JSON into Json<Value> after a full wasm stack, at MIN_HOST_STACK; then 1 MiB of '['",
        bound_mib: 64,
    },
    Attack {
        name: "spin",
        what: "a guest that loops forever, under a 100 ms timeout",
        bound_mib: 64,
    },
    Attack {
        name: "extism-alloc-loop",
        what: "an Extism plugin allocating 64 KiB blocks forever (memory.max_pages 1024)",
        bound_mib: 96,
    },
    Attack {
        name: "extism-tiny-blocks",
        what: "an Extism plugin allocating 1-byte blocks forever (memory.max_pages 1024)",
        bound_mib: 96,
    },
    Attack {
        name: "extism-pdk-hostile",
        what: "the Rust PDK plugin's alloc_huge, load_bad, output_bad and var_huge",
        bound_mib: 64,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, name] if flag == "--attack" => child(name),
        [] => parent(),
        _ => {
            eprintln!("usage: hostile [--attack NAME]");
            ExitCode::from(2)
        }
    }
}

fn parent() -> ExitCode {
    if rss::peak_kib().is_none() {
        eprintln!("hostile: needs /proc/self/status (Linux)");
        return ExitCode::FAILURE;
    }
    println!(
        "{:<22} {:>14} {:>10}  ended with",
        "attack", "peak growth", "bound"
    );
    let mut failed = false;
    for attack in ATTACKS {
        let output = match run_self_captured(&["--attack".into(), attack.name.into()]) {
            Ok(output) => output,
            Err(err) => {
                eprintln!("hostile: cannot run {}: {err}", attack.name);
                return ExitCode::FAILURE;
            }
        };
        let text = String::from_utf8_lossy(&output.stdout);
        let Some((growth_kib, ended)) = text.trim().split_once(' ') else {
            println!("{:<22} the child failed ({})", attack.name, output.status);
            failed = true;
            continue;
        };
        let growth_kib: u64 = growth_kib.parse().unwrap_or(u64::MAX);
        let over = growth_kib > attack.bound_mib << 10 || !output.status.success();
        failed |= over;
        println!(
            "{:<22} {:>10} KiB {:>6} MiB  {}{}",
            attack.name,
            thousands(growth_kib),
            attack.bound_mib,
            ended,
            if over { "  <- OVER" } else { "" }
        );
    }
    println!();
    for attack in ATTACKS {
        println!("{:<22} {}", attack.name, attack.what);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one attack; prints `<peak growth in KiB> <how it ended>`.
fn child(name: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(name)) {
        Ok((growth_kib, ended)) => {
            println!("{growth_kib} {ended}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hostile: {name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A measured attack: `prepare` builds everything, then `attack` runs between the two
/// readings and returns how it ended; `after` serves an ordinary request.
async fn run(name: &str) -> wasmtime::Result<(u64, String)> {
    let mut measure = Measure::start();
    let ended = match name {
        "gib-parameters" => gib_parameters(&mut measure).await?,
        "reentrant-pooling" => reentrant(&mut measure, Allocation::Pooling).await?,
        "reentrant-stackpool" => reentrant(&mut measure, Allocation::StackPool).await?,
        "deep-json" => deep_json(&mut measure).await?,
        "spin" => spin(&mut measure).await?,
        "extism-alloc-loop" => extism_alloc_loop(&mut measure, 65536).await?,
        "extism-tiny-blocks" => extism_alloc_loop(&mut measure, 1).await?,
        "extism-pdk-hostile" => extism_pdk_hostile(&mut measure).await?,
        other => wasmtime::bail!("no attack named {other}"),
    };
    Ok((measure.growth_kib(), ended))
}

/// The resident memory before the attack, and the peak since.
struct Measure {
    before_kib: u64,
}

impl Measure {
    fn start() -> Measure {
        Measure { before_kib: 0 }
    }

    /// Called once everything but the attack is set up.
    fn attack_starts(&mut self) {
        self.before_kib = rss::current_kib().unwrap_or(0);
    }

    fn growth_kib(&self) -> u64 {
        rss::peak_kib().unwrap_or(0).saturating_sub(self.before_kib)
    }
}

fn data_kind(err: &wasmtime::Error) -> wasmtime::Result<&DataErrorKind> {
    match err.downcast_ref::<DataError>() {
        Some(data) => Ok(data.kind()),
        None => wasmtime::bail!("not a DataError: {err:#}"),
    }
}

async fn call0<T: Send, R: wasmtime::WasmResults + Sync + 'static>(
    store: &mut Store<T>,
    instance: Instance,
    name: &str,
) -> wasmtime::Result<R> {
    let f = instance
        .get_func(&mut *store, name)
        .ok_or_else(|| wasmtime::format_err!("no export {name}"))?;
    f.get_async().get0::<R>(&*store)?.call(&mut *store).await
}

/// The attack as each guest here makes it: its export `attack` on an instance of `pre`
/// (`measure` starting just before the call), then the next request, `fine`, on a fresh
/// store. Returns the attack's error and the next request's answer.
async fn attack_then_next<R: wasmtime::WasmResults + Sync + 'static>(
    measure: &mut Measure,
    engine: &AsyncEngine,
    pre: &InstancePre<()>,
    must_fail: &str,
) -> wasmtime::Result<(wasmtime::Error, R)> {
    let mut store = engine.store(());
    let instance = pre.instantiate_async(&mut store).await?;
    measure.attack_starts();
    let Err(err) = call0::<_, R>(&mut store, instance, "attack").await else {
        panic!("{must_fail}");
    };
    let mut fresh = engine.store(());
    let instance = pre.instantiate_async(&mut fresh).await?;
    let next = call0::<_, R>(&mut fresh, instance, "fine").await?;
    Ok((err, next))
}

#[async_host]
async fn seven(a: String, b: String, c: String, d: String, e: String, f: String, g: String) -> i32 {
    [a, b, c, d, e, f, g].iter().map(String::len).sum::<usize>() as i32
}

async fn gib_parameters(measure: &mut Measure) -> wasmtime::Result<String> {
    let engine = AsyncEngine::builder().max_stores(4).build()?;
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_host("env", "seven", seven)?;
    let module = Module::new(
        engine.engine(),
        r#"(module
        (import "env" "seven" (func $seven (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 16))
        (func (export "attack") (result i32)
            (drop (memory.grow (i32.const 65535)))
            (call $seven
                (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
                (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
                (i32.const 0) (i32.const 0xFFFF0000) (i32.const 0) (i32.const 0xFFFF0000)
                (i32.const 0) (i32.const 0xFFFF0000)))
        (func (export "fine") (result i32)
            (call $seven
                (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 3)
                (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 6)
                (i32.const 0) (i32.const 7))))"#,
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let (err, next) =
        attack_then_next::<i32>(measure, &engine, &pre, "the attack must fail").await?;
    let kind = data_kind(&err)?;
    let DataErrorKind::TooLarge { .. } = kind else {
        wasmtime::bail!("unexpected: {err:#}");
    };
    assert_eq!(next, 28);
    Ok(format!("DataErrorKind::TooLarge; next request ok ({kind})"))
}

#[async_host]
async fn echo(text: String) -> String {
    text
}

async fn reentrant(measure: &mut Measure, allocation: Allocation) -> wasmtime::Result<String> {
    let engine = AsyncEngine::builder().allocation(allocation).build()?;
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_host("env", "echo", echo)?;
    let module = Module::new(
        engine.engine(),
        r#"(module
        (import "env" "echo" (func $echo (param i32 i32) (result i64)))
        (memory (export "memory") 1)
        (data (i32.const 0) "ping")
        (global $hostile (mut i32) (i32.const 1))
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (if (global.get $hostile) (then (drop (call $echo (i32.const 0) (i32.const 4)))))
            (i32.const 1024))
        (func (export "attack") (result i64) (call $echo (i32.const 0) (i32.const 4)))
        (func (export "fine") (result i64)
            (global.set $hostile (i32.const 0))
            (call $echo (i32.const 0) (i32.const 4))))"#,
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let (err, answer) =
        attack_then_next::<i64>(measure, &engine, &pre, "the attack must fail").await?;
    let DataErrorKind::Reentrant { .. } = data_kind(&err)? else {
        wasmtime::bail!("unexpected: {err:#}");
    };
    assert_eq!(answer >> 32, 4, "a 4-byte echo");
    Ok("DataErrorKind::Reentrant; next request ok".into())
}

#[async_host]
async fn depth(json: Json<serde_json::Value>) -> i32 {
    fn depth(value: &serde_json::Value) -> i32 {
        match value {
            serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    depth(&json)
}

async fn deep_json(measure: &mut Measure) -> wasmtime::Result<String> {
    // wasm may use all but MIN_HOST_STACK of each stack.
    let stack = 1 << 20;
    let mut config = wasmtime::Config::new();
    config.max_wasm_stack(stack - MIN_HOST_STACK);
    let engine = AsyncEngine::builder()
        .config(config)
        .stack_size(stack)
        .max_data_len(2 << 20)
        .build()?;
    let mut linker = Linker::new(engine.engine());
    linker.func_wrap_host("env", "depth", depth)?;
    let module = Module::new(
        engine.engine(),
        r#"(module
        (import "env" "depth" (func $depth (param i32 i32) (result i32)))
        (memory (export "memory") 32)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
        ;; recurses until wasm's stack is full, then calls the host from the deepest frame
        ;; that still fits, as near the host headroom as wasm can get
        (func $down (param i32 i32 i32) (result i32)
            (if (result i32) (i32.eqz (local.get 2))
                (then (call $depth (local.get 0) (local.get 1)))
                (else (call $down (local.get 0) (local.get 1)
                    (i32.sub (local.get 2) (i32.const 1))))))
        (func (export "run") (param i32 i32 i32) (result i32)
            (call $down (local.get 0) (local.get 1) (local.get 2))))"#,
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
    // `frames` deep in wasm, then the JSON to the host, on a fresh store.
    let attempt = async |frames: i32| -> wasmtime::Result<i32> {
        let mut store = engine.store(());
        let instance = pre.instantiate_async(&mut store).await?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| wasmtime::format_err!("no memory"))?;
        memory.write(&mut store, 0, deep.as_bytes())?;
        let run = instance
            .get_func(&mut store, "run")
            .ok_or_else(|| wasmtime::format_err!("no run"))?
            .get_async()
            .get3::<i32, i32, i32, i32>(&store)?;
        run.call(&mut store, 0, deep.len() as i32, frames).await
    };
    // The deepest recursion wasm's stack takes: found by halving (past it, a stack
    // overflow trap, which is wasm's limit, not the host's).
    let (mut fits, mut overflows) = (0, 1 << 20);
    while overflows - fits > 1 {
        let frames = (fits + overflows) / 2;
        match attempt(frames).await {
            Ok(_) => fits = frames,
            Err(err)
                if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::StackOverflow) =>
            {
                overflows = frames
            }
            Err(err) => return Err(err),
        }
    }
    measure.attack_starts();
    assert_eq!(attempt(fits).await?, 127);
    // Past serde_json's recursion limit: a typed error, not a stack overflow.
    let mut hostile = engine.store(());
    let instance = pre.instantiate_async(&mut hostile).await?;
    let memory = instance
        .get_memory(&mut hostile, "memory")
        .ok_or_else(|| wasmtime::format_err!("no memory"))?;
    let brackets = vec![b'['; 1 << 20];
    memory.write(&mut hostile, 0, &brackets)?;
    let run = instance
        .get_func(&mut hostile, "run")
        .ok_or_else(|| wasmtime::format_err!("no run"))?
        .get_async()
        .get3::<i32, i32, i32, i32>(&hostile)?;
    let err = run
        .call(&mut hostile, 0, 1 << 20, fits)
        .await
        .expect_err("1 MiB of '[' is not JSON");
    let DataErrorKind::Json { .. } = data_kind(&err)? else {
        wasmtime::bail!("unexpected: {err:#}");
    };
    Ok(format!(
        "127 levels decoded {fits} wasm frames deep; 1 MiB of '[': DataErrorKind::Json"
    ))
}

async fn spin(measure: &mut Measure) -> wasmtime::Result<String> {
    let engine = AsyncEngine::builder()
        .timeout(Duration::from_millis(100))
        .build()?;
    let linker = Linker::<()>::new(engine.engine());
    let module = Module::new(
        engine.engine(),
        r#"(module
        (func (export "attack") (result i32) (loop $l (br $l)) (i32.const 0))
        (func (export "fine") (result i32) (i32.const 7)))"#,
    )?;
    let pre = linker.instantiate_pre(&module)?;
    let (err, next) =
        attack_then_next::<i32>(measure, &engine, &pre, "a spinning guest must be stopped").await?;
    if err.downcast_ref::<DeadlineExceeded>().is_none() {
        wasmtime::bail!("unexpected: {err:#}");
    }
    assert_eq!(next, 7);
    Ok("DeadlineExceeded after 100 ms; next request ok".into())
}

/// A plugin allocating blocks of `block` bytes until it is refused.
async fn extism_alloc_loop(measure: &mut Measure, block: u64) -> wasmtime::Result<String> {
    let engine = AsyncEngine::builder().max_stores(4).build()?;
    let wat = r#"(module
        (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
        (import "extism:host/env" "store_u8" (func $store (param i64 i32)))
        (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
        (func (export "attack") (result i32) (local $block i64)
            (loop $more
                (local.set $block (call $alloc (i64.const BLOCK)))
                ;; touch the last byte, so the host's pages are real
                (call $store (i64.add (local.get $block) (i64.const LAST)) (i32.const 1))
                (br $more))
            (i32.const 0))
        (func (export "fine") (result i32)
            (call $output_set (call $alloc (i64.const 2)) (i64.const 2))
            (i32.const 0)))"#
        .replace("BLOCK", &block.to_string())
        .replace("LAST", &(block - 1).to_string());
    let plugin = CompiledPlugin::builder(Manifest::new([wat.into_bytes()])).build(&engine)?;
    measure.attack_starts();
    let err = plugin
        .call::<_, Vec<u8>>("attack", "")
        .await
        .expect_err("the loop must end");
    let Some(ExtismError::Limit { .. }) = err.downcast_ref::<ExtismError>() else {
        wasmtime::bail!("unexpected: {err:#}");
    };
    let out: Vec<u8> = plugin.call("fine", "").await?;
    assert_eq!(out.len(), 2);
    Ok("ExtismError::Limit (memory); next request ok".into())
}

async fn extism_pdk_hostile(measure: &mut Measure) -> wasmtime::Result<String> {
    let engine = AsyncEngine::builder().max_stores(4).build()?;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guests/extism/rust_plugin.wasm"
    );
    let wasm = std::fs::read(path)?;
    let plugin = CompiledPlugin::builder(Manifest::new([wasm]))
        .host_fn("host_echo", |text: String| async move { text })
        .host_fn("lookup", |_: Json<serde_json::Value>| async move {
            Json(serde_json::json!({ "value": "v" }))
        })
        .host_fn("kv_set", |_: String, _: String| async move {})
        .host_fn("kv_get", |_: String| async move { String::new() })
        .host_fn("add", |a: i64, b: i64| async move { a.wrapping_add(b) })
        .host_fn("host_fail", |text: String| async move {
            Err::<String, _>(std::io::Error::other(format!("host_fail refused {text:?}")))
        })
        .build(&engine)?;
    measure.attack_starts();
    let mut ended = Vec::new();
    for export in ["alloc_huge", "load_bad", "output_bad", "var_huge"] {
        let err = plugin
            .call::<_, Vec<u8>>(export, "")
            .await
            .expect_err("a hostile export must fail");
        let Some(extism) = err.downcast_ref::<ExtismError>() else {
            wasmtime::bail!("{export}: unexpected: {err:#}");
        };
        let kind = match extism {
            ExtismError::Limit { .. } => "Limit",
            ExtismError::Kernel { .. } => "Kernel",
            _ => wasmtime::bail!("{export}: unexpected: {err:#}"),
        };
        ended.push(format!("{export}: {kind}"));
    }
    let out: String = plugin.call("echo", "still here").await?;
    assert_eq!(out, "still here");
    Ok(format!("{}; next request ok", ended.join(", ")))
}
