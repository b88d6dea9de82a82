#![no_main]
//! See `fsfeed_fuzz::pubsub_request` for the property checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fsfeed_fuzz::pubsub_request(data));
