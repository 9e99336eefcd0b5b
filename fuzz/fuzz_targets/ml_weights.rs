#![no_main]
//! Model weights (safetensors) for the reference architecture: a network or an error.
use libfuzzer_sys::fuzz_target;
use unseen_ml::cnn::Architecture;
use unseen_model::folder::weights_from_safetensors;

fuzz_target!(|data: &[u8]| {
    if let Some(arch) = Architecture::named("ciphernet") {
        let _ = weights_from_safetensors(arch, data, "fuzz");
    }
});
