//! Tests whose subject ends the process (an abort, a fault on a guard page) run it in a
//! child: one ignored test of this test binary, run again as a process of its own.

/// Runs the ignored unit test `name` (its whole path) alone in a child process of this
/// test binary, with the variable `marker` set so that the test does its work there, and
/// returns the child's output.
pub(crate) fn run_ignored(name: &str, marker: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(marker, "1")
        .output()
        .unwrap()
}
