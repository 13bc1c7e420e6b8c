#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dan_fuzz::hello(data);
});
