//! Model folders against a numpy forward pass with PyTorch's semantics and layouts, and import
//! of weights written by `safetensors.numpy`.

use crate::harness::{py, repo_file, Unseen};

fn accuracy(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON line");
    v["accuracy"].as_f64().expect("accuracy")
}

#[test]
fn shipped_model_matches_a_pytorch_layout_reference() {
    let u = Unseen::new();
    let script = repo_file("tests/interop/torch_layout.py");
    for model in ["models/ciphernet-mnist", "models/ciphernet-fashion-mnist"] {
        let dir = repo_file(model);
        let reference = py(
            &u.path(""),
            &[&script, "eval", &dir, &repo_file("data"), "500"],
        );
        let ours = u.ok(&[
            "eval",
            "--model",
            &dir,
            "--limit",
            "500",
            "--data",
            &repo_file("data"),
        ]);
        // f32 against f64 arithmetic: at most one borderline image may differ.
        assert!(
            (accuracy(&reference) - accuracy(&ours)).abs() <= 1.0 / 500.0,
            "{model}: numpy {reference} vs unseen {ours}"
        );
    }
}

#[test]
fn import_reads_weights_written_by_safetensors_numpy() {
    let u = Unseen::new();
    let script = repo_file("tests/interop/torch_layout.py");
    let model = repo_file("models/ciphernet-mnist");
    py(
        &u.path(""),
        &[&script, "resave", &model, "state_dict.safetensors"],
    );
    let out = u.ok(&[
        "import",
        "--weights",
        "state_dict.safetensors",
        "--arch",
        "ciphernet",
        "--dataset",
        "mnist",
        "--normalization",
        "dataset",
        "--out",
        "imported",
        "--data",
        &repo_file("data"),
    ]);
    assert!(out.contains("test_accuracy"));
    let a = u.ok(&[
        "eval",
        "--model",
        "imported",
        "--limit",
        "1000",
        "--data",
        &repo_file("data"),
    ]);
    let b = u.ok(&[
        "eval",
        "--model",
        &model,
        "--limit",
        "1000",
        "--data",
        &repo_file("data"),
    ]);
    assert_eq!(accuracy(&a), accuracy(&b));
    // Wrong architecture for these weights: a one-line error naming the tensor.
    let err = u.fails(&[
        "import",
        "--weights",
        "state_dict.safetensors",
        "--arch",
        "ciphernet-wide",
        "--dataset",
        "mnist",
        "--normalization",
        "dataset",
        "--out",
        "x",
    ]);
    assert!(err.contains("conv1.weight"), "{err}");
}
