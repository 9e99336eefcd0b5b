//! Property tests: every operation against exact rational arithmetic.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rug::{Integer, Rational};
use unseen_paillier::{
    Decoded, EncodedNumber, EncryptedNumber, Error, PrivateKey, PublicKey, Randomness, Scalar,
};

fn key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(2024);
        PrivateKey::generate_insecure(1024, &mut rng).expect("keygen")
    })
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

fn exact(x: &Scalar) -> Rational {
    match x {
        Scalar::Int(i) => Rational::from(i),
        Scalar::Float(f) => Rational::from_f64(*f).expect("finite"),
    }
}

fn enc(x: &Scalar, mode: Randomness) -> EncryptedNumber {
    EncryptedNumber::encrypt(key().public_key(), x, mode, &mut rng()).expect("encrypt")
}

fn dec_exact(x: &EncryptedNumber) -> Rational {
    let pk = key().public_key();
    key()
        .decrypt_encoded(x)
        .expect("decrypt")
        .to_rational(pk)
        .expect("in range")
}

/// Finite floats over the whole range: random bit patterns, plus special values.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |f| f.is_finite()),
        -1e6f64..1e6,
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(f64::MAX),
        Just(-f64::MAX),
    ]
}

/// Integers up to well beyond 64 bits, both signs.
fn any_int() -> impl Strategy<Value = Integer> {
    prop_oneof![
        any::<i64>().prop_map(Integer::from),
        (any::<u128>(), any::<u128>(), any::<bool>()).prop_map(|(a, b, neg)| {
            let v: Integer = (Integer::from(a) << 128u32) + Integer::from(b);
            if neg {
                -v
            } else {
                v
            }
        }),
    ]
}

fn any_scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        any_int().prop_map(Scalar::Int),
        any_float().prop_map(Scalar::Float)
    ]
}

/// Scalars small enough that products of two stay far from the overflow band.
fn moderate_scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        any::<i64>().prop_map(|i| Scalar::Int(Integer::from(i))),
        (-1e12f64..1e12).prop_map(Scalar::Float),
        (-1.0f64..1.0).prop_map(Scalar::Float),
        Just(Scalar::Float(0.0)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn float_roundtrip_is_exact(f in any_float(), standard in any::<bool>()) {
        let mode = if standard { Randomness::Standard } else { Randomness::FixedBase };
        let x = enc(&Scalar::Float(f), mode);
        let d = key().decrypt(&x).expect("decrypt");
        match d {
            Decoded::Float(g) => prop_assert!(g == f, "{g:e} != {f:e}"),
            // Floats of large magnitude get a non-negative exponent, like in phe.
            Decoded::Int(i) => prop_assert_eq!(Rational::from(i), exact(&Scalar::Float(f))),
        }
    }

    #[test]
    fn int_roundtrip_is_exact(i in any_int()) {
        let x = enc(&Scalar::Int(i.clone()), Randomness::FixedBase);
        prop_assert_eq!(key().decrypt(&x).expect("decrypt"), Decoded::Int(i));
    }

    #[test]
    fn private_key_encryption_decrypts(s in any_scalar(), standard in any::<bool>()) {
        let mode = if standard { Randomness::Standard } else { Randomness::FixedBase };
        let x = EncryptedNumber::encrypt_with_private_key(key(), &s, mode, &mut rng()).expect("encrypt");
        prop_assert_eq!(dec_exact(&x), exact(&s));
    }

    #[test]
    fn add_matches_exact(a in moderate_scalar(), b in moderate_scalar()) {
        let sum = enc(&a, Randomness::FixedBase).add(&enc(&b, Randomness::Standard)).expect("add");
        prop_assert_eq!(dec_exact(&sum), exact(&a) + exact(&b));
        let diff = enc(&a, Randomness::FixedBase).sub(&enc(&b, Randomness::FixedBase)).expect("sub");
        prop_assert_eq!(dec_exact(&diff), exact(&a) - exact(&b));
    }

    #[test]
    fn plaintext_ops_match_exact(a in moderate_scalar(), b in moderate_scalar()) {
        let x = enc(&a, Randomness::FixedBase);
        prop_assert_eq!(dec_exact(&x.add_scalar(&b).expect("add")), exact(&a) + exact(&b));
        prop_assert_eq!(dec_exact(&x.mul_scalar(&b).expect("mul")), exact(&a) * exact(&b));
        prop_assert_eq!(dec_exact(&x.neg().expect("neg")), -exact(&a));
        let mut y = x.clone();
        y.rerandomize(Randomness::FixedBase, &mut rng());
        prop_assert_ne!(y.ciphertext(), x.ciphertext());
        prop_assert_eq!(dec_exact(&y), exact(&a));
    }

    #[test]
    fn weighted_sum_matches_exact_and_phe_composition(
        xs in prop::collection::vec(moderate_scalar(), 1..14),
        ws in prop::collection::vec((-1e6f64..1e6).prop_map(Scalar::Float), 14),
        bias in moderate_scalar(),
    ) {
        let pk = key().public_key();
        let cts: Vec<_> = xs.iter().map(|x| enc(x, Randomness::FixedBase)).collect();
        let weights: Vec<_> = ws[..xs.len()].iter().map(|w| EncodedNumber::encode(pk, w, None, None).expect("encode")).collect();
        let fast = EncryptedNumber::weighted_sum(&cts, &weights, Some(&bias)).expect("weighted sum");
        // phe's way: products one by one, then sum, then the bias as a scalar.
        let mut slow = cts[0].mul_encoded(&weights[0]).expect("mul");
        for (c, w) in cts.iter().zip(&weights).skip(1) {
            slow = slow.add(&c.mul_encoded(w).expect("mul")).expect("add");
        }
        slow = slow.add_scalar(&bias).expect("bias");
        let mut expected = exact(&bias);
        for (x, w) in xs.iter().zip(&ws) {
            expected += exact(x) * exact(w);
        }
        prop_assert_eq!(fast.exponent(), slow.exponent());
        prop_assert_eq!(dec_exact(&fast), expected.clone());
        prop_assert_eq!(dec_exact(&slow), expected);
        prop_assert_eq!(key().decrypt(&fast).expect("decode"), key().decrypt(&slow).expect("decode"));
    }
}

