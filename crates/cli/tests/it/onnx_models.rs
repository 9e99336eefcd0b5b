//! Models from PyTorch through ONNX (`tests/onnx/`, made by `scripts/onnx_models/make_models.py`):
//! import, encrypted evaluation against onnxruntime, activations fitted on calibration data, a
//! feature-vector model over its whole data set, and keys made from a served model's spec.

use crate::harness::{py, repo_file, Unseen};
use unseen_ml::digits::{DatasetKind, Images, Split};

fn onnx(name: &str) -> String {
    repo_file(&format!("tests/onnx/{name}"))
}

fn json_line(text: &str) -> serde_json::Value {
    let line = text.trim().lines().last().expect("a line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The rows of a CSV file written by `eval --save-logits` (header skipped).
fn read_logits(path: &std::path::Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).expect("logits file");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().expect("number")).collect())
        .collect()
}

/// onnxruntime's logits for the first `n` MNIST test images (pixels / 255).
fn onnxruntime_logits(u: &Unseen, model: &str, n: usize) -> Vec<Vec<f64>> {
    let test = Images::load(&harness_data(), DatasetKind::Mnist, Split::Test).expect("MNIST");
    let raw: Vec<u8> = test.pixels[..n * 784]
        .iter()
        .flat_map(|p| (f32::from(*p) / 255.0).to_le_bytes())
        .collect();
    std::fs::write(u.path("input.f32"), raw).expect("write input");
    py(
        &u.path(""),
        &[
            &repo_file("tests/onnx/ort_logits.py"),
            &onnx(model),
            "input.f32",
            "ort.f32",
        ],
    );
    let bytes = std::fs::read(u.path("ort.f32")).expect("onnxruntime output");
    let flat: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    assert_eq!(flat.len(), n * 10, "{model}: onnxruntime logits");
    flat.chunks(10).map(<[f64]>::to_vec).collect()
}

fn harness_data() -> std::path::PathBuf {
    std::path::PathBuf::from(repo_file("data"))
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

fn import_mnist(u: &Unseen, model: &str, out: &str) -> serde_json::Value {
    json_line(&u.ok(&[
        "import",
        "--onnx",
        &onnx(model),
        "--dataset",
        "mnist",
        "--normalization",
        "unit",
        "--out",
        out,
        "--data",
        &repo_file("data"),
    ]))
}

#[test]
fn encrypted_predictions_of_imported_models_equal_onnxruntime() {
    let u = Unseen::new();
    let n = 1000;
    // Batch norm and a polynomial activation, through the TorchScript exporter (opset 13) and
    // the dynamo exporter (opset 18).
    for model in ["small_cnn_bn_poly.onnx", "small_cnn_bn_poly_dynamo.onnx"] {
        let report = import_mnist(&u, model, "m");
        assert_eq!(report["input"], "1x28x28", "{report}");
        assert_eq!(report["classes"], 10, "{report}");
        let reference = onnxruntime_logits(&u, model, n);
        let limit = n.to_string();
        let eval = json_line(&u.ok(&[
            "eval",
            "--model",
            "m",
            "--encrypted",
            "--mode",
            "batch",
            "--limit",
            &limit,
            "--save-logits",
            "batch.csv",
            "--data",
            &repo_file("data"),
        ]));
        assert_eq!(eval["images"], n, "{eval}");
        let single = json_line(&u.ok(&[
            "eval",
            "--model",
            "m",
            "--encrypted",
            "--mode",
            "single",
            "--limit",
            "6",
            "--save-logits",
            "single.csv",
            "--data",
            &repo_file("data"),
        ]));
        assert_eq!(single["mode"], "single", "{single}");
        for (file, count) in [("batch.csv", n), ("single.csv", 6)] {
            let ours = read_logits(&u.path(file));
            assert_eq!(ours.len(), count, "{model} {file}");
            let mut worst = 0.0f64;
            for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
                assert_eq!(
                    argmax(a),
                    argmax(b),
                    "{model} {file}: image {i}: {a:?} vs {b:?}"
                );
                for (x, y) in a.iter().zip(b) {
                    worst = worst.max((x - y).abs());
                }
            }
            eprintln!("{model} {file}: {count} images, max |encrypted - onnxruntime| = {worst:e}");
            assert!(worst <= 1e-2, "{model} {file}: {worst}");
        }
    }
}

