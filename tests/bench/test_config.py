from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gcl.bench.config import find_config, load_config, parse_config
from gcl.bench.papers import load_paper_results

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "benchmarks" / "configs").glob("*.yaml"))


def _content(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "table": "t", "protocol": "svc",
        "methods": {"graphcl": {"options": {"temperature": 0.2}, "train": {"epochs": 20}}},
        "datasets": {"MUTAG": {}, "IMDB-B": {"name": "IMDB-BINARY", "dataset": {"node_features": "constant"},
                                             "methods": {"graphcl": {"train": {"epochs": 5}}}}},
        "quick": {"datasets": ["MUTAG"], "train": {"epochs": 1}, "evaluation": {"n_splits": 2}},
    }
    base.update(over)
    return base


def test_parse_and_settings() -> None:
    config = parse_config(_content())
    imdb = config.dataset_entry("imdb-binary")
    assert imdb.label == "IMDB-B"
    settings = config.settings(imdb, config.method("graphcl"))
    assert settings["train"]["epochs"] == 5
    assert settings["dataset"] == {"name": "IMDB-BINARY", "node_features": "constant"}
    assert config.settings(config.dataset_entry("MUTAG"), config.method("graphcl"))["train"]["epochs"] == 20


def test_variant_tracks_settings() -> None:
    a = parse_config(_content())
    b = parse_config(_content(methods={"graphcl": {"options": {"temperature": 0.5}, "train": {"epochs": 20}}}))
    entry = a.dataset_entry("MUTAG")
    assert a.variant(entry, a.method("graphcl")) == parse_config(_content()).variant(entry, a.method("graphcl"))
    assert a.variant(entry, a.method("graphcl")) != b.variant(b.dataset_entry("MUTAG"), b.method("graphcl"))
    # How the data is held (memory-mapped or not) changes no score.
    mapped = parse_config(_content(datasets={"MUTAG": {"dataset": {"mmap": True}}}))
    assert mapped.variant(mapped.dataset_entry("MUTAG"), mapped.method("graphcl")) == \
        a.variant(entry, a.method("graphcl"))
    # Nor do the training settings that only keep books (the seed is each task's own).
    for bookkeeping in ({"progress": False}, {"checkpoint_every": 5}, {"seed": 3}, {"view_timeout": 60.0}):
        kept = parse_config(_content(methods={"graphcl": {"options": {"temperature": 0.2},
                                                          "train": {"epochs": 20, **bookkeeping}}}))
        assert kept.variant(entry, kept.method("graphcl")) == a.variant(entry, a.method("graphcl")), bookkeeping
    # More seeds add work but do not change the settings of a score.
    assert a.variant(entry, a.method("graphcl")) == parse_config(_content(seeds=9)).variant(
        entry, a.method("graphcl"))


def test_valid_tables_are_not_refused() -> None:
    # a warm-up shorter than the default 20 epochs; quick methods without a dataset's override target
    parse_config(_content(methods={"graphcl": {"train": {"scheduler": "cosine", "warmup_epochs": 3}}}))
    content = _content(methods={"graphcl": {}, "other": {"method": "graphcl"}},
                       datasets={"MUTAG": {"methods": {"other": {"train": {"epochs": 3}}}}},
                       quick={"methods": ["graphcl"], "evaluation": {"n_splits": 2}})
    assert [m.label for m in parse_config(content).reduced().methods] == ["graphcl"]


def test_quick_shortens_pre_training_too() -> None:
    config = parse_config(_content(methods={"finetune": {"method": "supervised", "train": {"epochs": 20},
                                                         "pretrain": {"method": "graphcl", "train": {"epochs": 5}}}},
                                   protocol="ogb", metric="rocauc", datasets=["ogbg-molbace"], quick={}))
    quick = config.reduced()
    assert quick.methods[0].pretrain["train"]["epochs"] == 1 and quick.methods[0].train["epochs"] == 1
    # the quick run's early stopping is the fine-tuning's; pre-training has no validation to stop on
    config = parse_config(_content(methods={"finetune": {"method": "supervised",
                                                         "pretrain": {"method": "graphcl"}}},
                                   protocol="ogb", metric="rocauc", datasets=["ogbg-molbace"],
                                   quick={"train": {"epochs": 1, "patience": 1}}))
    quick = config.reduced()
    assert quick.methods[0].train["patience"] == 1 and "patience" not in quick.methods[0].pretrain["train"]


