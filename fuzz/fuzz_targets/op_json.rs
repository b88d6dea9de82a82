#![no_main]
//! See `fsfeed_fuzz::op_json` for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fsfeed_fuzz::op_json(data));
