from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gcl.cli import main


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("datasets", "train", "bench", "reproduce"):
        assert command in out


def test_datasets_lists_the_shipped_sets(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCL_DATA", raising=False)
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("MUTAG", "PTC_MR", "PROTEINS", "IMDB-BINARY", "ogbg-molbace", "Cora"):
        assert name in out
    assert "PROTEINS.tar.xz" in out


def test_output_read_in_part_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    # `gcl datasets | head -1`: the reader goes away before the output is written
    process = subprocess.Popen([sys.executable, "-m", "gcl.cli", "datasets", "--all"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and error == ""  # as a process ended by SIGPIPE, silently
    # a broken pipe of the program's own (not its output's) is an error, named
    import gcl.data

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(gcl.data, "search_roots", broken)
    assert main(["datasets"]) == 2


def test_train_graphcl_prints_svc_accuracy_and_writes_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the README's main job, shortened: pre-train GraphCL on MUTAG, then the 10-fold SVC protocol
    code = main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "2", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "10-fold SVC accuracy:" in out
    report = json.loads((tmp_path / "result.json").read_text())
    assert len(report["history"]) == 2
    assert len(report["evaluation"]["fold_scores"]) == 10
    assert 0.5 < report["evaluation"]["mean"] <= 1.0
    assert (tmp_path / "checkpoint.pt").exists()


def test_train_probes_only_the_labelled_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # embed_dataset marks an item without a label -1: the linear probe's splits leave those out
    import gcl.methods
    from gcl.eval import LinearProbe

    embed = gcl.methods.embed_dataset

    def half_unlabelled(method: Any, data: Any) -> Any:
        features, labels = embed(method, data)
        labels = labels.copy()
        labels[::2] = -1
        return features, labels

    seen: list[Any] = []
    evaluate = LinearProbe.evaluate

    def recording(self: Any, features: Any, labels: Any, splits: Any) -> Any:
        seen.append((labels, splits))
        return evaluate(self, features, labels, splits)

    monkeypatch.setattr(gcl.methods, "embed_dataset", half_unlabelled)
    monkeypatch.setattr(LinearProbe, "evaluate", recording)
    assert main(["train", "grace", "--dataset", "Cora", "--epochs", "1", "--quiet", "--out", str(tmp_path)]) == 0
    (labels, splits), = seen
    assert len(splits) == 20
    for split in splits:
        assert [len(part) for part in split] == [135, 135, 1084]  # 10/10/80 % of the 1,354 labelled nodes
        assert all((labels[part.numpy()] >= 0).all() for part in split)


def test_train_on_the_shipped_ogb_molecules_takes_what_they_need(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # integer atom features: OGB's atom and bond embeddings, and GraphCL views without attribute masking
    run = ["--dataset", "ogbg-molbace", "--epochs", "1", "--quiet", "--eval", "none"]
    for method in ("graphcl", "adaptive-bt", "supervised"):
        assert main(["train", method, *run, "--out", str(tmp_path / method)]) == 0, method
    # what the config says stays: views with masking are refused, naming the way out
    config = tmp_path / "masking.yaml"
    config.write_text("method: {augmentations: [random4, random4]}\n")
    capsys.readouterr()
    assert main(["train", "graphcl", *run, "--config", str(config)]) == 2
    assert "include attribute masking" in capsys.readouterr().err
    config.write_text("method: {encoder: hgpsl}\n")  # another encoder: nothing added, its own error
    assert main(["train", "supervised", *run, "--config", str(config)]) == 2
    assert "node features must be floating point" in capsys.readouterr().err


def test_train_on_a_memory_mapped_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "graphcl", "--dataset", "MUTAG", "--epochs", "1", "--quiet", "--eval", "none"]
    assert main([*args, "--out", str(tmp_path / "memory")]) == 0
    assert main([*args, "--mmap", "--out", str(tmp_path / "mapped")]) == 0
    histories = [json.loads((tmp_path / run / "result.json").read_text())["history"] for run in ("memory", "mapped")]
    assert histories[0][0]["loss"] == histories[1][0]["loss"]


def test_malformed_config_files_exit_2_naming_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unclosed = tmp_path / "unclosed.yaml"
    unclosed.write_text("train:\n  epochs: 1\ndataset: {mmap: true\n")
    assert main(["train", "graphcl", "--config", str(unclosed), "--quiet"]) == 2
    assert f"{unclosed}:4:1: not valid YAML" in capsys.readouterr().err
    listed = tmp_path / "listed.yaml"
    listed.write_text("train: [1, 2]\n")
    assert main(["train", "graphcl", "--config", str(listed), "--quiet"]) == 2
    assert "the 'train' section must be a mapping (got list)" in capsys.readouterr().err
    assert main(["bench", str(unclosed), "--report-only", "--store", str(tmp_path / "r.sqlite")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    twice = tmp_path / "twice.yaml"  # PyYAML would keep the second section and drop the first silently
    twice.write_text("train: {epochs: 2}\nmethod: {temperature: 0.3}\ntrain: {epochs: 5}\n")
    assert main(["train", "graphcl", "--config", str(twice), "--quiet"]) == 2
    assert f"{twice}:3:1: not valid YAML (found duplicate key 'train')" in capsys.readouterr().err
    twice.write_text("method: {temperature: 0.3, temperature: 0.4}\n")
    assert main(["train", "graphcl", "--config", str(twice), "--quiet"]) == 2
    assert "found duplicate key 'temperature'" in capsys.readouterr().err


def test_train_bad_input_exits_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "graphcl", "--dataset", "MUTAGG", "--quiet"]) == 2
    assert "Did you mean 'MUTAG'" in capsys.readouterr().err
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "0", "--quiet"]) == 2
    assert "epochs must be at least 1 (got 0)" in capsys.readouterr().err


def test_train_config_typos_exit_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("train: {epoch: 1}\n")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
    assert "unknown train setting 'epoch' (did you mean 'epochs'?)" in capsys.readouterr().err
    config.write_text("dataset: {node_feature: constant}\n")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
    assert "unknown dataset setting 'node_feature' (did you mean 'node_features'?)" in capsys.readouterr().err
    config.write_text("method: {hidden_chanels: 8}\n")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "graphcl does not take ['hidden_chanels'] ('hidden_chanels': did you mean 'hidden_channels'?)" in err
    assert "graph(s)" not in out  # refused before the dataset loads
    for option, expected in (('hidden_channels: "32"', "hidden_channels must be an integer (got '32')"),
                             ("joint_views: 'false'", "joint_views must be true or false (got 'false')"),
                             ('micro_batch_size: "16"', "micro_batch_size must be an integer (or null) (got '16')")):
        config.write_text(f"method: {{{option}}}\n")  # quoted in YAML: a string, also refused before loading
        assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
        out, err = capsys.readouterr()
        assert expected in err and "graph(s)" not in out
    config.write_text("trian: {epochs: 1}\n")  # a misspelt section, not dropped
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
    assert "unknown section 'trian' (did you mean 'train'?)" in capsys.readouterr().err
    config.write_text("dataset: {transform: normalize}\n")  # Python code, not a setting
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet"]) == 2
    assert "unknown dataset setting 'transform'" in capsys.readouterr().err


def test_train_refuses_to_resume_with_other_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--quiet", "--eval", "none", "--out", str(tmp_path)]
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "1", *out]) == 0
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "2", "--lr", "0.5", *out]) == 2
    assert "other settings (lr 0.01 -> 0.5)" in capsys.readouterr().err
    assert main(["train", "graphcl", "--dataset", "PTC_MR", "--epochs", "2", *out]) == 2
    assert "another run (dataset 'mutag' -> 'ptc_mr')" in capsys.readouterr().err
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "2", *out]) == 0  # a longer run resumes
    assert len(json.loads((tmp_path / "result.json").read_text())["history"]) == 2
    # --restart starts over in the same folder, with other settings
    assert main(["train", "graphcl", "--dataset", "PTC_MR", "--epochs", "1", "--restart", *out]) == 0
    assert len(json.loads((tmp_path / "result.json").read_text())["history"]) == 1
    assert main(["train", "graphcl", "--dataset", "PTC_MR", "--epochs", "2", *out]) == 0  # resumes the new run