#[test]
fn encoding_overflow_is_an_error() {
    let pk = key().public_key();
    let too_big: Integer = Integer::from(pk.max_int()) + 1u32;
    assert!(matches!(
        EncodedNumber::encode(pk, &Scalar::Int(too_big.clone()), None, None),
        Err(Error::EncodeOverflow { .. })
    ));
    assert!(matches!(
        EncodedNumber::encode(pk, &Scalar::Int(-too_big), None, None),
        Err(Error::EncodeOverflow { .. })
    ));
    assert!(EncodedNumber::encode(pk, &Scalar::Int(pk.max_int().clone()), None, None).is_ok());
    assert!(matches!(
        EncodedNumber::encode(pk, &Scalar::Float(f64::NAN), None, None),
        Err(Error::NotFinite(_))
    ));
    assert!(matches!(
        EncodedNumber::encode(pk, &Scalar::Float(f64::INFINITY), None, None),
        Err(Error::NotFinite(_))
    ));
    assert!(matches!(
        EncodedNumber::encode(pk, &Scalar::Float(1.0), Some(0.0), None),
        Err(Error::InvalidPrecision(_))
    ));
}

#[test]
fn homomorphic_overflow_is_detected_at_decryption() {
    let pk = key().public_key();
    let half: Integer = Integer::from(pk.max_int()) / 2u32 + 7u32;
    let x = enc(&Scalar::Int(half.clone()), Randomness::FixedBase);
    // 2 * (max_int/2 + 7) lands just above max_int, in the middle third: an overflow error.
    let y = x.mul_scalar(&Scalar::Int(Integer::from(2))).expect("mul");
    assert!(matches!(key().decrypt(&y), Err(Error::DecodeOverflow)));
}

#[test]
fn precision_and_max_exponent_follow_phe() {
    let pk = key().public_key();
    // phe: encode(0.1, precision=1e-3) -> exponent floor(log16(1e-3)) = -3, int_rep = round(0.1 * 4096) = 410
    let e = EncodedNumber::encode(pk, &Scalar::Float(0.1), Some(1e-3), None).expect("encode");
    assert_eq!((e.encoding.clone(), e.exponent), (Integer::from(410), -3));
    // phe: encode(15, max_exponent=-2) -> 15 * 256
    let e =
        EncodedNumber::encode(pk, &Scalar::Int(Integer::from(15)), None, Some(-2)).expect("encode");
    assert_eq!((e.encoding.clone(), e.exponent), (Integer::from(3840), -2));
    // phe: encode(-1.5) -> exponent floor((1 - 53) / 4) = -13, int_rep = -1.5 * 16^13 wrapped mod n
    let e = EncodedNumber::encode(pk, &Scalar::Float(-1.5), None, None).expect("encode");
    assert_eq!(e.exponent, -13);
    assert_eq!(e.encoding, pk.n() - (Integer::from(3) << 51));
}

#[test]
fn mismatched_keys_are_refused() {
    let mut r = ChaCha20Rng::seed_from_u64(9);
    let other = PrivateKey::generate_insecure(512, &mut r).expect("keygen");
    let a = enc(&Scalar::Int(Integer::from(1)), Randomness::FixedBase);
    let b = EncryptedNumber::encrypt(
        other.public_key(),
        &Scalar::Int(Integer::from(1)),
        Randomness::FixedBase,
        &mut r,
    )
    .expect("enc");
    assert!(matches!(a.add(&b), Err(Error::KeyMismatch)));
    assert!(matches!(other.decrypt(&a), Err(Error::KeyMismatch)));
}

#[test]
fn keygen_sizes_and_checks() {
    let mut r = ChaCha20Rng::seed_from_u64(3);
    for bits in [256u32, 512, 768] {
        let k = PrivateKey::generate_insecure(bits, &mut r).expect("keygen");
        assert_eq!(k.public_key().bits(), bits);
        assert_eq!(k.p().significant_bits(), bits / 2);
        assert_eq!(k.q().significant_bits(), bits / 2);
        assert!(k.p() < k.q());
    }
    assert!(matches!(
        PrivateKey::generate_with_rng(1024, &mut r),
        Err(Error::KeySize { .. })
    ));
    assert!(matches!(
        PrivateKey::generate_insecure(513, &mut r),
        Err(Error::KeySize { .. })
    ));
    // p * q must equal n.
    let k = key();
    let wrong =
        PrivateKey::with_public(k.public_key().clone(), k.p().clone() + 2u32, k.q().clone());
    assert!(matches!(wrong, Err(Error::InvalidKey(_))));
    // A modulus that is even or too small is refused.
    assert!(PublicKey::from_n(Integer::from(1) << 2048, 2048).is_err());
    assert!(PublicKey::from_n(k.public_key().n().clone(), 2048).is_err());
}

#[test]
fn invalid_ciphertexts_are_refused() {
    let pk: &Arc<PublicKey> = key().public_key();
    for c in [
        Integer::from(0),
        pk.n_square().clone(),
        pk.n().clone(),
        Integer::from(-5),
    ] {
        assert!(EncryptedNumber::new(pk.clone(), c, 0).is_err());
    }
    assert!(EncryptedNumber::new(pk.clone(), Integer::from(2), 1_000_000).is_err());
}
