"""Naive reference implementations written from the papers' formulas (Python loops, float64).

They share no code with ``gcl.losses`` on purpose: each is a direct transcription of the
formula it is named after, so that agreement is evidence of correctness.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def cos(u: Tensor, v: Tensor) -> float:
    return float(u @ v / (u.norm() * v.norm()))


def unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def nt_xent(z1: Tensor, z2: Tensor, t: float) -> float:
    """SimCLR eq. (1): 2N anchors, each against the 2N - 1 other embeddings."""
    z = torch.cat([z1, z2]).double()
    n = z1.size(0)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(cos(z[i], z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(z[i], z[j]) / t) / denominator)
    return total / (2 * n)


def graphcl(x: Tensor, x_aug: Tensor, t: float) -> float:
    """GraphCL's reference: -log(pos / (sum over the row of exp(sim) - pos)), one direction."""
    x, x_aug = x.double(), x_aug.double()
    n = x.size(0)
    total = 0.0
    for i in range(n):
        row = [math.exp(cos(x[i], x_aug[j]) / t) for j in range(n)]
        total += -math.log(row[i] / (sum(row) - row[i]))
    return total / n


def moco(q: Tensor, k: Tensor, queue: Tensor, t: float) -> float:
    """MoCo: logits [q.k+, q.queue] / t, cross-entropy with target 0 (cosine similarity)."""
    q, k, queue = q.double(), k.double(), queue.double()
    total = 0.0
    for i in range(q.size(0)):
        pos = math.exp(cos(q[i], k[i]) / t)
        neg = sum(math.exp(cos(q[i], n) / t) for n in queue)
        total += -math.log(pos / (pos + neg))
    return total / q.size(0)


def sup_con(
    features: Tensor,
    labels: Tensor,
    t: float,
    base_t: float | None = None,
    positives: Tensor | None = None,
) -> float:
    """Khosla et al. eq. (2), L_out; anchors without positives are left out of the mean.

    ``features`` is [N, V, d]; embedding index is sample * V + view. ``positives`` may
    override the positive mask (for KCL).
    """
    n, views, _ = features.shape
    z = unit(features.double().reshape(n * views, -1))
    lab = labels.repeat_interleave(views)
    scale = 1.0 if base_t is None else t / base_t
    losses = []
    for i in range(n * views):
        others = [a for a in range(n * views) if a != i]
        if positives is None:
            pos = [p for p in others if lab[p] == lab[i]]
        else:
            pos = [p for p in others if bool(positives[i, p])]
        if not pos:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / t) for a in others)
        term = sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denominator) for p in pos)
        losses.append(-scale * term / len(pos))
    return sum(losses) / len(losses) if losses else 0.0


def label_contrastive(
    q: Tensor, q_labels: Tensor, keys: Tensor, key_labels: Tensor, t: float
) -> float:
    """LCGNN: -log(sum over same-label keys / sum over all keys)."""
    q, keys = unit(q.double()), unit(keys.double())
    losses = []
    for i in range(q.size(0)):
        every = [math.exp(float(q[i] @ k) / t) for k in keys]
        same = [e for e, y in zip(every, key_labels) if y == q_labels[i]]
        if same:
            losses.append(-math.log(sum(same) / sum(every)))
    return sum(losses) / len(losses)


def contrastive_margin(x1: Tensor, x2: Tensor, similar: Tensor, margin: float) -> float:
    """Hadsell et al. eq. (4) with Y=0 for similar pairs, written with y=1 for similar."""
    total = 0.0
    for a, b, s in zip(x1.double(), x2.double(), similar):
        d = math.sqrt(sum((float(u) - float(v)) ** 2 for u, v in zip(a, b)))
        total += 0.5 * d**2 if bool(s) else 0.5 * max(0.0, margin - d) ** 2
    return total / x1.size(0)


def triplet(a: Tensor, p: Tensor, n: Tensor, margin: float, squared: bool) -> float:
    total = 0.0
    for x, y, z in zip(a.double(), p.double(), n.double()):
        dp = float(((x - y) ** 2).sum())
        dn = float(((x - z) ** 2).sum())
        if not squared:
            dp, dn = math.sqrt(dp), math.sqrt(dn)
        total += max(0.0, dp - dn + margin)
    return total / a.size(0)


def n_pair(anchors: Tensor, positives: Tensor, l2_reg: float) -> float:
    """Sohn eq. (6) plus the L2 regulariser (mean squared norm of the 2N embeddings)."""
    f, fp = anchors.double(), positives.double()
    n = f.size(0)
    total = 0.0
    for i in range(n):
        inner = sum(math.exp(float(f[i] @ fp[j]) - float(f[i] @ fp[i])) for j in range(n) if j != i)
        total += math.log(1 + inner)
    reg = sum(float(v @ v) for v in f) + sum(float(v @ v) for v in fp)
    return total / n + l2_reg * reg / (2 * n)


