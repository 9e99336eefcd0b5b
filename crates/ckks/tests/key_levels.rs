//! Key-switching keys made for a level below the top: they work there and
//! below, are refused above, and serialize smaller.

mod common;

use common::*;
use unseen_ckks::{Error, GaloisKeys, RelinKey};

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
    let gk = GaloisKeys::generate_for_levels(&c.sk, &[(1, top), (2, 2), (4, 0)], false, &mut r);
    let sizes = gk.key_sizes();
    let bits_at = |level: usize| -> usize {
        let q: usize = c.params.data_primes()[..=level]
            .iter()
            .map(|p| 64 - p.leading_zeros() as usize)
            .sum();
        q + (64 - c.params.special_prime().leading_zeros() as usize)
    };
    let n = c.params.n();
    for s in &sizes {
        // element, seed, level byte, then (level + 1) digits over level + 2 primes
        let expected = 8 + 32 + 1 + (s.level + 1) * bits_at(s.level) * n / 8;
        assert_eq!(s.bytes, expected, "key for step {:?}", s.step);
    }
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
    let mut bad = rb;
    bad[4 + 1 + 1 + 8 + 32] = top as u8;
    assert!(matches!(
        RelinKey::from_bytes(&bad, &c.params),
        Err(Error::Deserialize(_))
    ));
}
