"""The trained model as an ONNX file for edge sites: fp32, optionally int8, each with a manifest.

Input is a training export (``model.safetensors`` + ``config.json``, see ``workloads.model``).
Output, under ``out_dir``:

- ``model.onnx`` (fp32) and, with ``quantize="int8"``, ``model.int8.onnx``: one input
  ``history`` (B, T) int64, left-padded item ids with T == block_size and B dynamic; one output
  ``scores`` (B, vocab_size) float32, the log-softmax of the last position's logits with the
  padding id pushed to -1e9, so ``argsort(-scores)[:, :k]`` is the model's top-k (what
  ``NextItemModel.recommend`` returns);
- ``<file>.manifest.json`` next to each: sha256 digest, size in bytes, opset, input and output
  names, dtypes and shapes, quantization, the source export's digest, and, when held-out
  histories were given, the top-k agreement with the PyTorch model.

The fp32 graph comes from ``torch.onnx.export`` (the dynamo exporter, onnxscript); the int8 one
from onnxruntime's dynamic quantization (weights int8, activations quantized per batch at run
time: the CPU route, no calibration data) after its recommended pre-processing. Files are written
to a temporary name and renamed, manifest last, so a manifest always describes the file beside it.
The export is reproducible: the same training export gives the same bytes, so the same digest (the
exporter's per-node source locations are dropped).

Agreement is the mean over examples of |top-k(ONNX) ∩ top-k(PyTorch)| / k, on the same
left-padded histories; it is a set overlap, so a swap of two neighbours inside the top-k costs
nothing and one item pushed out costs 1/k.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workloads.model import ModelConfig, NextItemModel

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
INPUT_NAME = "history"
OUTPUT_NAME = "scores"
PAD_SCORE = -1e9
"""Added to the padding id's logit, so it never reaches a top-k (finite: int8 paths stay NaN-free)."""
REQUIRED_FILES = ("model.safetensors", "config.json")


class ExportError(ValueError):
    """The command line or the source export does not allow an ONNX export (exit code 2)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: list[int | str]
    """Dimensions; a string names a dynamic one (``batch``)."""


@dataclass
class Manifest:
    """What a site needs to fetch, verify and run one model file (``<file>.manifest.json``)."""

    file: str
    """File name, beside the manifest."""
    sha256: str
    size_bytes: int
    format: str
    opset: int
    quantization: str | None
    """None (fp32) or ``int8`` (dynamic, weights int8)."""
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    source_sha256: str
    """Digest of the training export's ``model.safetensors``."""
    model_config: dict[str, Any]
    agreement: dict[str, float] = field(default_factory=dict)
    """``top_{k}``: agreement with the PyTorch model; ``examples``: how many held-out histories."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Manifest:
        raw = json.loads(Path(path).read_text())
        raw["inputs"] = [TensorInfo(**t) for t in raw["inputs"]]
        raw["outputs"] = [TensorInfo(**t) for t in raw["outputs"]]
        return cls(**raw)


class ScoreHead(torch.nn.Module):
    """``NextItemModel`` cut to what a site ranks with: last-position log-probabilities (B, V)."""

    def __init__(self, model: NextItemModel) -> None:
        super().__init__()
        self.model = model
        pad = torch.zeros(model.cfg.vocab_size)
        pad[0] = PAD_SCORE
        self.register_buffer("pad", pad)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        logits = self.model(history)[:, -1, :] + self.pad  # (B, V)
        return torch.log_softmax(logits, dim=-1)


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_reference(model_dir: str | os.PathLike[str]) -> NextItemModel:
    """The PyTorch model of a training export, in eval mode; ``ExportError`` naming the fix when absent."""
    from safetensors.torch import load_file

    root = Path(model_dir)
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise ExportError(
            f"--model-dir={root}: no training export there (missing {', '.join(missing)}). To fix: run `make demo` "
            "(it writes demo-output/model), or train one with `python -m workloads.training --preset tiny --data "
            "DATA --export-dir DIR` and pass --model-dir DIR")
    model = NextItemModel(ModelConfig.from_json((root / "config.json").read_text()))
    model.load_state_dict(load_file(str(root / "model.safetensors")))
    return model.eval()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def export_fp32(model: NextItemModel, path: Path) -> None:
    """Write ``ScoreHead(model)`` to ``path`` as a self-contained ONNX file (no external data)."""
    head = ScoreHead(model).eval()
    example = torch.ones(2, model.cfg.block_size, dtype=torch.int64)
    batch = torch.export.Dim("batch", min=1, max=4096)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # The exporter prints progress lines and warns about optional torchvision ops; keep them off the CLI.
    with contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(head, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes={"history": {0: batch}}, dynamo=True, external_data=False,
                                    verbose=False)
    assert program is not None  # dynamo=True always returns the program
    import onnx

    proto = program.model_proto
    for node in proto.graph.node:
        # The exporter records each node's Python stack trace (file paths, line numbers): drop it, so the
        # digest depends on the weights and the graph, not on where the source was checked out.
        del node.metadata_props[:]
    onnx.save_model(proto, str(tmp))
    os.replace(tmp, path)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Any:
    saved = [(name, logging.getLogger(name).level) for name in loggers]
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved:
            logging.getLogger(name).setLevel(level)


def quantize_int8(fp32_path: Path, path: Path) -> None:
    """Dynamic int8 quantization of ``fp32_path`` (pre-processed first, as onnxruntime recommends)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = path.with_name(f".{path.name}.pre-{os.getpid()}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with _quiet("root"):
            quant_pre_process(str(fp32_path), str(pre))
            quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, path)
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def session(path: str | os.PathLike[str], threads: int = 1) -> Any:
    """An onnxruntime CPU session on ``threads`` intra-op threads (one inter-op thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Item ids of the k best scores per row (B, k), best first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k), unordered
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def onnx_top_k(sess: Any, histories: np.ndarray, k: int, batch_size: int = 256) -> np.ndarray:
    out = [top_k(sess.run([OUTPUT_NAME], {INPUT_NAME: histories[i : i + batch_size]})[0], k)
           for i in range(0, histories.shape[0], batch_size)]
    return np.concatenate(out)


def reference_top_k(model: NextItemModel, histories: np.ndarray, k: int, batch_size: int = 256) -> np.ndarray:
    """The PyTorch model's top-k (``recommend``) for left-padded histories (E, T)."""
    out = [model.recommend(torch.from_numpy(histories[i : i + batch_size]), k=k)[0].numpy()
           for i in range(0, histories.shape[0], batch_size)]
    return np.concatenate(out)


