"""The model side from Python: ONNX import, encrypted evaluation, python -m unseen, and a
PyTorch -> ONNX -> unseen round trip where torch is installed."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unseen

REPO = Path(__file__).resolve().parents[2]


def test_import_and_evaluate_encrypted(tmp_path):
    report = unseen.import_onnx(REPO / "tests/onnx/small_cnn.onnx", tmp_path / "m", dataset="mnist",
                                data=REPO / "data")
    assert report["test_accuracy"] > 0.9, report
    assert (tmp_path / "m/model.json").exists()
    figures = unseen.eval_encrypted(tmp_path / "m", limit=20, mode="batch", data=REPO / "data")
    assert figures["images"] == 20, figures
    assert figures["agreement"] == 1.0 and figures["accuracy"] == figures["plaintext_accuracy"], figures


def test_command_errors_are_one_line(tmp_path):
    with pytest.raises(unseen.CommandError) as e:
        unseen.import_onnx(tmp_path / "missing.onnx", tmp_path / "m")
    assert "missing.onnx" in str(e.value) and "\n" not in str(e.value)


def test_python_m_unseen_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "unseen", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("unseen "), out
    bad = subprocess.run([sys.executable, "-m", "unseen", "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad
    params = subprocess.run([sys.executable, "-m", "unseen", "ckks", "params", "--preset", "n8192-cnn"],
                            capture_output=True, text=True)
    assert params.returncode == 0 and "128" in params.stdout, params


def test_pytorch_round_trip(tmp_path):
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed in this venv (it is 3 GB with CUDA); "
                    "pip install torch to run the PyTorch -> ONNX -> unseen round trip")
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 5, stride=2)
            self.fc = torch.nn.Linear(4 * 12 * 12, 10)

        def forward(self, x):
            y = self.conv(x)
            return self.fc((y * y).flatten(1))

    net = Net()
    report = unseen.import_torch(net, torch.zeros(1, 1, 28, 28), tmp_path / "t", dataset="mnist",
                                 data=REPO / "data")
    assert report["input"] == "1x28x28", report
    # the decrypted logits of the first MNIST test images equal PyTorch's on the same pixels
    import gzip
    with gzip.open(REPO / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: 10 * 784]
    x = torch.from_numpy((pixels.astype(np.float32) / 255.0).reshape(10, 1, 28, 28))
    want = net(x).detach().numpy()
    figures = unseen.eval_encrypted(tmp_path / "t", limit=10, mode="single", data=REPO / "data",
                                    save_logits=tmp_path / "logits.csv")
    assert figures["agreement"] == 1.0, figures
    got = np.loadtxt(tmp_path / "logits.csv", delimiter=",", skiprows=1)
    assert got.shape == want.shape
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    assert np.abs(got - want).max() < 1e-2 * max(1.0, np.abs(want).max()), (got, want)