def test_train_refuses_to_resume_another_method_or_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--dataset", "MUTAG", "--quiet", "--eval", "none", "--out", str(tmp_path)]
    config = tmp_path / "run.yaml"
    config.write_text("method: {temperature: 0.3}\n")
    assert main(["train", "graphcl", "--epochs", "1", "--config", str(config), *out]) == 0
    config.write_text("method: {temperature: 0.5}\n")
    assert main(["train", "graphcl", "--epochs", "2", "--config", str(config), *out]) == 2
    assert "another run (method_options {'temperature': 0.3} -> {'temperature': 0.5})" in capsys.readouterr().err
    config.write_text("dataset: {node_features: constant}\nmethod: {temperature: 0.3}\n")
    assert main(["train", "graphcl", "--epochs", "2", "--config", str(config), *out]) == 2
    assert "dataset_options {} -> {'node_features': 'constant'}" in capsys.readouterr().err


def test_train_restart_interrupted_before_its_first_checkpoint_leaves_nothing_to_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from gcl.train.loop import Trainer

    out = ["--dataset", "MUTAG", "--quiet", "--eval", "none", "--out", str(tmp_path)]
    assert main(["train", "graphcl", "--epochs", "1", *out]) == 0
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "result.json").exists()

    def interrupted(*args: object, **kwargs: object) -> float:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_step", interrupted)
    assert main(["train", "graphcl", "--epochs", "1", "--lr", "0.5", "--restart", *out]) == 130
    # the same command again would start over once more: the hint drops --restart
    assert "gcl train: interrupted; run the same command without --restart to resume" in capsys.readouterr().err
    assert main(["train", "graphcl", "--epochs", "1", "--lr", "0.5", *out]) == 130
    assert "gcl train: interrupted; run the same command again to resume" in capsys.readouterr().err
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--quiet", "--epochs", "1"]) == 130  # no --out
    assert "gcl train: interrupted; nothing was kept (without --out" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "result.json").exists()


