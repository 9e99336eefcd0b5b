//! Key-switching keys made for a level below the top: they work there and
//! below, are refused above, and serialize smaller.

mod common;

use common::*;
use unseen_ckks::{
    Ciphertext, Complex64, Encoder, Error, Evaluator, GaloisKeys, KeyDigits, Parameters, Preset,
    RelinKey, SecretKey,
};

/// Root mean square of the slot differences.
fn rms(got: &[Complex64], want: &[Complex64]) -> f64 {
    let sum: f64 = got.iter().zip(want).map(|(a, b)| (a - b).norm_sqr()).sum();
    (sum / want.len() as f64).sqrt()
}

/// A preset's parameters, a secret key made from a seeded generator (returned to go on
/// drawing from), an encoder and an evaluator.
fn keyed(
    preset: Preset,
    seed: u64,
) -> (
    std::sync::Arc<Parameters>,
    rand_chacha::ChaCha20Rng,
    SecretKey,
    Encoder,
    Evaluator,
) {
    let params = Parameters::preset(preset).expect("preset");
    let mut r = rng(seed);
    let sk = SecretKey::generate(&params, &mut r);
    let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
    (params, r, sk, enc, ev)
}

#[test]
fn level_limited_keys_switch_below_their_level_only() {
    let c = ctx();
    let mut r = rng(11);
    let top = c.params.max_level();
    let low = top - 3;
    let gk = GaloisKeys::generate_for_levels(&c.sk, &[(3, low), (5, top), (3, 1)], false, &mut r);
    // a step listed twice keeps the higher level
    assert_eq!(gk.rotation_level(3), Some(low));
    assert_eq!(gk.rotation_level(5), Some(top));
    assert_eq!(gk.rotation_level(7), None);
    let rlk = RelinKey::generate_for_level(&c.sk, low, &mut r);
    assert_eq!(rlk.level(), low);

    let slots = c.params.slots();
    let x = random_complex(&mut r, slots, 1.0);
    let scale = c.params.default_scale();
    let high =
        c.sk.encrypt(&c.enc.encode(&x, top, scale).expect("encode"), &mut r)
            .expect("encrypt");
    let at_low = c.ev.drop_to_level(&high, low).expect("drop");

    // below or at the key's level: exact rotation
    let rotated = c.ev.rotate(&at_low, 3, &gk).expect("rotate at low");
    let got = c
        .enc
        .decode(&c.sk.decrypt(&rotated).expect("decrypt"))
        .expect("decode");
    let expected: Vec<_> = (0..slots).map(|j| x[(j + 3) % slots]).collect();
    let (mean, _) = report("rotate with a level-limited key", &expected, &got);
    assert!(mean > 12.5, "mean precision {mean}");
    let hoisted =
        c.ev.rotate_hoisted(&at_low, &[3, 5], &gk)
            .expect("hoisted at low");
    assert_eq!(hoisted[0], rotated);

    let sq = c.ev.square_relin(&at_low, &rlk).expect("relin at low");
    let got = c
        .enc
        .decode(
            &c.sk
                .decrypt(&c.ev.rescale(&sq).expect("rescale"))
                .expect("d"),
        )
        .expect("decode");
    let expected: Vec<_> = x.iter().map(|v| v * v).collect();
    let (mean, _) = report("square with a level-limited relin key", &expected, &got);
    assert!(mean > 13.0, "mean precision {mean}");

    // above the key's level: an error, not garbage
    assert!(matches!(
        c.ev.rotate(&high, 3, &gk),
        Err(Error::LevelTooLow(_))
    ));
    assert!(matches!(
        c.ev.rotate_hoisted(&high, &[5, 3], &gk),
        Err(Error::LevelTooLow(_))
    ));
    assert!(matches!(
        c.ev.square_relin(&high, &rlk),
        Err(Error::LevelTooLow(_))
    ));
    assert!(c.ev.rotate(&high, 5, &gk).is_ok());
}

