#![no_main]
//! See `fsfeed_fuzz::config` for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fsfeed_fuzz::config(data));
