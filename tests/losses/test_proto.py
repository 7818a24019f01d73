from __future__ import annotations

import numpy as np
import pytest
import torch

from gcl.losses import InfoNCE, ProtoNCELoss, estimate_concentration, functional, kmeans

from . import naive


def _clusterings(
    b: int, d: int
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    sizes = [3, 5]
    assignments = [torch.randint(k, (b,)) for k in sizes]
    prototypes = [torch.randn(k, d, dtype=torch.float64) for k in sizes]
    phis = [torch.rand(k, dtype=torch.float64) * 0.5 + 0.05 for k in sizes]
    return assignments, prototypes, phis


def test_proto_nce_matches_pcl_formula() -> None:
    q, k = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    queue = torch.randn(10, 4, dtype=torch.float64)
    assignments, prototypes, phis = _clusterings(6, 4)
    loss = ProtoNCELoss(0.2)(q, k, queue, assignments, prototypes, phis)
    expected = naive.proto_nce(q, k, queue, assignments, prototypes, phis, 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_proto_nce_without_clusterings_is_instance_infonce() -> None:
    q, k = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    queue = torch.randn(10, 4, dtype=torch.float64)
    assert ProtoNCELoss(0.2)(q, k, queue).item() == pytest.approx(
        InfoNCE.moco(0.2)(q, k, queue).item(), rel=1e-12
    )
    in_batch = InfoNCE(0.2, symmetric=False, intra_view_negatives=False)(q, k)
    assert ProtoNCELoss(0.2)(q, k).item() == pytest.approx(in_batch.item(), rel=1e-12)


def test_proto_term_rewards_queries_near_their_prototype() -> None:
    prototypes = [torch.eye(3)]
    phis = [torch.full((3,), 0.1)]
    q = torch.eye(3) + 0.01
    k = q.clone()
    right = ProtoNCELoss()(q, k, None, [torch.tensor([0, 1, 2])], prototypes, phis)
    wrong = ProtoNCELoss()(q, k, None, [torch.tensor([1, 2, 0])], prototypes, phis)
    assert right.item() < wrong.item()


def test_proto_gradients_and_twin() -> None:
    q = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, 4, dtype=torch.float64)
    assignments, prototypes, phis = _clusterings(6, 4)
    loss = ProtoNCELoss(0.3)(q, k, None, assignments, prototypes, phis)
    twin = functional.proto_nce_loss(q, k, None, assignments, prototypes, phis, temperature=0.3)
    assert torch.equal(loss, twin)
    (grad,) = torch.autograd.grad(loss, q)
    assert torch.isfinite(grad).all()


def test_proto_bad_inputs() -> None:
    q, k = torch.randn(6, 4), torch.randn(6, 4)
    assignments, prototypes, phis = _clusterings(6, 4)
    prototypes = [p.float() for p in prototypes]
    phis = [p.float() for p in phis]
    with pytest.raises(ValueError, match="given together"):
        ProtoNCELoss()(q, k, None, assignments, prototypes, None)
    with pytest.raises(ValueError, match=r"equal length \(got lengths \(2, 1, 2\)\)"):
        ProtoNCELoss()(q, k, None, assignments, prototypes[:1], phis)
    with pytest.raises(ValueError, match=r"cluster_assignments\[0\] values must lie in \[0, 3\)"):
        ProtoNCELoss()(q, k, None, [torch.full((6,), 3), assignments[1]], prototypes, phis)
    with pytest.raises(
        ValueError, match=r"cluster_assignments\[1\] must be a 1-D tensor of length 6"
    ):
        ProtoNCELoss()(q, k, None, [assignments[0], assignments[1][:4]], prototypes, phis)
    with pytest.raises(ValueError, match=r"concentrations\[0\] must hold 3 positive values"):
        ProtoNCELoss()(q, k, None, assignments, prototypes, [torch.zeros(3), phis[1]])
    with pytest.raises(ValueError, match=r"prototypes\[1\] must have feature size 4"):
        ProtoNCELoss()(q, k, None, assignments, [prototypes[0], torch.randn(5, 3)], phis)


# --------------------------------------------------------------------------- concentration


def test_estimate_concentration_matches_formula() -> None:
    features = torch.randn(40, 3, dtype=torch.float64)
    assignments = torch.randint(4, (40,))
    assignments[0] = 4  # a singleton cluster
    centroids = torch.randn(5, 3, dtype=torch.float64)
    phi = estimate_concentration(features, assignments, centroids, alpha=10.0)
    expected = naive.concentration(features, assignments, centroids, 10.0)
    torch.testing.assert_close(phi, torch.tensor(expected, dtype=torch.float64))


def test_estimate_concentration_reference_post_processing() -> None:
    features = torch.randn(60, 3, dtype=torch.float64)
    assignments = torch.randint(6, (60,))
    centroids = torch.randn(6, 3, dtype=torch.float64)
    raw = torch.tensor(
        naive.concentration(features, assignments, centroids, 10.0), dtype=torch.float64
    )
    low, high = torch.quantile(raw, 0.1), torch.quantile(raw, 0.9)
    clipped = raw.clamp(low, high)
    expected = 0.2 * clipped / clipped.mean()
    phi = estimate_concentration(
        features, assignments, centroids, clip_quantiles=(0.1, 0.9), temperature=0.2
    )
    torch.testing.assert_close(phi, expected)
    assert phi.mean().item() == pytest.approx(0.2)


def test_estimate_concentration_bad_inputs() -> None:
    f, c = torch.randn(10, 3), torch.randn(2, 3)
    with pytest.raises(ValueError, match="alpha"):
        estimate_concentration(f, torch.zeros(10, dtype=torch.long), c, alpha=0.0)
    with pytest.raises(ValueError, match=r"assignments values must lie in \[0, 2\)"):
        estimate_concentration(f, torch.full((10,), 2), c)
    with pytest.raises(ValueError, match="clip_quantiles"):
        estimate_concentration(f, torch.zeros(10, dtype=torch.long), c, clip_quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="feature size 3"):
        estimate_concentration(f, torch.zeros(10, dtype=torch.long), torch.randn(2, 4))


# --------------------------------------------------------------------------- k-means


def _blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    labels = torch.arange(4).repeat_interleave(25)
    return centres[labels] + torch.randn(100, 2, generator=g), labels


def test_kmeans_recovers_separated_blobs() -> None:
    x, labels = _blobs()
    result = kmeans(x, 4, num_iters=50, generator=torch.Generator().manual_seed(0))
    # Same partition up to relabelling: each true blob maps to exactly one cluster.
    for c in range(4):
        assert result.assignments[labels == c].unique().numel() == 1
    assert result.assignments.unique().numel() == 4


def test_kmeans_is_a_lloyd_fixed_point_and_matches_sklearn_inertia() -> None:
    x, _ = _blobs(1)
    result = kmeans(x, 4, num_iters=100, generator=torch.Generator().manual_seed(2))
    for c in range(4):
        members = x[result.assignments == c]
        torch.testing.assert_close(result.centroids[c], members.mean(dim=0))
    distances = torch.cdist(x, result.centroids)
    assert torch.equal(distances.argmin(dim=1), result.assignments)
    inertia = sum(
        float(((x[i] - result.centroids[result.assignments[i]]) ** 2).sum()) for i in range(100)
    )
    assert result.inertia.item() == pytest.approx(inertia, rel=1e-5)
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    reference = sklearn_cluster.KMeans(4, n_init=10, random_state=0).fit(x.numpy())
    assert result.inertia.item() == pytest.approx(reference.inertia_, rel=1e-3)


def test_kmeans_is_deterministic_and_handles_k_equal_n() -> None:
    x = torch.randn(30, 3)
    a = kmeans(x, 5, generator=torch.Generator().manual_seed(9))
    b = kmeans(x, 5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.assignments, b.assignments) and torch.equal(a.centroids, b.centroids)
    full = kmeans(x[:6], 6, generator=torch.Generator().manual_seed(0))
    assert full.inertia.item() == pytest.approx(0.0, abs=1e-10)
    duplicates = torch.zeros(5, 2)
    assert kmeans(duplicates, 3).centroids.shape == (3, 2)


def test_kmeans_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"k must not exceed the number of points 3 \(got 4\)"):
        kmeans(torch.randn(3, 2), 4)
    with pytest.raises(ValueError, match="k must be an integer"):
        kmeans(torch.randn(3, 2), 0)
    with pytest.raises(ValueError, match="2-D"):
        kmeans(torch.randn(3), 1)


