//! Back-propagation, Adam and the training loop.

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use unseen_model::{argmax, Layer, LayerParams, Network, Normalization, Shape};

use crate::digits::Images;

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per gradient step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Random translations of training images by up to this many pixels (0: none).
    #[serde(default)]
    pub augment_shift: usize,
    /// Decay of the exponential moving average of the weights that is evaluated and kept
    /// (Polyak averaging); 0 keeps the last weights.
    #[serde(default)]
    pub weight_average: f32,
    /// Mirror training images left-right at random (for data where that keeps the class).
    #[serde(default)]
    pub augment_flip: bool,
    /// Batch normalisation before each square during training (folded afterwards).
    #[serde(default)]
    pub batch_norm: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 42,
            augment_shift: 0,
            weight_average: 0.0,
            augment_flip: false,
            batch_norm: false,
        }
    }
}

/// Metrics after one epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub train_loss: f64,
    /// Accuracy on the training batches as they were seen.
    pub train_accuracy: f64,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: f64,
}

/// Images as a network trained with `normalization` sees them.
pub fn normalize(images: &Images, normalization: &Normalization) -> Vec<f32> {
    let shape = Shape::Image(1, images.rows, images.cols);
    images
        .pixels
        .chunks(images.rows * images.cols)
        .flat_map(|im| normalization.image(im, shape))
        .collect()
}

/// Accuracy and confusion matrix (`[true][predicted]`) of a network on normalised images.
pub fn evaluate(net: &Network, x: &[f32], labels: &[u8]) -> (f64, Vec<Vec<usize>>) {
    let n_in = net.shapes[0].len();
    let classes = net.outputs();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut correct = 0usize;
    for (xs, ys) in x.chunks(1000 * n_in).zip(labels.chunks(1000)) {
        for (pred, y) in net.predict(xs, ys.len()).into_iter().zip(ys) {
            let y = usize::from(*y);
            if y < classes {
                confusion[y][pred] += 1;
            }
            correct += usize::from(pred == y);
        }
    }
    (correct as f64 / labels.len().max(1) as f64, confusion)
}

/// Largest absolute logit of a network over normalised images (the output range an encrypted
/// evaluation must leave room for).
pub fn max_abs_logit(net: &Network, x: &[f32]) -> f64 {
    let n_in = net.shapes[0].len().max(1);
    x.chunks(1000 * n_in)
        .flat_map(|xs| net.logits(xs, xs.len() / n_in))
        .fold(0.0f64, |m, v| m.max(f64::from(v.abs())))
}

/// Adam state (PyTorch's formulation, no weight decay).
struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    t: i32,
    m: Vec<LayerParams>,
    v: Vec<LayerParams>,
}

impl Adam {
    fn new(params: &[LayerParams], lr: f32) -> Self {
        let zeros: Vec<LayerParams> = params.iter().map(LayerParams::zeros_like).collect();
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: zeros.clone(),
            v: zeros,
        }
    }

    fn step(&mut self, params: &mut [LayerParams], grads: &[LayerParams]) {
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t);
        let bc2 = 1.0 - self.beta2.powi(self.t);
        let step = self.lr / bc1;
        let bc2_sqrt = bc2.sqrt();
        for (((p, g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for (((pw, gw), mw), vw) in p
                .weight
                .iter_mut()
                .chain(p.bias.iter_mut())
                .zip(g.weight.iter().chain(&g.bias))
                .zip(m.weight.iter_mut().chain(m.bias.iter_mut()))
                .zip(v.weight.iter_mut().chain(v.bias.iter_mut()))
            {
                *mw = self.beta1 * *mw + (1.0 - self.beta1) * gw;
                *vw = self.beta2 * *vw + (1.0 - self.beta2) * gw * gw;
                let denom = vw.sqrt() / bc2_sqrt + self.eps;
                *pw -= step * *mw / denom;
            }
        }
    }
}

