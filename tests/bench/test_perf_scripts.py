"""The GPU modes of the speed benchmarks in ``benchmarks/perf/`` (run here on the CPU)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

PERF = Path(__file__).resolve().parents[2] / "benchmarks" / "perf"


def load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, PERF / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without CUDA")
@pytest.mark.parametrize("script", ["augment_gpu_bench", "epoch_bench"])
def test_cuda_device_without_cuda_is_a_clear_error(script: str, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    module = load(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--device", "cuda"])
    with pytest.raises(SystemExit):
        module.main()
    assert "--device cuda: CUDA is not available on this machine" in capsys.readouterr().err


def test_augment_gpu_bench_table_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operation gets a row with both timings; ``--device cpu`` runs the same code path."""
    module = load("augment_gpu_bench")
    out = tmp_path / "augment-gpu.md"
    monkeypatch.setattr(sys, "argv", ["augment_gpu_bench.py", "--device", "cpu", "--sizes", "16",
                                      "--repeats", "2", "--markdown", str(out)])
    module.main()
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 16 |")]
    assert len(rows) == len(module.OPS)
    assert all(float(row.split("|")[4]) > 0 and float(row.split("|")[5]) > 0 for row in rows)


def test_epoch_bench_times_views_drawn_by_a_worker_against_the_limit() -> None:
    """The worker variant's limit is the GIN on the views the worker drew; the report reads it in wall time."""
    bench, report = load("epoch_bench"), load("report")
    data = bench.bench_dataset("MUTAG", 1, None, 1, ["graphcl-pool3", "graphcl-pool3-workers"])
    for key in ("gcl/graphcl-pool3-workers", "limit/graphcl-pool3-workers", "gcl/graphcl-pool3"):
        assert data["median_wall"][key] > 0, key
    rows = [line for line in report.workers_section({"datasets": [data]}) if line.startswith("| MUTAG |")]
    assert len(rows) == 1 and "1 background process" in rows[0]


def test_table_epoch_probe_on_mutag() -> None:
    module = load("table_epoch_probe")
    result = module.main(["lcgnn-tu", "MUTAG", "1", "cpu"])
    assert result["epochs"] == 1 and result["s_per_epoch"] > 0
    with pytest.raises(SystemExit, match="usage"):
        module.main(["lcgnn-tu"])
