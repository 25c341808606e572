//! The committed Extism plugins (`guests/extism/*.wasm`) are what `guests/extism/build.sh`
//! makes of their sources, byte for byte, when the toolchains that built them are here:
//! - Rust PDK plugins: the rustc recorded in `guests/extism/TOOLCHAIN`, with rustup's
//!   wasm32-unknown-unknown and wasm32-wasip1 targets (crates come from cargo's cache or
//!   crates.io, pinned by `rust/Cargo.lock`);
//! - AssemblyScript PDK plugins: node, with the pinned packages already installed in
//!   `guests/extism/as/node_modules` (`npm ci` there, or `guests/extism/build.sh`): the test
//!   does not install them itself.
//!
//! What is absent is skipped, saying why. The Rust build reuses `guests/extism/rust/target`
//! (ignored by git), so only the first run on a machine compiles the PDK's dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn guests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/extism")
}

/// Why the Rust PDK plugins cannot be rebuilt here, if they cannot.
fn rust_absent(recorded: &str) -> Option<String> {
    let rustc = Command::new("rustc").arg("--version").output();
    let Ok(rustc) = rustc else {
        return Some("rustc is not installed".into());
    };
    let installed = String::from_utf8_lossy(&rustc.stdout);
    let installed = installed.trim();
    if recorded.lines().next() != Some(installed) {
        return Some(format!(
            "{installed:?} is not the rustc that built them ({:?})",
            recorded.lines().next().unwrap_or("")
        ));
    }
    let Ok(sysroot) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return Some("rustc --print sysroot failed".into());
    };
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    for target in ["wasm32-unknown-unknown", "wasm32-wasip1"] {
        if !Path::new(&sysroot)
            .join("lib/rustlib")
            .join(target)
            .is_dir()
        {
            return Some(format!(
                "the {target} target is not installed (rustup target add {target})"
            ));
        }
    }
    None
}

/// Why the AssemblyScript PDK plugins cannot be rebuilt here, if they cannot.
fn assemblyscript_absent() -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !guests().join("as/node_modules/.bin/asc").exists() {
        return Some(
            "the pinned npm packages are not installed (npm ci in guests/extism/as)".into(),
        );
    }
    None
}

fn rebuild_and_compare(language: &str, files: &[&str]) {
    let out = std::env::temp_dir().join(format!(
        "async-wasm-extism-{language}-{}",
        std::process::id()
    ));
    let status = Command::new(guests().join("build.sh"))
        .arg(&out)
        .env("ONLY", language)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "guests/extism/build.sh ({language}) failed"
    );
    for file in files {
        let fresh = std::fs::read(out.join(file)).unwrap();
        let committed = std::fs::read(guests().join(file)).unwrap();
        assert!(
            fresh == committed,
            "guests/extism/{file} is not what its sources build to: run guests/extism/build.sh"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn committed_extism_plugins_match_their_sources() {
    let recorded = std::fs::read_to_string(guests().join("TOOLCHAIN")).unwrap();
    match rust_absent(&recorded) {
        Some(why) => eprintln!("Rust PDK plugins not rebuilt: {why}"),
        None => rebuild_and_compare("rust", &["rust_plugin.wasm", "rust_plugin_wasi.wasm"]),
    }
    match assemblyscript_absent() {
        Some(why) => eprintln!("AssemblyScript PDK plugins not rebuilt: {why}"),
        None => rebuild_and_compare("as", &["as_plugin.wasm", "as_plugin_wasi.wasm"]),
    }
}
