"""Byte-level BPE of a corpus: whole chunks held out, ids in range and lossless, cache reused until
the corpus changes, builds all-or-nothing. Trained on a tiny generated corpus, offline."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdsai_lab.cli import main
from sgdsai_lab.sources import bpe, corpora

from ..fake_corpora import generated_documents, write_corpus

VOCAB = 300


@pytest.fixture
def documents(tmp_path, monkeypatch) -> list[str]:
    """30 documents of ~1500 characters as the fetched ``english`` corpus, cut into ~500-char chunks."""
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    monkeypatch.setattr(bpe, "CHUNK_CHARS", 500)
    docs = generated_documents(30)
    write_corpus(tmp_path, "english", docs)
    return docs


def _decode(ids: torch.Tensor) -> str:
    return bpe.tokenizer("english", VOCAB).decode(ids.tolist(), skip_special_tokens=True)


def test_chunks_are_cut_at_line_ends_and_mark_document_ends() -> None:
    assert bpe.chunks(["a\nb\nc\n", "d\n", "e\nf\n"], size=4) == [
        ("a\nb\n", False), ("c\n", True), ("d\n", True), ("e\nf\n", True),
    ]  # fmt: skip


def test_validation_is_every_tenth_whole_chunk(documents) -> None:
    train, val, _ = bpe.token_ids("english", VOCAB)
    pieces = bpe.chunks(documents, 500)
    assert len(pieces) >= 60
    assert _decode(val) == "".join(t for t, _ in pieces[9::10])
    assert _decode(train) == "".join(t for i, (t, _) in enumerate(pieces) if i % 10 != 9)


def test_every_document_ends_in_the_end_of_text_id(documents) -> None:
    train, val, _ = bpe.token_ids("english", VOCAB)
    end = bpe.tokenizer("english", VOCAB).token_to_id(bpe.END_OF_TEXT)
    ends_held_out = sum(ends for _, ends in bpe.chunks(documents, 500)[9::10])
    assert int((val == end).sum()) == ends_held_out > 0
    assert int((train == end).sum()) == len(documents) - ends_held_out


def test_ids_are_int64_and_below_the_vocabulary(documents) -> None:
    train, val, vocab = bpe.token_ids("english", VOCAB)
    assert train.dtype == val.dtype == torch.int64
    assert vocab <= VOCAB and int(torch.cat([train, val]).max()) < vocab
    assert bpe.tokenizer("english", VOCAB).get_vocab_size() == vocab


def test_decode_inverts_encode_for_any_text_without_the_special_token(documents) -> None:
    tokenizer = bpe.tokenizer("english", VOCAB)

    @settings(max_examples=100, deadline=None)
    @given(st.text().filter(lambda t: bpe.END_OF_TEXT not in t))  # corpora.join keeps it out of documents
    def round_trip(text: str) -> None:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text

    round_trip()


def test_the_cache_is_reused_without_training_again(documents, monkeypatch) -> None:
    first = bpe.token_ids("english", VOCAB)
    files = sorted(bpe.folder("english", VOCAB).iterdir())
    mtimes = [p.stat().st_mtime_ns for p in files]
    monkeypatch.setattr(bpe, "_train", lambda *a: pytest.fail("trained again"))
    second = bpe.token_ids("english", VOCAB)
    assert all(torch.equal(a, b) for a, b in zip(first[:2], second[:2]))
    assert [p.stat().st_mtime_ns for p in files] == mtimes


def test_the_cache_is_rebuilt_when_the_corpus_changes(documents, tmp_path) -> None:
    before = bpe.meta("english", VOCAB)
    changed = generated_documents(30, seed=1)
    write_corpus(tmp_path, "english", changed)
    after = bpe.meta("english", VOCAB)
    assert after["corpus_sha256"] != before["corpus_sha256"]
    assert after["corpus_sha256"] == corpora.digest((tmp_path / "english" / "english.txt").read_text())
    assert _decode(bpe.token_ids("english", VOCAB)[1]) == "".join(
        t for t, _ in bpe.chunks(changed, 500)[9::10]
    )


def test_an_interrupted_rebuild_keeps_the_old_cache_and_leaves_no_debris(
    documents, tmp_path, monkeypatch
) -> None:
    before = bpe.meta("english", VOCAB)
    write_corpus(tmp_path, "english", generated_documents(30, seed=1))

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(bpe, "_encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bpe.meta("english", VOCAB)
    assert [p.name for p in (tmp_path / "bpe").iterdir()] == [f"english-v{VOCAB}"]
    assert (bpe.folder("english", VOCAB) / "meta.json").read_text() == json.dumps(before, indent=1)


def test_too_few_chunks_for_a_validation_split_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SGDSAI_DATA", str(tmp_path))
    write_corpus(tmp_path, "english", generated_documents(5))
    with pytest.raises(ValueError, match="makes 5 chunks"):
        bpe.token_ids("english", VOCAB)


@pytest.mark.parametrize(
    ("corpus", "vocab", "named"), [("englsh", 300, "'englsh'"), ("english", 70000, "70000")]
)
def test_bad_arguments_are_named(corpus: str, vocab: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        bpe.token_ids(corpus, vocab)


def test_the_cli_builds_and_reports_the_cache(documents, caplog) -> None:
    with caplog.at_level("INFO"):
        assert main(["data", "bpe", "english", "--vocab", str(VOCAB)]) == 0
    assert (bpe.folder("english", VOCAB) / "tokenizer.json").exists()
    assert '"chars_per_token"' in caplog.text
