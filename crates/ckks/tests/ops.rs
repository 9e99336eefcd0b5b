//! Precision and correctness of every operation against exact complex
//! arithmetic in f64.

mod common;

use common::*;
use unseen_ckks::{
    Complex64, Error, Evaluator, Flooding, GaloisKeys, Parameters, Preset, SecretKey,
};

fn rotl(v: &[Complex64], k: i64) -> Vec<Complex64> {
    let n = v.len() as i64;
    (0..n).map(|j| v[(j + k).rem_euclid(n) as usize]).collect()
}

#[test]
fn fresh_encryptions() {
    let c = ctx();
    let mut r = rng(1);
    let slots = c.params.slots();
    let x = random_complex(&mut r, slots, 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("encode");
    let ct_pk = c.pk.encrypt(&pt, &mut r).expect("pk");
    let ct_sk = c.sk.encrypt(&pt, &mut r).expect("sk");
    let (m1, w1) = report(
        "encrypt_pk",
        &x,
        &c.enc.decode(&c.sk.decrypt(&ct_pk).expect("d")).expect("d"),
    );
    let (m2, w2) = report(
        "encrypt_sk",
        &x,
        &c.enc.decode(&c.sk.decrypt(&ct_sk).expect("d")).expect("d"),
    );
    // pk: rounding of the division by P dominates (~2^-15.1 std per slot at scale 2^26)
    assert!(m1 > 14.5 && w1 > 11.5);
    // sk: only the fresh error (~2^-17.8 std per slot)
    assert!(m2 > 17.0 && w2 > 15.0);
    assert!(ct_sk.is_seeded() && !ct_pk.is_seeded());
}

#[test]
fn arithmetic_operations() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(2);
    let slots = c.params.slots();
    let level = c.params.max_level();
    let scale = c.params.default_scale();
    let x = random_complex(&mut r, slots, 1.0);
    let y = random_complex(&mut r, slots, 1.0);
    let enc = |v: &[Complex64]| c.enc.encode(v, level, scale).expect("encode");
    let (px, py) = (enc(&x), enc(&y));
    let cx = c.pk.encrypt(&px, &mut r).expect("enc");
    let cy = c.sk.encrypt(&py, &mut r).expect("enc");
    let dec = |ct: &unseen_ckks::Ciphertext| {
        c.enc
            .decode(&c.sk.decrypt(ct).expect("dec"))
            .expect("decode")
    };
    let map2 = |f: &dyn Fn(Complex64, Complex64) -> Complex64| -> Vec<Complex64> {
        x.iter().zip(&y).map(|(&a, &b)| f(a, b)).collect()
    };
    let check = |name: &str, exp: &[Complex64], ct: &unseen_ckks::Ciphertext, min_mean: f64| {
        let (mean, worst) = report(name, exp, &dec(ct));
        assert!(mean > min_mean, "{name}: mean precision {mean}");
        assert!(worst > min_mean - 4.0, "{name}: worst precision {worst}");
    };

    check(
        "add",
        &map2(&|a, b| a + b),
        &ev.add(&cx, &cy).expect("add"),
        14.5,
    );
    check(
        "sub",
        &map2(&|a, b| a - b),
        &ev.sub(&cx, &cy).expect("sub"),
        14.5,
    );
    check(
        "negate",
        &x.iter().map(|a| -a).collect::<Vec<_>>(),
        &ev.negate(&cx).expect("neg"),
        14.5,
    );
    check(
        "add_plain",
        &map2(&|a, b| a + b),
        &ev.add_plain(&cx, &py).expect("ap"),
        14.5,
    );
    check(
        "sub_plain",
        &map2(&|a, b| a - b),
        &ev.sub_plain(&cx, &py).expect("sp"),
        14.5,
    );
    check(
        "mul_int(3)",
        &x.iter().map(|a| a * 3.0).collect::<Vec<_>>(),
        &ev.mul_int(&cx, 3).expect("mi"),
        13.0,
    );
    check(
        "add_scalar(0.25)",
        &x.iter().map(|a| a + 0.25).collect::<Vec<_>>(),
        &ev.add_scalar(&cx, 0.25).expect("as"),
        14.5,
    );

    let mp = ev
        .rescale(&ev.mul_plain(&cx, &py).expect("mp"))
        .expect("rs");
    assert_eq!(mp.level(), level - 1);
    check("mul_plain+rescale", &map2(&|a, b| a * b), &mp, 14.0);

    let last = c.params.data_primes()[level] as f64;
    let ms = ev
        .rescale(&ev.mul_scalar(&cx, -0.7, last).expect("ms"))
        .expect("rs");
    assert!((ms.scale() - cx.scale()).abs() < 1e-6 * cx.scale());
    check(
        "mul_scalar+rescale",
        &x.iter().map(|a| a * -0.7).collect::<Vec<_>>(),
        &ms,
        14.0,
    );

    let mr = ev
        .rescale(&ev.mul_relin(&cx, &cy, &c.rlk).expect("mr"))
        .expect("rs");
    check("mul_relin+rescale", &map2(&|a, b| a * b), &mr, 13.5);
    let sq = ev
        .rescale(&ev.square_relin(&cx, &c.rlk).expect("sq"))
        .expect("rs");
    check(
        "square+rescale",
        &x.iter().map(|a| a * a).collect::<Vec<_>>(),
        &sq,
        13.5,
    );

    let dropped = ev.drop_to_level(&cx, 2).expect("drop");
    assert_eq!(dropped.level(), 2);
    check("drop_to_level", &x, &dropped, 14.5);
}

