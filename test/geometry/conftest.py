"""Puts ``test/`` on ``sys.path`` so the projector tests can import the test oracles (``oracles.*``).

Under ``--import-mode=importlib`` pytest adds no test folder to ``sys.path``; the oracles live in
``test/oracles/`` (never in the shipped package).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TEST_ROOT = str(Path(__file__).resolve().parents[1])
if _TEST_ROOT not in sys.path:
    sys.path.insert(0, _TEST_ROOT)
