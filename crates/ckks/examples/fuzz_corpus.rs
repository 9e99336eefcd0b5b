//! Writes a seed corpus for the cargo-fuzz targets in `fuzz/`:
//! `cargo run -p unseen-ckks --release --example fuzz_corpus -- fuzz/corpus`.
//! Objects are made for the reference preset (the one the targets load).

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_ckks::{
    Encoder, Evaluator, GaloisKeys, Parameters, Preset, PublicKey, RelinKey, SecretKey,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let params = Parameters::preset(Preset::Cnn8192)?;
    // Throw-away keys for a corpus only.
    let mut rng = ChaCha20Rng::from_seed([1u8; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&sk, &mut rng);
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let pt = enc.encode_real(&[1.0, -2.0, 3.5], 1, params.default_scale())?;
    let seeded = sk.encrypt(&pt, &mut rng)?;
    let full = pk.encrypt(&pt, &mut rng)?;
    let low = ev.drop_to_level(&full, 0)?;
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)
    };
    for p in Preset::ALL {
        write(
            "ckks_parameters",
            &p.name(),
            &Parameters::preset(p)?.to_bytes(),
        )?;
    }
    write("ckks_ciphertext", "seeded", &seeded.to_bytes())?;
    write("ckks_ciphertext", "full", &full.to_bytes())?;
    write("ckks_ciphertext", "level0", &low.to_bytes())?;
    write("ckks_public_key", "pk", &pk.to_bytes())?;
    write(
        "ckks_relin_key",
        "rlk",
        &RelinKey::generate(&sk, &mut rng).to_bytes(),
    )?;
    write(
        "ckks_galois_keys",
        "one",
        &GaloisKeys::generate(&sk, &[1], false, &mut rng).to_bytes(),
    )?;
    write(
        "ckks_galois_keys",
        "none",
        &GaloisKeys::generate(&sk, &[], false, &mut rng).to_bytes(),
    )?;
    write("ckks_secret_key", "sk", &sk.to_bytes())?;
    println!("corpus written to {}", root.display());
    Ok(())
}
