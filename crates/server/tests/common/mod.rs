//! What the server's test files share: a Paillier key, the salary model, and requests for it.

#![allow(dead_code)]

use std::sync::OnceLock;

use rand_chacha::rand_core::SeedableRng;
use unseen_model::linear::{LinearModel, Metrics, MODEL_FORMAT, MODEL_VERSION};
use unseen_paillier::{EncryptedNumber, Integer, PrivateKey, Randomness, Scalar};
use unseen_wire::salary::PredictRequest;

pub fn key() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        PrivateKey::generate_insecure(1024, &mut rand_chacha::ChaCha20Rng::seed_from_u64(11))
            .expect("keygen")
    })
}

pub fn model() -> LinearModel {
    LinearModel {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        name: "salary".into(),
        target: "salary".into(),
        features: vec![
            "age".into(),
            "healthy_eating".into(),
            "active_lifestyle".into(),
            "Gender".into(),
        ],
        coefficients: vec![-0.9627, 467.8397, -188.4583, -6.8086],
        intercept: 1026.9909,
        metrics: Metrics {
            rmse: 1.0,
            r2: 0.9,
            rows_train: 8,
            rows_test: 2,
            evaluated_on: "test".into(),
            test_fraction: 0.2,
            seed: 1,
        },
    }
}

pub const FEATURES: [i64; 4] = [24, 4, 6, 1];

pub fn expected() -> f64 {
    model().predict(&FEATURES.map(|x| x as f64))
}

pub fn request_body(features: &[i64]) -> String {
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let cts: Vec<EncryptedNumber> = features
        .iter()
        .map(|x| {
            EncryptedNumber::encrypt(
                key().public_key(),
                &Scalar::Int(Integer::from(*x)),
                Randomness::Standard,
                &mut rng,
            )
            .expect("enc")
        })
        .collect();
    PredictRequest::to_json(&cts)
}

pub fn decrypt(c: Integer, e: i32) -> f64 {
    let x = EncryptedNumber::new(key().public_key().clone(), c, e).expect("valid reply ciphertext");
    key().decrypt(&x).expect("decrypt").to_f64()
}

/// A small bundle of evaluation keys for the `Small4096` preset.
pub fn small_bundle() -> Vec<u8> {
    use unseen_ckks::{GaloisKeys, RelinKey, SecretKey};
    let params = unseen_ckks::Parameters::preset(unseen_ckks::Preset::Small4096).expect("preset");
    let sk = SecretKey::generate(&params, &mut unseen_ckks::OsRng);
    unseen_circuits::EvaluationKeys {
        relin: RelinKey::generate(&sk, &mut unseen_ckks::OsRng),
        galois: GaloisKeys::generate(&sk, &[1], false, &mut unseen_ckks::OsRng),
    }
    .to_bytes()
}

/// Hex SHA-256: the id of a key bundle.
pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