@pytest.mark.parametrize("exit_code, signal_name, code, message", [
    (130, None, 130, "gcl train: interrupted (process 1); run the same command again to resume"),
    (-9, "SIGKILL", 1, "gcl train: error: training process 1 ended by SIGKILL (killed, e.g. by the out-of-memory "
                       "killer?); the others were ended too; run the same command again to resume"),
])
def test_a_training_process_of_nproc_that_ends_is_named_without_a_traceback(
        exit_code: int, signal_name: str | None, code: int, message: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from torch.multiprocessing import ProcessExitedException

    from gcl.train import cli as train_cli

    def ended(args: object) -> int:  # what launch() raises when a rank was interrupted or killed
        raise ProcessExitedException("process 1 terminated", error_index=1, error_pid=4242, exit_code=exit_code,
                                     signal_name=signal_name)

    monkeypatch.setattr(train_cli, "cmd_train", ended)  # bound when main builds its parser
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--out", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert err.strip() == message and "Traceback" not in err


def test_train_names_bad_paths_devices_and_settings_before_training(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    run = ["train", "graphcl", "--dataset", "MUTAG", "--quiet", "--eval", "none"]
    taken = tmp_path / "taken"
    taken.write_text("")
    assert main([*run, "--out", str(taken)]) == 2
    assert f"--out {taken} is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # an unset "$RUN_DIR" would write into this folder
        main([*run, "--out", ""])
    assert exit_info.value.code == 2 and "argument --out: empty path" in capsys.readouterr().err
    assert main([*run, "--config", str(tmp_path)]) == 2
    assert f"--config {tmp_path}: is a folder, not YAML file" in capsys.readouterr().err
    assert main([*run, "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such YAML file" in capsys.readouterr().err
    read, write = os.pipe()  # a config given as a pipe (--config <(...)) is read as a file
    os.write(write, b"train: {epochs: 1}\n")
    os.close(write)
    try:
        assert main([*run, "--config", f"/dev/fd/{read}"]) == 0
    finally:
        os.close(read)
    assert main([*run, "--device", "gpu"]) == 2
    assert "unknown device 'gpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*run, "--device", "cuda"]) == 2
        assert "device 'cuda': CUDA is not available" in capsys.readouterr().err
    assert main([*run, "--device", "meta"]) == 2  # a device torch knows, but not one to train on
    assert "device 'meta': this torch build or machine has no meta device" in capsys.readouterr().err
    if not torch.backends.mps.is_available():
        assert main([*run, "--device", "mps"]) == 2
        assert "device 'mps': this torch build or machine has no mps device" in capsys.readouterr().err
    config = tmp_path / "run.yaml"
    config.write_text("train: {patience: 5}\n")
    assert main([*run, "--config", str(config)]) == 2
    assert "'patience' (early stopping) needs validation scores" in capsys.readouterr().err
    for flags, message in ((["--nproc", "0"], "--nproc must be at least 1 (got 0)"),
                           (["--threads", "0"], "--threads must be at least 1 (got 0)")):
        assert main([*run, *flags]) == 2
        assert message in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*run, "--backend", "nccl", "--nproc", "2", "--device", "cpu"]) == 2
        assert "--backend nccl runs on CUDA devices (the device is cpu)" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/checkpoint.pt"))


def test_train_takes_empty_config_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("method:\ntrain:\n  epochs: 1\ndataset:\n")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--config", str(config), "--quiet", "--eval", "none"]) == 0
    assert "trained 1 epochs" in capsys.readouterr().out


def test_train_under_torchrun_refuses_nproc(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--quiet", "--nproc", "2"]) == 2
    assert "--nproc starts its own processes; under torchrun leave it out" in capsys.readouterr().err


def test_train_with_view_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "graphcl", "--dataset", "MUTAG", "--epochs", "1", "--view-workers", "1", "--eval", "none",
                 "--quiet", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "result.json").read_text())
    assert len(report["history"]) == 1
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--view-workers", "-1", "--quiet"]) == 2
    assert "view_workers must be a non-negative integer (got -1)" in capsys.readouterr().err
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--view-workers", "1", "--view-timeout", "0",
                 "--quiet"]) == 2
    assert "view_timeout must be a positive number of seconds or None (got 0.0)" in capsys.readouterr().err


