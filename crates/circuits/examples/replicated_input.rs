//! Measures a single-image packing the compiler does not make: the first convolution's im2col
//! patches replicated across its output channels and spread over several input ciphertexts, so
//! that the convolution is a few plaintext products and a short rotate-and-sum, and its output
//! lands in the dense channel-block layout. It runs the rest of the network as the compiler
//! compiles it from that layout, and compares time, rotations, key memory, upload and logit
//! error with the compiled one-ciphertext program, side by side:
//!
//! ```text
//! cargo run --release -p unseen-circuits --example replicated_input [MODEL_DIR] [IMAGES]
//! ```

use std::sync::Arc;
use std::time::Instant;

use rand_chacha::rand_core::SeedableRng;
use unseen_circuits::{
    compile_lowered, compile_single, lower, CkksBackend, CkksPlan, LoweredNet, Prepared,
};
use unseen_ckks::{Encoder, Evaluator, GaloisKeys, Parameters, Preset, SecretKey};
use unseen_model::Shape;

fn main() {
    if let Err(e) = run() {
        eprintln!("replicated_input: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("models/ciphernet-mnist", String::as_str);
    let images: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(12);
    let (net, _) =
        unseen_model::folder::load_model(std::path::Path::new(dir)).map_err(|e| e.to_string())?;
    let params = Parameters::preset(Preset::Cnn8192).map_err(|e| e.to_string())?;
    let slots = params.slots();
    let lowered = lower(&net).map_err(|e| e.to_string())?;
    let fc = lowered
        .first_conv
        .clone()
        .ok_or("the network does not start with a convolution")?;
    let Shape::Image(c_out, oh, ow) = lowered.shapes[0] else {
        return Err("the convolution's output is not an image".into());
    };
    let Shape::Image(_, h, w) = lowered.input else {
        return Err("the input is not an image".into());
    };
    let npos = oh * ow;
    let block = npos.next_power_of_two();
    let period = c_out.next_power_of_two() * block;
    let taps = fc.weight.len() / c_out;
    let per_vector = slots / period;
    let vectors = taps.div_ceil(per_vector);
    // the rest of the network, compiled from the convolution's output layout
    let rest = LoweredNet {
        input: lowered.shapes[0],
        stages: lowered.stages[1..].to_vec(),
        shapes: lowered.shapes[1..].to_vec(),
        first_conv: None,
    };
    let sub = compile_lowered(&rest, slots).map_err(|e| e.to_string())?;
    for c in 0..c_out {
        for p in 0..npos {
            if sub.input_layout[c * block + p] != Some(c * npos + p) {
                return Err("the rest of the network is compiled for another layout".into());
            }
        }
    }
    let base = compile_single(&net, slots).map_err(|e| e.to_string())?;
    let sums = per_vector.trailing_zeros() as usize;
    println!(
        "{dir}: {vectors} input ciphertexts of {per_vector} taps; rotations {} (one ciphertext) against {} + {sums}",
        base.rotation_count(),
        sub.rotation_count()
    );

    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let sk = SecretKey::generate(&params, &mut rng);
    let err = |e: unseen_ckks::Error| e.to_string();
    let plan_base = CkksPlan::new(&params, &base).map_err(|e| e.to_string())?;
    let plan_sub = CkksPlan::new(&params, &sub).map_err(|e| e.to_string())?;
    let top = plan_base.start_level;
    if plan_sub.start_level + 1 != top {
        return Err("the rest of the network does not start one level lower".into());
    }
    let keys_base = plan_base.make_keys(&sk, &mut rng);
    let keys_sub = plan_sub.make_keys(&sk, &mut rng);
    let sum_keys: Vec<(i64, usize)> = (0..sums).map(|t| ((period << t) as i64, top)).collect();
    let gk_sum = GaloisKeys::generate_for_levels(&sk, &sum_keys, false, &mut rng);
    println!(
        "evaluation keys in memory: {} B against {} B",
        keys_base.memory_bytes(),
        keys_sub.memory_bytes() + gk_sum.memory_bytes()
    );
    let kb = CkksBackend::new(&params, &base).map_err(err)?;
    let prep_base = Prepared::new(&kb, &base).map_err(err)?;
    let kb = kb.with_keys(Arc::new(keys_base)).map_err(err)?;
    let ks = CkksBackend::new(&params, &sub).map_err(err)?;
    let prep_sub = Prepared::new(&ks, &sub).map_err(err)?;
    let ks = ks.with_keys(Arc::new(keys_sub)).map_err(err)?;
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let scale = kb.input_scale();
    let prime = params.data_primes()[top] as f64;

    // slot `t * period + c * block + p` of vector `v` holds tap `v * per_vector + t` of output
    // position `p`, for every output channel `c`
    let tap_of = |v: usize, t: usize| Some(v * per_vector + t).filter(|k| *k < taps);
    let k = fc.conv.kernel;
    let pixel = |ki: usize, p: usize| -> Option<usize> {
        let (ci, ky, kx) = (ki / (k * k), (ki / k) % k, ki % k);
        let iy = ((p / ow) * fc.conv.stride + ky) as isize - fc.conv.padding as isize;
        let ix = ((p % ow) * fc.conv.stride + kx) as isize - fc.conv.padding as isize;
        (iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w)
            .then(|| ci * h * w + iy as usize * w + ix as usize)
    };
    let lay_out = |value: &dyn Fn(usize, usize, usize) -> f64, v: usize| {
        let mut out = vec![0.0; slots];
        for t in 0..per_vector {
            let Some(ki) = tap_of(v, t) else { continue };
            for c in 0..c_out {
                for p in 0..npos {
                    out[t * period + c * block + p] = value(ki, c, p);
                }
            }
        }
        out
    };
    let weights = (0..vectors)
        .map(|v| {
            enc.encode_real(
                &lay_out(&|ki, c, _| fc.weight[c * taps + ki], v),
                top,
                prime,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut bias = vec![0.0; slots];
    for (s, b) in bias.iter_mut().enumerate() {
        let (c, p) = ((s % period) / block, s % block);
        if c < c_out && p < npos {
            *b = fc.bias[c];
        }
    }
    let bias = enc.encode_real(&bias, top - 1, scale).map_err(err)?;

    let pools = [1, 2].map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build());
    let mut best = [[f64::MAX; 2]; 2];
    let mut worst = [0.0f64; 2];
    let mut upload = [0usize; 2];
    for seed in 0..images {
        let image: Vec<f32> = (0..lowered.input.len())
            .map(|i| (((i as u64 * 7919 + seed * 104_729) % 255) as f32 / 255.0 - 0.13) / 0.31)
            .collect();
        let x: Vec<f64> = image.iter().map(|v| f64::from(*v)).collect();
        let expected = net.logits(&image, 1);
        let one = sk
            .encrypt(
                &enc.encode_real(&base.encode_input(&x), top, scale)
                    .map_err(err)?,
                &mut rng,
            )
            .map_err(err)?;
        let many = (0..vectors)
            .map(|v| {
                let slots = lay_out(&|ki, _, p| pixel(ki, p).map_or(0.0, |i| x[i]), v);
                sk.encrypt(&enc.encode_real(&slots, top, scale)?, &mut rng)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        upload = [
            one.to_bytes().len(),
            many.iter().map(|c| c.to_bytes().len()).sum(),
        ];
        let run_one = || prep_base.run(&kb, &one);
        let run_many = || -> Result<_, unseen_ckks::Error> {
            let mut acc = ev.mul_plain(&many[0], &weights[0])?;
            for (ct, wt) in many.iter().zip(&weights).skip(1) {
                ev.add_assign(&mut acc, &ev.mul_plain(ct, wt)?)?;
            }
            for t in 0..sums {
                let r = ev.rotate(&acc, (period << t) as i64, &gk_sum)?;
                ev.add_assign(&mut acc, &r)?;
            }
            let acc = ev.add_plain(&ev.rescale(&acc)?, &bias)?;
            prep_sub.run(&ks, &acc)
        };
        let mut outs = Vec::new();
        for (i, pool) in pools.iter().enumerate() {
            let pool = pool.as_ref().map_err(|e| e.to_string())?;
            let t = Instant::now();
            let a = pool.install(run_one).map_err(err)?;
            best[0][i] = best[0][i].min(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let b = pool.install(run_many).map_err(err)?;
            best[1][i] = best[1][i].min(t.elapsed().as_secs_f64() * 1e3);
            outs = vec![(a, &base), (b, &sub)];
        }
        for (k, (out, program)) in outs.iter().enumerate() {
            let decoded = enc
                .decode_real(&sk.decrypt(out).map_err(err)?)
                .map_err(err)?;
            for (a, e) in program.decode_output(&decoded).iter().zip(&expected) {
                worst[k] = worst[k].max((a - f64::from(*e)).abs());
            }
        }
    }
    for (k, name) in ["one ciphertext", "replicated"].iter().enumerate() {
        println!(
            "{name}: server best of {images}: {:.1} ms (1 thread), {:.1} ms (2 threads); upload {} B; max logit error {:.4}",
            best[k][0], best[k][1], upload[k], worst[k]
        );
    }
    Ok(())
}
