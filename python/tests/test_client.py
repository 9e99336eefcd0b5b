"""unseen.Client against a server started on loopback: classes equal onnxruntime's for the
plaintext ONNX model, the linear model's prediction equals w.x + b, and every error path
raises a clear exception."""

import gzip
import socket
from pathlib import Path

import numpy as np
import pytest

import unseen

REPO = Path(__file__).resolve().parents[2]


def mnist_test_images(n):
    with gzip.open(REPO / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=16)[: n * 784].reshape(n, 28, 28)


def onnx_classes(images):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the plaintext reference")
    sess = ort.InferenceSession(str(REPO / "tests/onnx/small_cnn.onnx"), providers=["CPUExecutionProvider"])
    x = (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    name = sess.get_inputs()[0].name
    batch = sess.get_inputs()[0].shape[0]
    if isinstance(batch, int):
        out = np.concatenate([sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])
    else:
        out = sess.run(None, {name: x})[0]
    return out.argmax(axis=1)


def test_single_and_batch_equal_the_plaintext_model(server, tmp_path):
    images = mnist_test_images(20)
    want = onnx_classes(images)
    client = unseen.Client(server["url"], model="small-cnn", keys=tmp_path / "keys")
    one = client.predict(images[0])
    assert one.classes.tolist() == [want[0]]
    assert one.probabilities.shape == (1, 10)
    assert abs(one.probabilities.sum() - 1.0) < 1e-9
    many = client.predict(images)
    assert many.classes.tolist() == want.tolist()
    assert len(many.names) == 20
    # the secret key stays in the folder, owner-only; a second client reuses the keys
    assert (tmp_path / "keys/secret.key").stat().st_mode & 0o077 == 0
    again = unseen.Client(server["url"], model="small-cnn", keys=tmp_path / "keys")
    assert again.key_id() == client.key_id()
    assert again.predict(images[1:2]).classes.tolist() == [want[1]]


def test_linear_model(server, tmp_path):
    model = server["salary"]
    features = [35.0, 7.0, 2.0, 0.0]
    expected = sum(w * x for w, x in zip(model["coefficients"], features)) + model["intercept"]
    client = unseen.Client(server["url"], model="salary", keys=tmp_path / "lin")
    assert abs(client.predict_linear(features) - expected) < 1e-6
    assert (tmp_path / "lin/paillier.json").stat().st_mode & 0o077 == 0


def test_errors_raise_clear_exceptions(server, tmp_path):
    with pytest.raises(unseen.ServerError) as e:
        unseen.Client(server["url"], model="nope", keys=tmp_path / "k1").predict(np.zeros((28, 28), np.uint8))
    assert e.value.code == "unknown_model"
    client = unseen.Client(server["url"], model="small-cnn", keys=tmp_path / "k2")
    with pytest.raises(TypeError):
        client.predict(np.zeros((28, 28)))
    with pytest.raises(ValueError):
        client.predict(np.zeros((27, 28), np.uint8))
    with pytest.raises(unseen.ServerError) as e:
        unseen.Client(server["url"], model="small-cnn", keys=tmp_path / "k3").predict_linear([1.0, 2.0])
    assert e.value.code == "unknown_model"
    with pytest.raises(ValueError):
        unseen.Client(server["url"], model="salary", keys=tmp_path / "k4").predict_linear([float("nan")] * 4)
    with pytest.raises(ValueError):
        unseen.Client("ftp://x", model="m")
    # a server that is down
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionError):
        unseen.Client(f"http://127.0.0.1:{port}", model="small-cnn", keys=tmp_path / "k5").predict(
            np.zeros((28, 28), np.uint8)
        )


def test_the_example_script_classifies_a_digit(server, tmp_path):
    import subprocess
    import sys

    images = mnist_test_images(4)
    want = onnx_classes(images)
    out = subprocess.run(
        [sys.executable, str(REPO / "examples/classify_digit.py"), "--server", server["url"],
         "--model", "small-cnn", "--index", "3", "--keys", str(tmp_path / "ex")],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"class {want[3]} " in out.stdout, out.stdout
