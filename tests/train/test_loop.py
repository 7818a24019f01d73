from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from gcl.losses import InfoNCE
from gcl.methods import build_method
from gcl.train import TrainConfig, Trainer, TrainingDiverged, fit, run, seed_everything

from .recorders import Recorder


def _config(**overrides: Any) -> TrainConfig:
    # on the CPU: the tests compare numbers across runs, which CUDA kernels need not reproduce
    values: dict[str, Any] = {"epochs": 3, "batch_size": 32, "lr": 0.01, "seed": 3, "progress": False,
                              "device": "cpu"}
    values.update(overrides)
    return TrainConfig(**values)


def _graphcl(dataset: Any) -> nn.Module:
    seed_everything(3)
    return build_method("graphcl", dataset, augmentations=("drop_nodes", "subgraph"))


def _lcgnn(dataset: Any) -> nn.Module:
    seed_everything(3)
    return build_method("lcgnn", dataset, hidden_channels=16, num_layers=2, memory_size=64, momentum=0.9)


class Crash(Exception):
    pass


class CrashAt(nn.Module):
    """Wraps a method and raises once its forward has run ``at`` times: a simulated kill."""

    def __init__(self, method: nn.Module, at: int) -> None:
        super().__init__()
        self.method = method
        self.at = at
        self.calls = 0

    def forward(self, batch: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            raise Crash
        return self.method(batch, **kwargs)

    def view_augmentations(self) -> Any:
        return self.method.view_augmentations()

    def after_step(self) -> None:
        hook = getattr(self.method, "after_step", None)
        if hook is not None:
            hook()


def _state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_same_seed_same_loss_curve(mutag: Any) -> None:
    first = fit(_graphcl(mutag), mutag, _config())
    second = fit(_graphcl(mutag), mutag, _config())
    assert [r["loss"] for r in first.history] == [r["loss"] for r in second.history]
    third = fit(_graphcl(mutag), mutag, _config(seed=4))
    assert [r["loss"] for r in first.history] != [r["loss"] for r in third.history]


@pytest.mark.parametrize("builder", [_graphcl, _lcgnn], ids=["graphcl", "lcgnn"])
@pytest.mark.parametrize("crash_at", [4, 7])  # epoch boundary (4 steps/epoch... resumed mid-epoch too)
def test_resume_after_kill_matches_uninterrupted(builder: Any, crash_at: int, mutag: Any, tmp_path: Path) -> None:
    config = _config(checkpoint_every=2)
    uninterrupted = fit(builder(mutag), mutag, config)

    wrapped = CrashAt(builder(mutag), crash_at)
    with pytest.raises(Crash):
        Trainer(wrapped, config, out_dir=tmp_path).fit(mutag)
    assert (tmp_path / "checkpoint.pt").exists()
    result = Trainer(CrashAt(builder(mutag), 10_000), config, out_dir=tmp_path).fit(mutag)

    expected, got = _state(uninterrupted.method), _state(result.method.method)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key].float(), got[key].float(), atol=1e-6, rtol=0), key
    # the epoch cut by the kill reports the loss of all its steps, those before the checkpoint too
    assert [r["loss"] for r in result.history] == pytest.approx([r["loss"] for r in uninterrupted.history],
                                                                abs=1e-6)
    assert [r["graphs_per_second"] > 0 for r in result.history] == [True] * config.epochs


def test_resume_after_a_crash_in_validation_keeps_the_epoch_loss(mutag: Any, tmp_path: Path) -> None:
    # checkpointed after the epoch's last step, stopped before its end (in validation)
    steps = len(mutag) // 32
    config = _config(epochs=2, checkpoint_every=steps)
    uninterrupted = fit(_graphcl(mutag), mutag, config, validate=lambda method: 0.5)

    def crash(method: nn.Module) -> float:
        raise Crash

    with pytest.raises(Crash):
        fit(_graphcl(mutag), mutag, config, out_dir=tmp_path, validate=crash)
    resumed = fit(_graphcl(mutag), mutag, config, out_dir=tmp_path, validate=lambda method: 0.5)
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in uninterrupted.history],
                                                                 abs=1e-6)
    assert resumed.history[0]["loss"] > 0


def test_resume_with_more_epochs_continues_the_run(mutag: Any, tmp_path: Path) -> None:
    uninterrupted = fit(_graphcl(mutag), mutag, _config(epochs=3))
    fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path)
    longer = fit(_graphcl(mutag), mutag, _config(epochs=3, progress=True), out_dir=tmp_path)
    _assert_same_state(uninterrupted.method, longer.method, atol=1e-6)
    assert len(longer.history) == 3


