//! Writes the seeds of the wire and ml fuzz targets into `corpus/<target>/` (run from `fuzz/`):
//!
//! ```sh
//! cargo run --example seeds
//! ```
//!
//! and checks that each one is accepted by the decoder its target fuzzes. The seeds of the CKKS,
//! evaluation-key and Paillier targets are the objects of the crates' golden tests, written by
//! `UNSEEN_WRITE_CORPUS=1 cargo test -p unseen-ckks -p unseen-circuits -p unseen-paillier --test
//! golden` from the repository root. The Paillier values of the salary seeds use a 128-bit
//! throw-away key from a fixed seed.

use std::path::{Path, PathBuf};

use rand_core::SeedableRng;
use unseen_ml::cnn::{Architecture, Network};
use unseen_model::folder::{weights_from_safetensors, weights_to_safetensors};
use unseen_paillier::{EncryptedNumber, PrivateKey, Randomness, Scalar};
use unseen_wire::salary::{legacy_reply, parse_legacy_reply, PredictRequest};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn wire(root: &Path) -> Res<()> {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([2u8; 32]);
    // Throw-away key, far below a secure size, to keep the inputs short.
    let sk = PrivateKey::generate_insecure(128, &mut rng)?;
    let pk = sk.public_key();
    let values: Vec<EncryptedNumber> = [Scalar::from(3), Scalar::Float(-1.25), Scalar::from(0)]
        .iter()
        .map(|v| EncryptedNumber::encrypt(pk, v, Randomness::Standard, &mut rng))
        .collect::<Result<_, _>>()?;

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
    let arch = Architecture::named("ciphernet").ok_or("no ciphernet architecture")?;
    for target in [
        "wire_predict_request",
        "wire_framer",
        "ml_idx",
        "ml_weights",
    ] {
        for file in std::fs::read_dir(root.join(target))? {
            let path = file?.path();
            let b = std::fs::read(&path)?;
            let ok = match target {
                "wire_predict_request" => {
                    PredictRequest::parse(&b).is_ok() || parse_legacy_reply(&b).is_ok()
                }
                "wire_framer" => {
                    let mut f = unseen_wire::framing::Framer::new(4096);
                    f.push(&b).is_ok() && matches!(f.next_frame(), Ok(Some(_)))
                }
                "ml_idx" => unseen_ml::idx::parse_idx(&b).is_ok(),
                _ => weights_from_safetensors(arch.clone(), &b, "seed").is_ok(),
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
    wire(&root)?;
    ml(&root)?;
    check(&root)?;
    println!("wire and ml seeds written to {}", root.display());
    Ok(())
}
