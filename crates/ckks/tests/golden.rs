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
    ("ckks_parameters/n8192-cnn", "505825d73ad0f7d591c0d0783208d9531dcbbaed9a1c8557041f5a506a7bc435"),
    ("ckks_parameters/n8192-precise", "5bea1c9fffb22b2a706360f1d27be9859c50eedadf6d12230762088e554675a3"),
    ("ckks_parameters/n16384-deep", "7d0da3186205fec85cf2bd537c0da5eb3a606927f81778156cd078ed1b75c4d3"),
    ("ckks_parameters/n4096-small", "4e1d91c6c0d3323d16bb8609490e0c748da3814af6ac0be5c68d5d6cd8e13167"),
    ("ckks_parameters/n16384-cnn", "c53214e17187d61490f3da956c596fe85dec4c675be4528136568ae127bce2ef"),
    ("ckks_parameters/n32768-cnn", "300ccae5363a03be30887422caa159835cfc9c036746aa67108c75ac440edfb1"),
    ("ckks_parameters/tiny-insecure", "2b0de8c60e5ef08b9a863c9226a83818ae8fb38ea918c7b175d4663b4e94f026"),
    ("ckks_secret_key/sk", "2c1b62f5499eaab8198ac06a5103bc0174b4b4850b0aa00a2d5d760cf2d7d830"),
    ("ckks_public_key/pk", "ec3b93a08b1aa099b73f82e21022212dcae1eec72fabb32dfe8d7e31e56d853d"),
    ("ckks_ciphertext/seeded-level1", "a3bc8746c98e61e93802c2a8a66a69af5c0ea5c6abbc208fc0b5de7c236c82cd"),
    ("ckks_ciphertext/full-level1", "f1ed15ef9a03f7c82a2b1c50bc5bd646bb5bc9c9ce6f9224a1e5bbcf14387b5b"),
    ("ckks_ciphertext/seeded-level0", "458f78628e325d7b7502361604a1e42559bde4ea840b4948eda8fbe78d91ded6"),
    ("ckks_ciphertext/full-level0", "b9668bb58f36a5c49f1607c60b1d19d3ee8e41ea205a1b7901040f76ccbb34ef"),
    ("ckks_ciphertext_list/seeded-and-full", "f66e7dd3e0adcf4e09ac13e4d424c05c03b36a194ccb34305b1b129d54eae360"),
    ("ckks_ciphertext_list/empty", "a765eb58a09da81c76727e4ffde865dba86daf81a966ca0c25a6798417c5fd90"),
    ("ckks_relin_key/level1", "eeb330258ec6154940e3bc955416b7801bff5db381d62313ae8ede84d3e181b3"),
    ("ckks_relin_key/level0", "4e0c46a87c839bee5463d1d2af26a6ea70a14218e2ea0913f927a05f2bf3a44a"),
    ("ckks_galois_keys/none", "10a6535d9bb07ff57abd755962e760e7feb236644a398aa961f748618eb3da55"),
    ("ckks_galois_keys/two-rotations", "3a09276127a7d657d0ed69cab3dc4d3523fd3bf7665ac9c0b19f16de5c03e789"),
    ("ckks_galois_keys/rotation-and-conjugation", "8e5a35ab87e03d7d24a3c65dc72e8ba4f1c27ceb66b7a5165df883f0397a0076"),
    ("ckks_galois_keys/bad-unsorted-elements", "18aaed02a3a9e6e4bb44d4a78c783ebbfc7e78ad70e4d2d6778cacf957bdb9fb"),
    ("ckks_galois_keys/bad-repeated-element", "8333605ba1c2063c09a1653970050258bd1f105a768489d31ee1c2a380e93a2e"),
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
