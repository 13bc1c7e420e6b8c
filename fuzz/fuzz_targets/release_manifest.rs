#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dan_fuzz::release_manifest(data);
});
