//! Conformance with Extism's own host: every case of `guests/extism/expected.json` (the
//! answers of `extism` 1.30.0, recorded by `extism-compare`) runs here, with the same
//! plugins, inputs, config, allowed hosts, host functions and loopback HTTP server, and
//! must give the same output, or the same error and code, and the same logs.
//!
//! Where async-wasm answers differently on purpose, [`DIFFERENCES`] says so, with the
//! reason: each entry checks both Extism's recorded answer and ours, and must be used.
//! Any other difference fails the test.
//!
//! How answers compare: a plugin's own error (`error_set`, a non-zero return code) is its
//! message and code under both hosts; an error that ends the call from the host's side (a
//! host function's error, a refused HTTP request, a var over the limit) is recorded from
//! Extism as wasmtime's trap text over a root cause, code -1, and compared here by that
//! root cause (the backtrace's offsets are wasmtime's, not the ABI's).

use std::collections::{BTreeMap, BTreeSet};

use async_wasm::extism::{ExtismError, Limit, Manifest, PluginBuilder, Violation};
use serde::Deserialize;

use super::extism_fixtures::{LogCapture, engine, http_server, plugin_path, with_host_fns};

#[derive(Deserialize)]
struct Expected {
    recorded_with: String,
    sessions: Vec<Session>,
}