def test_node_level_methods_load_row_normalised_features_by_default() -> None:
    import argparse

    from gcl.train.cli import _dataset_options

    def options(method: str, content: dict) -> dict:  # type: ignore[type-arg]
        return _dataset_options(argparse.Namespace(method=method, mmap=False), content)

    assert options("grace", {}) == {"normalize_features": True}
    assert options("gbt", {"dataset": {"normalize_features": False}}) == {"normalize_features": False}
    assert options("graphcl", {"dataset": {"node_features": "constant"}}) == {"node_features": "constant"}


def test_train_resumes_with_dataset_options_written_out_at_their_defaults(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--dataset", "PTC_MR", "--quiet", "--eval", "none", "--out", str(tmp_path / "run")]
    assert main(["train", "graphcl", "--epochs", "1", *out]) == 0
    config = tmp_path / "run.yaml"
    config.write_text("dataset: {node_features: auto, max_degree: null, use_node_attr: false, "
                      "normalize_features: false}\n")
    assert main(["train", "graphcl", "--epochs", "2", "--config", str(config), *out]) == 0  # the same run
    assert len(json.loads((tmp_path / "run" / "result.json").read_text())["history"]) == 2
    config.write_text("dataset: {node_features: auto, use_node_attr: true}\n")  # another one
    assert main(["train", "graphcl", "--epochs", "3", "--config", str(config), *out]) == 2
    assert "another run (dataset_options {} -> {'use_node_attr': True})" in capsys.readouterr().err


def test_train_starts_node_level_methods_from_their_papers_settings() -> None:
    from gcl.bench.config import find_config, load_config
    from gcl.cli import build_parser
    from gcl.train.cli import METHOD_DEFAULTS, _settings

    # the node table's Cora settings are the papers' (GRACE, GCA, Graph Barlow Twins): the same here
    table = load_config(find_config("node-gca"))
    for label in ("grace", "gca", "gbt", "adaptive-gbt"):
        assert METHOD_DEFAULTS[label] == table.method(label).train, label
    _, config = _settings(build_parser().parse_args(["train", "gbt", "--dataset", "Cora"]))
    assert (config.epochs, config.lr, config.weight_decay, config.optimizer) == (300, 0.0005, 0.00001, "adamw")
    _, config = _settings(build_parser().parse_args(["train", "grace", "--dataset", "Cora", "--epochs", "3"]))
    assert (config.epochs, config.lr) == (3, 0.0005)  # a flag still wins


def test_train_refuses_one_numbered_gpu_for_several_processes(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with two GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    run = ["train", "graphcl", "--dataset", "MUTAG", "--quiet", "--nproc", "2", "--device", "cuda:1"]
    assert main(run) == 2
    assert "--device cuda:1 puts all 2 processes on one GPU" in capsys.readouterr().err


def test_train_reads_a_config_from_a_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `--config <(...)` or `--config /dev/stdin`: a pipe is read once, so its settings must come from that read
    read, write = os.pipe()
    os.write(write, b"train: {epochs: 2, batch_size: 32}\nmethod: {hidden_channels: 8}\n")
    os.close(write)
    try:
        code = main(["train", "graphcl", "--dataset", "MUTAG", "--config", f"/dev/fd/{read}", "--eval", "none",
                     "--quiet", "--out", str(tmp_path)])
    finally:
        os.close(read)
    assert code == 0
    assert "2 epochs, batch 32" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "result.json").read_text())["history"]) == 2