def test_reduced_and_restricted() -> None:
    config = parse_config(_content())
    quick = config.reduced()
    assert [d.label for d in quick.datasets] == ["MUTAG"] and quick.seeds == 1
    assert quick.settings(quick.datasets[0], quick.methods[0])["train"]["epochs"] == 1
    assert quick.evaluation["n_splits"] == 2
    assert quick.variant(quick.datasets[0], quick.methods[0]) != config.variant(config.datasets[0],
                                                                                config.methods[0])
    only = config.restricted(["IMDB-B"], seeds=2)
    assert [d.label for d in only.datasets] == ["IMDB-B"] and only.seeds == 2
    two = parse_config(_content(methods={"graphcl": {}, "infograph": {"method": "graphcl"}}))
    one = two.restricted(None, methods=["infograph"])
    assert [m.label for m in one.methods] == ["infograph"]
    entry = two.dataset_entry("MUTAG")
    assert one.variant(entry, one.method("infograph")) == two.variant(entry, two.method("infograph"))
    with pytest.raises(ValueError, match="has no method 'grace'"):
        two.restricted(None, methods=["grace"])


def test_quick_stand_in_dataset() -> None:
    # a dataset the table does not hold: a stand-in for the quick run, with the table's settings
    config = parse_config(_content(quick={"datasets": ["proteins"], "train": {"epochs": 1}}))
    quick = config.reduced()
    assert [(d.label, d.name, d.train) for d in quick.datasets] == [("PROTEINS", "PROTEINS", {"epochs": 1})]
    settings = quick.settings(quick.datasets[0], quick.methods[0])
    assert settings["dataset"] == {"name": "PROTEINS"} and settings["train"]["epochs"] == 1
    assert settings["options"] == {"temperature": 0.2}
    assert [d.label for d in config.datasets] == ["MUTAG", "IMDB-B"]  # the full table is unchanged


_SMALL = {"name": "MUTAG", "train": {"epochs": 1}}


def test_a_label_wins_over_the_load_name_of_another_row() -> None:
    # MUTAG-small loads MUTAG too and comes first: --datasets MUTAG still means the row labelled MUTAG
    config = parse_config(_content(datasets={"MUTAG-small": _SMALL, "MUTAG": {}}, quick={"datasets": ["mutag"]}))
    assert config.dataset_entry("MUTAG").label == "MUTAG" and config.dataset_entry("mutag").label == "MUTAG"
    assert config.dataset_entry("mutag-SMALL").label == "MUTAG-small"
    assert [d.label for d in config.restricted(["MUTAG"]).datasets] == ["MUTAG"]
    quick = config.reduced()
    assert [d.label for d in quick.datasets] == ["MUTAG"] and quick.datasets[0].train == {"epochs": 1}
    # a load name only one row has still finds that row
    one = parse_config(_content(datasets={"MUTAG-small": _SMALL, "PTC": {"name": "PTC_MR"}},
                                quick={"datasets": ["MUTAG"]}))
    assert one.dataset_entry("mutag").label == "MUTAG-small"
    assert [d.label for d in one.reduced().datasets] == ["MUTAG-small"]


def test_a_load_name_of_several_rows_is_refused_naming_them() -> None:
    rows = {"MUTAG-small": _SMALL, "MUTAG-big": {"name": "MUTAG", "train": {"epochs": 50}}}
    config = parse_config(_content(datasets=rows, quick={"datasets": ["MUTAG-big"]}))
    match = (r"table 't': dataset 'mutag' could be any of the rows \['MUTAG-small', 'MUTAG-big'\], and none is "
             r"labelled 'mutag'; name one of them by its label")
    with pytest.raises(ValueError, match=match):
        config.dataset_entry("mutag")
    with pytest.raises(ValueError, match=match):
        config.restricted(["mutag"])
    # in quick.datasets too, when the file loads (not a stand-in without the rows' settings)
    with pytest.raises(ValueError, match="quick.datasets: " + match):
        parse_config(_content(datasets=rows, quick={"datasets": ["mutag"]}))