@pytest.mark.parametrize("change, message", [
    ({"lr": 0.5}, r"lr 0.01 -> 0.5"),
    ({"seed": 7}, r"seed 3 -> 7"),
    ({"batch_size": 16}, r"batch_size 32 -> 16"),
    ({"epochs": 1}, r"2 epochs done, more than epochs=1"),
    ({"view_workers": 1}, r"view_workers"),
])
def test_resume_refuses_other_settings(change: dict[str, Any], message: str, mutag: Any, tmp_path: Path) -> None:
    fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path)
    with pytest.raises(ValueError, match=message):
        fit(_graphcl(mutag), mutag, _config(**{"epochs": 2, **change}), out_dir=tmp_path)
    # starting over in the same folder is always possible
    fit(_graphcl(mutag), mutag, _config(**{"epochs": 2, **change}), out_dir=tmp_path, resume=False)


def test_resume_refuses_a_longer_cosine_schedule(mutag: Any, tmp_path: Path) -> None:
    fit(_graphcl(mutag), mutag, _config(epochs=2, scheduler="cosine"), out_dir=tmp_path)
    with pytest.raises(ValueError, match="cosine schedule spans them"):
        fit(_graphcl(mutag), mutag, _config(epochs=4, scheduler="cosine"), out_dir=tmp_path)


def test_resume_refuses_another_method_or_dataset(mutag: Any, tmp_path: Path) -> None:
    from gcl.data import load_dataset

    fit(_graphcl(mutag), mutag, _config(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match="written by GraphCL, not LCGNN"):
        fit(_lcgnn(mutag), mutag, _config(epochs=1), out_dir=tmp_path)
    ptc = load_dataset("PTC_MR")
    with pytest.raises(ValueError, match="data of 188 examples; this data has 344"):
        fit(_graphcl(ptc), ptc, _config(epochs=1), out_dir=tmp_path)
    # parameters that do not fit (here: another width) are refused with the same advice
    with pytest.raises(ValueError, match=r"does not fit this GraphCL.*resume=False"):
        seed_everything(3)
        fit(build_method("graphcl", mutag, hidden_channels=16), mutag, _config(epochs=1), out_dir=tmp_path)


def test_resume_refuses_another_run_of_the_same_class(mutag: Any, tmp_path: Path) -> None:
    # other options (a temperature) keep the parameters' shapes, and two names may share a class:
    # only the run's key tells those runs apart
    run("graphcl", mutag, method_options={"temperature": 0.3}, out_dir=tmp_path, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"another run \(method_options \{'temperature': 0.3\} -> "
                                         r"\{'temperature': 0.5\}\)"):
        run("graphcl", mutag, method_options={"temperature": 0.5}, out_dir=tmp_path, epochs=2, progress=False)
    # a default written out names the same run as leaving it out (the builder's and the encoder's)
    defaults = {"temperature": 0.2, "hidden_channels": 32, "augmentations": ["random4", "random4"],
                "layout": "graphcl", "activation_checkpointing": False}
    run("graphcl", mutag, method_options=defaults, out_dir=tmp_path / "defaults", epochs=1, progress=False)
    resumed = run("graphcl", mutag, out_dir=tmp_path / "defaults", epochs=2, progress=False)
    assert len(resumed.history) == 2
    with pytest.raises(ValueError, match=r"another run \(method_options \{\} -> \{'hidden_channels': 16\}\)"):
        run("graphcl", mutag, method_options={"hidden_channels": 16}, out_dir=tmp_path / "defaults", epochs=3,
            progress=False)
    graph = _one_graph()
    options = {"hidden_channels": 16, "projection_channels": 16}
    run("grace", graph, method_options=options, out_dir=tmp_path / "node", epochs=1, progress=False)
    assert type(build_method("grace", graph, **options)) is type(build_method("gca", graph, **options))
    with pytest.raises(ValueError, match=r"method 'grace' -> 'gca'"):
        run("gca", graph, method_options=options, out_dir=tmp_path / "node", epochs=2, progress=False)
    with pytest.raises(ValueError, match=r"dataset_options \{\} -> \{'normalize_features': True\}"):
        run("grace", graph, method_options=options, out_dir=tmp_path / "node", epochs=2, progress=False,
            run_key={"dataset_options": {"normalize_features": True, "mmap": True}})
    result = run("grace", graph, method_options=options, out_dir=tmp_path / "node", epochs=2, progress=False,
                 run_key={"dataset_options": {"mmap": True}})  # how the data is held is not the run
    assert len(result.history) == 2


def test_resume_accepts_options_written_otherwise(mutag: Any, tmp_path: Path) -> None:
    options: dict[str, Any] = {"augmentations": ("drop_nodes", "subgraph")}
    run("graphcl", mutag, method_options=options, out_dir=tmp_path, epochs=1, progress=False)
    options = {"augmentations": ["drop_nodes", "subgraph"]}  # as YAML gives them
    assert len(run("graphcl", mutag, method_options=options, out_dir=tmp_path, epochs=2,
                   progress=False).history) == 2


def test_resume_accepts_dataset_options_written_out_at_their_defaults(tmp_path: Path) -> None:
    run("graphcl", "PTC_MR", out_dir=tmp_path, epochs=1, progress=False)
    defaults = {"node_features": "auto", "max_degree": None, "use_node_attr": False, "normalize_features": False}
    assert len(run("graphcl", "PTC_MR", dataset_options=defaults, out_dir=tmp_path, epochs=2,
                   progress=False).history) == 2  # the same data, the same run
    with pytest.raises(ValueError, match=r"dataset_options \{\} -> \{'use_node_attr': True\}"):
        run("graphcl", "PTC_MR", dataset_options={**defaults, "use_node_attr": True}, out_dir=tmp_path, epochs=3,
            progress=False)
    # a checkpoint whose key still holds options at their defaults (written before they were left out)
    checkpoint = tmp_path / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    state["run_key"]["dataset_options"] = {"node_features": "auto", "use_node_attr": False}
    torch.save(state, checkpoint)
    assert len(run("graphcl", "PTC_MR", out_dir=tmp_path, epochs=3, progress=False).history) == 3


def test_a_run_key_names_functions_by_what_they_are_not_where(mutag: Any, tmp_path: Path) -> None:
    # a function's repr holds its address, which another process does not share
    def make_transform() -> Any:
        def keep(data: Any) -> Any:
            return data

        return keep

    first, second = make_transform(), make_transform()
    assert repr(first) != repr(second)
    fit(_graphcl(mutag), mutag, _config(epochs=1), out_dir=tmp_path, run_key={"transform": first})
    resumed = fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path, run_key={"transform": second})
    assert len(resumed.history) == 2
    with pytest.raises(ValueError, match=r"another run \(transform '.*make_transform.<locals>.keep' -> 'other'\)"):
        fit(_graphcl(mutag), mutag, _config(epochs=3), out_dir=tmp_path, run_key={"transform": "other"})


