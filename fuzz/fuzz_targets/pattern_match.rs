#![no_main]
//! See `meterwatch_fuzz::pattern_match`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::pattern_match(data));
