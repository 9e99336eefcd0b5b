//! Writes a seed corpus of VALID inputs for every fuzz target into `<dir>/<target>/`
//! (default `corpus`, relative to the current directory):
//!
//! ```sh
//! cd fuzz && cargo run --release --example seeds -- corpus
//! ```
//!
//! The CKKS objects are made for `Preset::Cnn8192`, the parameters every CKKS target loads, with
//! throw-away keys from a fixed seed; keys are kept small (low levels, few rotations) so that the
//! fuzzer's executions stay fast.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use unseen_circuits::EvaluationKeys;
use unseen_ckks::serialize::ciphertexts_to_bytes;
use unseen_ckks::{
    Encoder, Evaluator, GaloisKeys, Parameters, Preset, PublicKey, RelinKey, SecretKey,
};
use unseen_ml::cnn::files::weights_to_safetensors;
use unseen_ml::cnn::{Architecture, Network};
use unseen_paillier::formats;
use unseen_paillier::{EncryptedNumber, PrivateKey, Randomness, Scalar};
use unseen_wire::salary::{legacy_reply, PredictRequest};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn ckks(root: &Path) -> Res<()> {
    let params = Parameters::preset(Preset::Cnn8192)?;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([1u8; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&sk, &mut rng);
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let pt = enc.encode_real(&[1.0, -2.0, 3.5], 1, params.default_scale())?;
    let seeded = sk.encrypt(&pt, &mut rng)?;
    let full = pk.encrypt(&pt, &mut rng)?;
    let low = ev.drop_to_level(&full, 0)?;
    let seeded_low = ev.drop_to_level(&seeded, 0)?;

    for p in Preset::ALL {
        write(
            root,
            "ckks_parameters",
            &p.name(),
            &Parameters::preset(p)?.to_bytes(),
        )?;
    }
    write(root, "ckks_ciphertext", "seeded", &seeded.to_bytes())?;
    write(root, "ckks_ciphertext", "full", &full.to_bytes())?;
    write(root, "ckks_ciphertext", "level0", &low.to_bytes())?;
    write(
        root,
        "ckks_ciphertext_list",
        "one",
        &ciphertexts_to_bytes(std::slice::from_ref(&low)),
    )?;
    write(
        root,
        "ckks_ciphertext_list",
        "three",
        &ciphertexts_to_bytes(&[low.clone(), seeded_low.clone(), low.clone()]),
    )?;
    write(
        root,
        "ckks_ciphertext_list",
        "empty",
        &ciphertexts_to_bytes(&[]),
    )?;
    write(root, "ckks_public_key", "pk", &pk.to_bytes())?;
    write(root, "ckks_secret_key", "sk", &sk.to_bytes())?;

    let rlk0 = RelinKey::generate_for_level(&sk, 0, &mut rng);
    let rlk1 = RelinKey::generate_for_level(&sk, 1, &mut rng);
    write(root, "ckks_relin_key", "level0", &rlk0.to_bytes())?;
    write(root, "ckks_relin_key", "level1", &rlk1.to_bytes())?;
    write(
        root,
        "ckks_relin_key",
        "full",
        &RelinKey::generate(&sk, &mut rng).to_bytes(),
    )?;

    let none = GaloisKeys::generate(&sk, &[], false, &mut rng);
    let small = GaloisKeys::generate_for_levels(&sk, &[(1, 0), (-2, 1)], false, &mut rng);
    let conj = GaloisKeys::generate_for_levels(&sk, &[(4, 0)], true, &mut rng);
    write(root, "ckks_galois_keys", "none", &none.to_bytes())?;
    write(root, "ckks_galois_keys", "two", &small.to_bytes())?;
    write(root, "ckks_galois_keys", "conjugate", &conj.to_bytes())?;

    let bundle = |relin: &RelinKey, galois: &GaloisKeys| {
        EvaluationKeys {
            relin: relin.clone(),
            galois: galois.clone(),
        }
        .to_bytes()
    };
    write(
        root,
        "circuits_eval_keys",
        "no_rotations",
        &bundle(&rlk0, &none),
    )?;
    write(
        root,
        "circuits_eval_keys",
        "two_rotations",
        &bundle(&rlk1, &small),
    )?;
    Ok(())
}

fn paillier_and_wire(root: &Path) -> Res<()> {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([2u8; 32]);
    // Throw-away key, far below a secure size, to keep the inputs short.
    let sk = PrivateKey::generate_insecure(128, &mut rng)?;
    let pk = sk.public_key();
    let values: Vec<EncryptedNumber> = [Scalar::from(3), Scalar::Float(-1.25), Scalar::from(0)]
        .iter()
        .map(|v| EncryptedNumber::encrypt(pk, v, Randomness::Standard, &mut rng))
        .collect::<Result<_, _>>()?;

    write(
        root,
        "paillier_formats",
        "keys_json",
        formats::write_keys_json(&sk).as_bytes(),
    )?;
    write(
        root,
        "paillier_formats",
        "public_keys_json",
        formats::write_public_keys_json(pk).as_bytes(),
    )?;
    write(
        root,
        "paillier_formats",
        "public_jwk",
        formats::public_jwk(pk, "seed").to_string().as_bytes(),
    )?;
    write(
        root,
        "paillier_formats",
        "private_jwk",
        formats::private_jwk(&sk, "seed").as_bytes(),
    )?;
    write(
        root,
        "paillier_formats",
        "encrypted_number",
        formats::write_encrypted_number(&values[0]).as_bytes(),
    )?;
    // keys.json and an encrypted number in one text is not valid for both readers; give the
    // fuzzer the two shapes side by side instead.
    let combined = format!(
        "{{\"public_key\": {{\"n\": {}}}, \"v\": \"{}\", \"e\": {}}}",
        pk.n(),
        values[1].ciphertext(),
        values[1].exponent()
    );
    write(
        root,
        "paillier_formats",
        "keys_and_number",
        combined.as_bytes(),
    )?;

    let request = PredictRequest::to_json(&values);
    write(root, "wire_predict_request", "request", request.as_bytes())?;
    let object_form = format!(
        "{{\"public_key\": {{\"n\": \"{}\"}}, \"values\": [{{\"v\": \"{}\", \"e\": {}}}]}}",
        pk.n(),
        values[0].ciphertext(),
        values[0].exponent()
    );
    write(
        root,
        "wire_predict_request",
        "request_objects",
        object_form.as_bytes(),
    )?;
    let reply = legacy_reply(&values[1]);
    write(
        root,
        "wire_predict_request",
        "legacy_reply",
        reply.as_bytes(),
    )?;

    write(root, "wire_framer", "one", request.as_bytes())?;
    let stream = format!("{request} \n{reply}{{\"a\": \"}}{{\\\"\"}}");
    write(root, "wire_framer", "stream", stream.as_bytes())?;
    Ok(())
}

fn ml(root: &Path) -> Res<()> {
    let idx = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    };
    write(root, "ml_idx", "labels", &idx(&[5], &[0, 1, 2, 3, 9]))?;
    let pixels: Vec<u8> = (0..2 * 4 * 4).map(|i| (i * 7) as u8).collect();
    write(root, "ml_idx", "images", &idx(&[2, 4, 4], &pixels))?;

    let arch = Architecture::named("ciphernet").ok_or("no ciphernet architecture")?;
    let net = Network::init(arch, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3))?;
    write(
        root,
        "ml_weights",
        "ciphernet",
        &weights_to_safetensors(&net)?,
    )?;
    Ok(())
}

