//! `#[async_host]` at compile time: its error for each misuse, pinned in `ui/fail/*.stderr`.
//! Regenerate those with `TRYBUILD=overwrite` after a deliberate change of message, and
//! review the diff. What it accepts is run by `async_host_shapes.rs`: without a `pass` case
//! trybuild only type-checks (`cargo check --keep-going`) instead of building every case.

#[test]
fn async_host_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/fail/*.rs");
}
