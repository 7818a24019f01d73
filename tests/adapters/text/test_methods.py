from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import gcl.losses
from gcl.adapters.text import CLIP, SimCSE, SupervisedSimCSE, check_sentences


class LookupEncoder(nn.Module):
    """Deterministic stand-in encoder: a learnable vector per known sentence, plus an
    optional per-call noise so that two passes differ (like dropout)."""

    def __init__(self, vocabulary: Sequence[str], dim: int = 6, noise: float = 0.0) -> None:
        super().__init__()
        self.index = {s: i for i, s in enumerate(vocabulary)}
        self.table = nn.Parameter(torch.randn(len(vocabulary), dim, generator=torch.Generator().manual_seed(0)))
        self.noise = noise
        self.out_channels = dim

    def forward(self, sentences: Sequence[str]) -> Tensor:
        rows = self.table[[self.index[s] for s in sentences]]
        return rows + self.noise * torch.randn_like(rows)


def naive_simcse(h: Tensor, h_pos: Tensor, h_neg: Tensor | None, temperature: float) -> float:
    h, h_pos = F.normalize(h.double(), dim=1), F.normalize(h_pos.double(), dim=1)
    negatives = None if h_neg is None else F.normalize(h_neg.double(), dim=1)
    total = 0.0
    for i in range(h.size(0)):
        denominator = sum(math.exp(float(h[i] @ h_pos[j]) / temperature) for j in range(h.size(0)))
        if negatives is not None:
            denominator += sum(math.exp(float(h[i] @ negatives[j]) / temperature) for j in range(negatives.size(0)))
        total -= math.log(math.exp(float(h[i] @ h_pos[i]) / temperature) / denominator)
    return total / h.size(0)


SENTENCES = [f"sentence number {i}" for i in range(12)]


def test_text_methods_reuse_infonce_unchanged() -> None:
    encoder = LookupEncoder(SENTENCES)
    assert type(SimCSE(encoder).loss) is gcl.losses.InfoNCE
    assert type(SupervisedSimCSE(encoder).loss) is gcl.losses.InfoNCE
    assert type(CLIP().loss) is gcl.losses.InfoNCE
    # the contradictions are rows of each rank's batch: gathered from every rank under DDP
    # (tests/losses/test_distributed.py compares that with one process on the global batch)
    assert SupervisedSimCSE(encoder).loss.gather_negatives and not SimCSE(encoder).loss.gather_negatives


def test_simcse_matches_the_paper_formula() -> None:
    encoder = LookupEncoder(SENTENCES)
    method = SimCSE(encoder, temperature=0.1)
    batch = SENTENCES[:5]
    h = encoder(batch).detach()
    # Without noise both passes agree: the formula on (h, h).
    assert float(method(batch).detach()) == pytest.approx(naive_simcse(h, h, None, 0.1), rel=1e-4)


def test_supervised_simcse_uses_contradictions_as_hard_negatives() -> None:
    encoder = LookupEncoder(SENTENCES)
    method = SupervisedSimCSE(encoder, temperature=0.05)
    premises, entailments, contradictions = SENTENCES[:4], SENTENCES[4:8], SENTENCES[8:12]
    h, hp, hn = (encoder(x).detach() for x in (premises, entailments, contradictions))
    expected = naive_simcse(h, hp, hn, 0.05)
    assert float(method(premises, entailments, contradictions).detach()) == pytest.approx(expected, rel=1e-4)
    assert float(method(premises, entailments).detach()) == pytest.approx(naive_simcse(h, hp, None, 0.05), rel=1e-4)
    assert float(method(premises, entailments, []).detach()) == pytest.approx(naive_simcse(h, hp, None, 0.05),
                                                                              rel=1e-4)
    with pytest.raises(ValueError, match="pair up"):
        method(premises, entailments[:3])


def test_clip_losses_of_two_forwards_backpropagate_together() -> None:
    torch.manual_seed(0)
    method = CLIP(temperature=0.1)
    loss = method(torch.randn(4, 8), torch.randn(4, 8)) + method(torch.randn(4, 8), torch.randn(4, 8))
    loss.backward()  # the scale was clamped in place by the second forward, under the first's graph
    assert method.log_logit_scale.grad is not None


def test_clip_matches_the_symmetric_cross_entropy_and_learns_its_scale() -> None:
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    method = CLIP(temperature=0.1)
    logits = 10.0 * F.normalize(a.double(), dim=1) @ F.normalize(b.double(), dim=1).T
    target = torch.arange(6)
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    loss = method(a, b)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    assert method.log_logit_scale.grad is not None and float(method.log_logit_scale.grad.abs()) > 0
    frozen = CLIP(temperature=0.1, learn_temperature=False)
    assert not frozen.log_logit_scale.requires_grad
    assert float(CLIP(temperature=0.001, max_logit_scale=1000.0).logit_scale.detach()) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="max_logit_scale"):
        CLIP(temperature=0.001)
    with pytest.raises(ValueError, match="equal shape"):
        method(a, b[:5])


def test_empty_and_malformed_batches_raise() -> None:
    method = SimCSE(LookupEncoder(SENTENCES))
    with pytest.raises(ValueError, match="empty batch"):
        method([])
    with pytest.raises(ValueError, match="list of strings"):
        method("one sentence")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strings only"):
        check_sentences(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least 2"):
        method(["alone"])
    with pytest.raises(ValueError, match=r"empty or whitespace-only strings \(item 1 is '  '\)"):
        method(["fine", "  ", "also fine"])


def test_clip_refuses_integer_embeddings() -> None:
    method = CLIP(temperature=0.1)
    a, b = torch.randint(5, (4, 3)), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"floating-point embeddings \(got za of dtype torch.int64 and zb of dtype "
                                         r"torch.float32\)"):
        method(a, b)
    with pytest.raises(ValueError, match=r"za of dtype torch.float32 and zb of dtype torch.int64"):
        method(b, a)


def test_clip_scale_stays_learnable_at_its_bound() -> None:
    # a step that takes t past log(max) must not freeze it there (a clamp of exp(t) would pass no
    # gradient from then on): the forward pass clamps t itself, as CLIP's code does
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, 4, generator=generator), torch.randn(8, 4, generator=generator)
    method = CLIP(temperature=0.1, max_logit_scale=100.0)
    with torch.no_grad():
        method.log_logit_scale.fill_(math.log(101.0))
    assert float(method.logit_scale.detach()) == pytest.approx(100.0)
    loss = method(a, b)
    assert float(method.log_logit_scale.detach()) == pytest.approx(math.log(100.0))
    loss.backward()
    assert method.log_logit_scale.grad is not None and float(method.log_logit_scale.grad.abs()) > 0


def test_simcse_loss_falls_with_dropout_like_noise() -> None:
    torch.manual_seed(0)
    encoder = LookupEncoder(SENTENCES, dim=8, noise=0.3)
    method = SimCSE(encoder, temperature=0.1)
    optimizer = torch.optim.Adam(method.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = method(SENTENCES)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
