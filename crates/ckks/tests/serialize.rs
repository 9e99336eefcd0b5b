//! Serialization round trips, sizes, bad input and thread determinism.

mod common;

use common::*;
use unseen_ckks::serialize::{FORMAT_VERSION, MAGIC};
use unseen_ckks::{
    Ciphertext, Error, Evaluator, GaloisKeys, Parameters, ParametersLiteral, Preset, PublicKey,
    RelinKey, SecretKey,
};

#[test]
fn seeded_ciphertext_roundtrip_and_size() {
    let c = ctx();
    let mut r = rng(10);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.sk.encrypt(&pt, &mut r).expect("enc");
    let bytes = ct.to_bytes();
    assert_eq!(bytes.len(), ct.serialized_size());
    let back = Ciphertext::from_bytes(&bytes, &c.params).expect("load");
    assert!(back == ct && back.is_seeded());
    // N = 8192, 7 primes of 31 + 6 * 26 bits = 187 bits per coefficient
    let seeded = bytes.len();
    let full_ct = c.ev.mul_int(&ct, 1).expect("unseeded copy");
    // operations that leave c1 untouched keep the seed
    assert!(c.ev.add_scalar(&ct, 0.5).expect("add").is_seeded());
    assert!(!full_ct.is_seeded());
    let full = full_ct.to_bytes().len();
    // SEAL 4.1 writes 2 * 7 * 8192 * 8 = 917504 bytes uncompressed
    let seal_full = 2 * 7 * 8192 * 8;
    println!("fresh sk ciphertext: seeded {seeded} B, unseeded {full} B, SEAL full {seal_full} B");
    assert!(
        seeded <= seal_full / 2,
        "seeded ciphertext must be at most half of SEAL's"
    );
    assert!(seeded < full / 2 + 64);
    let got = c.enc.decode(&c.sk.decrypt(&back).expect("d")).expect("d");
    assert!(precision(&x, &got).0 > 17.0);
    // dropping the level keeps the seed and shrinks the message
    let low = c.ev.drop_to_level(&ct, 1).expect("drop");
    let low_bytes = low.to_bytes();
    println!("seeded ciphertext at level 1: {} B", low_bytes.len());
    let low_back = Ciphertext::from_bytes(&low_bytes, &c.params).expect("load");
    assert!(low_back == low && low_back.is_seeded());
    let full_back = Ciphertext::from_bytes(&full_ct.to_bytes(), &c.params).expect("load");
    assert!(full_back == full_ct);
}

#[test]
fn key_roundtrips_and_sizes() {
    let c = ctx();
    let mut r = rng(11);
    let pkb = c.pk.to_bytes();
    let rlkb = c.rlk.to_bytes();
    let gkb = c.gk.to_bytes();
    let skb = c.sk.to_bytes();
    println!(
        "public key {} B, relin key {} B, galois keys {} B ({} keys)",
        pkb.len(),
        rlkb.len(),
        gkb.len(),
        c.gk.galois_elements().len()
    );
    for s in c.gk.key_sizes() {
        println!(
            "  galois key step {:?} (g = {}): {} B",
            s.step, s.galois_element, s.bytes
        );
    }
    let total: usize = c.gk.key_sizes().iter().map(|s| s.bytes).sum();
    assert_eq!(total + 6 + 8 + 4, gkb.len());
    // Galois keys can travel one step at a time and be merged again
    let mut merged = GaloisKeys::from_bytes(
        &c.gk.subset(&[5], false).expect("subset").to_bytes(),
        &c.params,
    )
    .expect("one key");
    let part = c.gk.subset(&[-3], true).expect("subset");
    assert_eq!(part.galois_elements().len(), 2);
    merged
        .merge(GaloisKeys::from_bytes(&part.to_bytes(), &c.params).expect("two keys"))
        .expect("merge");
    assert!(merged.has_rotation(5) && merged.has_rotation(-3) && merged.has_conjugation());
    assert!(!merged.has_rotation(1));
    assert!(matches!(
        c.gk.subset(&[3], false),
        Err(Error::MissingGaloisKey(_))
    ));
    let pk = PublicKey::from_bytes(&pkb, &c.params).expect("pk");
    let rlk = RelinKey::from_bytes(&rlkb, &c.params).expect("rlk");
    let gk = GaloisKeys::from_bytes(&gkb, &c.params).expect("gk");
    let sk = SecretKey::from_bytes(&skb, &c.params).expect("sk");
    assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
    assert_eq!(gk.galois_elements(), c.gk.galois_elements());
    // the loaded keys compute exactly what the originals compute
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.sk.encrypt(&pt, &mut r).expect("enc");
    assert!(
        c.ev.mul_relin(&ct, &ct, &rlk).expect("m") == c.ev.mul_relin(&ct, &ct, &c.rlk).expect("m")
    );
    assert!(c.ev.rotate(&ct, 5, &gk).expect("r") == c.ev.rotate(&ct, 5, &c.gk).expect("r"));
    assert!(c.ev.rotate(&ct, 5, &merged).expect("r") == c.ev.rotate(&ct, 5, &c.gk).expect("r"));
    assert!(c.ev.conjugate(&ct, &gk).expect("r") == c.ev.conjugate(&ct, &c.gk).expect("r"));
    let ct2 = pk.encrypt(&pt, &mut r).expect("enc");
    let got = c.enc.decode(&sk.decrypt(&ct2).expect("d")).expect("d");
    assert!(precision(&x, &got).0 > 14.5);
    assert!(sk.decrypt(&ct).expect("d").scale() == ct.scale());
}