#[derive(Deserialize)]
struct Session {
    name: String,
    plugin: String,
    wasi: bool,
    config: BTreeMap<String, String>,
    allowed_hosts: Option<Vec<String>>,
    calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    export: String,
    input: Bytes,
    #[serde(default)]
    output: Option<Bytes>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    root_cause: Option<String>,
    code: i32,
    #[serde(default)]
    logs: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Bytes {
    Text(String),
    Hex(String),
}

impl Bytes {
    fn to_vec(&self, port: &str) -> Vec<u8> {
        match self {
            Bytes::Text(text) => text.replace("{port}", port).into_bytes(),
            Bytes::Hex(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect(),
        }
    }
}

/// A call's answer, as both hosts' can be told apart.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Return code 0: the output.
    Output(Vec<u8>),
    /// The plugin's own error: its message and return code.
    PluginError { message: String, code: i32 },
    /// The host ended the call: the error's root cause.
    Ended { root_cause: String },
}

impl Call {
    fn expected(&self, port: &str) -> Outcome {
        let text = |s: &str| s.replace("{port}", port);
        match (&self.output, &self.root_cause, &self.error) {
            (Some(output), _, _) => Outcome::Output(output.to_vec(port)),
            (None, Some(root_cause), _) => Outcome::Ended {
                root_cause: text(root_cause),
            },
            (None, None, error) => Outcome::PluginError {
                message: text(error.as_deref().unwrap_or_default()),
                code: self.code,
            },
        }
    }
}

fn ours(result: &wasmtime::Result<Vec<u8>>) -> Outcome {
    match result {
        Ok(output) => Outcome::Output(output.clone()),
        Err(err) => match err.downcast_ref::<ExtismError>() {
            Some(ExtismError::Plugin { message, code }) => Outcome::PluginError {
                message: message.clone().unwrap_or_default(),
                code: *code,
            },
            _ => Outcome::Ended {
                root_cause: err.root_cause().to_string(),
            },
        },
    }
}

/// One deliberate difference from Extism's host.
struct Difference {
    export: &'static str,
    /// What Extism answers (checked against the recording).
    extism: fn(&Outcome) -> bool,
    /// What async-wasm answers instead.
    ours: fn(&wasmtime::Error) -> bool,
    reason: &'static str,
}

fn extism_error(err: &wasmtime::Error) -> Option<&ExtismError> {
    err.downcast_ref::<ExtismError>()
}

/// Every way async-wasm answers a case differently from Extism's host, and why.
const DIFFERENCES: [Difference; 4] = [
    Difference {
        export: "alloc_huge",
        extism: |o| matches!(o, Outcome::Output(out) if out.starts_with(b"alloc(2^63) = ")),
        ours: |e| {
            matches!(
                extism_error(e),
                Some(ExtismError::Limit {
                    limit: Limit::Memory,
                    ..
                })
            )
        },
        reason: "Extism's alloc(2^63) returns a handle that is no usable block; here the call \
                 fails with ExtismError::Limit (Memory): memory is bounded by max_pages",
    },
    Difference {
        export: "load_bad",
        extism: |o| *o == Outcome::Output(b"load_u64(0x7fff0000) = 0".to_vec()),
        ours: |e| {
            matches!(
                extism_error(e),
                Some(ExtismError::Kernel {
                    violation: Violation::OutsideBlock { .. },
                    ..
                })
            )
        },
        reason: "Extism reads 0 from a handle never allocated; here the call fails with \
                 ExtismError::Kernel (OutsideBlock): a plugin reading outside its blocks has a bug",
    },
    Difference {
        export: "output_bad",
        extism: |o| matches!(o, Outcome::Output(out) if out.len() == 64),
        ours: |e| {
            matches!(
                extism_error(e),
                Some(ExtismError::Kernel {
                    violation: Violation::RangeNotInBlock { .. },
                    ..
                })
            )
        },
        reason: "Extism outputs 64 bytes from past a 16-byte block (whatever lies there); here \
                 the call fails with ExtismError::Kernel (RangeNotInBlock)",
    },
    Difference {
        export: "var_huge",
        extism: |o| {
            *o == Outcome::Ended {
                root_cause: "Variable store is full".into(),
            }
        },
        ours: |e| {
            matches!(
                extism_error(e),
                Some(ExtismError::Limit {
                    limit: Limit::Vars,
                    ..
                })
            )
        },
        reason: "both hosts end the call; the wording differs: Extism says \"Variable store is \
                 full\", here ExtismError::Limit (Vars) with the bytes asked for and the bound",
    },
];

#[test]
fn every_recorded_case_answers_as_under_extism() {
    let path = plugin_path("expected.json");
    let expected: Expected = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(expected.recorded_with.starts_with("extism 1.30.0"));
    let port = http_server().to_string();
    let engine = engine();
    let capture = LogCapture::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut mismatches = Vec::new();
    let mut used = BTreeSet::new();
    let mut cases = 0;
    tracing::subscriber::with_default(capture.clone(), || {
        for session in &expected.sessions {
            let mut manifest =
                Manifest::new([plugin_path(&session.plugin)]).with_config(session.config.clone());
            manifest.allowed_hosts = session.allowed_hosts.clone();
            let plugin = with_host_fns(PluginBuilder::new(manifest))
                .wasi(session.wasi)
                .build(&engine)
                .unwrap();
            let mut instance = rt.block_on(plugin.instantiate()).unwrap();
            for (i, call) in session.calls.iter().enumerate() {
                cases += 1;
                let at = format!("{} / {} #{i} {}", session.plugin, session.name, call.export);
                let input = call.input.to_vec(&port);
                let result = rt.block_on(instance.call::<_, Vec<u8>>(&call.export, input));
                let logs: Vec<(String, String)> = capture
                    .lines()
                    .into_iter()
                    .map(|(level, message, _)| (level.as_str().to_lowercase(), message))
                    .collect();
                if logs != call.logs {
                    mismatches.push(format!("{at}: logs {logs:?}, Extism {:?}", call.logs));
                }
                let (extism, here) = (call.expected(&port), ours(&result));
                if extism == here {
                    continue;
                }
                let known = DIFFERENCES.iter().position(|d| {
                    d.export == call.export
                        && (d.extism)(&extism)
                        && result.as_ref().is_err_and(|e| (d.ours)(e))
                });
                match known {
                    Some(index) => {
                        used.insert(index);
                    }
                    None => mismatches.push(format!("{at}: here {here:?}, Extism {extism:?}")),
                }
            }
        }
    });

    for (index, difference) in DIFFERENCES.iter().enumerate() {
        if !used.contains(&index) {
            mismatches.push(format!(
                "the listed difference `{}` did not occur: {}",
                difference.export, difference.reason
            ));
        }
    }
    assert!(cases > 150, "{cases} cases");
    assert!(
        mismatches.is_empty(),
        "{} of {cases} cases differ from Extism's answers:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
