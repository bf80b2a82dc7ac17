"""The experiments need the ``experiments`` extra; without it these tests skip, saying so."""

from __future__ import annotations

import pytest

for _module in ("transformers", "tqdm", "matplotlib"):
    pytest.importorskip(
        _module, reason="install the 'experiments' extra: pip install -e '.[test,experiments]'"
    )