def _one_graph() -> Any:
    from torch_geometric.data import Data
    from torch_geometric.utils import erdos_renyi_graph, to_undirected

    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return Data(x=torch.rand(30, 8, generator=generator), edge_index=to_undirected(erdos_renyi_graph(30, 0.2)))


def test_resume_mid_epoch_refuses_another_batch_size(mutag: Any, tmp_path: Path) -> None:
    # the steps before the checkpoint would stand for other graphs
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl(mutag), 4), _config(checkpoint_every=2), out_dir=tmp_path).fit(mutag)
    with pytest.raises(ValueError, match="batch_size 32 -> 128"):
        Trainer(CrashAt(_graphcl(mutag), 10_000), _config(checkpoint_every=2, batch_size=128),
                out_dir=tmp_path).fit(mutag)


def _supervised(dataset: Any) -> nn.Module:
    seed_everything(3)
    return build_method("supervised", dataset, hidden_channels=16, num_layers=2)


def _assert_same_state(first: nn.Module, second: nn.Module, atol: float = 0.0) -> None:
    expected, got = _state(first), _state(second)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key].float(), got[key].float(), atol=atol, rtol=0), key


def test_view_workers_give_the_same_run_whatever_their_number(mutag: Any) -> None:
    one = fit(_graphcl(mutag), mutag, _config(view_workers=1))
    two = fit(_graphcl(mutag), mutag, _config(view_workers=2))
    assert [r["loss"] for r in one.history] == [r["loss"] for r in two.history]
    _assert_same_state(one.method, two.method)
    # the views come from per-step seeds, not from the stream of view_workers=0
    inline = fit(_graphcl(mutag), mutag, _config())
    assert [r["loss"] for r in inline.history] != [r["loss"] for r in one.history]
    other_seed = fit(_graphcl(mutag), mutag, _config(view_workers=1, seed=4))
    assert [r["loss"] for r in other_seed.history] != [r["loss"] for r in one.history]


def test_view_workers_draw_per_graph_pools(mutag: Any) -> None:
    def random4(per_graph: bool) -> nn.Module:
        seed_everything(3)
        return build_method("graphcl", mutag, pool_per_graph=per_graph)

    one = fit(random4(True), mutag, _config(view_workers=1, epochs=2))
    two = fit(random4(True), mutag, _config(view_workers=2, epochs=2))
    assert [r["loss"] for r in one.history] == [r["loss"] for r in two.history]
    per_batch = fit(random4(False), mutag, _config(view_workers=1, epochs=2))
    assert [r["loss"] for r in per_batch.history] != [r["loss"] for r in one.history]


@pytest.mark.parametrize("builder", [_lcgnn, _supervised], ids=["lcgnn", "supervised"])
def test_view_workers_deliver_the_batches_of_the_training_process(builder: Any, mutag: Any) -> None:
    # no augmentation: the workers only collate, so the run is the one without them
    inline = fit(builder(mutag), mutag, _config())
    prefetched = fit(builder(mutag), mutag, _config(view_workers=1))
    assert [r["loss"] for r in inline.history] == [r["loss"] for r in prefetched.history]
    _assert_same_state(inline.method, prefetched.method)


def test_view_workers_collate_datasets_with_a_transform(mutag: Any) -> None:
    import copy

    import gcl.augment as A

    dataset = copy.copy(mutag)
    dataset.transform = A.AddCentrality("degree")
    result = fit(_graphcl(mutag), dataset, _config(epochs=1, view_workers=1))
    assert len(result.history) == 1 and result.history[0]["loss"] > 0


