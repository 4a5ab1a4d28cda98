#![no_main]
//! See `meterwatch_fuzz::envelope_decode`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| meterwatch_fuzz::envelope_decode(data));
