//! `#[async_host]` at compile time: what it accepts (run), and its error for each misuse,
//! pinned in `ui/fail/*.stderr`. Regenerate those with `TRYBUILD=overwrite` after a
//! deliberate change of message, and review the diff.

#[test]
fn async_host_ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
