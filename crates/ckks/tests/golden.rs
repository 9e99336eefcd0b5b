//! Golden hashes: the exact bytes of every CKKS binary format, for objects made from fixed seeds
//! at the smallest preset, are pinned by their SHA-256. Any change of a serialized byte (field
//! order, widths, packing, header, version, the parameter fingerprint, key generation or
//! encryption sampling) fails this test.
//!
//! Changing a format on purpose: bump `serialize::FORMAT_VERSION` if old bytes no longer load,
//! run `cargo test -p unseen-ckks --test golden`, paste the table it prints over [`GOLDEN`],
//! and rewrite the fuzz targets' seed corpus (these objects) with
//! `UNSEEN_WRITE_CORPUS=1 cargo test -p unseen-ckks --test golden`; commit both. The shared
//! machinery is `fuzz/support/golden.rs`.
//!
//! Only integer arithmetic goes into these bytes (ternary and binomial sampling, ChaCha20
//! expansion, NTTs): the plaintext is a constant vector, whose encoding rounds values within
//! 1e-6 of an integer, so no floating-point library difference can move a coefficient.

mod roundtrip;

#[path = "../../../fuzz/support/golden.rs"]
mod golden;

use golden::Object;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_ckks::serialize::ciphertexts_to_bytes;
use unseen_ckks::{
    Encoder, Evaluator, GaloisKeys, Parameters, ParametersLiteral, Preset, PublicKey, RelinKey,
    SecretKey,
};

/// Seed of the key and encryption randomness.
const SEED: u64 = 0x756e_7365_656e; // "unseen"

/// `(target/name, SHA-256 of the bytes)`; see the module documentation to update.
#[rustfmt::skip]
const GOLDEN: &[(&str, &str)] = &[
    ("ckks_parameters/n8192-cnn", "e4f28385f556797300c4fa2b48ff16b7aab9668d012cc41a115bc8a556824adf"),
    ("ckks_parameters/n8192-precise", "eede6fd35f41967f2350c255bbc51477433281dbbe8d96bcc14adff137322114"),
    ("ckks_parameters/n16384-deep", "4bf3949009ac760883d0ed796ec484700b3eb2658262b0dcf7f04d6bfe70497e"),
    ("ckks_parameters/n4096-small", "e23390e924f5c276f16920b1eb75ce657a77eed171d025dd5e443754305f2fa4"),
    ("ckks_parameters/n16384-cnn", "3bc69678fd9facfb63eb0c01c64f8969bed01d7e527ee2777281e6df1cf68760"),
    ("ckks_parameters/n32768-cnn", "6ed669c5407f2a6f0634077ed068e40f4c2ba0b63d754fa292aa88a5148ba347"),
    ("ckks_parameters/tiny-insecure", "5969dad2536ed2945273461195a0d9bb252af588010821a47d6b572588c72ccc"),
    ("ckks_secret_key/sk", "e91535bc10a72c3fd9b74f0f68d8c7862a94423471a36a9f69811ce16792921e"),
    ("ckks_public_key/pk", "1393eb74bbf518f5706161239fbb05b7f4fddeaa3773ab9b7ba356d3568cd344"),
    ("ckks_ciphertext/seeded-level1", "236ba2776e497234dc6243e9525719f52cf7af49f0b02f9972557c2902ebbaf9"),
    ("ckks_ciphertext/full-level1", "376b16cff9553e3cc9ea4dee6ab4978e063470f0a0d6982ab38ee5c2d48463cc"),
    ("ckks_ciphertext/seeded-level0", "e49d3c472209b6160bb37032e04de0f58d8486eb0339e215c82c08238cd4798e"),
    ("ckks_ciphertext/full-level0", "94690ad1eb0306fe21bde5b78eae7bce65e94d3e9cd2238edfef922e9bf24b46"),
    ("ckks_ciphertext_list/seeded-and-full", "9d43ffea80a42f0467eddcd06e93efbf235384bcd20d2b3c59bb00c468f9bb3d"),
    ("ckks_ciphertext_list/empty", "21cb7e17f4375e3c49cf8a6f43c0ecf7ce463b2fc83c7547787ad26b37991f5b"),
    ("ckks_relin_key/level1", "4b2e33862f75c8e7571daa0ae58ac4d1750fcde976472edbf3cc8f4db31adc3d"),
    ("ckks_relin_key/level0", "dcd7898126480b9637ac68c44e4e76f63abb3a1ecd5287eddbf2d73b9953c40b"),
    ("ckks_galois_keys/none", "b91591277cba157aee21688ae8caaac0b910bc1894f6e6ad86e8ca99a4e5c464"),
    ("ckks_galois_keys/two-rotations", "b296294c154285816311db75be7982ecab4c7492b1f1d3e127b4d837aa96dd87"),
    ("ckks_galois_keys/rotation-and-conjugation", "84b42df831e491ab59e8e5a9b034c906a7abfa9cf94542124b817219ff09a6d3"),
    ("ckks_galois_keys/bad-unsorted-elements", "1679fab148238016c9f92d480bd9c41c98f6d3322ba5f52aaf6c5f91bec04d2b"),
    ("ckks_galois_keys/bad-repeated-element", "ecec0de7855e233c209b31cd5ebd2c62dc3eb75f062341df195a014128932463"),
];

