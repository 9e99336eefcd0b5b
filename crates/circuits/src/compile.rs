//! Single-image packing: one slot vector carries one input through the whole network.
//!
//! Layouts. The client places the image in an im2col layout: slot `k * P + p` holds the pixel
//! that kernel offset `k` sees at output position `p` (`P` = positions rounded up to a power of
//! two), so the convolution is a linear map whose non-zero diagonals are multiples of `P`.
//! Every layer's output is *replicated*: feature `f` sits at slot `pos(f)` of each block of
//! `Q` slots (`Q` a power of two), so rotations of the input of the next layer wrap around
//! correctly and nothing needs masking. A dense layer with `m` outputs uses the hybrid
//! diagonal method (`m'` = `m` rounded up to a power of two diagonals), then sums the `Q / m'`
//! partial chunks with `log2(Q / m')` rotations; its output is replicated with period `m'`.

use std::collections::BTreeMap;

use unseen_ml::cnn::arch::{Layer, Shape};
use unseen_ml::cnn::Network;

use crate::program::{LinearMap, Op, Program};
use crate::Error;

/// Where features live: feature `f` at slot `pos[f] + t * period` for every `t`.
struct Layout {
    pos: Vec<usize>,
    period: usize,
}

fn too_large(slots: usize, what: String) -> Error {
    Error::TooLarge { slots, what }
}

type ConvPacking = (LinearMap, Vec<f64>, Vec<Option<usize>>, Layout);

/// Pixel index seen by kernel offset `ki` at output position `pi`, if inside the image.
fn pixel(
    ki: usize,
    pi: usize,
    (h, w): (usize, usize),
    (k, s, pad): (usize, usize, usize),
    ow: usize,
) -> Option<usize> {
    let (ky, kx) = (ki / k, ki % k);
    let (oy, ox) = (pi / ow, pi % ow);
    let iy = (oy * s + ky) as isize - pad as isize;
    let ix = (ox * s + kx) as isize - pad as isize;
    (iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w)
        .then(|| iy as usize * w + ix as usize)
}

/// Position-major im2col: slot `p * K' + k` holds what kernel offset `k` sees at position `p`
/// (`K'` = offsets rounded up to a power of two); channel `c` of position `p` comes out at slot
/// `p * K' + c`. The convolution's diagonals are then `k - c`, small steps that the dense layers
/// after it use as well, so few extra rotation keys are needed.
fn conv_position_major(
    p: &unseen_ml::cnn::network::LayerParams,
    hw: (usize, usize),
    (c, k, s, pad): (usize, usize, usize, usize),
    (oh, ow): (usize, usize),
    slots: usize,
) -> ConvPacking {
    let (npos, kk) = (oh * ow, k * k);
    let kp = kk.next_power_of_two();
    let mut input_layout = vec![None; slots];
    for pi in 0..npos {
        for ki in 0..kk {
            input_layout[pi * kp + ki] = pixel(ki, pi, hw, (k, s, pad), ow);
        }
    }
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut bias = vec![0.0; slots];
    for pi in 0..npos {
        for ci in 0..c {
            let j = pi * kp + ci;
            bias[j] = f64::from(p.bias[ci]);
            for ki in 0..kk {
                let d = (pi * kp + ki + slots - j) % slots;
                diagonals.entry(d).or_insert_with(|| vec![0.0; slots])[j] =
                    f64::from(p.weight[ci * kk + ki]);
            }
        }
    }
    let pos = (0..c * npos).map(|f| (f % npos) * kp + f / npos).collect();
    let period = (npos.next_power_of_two() * kp).min(slots);
    (
        LinearMap::new(diagonals, slots),
        bias,
        input_layout,
        Layout { pos, period },
    )
}

/// Offset-major im2col: slot `k * P + p` (`P` = positions rounded up to a power of two);
/// channel `c` of position `p` comes out at slot `c * P + p`, replicated with period
/// `C' * P`. The convolution's diagonals are multiples of `P`.
fn conv_offset_major(
    p: &unseen_ml::cnn::network::LayerParams,
    hw: (usize, usize),
    (c, k, s, pad): (usize, usize, usize, usize),
    (_oh, ow): (usize, usize),
    slots: usize,
    big_p: usize,
    q: usize,
) -> ConvPacking {
    let kk = k * k;
    let npos = _oh * ow;
    let mut input_layout = vec![None; slots];
    for ki in 0..kk {
        for pi in 0..npos {
            input_layout[ki * big_p + pi] = pixel(ki, pi, hw, (k, s, pad), ow);
        }
    }
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut bias = vec![0.0; slots];
    for (j, b) in bias.iter_mut().enumerate() {
        let (ci, pi) = ((j % q) / big_p, j % big_p);
        if ci >= c || pi >= npos {
            continue;
        }
        *b = f64::from(p.bias[ci]);
        for ki in 0..kk {
            let d = (ki * big_p + pi + slots - j) % slots;
            diagonals.entry(d).or_insert_with(|| vec![0.0; slots])[j] =
                f64::from(p.weight[ci * kk + ki]);
        }
    }
    let pos = (0..c * npos)
        .map(|f| (f / npos) * big_p + f % npos)
        .collect();
    (
        LinearMap::new(diagonals, slots),
        bias,
        input_layout,
        Layout { pos, period: q },
    )
}

