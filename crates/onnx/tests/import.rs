//! Imports the models of `tests/onnx/` (made by `scripts/onnx_models/make_models.py`) and checks
//! the networks against onnxruntime: stored logits for the breast-cancer MLP, a live run of
//! `tests/onnx/ort_logits.py` for the image models (the python of `UNSEEN_PYTHON`, a venv with
//! onnxruntime and numpy, as `scripts/test.sh` makes it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use unseen_model::{Layer, Shape};
use unseen_onnx::{fit_activation, import, Error, ImportOptions, Imported};

const IMAGE_MODELS: [&str; 4] = [
    "small_cnn.onnx",
    "small_cnn_dynamo.onnx",
    "small_cnn_bn_poly.onnx",
    "small_cnn_bn_poly_dynamo.onnx",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_bytes(name: &str) -> Vec<u8> {
    let path = repo().join("tests/onnx").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn import_file(name: &str, approximate_activations: bool) -> Result<Imported, Error> {
    import(
        &model_bytes(name),
        &ImportOptions {
            approximate_activations,
        },
    )
}

fn kinds(imported: &Imported) -> Vec<&'static str> {
    imported
        .network
        .arch
        .layers
        .iter()
        .map(|l| l.ops().kind())
        .collect()
}

fn polys(imported: &Imported) -> Vec<Vec<f64>> {
    imported
        .network
        .arch
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Poly(p) => Some(p.coefficients.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_model_but_relu_imports() {
    let cnn = [
        "conv2d",
        "square",
        "avg_pool2d",
        "flatten",
        "linear",
        "square",
        "linear",
    ];
    let poly = [
        "conv2d",
        "poly",
        "avg_pool2d",
        "flatten",
        "linear",
        "poly",
        "linear",
    ];
    let bn_poly = [
        "conv2d",
        "batch_norm",
        "poly",
        "avg_pool2d",
        "flatten",
        "linear",
        "poly",
        "linear",
    ];
    let cases: [(&str, &[&str], i64); 5] = [
        ("small_cnn.onnx", &cnn, 13),
        ("small_cnn_dynamo.onnx", &cnn, 18),
        ("small_cnn_bn_poly.onnx", &bn_poly, 13),
        ("small_cnn_bn_poly_dynamo.onnx", &poly, 18),
        (
            "breast_cancer_mlp.onnx",
            &["linear", "square", "linear"],
            13,
        ),
    ];
    for (name, want, opset) in cases {
        let m = import_file(name, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(kinds(&m), want, "{name}");
        assert_eq!(m.opset, opset, "{name}");
        assert!(m.producer.starts_with("pytorch"), "{name}: {}", m.producer);
        assert!(m.replaced.is_empty(), "{name}");
        assert_eq!(m.network.arch.name, "main_graph", "{name}");
        let (input, outputs) = if name.starts_with("breast") {
            (Shape::Vector(30), 2)
        } else {
            (Shape::Image(1, 28, 28), 10)
        };
        assert_eq!(m.network.arch.input, input, "{name}");
        assert_eq!(m.network.outputs(), outputs, "{name}");
        // The exporter's f32 constants of 0.1 + 0.5 x + 0.25 x^2.
        for c in polys(&m) {
            assert_eq!(c, [f64::from(0.1f32), 0.5, 0.25], "{name}");
        }
        // Same flat list of parameters as the graph's (4 weights and biases of the CNN,
        // Conv 4x1x5x5, dense 144->32 and 32->10).
        if name.starts_with("small_cnn") {
            assert_eq!(
                m.network.arch.layers[0],
                Layer::conv(1, 4, 5, 2, 1),
                "{name}"
            );
            assert_eq!(m.network.shapes[1], Shape::Image(4, 13, 13), "{name}");
        }
    }
}

#[test]
fn relu_is_refused_unless_approximated() {
    let err = import_file("small_cnn_relu.onnx", false).expect_err("relu");
    let msg = err.to_string();
    assert!(matches!(err, Error::NotPolynomial { .. }), "{msg}");
    assert!(msg.contains("'/1/Relu'") && msg.contains("(Relu)"), "{msg}");
    assert!(msg.contains("--approximate-activations"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");

    let m = import_file("small_cnn_relu.onnx", true).expect("approximated");
    assert_eq!(
        kinds(&m),
        ["conv2d", "poly", "avg_pool2d", "flatten", "linear"]
    );
    assert_eq!(m.replaced.len(), 1);
    let r = &m.replaced[0];
    assert_eq!(
        (r.node.as_str(), r.op_type.as_str(), r.layer_index),
        ("/1/Relu", "Relu", 1)
    );
    let Layer::Poly(p) = &m.network.arch.layers[1] else {
        panic!("layer 1 is not a polynomial");
    };
    assert_eq!(p.coefficients, fit_activation("Relu", -1.0, 1.0, 2));
}

#[derive(serde::Deserialize)]
struct Scaler {
    mean: Vec<f64>,
    std: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct BreastCancer {
    features: Vec<Vec<f64>>,
    labels: Vec<usize>,
    ort_logits: Vec<Vec<f64>>,
}

fn read_json<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = repo().join("tests/onnx").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn breast_cancer_mlp_matches_stored_onnxruntime_logits() {
    let scaler: Scaler = read_json("breast_cancer_scaler.json");
    let data: BreastCancer = read_json("breast_cancer_test.json");
    let m = import_file("breast_cancer_mlp.onnx", false).expect("imports");
    let n = data.features.len();
    assert!(n > 50 && data.ort_logits.len() == n && data.labels.len() == n);
    let x: Vec<f32> = data
        .features
        .iter()
        .flat_map(|row| {
            row.iter()
                .zip(scaler.mean.iter().zip(&scaler.std))
                .map(|(v, (m, s))| ((v - m) / s) as f32)
        })
        .collect();
    let logits = m.network.logits(&x, n);
    let mut worst = 0.0f64;
    for (got, want) in logits.chunks(2).zip(&data.ort_logits) {
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((f64::from(*g) - w).abs());
        }
    }
    eprintln!("breast_cancer_mlp.onnx: {n} samples, max |unseen - onnxruntime| = {worst:e}");
    assert!(worst <= 1e-4, "max |unseen - onnxruntime| = {worst}");
    let correct = m
        .network
        .predict(&x, n)
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| p == l)
        .count();
    assert!(correct as f64 / n as f64 > 0.9, "accuracy {correct}/{n}");
}

/// The first `n` MNIST test images as pixels / 255 (the image models' input).
fn mnist_test_images(n: usize) -> Vec<f32> {
    let path = repo().join("data/mnist/t10k-images-idx3-ubyte.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .take((16 + n * 784) as u64)
        .read_to_end(&mut bytes)
        .expect("gunzip");
    assert_eq!(bytes[..4], [0, 0, 8, 3], "IDX image magic");
    assert_eq!(bytes.len(), 16 + n * 784);
    bytes[16..].iter().map(|p| f32::from(*p) / 255.0).collect()
}

fn python() -> String {
    match std::env::var("UNSEEN_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let venv = repo().join("target/phe-venv/bin/python");
            assert!(
                venv.exists(),
                "a Python with onnxruntime and numpy is needed: run `bash scripts/test.sh` (it makes target/phe-venv), or set UNSEEN_PYTHON"
            );
            venv.display().to_string()
        }
    }
}

/// Logits of onnxruntime for raw f32 inputs.
fn onnxruntime_logits(model: &str, input: &[f32]) -> Vec<f32> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("onnx-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stem = model.trim_end_matches(".onnx");
    let (inp, out) = (
        dir.join(format!("{stem}.in.f32")),
        dir.join(format!("{stem}.out.f32")),
    );
    let raw: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&inp, raw).expect("write input");
    let script = repo().join("tests/onnx/ort_logits.py");
    let python = python();
    let run = Command::new(&python)
        .arg(&script)
        .arg(repo().join("tests/onnx").join(model))
        .arg(&inp)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        run.status.success(),
        "{python} {}: {}\n{}",
        script.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&out).expect("read logits");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn image_models_match_onnxruntime() {
    let n = 50;
    let x = mnist_test_images(n);
    for model in IMAGE_MODELS {
        let m = import_file(model, false).unwrap_or_else(|e| panic!("{model}: {e}"));
        let ours = m.network.logits(&x, n);
        let theirs = onnxruntime_logits(model, &x);
        assert_eq!(ours.len(), n * 10, "{model}");
        assert_eq!(theirs.len(), n * 10, "{model}: onnxruntime");
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{model}: {n} images, max |unseen - onnxruntime| = {worst:e}");
        assert!(
            worst <= 1e-3,
            "{model}: max |unseen - onnxruntime| = {worst}"
        );
        // The f64 reference the compiler checks against agrees too.
        let first = m
            .network
            .logits_f64(&x[..784].iter().map(|v| f64::from(*v)).collect::<Vec<_>>());
        for (a, b) in first.iter().zip(&theirs[..10]) {
            assert!((a - f64::from(*b)).abs() <= 1e-3, "{model}: f64 {a} vs {b}");
        }
    }
}

/// xorshift64*, for reproducible garbage.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.max(1);
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn broken_files_are_errors_not_panics() {
    let opts = ImportOptions::default();
    let good = model_bytes("small_cnn.onnx");
    // Every truncation at a stride, and the last few bytes one by one.
    let cuts = (0..good.len())
        .step_by(97)
        .chain(good.len() - 16..good.len());
    for cut in cuts {
        assert!(
            import(&good[..cut], &opts).is_err(),
            "truncated at {cut} of {}",
            good.len()
        );
    }
    let err = import(&good[..good.len() / 2], &opts).expect_err("half a file");
    assert!(err.to_string().starts_with("not an ONNX model: "), "{err}");
    for seed in 1..200u64 {
        let bytes = noise(seed, (seed as usize * 37) % 3000);
        assert!(import(&bytes, &opts).is_err(), "noise {seed}");
    }
    // Flipped bytes in a valid model: any outcome but a panic.
    for seed in 1..300u64 {
        let mut bytes = good.clone();
        let r = noise(seed, 8);
        for pair in r.chunks(4) {
            let at =
                (usize::from(pair[0]) << 16 | usize::from(pair[1]) << 8 | usize::from(pair[2]))
                    % bytes.len();
            bytes[at] ^= pair[3].max(1);
        }
        let _ = import(&bytes, &opts);
    }
    assert!(matches!(import(b"", &opts), Err(Error::EmptyGraph)));
}
