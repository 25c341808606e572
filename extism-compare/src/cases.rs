//! The conformance cases: sessions of calls on one long-lived plugin each, with the config
//! and allowed hosts of its manifest. Every host runs the same sessions and must give the
//! same outputs and errors; `golden` records Extism's.

use serde::{Deserialize, Serialize};

use crate::plugins::PluginFile;

/// Stands for the loopback HTTP server's port in inputs and recorded results.
pub const PORT: &str = "{port}";

/// Bytes as text when they are UTF-8, as hex otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bytes {
    Text(String),
    Hex(String),
}

impl Bytes {
    pub fn new(bytes: &[u8]) -> Bytes {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text.to_string()),
            Err(_) => Bytes::Hex(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Bytes::Text(text) => text.as_bytes().to_vec(),
            Bytes::Hex(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect(),
        }
    }
}

/// One call of a session, and what the host answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Call {
    pub export: String,
    pub input: Bytes,
    #[serde(flatten)]
    pub result: Option<Outcome>,
}

/// What a call gave: output bytes (return code 0), or an error message and return code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output: Option<Bytes>,
    /// The error's message as the host reports it (for a plugin's `error_set`, that text).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The error's root cause, where it differs from `error` (a host function's error
    /// under a trap's context, say).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root_cause: Option<String>,
    pub code: i32,
    /// `(level, text)` of each line the plugin logged during the call.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub logs: Vec<(String, String)>,
}

/// Calls in order on one plugin instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub name: String,
    pub plugin: String,
    pub wasi: bool,
    pub config: std::collections::BTreeMap<String, String>,
    /// `None`: no host allowed (Extism's default).
    pub allowed_hosts: Option<Vec<String>>,
    pub calls: Vec<Call>,
}

/// The recorded file: `guests/extism/expected.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Expected {
    pub recorded_with: String,
    pub about: String,
    pub sessions: Vec<Session>,
}

fn call(export: &str, input: impl AsRef<[u8]>) -> Call {
    Call {
        export: export.to_string(),
        input: Bytes::new(input.as_ref()),
        result: None,
    }
}

fn session(name: &str, plugin: PluginFile, config: &[(&str, &str)], calls: Vec<Call>) -> Session {
    Session {
        name: name.to_string(),
        plugin: plugin.file.to_string(),
        wasi: plugin.wasi,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        allowed_hosts: Some(vec!["127.0.0.1".to_string()]),
        calls,
    }
}

/// Every session for `plugin`, not yet run.
pub fn sessions(plugin: PluginFile) -> Vec<Session> {
    let mut basics = vec![
        call("echo", ""),
        call("echo", "hello, extism"),
        call("echo", [0xff, 0x00, 0x01, 0x80]),
        call("echo", "x".repeat(100)),
        call("count_vowels", "Hello, World!"),
        call("count_vowels", "Hello, World!"),
        call("count_vowels", ""),
        call("greet", r#"{"name":"Ada"}"#),
        call("greet", r#"{"name":"Zoë \"Z\" \\ \n"}"#),
        call("greet", "not json"),
        call("config", "color"),
        call("config", "missing"),
        call("vars", ""),
        call("vars", ""),
        call("vars", ""),
        call("log", ""),
        call("fail", ""),
        call("echo", "after fail"),
        call("host_echo", "ping"),
        call("host_echo", ""),
        call("host_echo", "naïve ☕"),
        call("lookup", "a"),
        call("lookup", "ключ"),
        call("kv", "a=1"),
        call("kv", "b="),
        call("kv", "a=2"),
        call("kv", "novalue"),
        call("add", r#"{"a":1,"b":2}"#),
        call("add", r#"{"a":-5,"b":2}"#),
        call("add", r#"{"a":9223372036854775807,"b":1}"#),
        call("host_fail", "x"),
        call("echo", "after host_fail"),
        call("no_output", ""),
        call("http_get", format!("http://127.0.0.1:{PORT}/hello")),
        call("http_get", format!("http://127.0.0.1:{PORT}/missing")),
        call("http_get", format!("http://localhost:{PORT}/")),
    ];
    if plugin.wasi {
        basics.push(call("wasi_print", ""));
    }
    let mut sessions = vec![
        session("basics", plugin, &[("color", "blue")], basics),
        session(
            "vowels from config",
            plugin,
            &[("vowels", "aeiouy")],
            vec![call("count_vowels", "rhythm and blues")],
        ),
        Session {
            allowed_hosts: None,
            ..session(
                "no allowed hosts",
                plugin,
                &[],
                vec![call("http_get", format!("http://127.0.0.1:{PORT}/hello"))],
            )
        },
    ];
    for hostile in ["alloc_huge", "load_bad", "output_bad", "var_huge"] {
        sessions.push(session(
            hostile,
            plugin,
            &[],
            vec![call(hostile, ""), call("echo", "next")],
        ));
    }
    sessions
}
