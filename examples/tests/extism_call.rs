//! `extism-call`, the built binary, on the Rust PDK plugin of `guests/extism`: output,
//! config, standard input, and a plugin's error with its exit status.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn plugin(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guests/extism")
        .join(file);
    path.to_str().unwrap().to_owned()
}

/// Runs `extism-call` with `args`, `stdin` on its standard input.
fn extism_call(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_extism-call"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// On the Rust plugin (each run compiles it, a few seconds in a debug build: few runs).
#[test]
fn output_config_stdin_and_a_plugin_error() {
    let plugin = plugin("rust_plugin.wasm");
    let plugin = plugin.as_str();

    // --input and --config: the output's bytes, as they are.
    let out = extism_call(
        &[plugin, "config", "--config", "color=blue", "--input=color"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"blue");

    // Standard input when no input is given, bytes that are not UTF-8 included.
    let out = extism_call(&[plugin, "echo"], &[0xff, 0, b'x']);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, [0xff, 0, b'x']);

    // A plugin's error: its message and code on stderr, exit status 1.
    let out = extism_call(&[plugin, "fail", "--input", ""], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "plugin error (code 3): failed on purpose\n"
    );
}

/// The other exit statuses and WASI, on the (smaller, faster to compile) AssemblyScript
/// plugin.
#[test]
fn exit_statuses_and_wasi() {
    let plugin = plugin("as_plugin.wasm");
    let plugin = plugin.as_str();
    // A host function this runner does not provide fails the call, status 2 (as a trap, a
    // kernel rule broken or a missing export do).
    let out = extism_call(&[plugin, "host_echo", "--input", "x"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("host function `host_echo` is not provided"),
        "{stderr}"
    );

    // A plugin that cannot be loaded; a command line that is wrong.
    let out = extism_call(&["/nonexistent.wasm", "echo", "--input", ""], b"");
    assert_eq!(out.status.code(), Some(3));
    let out = extism_call(&[plugin, "echo", "--timeout-ms", "soon"], b"");
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("usage: extism-call"));

    // WASI: the plugin's stdout is this program's, before the output (AssemblyScript's
    // shim writes `console.error` to stdout too).
    let plugin = self::plugin("as_plugin_wasi.wasm");
    let out = extism_call(
        &[
            &plugin,
            "wasi_print",
            "--wasi",
            "--timeout-ms",
            "5000",
            "--input",
            "",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "hello from wasi_print on stdout\nError: hello from wasi_print on stderr\nprinted"
    );
}