/// Every seed must be accepted by the decoder its target fuzzes (otherwise the fuzzer starts
/// from rejected inputs and may never get past the first checks).
fn check(root: &Path) -> Res<()> {
    use unseen_ckks::serialize::ciphertexts_from_bytes;
    use unseen_ckks::Ciphertext;
    let params = Parameters::preset(Preset::Cnn8192)?;
    let arch = Architecture::named("ciphernet").ok_or("no ciphernet architecture")?;
    for entry in std::fs::read_dir(root)? {
        let dir = entry?.path();
        let target = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for file in std::fs::read_dir(&dir)? {
            let path = file?.path();
            let b = std::fs::read(&path)?;
            let text = std::str::from_utf8(&b).unwrap_or_default();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let ok = match target.as_str() {
                "ckks_parameters" => Parameters::from_bytes(&b, false).is_ok(),
                "ckks_ciphertext" => Ciphertext::from_bytes(&b, &params).is_ok(),
                "ckks_ciphertext_list" => ciphertexts_from_bytes(&b, &params, 784).is_ok(),
                "ckks_public_key" => PublicKey::from_bytes(&b, &params).is_ok(),
                "ckks_secret_key" => SecretKey::from_bytes(&b, &params).is_ok(),
                "ckks_relin_key" => RelinKey::from_bytes(&b, &params).is_ok(),
                "ckks_galois_keys" => GaloisKeys::from_bytes(&b, &params).is_ok(),
                "circuits_eval_keys" => EvaluationKeys::from_bytes(&b, &params).is_ok(),
                "paillier_formats" => match name {
                    "keys_json" | "public_keys_json" | "keys_and_number" => {
                        formats::read_keys_json(text).is_ok()
                    }
                    "public_jwk" => formats::read_public_jwk(text).is_ok(),
                    "private_jwk" => formats::read_private_jwk(text).is_ok(),
                    _ => serde_json::from_str::<serde_json::Value>(text).is_ok(),
                },
                "wire_predict_request" => {
                    PredictRequest::parse(&b).is_ok()
                        || unseen_wire::salary::parse_legacy_reply(&b).is_ok()
                }
                "wire_framer" => {
                    let mut f = unseen_wire::framing::Framer::new(4096);
                    f.push(&b).is_ok() && matches!(f.next_frame(), Ok(Some(_)))
                }
                "ml_idx" => unseen_ml::idx::parse_idx(&b).is_ok(),
                "ml_weights" => {
                    unseen_ml::cnn::files::weights_from_safetensors(arch.clone(), &b, name).is_ok()
                }
                _ => true,
            };
            if !ok {
                return Err(
                    format!("seed {} is not accepted by its decoder", path.display()).into(),
                );
            }
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    paillier_and_wire(&root)?;
    ml(&root)?;
    ckks(&root)?;
    check(&root)?;
    println!("seed corpus written to {}", root.display());
    Ok(())
}
