"""A ``Data`` subclass with its own attribute and property, and an in-memory dataset of it,
for the tests of loaders and view workers that must keep a dataset's graph class."""

from __future__ import annotations

from typing import Any

import torch
from torch_geometric.data import Data, InMemoryDataset


class LabelledGraph(Data):
    """A graph with a per-graph ``tag`` and a property derived from its nodes."""

    @property
    def doubled_nodes(self) -> int:
        return 2 * int(self.num_nodes)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "anchor":  # a node index: shifted like edge_index
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)


class LabelledGraphs(InMemoryDataset):
    """``count`` small random graphs of :class:`LabelledGraph`, built in memory."""

    def __init__(self, count: int = 20, seed: int = 0) -> None:
        super().__init__(None)
        rng = torch.Generator().manual_seed(seed)
        graphs = []
        for i in range(count):
            n = int(torch.randint(2, 8, (1,), generator=rng))
            edge_index = torch.randint(0, n, (2, 2 * n), generator=rng)
            graphs.append(LabelledGraph(x=torch.randn(n, 3, generator=rng), edge_index=edge_index,
                                        y=torch.tensor([i % 2]), anchor=torch.tensor([n - 1])))
        self.data, self.slices = self.collate(graphs)


class OneGraph(InMemoryDataset):
    """A single-graph dataset, stored as PyG stores Planetoid's (no slices)."""

    def __init__(self) -> None:
        super().__init__(None)
        g = torch.Generator().manual_seed(0)
        graph = Data(x=torch.randn(30, 5, generator=g), edge_index=torch.randint(0, 30, (2, 80), generator=g),
                     y=torch.randint(0, 3, (30,), generator=g), train_mask=torch.rand(30, generator=g) < 0.5)
        self.data, self.slices = self.collate([graph])