def test_kmeans_is_translation_invariant() -> None:
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(5, 8, generator=g, dtype=torch.float64)
    x = (centres.repeat_interleave(100, dim=0) + 0.02 * torch.randn(500, 8, generator=g, dtype=torch.float64)).float()
    near = kmeans(x, 5, generator=torch.Generator().manual_seed(0))
    far = kmeans(x + 1000.0, 5, generator=torch.Generator().manual_seed(0))
    # far from the origin, cdist's product form rounds the blobs' squared distances to zero
    assert sorted(torch.bincount(far.assignments).tolist()) == [100] * 5
    assert float(far.inertia) == pytest.approx(float(near.inertia), rel=0.05)
    assert torch.allclose(far.centroids - 1000.0, near.centroids, atol=1e-2)


def test_estimate_concentration_of_a_cluster_of_duplicates() -> None:
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(10, 4, generator=g)
    duplicates = torch.ones(5, 4)  # five copies of one graph's embedding
    features = torch.cat([spread, duplicates])
    assignments = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)
    centroids = torch.stack([features[assignments == c].mean(0) for c in range(3)])
    phi = estimate_concentration(features, assignments, centroids)
    # the duplicates' zero spread would make their logits infinite: they get the largest phi, as singletons do
    assert bool((phi > 0).all()) and float(phi[2]) == pytest.approx(float(phi[:2].max()))


def test_estimate_concentration_without_any_spread_is_uniform() -> None:
    # every cluster's members coincide (collapsed embeddings): no cluster to take a phi from, so
    # every phi is 1, or the temperature, never 0 or NaN
    features, assignments = torch.ones(6, 2), torch.tensor([0, 0, 0, 1, 1, 1])
    assert torch.equal(estimate_concentration(features, assignments, torch.ones(2, 2)), torch.ones(2))
    phi = estimate_concentration(features, assignments, torch.ones(2, 2), temperature=0.2)
    torch.testing.assert_close(phi, torch.full((2,), 0.2))
    singletons = estimate_concentration(torch.randn(3, 2), torch.arange(3), torch.randn(3, 2))
    assert torch.equal(singletons, torch.ones(3))


@pytest.mark.parametrize("generator", [0, 7, np.random.default_rng(0), "seed"], ids=lambda value: type(value).__name__)
def test_kmeans_refuses_a_generator_that_is_not_a_torch_generator(generator) -> None:  # type: ignore[no-untyped-def]
    """It used to fail at the first draw with an AttributeError (or torch's TypeError)."""
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator or None \(got .+\)$"):
        kmeans(torch.randn(10, 2), 2, generator=generator)
