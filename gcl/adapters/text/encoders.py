r"""Sentence encoders on top of any Hugging Face transformer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gcl.adapters._optional import require
from gcl.adapters.batches import evaluation_mode
from gcl.losses._checks import check_count

__all__ = ["SentenceEncoder", "check_sentences"]

_POOLINGS = ("mean", "cls")


def check_sentences(sentences: Sequence[str], name: str = "sentences") -> list[str]:
    r"""Checks that ``sentences`` is a non-empty list (or tuple) of strings and returns it
    as a list.

    Args:
        sentences (list[str]): The batch.
        name (str, optional): Name used in the messages. (default: :obj:`"sentences"`)
    """
    if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings (got {type(sentences).__name__})")
    if len(sentences) == 0:
        raise ValueError(f"{name} must hold at least one sentence (got an empty batch)")
    bad = [i for i, s in enumerate(sentences) if not isinstance(s, str)]
    if bad:
        raise ValueError(
            f"{name} must hold strings only (item {bad[0]} is {type(sentences[bad[0]]).__name__})"
        )
    blank = [i for i, s in enumerate(sentences) if not s.strip()]
    if blank:
        # blank items embed identically: false negatives of each other, and no text to learn from
        raise ValueError(f"{name} must not hold empty or whitespace-only strings (item {blank[0]} is "
                         f"{sentences[blank[0]]!r}); drop them from the batch")
    return list(sentences)


class SentenceEncoder(nn.Module):
    r"""Embeds sentences with a Hugging Face transformer and a pooling of its token states,
    as in `Sentence-BERT <https://arxiv.org/abs/1908.10084>`_ (Reimers & Gurevych, EMNLP
    2019) and `SimCSE <https://arxiv.org/abs/2104.08821>`_ (Gao et al., EMNLP 2021):

    .. math::
        h = \frac{\sum_t m_t\, H_t}{\sum_t m_t} \quad (\text{mean}), \qquad
        h = H_{t_0} \quad (\text{cls}),

    with :math:`H` the last hidden states, :math:`m` the attention mask and :math:`t_0` the
    first position with :math:`m_t = 1` (the ``[CLS]`` token of a BERT-style tokenizer, also
    when the tokenizer pads on the left). Dropout is active in training mode, which is
    SimCSE's only augmentation.

    Args:
        model (nn.Module): A transformer returning ``last_hidden_state`` (e.g. a
            ``transformers.AutoModel``).
        tokenizer: Its tokenizer (callable on a list of strings).
        pooling (str, optional): ``"mean"`` or ``"cls"``. (default: :obj:`"mean"`)
        max_length (int, optional): Tokens kept per sentence. (default: :obj:`128`)

    Attributes:
        out_channels (int): Embedding size (the model's hidden size).

    Shapes:
        - **input:** a list of :math:`N` strings
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, model: nn.Module, tokenizer: Any, pooling: str = "mean", max_length: int = 128) -> None:
        super().__init__()
        if pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {_POOLINGS} (got {pooling!r})")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2 (got {max_length!r})")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        config = getattr(model, "config", None)
        hidden = getattr(config, "hidden_size", None)
        if not isinstance(hidden, int):
            raise ValueError("model must have config.hidden_size (a Hugging Face transformer)")
        self.out_channels = hidden

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        pooling: str = "mean",
        max_length: int = 128,
        local_files_only: bool = False,
    ) -> SentenceEncoder:
        r"""Loads ``transformers.AutoModel`` and ``AutoTokenizer`` from a local folder or a
        hub name (offline with ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``).

        Args:
            name_or_path (str): Folder with ``config.json`` and weights, or a hub id.
            pooling (str, optional): ``"mean"`` or ``"cls"``. (default: :obj:`"mean"`)
            max_length (int, optional): Tokens kept per sentence. (default: :obj:`128`)
            local_files_only (bool, optional): Never reach the network. (default: :obj:`False`)
        """
        transformers = require("transformers", "text")
        path = os.fspath(name_or_path)
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
        model = transformers.AutoModel.from_pretrained(path, local_files_only=local_files_only)
        # Hugging Face returns the model in evaluation mode; a new module trains (dropout on,
        # SimCSE's augmentation), so the two agree
        return cls(model, tokenizer, pooling=pooling, max_length=max_length).train()

    def tokenize(self, sentences: Sequence[str]) -> dict[str, Tensor]:
        r"""Padded token ids and attention mask on the model's device."""
        batch = self.tokenizer(
            check_sentences(sentences),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        return {key: value.to(device) for key, value in batch.items()}

    def forward(self, sentences: Sequence[str]) -> Tensor:
        tokens = self.tokenize(sentences)
        hidden = self.model(**tokens).last_hidden_state
        if self.pooling == "cls":
            # the first token that is not padding: position 0 unless the tokenizer pads on the left
            first = tokens["attention_mask"].to(torch.int32).argmax(dim=1)
            return hidden[torch.arange(hidden.size(0), device=hidden.device), first]
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    @torch.no_grad()
    def embed(self, sentences: Sequence[str], batch_size: int = 64) -> Tensor:
        r"""Embeddings of many sentences in chunks, without gradient, in evaluation mode for
        the call (no dropout); ``batch_size`` (an integer >= 1) sentences per encoder call."""
        check_count("batch_size", batch_size)
        items = check_sentences(sentences)
        with evaluation_mode(self):
            return torch.cat([self(items[i : i + batch_size]) for i in range(0, len(items), batch_size)])

    def extra_repr(self) -> str:
        return (
            f"model={type(self.model).__name__}, pooling={self.pooling!r}, "
            f"max_length={self.max_length}, out_channels={self.out_channels}"
        )