# 5 steps per epoch. The workers draw the next epoch's batches during the epoch before it: a checkpoint in
# epoch 2 (step 6) and one at the end of epoch 1 keep the shuffle's state from before that early draw
@pytest.mark.parametrize(("crash_at", "every"), [(4, 2), (7, 2), (6, 0)])
def test_resume_with_view_workers_matches_uninterrupted(crash_at: int, every: int, mutag: Any,
                                                         tmp_path: Path) -> None:
    config = _config(checkpoint_every=every, view_workers=1)
    reference = fit(_graphcl(mutag), mutag, config).method
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl(mutag), crash_at), config, out_dir=tmp_path).fit(mutag)
    resumed = Trainer(CrashAt(_graphcl(mutag), 10_000), config, out_dir=tmp_path).fit(mutag).method
    _assert_same_state(reference, resumed.method, atol=1e-6)


def test_graphcl_reads_only_the_graph_count_of_the_batch_with_views(mutag: Any) -> None:
    # the workers hand GraphCL its views and a batch without tensors; the run is the one with the whole batch
    light = fit(_graphcl(mutag), mutag, _config(view_workers=1))
    method = _graphcl(mutag)
    method.batch_keys_with_views = None  # deliver the whole batch
    whole = fit(method, mutag, _config(view_workers=1))
    assert [r["loss"] for r in light.history] == [r["loss"] for r in whole.history]


def test_a_hung_view_worker_stops_training_after_view_timeout(mutag: Any) -> None:
    class Hangs(nn.Module):
        # GraphCL whose views never arrive: the worker sleeps in the augmentation
        def __init__(self, method: nn.Module) -> None:
            super().__init__()
            self.method = method

        def view_augmentations(self) -> list[Any]:
            return [lambda batch: time.sleep(60)] * 2

        def forward(self, batch: Any, views: Any = None) -> Tensor:
            return self.method(batch, views=views)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"sent nothing for 0\.5 s"):
        fit(Hangs(_graphcl(mutag)), mutag, _config(view_workers=1, view_timeout=0.5))
    assert time.monotonic() - started < 10


def test_view_workers_refuse_what_they_cannot_serve(mutag: Any) -> None:
    with pytest.raises(ValueError, match="view_workers must be a non-negative integer"):
        _config(view_workers=-1)
    for bad in (0, -1.0, "5", True, float("nan")):
        with pytest.raises(ValueError, match="view_timeout must be a positive number of seconds or None"):
            _config(view_workers=1, view_timeout=bad)
    # longer than the pipe's poll() can wait: the first step would raise OverflowError
    for bad in (float("inf"), 1e7, 2147484):
        with pytest.raises(ValueError, match=r"view_timeout must be at most 2147483 seconds.*None sets no limit"):
            _config(view_workers=1, view_timeout=bad)
    assert _config(view_workers=1, view_timeout=2147483).view_timeout == 2147483

    class NoViews(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(1))

        def forward(self, batch: Any) -> Tensor:
            return self.weight.sum()

    with pytest.raises(ValueError, match="NoViews draws its views inside forward"):
        fit(NoViews(), mutag, _config(view_workers=1))
    with pytest.raises(ValueError, match="view_workers needs a PyG dataset of graphs"):
        fit(_graphcl(mutag), [mutag[0]], _config(view_workers=1))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(mutag: Any, tmp_path: Path) -> None:
    class NaNAfter(nn.Module):
        def __init__(self, method: nn.Module, at: int) -> None:
            super().__init__()
            self.method, self.at, self.calls = method, at, 0

        def forward(self, batch: Any) -> Tensor:
            self.calls += 1
            loss = self.method(batch)
            return loss * float("nan") if self.calls >= self.at else loss

    method = NaNAfter(_graphcl(mutag), 6)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 6.*last good checkpoint"):
        Trainer(method, _config(checkpoint_every=1), out_dir=tmp_path).fit(mutag)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in saved["method"].values() if v.is_floating_point())


