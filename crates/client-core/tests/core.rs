//! The client core against fixed randomness and exact values. The same tests run natively and
//! under wasm32 (in headless Chromium), so equal golden hashes mean a page's keys and
//! ciphertexts are byte for byte the CLI's.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use unseen_client_core::{classify, generate, key_id, CnnCore, Error};
use unseen_wire::cnn::ModelSpec;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

macro_rules! both {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        fn $name() $body
    };
}

const SPEC: &str = include_str!("data/ciphernet-mnist.spec.json");

fn spec() -> ModelSpec {
    serde_json::from_str(SPEC).expect("spec")
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pixels() -> Vec<u8> {
    (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect()
}

both! {
    /// Keys and a ciphertext from a fixed seed: the bytes every build must produce.
    fn golden_keys_and_ciphertext() {
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let mut calls = Vec::new();
        let made = generate(&spec(), &mut rng, &mut |done, total| calls.push((done, total)))
            .expect("keys");
        let total = calls.last().expect("progress").1;
        assert_eq!(calls, (1..=total).map(|d| (d, total)).collect::<Vec<_>>());
        assert_eq!(made.rotation_keys, total);
        assert_eq!(made.client.spec.key_id, key_id(&made.eval_keys));
        let ct = made
            .client
            .encrypt_image_with(&pixels(), &mut rng)
            .expect("encrypt");
        let got = [
            hex(&made.client.secret_key_bytes()),
            made.client.spec.key_id.clone(),
            hex(&ct),
        ];
        assert_eq!(
            got,
            [
                "6d9ba369ff061ed64363a80f7ee06929882dce06375b6e6ab5223e77b2a29bba",
                "e1b993b6f10fe45c7d9fffaffe91cf57812bbbcda0098656ce293eea68715d31",
                "e0c26170a1407b4a4bf37cbc22e491965b4257cdb009dccfe26285778ff8d60f",
            ]
        );
    }
}

both! {
    /// A spec gets the key digits it asks for: paired, the same keys (steps and levels) in
    /// 0.59x the bytes; mixed, one prime per digit exactly for the hoisted steps and the
    /// relinearisation key, paired for every other key; without the field, one prime per digit.
    fn a_spec_chooses_the_key_digits() {
        use unseen_circuits::{KeyDigits, KeyLayout};
        let plain = spec();
        assert_eq!(plain.key_digits, KeyLayout::PerPrime);
        assert!(plain.hoisted_rotations.is_empty());
        let mut paired = spec();
        paired.key_digits = KeyLayout::Paired;
        let mut mixed = spec();
        mixed.key_digits = KeyLayout::Mixed;
        mixed.hoisted_rotations = vec![1, 2, 3, 4, 5, 6, 7];
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let one = generate(&plain, &mut rng, &mut |_, _| {}).expect("keys");
        let two = generate(&paired, &mut rng, &mut |_, _| {}).expect("keys");
        let three = generate(&mixed, &mut rng, &mut |_, _| {}).expect("keys");
        assert_eq!(one.rotation_keys, two.rotation_keys);
        assert_eq!(one.rotation_keys, three.rotation_keys);
        let ratio = two.eval_keys.len() as f64 / one.eval_keys.len() as f64;
        assert!((0.55..0.65).contains(&ratio), "{ratio}");
        assert!(three.eval_keys.len() < one.eval_keys.len());
        assert!(three.eval_keys.len() > two.eval_keys.len());
        let params = unseen_ckks::Parameters::preset(unseen_ckks::Preset::Cnn8192).expect("preset");
        let load = |b: &[u8]| {
            unseen_circuits::EvaluationKeys::from_bytes(b, &params).expect("keys load")
        };
        let (keys, mixed_keys) = (load(&two.eval_keys), load(&three.eval_keys));
        assert!(keys.galois.digits_are(KeyDigits::Paired) && keys.relin.digits_are(KeyDigits::Paired));
        assert!(mixed_keys.relin.digits_are(KeyDigits::PerPrime));
        assert!(!mixed_keys.relin.digits_are(KeyDigits::Paired));
        for (step, level) in &paired.rotation_keys {
            assert_eq!(keys.galois.rotation_level(*step), Some(*level));
            assert_eq!(mixed_keys.galois.rotation_level(*step), Some(*level));
            let hoisted = (1..=7).contains(step);
            // at the top level the two layouts are the same key
            let distinct = *level < params.max_level();
            assert_eq!(
                mixed_keys.galois.rotation_digits_are(*step, KeyDigits::PerPrime),
                hoisted || !distinct,
                "step {step}"
            );
            assert_eq!(
                mixed_keys.galois.rotation_digits_are(*step, KeyDigits::Paired),
                !hoisted || !distinct,
                "step {step}"
            );
        }
    }
}

both! {
    /// An encrypted input decrypts to its exact values at the output slots, and a client
    /// restored from its stored spec and secret key reads it the same.
    fn encrypted_values_match_the_layout() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let made = generate(&spec(), &mut rng, &mut |_, _| {}).expect("keys");
        let client = made.client;
        let x: Vec<f64> = (0..784).map(|i| ((i % 97) as f64 - 48.0) / 16.0).collect();
        let ct = client.encrypt_input_with(&x, &mut rng).expect("encrypt");
        let restored =
            CnnCore::restore(&client.spec.to_json(), &client.secret_key_bytes()).expect("restore");
        for reader in [&client, &restored] {
            let got = reader.decrypt_logits(&ct).expect("decrypt");
            for (slot, value) in client.spec.output_slots.iter().zip(&got) {
                let want = client.spec.input_layout[*slot].map(|i| x[i]).unwrap_or(0.0);
                assert!((value - want).abs() < 1e-4, "slot {slot}: {value} vs {want}");
            }
        }
    }
}

both! {
    fn bad_inputs_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let client = generate(&spec(), &mut rng, &mut |_, _| {}).expect("keys").client;
        assert!(matches!(client.encrypt_image(&[0; 100]), Err(Error::Input(_))));
        assert!(client.encrypt_input(&[f64::NAN; 784]).is_err());
        assert!(client.decrypt_logits(b"not a ciphertext").is_err());
        assert!(CnnCore::restore(b"{}", &[]).is_err());
        assert!(CnnCore::restore(&client.spec.to_json(), &[1, 2, 3]).is_err());
        let mut other = spec();
        other.preset = "no-such-preset".into();
        assert!(generate(&other, &mut rng, &mut |_, _| {}).is_err());
        other = spec();
        other.input_layout.pop();
        assert!(generate(&other, &mut rng, &mut |_, _| {}).is_err());
        other = spec();
        other.hoisted_rotations = vec![1; 4097];
        let err = generate(&other, &mut rng, &mut |_, _| {}).err().expect("refused");
        assert!(err.to_string().contains("hoisted rotations"), "{err}");
    }
}

both! {
    fn softmax_and_argmax() {
        let c = classify(vec![1.0, 3.0, 2.0]);
        assert_eq!(c.class, 1);
        let e = [(-2.0f64).exp(), 1.0, (-1.0f64).exp()];
        let sum: f64 = e.iter().sum();
        for (p, want) in c.probabilities.iter().zip(e.iter().map(|v| v / sum)) {
            assert!((p - want).abs() < 1e-15);
        }
    }
}
