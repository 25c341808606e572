//! `#[async_host]` at compile time: its error for each misuse, pinned in `fail/*.stderr`.
//! Regenerate those with `TRYBUILD=overwrite cargo test -p ui-tests` after a deliberate
//! change of message, and review the diff. What the attribute accepts is run, not just
//! compiled, by `tests/tests/integration/async_host_shapes.rs`.
//!
//! What this builds: trybuild writes a project of its own, `target/tests/trybuild/ui-tests`,
//! whose dependencies are this package's dev-dependencies (async-wasm, and wasmtime without
//! cranelift or wat: see `Cargo.toml`), and builds it in a target directory of its own,
//! `target/tests/trybuild`. With only compile-fail cases nothing is code-generated: trybuild
//! runs `cargo check` on the dependencies (that cargo's progress is shown), then one
//! `cargo check --keep-going` of all the cases at once, whose output it keeps until the
//! end. That second check passes trybuild's `--diagnostic-width=140` in the rustflags, so
//! cargo checks every dependency once more, silently (trybuild 1.0.115 and later). On a
//! fresh target directory the step takes about 30 s on an unloaded 2-core machine (20 s for
//! the first check, 12 s for the second; 55 s of CPU), a minute or more with other builds
//! running; once `target/tests/trybuild` exists, under a second.

use std::io::Write;

#[test]
fn async_host_ui() {
    // Straight to stderr: the test harness would capture an `eprintln!` until the end.
    let _ = writeln!(
        std::io::stderr(),
        "ui-tests: trybuild checks the compile-fail cases of #[async_host] in \
         target/tests/trybuild: about 30 s on a fresh target directory"
    );
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/*.rs");
}