#[test]
fn depth_five_keeps_fifteen_bits() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(3);
    let slots = c.params.slots();
    let scale = c.params.default_scale();
    let x = random_real(&mut r, slots, 1.0);
    let mut expect = x.clone();
    // inputs encrypted by the client with the secret key (as in the CNN flow)
    let mut ct =
        c.sk.encrypt(
            &c.enc
                .encode_real(&x, c.params.max_level(), scale)
                .expect("e"),
            &mut r,
        )
        .expect("enc");
    // five rounds of: ct <- rescale(ct * fresh(y)) + plain(z), plus a rotation
    for round in 0..5 {
        let y = random_real(&mut r, slots, 1.0);
        let z = random_real(&mut r, slots, 0.5);
        let cy =
            c.sk.encrypt(
                &c.enc.encode_real(&y, ct.level(), ct.scale()).expect("e"),
                &mut r,
            )
            .expect("enc");
        ct = ev
            .rescale(&ev.mul_relin(&ct, &cy, &c.rlk).expect("mul"))
            .expect("rescale");
        let pz = c.enc.encode_real(&z, ct.level(), ct.scale()).expect("e");
        ct = ev.add_plain(&ct, &pz).expect("add");
        for (e, (a, b)) in expect.iter_mut().zip(y.iter().zip(&z)) {
            *e = *e * a + b;
        }
        if round == 2 {
            ct = ev.rotate(&ct, 5, &c.gk).expect("rot");
            let n = expect.len();
            expect = (0..n).map(|j| expect[(j + 5) % n]).collect();
        }
    }
    assert_eq!(ct.level(), 1);
    let got = c
        .enc
        .decode_real(&c.sk.decrypt(&ct).expect("d"))
        .expect("d");
    let (mean, worst) = report(
        "depth-5 circuit (real)",
        &to_complex(&expect),
        &to_complex(&got),
    );
    assert!(mean >= 15.0, "mean precision {mean} bits");
    assert!(worst >= 11.0, "worst precision {worst} bits");
}

#[test]
fn rotations_and_conjugation() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(4);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.sk.encrypt(&pt, &mut r).expect("enc");
    let dec =
        |ct: &unseen_ckks::Ciphertext| c.enc.decode(&c.sk.decrypt(ct).expect("d")).expect("d");
    for &k in &STEPS {
        let (mean, _) = report(
            &format!("rotate({k})"),
            &rotl(&x, k),
            &dec(&ev.rotate(&ct, k, &c.gk).expect("rot")),
        );
        // key switching: sum_i [c]_{q_i} e_i / P with q_0 ~ P (31 bits) gives
        // ~2^-13.1 std per slot at scale 2^26
        assert!(mean > 12.5);
    }
    // rotation at a lower level (key switching with fewer digits)
    let low = ev.drop_to_level(&ct, 1).expect("drop");
    let (mean, _) = report(
        "rotate(-3) at level 1",
        &rotl(&x, -3),
        &dec(&ev.rotate(&low, -3, &c.gk).expect("rot")),
    );
    assert!(mean > 12.5);
    let conj: Vec<Complex64> = x.iter().map(|z| z.conj()).collect();
    let (mean, _) = report(
        "conjugate",
        &conj,
        &dec(&ev.conjugate(&ct, &c.gk).expect("conj")),
    );
    assert!(mean > 12.5);
    // rotation by 0 and by a multiple of the slot count is the identity
    assert_eq!(ev.rotate(&ct, 0, &c.gk).expect("rot0"), ct);
    assert!(matches!(
        ev.rotate(&ct, 3, &c.gk),
        Err(Error::MissingGaloisKey(_))
    ));
}

#[test]
fn hoisted_rotations_equal_plain_rotations() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(5);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c.enc.encode(&x, 4, c.params.default_scale()).expect("e");
    let ct = c.pk.encrypt(&pt, &mut r).expect("enc");
    let hoisted = ev.rotate_hoisted(&ct, &STEPS, &c.gk).expect("hoisted");
    for (&k, h) in STEPS.iter().zip(&hoisted) {
        let single = ev.rotate(&ct, k, &c.gk).expect("rot");
        assert!(*h == single, "hoisted rotation {k} differs");
        let got = c.enc.decode(&c.sk.decrypt(h).expect("d")).expect("d");
        let (mean, _) = precision(&rotl(&x, k), &got);
        assert!(mean > 12.5);
    }
}

#[test]
fn inner_sum() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(6);
    let slots = c.params.slots();
    let x = random_complex(&mut r, slots, 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.sk.encrypt(&pt, &mut r).expect("enc");
    for count in [16usize, 5] {
        let steps = Evaluator::inner_sum_steps(1, count);
        let gk = if steps.iter().all(|&s| c.gk.has_rotation(s)) {
            c.gk.clone()
        } else {
            GaloisKeys::generate(&c.sk, &steps, false, &mut r)
        };
        let got = c
            .enc
            .decode(
                &c.sk
                    .decrypt(&ev.inner_sum(&ct, 1, count, &gk).expect("sum"))
                    .expect("d"),
            )
            .expect("d");
        let expect: Vec<Complex64> = (0..slots)
            .map(|j| (0..count).map(|i| x[(j + i) % slots]).sum())
            .collect();
        let (mean, _) = report(&format!("inner_sum(1, {count})"), &expect, &got);
        // values grow to ~sqrt(count); log2(count) key switches
        assert!(mean > 10.0);
    }
    assert!(ev.inner_sum(&ct, 0, 4, &c.gk).is_err());
    assert!(ev.inner_sum(&ct, usize::MAX, usize::MAX, &c.gk).is_err());
    assert!(!Evaluator::inner_sum_steps(usize::MAX, usize::MAX).is_empty());
}

