//! Single-image packing: one slot vector carries one input through the whole network.
//!
//! Layouts. Every value between stages sits in a *replicated* layout: feature `f` at slot
//! `pos[f] + t * period` for every `t` (`period` a power of two), so rotations wrap around
//! correctly and nothing needs masking. Images keep their geometry, one channel per block of
//! `next_pow2(H * W)` slots, so a convolution's diagonals do not depend on the position; vectors
//! are packed densely.
//!
//! Each affine stage is one generalised-diagonal linear map between two layouts: the weight of
//! input `i` for output `o` goes on diagonal `(pos_in[i] - pos_out[o]) mod period_in`, folded
//! modulo `period_out` when the output period is smaller (the hybrid method), in which case a
//! rotate-and-sum of `period_in / period_out` blocks completes the map.
//!
//! When the first stage is exactly one convolution, the client sends its input unfolded into
//! patches (im2col), so that the convolution needs few diagonals: slot `k * P + p` (offset-major)
//! or `p * K' + k` (position-major) holds what patch element `k` sees at output position `p`.

use std::collections::BTreeMap;

use unseen_model::layers::LayerOps;
use unseen_model::{Network, Shape, SparseAffine};

use crate::lower::{lower, Activation, FirstConv, LoweredNet, Stage};
use crate::program::{LinearMap, Op, Program};
use crate::Error;

/// Where features live: feature `f` at slot `pos[f] + t * period` for every `t`.
#[derive(Debug, Clone)]
struct Layout {
    pos: Vec<usize>,
    period: usize,
}

fn too_large(slots: usize, what: String) -> Error {
    Error::TooLarge { slots, what }
}

/// The layout a stage writes its output in: images one channel per power-of-two block when
/// that fits, otherwise (and for vectors) dense.
fn layout_for(shape: Shape, slots: usize) -> Layout {
    if let Shape::Image(c, h, w) = shape {
        let block = (h * w).next_power_of_two();
        if c > 1 && h * w > 1 && c.next_power_of_two() * block <= slots {
            return Layout {
                pos: (0..c * h * w)
                    .map(|f| (f / (h * w)) * block + f % (h * w))
                    .collect(),
                period: c.next_power_of_two() * block,
            };
        }
    }
    let n = shape.len();
    Layout {
        pos: (0..n).collect(),
        period: n.next_power_of_two(),
    }
}

/// The replicated vector with `values[f]` at every slot of feature `f`.
fn replicate(values: &[f64], layout: &Layout, slots: usize) -> Vec<f64> {
    let mut v = vec![0.0; slots];
    for (f, x) in values.iter().enumerate() {
        let mut s = layout.pos[f];
        while s < slots {
            v[s] = *x;
            s += layout.period;
        }
    }
    v
}

/// One affine stage as a diagonal map from `lin` to `lout`, with its bias.
fn affine_map(
    a: &SparseAffine,
    lin: &Layout,
    lout: &Layout,
    slots: usize,
) -> Result<(LinearMap, Vec<f64>), Error> {
    let (qi, qo) = (lin.period, lout.period);
    if qi > slots || qo > slots {
        return Err(too_large(
            slots,
            format!("a layer over {} slots", qi.max(qo)),
        ));
    }
    let q = qi.max(qo);
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (o, row) in a.rows.iter().enumerate() {
        let po = lout.pos[o];
        for (i, w) in row {
            let pi = lin.pos[*i];
            let (d, j) = if qo >= qi {
                ((pi + qi - po % qi) % qi, po)
            } else {
                let delta = (pi + qi - po) % qi;
                (delta % qo, po + delta / qo * qo)
            };
            let diag = diagonals.entry(d).or_insert_with(|| vec![0.0; slots]);
            let mut s = j;
            while s < slots {
                diag[s] = *w;
                s += q;
            }
        }
    }
    let map = LinearMap::new(diagonals, slots);
    let map = if qi > qo {
        map.with_sum(qo, (qi / qo).trailing_zeros() as usize)
    } else {
        map
    };
    Ok((map, replicate(&a.bias, lout, slots)))
}

type ConvPacking = (LinearMap, Vec<f64>, Vec<Option<usize>>, Layout);

/// Input index seen by patch element `ki` (`ci * k * k + ky * k + kx`) at output position `pi`.
fn pixel(fc: &FirstConv, input: Shape, ki: usize, pi: usize, ow: usize) -> Option<usize> {
    let (_, h, w) = input.dims();
    let k = fc.conv.kernel;
    let (ci, ky, kx) = (ki / (k * k), (ki / k) % k, ki % k);
    let (oy, ox) = (pi / ow, pi % ow);
    let iy = (oy * fc.conv.stride + ky) as isize - fc.conv.padding as isize;
    let ix = (ox * fc.conv.stride + kx) as isize - fc.conv.padding as isize;
    (iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w)
        .then(|| ci * h * w + iy as usize * w + ix as usize)
}

/// Position-major im2col: channel `c` of position `p` comes out at slot `p * K' + c`.
fn conv_position_major(
    fc: &FirstConv,
    input: Shape,
    (oh, ow): (usize, usize),
    slots: usize,
) -> ConvPacking {
    let c = fc.conv.out_channels;
    let npos = oh * ow;
    let kk = fc.weight.len() / c;
    let kp = kk.next_power_of_two();
    let period = (npos.next_power_of_two() * kp).min(slots);
    let mut input_layout = vec![None; slots];
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut bias = vec![0.0; slots];
    for base in (0..slots).step_by(period) {
        for pi in 0..npos {
            for ki in 0..kk {
                input_layout[base + pi * kp + ki] = pixel(fc, input, ki, pi, ow);
            }
            for ci in 0..c {
                let j = base + pi * kp + ci;
                bias[j] = fc.bias[ci];
                for ki in 0..kk {
                    let d = (ki + slots - ci) % slots;
                    diagonals.entry(d).or_insert_with(|| vec![0.0; slots])[j] =
                        fc.weight[ci * kk + ki];
                }
            }
        }
    }
    let pos = (0..c * npos).map(|f| (f % npos) * kp + f / npos).collect();
    (
        LinearMap::new(diagonals, slots),
        bias,
        input_layout,
        Layout { pos, period },
    )
}

