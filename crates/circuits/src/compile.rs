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
//! Or, when the kernel fits in at most [`MAX_INPUT_VECTORS`] vectors, the patches replicated
//! across the output channels (see [`conv_replicated`]): the convolution is then a product per
//! input vector and a short rotate-and-sum, with no baby or giant steps. Every packing is costed
//! with the rest of the network and the cheapest is built (for ciphernet the replicated one; the
//! trade of upload against server time is measured in the README, "A first convolution over
//! several ciphertexts").

use std::collections::{BTreeMap, BTreeSet};

use unseen_model::layers::LayerOps;
use unseen_model::{Network, Shape, SparseAffine};

use crate::lower::{lower, Activation, FirstConv, LoweredNet, Stage};
use crate::program::{baby_giant, Gather, LinearMap, Op, Program};
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

/// Where the weight of input slot `pi` for output slot `po` goes between layouts of periods
/// `qi` and `qo`: its diagonal, and the first output slot of the diagonal that carries it.
fn diagonal_of(pi: usize, po: usize, qi: usize, qo: usize) -> (usize, usize) {
    if qo >= qi {
        ((pi + qi - po % qi) % qi, po)
    } else {
        let delta = (pi + qi - po) % qi;
        (delta % qo, po + delta / qo * qo)
    }
}

fn check_periods(lin: &Layout, lout: &Layout, slots: usize) -> Result<(), Error> {
    let (qi, qo) = (lin.period, lout.period);
    if qi > slots || qo > slots {
        return Err(too_large(
            slots,
            format!("a layer over {} slots", qi.max(qo)),
        ));
    }
    Ok(())
}

