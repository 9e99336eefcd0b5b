"""Fixtures: the repository, the unseen binary, and a server started on loopback."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def unseen_bin() -> Path:
    explicit = os.environ.get("UNSEEN_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "unseen"


def run(*args, cwd=None):
    """Runs the CLI; its stdout, or a failure with its stderr."""
    out = subprocess.run([str(unseen_bin()), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"unseen {' '.join(map(str, args))} failed: {out.stderr}")
    return out.stdout


@pytest.fixture(scope="session")
def workdir():
    with tempfile.TemporaryDirectory(prefix="unseen-py-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def server(workdir):
    """`unseen serve` with the salary model and the small ONNX CNN (imported here)."""
    if not unseen_bin().exists():
        pytest.fail(f"no unseen binary at {unseen_bin()} (cargo build -p unseen, or set UNSEEN_BIN)")
    run("train", "linear", "--csv", REPO / "data/employee/employee_data.csv", "--target", "salary",
        "--out", workdir / "salary.json")
    run("import", "--onnx", REPO / "tests/onnx/small_cnn.onnx", "--dataset", "mnist",
        "--normalization", "unit", "--out", workdir / "small-cnn", "--data", REPO / "data")
    log = open(workdir / "serve.log", "w+")
    proc = subprocess.Popen(
        [str(unseen_bin()), "serve", "--model", str(workdir / "salary.json"), "--model",
         str(workdir / "small-cnn"), "--http", "127.0.0.1:0", "--data-dir", str(workdir / "data")],
        stderr=log, stdout=subprocess.DEVNULL,
    )
    url = None
    for _ in range(600):
        log.seek(0)
        m = re.search(r"HTTP API on (http://\S+)", log.read())
        if m:
            url = m.group(1)
            break
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if url is None:
        proc.kill()
        log.seek(0)
        pytest.fail(f"the server did not start: {log.read()}")
    yield {"url": url, "salary": json.loads((workdir / "salary.json").read_text())}
    proc.terminate()
    proc.wait(timeout=20)