#[test]
fn mismatches_are_errors() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(7);
    let x = random_complex(&mut r, 8, 1.0);
    let scale = c.params.default_scale();
    let a =
        c.sk.encrypt(&c.enc.encode(&x, 6, scale).expect("e"), &mut r)
            .expect("enc");
    let b =
        c.sk.encrypt(&c.enc.encode(&x, 5, scale).expect("e"), &mut r)
            .expect("enc");
    let d =
        c.sk.encrypt(&c.enc.encode(&x, 6, scale * 2.0).expect("e"), &mut r)
            .expect("enc");
    assert!(matches!(
        ev.add(&a, &b),
        Err(Error::LevelMismatch { left: 6, right: 5 })
    ));
    assert!(matches!(
        ev.mul_relin(&a, &b, &c.rlk),
        Err(Error::LevelMismatch { .. })
    ));
    assert!(matches!(ev.add(&a, &d), Err(Error::ScaleMismatch { .. })));
    assert!(matches!(ev.sub(&a, &d), Err(Error::ScaleMismatch { .. })));
    let low_pt = c.enc.encode(&x, 2, scale).expect("e");
    assert!(matches!(
        ev.add_plain(&a, &low_pt),
        Err(Error::LevelMismatch { .. })
    ));
    let bottom = ev.drop_to_level(&a, 0).expect("drop");
    assert!(matches!(ev.rescale(&bottom), Err(Error::LevelTooLow(_))));
    assert!(matches!(
        ev.drop_to_level(&b, 6),
        Err(Error::LevelTooLow(_))
    ));
    // scale overflow instead of silent garbage
    let sq = ev.mul_relin(&bottom, &bottom, &c.rlk);
    assert!(matches!(sq, Err(Error::LevelTooLow(_))), "{sq:?}");
    // other parameter sets
    let other = Parameters::preset(Preset::Small4096).expect("p");
    let sk2 = SecretKey::generate(&other, &mut r);
    assert!(matches!(sk2.decrypt(&a), Err(Error::ParametersMismatch)));
    let ev2 = Evaluator::new(&other);
    assert!(matches!(ev2.add(&a, &a), Err(Error::ParametersMismatch)));
    // encoding errors
    let too_many = vec![Complex64::new(0.0, 0.0); c.params.slots() + 1];
    assert!(matches!(
        c.enc.encode(&too_many, 6, scale),
        Err(Error::Encoding(_))
    ));
    assert!(matches!(
        c.enc.encode_real(&[f64::NAN], 6, scale),
        Err(Error::Encoding(_))
    ));
    assert!(matches!(
        c.enc.encode_real(&[1e9], 0, scale),
        Err(Error::Encoding(_))
    ));
    assert!(c.enc.encode_real(&[1.0], 7, scale).is_err());
}

/// Root mean square of `|got - expected|` over the slots.
fn rms_error(expected: &[Complex64], got: &[Complex64]) -> f64 {
    let s: f64 = expected
        .iter()
        .zip(got)
        .map(|(a, b)| (a - b).norm_sqr())
        .sum();
    (s / expected.len() as f64).sqrt()
}

/// Expected rms error of a complex slot after flooding with `2^b`.
fn predicted_rms(b: u32, n: usize, scale: f64) -> f64 {
    (b as f64).exp2() * (n as f64 / 3.0).sqrt() / scale
}

