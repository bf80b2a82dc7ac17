"""The GPT-2 task on BPE corpora: the model's vocabulary is the tokenizer's, and it trains."""

from __future__ import annotations

import math

import pytest
import torch

from sgdsai import SGDSaI
from sgdsai_lab.fetch import DatasetMissing
from sgdsai_lab.sources import bpe
from sgdsai_lab.tasks import build_task

from ..fake_corpora import generated_documents, write_corpus


def test_gpt2_on_a_bpe_corpus_uses_the_tokenizers_vocabulary_and_trains(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    write_corpus(tmp_path, "english", generated_documents(30))
    task = build_task("gpt2", "english", "tiny", seed=0, batch_size=4)
    _, _, vocab = bpe.token_ids("english", 8192)
    assert 256 < vocab < 8192  # a tiny corpus offers fewer merges than asked for
    assert task.model.config.vocab_size == vocab
    x = task.batch(0)
    assert x.shape == (4, 32) and int(x.max()) < vocab
    opt = SGDSaI(task.model.parameters(), lr=0.01)
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    loss = task.loss(task.model, x)
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
    assert any(not torch.equal(before[n], p) for n, p in task.model.named_parameters())
    assert math.isfinite(task.evaluate(task.model)["val_loss"])


def test_gpt2_on_an_unfetched_corpus_names_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    with pytest.raises(DatasetMissing, match="sgdsai data fetch python-docs"):
        build_task("gpt2", "python-docs", "tiny", seed=0)


def test_gpt2_names_the_data_it_accepts() -> None:
    with pytest.raises(ValueError, match="english\\+python-docs, not 'shakespeare'"):
        build_task("gpt2", "shakespeare", "tiny", seed=0)
