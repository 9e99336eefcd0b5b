#![no_main]
//! Model weights (safetensors) for the reference architecture: a network or an error.
use libfuzzer_sys::fuzz_target;
use unseen_ml::cnn::files::weights_from_safetensors;
use unseen_ml::cnn::Architecture;

fuzz_target!(|data: &[u8]| {
    if let Some(arch) = Architecture::named("ciphernet") {
        let _ = weights_from_safetensors(arch, data, "fuzz");
    }
});