#[test]
fn level_limited_keys_serialize_smaller_and_round_trip() {
    let c = ctx();
    let mut r = rng(12);
    let top = c.params.max_level();
    let levels = [(1, top), (2, 2), (4, 0)];
    let bits = |p: u64| 64 - p.leading_zeros() as usize;
    let q = c.params.data_primes();
    let p = bits(c.params.special_prime());
    let data_bits = |level: usize| q[..=level].iter().map(|&x| bits(x)).sum::<usize>();
    let n = c.params.n();
    // 31 + 6 x 26-bit data primes, a 31-bit P: one digit per data prime over P; paired, at
    // level 2 the spare q_3 joins P (57 bits), which holds q_0 q_1 (57 bits) in one digit and
    // q_2 in another (at the top level and at level 0 the layouts are the same)
    for digits in [KeyDigits::PerPrime, KeyDigits::Paired] {
        let gk = GaloisKeys::generate_with(&c.sk, &levels, false, digits, &mut r, &mut |_, _| {});
        assert!(gk.digits_are(digits));
        for s in &gk.key_sizes() {
            let (count, special) = match (s.level, digits) {
                (2, KeyDigits::Paired) => (2, bits(q[3]) + p),
                (l, _) => (l + 1, p),
            };
            // element, seed, level and special-prime count bytes, then the digits over the
            // data primes and the special ones
            let expected = 8 + 32 + 2 + count * (data_bits(s.level) + special) * n / 8;
            assert_eq!(s.bytes, expected, "{digits:?} key for step {:?}", s.step);
        }
        let back = GaloisKeys::from_bytes(&gk.to_bytes(), &c.params).expect("round trip");
        assert!(back.digits_are(digits));
        assert_eq!(
            back.digits_are(KeyDigits::PerPrime),
            digits == KeyDigits::PerPrime
        );
    }
    let gk = GaloisKeys::generate_for_levels(&c.sk, &levels, false, &mut r);
    let sizes = gk.key_sizes();
    let bytes = gk.to_bytes();
    assert_eq!(
        bytes.len(),
        4 + 1 + 1 + 8 + 4 + sizes.iter().map(|s| s.bytes).sum::<usize>()
    );
    let back = GaloisKeys::from_bytes(&bytes, &c.params).expect("round trip");
    assert_eq!(back.rotation_level(2), Some(2));
    assert_eq!(back.rotation_level(4), Some(0));
    assert_eq!(back.to_bytes(), bytes);

    let rlk = RelinKey::generate_for_level(&c.sk, 2, &mut r);
    let rb = rlk.to_bytes();
    let rlk2 = RelinKey::from_bytes(&rb, &c.params).expect("relin round trip");
    assert_eq!(rlk2.level(), 2);
    assert!(rb.len() < c.rlk.to_bytes().len() / 3);

    // a level byte above the top level is refused
    let mut bad = rb.clone();
    bad[4 + 1 + 1 + 8 + 32] = (top + 1) as u8;
    assert!(matches!(
        RelinKey::from_bytes(&bad, &c.params),
        Err(Error::Deserialize(_))
    ));
    // a level byte claiming a bigger key than present is refused
    let mut bad = rb.clone();
    bad[4 + 1 + 1 + 8 + 32] = top as u8;
    assert!(matches!(
        RelinKey::from_bytes(&bad, &c.params),
        Err(Error::Deserialize(_))
    ));
    // so is a special modulus of no prime, or of more primes than the level leaves (at the
    // top, only P), or of another count than the digits present
    for (level, special) in [(2, 0), (2, 3), (top, 2), (2, 2)] {
        let mut bad = rb.clone();
        bad[4 + 1 + 1 + 8 + 32] = level as u8;
        bad[4 + 1 + 1 + 8 + 33] = special;
        assert!(
            matches!(
                RelinKey::from_bytes(&bad, &c.params),
                Err(Error::Deserialize(_))
            ),
            "level {level}, {special} special primes"
        );
    }
}