_SUPERVISED = {"protocol": "supervised-kfold", "methods": {"s": {"method": "supervised"}}, "datasets": ["MUTAG"]}


def test_quick_training_settings_hold_over_an_evaluation_grid() -> None:
    # a grid of epochs would otherwise train the quick run (quick.train: one epoch) for 3 and 4 epochs
    config = parse_config(_content(
        protocol="supervised-kfold", methods={"s": {"method": "supervised"}},
        evaluation={"n_splits": 2, "grid": {"epochs": [3, 4], "lr": [0.01, 0.001]}},
        datasets={"MUTAG": {}, "PTC_MR": {"evaluation": {"grid": {"epochs": [5, 6]}}}},
        quick={"datasets": ["MUTAG", "PTC_MR"], "train": {"epochs": 1}}))
    assert config.evaluation["grid"] == {"epochs": [3, 4], "lr": [0.01, 0.001]}  # the full table keeps its grid
    quick = config.reduced()
    mutag, ptc = (quick.settings(entry, quick.methods[0]) for entry in quick.datasets)
    assert mutag["evaluation"]["grid"] == {"lr": [0.01, 0.001]} and mutag["train"]["epochs"] == 1
    # a row's own grid of epochs only: nothing left to select, and not the table's grid either
    assert ptc["evaluation"]["grid"] == {} and ptc["train"]["epochs"] == 1
    # the default quick training (one epoch) holds too
    default = parse_config(_content(protocol="supervised-kfold", methods={"s": {"method": "supervised"}},
                                    evaluation={"n_splits": 2, "grid": {"epochs": [3, 4]}}, datasets=["MUTAG"],
                                    quick={}))
    assert "grid" not in default.reduced().evaluation