#[test]
fn feature_vector_model_encrypted_equals_plaintext_on_the_whole_data_set() {
    let u = Unseen::new();
    let csv = onnx("breast_cancer.csv");
    let report = json_line(&u.ok(&[
        "import",
        "--onnx",
        &onnx("breast_cancer_mlp.onnx"),
        "--normalization",
        &onnx("breast_cancer_scaler.json"),
        "--classes",
        "malignant,benign",
        "--calibration",
        &csv,
        "--out",
        "bc",
    ]));
    assert_eq!(report["input"], "30", "{report}");
    assert_eq!(report["layers"][0], "linear", "{report}");
    assert!(
        report["test_accuracy"].as_f64().expect("accuracy") > 0.95,
        "{report}"
    );
    let plain = json_line(&u.ok(&["eval", "--model", "bc", "--csv", &csv]));
    assert_eq!(plain["images"], 569, "{plain}");
    for mode in ["batch", "single"] {
        let file = format!("{mode}.csv");
        let eval = json_line(&u.ok(&[
            "eval",
            "--model",
            "bc",
            "--csv",
            &csv,
            "--encrypted",
            "--mode",
            mode,
            "--save-logits",
            &file,
            "--plot",
            "classes.png",
        ]));
        assert_eq!(eval["mode"], mode, "{eval}");
        assert_eq!(eval["images"], 569, "{eval}");
        assert_eq!(eval["agreement"], 1.0, "{eval}");
        assert_eq!(eval["accuracy"], plain["accuracy"], "{eval}");
        // the largest of 1,138 logits' errors (logits up to 65, kept below 512): 0.006-0.011
        // over repeated runs of the batch circuit, its tail now and then past 0.01
        assert!(
            eval["max_logit_error"].as_f64().expect("error") < 2e-2,
            "{eval}"
        );
        assert_eq!(read_logits(&u.path(&file)).len(), 569);
        assert!(
            std::fs::metadata(u.path("classes.png"))
                .expect("plot")
                .len()
                > 1000
        );
    }
}

#[test]
fn relu_is_refused_or_fitted_on_calibration_data() {
    let u = Unseen::new();
    let base = [
        "import",
        "--onnx",
        &onnx("small_cnn_relu.onnx"),
        "--dataset",
        "mnist",
        "--normalization",
        "unit",
        "--out",
        "relu",
    ];
    let err = u.fails(&base);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("'/1/Relu' (Relu)") && err.contains("--approximate-activations"),
        "{err}"
    );
    let mut args = base.to_vec();
    args.push("--approximate-activations");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unseen"))
        .args(&args)
        .current_dir(u.path(""))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fit = json_line(&String::from_utf8_lossy(&out.stderr));
    let before = fit["accuracy_exact_activations"].as_f64().expect("before");
    let after = fit["accuracy_polynomial_activations"]
        .as_f64()
        .expect("after");
    assert!(before > 0.85, "{fit}");
    assert!(after > before - 0.05 && after <= before + 0.01, "{fit}");
    let a = &fit["approximated"][0];
    assert_eq!(a["node"], "/1/Relu", "{fit}");
    let (lo, hi) = (
        a["measured_range"][0].as_f64(),
        a["measured_range"][1].as_f64(),
    );
    assert!(lo < Some(0.0) && hi > Some(0.0), "{fit}");
    assert_eq!(a["coefficients"].as_array().map(Vec::len), Some(3), "{fit}");
    let saved = json_line(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(saved["test_accuracy"].as_f64(), Some(after), "{saved}");
    // The fitted model runs encrypted like its plaintext self.
    let eval = json_line(&u.ok(&[
        "eval",
        "--model",
        "relu",
        "--encrypted",
        "--mode",
        "batch",
        "--limit",
        "200",
        "--data",
        &repo_file("data"),
    ]));
    assert_eq!(eval["agreement"], 1.0, "{eval}");
}