fn objects() -> Vec<Object> {
    // Loading parameters regenerates their primes and NTT tables: seeds of large presets would
    // make every fuzzer execution slow, so only the smallest preset is also a seed.
    let mut out: Vec<Object> = Preset::ALL
        .into_iter()
        .map(|preset| Object {
            target: "ckks_parameters",
            name: preset.name(),
            bytes: Parameters::preset(preset).expect("preset").to_bytes(),
            seed: preset == roundtrip::PRESET,
        })
        .collect();
    let mut push = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push(Object::new(target, name, bytes))
    };

    let tiny = Parameters::new(ParametersLiteral {
        name: "tiny-insecure".into(),
        log_n: 5,
        log_q: vec![20, 18],
        log_p: 21,
        log_scale: 12,
        insecure: true,
    })
    .expect("tiny parameters");
    push("ckks_parameters", "tiny-insecure", tiny.to_bytes());

    let params = roundtrip::params();
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let sk = SecretKey::generate(params, &mut rng);
    let pk = PublicKey::generate(&sk, &mut rng);
    push("ckks_secret_key", "sk", sk.to_bytes().to_vec());
    push("ckks_public_key", "pk", pk.to_bytes());

    let enc = Encoder::new(params);
    let ev = Evaluator::new(params);
    let top = params.max_level();
    let pt = enc
        .encode_real(&vec![0.5; params.slots()], top, params.default_scale())
        .expect("encode");
    let seeded = sk.encrypt(&pt, &mut rng).expect("secret-key encryption");
    let full = pk.encrypt(&pt, &mut rng).expect("public-key encryption");
    let seeded0 = ev.drop_to_level(&seeded, 0).expect("drop");
    let full0 = ev.drop_to_level(&full, 0).expect("drop");
    assert!(seeded.is_seeded() && seeded0.is_seeded() && !full.is_seeded());
    push("ckks_ciphertext", "seeded-level1", seeded.to_bytes());
    push("ckks_ciphertext", "full-level1", full.to_bytes());
    push("ckks_ciphertext", "seeded-level0", seeded0.to_bytes());
    push("ckks_ciphertext", "full-level0", full0.to_bytes());
    push(
        "ckks_ciphertext_list",
        "seeded-and-full",
        ciphertexts_to_bytes(&[seeded0, full0]),
    );
    push("ckks_ciphertext_list", "empty", ciphertexts_to_bytes(&[]));

    let rlk = RelinKey::generate(&sk, &mut rng);
    let rlk0 = RelinKey::generate_for_level(&sk, 0, &mut rng);
    push("ckks_relin_key", "level1", rlk.to_bytes());
    push("ckks_relin_key", "level0", rlk0.to_bytes());

    let none = GaloisKeys::generate(&sk, &[], false, &mut rng);
    let two = GaloisKeys::generate_for_levels(&sk, &[(1, 0), (-2, 0)], false, &mut rng);
    let conj = GaloisKeys::generate_for_levels(&sk, &[(3, 0)], true, &mut rng);
    push("ckks_galois_keys", "none", none.to_bytes());
    push("ckks_galois_keys", "two-rotations", two.to_bytes());
    push(
        "ckks_galois_keys",
        "rotation-and-conjugation",
        conj.to_bytes(),
    );
    // Kept rejected inputs: the two keys of `two` swapped, and its first key twice. Keys are
    // written in increasing order of their Galois element; another order would load and then
    // re-encode differently.
    let bytes = two.to_bytes();
    let (header, keys) = bytes.split_at(18);
    let (first, second) = keys.split_at(keys.len() / 2);
    push(
        "ckks_galois_keys",
        "bad-unsorted-elements",
        [header, second, first].concat(),
    );
    push(
        "ckks_galois_keys",
        "bad-repeated-element",
        [header, first, first].concat(),
    );
    out
}

#[test]
fn serialized_bytes_match_golden_hashes() {
    golden::check(
        env!("CARGO_MANIFEST_DIR"),
        &objects(),
        GOLDEN,
        roundtrip::TARGETS,
    );
}
