//! The Extism fuzz target's driver (`fuzz/extism_driver.rs`: a plugin that runs arbitrary
//! bytes as a program of kernel and host-service calls, with the invariants a hostile
//! plugin must not break) run by proptest on a few hundred programs, in seconds. The fuzz
//! target runs it for as long as one likes: `cd fuzz && cargo +nightly fuzz run
//! extism_kernel`.

use std::sync::OnceLock;

use proptest::prelude::*;

#[path = "../../../fuzz/extism_driver.rs"]
mod driver;

fn driver() -> &'static driver::Driver {
    static DRIVER: OnceLock<driver::Driver> = OnceLock::new();
    DRIVER.get_or_init(driver::Driver::new)
}

/// One 17-byte record of the interpreter: an operation (its flags in the top bits), then
/// two operands.
fn record() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(op, a, b)| {
        let mut bytes = vec![op];
        bytes.extend(a.to_le_bytes());
        bytes.extend(b.to_le_bytes());
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whole records, so that most programs run several calls before one fails.
    #[test]
    fn the_kernel_holds_for_any_program(
        shape in any::<u8>(),
        records in proptest::collection::vec(record(), 0..24),
    ) {
        let mut input = vec![shape];
        input.extend(records.concat());
        driver().run(&input);
    }

    /// Any bytes at all, records cut anywhere.
    #[test]
    fn the_kernel_holds_for_any_bytes(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        driver().run(&input);
    }
}