#[test]
fn bad_onnx_imports_give_one_line_errors() {
    let u = Unseen::new();
    let bytes = std::fs::read(onnx("small_cnn.onnx")).expect("model");
    std::fs::write(u.path("cut.onnx"), &bytes[..bytes.len() / 2]).expect("write");
    u.write("norm.json", "{\"mean\": [0.1, 0.2], \"std\": [1, 1]}");
    u.write("calib.csv", "a,b\n1,2\n");
    let small = onnx("small_cnn.onnx");
    let bc = onnx("breast_cancer_mlp.onnx");
    let ciphernet = repo_file("models/ciphernet-mnist");
    let cases: Vec<Vec<&str>> = vec![
        // truncated file
        vec![
            "import",
            "--onnx",
            "cut.onnx",
            "--normalization",
            "unit",
            "--out",
            "x",
        ],
        // missing file
        vec![
            "import",
            "--onnx",
            "nowhere.onnx",
            "--normalization",
            "unit",
            "--out",
            "x",
        ],
        // a feature-vector model for an image data set
        vec![
            "import",
            "--onnx",
            &bc,
            "--dataset",
            "mnist",
            "--normalization",
            "unit",
            "--out",
            "x",
        ],
        // class names that do not match the outputs
        vec![
            "import",
            "--onnx",
            &small,
            "--classes",
            "a,b",
            "--normalization",
            "unit",
            "--out",
            "x",
        ],
        // two channels of normalisation for a one-channel image
        vec![
            "import",
            "--onnx",
            &small,
            "--normalization",
            "norm.json",
            "--out",
            "x",
        ],
        // calibration rows of the wrong width
        vec![
            "import",
            "--onnx",
            &small,
            "--normalization",
            "unit",
            "--calibration",
            "calib.csv",
            "--out",
            "x",
        ],
        // a preset that is not a CNN preset
        vec![
            "import",
            "--onnx",
            &small,
            "--normalization",
            "unit",
            "--preset",
            "n4096-small",
            "--out",
            "x",
        ],
        // an evaluation CSV of the wrong width
        vec!["eval", "--model", &ciphernet, "--csv", "calib.csv"],
    ];
    for args in &cases {
        let err = u.fails(args);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    assert!(!u.path("x").exists());
}

#[test]
fn keys_made_from_the_served_spec_classify_like_the_plaintext_model() {
    let u = Unseen::new();
    import_mnist(&u, "small_cnn_bn_poly.onnx", "small");
    let server = u.serve(&["--model", "small", "--data-dir", "store"]);
    let base = format!("http://{}", server.http);
    let made = json_line(&u.ok(&[
        "keygen", "ckks", "--server", &base, "--model", "small", "--out", "keys",
    ]));
    assert_eq!(made["model"], "small", "{made}");
    let (net, _) = unseen_model::folder::load_model(&u.path("small")).expect("model");
    let test = Images::load(&harness_data(), DatasetKind::Mnist, Split::Test).expect("MNIST");
    let x: Vec<f32> = test.pixels[..64 * 784]
        .iter()
        .map(|p| f32::from(*p) / 255.0)
        .collect();
    let plain = net.predict(&x, 64);
    let data = repo_file("data");
    for i in [0usize, 1] {
        let index = i.to_string();
        let out = json_line(&u.ok(&[
            "predict-image",
            "--server",
            &base,
            "--keys",
            "keys",
            "--mnist-index",
            &index,
            "--data",
            &data,
            "--json",
        ]));
        assert_eq!(out["class"], plain[i], "image {i}: {out}");
    }
    let out = json_line(&u.ok(&[
        "predict-image",
        "--server",
        &base,
        "--keys",
        "keys",
        "--mnist-index",
        "0",
        "--batch",
        "64",
        "--data",
        &data,
        "--json",
    ]));
    let classes: Vec<usize> = out["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c.as_u64().expect("class") as usize)
        .collect();
    assert_eq!(classes, plain, "{out}");
    let err = u.fails(&[
        "keygen", "ckks", "--server", &base, "--model", "nosuch", "--out", "keys2",
    ]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nosuch"), "{err}");
}
