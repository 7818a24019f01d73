r"""Training configuration: optimiser, schedule, checkpoints, device."""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from gcl.data.prefetch import check_timeout
from gcl.train.distributed import local_device
from gcl.train.seed import check_seed


def check_keys(where: str, mapping: Any, allowed: Any, what: str = "setting") -> None:
    r"""Raises ``ValueError`` naming the keys of ``mapping`` outside ``allowed``, each with the
    closest valid one, and the valid keys (configuration files: a typo is never dropped silently)."""
    allowed = sorted(allowed)
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, allowed, 1))
                 else repr(key) for key in unknown]
        raise ValueError(f"{where}: unknown {what} {', '.join(hints)}; it takes {', '.join(allowed)}")


class _UniqueKeyLoader(yaml.SafeLoader):
    r"""PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    one silently: a second ``train:`` section would replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class names it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike[str]) -> Any:
    r"""The content of a YAML file; a syntax error or a key given twice in one mapping is a
    ``ValueError`` naming the file, line and column (configuration files: a traceback from the
    parser would hide where, and PyYAML keeps the last of two equal keys silently)."""
    file = Path(path)
    try:
        return yaml.load(file.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(file)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where}: not valid YAML ({problem})") from None


_NUMBER_FIELDS = {"epochs": numbers.Integral, "batch_size": numbers.Integral, "lr": numbers.Real,
                  "weight_decay": numbers.Real, "momentum": numbers.Real, "step_size": numbers.Integral,
                  "gamma": numbers.Real, "seed": numbers.Integral, "checkpoint_every": numbers.Integral,
                  "grad_clip": numbers.Real, "patience": numbers.Integral}


@dataclass
class TrainConfig:
    r"""Everything the training loop needs besides the method and the data.

    Args:
        epochs (int): Passes over the training data. (default: :obj:`20`)
        batch_size (int): Graphs per step: the global batch, divided evenly
            over the ranks under :mod:`torch.distributed`. (default: :obj:`128`)
        lr (float): Learning rate. (default: :obj:`0.01`)
        weight_decay (float): L2 penalty. (default: :obj:`0.0`)
        optimizer (str): ``"adam"``, ``"adamw"`` or ``"sgd"``. (default: :obj:`"adam"`)
        momentum (float): SGD momentum. (default: :obj:`0.9`)
        scheduler (str, optional): ``None``, ``"cosine"`` (per epoch, to 0) or
            ``"step"`` (``step_size``/``gamma``). (default: :obj:`None`)
        warmup_epochs (int): With ``"cosine"``: first raise the learning
            rate linearly from 0 over this many epochs, then anneal it to 0
            over the rest (Graph Barlow Twins' schedule). (default: :obj:`0`)
        step_size (int): Epochs between decays for ``"step"``. (default: :obj:`50`)
        gamma (float): Decay factor for ``"step"``. (default: :obj:`0.5`)
        seed (int): Seed for parameters, shuffling and augmentations, in
            :math:`[0, 2^{32})`. (default: :obj:`0`)
        device (str): ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
            ``"cuda:1"`` ... (default: :obj:`"auto"`)
        checkpoint_every (int): Write a checkpoint every this many steps
            (``0``: at the end of every epoch only). (default: :obj:`0`)
        grad_clip (float, optional): Clip the gradient norm. (default: :obj:`None`)
        patience (int, optional): Early stopping: epochs without validation
            improvement before stopping (needs a validation function).
        drop_last (bool): Drop the last incomplete batch (contrastive methods
            need at least two graphs per batch). (default: :obj:`True`)
        shuffle (str): ``"epoch"``: a new order of the graphs every epoch;
            ``"once"``: one order drawn from ``seed`` at the start, so every
            epoch has the same batches (what a PyG ``DataLoader`` without
            ``shuffle`` over a dataset shuffled once gives, as in GraphCL's
            reference code); one process only. (default: :obj:`"epoch"`)
        progress (bool): Show a progress bar. (default: :obj:`True`)
        sync_batchnorm (bool): Under :mod:`torch.distributed`, convert batch
            norms to :class:`torch.nn.SyncBatchNorm` so statistics cover the
            global batch (CUDA only: training raises ``ValueError`` on a CPU
            device, in one process or several; one CUDA process has nothing to
            synchronise and trains unchanged). (default: :obj:`False`)
        find_unused_parameters (bool): Passed to
            :class:`~torch.nn.parallel.DistributedDataParallel`. (default: :obj:`False`)
        view_workers (int): Background processes that collate each step's
            batch and draw its augmented views ahead of the step
            (:class:`gcl.data.ViewPrefetcher`), for methods with a
            ``view_augmentations()`` method (GraphCL, graph-level Barlow Twins,
            LCGNN, supervised). ``0`` draws the views inside the method's
            forward, in the training process. With workers, each step's views
            are drawn from a seed derived from ``seed``, the rank and the step,
            so the numbers do not depend on the number of workers, but differ
            from those of ``0``. Linux only (forked processes). (default: :obj:`0`)
        view_timeout (float, optional): With view workers, seconds to wait for
            a step's views before stopping the workers and raising
            :class:`RuntimeError`, at most 2147483 (about 24 days: the
            longest wait the pipe's ``poll`` takes); ``None`` waits as long as
            it takes. (default: :obj:`None`)
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 0.01
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    scheduler: str | None = None
    warmup_epochs: int = 0
    step_size: int = 50
    gamma: float = 0.5
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 0
    grad_clip: float | None = None
    patience: int | None = None
    drop_last: bool = True
    shuffle: str = "epoch"
    progress: bool = True
    sync_batchnorm: bool = False
    find_unused_parameters: bool = False
    view_workers: int = 0
    view_timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, kind in _NUMBER_FIELDS.items():
            value = getattr(self, name)
            if value is None and name in ("grad_clip", "patience"):
                continue
            if isinstance(value, bool) or not isinstance(value, kind):
                hint = ""
                if isinstance(value, str) and kind is numbers.Integral:
                    hint = "; write a plain integer such as 100"
                elif isinstance(value, str):
                    hint = ("; YAML reads a number such as 1e-3 (no dot, or no sign in the exponent) as text: "
                            "write 1.0e-3 or 1.0e+2")
                raise ValueError(f"{name} must be {'an integer' if kind is numbers.Integral else 'a number'} "
                                 f"(got {value!r}{hint})")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1 (got {self.epochs})")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {self.batch_size})")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a positive number (got {self.lr})")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative (got {self.weight_decay})")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            # a negative bound would reverse every gradient (torch scales by bound / norm)
            raise ValueError(f"grad_clip must be positive or None (got {self.grad_clip})")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 or None (got {self.patience})")
        if self.step_size < 1:
            raise ValueError(f"step_size must be at least 1 (got {self.step_size})")
        if not math.isfinite(self.gamma) or self.gamma <= 0:
            # a negative factor would flip the learning rate's sign every step_size epochs
            raise ValueError(f"gamma must be a positive number (got {self.gamma})")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1) (got {self.momentum})")
        check_seed(self.seed)
        if not isinstance(self.device, (str, torch.device)):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {self.device!r})")
        if self.shuffle not in ("epoch", "once"):
            raise ValueError(f"shuffle must be 'epoch' or 'once' (got {self.shuffle!r})")
        for flag in ("drop_last", "progress", "sync_batchnorm", "find_unused_parameters"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false (got {getattr(self, flag)!r})")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd' (got {self.optimizer!r})")
        if self.scheduler not in (None, "cosine", "step"):
            raise ValueError(f"scheduler must be None, 'cosine' or 'step' (got {self.scheduler!r})")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int) or not (
                0 <= self.warmup_epochs < self.epochs):
            raise ValueError(f"warmup_epochs must be an integer in [0, epochs) (got {self.warmup_epochs!r})")
        if self.warmup_epochs and self.scheduler != "cosine":
            raise ValueError(f"warmup_epochs goes with scheduler='cosine' (got scheduler={self.scheduler!r})")
        if isinstance(self.view_workers, bool) or not isinstance(self.view_workers, int) or self.view_workers < 0:
            raise ValueError(f"view_workers must be a non-negative integer (got {self.view_workers!r})")
        check_timeout("view_timeout", self.view_timeout)
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be non-negative (got {self.checkpoint_every})")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        r"""Build from a mapping of the settings above; a key that is not one of them raises
        ``ValueError`` naming the closest (a typo is never dropped). Settings of one's own go under
        ``extra`` (a mapping), which is kept as it is."""
        if not isinstance(values, dict):
            raise ValueError(f"training settings must be a mapping (got {type(values).__name__})")
        check_keys("training settings", values, {f.name for f in dataclasses.fields(cls)})
        extra = values.get("extra") or {}
        if not isinstance(extra, dict):
            raise ValueError(f"extra must be a mapping of settings of one's own (got {type(extra).__name__})")
        return cls(**{**values, "extra": dict(extra)})

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        r"""Read the ``train:`` section of a YAML file (or the whole file when it has none), as
        :meth:`from_dict` does: unknown keys and keys given twice raise ``ValueError``."""
        content = read_yaml(path) or {}
        if not isinstance(content, dict):
            raise ValueError(f"{path}: expected a mapping (got {type(content).__name__})")
        section = content["train"] if "train" in content else content
        try:
            return cls.from_dict(section if section is not None else {})
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def resolve_device(self) -> torch.device:
        r"""The :class:`torch.device` to train on (``cuda:LOCAL_RANK`` for ``"auto"``
        or ``"cuda"`` under :mod:`torch.distributed`, one GPU per process)."""
        return local_device(self.device)

    def make_optimizer(self, parameters: Any) -> torch.optim.Optimizer:
        r"""The optimiser over ``parameters``.

        Adam and AdamW use torch's fused kernels when every parameter is a
        floating-point CPU or CUDA tensor: one kernel for all parameters
        instead of a Python loop over them, which matters for the small
        encoders of graph contrastive learning."""
        if self.optimizer in ("adam", "adamw"):
            params = list(parameters)
            cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
            fusable = bool(params) and all(
                isinstance(p, torch.Tensor) and p.is_floating_point() and p.device.type in ("cpu", "cuda")
                for p in params)
            if fusable:
                try:
                    return cls(params, lr=self.lr, weight_decay=self.weight_decay, fused=True)
                except (RuntimeError, TypeError, ValueError):
                    pass  # this torch build has no fused kernel for these tensors
            return cls(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
        r"""The per-epoch learning-rate schedule, or ``None``."""
        if self.scheduler == "cosine" and self.warmup_epochs:
            return torch.optim.lr_scheduler.LambdaLR(
                optimizer, partial(_warmup_cosine, warmup=self.warmup_epochs, total=self.epochs))
        if self.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        if self.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)
        return None


def _warmup_cosine(epoch: int, *, warmup: int, total: int) -> float:
    r"""The factor of the base learning rate in ``epoch``: linear from 0 over
    ``warmup`` epochs, then a cosine from 1 to 0 over the remaining ones."""
    if epoch < warmup:
        return epoch / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / (total - warmup)))


def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    r"""Parameters that require gradients (momentum copies are excluded)."""
    return [p for p in module.parameters() if p.requires_grad]
