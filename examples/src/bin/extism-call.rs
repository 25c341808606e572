//! `extism-call`: runs one export of an Extism plugin on async-wasm's host, from the shell,
//! as Extism's `extism call` does.
//!
//! ```text
//! cargo run --release -p examples --bin extism-call -- PLUGIN.wasm EXPORT \
//!     [--input TEXT | --input-file F] [--config KEY=VALUE]... [--wasi] \
//!     [--allow-host HOST]... [--timeout-ms N]
//! ```
//!
//! The input is `--input`'s text, `--input-file`'s bytes, or else standard input. The
//! output's bytes go to standard output as they are. With `--wasi` the plugin's WASI stdout
//! and stderr are this program's. Host functions the plugin imports (outside the kernel and
//! WASI) are linked, and fail the call if it reaches them: this runner provides none.
//!
//! Exit status:
//! - 0: the output was printed;
//! - 1: the plugin returned an error (`error_set`, a non-zero return code): stderr says
//!   `plugin error (code N): MESSAGE`;
//! - 2: the call failed otherwise (a trap, a kernel rule broken, a limit, the timeout, an
//!   HTTP request refused or failed, a host function that is not provided): stderr has the
//!   error and its causes;
//! - 3: the plugin could not be loaded (no such file, not wasm, an import not satisfied);
//! - 64: the command line is wrong (usage on stderr), or the input file cannot be read.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use async_wasm::AsyncEngine;
use async_wasm::extism::{CompiledPlugin, ExtismError, Manifest, PluginBuilder, WasiOutput};

const USAGE: &str = "usage: extism-call PLUGIN.wasm EXPORT [--input TEXT | --input-file F] \
[--config KEY=VALUE]... [--wasi] [--allow-host HOST]... [--timeout-ms N]";

/// The command line, parsed.
#[derive(Debug, Default)]
struct Args {
    plugin: PathBuf,
    export: String,
    input: Option<Input>,
    config: Vec<(String, String)>,
    wasi: bool,
    allowed_hosts: Vec<String>,
    timeout_ms: Option<u64>,
}

#[derive(Debug)]
enum Input {
    Text(String),
    File(PathBuf),
}

/// Parses the arguments by hand: two positionals and a handful of flags (`--flag value` or
/// `--flag=value`).
fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--input" | "--input-file" if parsed.input.is_some() => {
                return Err("give one of --input and --input-file, once".into());
            }
            "--input" => parsed.input = Some(Input::Text(value("--input")?)),
            "--input-file" => parsed.input = Some(Input::File(value("--input-file")?.into())),
            "--config" => {
                let pair = value("--config")?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--config takes KEY=VALUE, not {pair:?}"))?;
                parsed.config.push((key.to_owned(), val.to_owned()));
            }
            "--wasi" if inline.is_none() => parsed.wasi = true,
            "--allow-host" => parsed.allowed_hosts.push(value("--allow-host")?),
            "--timeout-ms" => {
                let n = value("--timeout-ms")?;
                let n =
                    n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--timeout-ms takes a positive number, not {n:?}")
                    })?;
                parsed.timeout_ms = Some(n);
            }
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') && other != "-" => {
                return Err(format!("unknown option {other}"));
            }
            _ => positional.push(arg),
        }
    }
    let [plugin, export]: [String; 2] = positional
        .try_into()
        .map_err(|_| "give the plugin's file and the export to call".to_owned())?;
    parsed.plugin = plugin.into();
    parsed.export = export;
    Ok(parsed)
}

/// Why the call did not print an output, and the exit status that says so.
enum Failure {
    Load(wasmtime::Error),
    Call(wasmtime::Error),
    Input(std::io::Error),
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("extism-call: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if problem.is_empty() { 0 } else { 64 });
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&output)
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Call(err)) => match err.downcast_ref::<ExtismError>() {
            Some(ExtismError::Plugin { message, code }) => {
                let message = message.as_deref().unwrap_or("(no message)");
                eprintln!("plugin error (code {code}): {message}");
                ExitCode::from(1)
            }
            _ => {
                eprintln!("extism-call: the call failed: {err:?}");
                ExitCode::from(2)
            }
        },
        Err(Failure::Load(err)) => {
            eprintln!(
                "extism-call: cannot load {}: {err:?}",
                args.plugin.display()
            );
            ExitCode::from(3)
        }
        Err(Failure::Input(err)) => {
            eprintln!("extism-call: cannot read the input: {err}");
            ExitCode::from(64)
        }
    }
}