#[test]
fn parameters_roundtrip() {
    for p in Preset::ALL {
        let params = Parameters::preset(p).expect("p");
        let back = Parameters::from_bytes(&params.to_bytes(), false).expect("load");
        assert!(back.same_as(&params));
        assert_eq!(back.describe(), params.describe());
    }
    let insecure = Parameters::new(ParametersLiteral {
        name: "test".into(),
        log_n: 10,
        log_q: vec![40, 30],
        log_p: 40,
        log_scale: 30,
        insecure: true,
    })
    .expect("insecure for tests");
    let bytes = insecure.to_bytes();
    assert!(matches!(
        Parameters::from_bytes(&bytes, false),
        Err(Error::InsecureParameters(_))
    ));
    assert!(Parameters::from_bytes(&bytes, true).is_ok());
}

#[test]
fn parameters_with_long_multibyte_name_roundtrip() {
    // 200 two-byte characters: the 255-byte cut used to split a character,
    // giving bytes that from_bytes refused as invalid UTF-8
    let mut lit = Preset::Small4096.literal();
    lit.name = "\u{e9}".repeat(200);
    let params = Parameters::new(lit).expect("params");
    let back = Parameters::from_bytes(&params.to_bytes(), false).expect("load");
    assert!(back.same_as(&params));
    assert_eq!(back.name(), "\u{e9}".repeat(127));
}

#[test]
fn secret_key_bytes_written_without_reallocation() {
    let params = Parameters::preset(Preset::Small4096).expect("params");
    let sk = SecretKey::generate(&params, &mut rng(3));
    let bytes = sk.to_bytes();
    // a reallocation while writing would leave a copy of the key behind
    assert!(bytes.capacity() <= bytes.len() + 1, "{}", bytes.capacity());
    let back = SecretKey::from_bytes(&bytes, &params).expect("load");
    assert_eq!(*back.to_bytes(), *bytes);
}

/// Runs every deserializer on a family of damaged inputs; none may panic
/// and all must fail.
fn assert_rejects<T: std::fmt::Debug>(good: &[u8], load: impl Fn(&[u8]) -> Result<T, Error>) {
    assert!(load(good).is_ok());
    // truncations
    let mut cuts: Vec<usize> = (0..good.len().min(80)).collect();
    cuts.extend([good.len() / 2, good.len() - 1]);
    for cut in cuts {
        assert!(load(&good[..cut]).is_err(), "truncated at {cut} accepted");
    }
    // trailing garbage
    let mut v = good.to_vec();
    v.push(0);
    assert!(load(&v).is_err(), "trailing byte accepted");
    // wrong magic / version / kind
    for (pos, val) in [(0usize, b'X'), (4, FORMAT_VERSION + 1), (5, 0x7f)] {
        let mut v = good.to_vec();
        v[pos] = val;
        assert!(
            matches!(load(&v), Err(Error::Deserialize(_))),
            "corrupt header byte {pos}"
        );
    }
    // corrupt bytes everywhere in the header and body: error or a valid object, no panic
    let step = (good.len() / 200).max(1);
    for pos in (0..good.len()).step_by(step) {
        let mut v = good.to_vec();
        v[pos] ^= 0xff;
        let _ = load(&v);
    }
    assert_eq!(&good[..4], &MAGIC);
}

