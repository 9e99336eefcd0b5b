"""The model side from Python: import an ONNX (or PyTorch) model into a model folder that
``unseen serve`` serves, and measure it encrypted. Each call runs the same command as the CLI
(``python -m unseen import ...``, ``... eval --encrypted ...``) and returns the JSON report it
prints, as a dict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional, Sequence, Union

from .errors import CommandError

PathLike = Union[str, "os.PathLike[str]"]


def _run(args: List[str]) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "unseen", *args], capture_output=True, text=True)
    if out.returncode != 0:
        lines = [l for l in out.stderr.splitlines() if l.startswith("error:")]
        raise CommandError(lines[-1][len("error:"):].strip() if lines else out.stderr.strip())
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise CommandError(f"unseen {args[0]} printed no report")


def import_onnx(
    path: PathLike,
    out_dir: PathLike,
    *,
    dataset: Optional[str] = None,
    classes: Optional[Sequence[str]] = None,
    normalization: str = "unit",
    calibration: Optional[PathLike] = None,
    approximate_activations: bool = False,
    activation_degree: Optional[int] = None,
    preset: Optional[str] = None,
    data: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Imports an ONNX model into ``out_dir`` (``unseen import --onnx``); returns the report
    (architecture, plaintext accuracy, the compiler's preset and depth...).

    ``dataset`` ("mnist", "fashion-mnist") or ``classes`` name the outputs; ``normalization``
    is "unit", "dataset", "MEAN,STD" or a JSON file; ``calibration`` a CSV of sample inputs;
    ``approximate_activations`` refits ReLU, SiLU... as polynomials on the calibration data.
    """
    args = ["import", "--onnx", os.fspath(path), "--out", os.fspath(out_dir), "--normalization", normalization]
    if dataset:
        args += ["--dataset", dataset]
    if classes:
        args += ["--classes", ",".join(classes)]
    if calibration:
        args += ["--calibration", os.fspath(calibration)]
    if approximate_activations:
        args.append("--approximate-activations")
    if activation_degree is not None:
        args += ["--activation-degree", str(activation_degree)]
    if preset:
        args += ["--preset", preset]
    if data:
        args += ["--data", os.fspath(data)]
    return _run(args)


def import_torch(module: Any, example_input: Any, out_dir: PathLike, **import_options: Any) -> Dict[str, Any]:
    """Exports a PyTorch module with ``torch.onnx.export`` (needs torch) and imports it with
    :func:`import_onnx`; the ONNX file is kept as ``out_dir/model.onnx``."""
    try:
        import torch  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("import_torch needs PyTorch: pip install torch") from e
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(os.fspath(out_dir), "model.onnx")
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, (example_input,), onnx_path, input_names=["input"],
                          output_names=["logits"], dynamo=False)
    return import_onnx(onnx_path, out_dir, **import_options)


def eval_encrypted(
    model_dir: PathLike,
    *,
    limit: Optional[int] = None,
    mode: str = "auto",
    csv: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
    save_logits: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """Accuracy of a model folder on encrypted inputs against plaintext (``unseen eval
    --encrypted``): the same figures as the CLI, as a dict. ``save_logits`` writes the decrypted
    logits to a CSV file, one row per input."""
    args = ["eval", "--model", os.fspath(model_dir), "--encrypted", "--mode", mode]
    if save_logits:
        args += ["--save-logits", os.fspath(save_logits)]
    if limit is not None:
        args += ["--limit", str(limit)]
    if csv:
        args += ["--csv", os.fspath(csv)]
    if data:
        args += ["--data", os.fspath(data)]
    return _run(args)
