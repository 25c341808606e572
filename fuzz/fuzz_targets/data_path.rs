//! The data path under random guest memories, pointers, lengths, caps, results, error
//! values and allocator behaviours: see `../driver.rs`.
#![no_main]

use std::sync::OnceLock;

#[path = "../driver.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    static DRIVER: OnceLock<driver::Driver> = OnceLock::new();
    DRIVER.get_or_init(driver::Driver::new).run(input);
});
