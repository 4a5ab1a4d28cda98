#![no_main]
//! See `meterwatch_fuzz::rules_load`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::rules_load(data));