/// Mean cross-entropy of a batch, its number of correct predictions, and the gradients.
pub fn gradients(net: &Network, x: &[f32], labels: &[u8]) -> (f64, usize, Vec<LayerParams>) {
    let batch = labels.len();
    let acts = net.forward_train(x, batch);
    let logits = acts.last().map(Vec::as_slice).unwrap_or(&[]);
    let classes = net.outputs();
    let mut dy = vec![0.0f32; logits.len()];
    let mut loss = 0.0f64;
    let mut correct = 0;
    for ((row, d), y) in logits
        .chunks(classes)
        .zip(dy.chunks_mut(classes))
        .zip(labels)
    {
        let y = usize::from(*y);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|v| f64::from(v - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        loss += sum.ln() - f64::from(row[y] - max);
        correct += usize::from(argmax(row) == y);
        for (j, (dj, e)) in d.iter_mut().zip(&exps).enumerate() {
            *dj = ((e / sum) as f32 - if j == y { 1.0 } else { 0.0 }) / batch as f32;
        }
    }
    let grads = net.backward(&acts, dy, batch);
    (loss / batch.max(1) as f64, correct, grads)
}

/// Appends `image` translated by `(dx, dy)` and optionally mirrored left-right, filling with the
/// image's background (its minimum, the normalised value of a black pixel).
fn augment_into(
    out: &mut Vec<f32>,
    image: &[f32],
    (c, h, w): (usize, usize, usize),
    dx: isize,
    dy: isize,
    flip: bool,
) {
    let background = image.iter().copied().fold(f32::INFINITY, f32::min);
    for ci in 0..c {
        for y in 0..h as isize {
            for x in 0..w as isize {
                let (mut sx, sy) = (x - dx, y - dy);
                if flip {
                    sx = w as isize - 1 - sx;
                }
                let v = if sx >= 0 && sy >= 0 && sx < w as isize && sy < h as isize {
                    image[ci * h * w + sy as usize * w + sx as usize]
                } else {
                    background
                };
                out.push(v);
            }
        }
    }
}

/// Moves the running statistics of batch normalisation layers towards this batch's (momentum
/// 0.1, unbiased variance, as PyTorch).
fn update_running_stats(net: &mut Network, x: &[f32], batch: usize) {
    if !net
        .arch
        .layers
        .iter()
        .any(|l| matches!(l, Layer::BatchNorm(_)))
    {
        return;
    }
    let acts = net.forward_train(x, batch);
    for (i, layer) in net.arch.layers.iter().enumerate() {
        if let Layer::BatchNorm(bn) = layer {
            let features = &bn.features;
            let (mean, var) = unseen_model::layers::batch_stats(&acts[i], net.shapes[i], batch);
            let count = (batch * net.shapes[i].len() / features) as f32;
            let unbias = count / (count - 1.0).max(1.0);
            let r = &mut net.params[i].running;
            for f in 0..*features {
                r[f] = 0.9 * r[f] + 0.1 * mean[f];
                r[features + f] = 0.9 * r[features + f] + 0.1 * var[f] * unbias;
            }
        }
    }
}

/// Trains `net` in place. `on_batch` is called after every step with the number of images seen
/// in the epoch; `on_epoch` after every epoch. Deterministic for a given seed.
pub fn train(
    net: &mut Network,
    train: (&[f32], &[u8]),
    test: (&[f32], &[u8]),
    cfg: &TrainConfig,
    mut on_batch: impl FnMut(usize),
    mut on_epoch: impl FnMut(&EpochStats),
) -> Vec<EpochStats> {
    let (tx, ty) = train;
    let n_in = net.shapes[0].len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut adam = Adam::new(&net.params, cfg.learning_rate);
    let decay = cfg.weight_average.clamp(0.0, 0.99999);
    let mut average = net.params.clone();
    let mut order: Vec<usize> = (0..ty.len()).collect();
    let mut history = Vec::new();
    let mut xb = Vec::with_capacity(cfg.batch_size * n_in);
    let mut yb = Vec::with_capacity(cfg.batch_size);
    for epoch in 1..=cfg.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut batches) = (0.0f64, 0usize, 0usize);
        for chunk in order.chunks(cfg.batch_size.max(1)) {
            xb.clear();
            yb.clear();
            for &i in chunk {
                let image = &tx[i * n_in..(i + 1) * n_in];
                match net.shapes[0] {
                    Shape::Image(c, h, w) if cfg.augment_shift > 0 || cfg.augment_flip => {
                        let s = cfg.augment_shift as isize;
                        let dx = rng.gen_range(-s..=s);
                        let dy = rng.gen_range(-s..=s);
                        let flip = cfg.augment_flip && rng.gen_bool(0.5);
                        augment_into(&mut xb, image, (c, h, w), dx, dy, flip);
                    }
                    _ => xb.extend_from_slice(image),
                }
                yb.push(ty[i]);
            }
            let (loss, c, grads) = gradients(net, &xb, &yb);
            adam.step(&mut net.params, &grads);
            update_running_stats(net, &xb, yb.len());
            if decay > 0.0 {
                // Bias-corrected early on: the average starts as the mean of the steps so far.
                let d = decay.min((1.0 + adam.t as f32) / (10.0 + adam.t as f32));
                for (a, p) in average.iter_mut().zip(&net.params) {
                    for (x, y) in a
                        .weight
                        .iter_mut()
                        .chain(a.bias.iter_mut())
                        .zip(p.weight.iter().chain(&p.bias))
                    {
                        *x = d * *x + (1.0 - d) * y;
                    }
                }
            }
            loss_sum += loss;
            correct += c;
            batches += 1;
            on_batch(chunk.len());
        }
        let test_accuracy = if decay > 0.0 {
            let mut averaged = net.clone();
            for (a, p) in averaged.params.iter_mut().zip(&average) {
                a.weight.clone_from(&p.weight);
                a.bias.clone_from(&p.bias);
            }
            evaluate(&averaged, test.0, test.1).0
        } else {
            evaluate(net, test.0, test.1).0
        };
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / batches.max(1) as f64,
            train_accuracy: correct as f64 / ty.len().max(1) as f64,
            test_accuracy,
        };
        on_epoch(&stats);
        history.push(stats);
    }
    if decay > 0.0 {
        for (a, p) in average.iter_mut().zip(&net.params) {
            a.running.clone_from(&p.running);
        }
        net.params = average;
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use unseen_model::Architecture;

    /// Central differences against the analytic gradient on a tiny network.
    #[test]
    fn gradients_match_finite_differences() {
        let arch = Architecture {
            name: "tiny".into(),
            input: Shape::Image(1, 6, 6),
            layers: vec![
                Layer::conv(1, 2, 3, 1, 1),
                Layer::BatchNorm(unseen_model::layers::BatchNorm { features: 2 }),
                Layer::Square,
                Layer::AvgPool2d(unseen_model::layers::AvgPool2d {
                    kernel: 2,
                    stride: 2,
                }),
                Layer::conv(2, 2, 2, 1, 0),
                Layer::Poly(unseen_model::layers::Poly {
                    coefficients: vec![0.1, 0.5, 0.25, -0.05, 0.02],
                }),
                Layer::GlobalAvgPool,
                Layer::Flatten,
                Layer::linear(2, 5),
                Layer::BatchNorm(unseen_model::layers::BatchNorm { features: 5 }),
                Layer::Square,
                Layer::linear(5, 3),
            ],
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let net = Network::init(arch, &mut rng).expect("init");
        let x: Vec<f32> = (0..144)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let y = [0u8, 2, 1, 2];
        let (_, _, grads) = gradients(&net, &x, &y);
        let loss_at = |n: &Network| gradients(n, &x, &y).0;
        for (li, g) in grads.iter().enumerate() {
            for (j, analytic) in g.weight.iter().chain(&g.bias).enumerate().step_by(3) {
                let mut plus = net.clone();
                let mut minus = net.clone();
                let h = 1e-2f32;
                let nw = g.weight.len();
                if j < nw {
                    plus.params[li].weight[j] += h;
                    minus.params[li].weight[j] -= h;
                } else {
                    plus.params[li].bias[j - nw] += h;
                    minus.params[li].bias[j - nw] -= h;
                }
                let numeric = (loss_at(&plus) - loss_at(&minus)) / (2.0 * f64::from(h));
                let err = (numeric - f64::from(*analytic)).abs();
                assert!(
                    err < 2e-3 + 2e-2 * numeric.abs(),
                    "layer {li} param {j}: numeric {numeric} analytic {analytic}"
                );
            }
        }
    }

    /// A network trained with batch normalisation computes the same logits after folding.
    #[test]
    fn folding_batch_norm_keeps_the_function() {
        let arch = Architecture::named("ciphernet")
            .expect("arch")
            .with_batch_norm();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut net = Network::init(arch, &mut rng).expect("init");
        for p in net.params.iter_mut().filter(|p| !p.running.is_empty()) {
            let f = p.weight.len();
            for i in 0..f {
                p.weight[i] = 0.5 + i as f32 * 0.1;
                p.bias[i] = 0.2 - i as f32 * 0.05;
                p.running[i] = 0.3 * i as f32;
                p.running[f + i] = 1.0 + 0.2 * i as f32;
            }
        }
        let folded = net.fold_batch_norm().expect("fold");
        assert_eq!(folded.arch, Architecture::named("ciphernet").expect("arch"));
        let x: Vec<f32> = (0..784 * 2)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 14.0)
            .collect();
        for (a, b) in net.logits(&x, 2).iter().zip(folded.logits(&x, 2)) {
            assert!((a - b).abs() <= 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}