/// Below the top level a key's digits hold two data primes over a special modulus of a spare
/// data prime and P: its key-switching noise stays where one prime per digit over P puts it.
/// Measured as the rotation's own error (the decrypted rotation against the rotated
/// decryption, which cancels the encryption noise), against a top-level key's at the same
/// level and scale (root mean square over the slots: 1.18e-4 for both at every level of the
/// reference preset, where the worst slot varies by a third from one key to another), on the
/// reference preset (primes below 2^31, held in 32-bit words) and on one of wider primes.
#[test]
fn grouped_digits_switch_with_the_noise_of_one_prime_digits() {
    for preset in [Preset::Cnn8192, Preset::Precise8192] {
        let (params, mut r, sk, enc, ev) = keyed(preset, 13);
        let top = params.max_level();
        let slots = params.slots();
        let x = random_complex(&mut r, slots, 1.0);
        let scale = params.default_scale();
        let high = sk
            .encrypt(&enc.encode(&x, top, scale).expect("encode"), &mut r)
            .expect("encrypt");
        let decrypted = |ct: &Ciphertext| {
            enc.decode(&sk.decrypt(ct).expect("decrypt"))
                .expect("decode")
        };
        let error = |ct: &Ciphertext, gk: &GaloisKeys| {
            let before = decrypted(ct);
            let after = decrypted(&ev.rotate(ct, 2, gk).expect("rotate"));
            (0..slots)
                .map(|j| (after[j] - before[(j + 2) % slots]).norm_sqr())
                .sum::<f64>()
                .sqrt()
                / (slots as f64).sqrt()
        };
        let reference = GaloisKeys::generate(&sk, &[2], false, &mut r);
        for level in (0..top).rev() {
            let at = ev.drop_to_level(&high, level).expect("drop");
            let grouped = GaloisKeys::generate_with(
                &sk,
                &[(2, level)],
                false,
                KeyDigits::Paired,
                &mut r,
                &mut |_, _| {},
            );
            let (mine, theirs) = (error(&at, &grouped), error(&at, &reference));
            println!("{preset:?} level {level}: key-switching error {mine:.2e} (top-level key {theirs:.2e})");
            assert!(
                mine <= 1.1 * theirs,
                "{preset:?} level {level}: {mine:.2e} against {theirs:.2e}"
            );
        }
    }
}

/// A sum of rotations with keys of either layout, below the top level (paired keys divide by a
/// special modulus of two primes), on primes below and above 2^31: one division for the whole
/// sum gives no more error than a division per rotation (the error measured against the
/// rotated decryptions, which cancels the encryption noise), and with one rotated term the
/// same bits as that rotation.
#[test]
fn sums_of_rotations_divide_once_in_either_layout() {
    for preset in [Preset::Cnn8192, Preset::Precise8192] {
        let (params, mut r, sk, enc, ev) = keyed(preset, 17);
        let slots = params.slots();
        let scale = params.default_scale();
        let steps = [0i64, 1, 2, 5];
        let decrypted = |ct: &Ciphertext| {
            enc.decode(&sk.decrypt(ct).expect("decrypt"))
                .expect("decode")
        };
        for level in [params.max_level() - 1, 1] {
            let cts: Vec<Ciphertext> = steps
                .iter()
                .map(|_| {
                    let x = random_complex(&mut r, slots, 1.0);
                    sk.encrypt(&enc.encode(&x, level, scale).expect("encode"), &mut r)
                        .expect("encrypt")
                })
                .collect();
            // what the rotations should give, from the inputs' decryptions
            let before: Vec<Vec<Complex64>> = cts.iter().map(&decrypted).collect();
            let want: Vec<Complex64> = (0..slots)
                .map(|j| {
                    before
                        .iter()
                        .zip(steps)
                        .map(|(v, k)| v[(j + k as usize) % slots])
                        .sum()
                })
                .collect();
            let error = |ct: &Ciphertext| rms(&decrypted(ct), &want);
            let with_levels: Vec<(i64, usize)> = steps[1..].iter().map(|&k| (k, level)).collect();
            for digits in [KeyDigits::PerPrime, KeyDigits::Paired] {
                let gk = GaloisKeys::generate_with(
                    &sk,
                    &with_levels,
                    false,
                    digits,
                    &mut r,
                    &mut |_, _| {},
                );
                let terms: Vec<(&Ciphertext, i64)> = cts.iter().zip(steps).collect();
                let summed = ev.sum_rotations(&terms, &gk).expect("sum");
                let mut added = cts[0].clone();
                for (ct, k) in &terms[1..] {
                    ev.add_assign(&mut added, &ev.rotate(ct, *k, &gk).expect("rotate"))
                        .expect("add");
                }
                let (mine, theirs) = (error(&summed), error(&added));
                println!("{preset:?} level {level} {digits:?}: {mine:.2e} summed, {theirs:.2e} rotated and added");
                assert!(
                    mine <= 1.1 * theirs,
                    "{preset:?} level {level} {digits:?}: {mine:.2e} against {theirs:.2e}"
                );
                let one = ev.sum_rotations(&terms[2..3], &gk).expect("one");
                assert!(one == ev.rotate(&cts[2], 2, &gk).expect("rotate"));
            }
        }
    }
}

