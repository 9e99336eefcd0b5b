#![no_main]
//! The IDX parser (MNIST files): an array whose data length matches its dimensions, or an error.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = unseen_ml::idx::parse_idx(data) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
});