async fn run(args: &Args) -> Result<Vec<u8>, Failure> {
    let input = match &args.input {
        Some(Input::Text(text)) => text.clone().into_bytes(),
        Some(Input::File(path)) => std::fs::read(path).map_err(Failure::Input)?,
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(Failure::Input)?;
            bytes
        }
    };
    let plugin = load(args).map_err(Failure::Load)?;
    plugin
        .call::<_, Vec<u8>>(&args.export, input)
        .await
        .map_err(Failure::Call)
}

fn load(args: &Args) -> wasmtime::Result<CompiledPlugin> {
    let mut engine = AsyncEngine::builder().max_stores(1);
    let mut manifest = Manifest::new([args.plugin.clone()]).with_config(args.config.clone());
    for host in &args.allowed_hosts {
        manifest = manifest.with_allowed_host(host);
    }
    if let Some(ms) = args.timeout_ms {
        // The engine's ticks check the manifest's timeout (and give HTTP its remaining time).
        engine = engine.timeout(Duration::from_millis(ms));
        manifest = manifest.with_timeout(Duration::from_millis(ms));
    }
    let engine = engine.build()?;
    let bytes = std::fs::read(&args.plugin)?;
    let mut builder = missing_host_fns(&bytes, PluginBuilder::new(manifest))?;
    if args.wasi {
        builder = builder.wasi_output(WasiOutput::Inherit, WasiOutput::Inherit);
    }
    builder.build(&engine)
}

/// A host function this runner does not provide: the call fails if the plugin reaches it.
#[derive(Debug)]
struct NotProvided(String);

impl std::fmt::Display for NotProvided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host function `{}` is not provided by extism-call",
            self.0
        )
    }
}

impl std::error::Error for NotProvided {}

/// Links every host function the plugin imports outside the kernel and WASI as one that
/// fails, so that the exports that do not call them run. Each parameter and result is a
/// handle, as Extism's ABI has it.
fn missing_host_fns(bytes: &[u8], mut builder: PluginBuilder) -> wasmtime::Result<PluginBuilder> {
    for (namespace, name, params, result) in func_imports(bytes)? {
        if namespace == "extism:host/env" || namespace.starts_with("wasi") {
            continue;
        }
        let fail = {
            let name = name.clone();
            move || NotProvided(name.clone())
        };
        macro_rules! failing {
            ($result:ty $(, $param:ident)*) => {
                builder.host_fn_in_namespace(&namespace, &name, move |$($param: Vec<u8>),*| {
                    $(drop($param);)*
                    let err = fail();
                    async move { Err::<$result, _>(err) }
                })
            };
        }
        builder = match (params, result) {
            (0, false) => failing!(()),
            (0, true) => failing!(Vec<u8>),
            (1, false) => failing!((), a),
            (1, true) => failing!(Vec<u8>, a),
            (2, false) => failing!((), a, b),
            (2, true) => failing!(Vec<u8>, a, b),
            (3, false) => failing!((), a, b, c),
            (3, true) => failing!(Vec<u8>, a, b, c),
            (4, false) => failing!((), a, b, c, d),
            (4, true) => failing!(Vec<u8>, a, b, c, d),
            // The build reports the import as not satisfied.
            _ => builder,
        };
    }
    Ok(builder)
}

/// The module's function imports: namespace, name, parameter count, whether it returns a
/// value. Read with wasmparser rather than compiled, so the plugin is compiled once (by
/// the build). The text format has none listed (its imports must all be provided).
fn func_imports(bytes: &[u8]) -> wasmtime::Result<Vec<(String, String, usize, bool)>> {
    use wasmparser::{CompositeInnerType, Payload, TypeRef};
    let mut types = Vec::new();
    let mut imports = Vec::new();
    if !bytes.starts_with(b"\0asm") {
        return Ok(imports);
    }
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                Some((f.params().len(), f.results().len() == 1))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    if let TypeRef::Func(index) = import.ty
                        && let Some(Some((params, result))) = types.get(index as usize)
                    {
                        imports.push((
                            import.module.to_owned(),
                            import.name.to_owned(),
                            *params,
                            *result,
                        ));
                    }
                }
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(imports)
}