/// One affine stage as a diagonal map from `lin` to `lout`, with its bias.
fn affine_map(
    a: &SparseAffine,
    lin: &Layout,
    lout: &Layout,
    slots: usize,
) -> Result<(LinearMap, Vec<f64>), Error> {
    check_periods(lin, lout, slots)?;
    let (qi, qo) = (lin.period, lout.period);
    let q = qi.max(qo);
    let mut diagonals: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (o, row) in a.rows.iter().enumerate() {
        let po = lout.pos[o];
        for (i, w) in row {
            let (d, j) = diagonal_of(lin.pos[*i], po, qi, qo);
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

/// What [`affine_map`] would cost, without building its diagonals: `(rotations, diagonals)`.
fn affine_counts(
    a: &SparseAffine,
    lin: &Layout,
    lout: &Layout,
    slots: usize,
) -> Result<(usize, usize), Error> {
    check_periods(lin, lout, slots)?;
    let (qi, qo) = (lin.period, lout.period);
    let mut diagonals = BTreeSet::new();
    for (o, row) in a.rows.iter().enumerate() {
        for (i, w) in row {
            if *w != 0.0 {
                diagonals.insert(diagonal_of(lin.pos[*i], lout.pos[o], qi, qo).0);
            }
        }
    }
    let (_, _, rotations) = baby_giant(diagonals.iter().copied(), slots);
    let sum = if qi > qo {
        (qi / qo).trailing_zeros() as usize
    } else {
        0
    };
    Ok((rotations + sum, diagonals.len()))
}

/// Relative cost of a linear map at `level`: each rotation is a key switch (about
/// `5 (l+1)(l+2)` multiply-adds per coefficient: its inner product over `(l+1)(l+2)` residue
/// pairs and the transforms around it), each diagonal a plaintext product (`2 (l+1)`).
fn map_cost(rotations: usize, diagonals: usize, level: usize) -> f64 {
    let l = level as f64;
    rotations as f64 * 5.0 * (l + 1.0) * (l + 2.0) + diagonals as f64 * 2.0 * (l + 1.0)
}

/// The layouts an image can be held in: [`layout_for`]'s, and, when it fits, rows padded to a
/// power of two (so that row and channel offsets are both powers of two, which
/// baby-step/giant-step splits well).
fn image_layouts(shape: Shape, slots: usize) -> Vec<Layout> {
    let default = layout_for(shape, slots);
    let Shape::Image(c, h, w) = shape else {
        return vec![default];
    };
    let wp = w.next_power_of_two();
    let block = (h * wp).next_power_of_two();
    let period = c.next_power_of_two() * block;
    if wp == w || h < 2 || period > slots {
        return vec![default];
    }
    let hw = h * w;
    let padded = Layout {
        pos: (0..c * hw)
            .map(|f| (f / hw) * block + (f % hw) / w * wp + f % w)
            .collect(),
        period,
    };
    vec![default, padded]
}

/// The layouts an affine stage can write an image in: one channel per power-of-two block
/// (the default), and the input's own geometry: each output at the input position of the
/// first pixel its receptive field reads, shifted per channel by an offset of the receptive
/// field (channels fill the gaps a strided map leaves, then further blocks). A convolution or
/// a pooling then reads every output's inputs at the same offsets, so its map needs far fewer diagonals; the compiler
/// keeps whichever makes the program cheaper.
fn output_layouts(a: &SparseAffine, shape: Shape, lin: &Layout, slots: usize) -> Vec<Layout> {
    let mut layouts = image_layouts(shape, slots);
    let Shape::Image(c, h, w) = shape else {
        return layouts;
    };
    let hw = h * w;
    let mut anchor = vec![usize::MAX; hw];
    for (o, row) in a.rows.iter().enumerate() {
        for (i, wt) in row {
            if *wt != 0.0 {
                anchor[o % hw] = anchor[o % hw].min(lin.pos[*i]);
            }
        }
    }
    let Some(&base) = anchor.iter().min() else {
        return layouts;
    };
    if hw < 2 || anchor.contains(&usize::MAX) {
        return layouts;
    }
    let offsets: Vec<usize> = anchor.iter().map(|x| x - base).collect();
    let distinct: BTreeSet<usize> = offsets.iter().copied().collect();
    let block = (offsets.iter().max().copied().unwrap_or(0) + 1).next_power_of_two();
    if distinct.len() < hw {
        return layouts;
    }
    // channels fill the gaps a strided map leaves: each at the smallest free shift among the
    // offsets of a receptive field (so that every channel's inputs still lie at a few
    // offsets), or in a new block
    let field: BTreeSet<usize> = a
        .rows
        .iter()
        .enumerate()
        .filter(|(o, _)| o % hw == 0)
        .flat_map(|(_, row)| row.iter().filter(|(_, w)| *w != 0.0))
        .filter_map(|(i, _)| lin.pos[*i].checked_sub(anchor[0]))
        .collect();
    let mut shifts = Vec::with_capacity(c);
    let mut taken: Vec<BTreeSet<usize>> = vec![BTreeSet::new()];
    for _ in 0..c {
        let last = taken.len() - 1;
        let free = |t: usize| {
            offsets
                .iter()
                .all(|o| o + t < block && !taken[last].contains(&(o + t)))
        };
        let (b, t) = match field.iter().copied().find(|t| free(*t)) {
            Some(t) => (last, t),
            None => {
                taken.push(BTreeSet::new());
                (last + 1, 0)
            }
        };
        taken[b].extend(offsets.iter().map(|o| o + t));
        shifts.push(b * block + t);
    }
    let period = taken.len().next_power_of_two() * block;
    if period > slots {
        return layouts;
    }
    let geometric = Layout {
        pos: (0..c * hw)
            .map(|f| shifts[f / hw] + offsets[f % hw])
            .collect(),
        period,
    };
    if !layouts
        .iter()
        .any(|l| l.pos == geometric.pos && l.period == geometric.period)
    {
        layouts.push(geometric);
    }
    layouts
}

/// An input's layout and, for each slot, the input value it holds.
type InputPacking = (Layout, Vec<Option<usize>>);

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

/// The im2col packing of a first convolution, if it fits `slots`: position-major when the
/// kernel's padded size holds the channels (its diagonals are the few steps `k - c`, so few
/// Galois keys reach the top level), otherwise offset-major. (Where both fit, offset-major
/// saves the next layer a few rotations but needs more rotation keys, and for ciphernet it
/// measured no faster: README, "The other first-layer packing, measured".)
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
    if c <= kp {
        return Some(conv_position_major(fc, input, (oh, ow), slots));
    }
    if c.next_power_of_two() * big_p <= slots {
        return Some(conv_offset_major(fc, input, (oh, ow), slots));
    }
    None
}

/// Most input ciphertexts a single-image program takes (see [`conv_replicated`]): each one
/// more is one more ciphertext uploaded per image.
pub const MAX_INPUT_VECTORS: usize = 4;

/// A first operation with its bias, the input layout (all input vectors, one after the other)
/// and the layout of its output.
type FirstPacking = (Op, Vec<f64>, Vec<Option<usize>>, Layout);

/// The im2col patches replicated across the output channels, over as many input vectors as the
/// kernel needs (at most [`MAX_INPUT_VECTORS`]): slot `t * Q + c * P + p` of vector `v` holds
/// patch element `v * T + t` at output position `p` for every channel `c` (`P` positions
/// padded to a power of two, `Q = C' * P`, `T = slots / Q` elements per vector). The
/// convolution is then one product per vector and a rotate-and-sum of the `T` blocks, and its
/// output is channel `c` of position `p` at slot `c * P + p`, replicated with period `Q`.
fn conv_replicated(
    fc: &FirstConv,
    input: Shape,
    (oh, ow): (usize, usize),
    slots: usize,
) -> Option<FirstPacking> {
    let c = fc.conv.out_channels;
    let npos = oh * ow;
    let block = npos.next_power_of_two();
    let period = c.next_power_of_two() * block;
    if c == 0 || period > slots {
        return None;
    }
    let taps = fc.weight.len() / c;
    let per = slots / period;
    let vectors = taps.div_ceil(per);
    if vectors > MAX_INPUT_VECTORS {
        return None;
    }
    let mut input_layout = vec![None; vectors * slots];
    let mut weights = vec![vec![0.0; slots]; vectors];
    for (v, w) in weights.iter_mut().enumerate() {
        for t in 0..per {
            let ki = v * per + t;
            if ki >= taps {
                break;
            }
            for ci in 0..c {
                for pi in 0..npos {
                    let s = t * period + ci * block + pi;
                    input_layout[v * slots + s] = pixel(fc, input, ki, pi, ow);
                    w[s] = fc.weight[ci * taps + ki];
                }
            }
        }
    }
    let mut bias = vec![0.0; slots];
    for (s, b) in bias.iter_mut().enumerate() {
        let (ci, pi) = ((s % period) / block, s % block);
        if ci < c && pi < npos {
            *b = fc.bias[ci];
        }
    }
    let sum = (per > 1).then(|| (period, per.trailing_zeros() as usize));
    let pos = (0..c * npos)
        .map(|f| (f / npos) * block + f % npos)
        .collect();
    Some((
        Op::Gather(Gather { weights, sum }),
        bias,
        input_layout,
        Layout { pos, period },
    ))
}

/// The packings of a first convolution that fit `slots`: one input vector
/// ([`first_conv_packing`]) and several ([`conv_replicated`]).
fn first_conv_packings(fc: &FirstConv, input: Shape, slots: usize) -> Vec<FirstPacking> {
    let Ok(Shape::Image(_, oh, ow)) = fc.conv.output_shape(input) else {
        return Vec::new();
    };
    let one = first_conv_packing(fc, input, slots).map(|(m, b, l, o)| (Op::Linear(m), b, l, o));
    one.into_iter()
        .chain(conv_replicated(fc, input, (oh, ow), slots))
        .collect()
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

/// The cheapest choice of output layouts for `stages` (one per affine stage, among its
/// [`output_layouts`]), entered with `layout` after `depth` levels of `total`: its cost and the
/// layouts. A layout under which a later stage does not fit is passed over; the error is
/// returned only when none fits.
fn cheapest(
    stages: &[(&Stage, &Shape)],
    layout: &Layout,
    depth: usize,
    total: usize,
    slots: usize,
) -> Result<(f64, Vec<Layout>), Error> {
    let Some(((stage, shape), rest)) = stages.split_first() else {
        return Ok((0.0, Vec::new()));
    };
    match stage {
        Stage::Activation(act) => cheapest(rest, layout, depth + act.depth(), total, slots),
        Stage::Affine(a) => {
            check_inputs(a, layout)?;
            let mut best: Option<(f64, Vec<Layout>)> = None;
            let mut error = None;
            for out in output_layouts(a, **shape, layout, slots) {
                let costed = affine_counts(a, layout, &out, slots).and_then(|(rot, diag)| {
                    let here = map_cost(rot, diag, total.saturating_sub(depth));
                    let (after, layouts) = cheapest(rest, &out, depth + 1, total, slots)?;
                    Ok((here + after, layouts))
                });
                match costed {
                    Ok((cost, mut layouts)) if best.as_ref().is_none_or(|(c, _)| cost < *c) => {
                        layouts.insert(0, out);
                        best = Some((cost, layouts));
                    }
                    Ok(_) => {}
                    Err(e) => error = error.or(Some(e)),
                }
            }
            match (best, error) {
                (Some(best), _) => Ok(best),
                (None, Some(e)) => Err(e),
                (None, None) => Err(Error::Unsupported("an affine stage with no layout".into())),
            }
        }
    }
}

fn check_inputs(a: &SparseAffine, layout: &Layout) -> Result<(), Error> {
    if a.inputs != layout.pos.len() {
        return Err(Error::Unsupported(format!(
            "an affine stage expects {} inputs, {} are packed",
            a.inputs,
            layout.pos.len()
        )));
    }
    Ok(())
}

/// The input layouts of a network whose first stage is not an unfolded convolution, with the
/// slot of each input value.
fn plain_inputs(lowered: &LoweredNet, slots: usize) -> Result<Vec<InputPacking>, Error> {
    image_layouts(lowered.input, slots)
        .into_iter()
        .map(|l| input_slots(lowered, l, slots))
        .collect()
}

fn input_slots(lowered: &LoweredNet, layout: Layout, slots: usize) -> Result<InputPacking, Error> {
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
    Ok((layout, input_layout))
}

/// Compiles a lowered network for vectors of `slots` slots (a power of two). Where an image
/// can be laid out in more than one way ([`output_layouts`]), every combination is costed
/// ([`map_cost`], by the level each map runs at) and the cheapest is built.
pub fn compile_lowered(lowered: &LoweredNet, slots: usize) -> Result<Program, Error> {
    if !slots.is_power_of_two() {
        return Err(Error::Unsupported(format!(
            "{slots} slots is not a power of two"
        )));
    }
    let total = lowered.depth();
    let stages: Vec<(&Stage, &Shape)> = lowered.stages.iter().zip(&lowered.shapes).collect();
    let packings = lowered
        .first_conv
        .as_ref()
        .map(|fc| first_conv_packings(fc, lowered.input, slots))
        .unwrap_or_default();
    // the layouts of the later stages (and of a plain input), cheapest first
    let mut ops = Vec::new();
    let (input, input_layout, rest, layouts) = match packings.is_empty() {
        false => {
            // the first convolution's packings, each costed with the rest of the network
            let mut best: Option<(f64, FirstPacking, Vec<Layout>)> = None;
            let mut error = None;
            for packing in packings {
                let here = match &packing.0 {
                    Op::Linear(m) => map_cost(m.rotation_count(), m.diagonals.len(), total),
                    Op::Gather(g) => map_cost(g.rotation_count(), g.weights.len(), total),
                    _ => 0.0,
                };
                match cheapest(&stages[1..], &packing.3, 1, total, slots) {
                    Ok((rest, layouts))
                        if best.as_ref().is_none_or(|(c, _, _)| here + rest < *c) =>
                    {
                        best = Some((here + rest, packing, layouts));
                    }
                    Ok(_) => {}
                    Err(e) => error = error.or(Some(e)),
                }
            }
            let (_, (op, bias, input_layout, layout), layouts) = best.ok_or_else(|| {
                error.unwrap_or_else(|| too_large(slots, "the first convolution".into()))
            })?;
            ops.push(op);
            ops.push(Op::AddPlain(bias));
            (layout, input_layout, &stages[1..], layouts)
        }
        true => {
            let mut best: Option<(f64, InputPacking, Vec<Layout>)> = None;
            let mut error = None;
            for (layout, slots_of) in plain_inputs(lowered, slots)? {
                match cheapest(&stages, &layout, 0, total, slots) {
                    Ok((cost, layouts)) if best.as_ref().is_none_or(|(c, _, _)| cost < *c) => {
                        best = Some((cost, (layout, slots_of), layouts));
                    }
                    Ok(_) => {}
                    Err(e) => error = error.or(Some(e)),
                }
            }
            let (_, (layout, input_layout), layouts) = best.ok_or_else(|| {
                error.unwrap_or_else(|| too_large(slots, format!("an input of {}", lowered.input)))
            })?;
            (layout, input_layout, &stages[..], layouts)
        }
    };
    let mut layout = input;
    let mut layouts = layouts.into_iter();
    for (stage, shape) in rest {
        match stage {
            Stage::Affine(a) => {
                check_inputs(a, &layout)?;
                let out = layouts.next().unwrap_or_else(|| layout_for(**shape, slots));
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