@pytest.mark.parametrize("mode", ["svc", "linear"])
def test_supervised_methods_refuse_evaluating_embeddings_of_graphs_they_learnt(
        mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the encoder saw every graph's label: scores on folds of the same graphs would be leaked
    assert main(["train", "supervised", "--dataset", "MUTAG", "--epochs", "1", "--eval", mode, "--quiet",
                 "--out", str(tmp_path)]) == 2
    assert "gcl reproduce lcgnn-tu" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()  # refused before training


def test_seeds_that_torch_would_fold_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # torch's CPU generator keeps the low 32 bits: seed 2**32 would repeat seed 0's run
    assert main(["train", "graphcl", "--dataset", "MUTAG", "--seed", str(2**32), "--quiet"]) == 2
    assert "seed must be an integer in [0, 2**32)" in capsys.readouterr().err


def test_train_scores_ogb_data_on_its_official_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # OGB prescribes its evaluator's metric on the scaffold split, not accuracy on random folds
    config = tmp_path / "ogb.yaml"
    config.write_text("method: {ogb_mol: true, augmentations: [drop_nodes, subgraph]}\n")
    assert main(["train", "graphcl", "--dataset", "ogbg-molbace", "--epochs", "1", "--config", str(config),
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert "official-split test rocauc of a linear probe" in capsys.readouterr().out
    evaluation = json.loads((tmp_path / "run" / "result.json").read_text())["evaluation"]
    assert evaluation["metric"] == "rocauc" and len(evaluation["fold_scores"]) == 1
    assert "official split" in evaluation["protocol"]


def test_an_interrupted_run_on_a_store_in_memory_kept_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from gcl.cli import _resume_hint

    args = argparse.Namespace(command="reproduce", store=None)
    monkeypatch.setenv("GCL_RESULTS", ":memory:")  # the store the command used, without --store
    assert _resume_hint(args) == "nothing was kept (the results store was in memory)"
    monkeypatch.setenv("GCL_RESULTS", "/tmp/results.sqlite")
    assert _resume_hint(args) == "run the same command again to resume"
    assert _resume_hint(argparse.Namespace(command="bench", store=":memory:")).startswith("nothing was kept")