#[test]
fn deserializers_reject_bad_input() {
    let c = ctx();
    let mut r = rng(12);
    let p = &c.params;
    let pt = c
        .enc
        .encode_real(&[1.0, 2.0], 2, p.default_scale())
        .expect("e");
    let seeded = c.sk.encrypt(&pt, &mut r).expect("enc");
    let full = c.pk.encrypt(&pt, &mut r).expect("enc");
    assert_rejects(&seeded.to_bytes(), |b| Ciphertext::from_bytes(b, p));
    assert_rejects(&full.to_bytes(), |b| Ciphertext::from_bytes(b, p));
    assert_rejects(&c.pk.to_bytes(), |b| PublicKey::from_bytes(b, p));
    assert_rejects(&c.rlk.to_bytes(), |b| RelinKey::from_bytes(b, p));
    assert_rejects(&c.sk.to_bytes(), |b| SecretKey::from_bytes(b, p));
    let gk_small = GaloisKeys::generate(&c.sk, &[1, 3], false, &mut r);
    assert_rejects(&gk_small.to_bytes(), |b| GaloisKeys::from_bytes(b, p));
    assert_rejects(&p.to_bytes(), |b| Parameters::from_bytes(b, false));

    // out-of-range coefficient: all-ones bits in the first packed value of c0
    let mut v = full.to_bytes();
    let body = 4 + 2 + 8 + 1 + 8 + 1;
    for b in &mut v[body..body + 8] {
        *b = 0xff;
    }
    assert!(matches!(
        Ciphertext::from_bytes(&v, p),
        Err(Error::Deserialize(_))
    ));
    // level above the maximum
    let mut v = full.to_bytes();
    v[14] = 9;
    assert!(matches!(
        Ciphertext::from_bytes(&v, p),
        Err(Error::Deserialize(_))
    ));
    // corrupted Galois key count (huge): refused before allocating
    let mut v = gk_small.to_bytes();
    v[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        GaloisKeys::from_bytes(&v, p),
        Err(Error::Deserialize(_))
    ));
    let mut v = gk_small.to_bytes();
    v[14..18].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(
        GaloisKeys::from_bytes(&v, p),
        Err(Error::Deserialize(_))
    ));
    // keys out of increasing order of their element, or one element twice: the bytes would load
    // and re-encode differently
    let good = gk_small.to_bytes();
    let (header, keys) = good.split_at(18);
    let (first, second) = keys.split_at(keys.len() / 2);
    for v in [
        [header, second, first].concat(),
        [header, first, first].concat(),
    ] {
        assert!(matches!(
            GaloisKeys::from_bytes(&v, p),
            Err(Error::Deserialize(_))
        ));
    }
    // invalid Galois element
    let mut v = gk_small.to_bytes();
    v[18..26].copy_from_slice(&2u64.to_le_bytes());
    assert!(matches!(
        GaloisKeys::from_bytes(&v, p),
        Err(Error::Deserialize(_))
    ));

    // objects of another parameter set
    let other = Parameters::preset(Preset::Small4096).expect("p");
    let sk2 = SecretKey::generate(&other, &mut r);
    let pt2 = unseen_ckks::Encoder::new(&other)
        .encode_real(&[1.0], 1, other.default_scale())
        .expect("e");
    let ct2 = sk2.encrypt(&pt2, &mut r).expect("enc");
    assert!(matches!(
        Ciphertext::from_bytes(&ct2.to_bytes(), p),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        SecretKey::from_bytes(&sk2.to_bytes(), p),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        PublicKey::from_bytes(&PublicKey::generate(&sk2, &mut r).to_bytes(), p),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        RelinKey::from_bytes(&RelinKey::generate(&sk2, &mut r).to_bytes(), p),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        GaloisKeys::from_bytes(
            &GaloisKeys::generate(&sk2, &[1], false, &mut r).to_bytes(),
            p
        ),
        Err(Error::ParametersMismatch)
    ));
    // a ciphertext read as a key and vice versa
    assert!(PublicKey::from_bytes(&seeded.to_bytes(), p).is_err());
    assert!(Ciphertext::from_bytes(&c.pk.to_bytes(), p).is_err());
    assert!(Ciphertext::from_bytes(&[], p).is_err());
}

