"""The speed and memory benchmarks in ``benchmarks/perf/``: their GPU modes (run here on the CPU) and helpers."""

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


@pytest.mark.parametrize("variant", ["graphcl", "graphcl-pool3", "lcgnn", "graphcl-pool3-workers"])
def test_the_limit_runs_on_the_views_of_the_timed_epoch(variant: str) -> None:
    """The views are captured by a second run of the epoch (holding them while timing would slow the
    timed epoch): it must draw what the timed run drew, which the encoder's inputs show."""
    import torch

    from gcl.data import load_dataset

    bench = load("epoch_bench")
    dataset = load_dataset("PROTEINS")[:300]  # two steps of 128
    method = bench.build_variants(dataset, seed=0)[variant]
    config = bench.epoch_config(seed=3, view_workers=1 if variant.endswith("workers") else 0)
    seen: list[tuple[float, int, int]] = []

    def fingerprint(module, args, kwargs):  # type: ignore[no-untyped-def]
        x, edge_index = args[:2]
        seen.append((float(x.double().sum()), int(edge_index.sum()), int(edge_index.size(1))))

    handle = method.encoder.register_forward_pre_hook(fingerprint, with_kwargs=True)
    try:
        bench.timed_epoch(method, dataset, config)
    finally:
        handle.remove()
    captured = bench.capture_epoch(method, dataset, config)
    assert len(captured) == 2  # the timed epoch's two steps
    again: list[tuple[float, int, int]] = []
    for item in captured:
        for view in item if isinstance(item, tuple) else (item,):
            again.append((float(view.x.double().sum()), int(view.edge_index.sum()), int(view.edge_index.size(1))))
    assert seen[-len(again):] == again  # (with workers, the last epoch of the two)
    assert torch.is_tensor(captured[0][0].x if isinstance(captured[0], tuple) else captured[0].x)


def test_micro_bench_loop_costs_on_proteins() -> None:
    from gcl.data import load_dataset

    costs = load("micro_bench").loop_costs(load_dataset("PROTEINS"), repeats=3)  # 8 batches of 128
    assert set(costs) == {"fit() set-up and epoch end", "loop per step", "loop per step, loading included"}
    assert costs["loop per step, loading included"] > 0


def test_micro_bench_hgpsl_step_restores_the_library_paths() -> None:
    from gcl.nn import pool as pool_module

    before = (pool_module.supports_sparse_aggregation, pool_module._neighbourhood_candidates)
    info, times = load("micro_bench").hgpsl_steps(repeats=1, name="PROTEINS")  # shipped
    assert info["graphs"] == 512 and set(times) == {"library", "message passing, tensor candidates"}
    assert (pool_module.supports_sparse_aggregation, pool_module._neighbourhood_candidates) == before