#[test]
fn noise_flooding_plans() {
    // where the default flooding (sigma 40, noise below the scale) fits
    for preset in Preset::ALL {
        let params = Parameters::preset(preset).expect("p");
        let s = params.default_scale();
        for level in 0..=params.max_level() {
            match Flooding::precision_bits(0.0).plan(&params, level, s) {
                Ok(p) => println!(
                    "{:<14} level {level}: log2 Q {:6.1}, flood 2^{}, headroom {:5.1} bits, precision {:6.1} bits, SD 2^{:.1}",
                    params.name(),
                    p.log_q,
                    p.flood_bits,
                    p.headroom_bits,
                    p.precision_bits,
                    p.distance_log2
                ),
                Err(e) => println!("{:<14} level {level}: {e}", params.name()),
            }
        }
    }
    let cnn = Parameters::preset(Preset::Cnn8192).expect("p");
    let s = cnn.default_scale();
    let fl = Flooding::precision_bits(0.0);
    // reference preset: refused at levels 0 and 1, fits from level 2 on,
    // where it hides the values too (sigma + 1.5 log2 N ~ 59 bits lost)
    for level in [0, 1] {
        match fl.plan(&cnn, level, s) {
            Err(Error::InvalidArgument(m)) => {
                assert!(
                    m.contains("bits missing") && m.contains("higher level"),
                    "{m}"
                )
            }
            other => panic!("level {level}: {other:?}"),
        }
    }
    let Err(Error::InvalidArgument(m)) = fl.plan(&cnn, 0, s) else {
        unreachable!()
    };
    assert!(m.contains("49.0 bits missing"), "{m}");
    for level in 2..=cnn.max_level() {
        let p = fl.plan(&cnn, level, s).expect("fits");
        assert_eq!(p.flood_bits, 40 + 13 + 26);
        assert!(p.distance_log2 <= -40.0);
        assert!(
            (p.precision_bits + 58.7).abs() < 0.1,
            "{}",
            p.precision_bits
        );
    }
    // n8192-precise: default from level 2; a fresh sk ciphertext at scale
    // 2^80 (noise <= 21) keeps ~16 bits at levels 2 and 3
    let pr = Parameters::preset(Preset::Precise8192).expect("p");
    assert!(fl.plan(&pr, 1, pr.default_scale()).is_err());
    assert!(fl.plan(&pr, 2, pr.default_scale()).is_ok());
    let fresh = Flooding::noise_log2(21f64.log2());
    for level in [2, 3] {
        let p = fresh.plan(&pr, level, 80f64.exp2()).expect("fits");
        assert_eq!(p.flood_bits, 58);
        assert!(
            (p.precision_bits - 16.3).abs() < 0.1,
            "{}",
            p.precision_bits
        );
    }
    // at level 1 the flood fits but not the message (2^80 * 2^10)
    assert!(fresh.plan(&pr, 1, 80f64.exp2()).is_err());
    // sigma costs bit for bit
    let p30 = fresh
        .sigma_bits(30)
        .plan(&pr, 3, 80f64.exp2())
        .expect("fits");
    assert_eq!(p30.flood_bits, 48);
    assert!(p30.distance_log2 <= -30.0);
}

#[test]
fn flooded_decryption_keeps_predicted_precision() {
    let params = Parameters::preset(Preset::Precise8192).expect("p");
    let n = params.n();
    let mut r = rng(8);
    let sk = SecretKey::generate(&params, &mut r);
    let enc = unseen_ckks::Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let x = random_complex(&mut r, params.slots(), 1.0);
    let scale = 80f64.exp2();
    let ct = sk
        .encrypt(
            &enc.encode(&x, params.max_level(), scale).expect("e"),
            &mut r,
        )
        .expect("enc");
    // a fresh secret-key encryption: |e| <= 21 (centered binomial, eta = 21)
    let fl = unseen_ckks::Flooding::noise_log2(21f64.log2());
    for ct in [ct.clone(), ev.drop_to_level(&ct, 2).expect("drop")] {
        let plan = fl.plan(&params, ct.level(), ct.scale()).expect("plan");
        let plain = enc.decode(&sk.decrypt(&ct).expect("d")).expect("d");
        let flooded = enc
            .decode(&sk.decrypt_flooded(&ct, &fl, &mut r).expect("d"))
            .expect("d");
        let (m0, _) = report("decrypt (scale 2^80)", &x, &plain);
        let (m1, w1) = report(
            &format!("flooded 2^{} level {}", plan.flood_bits, ct.level()),
            &x,
            &flooded,
        );
        let rms = rms_error(&x, &flooded);
        let want = predicted_rms(plan.flood_bits, n, scale);
        println!(
            "  rms error 2^{:.2}, predicted 2^{:.2} (plan precision {:.2} bits)",
            rms.log2(),
            want.log2(),
            plan.precision_bits
        );
        assert!(m0 > 45.0, "{m0}");
        assert!((rms / want - 1.0).abs() < 0.05, "rms {rms} vs {want}");
        assert!((-rms.log2() - plan.precision_bits).abs() < 0.1);
        // ~16.3 bits expected; the worst slot of 4096 is ~3 bits worse
        assert!(m1 > 15.5 && m1 < 17.5 && w1 > 12.0, "{m1} {w1}");
    }
}

#[test]
fn default_flooding_has_the_claimed_width() {
    // default: noise below the scale, so 2^(40 + 13 + 40) = 2^93 at scale
    // 2^40; the decoded error must match that width (beyond 64 bits).
    let params = Parameters::preset(Preset::Precise8192).expect("p");
    let mut r = rng(10);
    let sk = SecretKey::generate(&params, &mut r);
    let enc = unseen_ckks::Encoder::new(&params);
    let x = random_complex(&mut r, params.slots(), 1.0);
    let ct = sk
        .encrypt(
            &enc.encode(&x, params.max_level(), params.default_scale())
                .expect("e"),
            &mut r,
        )
        .expect("enc");
    let plan = Flooding::precision_bits(0.0)
        .plan(&params, ct.level(), ct.scale())
        .expect("plan");
    assert_eq!(plan.flood_bits, 93);
    let flooded = enc
        .decode(
            &sk.decrypt_flooded(&ct, &Flooding::precision_bits(0.0), &mut unseen_ckks::OsRng)
                .expect("d"),
        )
        .expect("d");
    let rms = rms_error(&x, &flooded);
    let want = predicted_rms(93, params.n(), params.default_scale());
    println!(
        "default flood: rms error 2^{:.2}, predicted 2^{:.2}",
        rms.log2(),
        want.log2()
    );
    assert!((rms / want - 1.0).abs() < 0.05, "rms {rms} vs {want}");
}

