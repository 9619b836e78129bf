"""all-MiniLM-L6-v2 on ONNX Runtime: the query embeddings without torch in the node.

``python -m seg_perception.query.text_encoder_onnx`` exports the model (torch needed there
only; ``make setup`` runs it, else the first ``OnnxSentenceModel`` runs it in a child process)
into the engine cache folder, keyed by the weights' sha256. Pipeline: BERT -> mean pooling
over the attention mask -> L2 norm. Why and how well: docs/query.md.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seg_perception.errors import ModelError
from seg_perception.query.minilm import bundled_model_path

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


def onnx_path(model_dir: Path, int8: bool = True) -> Path:
    """Where the export of ``model_dir``'s weights lives (``SEG_PERCEPTION_CACHE`` or XDG cache).

    ``int8``: the dynamically quantized copy (per-channel int8 weights; see docs/query.md).
    """
    from seg_perception.backends.engine_cache import default_cache_dir

    return Path(default_cache_dir()) / "text_encoders" / f"minilm-{_digest(model_dir)}{'-int8' if int8 else ''}.onnx"


@functools.cache
def _digest(model_dir: Path) -> str:
    """First 16 hex digits of the weights' sha256 (90 MB: hashed once per process)."""
    from seg_perception.backends.engine_cache import sha256_file

    return sha256_file(model_dir / "model.safetensors")[:16]


def quantize(src: Path, out: Path) -> Path:
    """int8-weight copy of an fp32 export (ONNX Runtime dynamic quantization, per-channel weights)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(src), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
    os.replace(tmp, out)
    return out


def export(model_dir: Path, out: Path) -> Path:
    """Export the BERT body of a sentence-transformers folder to ONNX (needs torch and transformers)."""
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir)).eval()

    class _Body(torch.nn.Module):  # keyword call: forward's positional order differs across versions
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = _Body().eval()
    ids = torch.ones((1, 8), dtype=torch.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, ids, torch.zeros_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out)  # atomic: a concurrent reader sees no half-written file
    return out


class OnnxSentenceModel:
    """Callable like ``SentenceTransformer.encode`` for the parts the query engine uses.

    Args:
        model_dir: a sentence-transformers folder with ``tokenizer.json`` and ``model.safetensors``.
        threads: ONNX Runtime intra-op threads (1: a phrase takes a few ms and never competes
            with the segmentation backend).
        int8: use the int8-weight copy (default; see ``onnx_path``).
    """

    def __init__(self, model_dir: Path, threads: int = 1, int8: bool = True) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as err:
            raise ModelError(f"onnxruntime or tokenizers is not importable: {err}") from err
        path = onnx_path(model_dir, int8)
        if not path.is_file():
            # torch is imported in the child only.
            cmd = [sys.executable, "-m", "seg_perception.query.text_encoder_onnx", str(model_dir)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not path.is_file():
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise ModelError(f"cannot export the text encoder to ONNX: {tail[0]}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # a corrupt cache file: say where it is
            raise ModelError(f"cannot load text encoder {path}: {err}") from err
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self.path = path

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_: object) -> np.ndarray:
        """(len(texts), 384) float32 L2-normalised mean-pooled embeddings, one text per run.

        ``batch_size`` is accepted for SentenceTransformer compatibility and ignored: the int8
        encoder quantizes activations dynamically over the whole batch (padding and the other
        texts included), so a batched phrase embedded up to 0.03 per element differently than
        alone, and with the shared text cache a grounding depended on what had been encoded
        with it first.
        """
        out = []
        for text in texts:
            enc = self._tokenizer.encode_batch([text])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            types = np.array([e.type_ids for e in enc], np.int64)
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)


def main(argv: list[str] | None = None) -> int:
    """Export the bundled (or given) model to its cache path and print the path."""
    args = sys.argv[1:] if argv is None else argv
    model_dir = Path(args[0]) if args else bundled_model_path()
    fp32, int8 = onnx_path(model_dir, False), onnx_path(model_dir, True)
    if not fp32.is_file():
        export(model_dir, fp32)
    if not int8.is_file():
        quantize(fp32, int8)
    print(int8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
