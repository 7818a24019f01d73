from __future__ import annotations

import hashlib
from importlib import resources

import pytest
import torch
from scipy.stats import rankdata

from gcl.adapters.text import (
    SentenceBatches,
    load_lee,
    load_lee_background,
    similarity_spearman,
    split_sentences,
)

CHECKSUMS = {
    "lee.cor": "a878f9a58f6743c32985c56c2f2f75988386216b38a4023a01fd3bcf7884d93e",
    "lee_background.cor": "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb",
    "similarities0-1.txt": "23762bc6b728897144dda3d324a2c032dc1e059e1009806226d64b6dd123ed79",
}


def test_shipped_files_are_the_documented_ones() -> None:
    for name, digest in CHECKSUMS.items():
        data = (resources.files("gcl.adapters.text") / "data" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


def test_lee_corpus_shapes_and_disjoint_background() -> None:
    corpus = load_lee()
    assert len(corpus.documents) == 50 and corpus.pairs.shape == (1225, 2)
    assert bool((corpus.pairs[:, 0] < corpus.pairs[:, 1]).all())
    assert float(corpus.scores.min()) >= 0.0 and float(corpus.scores.max()) <= 1.0
    background = load_lee_background()
    assert len(background) == 300 and not set(background) & set(corpus.documents)
    # First row of the rating matrix as printed in the file.
    assert float(corpus.scores[0]) == pytest.approx(0.3)


def test_split_sentences() -> None:
    text = ["One two three four five. Short one. Is this six words long? Yes it is, clearly so!"]
    assert split_sentences(text, min_words=4) == [
        "One two three four five.",
        "Is this six words long?",
        "Yes it is, clearly so!",
    ]


def test_similarity_spearman_against_ranks() -> None:
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(8, 3, generator=generator)
    pairs = torch.combinations(torch.arange(8), 2)
    cosine = torch.nn.functional.cosine_similarity(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
    scores = torch.randn(len(pairs), generator=generator)
    rx, ry = torch.tensor(rankdata(cosine.numpy())), torch.tensor(rankdata(scores.numpy()))
    expected = float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])
    assert similarity_spearman(embeddings, pairs, scores) == pytest.approx(expected, rel=1e-6)
    assert similarity_spearman(embeddings, pairs, cosine * 2 + 1) == pytest.approx(1.0)
    # NaN and constant input would give a NaN correlation without a word
    broken = embeddings.clone()
    broken[2, 0] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        similarity_spearman(broken, pairs, scores)
    with pytest.raises(ValueError, match="must be finite"):
        similarity_spearman(embeddings, pairs, torch.where(scores > 0, scores, torch.nan))
    with pytest.raises(ValueError, match="scores are all equal"):
        similarity_spearman(embeddings, pairs, torch.ones(len(pairs)))
    collapsed = embeddings[:1].expand_as(embeddings)  # every pair at cosine 1
    with pytest.raises(ValueError, match="same cosine similarity"):
        similarity_spearman(collapsed, pairs, scores)


def test_sentence_batches_shuffle_and_validate() -> None:
    items = [f"s{i}" for i in range(10)]
    batches = SentenceBatches(items, batch_size=4, generator=torch.Generator().manual_seed(0))
    seen = [list(b) for b in batches]
    assert len(seen) == 2 and len({s for b in seen for s in b}) == 8
    assert batches.__iter__().__next__().to("cpu") is not None
    with pytest.raises(ValueError, match="at least batch_size"):
        SentenceBatches(items[:3], batch_size=4)