#[test]
fn flood_sampler_is_uniform_and_wide() {
    let n = 200_000;
    let mut r = rng(11);
    for bits in [1u32, 20, 60, 64, 65, 100, 126] {
        let f = unseen_ckks::ring::sample_flood(&mut r, n, bits);
        assert_eq!(f.len(), n);
        let big = 1i128 << bits;
        assert!(f.iter().all(|&v| (-big..=big).contains(&v)));
        let b = (bits as f64).exp2();
        let u: Vec<f64> = f.iter().map(|&v| v as f64 / b).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        let var = u.iter().map(|v| v * v).sum::<f64>() / n as f64;
        let max = u.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        println!("2^{bits}: mean {mean:+.5}, var {var:.5} (1/3), max |v| {max:.6}");
        // uniform on [-1, 1]: mean 0 (std 0.0013), E[v^2] = 1/3 (+ 2^-bits for
        // the discrete range; std 0.0007), max within 1e-3 of 1
        let var_exact = if bits == 1 {
            1.0 / 3.0 + 1.0 / 6.0
        } else {
            1.0 / 3.0
        };
        assert!(mean.abs() < 0.006, "{mean}");
        assert!((var - var_exact).abs() < 0.004, "{var}");
        assert!(max > 0.999 && max <= 1.0, "{max}");
        // 16 equal bins over [-2^b, 2^b]: each within 5% of n/16; low bits
        if bits >= 8 {
            let mut hist = [0usize; 16];
            for &v in &u {
                hist[(((v + 1.0) * 8.0) as usize).min(15)] += 1;
            }
            for c in hist {
                assert!(
                    (c as f64 / (n as f64 / 16.0) - 1.0).abs() < 0.05,
                    "{hist:?}"
                );
            }
            // low bits of wide draws are uniform too
            let odd = f.iter().filter(|&&v| v & 1 == 1).count() as f64 / n as f64;
            assert!((odd - 0.5).abs() < 0.01, "{odd}");
        }
    }
    // [-2, 2]: five values, each with probability 1/5
    let f = unseen_ckks::ring::sample_flood(&mut r, n, 1);
    for v in -2i128..=2 {
        let c = f.iter().filter(|&&x| x == v).count() as f64 / n as f64;
        assert!((c - 0.2).abs() < 0.006, "{v}: {c}");
    }
    // the OS CSPRNG works as the source
    let f = unseen_ckks::ring::sample_flood(&mut unseen_ckks::OsRng, 1000, 100);
    assert!(f.iter().any(|&v| v.unsigned_abs() > 1u128 << 95));
}