def test_non_finite_embeddings_stop_as_a_diverged_run(mutag: Any, tmp_path: Path) -> None:
    # the loss's input check sees the NaN before the loss does: still a diverged run, not bad data
    class NaNEmbeddingsAfter(nn.Module):
        def __init__(self, at: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))
            self.at, self.calls, self.loss = at, 0, InfoNCE()

        def forward(self, batch: Any) -> Tensor:
            self.calls += 1
            z = torch.randn(8, 4) * self.weight
            return self.loss(z * float("nan") if self.calls >= self.at else z, z + 0.1)

    with pytest.raises(TrainingDiverged, match=r"z1 contains NaN.* at epoch 1, step 2; stopping "
                                               r"\(no checkpoint was written yet\)\. Lower the learning rate"):
        Trainer(NaNEmbeddingsAfter(2), _config(), out_dir=tmp_path).fit(mutag)
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step 4; stopping \(last good checkpoint: "):
        Trainer(NaNEmbeddingsAfter(4), _config(batch_size=64), out_dir=tmp_path / "later").fit(mutag)


def test_early_stopping_restores_best(mutag: Any, tmp_path: Path) -> None:
    scores = iter([0.5, 0.7, 0.6, 0.4, 0.3, 0.2])
    result = fit(_graphcl(mutag), mutag, _config(epochs=6, patience=2), out_dir=tmp_path,
                 validate=lambda method: next(scores))
    assert result.stopped_early and len(result.history) == 4
    assert result.best_val == 0.7
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert best["epoch"] == 2
    # the returned method holds epoch 2's state, not the last epoch's (the checkpoint's)
    last = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["method"]
    state = result.method.state_dict()
    assert all(torch.equal(state[key], value) for key, value in best["method"].items())
    assert not all(torch.equal(state[key], value) for key, value in last.items())


def test_a_run_that_stopped_early_is_finished(mutag: Any, tmp_path: Path) -> None:
    scores = iter([0.5, 0.7, 0.6, 0.4])
    first = fit(_graphcl(mutag), mutag, _config(epochs=6, patience=2), out_dir=tmp_path,
                validate=lambda method: next(scores))
    assert first.stopped_early and len(first.history) == 4

    def never(method: nn.Module) -> float:
        raise AssertionError("a finished run trains and validates no further epoch")

    again = fit(_graphcl(mutag), mutag, _config(epochs=6, patience=2), out_dir=tmp_path, validate=never)
    assert again.stopped_early and again.history == first.history and again.best_val == 0.7
    _assert_same_state(first.method, again.method, atol=0.0)  # the best state, restored from best.pt


def test_sync_batchnorm_on_a_cpu_is_refused_in_one_process_too(mutag: Any) -> None:
    # one process on the CPU: the setting would do nothing, so it is refused before any step
    method = _graphcl(mutag)
    before = copy.deepcopy(method.state_dict())
    with pytest.raises(ValueError, match=r"sync_batchnorm needs CUDA devices \(got cpu\)"):
        fit(method, mutag, _config(sync_batchnorm=True, device="cpu"))
    assert all(torch.equal(before[key], value) for key, value in method.state_dict().items())  # no step ran


def test_patience_without_validation_is_refused(mutag: Any) -> None:
    with pytest.raises(ValueError, match=r"patience=3 needs a validate function"):
        fit(_graphcl(mutag), mutag, _config(patience=3))


def test_restart_removes_the_earlier_checkpoint_at_once(mutag: Any, tmp_path: Path) -> None:
    # a restart killed before its first checkpoint must not leave the earlier run to be resumed
    fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path)
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl(mutag), 2), _config(epochs=2, lr=0.5), out_dir=tmp_path).fit(mutag, resume=False)
    assert not (tmp_path / "checkpoint.pt").exists()
    assert len(fit(_graphcl(mutag), mutag, _config(epochs=2, lr=0.5), out_dir=tmp_path).history) == 2


def test_nan_validation_score_is_never_the_best(mutag: Any, tmp_path: Path) -> None:
    # A diverged validation loss gives NaN; it must neither win nor block later epochs.
    scores = iter([float("nan"), 0.4, 0.6, float("nan"), 0.5])
    result = fit(_graphcl(mutag), mutag, _config(epochs=5), out_dir=tmp_path,
                 validate=lambda method: next(scores))
    assert result.best_val == 0.6
    assert torch.load(tmp_path / "best.pt", weights_only=False)["epoch"] == 3
    everything_nan = fit(_graphcl(mutag), mutag, _config(epochs=2), validate=lambda method: float("nan"))
    assert everything_nan.best_val is None

