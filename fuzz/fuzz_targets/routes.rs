#![no_main]
//! See `meterwatch_fuzz::routes`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::routes(data));