def nce(q: Tensor, pos: Tensor, noise: Tensor, log_pn: Tensor, t: float, log_z: float) -> float:
    """Gutmann & Hyvarinen: h = p_m / (p_m + k p_n), p_m = exp(q.x / t) / Z."""
    q, pos, noise = unit(q.double()), unit(pos.double()), unit(noise.double())
    k = noise.size(-2)
    total = 0.0
    for b in range(q.size(0)):
        samples = [pos[b]] + [noise[b, j] if noise.dim() == 3 else noise[j] for j in range(k)]
        for j, x in enumerate(samples):
            p_model = math.exp(float(q[b] @ x) / t) / math.exp(log_z)
            p_noise = math.exp(float(log_pn[b, j]))
            h = p_model / (p_model + k * p_noise)
            total += -math.log(h) if j == 0 else -math.log(1 - h)
    return total / q.size(0)


def dcl_hcl(z1: Tensor, z2: Tensor, t: float, tau_plus: float, beta: float | None) -> float:
    """Chuang et al. / Robinson et al. estimators, linear domain, as in their code."""
    z = unit(torch.cat([z1, z2]).double())
    n = z1.size(0)
    m = 2 * n - 2
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        pos = math.exp(float(z[i] @ z[j]) / t)
        negs = [math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k not in (i, j)]
        if beta is None:
            reweighted = sum(negs)
        else:
            weights = [math.exp(beta * math.log(v)) for v in negs]
            reweighted = sum(w * v for w, v in zip(weights, negs)) / (sum(weights) / m)
        ng = (-tau_plus * m * pos + reweighted) / (1 - tau_plus)
        ng = max(ng, m * math.exp(-1 / t))
        total += -math.log(pos / (pos + ng))
    return total / (2 * n)


def proto_nce(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    assignments: list[Tensor],
    prototypes: list[Tensor],
    phis: list[Tensor],
    t: float,
) -> float:
    """PCL eq. (11) with all prototypes as negatives."""
    instance = moco(q, k, queue, t)
    qn = unit(q.double())
    proto = 0.0
    for a, c, phi in zip(assignments, prototypes, phis):
        cn = unit(c.double())
        for i in range(q.size(0)):
            den = sum(math.exp(float(qn[i] @ cn[j]) / float(phi[j])) for j in range(c.size(0)))
            s = int(a[i])
            proto += -math.log(math.exp(float(qn[i] @ cn[s]) / float(phi[s])) / den)
    return instance + proto / q.size(0) / len(assignments)


def cmc(views: list[Tensor], t: float, mode: str) -> float:
    """CMC eqs. (3)-(5) with the full softmax: L(V_i, V_j) = L^{ij} + L^{ji}."""

    def one_way(a: Tensor, b: Tensor) -> float:
        total = 0.0
        for i in range(a.size(0)):
            den = sum(math.exp(cos(a[i], b[j]) / t) for j in range(b.size(0)))
            total += -math.log(math.exp(cos(a[i], b[i]) / t) / den)
        return total / a.size(0)

    views = [v.double() for v in views]
    m = len(views)
    pairs = (
        [(i, j) for i in range(m) for j in range(i + 1, m)]
        if mode == "full"
        else [(0, j) for j in range(1, m)]
    )
    return sum(one_way(views[i], views[j]) + one_way(views[j], views[i]) for i, j in pairs)


def imix(q: Tensor, k: Tensor, perm: Tensor, lam: float, t: float) -> float:
    """i-Mix N-pair form: lam * CE(i) + (1 - lam) * CE(perm(i)) over cosine logits."""
    total = 0.0
    for i in range(q.size(0)):
        logits = [cos(q[i].double(), k[j].double()) / t for j in range(k.size(0))]
        log_den = math.log(sum(math.exp(v) for v in logits))
        total += lam * (log_den - logits[i]) + (1 - lam) * (log_den - logits[int(perm[i])])
    return total / q.size(0)


def concentration(
    features: Tensor, assignments: Tensor, centroids: Tensor, alpha: float
) -> list[float]:
    """PCL eq. (12): phi = sum ||v - c|| / (Z log(Z + alpha)); singletons get the max."""
    phis: list[float | None] = []
    for c in range(centroids.size(0)):
        members = [
            features[i].double() for i in range(features.size(0)) if int(assignments[i]) == c
        ]
        z = len(members)
        if z <= 1:
            phis.append(None)
            continue
        spread = sum(float((v - centroids[c].double()).norm()) for v in members)
        phis.append(spread / (z * math.log(z + alpha)))
    largest = max(p for p in phis if p is not None)
    return [largest if p is None else p for p in phis]
