//! Runs every conformance session (see `extism_compare::cases`) under Extism's host and
//! writes the results to `guests/extism/expected.json`; with `--check`, compares them with
//! that file instead and exits non-zero on a difference.

use extism::{Manifest, PluginBuilder, Wasm};
use extism_compare::cases::{Bytes, Expected, Outcome, PORT, Session, sessions};
use extism_compare::{host, http, logs, plugins};

fn run(session: &mut Session, port: u16) {
    let path = plugins::guests_dir().join(&session.plugin);
    let mut manifest =
        Manifest::new([Wasm::file(path)]).with_config(session.config.clone().into_iter());
    if let Some(hosts) = &session.allowed_hosts {
        manifest = manifest.with_allowed_hosts(hosts.clone().into_iter());
    }
    let mut plugin = PluginBuilder::new(manifest)
        .with_wasi(session.wasi)
        .with_functions(host::functions(None))
        .build()
        .unwrap_or_else(|e| panic!("{}: {e:?}", session.plugin));
    let port = port.to_string();
    let unport = |text: String| text.replace(&port, PORT);
    for call in &mut session.calls {
        let input = match &call.input {
            Bytes::Text(text) => text.replace(PORT, &port).into_bytes(),
            hex => hex.to_vec(),
        };
        logs::take();
        let result = plugin.call_get_error_code::<&[u8], &[u8]>(&call.export, &input[..]);
        let outcome = match result {
            Ok(output) => Outcome {
                output: Some(match Bytes::new(output) {
                    Bytes::Text(text) => Bytes::Text(unport(text)),
                    hex => hex,
                }),
                error: None,
                root_cause: None,
                code: 0,
                logs: Vec::new(),
            },
            Err((error, code)) => {
                let message = unport(error.to_string());
                let root = unport(error.root_cause().to_string());
                Outcome {
                    output: None,
                    root_cause: (root != message).then_some(root),
                    error: Some(message),
                    code,
                    logs: Vec::new(),
                }
            }
        };
        call.result = Some(Outcome {
            logs: logs::take(),
            ..outcome
        });
    }
}

fn main() {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: golden [--check]   (unknown argument {other:?})");
            std::process::exit(2);
        }
    };
    logs::install();
    let port = http::serve().expect("a port on 127.0.0.1");
    let mut all = Vec::new();
    for plugin in plugins::ALL {
        for mut session in sessions(plugin) {
            run(&mut session, port);
            all.push(session);
        }
    }
    let expected = Expected {
        recorded_with: format!(
            "extism {} (extism-compare golden)",
            extism_compare::extism_version()
        ),
        about: "Each session runs its calls in order on one plugin instance built from its \
                manifest (config, allowed hosts; WASI when `wasi`), with the host functions \
                of extism-compare/src/host.rs. A call's `output` means return code 0; \
                otherwise `error` and `code`. `{port}` stands for the port of a loopback \
                HTTP server (extism-compare/src/http.rs)."
            .to_string(),
        sessions: all,
    };
    let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
    let path = plugins::guests_dir().join("expected.json");
    if check {
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            eprintln!(
                "{} differs from what Extism's host gives now",
                path.display()
            );
            std::process::exit(1);
        }
        println!("{} matches Extism's host", path.display());
    } else {
        std::fs::write(&path, text).unwrap();
        println!("wrote {}", path.display());
    }
}