/// Offset-major im2col: channel `c` of position `p` comes out at slot `c * P + p`, replicated
/// with period `C' * P`.
fn conv_offset_major(
    fc: &FirstConv,
    input: Shape,
    (oh, ow): (usize, usize),
    slots: usize,
) -> ConvPacking {
    let c = fc.conv.out_channels;
    let npos = oh * ow;
    let big_p = npos.next_power_of_two();
    let q = c.next_power_of_two() * big_p;
    let kk = fc.weight.len() / c;
    let mut input_layout = vec![None; slots];
    for ki in 0..kk {
        for pi in 0..npos {
            input_layout[ki * big_p + pi] = pixel(fc, input, ki, pi, ow);
        }
    }
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut bias = vec![0.0; slots];
    for (j, b) in bias.iter_mut().enumerate() {
        let (ci, pi) = ((j % q) / big_p, j % big_p);
        if ci >= c || pi >= npos {
            continue;
        }
        *b = fc.bias[ci];
        for ki in 0..kk {
            let d = (ki * big_p + pi + slots - j) % slots;
            diagonals.entry(d).or_insert_with(|| vec![0.0; slots])[j] = fc.weight[ci * kk + ki];
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

/// The im2col packing of a first convolution, if it fits `slots`.
fn first_conv_packing(fc: &FirstConv, input: Shape, slots: usize) -> Option<ConvPacking> {
    let Ok(Shape::Image(c, oh, ow)) = fc.conv.output_shape(input) else {
        return None;
    };
    let npos = oh * ow;
    let big_p = npos.next_power_of_two();
    let kk = fc.weight.len() / c.max(1);
    let kp = kk.next_power_of_two();
    if kp * big_p > slots {
        return None;
    }
    if big_p * kp <= slots && c <= kp {
        return Some(conv_position_major(fc, input, (oh, ow), slots));
    }
    if c.next_power_of_two() * big_p <= slots {
        return Some(conv_offset_major(fc, input, (oh, ow), slots));
    }
    None
}

fn activation_ops(a: Activation, ops: &mut Vec<Op>, layout: &Layout, slots: usize) {
    match a {
        Activation::Square => ops.push(Op::Square),
        Activation::Cube { linear } => {
            ops.push(Op::Keep);
            ops.push(Op::Square);
            ops.push(Op::MulKept);
            if linear != 0.0 {
                ops.push(Op::AddKept(linear));
            }
        }
        Activation::Quartic { shift, linear } => {
            ops.push(Op::Keep);
            ops.push(Op::Square);
            if shift != 0.0 {
                ops.push(Op::AddPlain(replicate(
                    &vec![shift; layout.pos.len()],
                    layout,
                    slots,
                )));
            }
            ops.push(Op::Square);
            if linear != 0.0 {
                ops.push(Op::AddKept(linear));
            }
        }
    }
}

/// Compiles a lowered network for vectors of `slots` slots (a power of two).
pub fn compile_lowered(lowered: &LoweredNet, slots: usize) -> Result<Program, Error> {
    if !slots.is_power_of_two() {
        return Err(Error::Unsupported(format!(
            "{slots} slots is not a power of two"
        )));
    }
    let mut ops = Vec::new();
    let mut stages = lowered.stages.iter().zip(&lowered.shapes).peekable();
    let first = lowered
        .first_conv
        .as_ref()
        .and_then(|fc| first_conv_packing(fc, lowered.input, slots));
    let (mut layout, input_layout) = match first {
        Some((map, bias, input_layout, layout)) => {
            stages.next();
            ops.push(Op::Linear(map));
            ops.push(Op::AddPlain(bias));
            (layout, input_layout)
        }
        None => {
            let layout = layout_for(lowered.input, slots);
            if layout.period > slots {
                return Err(too_large(slots, format!("an input of {}", lowered.input)));
            }
            let mut input_layout = vec![None; slots];
            for (f, p) in layout.pos.iter().enumerate() {
                let mut s = *p;
                while s < slots {
                    input_layout[s] = Some(f);
                    s += layout.period;
                }
            }
            (layout, input_layout)
        }
    };
    for (stage, shape) in stages {
        match stage {
            Stage::Affine(a) => {
                if a.inputs != layout.pos.len() {
                    return Err(Error::Unsupported(format!(
                        "an affine stage expects {} inputs, {} are packed",
                        a.inputs,
                        layout.pos.len()
                    )));
                }
                let out = layout_for(*shape, slots);
                let (map, bias) = affine_map(a, &layout, &out, slots)?;
                ops.push(Op::Linear(map));
                ops.push(Op::AddPlain(bias));
                layout = out;
            }
            Stage::Activation(act) => activation_ops(*act, &mut ops, &layout, slots),
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

/// Compiles a network for vectors of `slots` slots (a power of two).
pub fn compile_single(net: &Network, slots: usize) -> Result<Program, Error> {
    compile_lowered(&lower(net)?, slots)
}