def test_run_two_lines(mutag: Any) -> None:
    result = run("graphcl", mutag, epochs=2, batch_size=64, progress=False)
    assert len(result.history) == 2 and result.history[-1]["loss"] > 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs must be at least 1"), ("lr", -1.0, "lr must be a positive number"),
     ("optimizer", "lbfgs", "optimizer must be"), ("scheduler", "linear", "scheduler must be"),
     ("lr", "1e-3", r"lr must be a number \(got '1e-3'; YAML reads"), ("epochs", 2.5, "epochs must be an integer"),
     ("patience", True, "patience must be an integer"), ("lr", float("nan"), "lr must be a positive number"),
     ("grad_clip", -1.0, r"grad_clip must be positive or None \(got -1.0\)"), ("grad_clip", 0.0, "grad_clip"),
     ("weight_decay", -0.5, "weight_decay must be non-negative"), ("patience", 0, "patience must be at least 1"),
     ("step_size", 0, "step_size must be at least 1"), ("drop_last", "no", "drop_last must be true or false"),
     ("epochs", "1e2", r"epochs must be an integer \(got '1e2'; write a plain integer"),
     ("lr", "1.0e2", r"write 1.0e-3 or 1.0e\+2"),
     ("gamma", -1.0, r"gamma must be a positive number \(got -1.0\)"), ("gamma", float("nan"), "gamma"),
     ("momentum", 1.0, r"momentum must be in \[0, 1\)"), ("momentum", float("nan"), "momentum"),
     ("device", None, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
     ("seed", 2**32, r"seed must be an integer in \[0, 2\*\*32\)"), ("seed", -1, "seed must be an integer in")],
)
def test_config_validation(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_config_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\n  lr: 0.001\n  extra: {warmup: 3}\n")
    config = TrainConfig.from_yaml(path)
    assert config.epochs == 7 and config.lr == 0.001 and config.extra == {"warmup": 3}
    # a typo is named, never dropped: in the section, as a section, or given twice
    for text, message in [("train:\n  epoch: 5\n", r"c.yaml: .*unknown setting 'epoch' \(did you mean 'epochs'\?\)"),
                          ("trian:\n  epochs: 5\n", r"unknown setting 'trian'"),
                          ("train:\n  lr: 0.1\n  lr: 0.2\n", r"c.yaml.*lr"),
                          ("train:\n  extra: 3\n", r"extra must be a mapping")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_yaml(path)
    with pytest.raises(ValueError, match=r"unknown setting 'learning_rate'; it takes batch_size"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_view_seeds_are_distinct_per_rank_and_step() -> None:
    from gcl.train.loop import _view_seed

    seeds = {(rank, step): _view_seed(3, rank, step) for rank in range(4) for step in range(50)}
    assert len(set(seeds.values())) == len(seeds)  # no two (rank, step) share a stream
    assert all(0 <= seed < 2**63 for seed in seeds.values())
    assert _view_seed(3, 1, 7) == seeds[(1, 7)] and _view_seed(4, 1, 7) != seeds[(1, 7)]
    assert _view_seed(-5, 0, 0) >= 0  # negative run seeds are fine


def test_warmup_then_cosine_schedule() -> None:
    config = TrainConfig(epochs=6, lr=0.1, scheduler="cosine", warmup_epochs=2)
    optimizer = config.make_optimizer([nn.Parameter(torch.zeros(1))])
    scheduler = config.make_scheduler(optimizer)
    assert scheduler is not None
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    # 0, 0.5, then a cosine from 1 to 0 over the remaining four epochs (x lr)
    expected = [0.0, 0.05, 0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 + math.cos(3 * math.pi / 4)) / 2]
    assert rates == pytest.approx(expected)
    for bad, message in (({"warmup_epochs": 6}, "warmup_epochs must be"), ({"warmup_epochs": 2, "scheduler": None},
                                                                           "goes with scheduler='cosine'")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**{"epochs": 6, "scheduler": "cosine", **bad})


def test_resume_with_a_warmup_schedule_matches_uninterrupted(mutag: Any, tmp_path: Path) -> None:
    config = _config(checkpoint_every=2, scheduler="cosine", warmup_epochs=1)
    reference = fit(_graphcl(mutag), mutag, config).method
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl(mutag), 7), config, out_dir=tmp_path).fit(mutag)
    resumed = Trainer(CrashAt(_graphcl(mutag), 10_000), config, out_dir=tmp_path).fit(mutag).method
    _assert_same_state(reference, resumed.method, atol=1e-6)


def test_run_refuses_an_empty_dataset_and_flat_features(mutag: Any) -> None:
    from torch_geometric.data import Data

    with pytest.raises(ValueError, match="the dataset is empty"):
        run("graphcl", mutag[:0], epochs=1, progress=False)
    flat = Data(x=torch.randn(5), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match=r"\[num_nodes, num_features\] matrix \(got shape \(5,\)\)"):
        run("grace", flat, epochs=1, progress=False)


def test_fit_refuses_a_dataset_that_yields_lists_of_views(mutag: Any) -> None:
    import copy

    from gcl.augment import DropNodes, MultiView

    dataset = copy.copy(mutag)
    dataset.transform = MultiView([DropNodes(0.2), DropNodes(0.2)])  # usable in pipelines of one's own
    method = build_method("graphcl", mutag, hidden_channels=16, num_layers=2)
    with pytest.raises(ValueError, match="transform is a MultiView"):
        fit(method, dataset, TrainConfig(epochs=1, progress=False))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_an_unreadable_checkpoint_is_named_with_the_way_out(mutag: Any, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(content)
    method = build_method("graphcl", mutag, hidden_channels=16, num_layers=2)
    with pytest.raises(ValueError, match=r"checkpoint.pt cannot be read .* not a complete checkpoint: start over "
                                         r"with resume=False \(gcl train --restart\)"):
        fit(method, mutag, TrainConfig(epochs=1, progress=False), out_dir=tmp_path)
    result = Trainer(method, TrainConfig(epochs=1, progress=False), out_dir=tmp_path).fit(mutag, resume=False)
    assert len(result.history) == 1


@pytest.mark.parametrize("content", [b"garbage\n", "dict", "tensor"])
def test_a_file_that_is_not_a_checkpoint_is_named_with_the_way_out(mutag: Any, tmp_path: Path,
                                                                     content: Any) -> None:
    path = tmp_path / "checkpoint.pt"
    if content == "dict":
        torch.save({"weight": torch.zeros(3)}, path)  # another program's file
    elif content == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        path.write_bytes(content)  # text: torch's legacy reader raises ValueError
    method = build_method("graphcl", mutag, hidden_channels=16, num_layers=2)
    with pytest.raises(ValueError, match=r"checkpoint.pt (cannot be read|is not a gcl checkpoint).*start over "
                                         r"with resume=False \(gcl train --restart\)"):
        fit(method, mutag, TrainConfig(epochs=1, progress=False), out_dir=tmp_path)


def test_resuming_a_checkpoint_past_the_asked_epochs_is_refused(mutag: Any, tmp_path: Path) -> None:
    # 5 steps per epoch: the checkpoint at step 6 holds one step of epoch 2
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl(mutag), 8), _config(checkpoint_every=2), out_dir=tmp_path).fit(mutag)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 1)
    with pytest.raises(ValueError, match=r"1 steps into epoch 2, past epochs=1: train at least 2 epochs"):
        Trainer(CrashAt(_graphcl(mutag), 10_000), _config(epochs=1, checkpoint_every=2),
                out_dir=tmp_path).fit(mutag)
    resumed = Trainer(CrashAt(_graphcl(mutag), 10_000), _config(epochs=2, checkpoint_every=2),
                      out_dir=tmp_path).fit(mutag)
    assert len(resumed.history) == 2


