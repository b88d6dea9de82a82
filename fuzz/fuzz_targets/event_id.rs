#![no_main]
//! See `fsfeed_fuzz::event_id` for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fsfeed_fuzz::event_id(data));