fn pipeline(seed: u64) -> Vec<u8> {
    let c = ctx();
    let ev = Evaluator::new(&c.params);
    let mut r = rng(seed);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let a = c.pk.encrypt(&pt, &mut r).expect("enc");
    let b = c.sk.encrypt(&pt, &mut r).expect("enc");
    let m = ev
        .rescale(&ev.mul_relin(&a, &b, &c.rlk).expect("m"))
        .expect("r");
    let rots = ev.rotate_hoisted(&m, &[1, -3, 100], &c.gk).expect("rot");
    let s = ev.add(&rots[0], &rots[1]).expect("add");
    let s = ev
        .add(&s, &ev.conjugate(&rots[2], &c.gk).expect("conj"))
        .expect("add");
    let s = ev.inner_sum(&s, 1, 16, &c.gk).expect("sum");
    let mut out = s.to_bytes();
    out.extend(
        c.sk.decrypt(&s)
            .map(|p| p.scale().to_bits().to_le_bytes())
            .expect("d"),
    );
    out.extend(b.to_bytes());
    out
}

#[test]
fn single_and_multi_thread_results_identical() {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .expect("pool");
    let a = one.install(|| pipeline(77));
    let b = four.install(|| pipeline(77));
    assert!(a == b, "results differ between 1 and 4 threads");
    // keys too
    let params = Parameters::preset(Preset::Small4096).expect("p");
    let keys = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let mut r = rng(5);
            let sk = SecretKey::generate(&params, &mut r);
            let mut v = sk.to_bytes().to_vec();
            v.extend(PublicKey::generate(&sk, &mut r).to_bytes());
            v.extend(RelinKey::generate(&sk, &mut r).to_bytes());
            v.extend(GaloisKeys::generate(&sk, &[1, -2], true, &mut r).to_bytes());
            v
        })
    };
    assert!(keys(1) == keys(3));
}

#[test]
fn ciphertext_lists_round_trip_and_refuse_bad_input() {
    use unseen_ckks::serialize::{
        ciphertexts_from_bytes, ciphertexts_to_bytes, is_ciphertext_list, CiphertextList,
        CiphertextListWriter,
    };
    let c = ctx();
    let mut r = rng(31);
    let cts: Vec<_> = (0..3)
        .map(|i| {
            let pt = c
                .enc
                .encode_real(&[i as f64], 2, c.params.default_scale())
                .expect("encode");
            c.sk.encrypt(&pt, &mut r).expect("encrypt")
        })
        .collect();
    let bytes = ciphertexts_to_bytes(&cts);
    assert!(is_ciphertext_list(&bytes));
    assert!(!is_ciphertext_list(&cts[0].to_bytes()));
    let back = ciphertexts_from_bytes(&bytes, &c.params, 3).expect("round trip");
    assert_eq!(back, cts);
    // written and read a part at a time: the same bytes, the same ciphertexts
    let mut w = CiphertextListWriter::new();
    for ct in &cts {
        w.push(ct);
    }
    assert_eq!(w.finish(), bytes);
    assert_eq!(
        CiphertextListWriter::new().finish(),
        ciphertexts_to_bytes(&[])
    );
    let list = CiphertextList::parse(&bytes, 3).expect("framing");
    assert_eq!(list.len(), 3);
    let parts = [list.read(0..2, &c.params), list.read(2..3, &c.params)];
    let parts: Vec<_> = parts.into_iter().map(|p| p.expect("part")).collect();
    assert_eq!(parts.concat(), cts);
    assert!(list.read(2..4, &c.params).is_err());
    assert!(matches!(
        ciphertexts_from_bytes(&bytes, &c.params, 2),
        Err(Error::Deserialize(_))
    ));
    for cut in [0, 5, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            ciphertexts_from_bytes(&bytes[..cut], &c.params, 3).is_err(),
            "cut {cut}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ciphertexts_from_bytes(&trailing, &c.params, 3).is_err());
    // a huge count is refused before anything is allocated
    let mut huge = bytes;
    huge[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(ciphertexts_from_bytes(&huge, &c.params, usize::MAX).is_err());
}