@pytest.mark.parametrize("bad, match", [
    ({"protocol": "nope"}, "protocol must be one of"),
    ({"aggregate": "median"}, "aggregate must be one of"),
    ({"seeds": 0}, r"table 't': seeds must be an integer of at least 1 \(got 0\)"),
    # a seed count is a whole number, as the evaluation counts are: never rounded or read from a bool
    ({"seeds": 2.7}, r"table 't': seeds must be an integer of at least 1 \(got 2.7\)"),
    ({"seeds": True}, r"seeds must be an integer of at least 1 \(got True\)"),
    ({"seeds": "x"}, r"seeds must be an integer of at least 1 \(got 'x'\)"),
    ({"quick": {"seeds": 1.5}}, r"table 't', quick: seeds must be an integer of at least 1 \(got 1.5\)"),
    ({"quick": {"seeds": False}}, r"quick: seeds must be an integer of at least 1 \(got False\)"),
    # the quick section is checked when the file loads: rows and methods of the table (or datasets gcl knows,
    # stand-ins), a seed count, a grid
    ({"quick": {"datasets": ["PROTEINZ"]}},
     r"quick.datasets: table 't' has no dataset 'PROTEINZ'; it has \['MUTAG', 'IMDB-B'\], and 'PROTEINZ' is no "
     r"dataset gcl knows"),
    ({"quick": {"methods": ["grace"]}}, r"quick.methods: table 't' has no method 'grace'"),
    ({"quick": {"datasets": "MUTAG"}}, r"quick.datasets must be a list of the table's datasets \(got 'MUTAG'\)"),
    ({"quick": {"evaluation": ["n_splits"]}}, r"table 't', quick.evaluation must be a mapping \(got list\)"),
    ({"quick": {"train": "epochs: 1"}}, r"table 't', quick.train must be a mapping \(got str\)"),
    # an evaluation grid is checked when the file loads, over each row's training settings, naming the row
    ({**_SUPERVISED, "evaluation": {"grid": {"lrr": [0.1]}}},
     r"table 't', MUTAG / s, evaluation.grid: 'lrr' is not a training setting to select \(did you mean 'lr'\?\)"),
    ({**_SUPERVISED, "evaluation": {"grid": {"lr": 0.01}}},
     r"table 't', MUTAG / s, evaluation.grid.lr must be a non-empty list \(got 0.01\)"),
    ({**_SUPERVISED, "evaluation": {"grid": {"lr": [0.01, -1.0]}}},
     r"table 't', MUTAG / s, evaluation.grid point \{'lr': -1.0\}: lr must be a positive number"),
    ({**_SUPERVISED, "evaluation": {"grid": {"seed": [1, 2]}}},
     r"MUTAG / s, evaluation.grid: 'seed' is not a training setting to select \(each task sets its own seed"),
    ({"protocol": "ogb", "metric": "rocauc", "methods": {"s": {"method": "supervised"}},
      "datasets": {"ogbg-molbace": {"evaluation": {"grid": {"batch_size": [0]}}}}, "quick": {}},
     r"ogbg-molbace / s, evaluation.grid point \{'batch_size': 0\}: batch_size"),
    ({**_SUPERVISED, "quick": {"evaluation": {"grid": {"lr": [0.1], "progress": [True]}}}},
     r"table 't', quick.evaluation.grid: 'progress' is not a training setting to select"),
    ({"methods": {}}, "names no methods"),
    ({"evalution": {"n_splits": 3}}, r"unknown setting 'evalution' \(did you mean 'evaluation'\?\)"),
    ({"evaluation": {"random_state": 1}}, r"evaluation \(svc\): unknown setting 'random_state'"),
    ({"evaluation": {"metric": "macro_f1"}}, r"evaluation \(svc\): unknown setting 'metric'"),
    ({"metric": "rocauc"}, "the svc protocol computes accuracy"),
    ({"protocol": "node-linear", "evaluation": {"n_splits": 3}},
     r"unknown setting 'n_splits' \(did you mean 'num_splits'\?\)"),
    ({"protocol": "supervised-kfold", "evaluation": {"val_size": 0}}, "early stopping needs a validation part"),
    ({"protocol": "supervised-random", "evaluation": {"ratios": [0.9, 0.0, 0.1]}, "quick": {}},
     r"table 't', evaluation: ratios must be three fractions in \(0, 1\) \(got \(0.9, 0.0, 0.1\)\)"),
    ({"methods": {"graphcl": {"optons": {}}}}, r"methods.graphcl: unknown setting 'optons'"),
    ({"methods": {"graphcl": {"train": {"epoch": 3}}}}, r"MUTAG / graphcl, train: unknown setting 'epoch'"),
    ({"methods": {"graphcl": {"train": {"lr": "1e-3"}}}}, r"lr must be a number \(got '1e-3'.*1\.0e-3"),
    ({"datasets": {"MUTAG": {"trian": {}}}}, r"datasets.MUTAG: unknown setting 'trian'"),
    ({"datasets": {"MUTAG": {"methods": {"gcl": {}}}}}, "'gcl' is not a method of the table"),
    ({"quick": {"epochs": 1}}, r"quick: unknown setting 'epochs'"),
    ({"datasets": {"MUTAG": {"dataset": {"node_feature": "degree"}}}},
     r"datasets.MUTAG.dataset: unknown setting 'node_feature' \(did you mean 'node_features'\?\)"),
    ({"datasets": {"MUTAG": {"methods": {"graphcl": {"dataset": {"use_node_attrs": True}}}}}},
     r"datasets.MUTAG.methods.graphcl.dataset: unknown setting 'use_node_attrs'"),
    # pre-training sees the test graphs of every fold: their labels must stay out of it
    ({"protocol": "supervised-kfold",
      "methods": {"ft": {"method": "supervised", "pretrain": {"method": "lcgnn"}}}},
     r"methods.ft.pretrain: method 'lcgnn' trains on labels, but pre-training runs on every graph"),
    ({"protocol": "ogb", "methods": {"ft": {"method": "supervised", "pretrain": {"method": "supervised"}}}},
     r"methods.ft.pretrain: method 'supervised' trains on labels"),
    # early stopping needs validation scores, which pre-training and the svc protocol never have
    ({"train": {"patience": 5}}, r"MUTAG / graphcl, train: patience needs validation scores"),
    ({"protocol": "ogb", "methods": {"ft": {"method": "supervised",
                                            "pretrain": {"method": "graphcl", "train": {"patience": 2}}}},
      "metric": "rocauc", "datasets": ["ogbg-molbace"], "quick": {}},
     r"/ ft, pretrain.train: patience needs validation scores"),
    # ROC-AUC and the ogb protocol score one binary task of an OGB data set, nothing else
    ({"protocol": "supervised-kfold", "metric": "rocauc", "quick": {}},
     r"the supervised-kfold protocol computes accuracy \(got metric 'rocauc'\)"),
    ({"protocol": "ogb", "metric": "rocauc", "methods": {"gin": {"method": "supervised"}}, "quick": {}},
     r"MUTAG: the ogb protocol needs an OGB graph data set \(ogbg-...; got 'MUTAG'\)"),
    ({"protocol": "ogb", "methods": {"gin": {"method": "supervised"}}, "datasets": ["ogbg-moltox21"], "quick": {}},
     "ogbg-moltox21 has 12 tasks; the supervised protocols train and score one classification task"),
    ({"protocol": "ogb", "methods": {"gin": {"method": "supervised"}}, "datasets": ["ogbg-molesol"], "quick": {}},
     r"ogbg-molesol is a regression task \(rmse\)"),
    ({"protocol": "ogb", "metric": "rocauc", "methods": {"gin": {"method": "supervised"}}, "datasets": ["ogbg-ppa"],
      "quick": {}}, r"ogbg-ppa is scored by acc \(OGB's evaluator\), not by the rocauc of a binary task"),
    ({"protocol": "ogb", "metric": "accuracy", "methods": {"gin": {"method": "supervised"}},
      "datasets": ["ogbg-molhiv"], "quick": {}},
     r"OGB's evaluator, which scores ogbg-molhiv by rocauc; set metric: rocauc"),
    # a row's own evaluation settings: known keys of the protocol, counts only for the whole table
    ({"protocol": "node-linear", "datasets": {"MUTAG": {"evaluation": {"splits": "official"}}}, "quick": {}},
     r"table 't', datasets.MUTAG.evaluation: splits must be one of \('random', 'public'\) \(got 'official'\)"),
    ({"protocol": "node-linear", "datasets": {"MUTAG": {"evaluation": {"num_splits": 3}}}, "quick": {}},
     r"datasets.MUTAG.evaluation \(node-linear; the counts are the table's\): unknown setting 'num_splits'"),
    ({"protocol": "supervised-kfold", "datasets": {"MUTAG": {"evaluation": {"val_size": 0}}}},
     "early stopping needs a validation part"),
    # the quick run's evaluation must not hide a full run without a validation part
    ({"protocol": "supervised-kfold", "evaluation": {"val_size": 0.0}, "quick": {"evaluation": {"val_size": 0.1}}},
     "early stopping needs a validation part"),
    # evaluation counts, data set names and method options are checked before anything runs
    ({"evaluation": {"n_splits": 0}}, r"evaluation: n_splits must be an integer of at least 2 \(got 0\)"),
    ({"evaluation": {"n_splits": "ten"}}, r"n_splits must be an integer of at least 2 \(got 'ten'\)"),
    ({"quick": {"evaluation": {"inner_splits": 1}}}, "inner_splits must be an integer of at least 2"),
    ({"datasets": {"NOPE": {"name": "NOT_A_DATASET"}}}, r"table 't', NOPE: .*NOT_A_DATASET"),
    ({"methods": {"g": {"method": "graphcll"}}}, r"MUTAG / g, unknown method 'graphcll'"),
    ({"methods": {"graphcl": {"options": {"bogus_option": 1}}}},
     r"MUTAG / graphcl, graphcl does not take \['bogus_option'\]"),
    ({"methods": {"graphcl": {"options": {"hidden_chanels": 8}}}}, "did you mean 'hidden_channels'"),
    ({"methods": {"ft": {"method": "supervised", "pretrain": {"method": "graphcl", "options": {"tau": 0.2}}}}},
     r"MUTAG / ft, pretrain, graphcl does not take \['tau'\]"),
])
def test_invalid(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_config(_content(**bad))


_NODE = {"protocol": "node-linear", "methods": {"grace": {}}, "datasets": ["Cora"], "quick": {}}
_RANDOM = {"protocol": "supervised-random", "methods": {"s": {"method": "supervised"}}, "datasets": ["MUTAG"],
           "quick": {}}
_OGB = {"protocol": "ogb", "metric": "rocauc", "methods": {"s": {"method": "supervised"}},
        "datasets": ["ogbg-molbace"], "quick": {}}


@pytest.mark.parametrize("bad, match", [
    # the evaluator's parameters, as the svc protocol builds it: the table's ...
    ({"evaluation": {"kernel": "rbff"}},
     r"table 't', evaluation: kernel must be one of \('rbf', 'linear', 'poly', 'sigmoid'\) \(got 'rbff'\)"),
    ({"evaluation": {"C_grid": [-1, 0]}},
     r"table 't', evaluation: C_grid must be a non-empty sequence of positive numbers \(got \[-1, 0\]\)"),
    ({"evaluation": {"C_grid": "big"}}, r"table 't', evaluation: C_grid must be .*\(got 'big'\)"),
    ({"evaluation": {"scale": "false"}}, r"table 't', evaluation: scale must be True or False \(got 'false'\)"),
    # ... the quick run's ...
    ({"quick": {"evaluation": {"kernel": "RBF"}}}, r"table 't', quick.evaluation: kernel must be one of .*'RBF'"),
    ({"quick": {"evaluation": {"scale": 1}}}, r"table 't', quick.evaluation: scale must be True or False \(got 1\)"),
    # ... and a row's
    ({"datasets": {"MUTAG": {"evaluation": {"C_grid": [0.1, 0]}}}},
     r"table 't', datasets.MUTAG.evaluation: C_grid must be .*\(got \[0.1, 0\]\)"),
    ({"datasets": {"MUTAG": {}, "PTC": {"name": "PTC_MR", "evaluation": {"scale": None}}}},
     r"table 't', datasets.PTC.evaluation: scale must be True or False \(got None\)"),
    # the linear probe's, as the node-linear protocol builds it
    ({**_NODE, "evaluation": {"normalize": "false"}},
     r"table 't', evaluation: normalize must be True or False \(got 'false'\)"),
    ({**_NODE, "evaluation": {"max_iter": 0}}, r"table 't', evaluation: max_iter must be an int >= 1 \(got 0\)"),
    ({**_NODE, "datasets": {"Cora": {"evaluation": {"scale": "no"}}}},
     r"table 't', datasets.Cora.evaluation: scale must be True or False \(got 'no'\)"),
    ({**_NODE, "evaluation": {"splits": "Public"}},
     r"table 't', evaluation: splits must be one of \('random', 'public'\) \(got 'Public'\)"),
    # how the supervised protocols select on the validation part
    ({**_SUPERVISED, "evaluation": {"selection": "los"}},
     r"table 't', evaluation: selection must be one of \('metric', 'loss'\) \(got 'los'\)"),
    ({**_OGB, "evaluation": {"selection": "rocauc"}},
     r"table 't', evaluation: selection must be one of \('metric', 'loss'\) \(got 'rocauc'\)"),
    ({**_OGB, "quick": {"evaluation": {"selection": "Loss"}}}, r"table 't', quick.evaluation: selection must be"),
    ({**_RANDOM, "datasets": {"MUTAG": {"evaluation": {"selection": None}}}},
     r"table 't', datasets.MUTAG.evaluation: selection must be one of .*\(got None\)"),
    # the random splits' fractions and the folds' validation part
    ({**_RANDOM, "evaluation": {"ratios": [0.8, 0.1, 0.2]}},
     r"table 't', evaluation: ratios must sum to 1 \(got \(0.8, 0.1, 0.2\), sum 1.1"),
    ({**_RANDOM, "evaluation": {"ratios": [0.9, 0.1]}},
     r"table 't', evaluation: ratios must be three fractions in \(0, 1\) \(got \(0.9, 0.1\)\)"),
    ({**_RANDOM, "evaluation": {"ratios": 0.8}},
     r"table 't', evaluation: ratios must be three fractions in \(0, 1\) \(got 0.8\)"),
    ({**_RANDOM, "datasets": {"MUTAG": {"evaluation": {"ratios": ["a", "b", "c"]}}}},
     r"table 't', datasets.MUTAG.evaluation: ratios must be three fractions .*\(got \['a', 'b', 'c'\]\)"),
    ({**_SUPERVISED, "evaluation": {"val_size": "1e-1"}},
     r"table 't', evaluation: val_size must be a fraction in \(0, 1\), as early stopping needs a validation "
     r"part \(got '1e-1'; YAML reads"),
    ({**_SUPERVISED, "evaluation": {"val_size": [0.1]}}, r"val_size must be a fraction in \(0, 1\).*\(got \[0.1\]\)"),
    ({**_SUPERVISED, "datasets": {"MUTAG": {"evaluation": {"val_size": 1.0}}}},
     r"table 't', datasets.MUTAG.evaluation: val_size must be a fraction in \(0, 1\).*\(got 1.0\)"),
    # the counts name the evaluation they are in
    ({"quick": {"evaluation": {"n_splits": 1}}},
     r"table 't', quick.evaluation: n_splits must be an integer of at least 2 \(got 1\)"),
])
def test_evaluation_values_are_checked_when_the_table_loads(bad: dict[str, Any], match: str,
                                                            tmp_path: Path) -> None:
    # a bad evaluation value would otherwise fail only after every task's (pre-)training
    with pytest.raises(ValueError, match=match):
        parse_config(_content(**bad))
    text = json.dumps(_content(**bad))  # JSON is YAML: the same message from a file
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(tmp_path / "t.yaml")


@pytest.mark.parametrize("good", [
    {"evaluation": {"kernel": "linear", "C_grid": [0.1, 10], "scale": True}},
    {**_NODE, "evaluation": {"scale": False, "normalize": True, "max_iter": 10, "splits": "public"}},
    {**_RANDOM, "evaluation": {"ratios": [0.6, 0.2, 0.2], "selection": "loss"}},
    {**_OGB, "evaluation": {"selection": "metric"}},
])
def test_valid_evaluation_values_are_not_refused(good: dict[str, Any]) -> None:
    parse_config(_content(**good))


@pytest.mark.parametrize("bad, match", [
    ({"datasets": ["ogbg-molbace"], "quick": {}},
     r"ogbg-molbace is an OGB data set, scored on its official scaffold split by OGB's evaluator \(rocauc\); "
     r"the svc protocol would score it by accuracy on random folds.*protocol: ogb \(metric: rocauc\)"),
    ({"protocol": "supervised-kfold", "methods": {"gin": {"method": "supervised"}},
      "datasets": {"MUTAG": {}, "BACE": {"name": "ogbg-molbace"}}, "quick": {}},
     r"BACE: ogbg-molbace is an OGB data set.*the supervised-kfold protocol would score it by accuracy"),
    ({"protocol": "supervised-random", "methods": {"gin": {"method": "supervised"}},
      "datasets": ["ogbg-molbace"], "quick": {}},
     r"the supervised-random protocol would score it by accuracy on random folds"),
])
def test_ogb_data_sets_are_scored_only_on_their_official_split(bad: dict[str, Any], match: str) -> None:
    # OGB prescribes its scaffold split and its evaluator's metric: accuracy (or even ROC-AUC) on another
    # protocol's random folds is no OGB result
    with pytest.raises(ValueError, match=match):
        parse_config(_content(**bad))
    config = parse_config(_content(protocol="ogb", metric="rocauc", methods={"gin": {"method": "supervised"}},
                                   datasets=["ogbg-molbace"], quick={}))
    assert config.datasets[0].name == "ogbg-molbace"


def test_missing_section() -> None:
    content = _content()
    del content["datasets"]
    with pytest.raises(ValueError, match="missing 'datasets:'"):
        parse_config(content)


def test_unknown_dataset_and_table() -> None:
    with pytest.raises(ValueError, match="has no dataset 'NCI1'"):
        parse_config(_content()).dataset_entry("NCI1")
    with pytest.raises(ValueError, match="no configuration for table"):
        find_config("no-such-table", REPO / "benchmarks" / "configs")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_match_their_paper_numbers(path: Path) -> None:
    config = load_config(path)
    assert config.table == path.stem
    paper = load_paper_results(REPO / "benchmarks" / "papers" / config.paper)
    labels = {(d.label, m.label) for d in config.datasets for m in config.methods}
    for row in paper:
        assert (row.dataset, row.method) in labels, f"{config.paper}: {row.dataset}/{row.method} not in the table"
        assert row.citation and row.source
    config.reduced()  # the quick section names existing datasets and methods


def test_graphcl_paper_numbers() -> None:
    paper = {r.dataset: (r.mean, r.std) for r in load_paper_results(REPO / "benchmarks/papers/graphcl-tu.csv")}
    assert paper["MUTAG"] == (86.80, 1.34) and paper["RDT-B"] == (89.53, 0.84)


def test_paper_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text("dataset,method,mean\nMUTAG,x,1\n")
    with pytest.raises(ValueError, match="missing column"):
        load_paper_results(bad)
    bad.write_text("dataset,method,mean,std,metric,citation,source,notes\nMUTAG,x,abc,,accuracy,c,s,\n")
    with pytest.raises(ValueError, match="expected a number"):
        load_paper_results(bad)
    # a row short of fields (an unquoted comma elsewhere makes one too long), named by its line in the file
    bad.write_text("# comment\ndataset,method,mean,std,metric,citation,source,notes\nMUTAG,x,1,1,accuracy,c,s,\n"
                   "MUTAG,graphcl,86.8,1.34\n")
    with pytest.raises(ValueError, match=r"p.csv:4: a row needs the 8 fields of the header"):
        load_paper_results(bad)
    bad.write_text("dataset,method,mean,std,metric,citation,source,notes\nMUTAG,x,1,1,accuracy,You, et al.,s,\n")
    with pytest.raises(ValueError, match=r"p.csv:2: a row needs the 8 fields"):
        load_paper_results(bad)


def test_fingerprint_of_settings_without_bookkeeping_is_the_plain_hash() -> None:
    """Records already stored keep their fingerprint: settings with nothing left out hash as written,
    a pre-training section without training settings included."""
    config = parse_config(_content(protocol="supervised-kfold", quick={}, datasets=["MUTAG"],
                                   methods={"ft": {"method": "supervised", "pretrain": {"method": "graphcl"}}}))
    entry, spec = config.dataset_entry("MUTAG"), config.method("ft")
    plain = json.dumps(config.settings(entry, spec), sort_keys=True, default=str)
    assert config.variant(entry, spec) == hashlib.sha1(plain.encode()).hexdigest()[:12]


def test_every_node_table_setting_builds_its_method_and_training() -> None:
    """The per-dataset settings of the rows that cannot run here (their data is not present)
    still build: a typo in an option or a training key fails now, not when the data arrives."""
    from torch_geometric.data import Batch, Data

    from gcl.bench.protocols import _train_config
    from gcl.data import load_dataset
    from gcl.methods import build_method

    mutag = Batch.from_data_list(list(load_dataset("MUTAG")[:8]))
    graph = Data(x=mutag.x, edge_index=mutag.edge_index, y=mutag.y[mutag.batch])
    config = load_config(REPO / "benchmarks" / "configs" / "node-gca.yaml")
    for entry in config.datasets:
        for spec in config.methods:
            settings = config.settings(entry, spec)
            method = build_method(settings["method"], graph, **settings["options"])
            train = _train_config(settings["train"], seed=0, device="cpu")
            scheduler = train.make_scheduler(train.make_optimizer(list(method.parameters())))
            assert scheduler is None or train.scheduler == "cosine"
