from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

DIAGNOSTICS = Path(__file__).resolve().parents[2] / "benchmarks" / "diagnostics"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, DIAGNOSTICS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learning_rate_curve_on_mutag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("learning_rate_curve")
    out = tmp_path / "lr.md"
    monkeypatch.setattr(sys, "argv", ["learning_rate_curve.py", "--table", "lcgnn-tu", "--dataset", "MUTAG",
                                      "--method", "supervised-gin", "--lrs", "0.01", "0.001", "--epochs", "3",
                                      "--markdown", str(out)])
    module.main()
    text = out.read_text()
    assert "The test part is never scored" in text
    assert "| 0.01 |" in text and "| 0.001 |" in text
    assert text.count("3: ") == 2  # three epochs recorded for each rate


def test_gca_pagerank_on_mutag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("gca_pagerank")
    row = module.compare("MUTAG")
    assert row["edges"] == 7442  # every edge of the 188 graphs
    assert 0 < row["pagerank max"] <= 0.7 and 0 <= row["pagerank mean"] <= row["pagerank max"]
    out = tmp_path / "pr.md"
    monkeypatch.setattr(sys, "argv", ["gca_pagerank.py", "--datasets", "MUTAG", "--markdown", str(out)])
    module.main()
    assert "| MUTAG | 7442 |" in out.read_text()


def test_learning_rate_curve_summary() -> None:
    module = load("learning_rate_curve")
    rows = [{"epoch": 1, "val_loss": 0.7, "val_acc": 0.5, "train_acc": 0.5},
            {"epoch": 2, "val_loss": 0.5, "val_acc": 0.7, "train_acc": 0.8},
            {"epoch": 3, "val_loss": 0.6, "val_acc": 0.6, "train_acc": 0.6}]
    summary = module.summary(rows)
    assert summary["best_epoch"] == 2 and summary["val_acc_at_best"] == 0.7
    assert summary["max_jump"] == pytest.approx(0.3) and summary["median_jump"] == pytest.approx(0.25)
    assert summary["min_train_acc_second_half"] == 0.6


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_gin_layout_molhiv_uses_the_library_gin() -> None:
    from torch_geometric.loader import DataLoader

    from gcl.data import load_dataset
    from gcl.nn import GIN

    module = load("gin_layout_molhiv")
    dataset = load_dataset("ogbg-molbace")  # molhiv's features, a fraction of its size (shipped)
    batch = next(iter(DataLoader(dataset[:8], batch_size=8)))
    for layout, width in [("ogb", 300), ("gcl", 1500)]:
        model = module.Supervised(dataset, layout)
        encoder = model.method.encoder
        assert isinstance(encoder, GIN) and encoder.out_channels == width
        assert encoder.layout == ("ogb" if layout == "ogb" else "graphcl")
        assert model.eval()(batch).shape == (8, 2)


def test_grace_protocol_scores_held_out_nodes() -> None:
    module = load("probe_grid")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 200)
    features = np.eye(3)[labels] + 0.3 * rng.standard_normal((600, 3))
    scores = module.grace_protocol(features, labels, runs=2, seed=0)
    assert len(scores) == 2 and all(0.8 < s <= 1.0 for s in scores)


def test_probe_grid_on_cora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)  # the shipped Cora
    module = load("probe_grid")
    out = tmp_path / "probe.md"
    monkeypatch.setattr(sys, "argv", ["probe_grid.py", "--table", "node-gca", "--dataset", "Cora", "--method",
                                      "grace", "--epochs", "2", "--splits", "2", "--markdown", str(out)])
    module.main()
    text = out.read_text()
    assert text.count("| the table's probe") == 2 and "| GRACE's evaluation" in text
    assert "No probe chooses `C` on its test nodes" in text


def test_plain_grace_loss_is_gcl_infonce() -> None:
    import torch

    from gcl.losses import InfoNCE

    module = load("grace_reference")
    model = module.PlainGRACE(5, hidden=8, projection=6, temperature=0.4)
    z1, z2 = torch.randn(20, 8, dtype=torch.float64), torch.randn(20, 8, dtype=torch.float64)
    model = model.double()
    h1, h2 = (model.fc2(torch.nn.functional.elu(model.fc1(z))) for z in (z1, z2))
    expected = InfoNCE(temperature=0.4, symmetric=True, intra_view_negatives=True)(h1, h2)
    assert torch.allclose(model.loss(z1, z2), expected)


def test_plain_grace_zeroes_whole_columns() -> None:
    import torch

    module = load("grace_reference")
    torch.manual_seed(0)
    x = torch.rand(50, 400) + 0.1
    masked = module.zero_columns(x, 0.3)
    zero = (masked == 0).all(0)
    assert ((masked == 0).any(0) == zero).all()  # a column is zeroed for every node or for none
    assert 0.2 < zero.float().mean() < 0.4
    assert torch.equal(masked[:, ~zero], x[:, ~zero])


def test_grace_reference_on_cora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)  # the shipped Cora
    module = load("grace_reference")
    out = tmp_path / "grace.md"
    monkeypatch.setattr(sys, "argv", ["grace_reference.py", "--seeds", "0", "--epochs", "2", "--splits", "2",
                                      "--markdown", str(out)])
    module.main()
    text = out.read_text()
    assert "| gcl | " in text and "| plain PyG | " in text
