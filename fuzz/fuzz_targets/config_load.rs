#![no_main]
//! See `meterwatch_fuzz::config_load`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::config_load(data));