#[test]
fn flooding_refusals() {
    let c = ctx();
    let mut r = rng(12);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.sk.encrypt(&pt, &mut r).expect("enc");
    let bad = |res: unseen_ckks::Result<unseen_ckks::Plaintext>| match res {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    // sigma below the minimum of 30 bits
    let m = bad(c
        .sk
        .decrypt_flooded(&ct, &Flooding::precision_bits(0.0).sigma_bits(29), &mut r));
    assert!(m.contains("minimum of 30"), "{m}");
    assert!(c
        .sk
        .decrypt_flooded(&ct, &Flooding::precision_bits(0.0).sigma_bits(30), &mut r)
        .is_ok());
    // the reference preset at level 0: 2^79 does not fit in 31 bits
    let low = c.ev.drop_to_level(&ct, 0).expect("drop");
    let m = bad(c
        .sk
        .decrypt_flooded(&low, &Flooding::precision_bits(0.0), &mut r));
    println!("{m}");
    assert!(m.contains("bits missing") && m.contains("level 0"), "{m}");
    // a noise bound that needs more than the top level's modulus
    let m = bad(c
        .sk
        .decrypt_flooded(&ct, &Flooding::noise_log2(100.0), &mut r));
    assert!(m.contains("above the supported 2^126"), "{m}");
    // 2^113 fits at the top level (187 bits) but not at level 3 (109 bits)
    let wide = Flooding::noise_log2(60.0);
    assert_eq!(
        wide.plan(&c.params, 6, ct.scale())
            .expect("fits")
            .flood_bits,
        113
    );
    let l3 = c.ev.drop_to_level(&ct, 3).expect("drop");
    let m = bad(c.sk.decrypt_flooded(&l3, &wide, &mut r));
    assert!(m.contains("5.0 bits missing"), "{m}");
    // a message bound that does not fit
    let m = bad(c.sk.decrypt_flooded(
        &ct,
        &Flooding::precision_bits(0.0).message_log2(170.0),
        &mut r,
    ));
    assert!(m.contains("bits missing"), "{m}");
    // non-finite bounds
    bad(c
        .sk
        .decrypt_flooded(&ct, &Flooding::noise_log2(f64::NAN), &mut r));
    bad(c
        .sk
        .decrypt_flooded(&ct, &Flooding::precision_bits(f64::INFINITY), &mut r));
    // a key of another parameter set
    let other = Parameters::preset(Preset::Precise8192).expect("p");
    let sk2 = SecretKey::generate(&other, &mut r);
    assert!(matches!(
        sk2.decrypt_flooded(&ct, &Flooding::precision_bits(0.0), &mut r),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        sk2.decrypt_flooded(&ct, &Flooding::precision_bits(0.0).sigma_bits(1), &mut r),
        Err(Error::ParametersMismatch)
    ));
}

#[test]
fn other_presets_work() {
    for preset in [Preset::Small4096, Preset::Deep16384] {
        let params = Parameters::preset(preset).expect("p");
        let mut r = rng(9);
        let sk = SecretKey::generate(&params, &mut r);
        let pk = unseen_ckks::PublicKey::generate(&sk, &mut r);
        let rlk = unseen_ckks::RelinKey::generate(&sk, &mut r);
        let enc = unseen_ckks::Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let x = random_complex(&mut r, params.slots(), 1.0);
        let y = random_complex(&mut r, params.slots(), 1.0);
        let l = params.max_level();
        let s = params.default_scale();
        let cx = pk
            .encrypt(&enc.encode(&x, l, s).expect("e"), &mut r)
            .expect("enc");
        let cy = sk
            .encrypt(&enc.encode(&y, l, s).expect("e"), &mut r)
            .expect("enc");
        let prod = ev
            .rescale(&ev.mul_relin(&cx, &cy, &rlk).expect("m"))
            .expect("r");
        let exp: Vec<Complex64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
        let (mean, _) = report(
            &format!("{} mul_relin", params.name()),
            &exp,
            &enc.decode(&sk.decrypt(&prod).expect("d")).expect("d"),
        );
        assert!(mean > params.literal().log_scale as f64 - 13.0, "{mean}");
    }
}

#[test]
fn inner_sum_checks_parameters() {
    // with count = 1 no rotation is made: the parameter check used to be skipped
    let c = ctx();
    let mut r = rng(9);
    let scale = c.params.default_scale();
    let a =
        c.sk.encrypt(&c.enc.encode_real(&[1.0], 6, scale).expect("e"), &mut r)
            .expect("enc");
    let other = Parameters::preset(Preset::Small4096).expect("p");
    let sk2 = SecretKey::generate(&other, &mut r);
    let gk2 = GaloisKeys::generate(&sk2, &[1], false, &mut r);
    let ev2 = Evaluator::new(&other);
    assert!(matches!(
        ev2.inner_sum(&a, 1, 1, &gk2),
        Err(Error::ParametersMismatch)
    ));
    assert!(matches!(
        c.ev.inner_sum(&a, 1, 1, &gk2),
        Err(Error::ParametersMismatch)
    ));
    assert!(c.ev.inner_sum(&a, 1, 1, &c.gk).is_ok());
}

/// The fused sums give exactly the residues of the term-by-term operations, on primes below
/// 2^31 (lazily reduced) and on wider ones, and decrypt to the exact weighted sums.
#[test]
fn fused_sums_equal_term_by_term_operations() {
    use unseen_ckks::Encoder;
    for preset in [Preset::Cnn8192, Preset::Precise8192, Preset::Cnn16384] {
        let params = Parameters::preset(preset).expect("preset");
        let mut r = rng(7);
        let sk = SecretKey::generate(&params, &mut r);
        let (enc, ev) = (Encoder::new(&params), Evaluator::new(&params));
        let slots = params.slots();
        let level = params.max_level();
        let scale = params.default_scale();
        let values: Vec<Vec<f64>> = (0..6).map(|_| random_real(&mut r, slots, 1.0)).collect();
        let cts: Vec<_> = values
            .iter()
            .map(|v| {
                let pt = enc.encode_real(v, level, scale).expect("encode");
                sk.encrypt(&pt, &mut r).expect("encrypt")
            })
            .collect();
        let decode = |ct: &unseen_ckks::Ciphertext| -> Vec<f64> {
            enc.decode(&sk.decrypt(ct).expect("decrypt"))
                .expect("decode")
                .iter()
                .map(|z| z.re)
                .collect()
        };
        let max_err = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        };

        // plaintext products
        let multipliers: Vec<Vec<f64>> = (0..6).map(|_| random_real(&mut r, slots, 1.0)).collect();
        let plains: Vec<_> = multipliers
            .iter()
            .map(|v| enc.encode_real(v, level, scale).expect("encode"))
            .collect();
        let compact: Vec<_> = plains.iter().map(|p| p.compact()).collect();
        let terms: Vec<_> = cts.iter().zip(&compact).collect();
        let fused = ev.mul_plain_sum(&terms).expect("fused");
        let full: usize = plains.len() * (level + 1) * params.n() * 8;
        let held: usize = compact.iter().map(|p| p.memory_bytes()).sum();
        assert!(held <= full, "{}", params.name());
        let mut stepwise = ev.mul_plain(&cts[0], &plains[0]).expect("mul");
        for (ct, pt) in cts.iter().zip(&plains).skip(1) {
            stepwise = ev
                .add(&stepwise, &ev.mul_plain(ct, pt).expect("mul"))
                .expect("add");
        }
        assert!(fused == stepwise, "{}: mul_plain_sum", params.name());

        // multipliers that repeat across the slots are held as runs of equal NTT values, at a
        // fraction of the memory, and give the same residues: runs of one length (multiplied
        // from the runs), of mixed lengths (expanded) and none
        let periods = [slots / 16, slots / 16, slots / 2, slots / 16, 4, slots];
        let periodic: Vec<_> = periods
            .iter()
            .map(|&period| {
                let base = random_real(&mut r, period, 1.0);
                let v: Vec<f64> = (0..slots).map(|s| base[s % period]).collect();
                enc.encode_real(&v, level, scale).expect("encode")
            })
            .collect();
        let held: Vec<_> = periodic.iter().map(|p| p.compact()).collect();
        for ((pt, period), whole) in held.iter().zip(periods).zip(&compact) {
            // runs shorter than 8 are held whole
            let run = Some(slots / period).filter(|&r| r >= 8).unwrap_or(1);
            assert_eq!(pt.run(), run, "{}", params.name());
            assert_eq!(pt.memory_bytes() * pt.run(), whole.memory_bytes());
        }
        for sum in [
            vec![0, 1, 3],
            vec![0, 2, 4, 5, 1],
            vec![5],
            vec![4],
            vec![2, 5],
        ] {
            let terms: Vec<_> = sum.iter().map(|&k| (&cts[k], &held[k])).collect();
            let got = ev.mul_plain_sum(&terms).expect("sum");
            let mut stepwise = ev.mul_plain(&cts[sum[0]], &periodic[sum[0]]).expect("mul");
            for &k in &sum[1..] {
                let product = ev.mul_plain(&cts[k], &periodic[k]).expect("mul");
                stepwise = ev.add(&stepwise, &product).expect("add");
            }
            assert!(
                got == stepwise,
                "{}: sums of held runs {sum:?}",
                params.name()
            );
        }
        let exact: Vec<f64> = (0..slots)
            .map(|s| (0..6).map(|t| values[t][s] * multipliers[t][s]).sum())
            .collect();
        let got = decode(&ev.rescale(&fused).expect("rescale"));
        assert!(
            max_err(&exact, &got) < 1e-3,
            "{}: {}",
            params.name(),
            max_err(&exact, &got)
        );

        // real weights, rows of different lengths, repeated inputs and an empty row
        // and rows over the same inputs, with more terms than a 31-bit prime takes unreduced
        // and with fewer
        let mut rows: Vec<Vec<(usize, f64)>> = vec![
            vec![(0, 0.5), (3, -1.25), (5, 2.0)],
            vec![],
            vec![(1, -0.75), (1, 0.125), (4, 1.0), (2, -3.5), (0, 0.0)],
        ];
        for k in 0..4 {
            rows.push(
                (0..6)
                    .map(|i| (i, uniform(&mut r, 2.0) + k as f64))
                    .collect(),
            );
        }
        for _ in 0..5 {
            rows.push(vec![(2, uniform(&mut r, 1.0)), (4, uniform(&mut r, 1.0))]);
        }
        let row_refs: Vec<&[(usize, f64)]> = rows.iter().map(|r| r.as_slice()).collect();
        let prime = params.data_primes()[level] as f64;
        let combos = ev
            .scalar_combinations(&cts, &row_refs, prime)
            .expect("combinations");
        assert_eq!(combos.len(), rows.len());
        for (row, got) in rows.iter().zip(&combos) {
            let mut stepwise = match row.first() {
                Some((i, w)) => ev.mul_scalar(&cts[*i], *w, prime).expect("mul"),
                None => ev.mul_scalar(&cts[0], 0.0, prime).expect("mul"),
            };
            for (i, w) in row.iter().skip(1) {
                ev.mul_scalar_acc(&mut stepwise, &cts[*i], *w, prime)
                    .expect("acc");
            }
            assert!(*got == stepwise, "{}: scalar_combinations", params.name());
            let exact: Vec<f64> = (0..slots)
                .map(|s| row.iter().map(|(i, w)| w * values[*i][s]).sum())
                .collect();
            let decoded = decode(&ev.rescale(got).expect("rescale"));
            assert!(max_err(&exact, &decoded) < 1e-3, "{}", params.name());
        }
        // the same sums with the inputs in two parts, the second added to the first's sums
        let part = |lo: usize, hi: usize| -> Vec<Vec<(usize, f64)>> {
            rows.iter()
                .map(|row| {
                    row.iter()
                        .filter(|(i, _)| (lo..hi).contains(i))
                        .map(|(i, w)| (i - lo, *w))
                        .collect()
                })
                .collect()
        };
        let (head, tail) = (part(0, 3), part(3, 6));
        fn refs(p: &[Vec<(usize, f64)>]) -> Vec<&[(usize, f64)]> {
            p.iter().map(|r| r.as_slice()).collect()
        }
        let mut accs = ev
            .scalar_combinations(&cts[..3], &refs(&head), prime)
            .expect("first part");
        ev.add_scalar_combinations(&mut accs, &cts[3..], &refs(&tail), prime)
            .expect("second part");
        assert!(accs == combos, "{}: in two parts", params.name());
        // accumulators of another count, level or scale are refused
        assert!(ev
            .add_scalar_combinations(&mut accs[..1], &cts[3..], &refs(&tail), prime)
            .is_err());
        let mut lower = vec![ev.zero(level - 1, cts[0].scale() * prime).expect("zero")];
        assert!(ev
            .add_scalar_combinations(&mut lower, &cts, &row_refs[..1], prime)
            .is_err());
        let mut other = vec![ev.zero(level, cts[0].scale()).expect("zero")];
        assert!(ev
            .add_scalar_combinations(&mut other, &cts, &row_refs[..1], prime)
            .is_err());
        // bad rows are refused, not panicked on
        let bad: Vec<&[(usize, f64)]> = vec![&[(6, 1.0)]];
        assert!(ev.scalar_combinations(&cts, &bad, prime).is_err());
        let nan: Vec<&[(usize, f64)]> = vec![&[(0, f64::NAN)]];
        assert!(ev.scalar_combinations(&cts, &nan, prime).is_err());
        assert!(ev.mul_plain_sum(&[]).is_err());
    }
}