/// Compiles a network made of an optional first single-channel convolution followed by
/// squares, flattens and dense layers, for vectors of `slots` slots (a power of two).
pub fn compile_single(net: &Network, slots: usize) -> Result<Program, Error> {
    if !slots.is_power_of_two() {
        return Err(Error::Unsupported(format!(
            "{slots} slots is not a power of two"
        )));
    }
    let mut ops = Vec::new();
    let mut layers = net
        .arch
        .layers
        .iter()
        .zip(&net.params)
        .zip(&net.shapes)
        .peekable();
    let input_len = net.shapes.first().map(|s| s.len()).unwrap_or(0);
    let (mut layout, input_layout) = match layers.peek() {
        Some((
            (
                Layer::Conv2d {
                    in_channels: 1,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                },
                p,
            ),
            Shape::Image(1, h, w),
        )) => {
            let (c, k, s, pad) = (*out_channels, *kernel, *stride, *padding);
            let (oh, ow) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
            let npos = oh * ow;
            let big_p = npos.next_power_of_two();
            let kk = k * k;
            if kk * big_p > slots {
                return Err(too_large(
                    slots,
                    format!("im2col input of {kk} x {big_p} slots"),
                ));
            }
            let q = c.next_power_of_two() * big_p;
            let fits_position_major = npos.next_power_of_two() * kk.next_power_of_two() <= slots
                && c <= kk.next_power_of_two();
            if q > slots && !fits_position_major {
                return Err(too_large(
                    slots,
                    format!("convolution output of {c} channels x {big_p} positions"),
                ));
            }
            let (lin, bias, input_layout, layout) = if fits_position_major {
                conv_position_major(p, (*h, *w), (c, k, s, pad), (oh, ow), slots)
            } else {
                conv_offset_major(p, (*h, *w), (c, k, s, pad), (oh, ow), slots, big_p, q)
            };
            ops.push(Op::Linear(lin));
            ops.push(Op::AddPlain(bias));
            layers.next();
            (layout, input_layout)
        }
        _ => {
            // Dense first: the client replicates its input with period n'.
            let period = input_len.next_power_of_two();
            if period > slots {
                return Err(too_large(slots, format!("input of {input_len} values")));
            }
            let input_layout = (0..slots)
                .map(|s| (s % period < input_len).then_some(s % period))
                .collect();
            (
                Layout {
                    pos: (0..input_len).collect(),
                    period,
                },
                input_layout,
            )
        }
    };
    for ((layer, p), _) in layers {
        match layer {
            Layer::Square => ops.push(Op::Square),
            Layer::Flatten => {}
            Layer::Linear {
                in_features,
                out_features,
            } => {
                if *in_features != layout.pos.len() {
                    return Err(Error::Unsupported(format!(
                        "dense layer expects {in_features} inputs, {} are packed",
                        layout.pos.len()
                    )));
                }
                let (n, m) = (*in_features, *out_features);
                let mp = m.next_power_of_two();
                let q = layout.period;
                if mp > q {
                    return Err(Error::Unsupported(format!(
                        "dense layer with {m} outputs after a block of {q} slots"
                    )));
                }
                // Which feature (if any) sits at each slot of a block.
                let mut at = vec![None; q];
                for (f, s) in layout.pos.iter().enumerate() {
                    at[*s] = Some(f);
                }
                let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                for i in 0..mp {
                    let mut diag = vec![0.0; slots];
                    for (j, v) in diag.iter_mut().enumerate() {
                        let o = j % mp;
                        if o >= m {
                            continue;
                        }
                        if let Some(f) = at[(j + i) % q] {
                            *v = f64::from(p.weight[o * n + f]);
                        }
                    }
                    diagonals.insert(i, diag);
                }
                let map = LinearMap::new(diagonals, slots);
                ops.push(Op::Linear(if q > mp {
                    map.with_sum(mp, (q / mp).trailing_zeros() as usize)
                } else {
                    map
                }));
                let bias = (0..slots)
                    .map(|j| {
                        if j % mp < m {
                            f64::from(p.bias[j % mp])
                        } else {
                            0.0
                        }
                    })
                    .collect();
                ops.push(Op::AddPlain(bias));
                layout = Layout {
                    pos: (0..m).collect(),
                    period: mp,
                };
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "layer {other:?} in single-image mode"
                )))
            }
        }
    }
    Ok(Program {
        slots,
        input_layout,
        ops,
        output_slots: layout.pos,
        output_bound: None,
    })
}
