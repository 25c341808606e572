//! The fuzz target's driver (`fuzz/driver.rs`: random guest memories, pointers, lengths,
//! caps, results, error values and allocator behaviours, with the invariants a hostile
//! guest must not break) run by proptest on a few hundred inputs, in seconds. The fuzz
//! target runs it for as long as one likes: `cd fuzz && cargo +nightly fuzz run data_path`.

use std::sync::OnceLock;

use proptest::prelude::*;

#[path = "../../../fuzz/driver.rs"]
mod driver;

fn driver() -> &'static driver::Driver {
    static DRIVER: OnceLock<driver::Driver> = OnceLock::new();
    DRIVER.get_or_init(driver::Driver::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_data_path_holds_for_any_guest(input in proptest::collection::vec(any::<u8>(), 0..80)) {
        driver().run(&input);
    }
}

/// Inputs that once broke an invariant, or that reach the corners on purpose: every
/// parameter at 4 GiB, a re-entrant allocator, an allocator that traps while placing an
/// error value's message.
#[test]
fn the_data_path_holds_for_chosen_guests() {
    let cases: &[&[u8]] = &[
        &[],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        ],
        &[1, 0, 1, 5, 0, 0, 1, 2, 1, 2, 9, 1, 3, 3, 1, 3, 3, 1, 3, 3],
        &[1, 0, 0, 1, 1, 0, 7, 0, 0, 0, 9, 1, 1, 3, 1],
    ];
    for case in cases {
        driver().run(case);
    }
}
