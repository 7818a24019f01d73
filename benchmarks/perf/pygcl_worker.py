r"""PyGCL side of ``epoch_bench.py``: runs in PyGCL's own environment, never imports gcl.

Set-up of that environment (PyGCL 0.1.2 from PyPI; the same torch and PyG build
as gcl's environment, so the comparison measures the libraries, not the builds)::

    python -m venv /tmp/gcl-perf-pygcl
    echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \
        > /tmp/gcl-perf-pygcl/lib/python3.11/site-packages/gcl-env.pth   # torch 2.13, PyG 2.8.1
    /tmp/gcl-perf-pygcl/bin/pip install --no-deps pygcl==0.1.2

PyGCL 0.1.2 imports ``dgl``, ``torch_sparse`` and ``torch_scatter`` at import
time without declaring them. None of them is used by the code measured here
(GIN encoder, node dropping, edge removing, feature masking, the G2G InfoNCE
contrast), so :func:`install_import_stubs` puts empty stand-ins on ``sys.path``
whose every attribute raises when used; ``torch_scatter.scatter`` maps to PyG's
own ``scatter`` (same signature) in case a code path reached it.

The model is PyGCL's GraphCL example (``examples/GraphCL.py``): its ``GConv``
(GIN layers, ReLU then BatchNorm, sum readout of every layer, projection MLP),
``DualBranchContrast(InfoNCE(tau=0.2), mode='G2G')``, Adam, PyG ``DataLoader``.
Settings are gcl's benchmark settings: 3 layers × 32, batch 128 (shuffled; the
last incomplete batch dropped, as gcl's loop does), and both views drawn from
``RandomChoice([NodeDropping(0.2), EdgeRemoving(0.2), FeatureMasking(0.2)], 1)``. Two variants are timed:

* ``example``: the example's ``Encoder.forward``, which also encodes the
  un-augmented batch (a third, unused encoder pass);
* ``two-pass``: the same without the unused pass.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout
(``{"cmd": "setup", "dataset": ..., "raw_root": ..., "threads": 1, "seed": 0, "device": "cpu"}``,
``{"cmd": "epoch", "variant": "example"}`` → ``{"seconds": wall, "cpu_seconds": cpu}``,
``{"cmd": "exit"}``).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def install_import_stubs() -> str:
    r"""Stand-ins for modules PyGCL imports but the measured code never calls."""
    root = Path(tempfile.mkdtemp(prefix="pygcl-stubs-"))
    stub = (
        "class _Unavailable:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        raise ImportError('{name} is not installed (import stub for PyGCL)')\n"
        "def __getattr__(attr):\n"
        "    if attr.startswith('__'):\n"
        "        raise AttributeError(attr)\n"
        "    return _Unavailable\n"
    )
    for name in ("dgl", "torch_sparse"):
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(stub.format(name=name))
    (root / "torch_scatter").mkdir()
    (root / "torch_scatter" / "__init__.py").write_text("from torch_geometric.utils import scatter\n")
    sys.path.insert(0, str(root))
    return str(root)


def build(dataset: Any, seed: int) -> dict[str, Any]:
    import GCL.augmentors as A
    import GCL.losses as L
    import torch
    import torch.nn.functional as F
    from GCL.models import DualBranchContrast
    from torch import nn
    from torch_geometric.nn import GINConv, global_add_pool

    torch.manual_seed(seed)

    def make_gin_conv(input_dim: int, out_dim: int) -> GINConv:
        return GINConv(nn.Sequential(nn.Linear(input_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim)))

    class GConv(nn.Module):
        def __init__(self, input_dim: int, hidden_dim: int, num_layers: int) -> None:
            super().__init__()
            self.layers = nn.ModuleList()
            self.batch_norms = nn.ModuleList()
            for i in range(num_layers):
                self.layers.append(make_gin_conv(input_dim if i == 0 else hidden_dim, hidden_dim))
                self.batch_norms.append(nn.BatchNorm1d(hidden_dim))
            project_dim = hidden_dim * num_layers
            self.project = nn.Sequential(nn.Linear(project_dim, project_dim), nn.ReLU(inplace=True),
                                         nn.Linear(project_dim, project_dim))

        def forward(self, x: Any, edge_index: Any, batch: Any) -> Any:
            z = x
            zs = []
            for conv, bn in zip(self.layers, self.batch_norms):
                z = conv(z, edge_index)
                z = F.relu(z)
                z = bn(z)
                zs.append(z)
            gs = [global_add_pool(z, batch) for z in zs]
            z, g = (torch.cat(x, dim=1) for x in [zs, gs])
            return z, g

    class Encoder(nn.Module):
        def __init__(self, encoder: nn.Module, augmentor: Any, third_pass: bool) -> None:
            super().__init__()
            self.encoder = encoder
            self.augmentor = augmentor
            self.third_pass = third_pass

        def forward(self, data: Any) -> Any:
            aug1, aug2 = self.augmentor
            batch = data.batch
            x1, edge_index1, _ = aug1(data.x, data.edge_index, data.edge_attr)
            x2, edge_index2, _ = aug2(data.x, data.edge_index, data.edge_attr)
            if self.third_pass:  # the example's pass over the un-augmented batch, unused in training
                self.encoder(data.x, data.edge_index, batch)
            _, g1 = self.encoder(x1, edge_index1, batch)
            _, g2 = self.encoder(x2, edge_index2, batch)
            return g1, g2

    def pool() -> Any:
        return A.RandomChoice([A.NodeDropping(pn=0.2), A.EdgeRemoving(pe=0.2), A.FeatureMasking(pf=0.2)], 1)

    gconv = GConv(input_dim=max(dataset.num_features, 1), hidden_dim=32, num_layers=3)
    contrast = DualBranchContrast(loss=L.InfoNCE(tau=0.2), mode="G2G")
    models = {}
    for variant, third in (("example", True), ("two-pass", False)):
        encoder_model = Encoder(gconv, (pool(), pool()), third)
        models[variant] = (encoder_model, torch.optim.Adam(encoder_model.parameters(), lr=0.01))
    return {"models": models, "contrast": contrast}


def epoch(state: dict[str, Any], loader: Any, variant: str) -> tuple[float, float]:
    import torch

    encoder_model, optimizer = state["models"][variant]
    device = state["device"]
    contrast = state["contrast"]
    encoder_model.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    epoch_loss = 0.0
    for data in loader:  # the example's train(): one step per batch, loss.item() per step
        data = data.to(device)
        optimizer.zero_grad()
        g1, g2 = encoder_model(data)
        g1, g2 = (encoder_model.encoder.project(g) for g in (g1, g2))
        loss = contrast(g1=g1, g2=g2, batch=data.batch)
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    import torch

    install_import_stubs()
    state: dict[str, Any] = {}
    loader: Any = None
    scratch: str | None = None
    for line in sys.stdin:
        message = json.loads(line)
        command = message["cmd"]
        if command == "setup":
            import GCL  # noqa: F401  (fails here, not mid-benchmark, when PyGCL is missing)
            import torch_geometric
            from torch_geometric.datasets import TUDataset
            from torch_geometric.loader import DataLoader

            torch.set_num_threads(int(message.get("threads", 1)))
            name = message["dataset"]
            # a private copy: PyG writes processed/ next to raw/, and the shared root stays read-only
            scratch = tempfile.mkdtemp(prefix="pygcl-data-")
            shutil.copytree(Path(message["raw_root"]) / name / "raw", Path(scratch) / name / "raw")
            dataset = TUDataset(scratch, name)
            generator = torch.Generator().manual_seed(int(message.get("seed", 0)))
            # drop_last as gcl's TrainConfig (its default): both sides train the same number of steps
            loader = DataLoader(dataset, batch_size=int(message.get("batch_size", 128)), shuffle=True,
                                generator=generator, drop_last=True)
            state = build(dataset, int(message.get("seed", 0)))
            state["device"] = torch.device(message.get("device", "cpu"))
            for model, _ in state["models"].values():
                model.to(state["device"])
            answer: dict[str, Any] = {"ok": True, "graphs": len(dataset), "torch": torch.__version__,
                                      "torch_geometric": torch_geometric.__version__,
                                      "pygcl": _version("pygcl")}
        elif command == "epoch":
            wall, cpu = epoch(state, loader, message["variant"])
            answer = {"seconds": wall, "cpu_seconds": cpu}
        elif command == "exit":
            break
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    try:
        return version(distribution)
    except Exception:  # metadata missing: report, do not fail
        return "unknown"


if __name__ == "__main__":
    main()