def agreement(got: np.ndarray, want: np.ndarray) -> float:
    """Mean |got ∩ want| / k over rows of two (E, k) top-k arrays."""
    if got.shape != want.shape or got.ndim != 2 or got.shape[0] == 0:
        raise ValueError(f"agreement needs two non-empty (E, k) arrays of one shape, got {got.shape} and {want.shape}")
    k = got.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(got, want, strict=True)]))


def describe(path: Path, *, quantization: str | None, source_sha256: str, cfg: ModelConfig) -> Manifest:
    """The manifest of the ONNX file at ``path`` (digest, size, opset, tensors), without agreement."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def tensors(values: Any) -> list[TensorInfo]:
        out = []
        for v in values:
            t = v.type.tensor_type
            dims: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
            out.append(TensorInfo(v.name, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, dims))
        return out

    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return Manifest(file=path.name, sha256=sha256_of(path), size_bytes=path.stat().st_size, format="onnx",
                    opset=int(opset), quantization=quantization, inputs=tensors(model.graph.input),
                    outputs=tensors(model.graph.output), source_sha256=source_sha256,
                    model_config=json.loads(cfg.to_json()))


def write_manifest(manifest: Manifest, out_dir: Path) -> Path:
    path = out_dir / f"{manifest.file}.manifest.json"
    _write_atomic(path, manifest.to_json().encode())
    return path


def export_onnx(model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                quantize: str | None = None, histories: np.ndarray | None = None, k: int = 10) -> list[Manifest]:
    """Export ``model_dir`` to ``out_dir`` (fp32, then int8 when asked); return the manifests written.

    With ``histories`` (E, T) the manifests carry each file's top-k agreement with the PyTorch model.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize={quantize}: not supported. To fix: use one of {', '.join(QUANTIZATIONS)}, "
                          "or leave it out for fp32 only")
    model = load_reference(model_dir)
    source = sha256_of(Path(model_dir) / "model.safetensors")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [(out / "model.onnx", None)]
    export_fp32(model, files[0][0])
    if quantize == "int8":
        files.append((out / "model.int8.onnx", "int8"))
        quantize_int8(files[0][0], files[1][0])
    want = reference_top_k(model, histories, k) if histories is not None else None
    manifests = []
    for path, quant in files:
        manifest = describe(path, quantization=quant, source_sha256=source, cfg=model.cfg)
        if want is not None and histories is not None:
            got = onnx_top_k(session(path), histories, k)
            manifest.agreement = {f"top_{k}": agreement(got, want), "examples": float(histories.shape[0])}
        write_manifest(manifest, out)
        manifests.append(manifest)
    return manifests