def test_table_epoch_probe_on_mutag() -> None:
    module = load("table_epoch_probe")
    result = module.main(["lcgnn-tu", "MUTAG", "1", "cpu"])
    assert result["epochs"] == 1 and result["s_per_epoch"] > 0
    with pytest.raises(SystemExit, match="usage"):
        module.main(["lcgnn-tu"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_shared_memory_sampler_sums_a_process_tree() -> None:
    import subprocess

    bench = load("shared_memory_bench")
    # a parent and a child, each holding 64 MB of its own (written, so resident)
    code = ("import subprocess, sys, time; a = bytearray(64 << 20); a[::4096] = b'x' * len(a[::4096]); "
            "c = subprocess.Popen([sys.executable, '-c', \"import time; b = bytearray(64 << 20); "
            "b[::4096] = b'y' * len(b[::4096]); time.sleep(3)\"]); c.wait()")
    process = subprocess.Popen([sys.executable, "-c", code])
    sampler = bench.TreeSampler(process.pid, interval=0.05)
    sampler.start()
    process.wait()
    sampler.stop()
    assert sampler.most_processes == 2
    assert sampler.peak["private"] >= 128 << 20 and sampler.peak["pss"] >= sampler.peak["private"]
    assert sampler.peak["rss"] >= sampler.peak["pss"]


def test_shared_memory_report() -> None:
    bench = load("shared_memory_bench")
    env = {"command": "python shared_memory_bench.py", "date": "2026-01-01", "python": "3", "torch": "2",
           "torch_geometric": "2", "cpu": "cpu", "cores": 2, "memory_gb": 8, "load_average": [0.0]}
    row = {"nproc": 2, "processes": 3, "peak_private": 1 << 30, "peak_rss": 3 << 30, "final_loss": 2.5,
           "train_seconds": 9.0}
    text = bench.markdown({"environment": env, "epochs": 1, "datasets": [{
        "dataset": "COLLAB", "dataset_bytes": 1 << 30, "loader_memory": [0.5, 0.6, 0.7], "loader_mapped": [0.6, 0.6],
        "runs": [{**row, "mode": "memory", "peak_pss": 3 << 30}, {**row, "mode": "mmap", "peak_pss": 2 << 30}]}]})
    assert "| COLLAB | 1024 | 2 | in memory | 3 | 3072 | 1024 | 3072 | – | 2.5000 | 9.0 |" in text
    assert "| COLLAB | 1024 | 2 | memory-mapped (`--mmap`) | 3 | 2048 | 1024 | 3072 | 1024 (1.00×) |" in text
    assert "| COLLAB | 0.600 [0.500–0.700] | 0.600 [0.600–0.600] | 1.00 |" in text


def test_report_update_replaces_only_the_sections_given() -> None:
    report = load("report")
    old = ["# Speed and memory", "", "intro", "", "## Pre-training epoch time", "old epoch", "",
           "## Peak memory of pre-training", "memory of another run", "", "## Reading the numbers", "old notes"]
    new = ["# Speed and memory", "", "new intro", "", "## Pre-training epoch time", "new epoch", "",
           "## Reading the numbers", "new notes", "", "## Micro-benchmarks", "micro"]
    assert report.updated(old, new) == [
        "# Speed and memory", "", "intro", "", "## Pre-training epoch time", "new epoch", "",
        "## Peak memory of pre-training", "memory of another run", "", "## Reading the numbers", "new notes", "",
        "## Micro-benchmarks", "micro"]


def test_report_update_needs_an_existing_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["report.py", "--update", "--epoch", str(tmp_path / "e.json"),
                                      "--out", str(tmp_path / "missing.md")])
    with pytest.raises(SystemExit):
        load("report").main()
    assert "--update replaces sections of an existing report; there is no" in capsys.readouterr().err


def test_like_for_like_node_dropping_keeps_the_nodes_as_pygcl() -> None:
    from torch_geometric.data import Batch

    from gcl.augment import DropNodes, RandomChoice
    from gcl.data import load_dataset

    batch = Batch.from_data_list(list(load_dataset("MUTAG")[:16]))
    module = load("epoch_bench")
    variants = module.build_variants(load_dataset("MUTAG"), seed=0)
    pool = variants["graphcl-pool3"].augment1
    assert isinstance(pool, RandomChoice)
    dropping = [t for t in pool.transforms if isinstance(t, DropNodes)]
    assert len(dropping) == 1 and dropping[0].isolate and dropping[0].mode == "bernoulli"
    torch.manual_seed(0)
    view = dropping[0](batch)
    assert view.num_nodes == batch.num_nodes and torch.equal(view.x, batch.x)  # PyGCL keeps x whole
    kept = view.edge_index.size(1)
    assert 0 < kept < batch.edge_index.size(1) and view.edge_attr.size(0) == kept


def test_augment_bench_takes_ratios_within_rounds() -> None:
    bench = load("augment_bench")
    # a slow round for both sides does not move the ratio; the median of the per-round ratios is reported
    assert bench.per_round_ratio([10.0, 30.0, 12.0], [1.0, 2.0, 1.0]) == (12.0, 10.0, 15.0)
    calls: list[str] = []
    rounds = bench.interleaved({"ours": (lambda: calls.append("ours"), 3), "loop": (lambda: calls.append("loop"), 1)},
                               rounds=2)
    assert {name: len(values) for name, values in rounds.items()} == {"ours": 2, "loop": 2}
    assert calls == ["ours", "loop"] + (["ours"] * 3 + ["loop"]) * 2  # a warm-up, then interleaved rounds


def test_memory_report_shows_what_the_largest_step_keeps() -> None:
    report = load("report")
    env = {"command": "python memory_bench.py", "date": "2026-01-01"}
    row = {"dataset": "REDDIT-BINARY", "graphs": 2000, "nodes": 859254, "edges": 1991016, "features": 1,
           "dataset_bytes": 34 << 20, "model_bytes": 1 << 18, "baseline_rss": 370 << 20,
           "after_load_rss": 407 << 20, "after_load_peak_rss": 407 << 20, "peak_rss": 808 << 20,
           "ratio_above_baseline": 12.89, "ratio_raw": 23.77, "epoch_seconds": 5.6}
    older = "\n".join(report.memory_section([{"environment": env, "datasets": [row]}]))
    assert "| 12.89× | 23.77× | **no** | – | – | 5.6 |" in older  # runs from before the columns
    measured = {**row, "saved_for_backward_bytes": 118 << 20, "saved_for_backward_batch_nodes": 59629}
    text = "\n".join(report.memory_section([{"environment": env, "mmap_threshold": 131072, "datasets": [measured]}]))
    assert "| **no** | 118 (59,629 nodes) | – | 5.6 |" in text
    assert "`MALLOC_MMAP_THRESHOLD_=131072`" in text
    assert "activation checkpointing" not in text and "warm-up" not in text and "batches of" not in text
    stepped = {**measured, "step_tensor_peak_bytes": 79 << 20, "step_tensor_peak_batch_nodes": 63479}
    text = "\n".join(report.memory_section([{"environment": env, "checkpoint": True, "batch_size": 16,
                                              "warm_up": True, "datasets": [stepped]}]))
    assert "| 118 (59,629 nodes) | 79 (63,479 nodes) | 5.6 |" in text
    assert "**GIN with activation checkpointing**" in text and "**batches of 16 graphs**" in text
    assert "**baseline read after a one-epoch warm-up**" in text
    assert "**micro-batches of" not in text and "every augmentation" not in text and ", commit " not in text
    micro = {**stepped, "warm_up_augmentations": True}
    text = "\n".join(report.memory_section([{"environment": {**env, "commit": "abc1234"}, "micro_batch": 8,
                                              "warm_up": True, "datasets": [micro]}]))
    assert "**micro-batches of 8 graphs**" in text and "`GIN(micro_batch_size=8)`" in text
    assert "one call of every augmentation" in text and "(2026-01-01, commit abc1234)" in text
    assert "nodes per micro-batch" not in text
    text = "\n".join(report.memory_section([{"environment": env, "micro_batch_nodes": 4096, "datasets": [micro]}]))
    assert "**at most 4,096 nodes per micro-batch**" in text and "`GIN(micro_batch_nodes=4096)`" in text


def test_memory_bench_on_mutag_with_checkpointing_and_a_warm_up() -> None:
    bench = load("memory_bench")
    threads = torch.get_num_threads()
    try:
        plain = bench.measure("MUTAG", 1, "edge_index", checkpoint=False, batch_size=64)
        recomputed = bench.measure("MUTAG", 1, "edge_index", checkpoint=True, batch_size=64, warm=True)
    finally:
        torch.set_num_threads(threads)
    assert not plain["checkpoint"] and recomputed["checkpoint"] and recomputed["warm_up"]
    assert plain["batch_size"] == recomputed["batch_size"] == 64
    # the GIN's layers keep only their inputs: less is kept, and a step's tensors peak lower
    assert recomputed["saved_for_backward_bytes"] < plain["saved_for_backward_bytes"]
    assert 0 < recomputed["step_tensor_peak_bytes"] < plain["step_tensor_peak_bytes"]
    assert plain["step_tensor_peak_batch_nodes"] == recomputed["step_tensor_peak_batch_nodes"] > 0
    assert plain["peak_rss"] >= plain["baseline_rss"] > 0


def test_memory_bench_on_mutag_in_micro_batches() -> None:
    bench = load("memory_bench")
    threads = torch.get_num_threads()
    try:
        plain = bench.measure("MUTAG", 1, "edge_index", batch_size=64)
        micro = bench.measure("MUTAG", 1, "edge_index", batch_size=64, warm=True, micro_batch=8)
    finally:
        torch.set_num_threads(threads)
    assert plain["micro_batch"] is None and micro["micro_batch"] == 8 and micro["warm_up_augmentations"]
    # the GIN keeps the micro-batches' inputs only
    assert 0 < micro["saved_for_backward_bytes"] < plain["saved_for_backward_bytes"] / 2
    assert 0 < micro["step_tensor_peak_bytes"] < plain["step_tensor_peak_bytes"]


def test_micro_bench_times_graces_loss_both_ways() -> None:
    times = load("micro_bench").node_losses(repeats=1)
    assert set(times) == {"InfoNCE (library)", "two directions, concatenated logits"}
    assert all(value > 0 for value in times.values())


def test_micro_batch_accuracy_runs_gcl_train_and_tabulates() -> None:
    bench = load("micro_batch_accuracy")
    runs = [bench.run_one("MUTAG", 0, micro, commit="abc1234") for micro in (None, 16)]
    assert [r["command"] for r in runs] == ["gcl train graphcl --dataset MUTAG --seed 0 --quiet",
                                           "gcl train graphcl --dataset MUTAG --seed 0 --config micro.yaml --quiet"]
    assert all(50 < r["accuracy"] <= 100 and r["train_seconds"] > 0 and r["wall_seconds"] > 0 for r in runs)
    assert runs[0]["final_loss"] != runs[1]["final_loss"]  # the micro-batches changed what batch norm saw
    env = {"date": "2026-01-01", "commit": "abc1234", "python": "3", "torch": "2", "torch_geometric": "2",
           "cpu": "cpu", "cores": 2, "command": "python micro_batch_accuracy.py"}
    text = bench.markdown({"environment": env, "datasets": ["MUTAG"], "micro_batch": 16, "runs": runs})
    assert "runs at commit abc1234" in text
    assert f"| MUTAG | one pass | 1 | {runs[0]['accuracy']:.2f} ± 0.00 |" in text
    assert f"| MUTAG | micro-batches of 16 graphs | 1 | {runs[1]['accuracy']:.2f} ± 0.00 |" in text


def test_first_load_times_a_load_into_an_empty_cache_and_one_from_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    module = load("first_load")
    out = tmp_path / "first-load.json"
    monkeypatch.setattr(sys, "argv", ["first_load.py", "MUTAG", "--json", str(out)])
    module.main()
    result = json.loads(out.read_text())["datasets"]["MUTAG"]
    assert result["graphs"] == 188 and result["first"] > 0 and result["second"] > 0
