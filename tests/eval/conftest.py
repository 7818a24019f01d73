"""Real-data fixtures for the evaluator tests: MUTAG histograms, Cora, ogbg-molbace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_blas_thread() -> Iterator[None]:
    # The probes fit many small models; on a shared CPU, BLAS threads spinning against each other
    # make each lbfgs fit about ten times slower than one thread.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def mutag_histograms(mutag: Any) -> tuple[np.ndarray, np.ndarray]:
    """MUTAG graph embeddings: the per-graph sum of one-hot node labels (a label histogram)."""
    features = torch.stack([graph.x.sum(dim=0) for graph in mutag]).numpy()
    labels = torch.cat([graph.y for graph in mutag]).numpy()
    return features, labels


@pytest.fixture(scope="session")
def cora() -> Any:
    """Cora with its public Planetoid split (140/500/1000 nodes; shipped in datasets/)."""
    from gcl.data import load_dataset

    return load_dataset("Cora")[0]


@pytest.fixture(scope="session")
def molbace() -> Any:
    """ogbg-molbace with its official scaffold split (shipped in datasets/)."""
    from gcl.data import load_dataset

    return load_dataset("ogbg-molbace")
