//! Extism's kernel and host services under a plugin that runs arbitrary bytes as a program
//! of kernel calls: see `../extism_driver.rs`.
#![no_main]

use std::sync::OnceLock;

#[path = "../extism_driver.rs"]
mod driver;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    static DRIVER: OnceLock<driver::Driver> = OnceLock::new();
    DRIVER.get_or_init(driver::Driver::new).run(input);
});