#[test]
fn rotations_into_reused_results_equal_fresh_ones() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(6);
    let x = random_complex(&mut r, c.params.slots(), 1.0);
    let pt = c
        .enc
        .encode(&x, c.params.max_level(), c.params.default_scale())
        .expect("e");
    let ct = c.pk.encrypt(&pt, &mut r).expect("enc");
    let low = ev.drop_to_level(&ct, 1).expect("drop");
    // a step of 0 among them: a copy, not a key switch
    let steps: Vec<i64> = std::iter::once(0).chain(STEPS).collect();
    // results of one level written over results of a lower one, then of a higher one
    let mut outs = ev.rotate_hoisted(&low, &steps, &c.gk).expect("low");
    for input in [&ct, &low, &ct] {
        ev.rotate_hoisted_into(input, &steps, &c.gk, &mut outs)
            .expect("into");
        assert!(outs == ev.rotate_hoisted(input, &steps, &c.gk).expect("fresh"));
        assert_eq!(outs[0], *input);
        let mut one = outs[1].clone();
        for &k in &steps {
            ev.rotate_into(input, k, &c.gk, &mut one).expect("into");
            assert!(
                one == ev.rotate(input, k, &c.gk).expect("fresh"),
                "step {k}"
            );
        }
    }
    // one result per step, or an error
    assert!(matches!(
        ev.rotate_hoisted_into(&ct, &steps, &c.gk, &mut outs[..1]),
        Err(Error::InvalidArgument(_))
    ));
    let mut one = outs[0].clone();
    assert!(matches!(
        ev.rotate_into(&ct, 3, &c.gk, &mut one),
        Err(Error::MissingGaloisKey(_))
    ));
}