/// Rotations of one ciphertext added to it, hoisted (one decomposition and one division by the
/// special modulus per key form), with keys of either layout and of both layouts at once, below
/// and at the top level, on primes below and above 2^31: the same bits as the sum of rotations that
/// switches each term on its own (both sums are exact until the one division), no more error
/// than rotating and adding (against the rotated decryptions), one step the same bits as
/// rotating and adding, and a missing key refused.
#[test]
fn hoisted_rotations_added_equal_the_sum_of_their_rotations() {
    for preset in [Preset::Cnn8192, Preset::Precise8192] {
        let (params, mut r, sk, enc, ev) = keyed(preset, 23);
        let slots = params.slots();
        let scale = params.default_scale();
        let decrypted = |ct: &Ciphertext| {
            enc.decode(&sk.decrypt(ct).expect("decrypt"))
                .expect("decode")
        };
        let steps = [64i64, 128, 192];
        for level in [params.max_level() - 1, 3, 1] {
            let x = random_complex(&mut r, slots, 1.0);
            let ct = sk
                .encrypt(&enc.encode(&x, level, scale).expect("encode"), &mut r)
                .expect("encrypt");
            let before = decrypted(&ct);
            let want: Vec<Complex64> = (0..slots)
                .map(|j| {
                    before[j]
                        + steps
                            .iter()
                            .map(|&k| before[(j + k as usize) % slots])
                            .sum::<Complex64>()
                })
                .collect();
            let error = |ct: &Ciphertext| rms(&decrypted(ct), &want);
            // one layout for all three keys, then the third key of the other layout (two
            // forms: one decomposition and one division each)
            let layouts = [
                [KeyDigits::PerPrime; 3],
                [KeyDigits::Paired; 3],
                [KeyDigits::Paired, KeyDigits::Paired, KeyDigits::PerPrime],
            ];
            for digits in layouts {
                let each: Vec<(i64, usize, KeyDigits)> = steps
                    .iter()
                    .zip(digits)
                    .map(|(&k, d)| (k, level, d))
                    .collect();
                let gk = GaloisKeys::generate_each(&sk, &each, false, &mut r, &mut |_, _| {});
                // one decomposition and division for all three only where their keys share
                // a form (at the top level the two layouts are the same key)
                let one_form =
                    digits.iter().all(|d| *d == digits[0]) || level == params.max_level();
                assert_eq!(ev.rotations_hoist_together(&ct, &steps, &gk), one_form);
                assert!(ev.rotations_hoist_together(&ct, &[0, steps[0]], &gk));
                assert!(!ev.rotations_hoist_together(&ct, &[steps[0], 5], &gk));
                let hoisted = ev.add_rotations_hoisted(&ct, &steps, &gk).expect("hoisted");
                let terms: Vec<(&Ciphertext, i64)> = std::iter::once((&ct, 0))
                    .chain(steps.iter().map(|&k| (&ct, k)))
                    .collect();
                let summed = ev.sum_rotations(&terms, &gk).expect("sum");
                assert!(
                    hoisted == summed,
                    "{preset:?} level {level} {digits:?}: hoisted and summed differ"
                );
                let mut added = ct.clone();
                for &k in &steps {
                    ev.add_assign(&mut added, &ev.rotate(&ct, k, &gk).expect("rotate"))
                        .expect("add");
                }
                let (mine, theirs) = (error(&hoisted), error(&added));
                println!("{preset:?} level {level} {digits:?}: {mine:.2e} hoisted, {theirs:.2e} rotated and added");
                assert!(
                    mine <= 1.1 * theirs,
                    "{preset:?} level {level} {digits:?}: {mine:.2e} against {theirs:.2e}"
                );
                // one step: rotating and adding, bit for bit; a step of 0 adds the ciphertext
                let one = ev
                    .add_rotations_hoisted(&ct, &steps[1..2], &gk)
                    .expect("one");
                let mut want_one = ev.rotate(&ct, steps[1], &gk).expect("rotate");
                ev.add_assign(&mut want_one, &ct).expect("add");
                assert!(one == want_one, "{preset:?} level {level}: one step");
                let with_zero = ev
                    .add_rotations_hoisted(&ct, &[0, steps[0], steps[2]], &gk)
                    .expect("with zero");
                let terms = [(&ct, 0), (&ct, 0), (&ct, steps[0]), (&ct, steps[2])];
                assert!(with_zero == ev.sum_rotations(&terms, &gk).expect("sum"));
                assert!(matches!(
                    ev.add_rotations_hoisted(&ct, &[steps[0], 5], &gk),
                    Err(Error::MissingGaloisKey(_))
                ));
            }
        }
    }
}