def test_an_epoch_without_batches_is_an_error(mutag: Any) -> None:
    from torch_geometric.loader import DataLoader

    batches = list(DataLoader(mutag[:64], batch_size=32))
    with pytest.raises(ValueError, match=r"epoch 2 has no batches: .* an iterator that an earlier epoch used up"):
        fit(_graphcl(mutag), iter(batches), _config(epochs=2))
    with pytest.raises(ValueError, match="epoch 1 has no batches"):
        fit(_graphcl(mutag), [], _config(epochs=1))
    assert len(fit(_graphcl(mutag), batches, _config(epochs=2)).history) == 2  # a list is iterated again


def test_a_run_key_tells_partials_apart(mutag: Any, tmp_path: Path) -> None:
    import functools

    from gcl.train.loop import _described

    def scale(data: Any, factor: float) -> Any:
        return data

    def shift(data: Any, factor: float) -> Any:
        return data

    assert _described(functools.partial(scale, factor=0.1)) == _described(functools.partial(scale, factor=0.1))
    assert _described(functools.partial(scale, factor=0.1)) != _described(functools.partial(scale, factor=5.0))
    assert _described(functools.partial(scale, factor=0.1)) != _described(functools.partial(shift, factor=0.1))
    assert " at 0x" not in _described([scale, object()])
    fit(_graphcl(mutag), mutag, _config(epochs=1), out_dir=tmp_path,
        run_key={"transform": functools.partial(scale, factor=0.1)})
    with pytest.raises(ValueError, match=r"another run \(transform 'functools.partial\(.*scale, factor=0.1\)' -> "
                                         r"'functools.partial\(.*shift, factor=0.1\)'\)"):
        fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path,
            run_key={"transform": functools.partial(shift, factor=0.1)})


def test_a_second_fit_does_not_restore_the_first_fits_best_state(mutag: Any) -> None:
    scores = iter([0.9, float("nan")])
    seen: list[dict[str, Tensor]] = []

    def validate(method: nn.Module) -> float:
        seen.append(_state(method))
        return next(scores)

    trainer = Trainer(_graphcl(mutag), _config(epochs=1), validate=validate)
    trainer.fit(mutag)
    second = trainer.fit(mutag)  # no better score: the run's own last weights
    assert second.best_val is None
    for key, value in _state(second.method).items():
        assert torch.equal(value, seen[1][key]), key


