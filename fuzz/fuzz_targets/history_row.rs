#![no_main]
//! See `fsfeed_fuzz::history_row` for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fsfeed_fuzz::history_row(data));