/// A sum of rotations divides the key switches' sums once: with one rotated term it is that
/// rotation bit for bit (plus the unrotated terms), and with several it decrypts to the sum of
/// the rotated slot vectors with no more error than rotating and adding.
#[test]
fn sums_of_rotations_equal_rotating_and_adding() {
    let c = ctx();
    let ev = &c.ev;
    let mut r = rng(11);
    let slots = c.params.slots();
    let dec =
        |ct: &unseen_ckks::Ciphertext| c.enc.decode(&c.sk.decrypt(ct).expect("d")).expect("d");
    for level in [c.params.max_level(), 4, 1] {
        let xs: Vec<Vec<Complex64>> = (0..5).map(|_| random_complex(&mut r, slots, 1.0)).collect();
        let cts: Vec<unseen_ckks::Ciphertext> = xs
            .iter()
            .map(|x| {
                let pt = c.enc.encode(x, level, c.params.default_scale()).expect("e");
                c.sk.encrypt(&pt, &mut r).expect("enc")
            })
            .collect();
        let steps = [0i64, 1, -3, 100, 2047];
        // one rotated term (and an unrotated one): the rotation's own division
        let one = ev
            .sum_rotations(&[(&cts[0], 0), (&cts[1], 5)], &c.gk)
            .expect("sum");
        let mut want = ev.rotate(&cts[1], 5, &c.gk).expect("rot");
        ev.add_assign(&mut want, &cts[0]).expect("add");
        assert!(one == want, "level {level}: one rotated term");
        // several: against the exact sum of the rotated vectors
        let terms: Vec<(&unseen_ckks::Ciphertext, i64)> = cts.iter().zip(steps).collect();
        let summed = ev.sum_rotations(&terms, &c.gk).expect("sum");
        let mut added = cts[0].clone();
        for (ct, k) in &terms[1..] {
            ev.add_assign(&mut added, &ev.rotate(ct, *k, &c.gk).expect("rot"))
                .expect("add");
        }
        let exact: Vec<Complex64> = (0..slots)
            .map(|i| xs.iter().zip(steps).map(|(x, k)| rotl(x, k)[i]).sum())
            .collect();
        let (e_sum, e_add) = (
            rms_error(&exact, &dec(&summed)),
            rms_error(&exact, &dec(&added)),
        );
        println!("level {level}: rms error {e_sum:.3e} summed, {e_add:.3e} rotated and added");
        assert!(
            e_sum <= 1.1 * e_add,
            "level {level}: {e_sum} against {e_add}"
        );
        let (mean, _) = precision(&exact, &dec(&summed));
        assert!(mean > 12.0, "level {level}: {mean} bits");
    }
    // refusals: no terms, mixed levels or scales, a missing key
    assert!(matches!(
        ev.sum_rotations(&[], &c.gk),
        Err(Error::InvalidArgument(_))
    ));
    let x = random_complex(&mut r, slots, 1.0);
    let scale = c.params.default_scale();
    let top =
        c.sk.encrypt(&c.enc.encode(&x, 3, scale).expect("e"), &mut r)
            .expect("enc");
    let low = ev.drop_to_level(&top, 2).expect("drop");
    assert!(matches!(
        ev.sum_rotations(&[(&top, 1), (&low, 2)], &c.gk),
        Err(Error::LevelMismatch { .. })
    ));
    let other =
        c.sk.encrypt(&c.enc.encode(&x, 3, scale * 2.0).expect("e"), &mut r)
            .expect("enc");
    assert!(matches!(
        ev.sum_rotations(&[(&top, 1), (&other, 2)], &c.gk),
        Err(Error::ScaleMismatch { .. })
    ));
    assert!(matches!(
        ev.sum_rotations(&[(&top, 1), (&top, 3)], &c.gk),
        Err(Error::MissingGaloisKey(_))
    ));
}