def test_a_failed_checkpoint_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcl.train.loop import _atomic_save

    def full_disk(obj: Any, path: Any) -> None:
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _atomic_save({"a": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


def test_shuffle_once_keeps_the_batches_of_every_epoch(tmp_path: Path) -> None:
    from gcl.data import attach_index, load_dataset

    data = attach_index(load_dataset("MUTAG"))
    once = Recorder()
    fit(once, data, _config(epochs=3, shuffle="once", drop_last=False))
    epochs = [once.seen[i:i + 6] for i in range(0, 18, 6)]  # 188 graphs, batches of 32: 6 per epoch
    assert epochs[0] == epochs[1] == epochs[2]
    assert sorted(i for batch in epochs[0] for i in batch) == list(range(188))  # every graph, one order
    assert epochs[0][0] != list(range(32))  # shuffled, once
    again = Recorder()
    fit(again, data, _config(epochs=1, shuffle="once", drop_last=False))
    assert again.seen == epochs[0]  # the order comes from the seed
    reshuffled = Recorder()
    fit(reshuffled, data, _config(epochs=2, drop_last=False))
    assert reshuffled.seen[:6] != reshuffled.seen[6:]
    # a resumed run draws the same order
    with pytest.raises(Crash):
        Trainer(CrashAt(Recorder(), 9), _config(epochs=3, shuffle="once", drop_last=False, checkpoint_every=2),
                out_dir=tmp_path).fit(data)
    resumed = CrashAt(Recorder(), 10_000)
    Trainer(resumed, _config(epochs=3, shuffle="once", drop_last=False, checkpoint_every=2),
            out_dir=tmp_path).fit(data)
    assert resumed.method.seen == once.seen[8:]
    with pytest.raises(ValueError, match="shuffle must be 'epoch' or 'once'"):
        TrainConfig(shuffle="never")


def test_a_checkpoint_from_before_a_setting_existed_resumes_only_with_its_default(mutag: Any, tmp_path: Path) -> None:
    fit(_graphcl(mutag), mutag, _config(epochs=1), out_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del state["config"]["shuffle"]  # written before TrainConfig had it
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"other settings \(shuffle 'epoch' -> 'once'\)"):
        fit(_graphcl(mutag), mutag, _config(epochs=2, shuffle="once"), out_dir=tmp_path)
    assert len(fit(_graphcl(mutag), mutag, _config(epochs=2), out_dir=tmp_path).history) == 2


def test_checkpoints_of_a_cpu_run_leave_cuda_uninitialised(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a machine with GPUs, reading CUDA's random state would create a context on every GPU
    from gcl.train import loop

    def initialises(*args: Any) -> None:
        raise AssertionError("read CUDA's random state in a process that never used CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", initialises)
    assert set(loop._rng_state()) == {"torch", "generators"}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.zeros(1, dtype=torch.uint8)])
    assert set(loop._rng_state()) == {"torch", "cuda", "generators"}


def _graphcl_with_own_generators(dataset: Any, count: int = 3) -> nn.Module:
    r"""GraphCL whose augmentations draw from generators of their own, one of them nested deep
    in a pool (a Compose of a RandomChoice)."""
    import gcl.augment as A
    from gcl.methods import GraphCL
    from gcl.nn import GIN, ProjectionHead

    seed_everything(3)
    own = [torch.Generator().manual_seed(seed) for seed in (1, 2, 3)]
    first = A.DropNodes(0.2, generator=own[0])
    second: Any = A.MaskFeatures(0.2, generator=own[1])
    if count == 3:
        second = A.Compose([A.RandomChoice([second, A.DropNodes(0.2)], generator=own[2])])
    return GraphCL(GIN(dataset.num_features, 32, 3), first, second, ProjectionHead(96, 96, 96))


# 5 steps per epoch: a kill at step 7 resumes from the checkpoint of step 6 (mid epoch 2, whose first step
# is replayed after the skip), one at step 6 from the end of epoch 1
@pytest.mark.parametrize(("crash_at", "every"), [(7, 2), (6, 0)], ids=["mid-epoch", "epoch-end"])
def test_resume_restores_the_generators_of_the_augmentations(crash_at: int, every: int, mutag: Any,
                                                             tmp_path: Path) -> None:
    config = _config(checkpoint_every=every)
    uninterrupted = fit(_graphcl_with_own_generators(mutag), mutag, config)
    with pytest.raises(Crash):
        Trainer(CrashAt(_graphcl_with_own_generators(mutag), crash_at), config, out_dir=tmp_path).fit(mutag)
    result = Trainer(CrashAt(_graphcl_with_own_generators(mutag), 10_000), config, out_dir=tmp_path).fit(mutag)
    _assert_same_state(uninterrupted.method, result.method.method)  # bit for bit
    assert [r["loss"] for r in result.history] == [r["loss"] for r in uninterrupted.history]
    assert len(torch.load(tmp_path / "checkpoint.pt", weights_only=False)["rng"]["generators"]) == 3


def test_a_checkpoint_without_generator_states_resumes(mutag: Any, tmp_path: Path) -> None:
    fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=1), out_dir=tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["rng"].pop("generators", None)  # as written before the generators' states were kept
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=2), out_dir=tmp_path)
    assert len(resumed.history) == 2


def test_resume_refuses_a_method_with_other_generators(mutag: Any, tmp_path: Path) -> None:
    fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"states of 3 torch.Generator object\(s\) .* this GraphCL holds 2"):
        fit(_graphcl_with_own_generators(mutag, count=2), mutag, _config(epochs=2), out_dir=tmp_path)
    # a state of another device's generator (a CUDA generator's is 16 bytes) is left out, with a warning
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["rng"]["generators"][1] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match=r"another kind \(another device's\) for torch.Generator 2 of the method's 3"):
        assert len(fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=2), out_dir=tmp_path).history) == 2


def test_view_workers_reseed_generators_nested_deep_in_a_pool(mutag: Any) -> None:
    # the third generator sits six attributes down (GraphCL, its augmentation, Compose, its list,
    # RandomChoice ...): every worker reseeds it per step, so the run does not depend on their number
    one = fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=2, view_workers=1))
    two = fit(_graphcl_with_own_generators(mutag), mutag, _config(epochs=2, view_workers=2))
    assert [r["loss"] for r in one.history] == [r["loss"] for r in two.history]
    _assert_same_state(one.method, two.method)
