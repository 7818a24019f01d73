r"""Image contrastive methods assembled from :mod:`gcl.losses` objects.

Every method is a thin :class:`torch.nn.Module`: ``forward(images[, targets])`` returns
the scalar loss of one step and ``embed(images)`` the frozen encoder features used by
probes. The loss objects are the ones of :mod:`gcl.losses`, unchanged; the methods only
decide which views are encoded by which network.
"""

from __future__ import annotations

import copy
import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.adapters.batches import (
    Batch,
    check_splits,
    encode_in_parts,
    evaluation_mode,
    frozen_statistics,
    unpack,
)
from gcl.adapters.image.augment import check_images
from gcl.losses import (
    IMixLoss,
    InfoNCE,
    MemoryQueue,
    MoCHiLoss,
    ProtoNCELoss,
    SupConLoss,
    estimate_concentration,
    imix_mix,
    is_distributed,
    kmeans,
    update_momentum,
)

__all__ = [
    "PCL",
    "AdversarialSimCLR",
    "IMix",
    "MoCHi",
    "MoCo",
    "ProjectionHead",
    "SimCLR",
    "SupCon",
    "momentum_copy",
    "projection_head",
]


class ProjectionHead(nn.Sequential):
    r"""The two-layer MLP head :math:`g` of `SimCLR <https://arxiv.org/abs/2002.05709>`_
    and MoCo v2:

    .. math::
        z = W_2\,\mathrm{ReLU}(W_1 h + b_1) + b_2.

    (The adapters depend on :mod:`gcl.losses` only, so they keep this small head rather
    than importing the graph package :mod:`gcl.nn`.)

    Args:
        in_channels (int): Input size.
        hidden_channels (int): Hidden width.
        out_channels (int): Output size.

    Shapes:
        - **input:** :math:`(N, F_{in})`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int) -> None:
        for name, value in [
            ("in_channels", in_channels),
            ("hidden_channels", hidden_channels),
            ("out_channels", out_channels),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")
        super().__init__(
            nn.Linear(in_channels, hidden_channels),
            nn.ReLU(),
            nn.Linear(hidden_channels, out_channels),
        )
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels

    def reset_parameters(self) -> None:
        r"""Re-draws all weights."""
        for layer in self:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()


def projection_head(in_channels: int, out_channels: int = 64) -> ProjectionHead:
    r"""The head of SimCLR / MoCo v2: hidden width equal to the input width."""
    return ProjectionHead(in_channels, in_channels, out_channels)


def momentum_copy(module: nn.Module) -> nn.Module:
    r"""A deep copy of ``module`` that takes no gradient (the key network of MoCo),
    moved towards the online module by :func:`gcl.losses.update_momentum`."""
    clone = copy.deepcopy(module)
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def _out_channels(module: nn.Module, name: str) -> int:
    value = getattr(module, "out_channels", None)
    if not isinstance(value, int):
        raise ValueError(f"{name} must expose an integer out_channels (got {value!r})")
    return value


def _check_momentum(momentum: float) -> None:
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1] (got {momentum})")


class _ImageMethod(nn.Module):
    r"""Shared parts: an encoder, a projection head and a view generator."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        augment: nn.Module,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.augment = augment
        self.generator = generator

    def views(self, images: Tensor) -> tuple[Tensor, Tensor]:
        r"""Two independent augmentations of ``images``."""
        check_images(images)
        return self.augment(images, self.generator), self.augment(images, self.generator)

    def project(self, images: Tensor) -> Tensor:
        r"""Head output :math:`z = g(f(x))` used by the loss."""
        return self.head(self.encoder(images))

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        r"""Encoder features :math:`h = f(x)` (no head, no gradient), with the encoder in
        evaluation mode for the call: batch normalisation uses (and keeps) its running
        statistics, so every image's features are its own."""
        check_images(images)
        with evaluation_mode(self.encoder):
            return self.encoder(images)


class SimCLR(_ImageMethod):
    r"""`SimCLR <https://arxiv.org/abs/2002.05709>`_ (Chen et al., ICML 2020): two views
    per image, both through the same encoder and head, scored by NT-Xent
    (:class:`gcl.losses.InfoNCE` with :math:`2N - 2` in-batch negatives):

    .. math::
        \mathcal{L} = \frac{1}{2N} \sum_{i} \big[\ell(z^{(1)}_i, z^{(2)}_i)
        + \ell(z^{(2)}_i, z^{(1)}_i)\big].

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``, e.g.
            :class:`~gcl.adapters.image.ImageAugment`.
        head (nn.Module, optional): Projection head; :obj:`None` builds
            :func:`projection_head`. (default: :obj:`None`)
        loss (nn.Module, optional): :obj:`None` builds ``InfoNCE(temperature=0.5)``.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Randomness of the views (also settable
            later as ``method.generator``). (default: :obj:`None`)

    Example:
        >>> from gcl.adapters.image import ImageAugment, SmallResNet
        >>> method = SimCLR(SmallResNet(1, 16), ImageAugment.digits())
        >>> images = torch.rand(32, 1, 8, 8)
        >>> method(images).backward()
        >>> method.embed(images).shape
        torch.Size([32, 32])
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        head = head if head is not None else projection_head(_out_channels(encoder, "encoder"))
        super().__init__(encoder, head, augment, generator)
        self.loss = loss if loss is not None else InfoNCE(temperature=0.5)

    def forward(self, images: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        images, _ = unpack(images, targets)
        view1, view2 = self.views(images)
        z = self.project(torch.cat([view1, view2]))
        z1, z2 = z.chunk(2)
        return self.loss(z1, z2)


class AdversarialSimCLR(SimCLR):
    r"""SimCLR with adversarial views, `Ho & Vasconcelos
    <https://arxiv.org/abs/2010.12050>`_ (NeurIPS 2020): the first view is pushed by
    one FGSM step *up* the contrastive loss of the whole batch, and the adversarial
    batch is trained on next to the clean one:

    .. math::
        x^{\text{adv}} = \mathrm{clip}_{[0,1]}\Big(x^{(1)} + \epsilon\,
        \mathrm{sign}\,\nabla_{x^{(1)}} \mathcal{L}(g f(x^{(1)}), g f(x^{(2)}))\Big),
        \qquad
        \mathcal{L}_{\text{total}} = \mathcal{L}(x^{(1)}, x^{(2)})
        + w\, \mathcal{L}(x^{\text{adv}}, x^{(2)}).

    Because InfoNCE couples every sample to the others, the perturbation of one image
    depends on the whole batch; the gradient step reads only the input gradient (the
    network's parameter gradients are untouched by it).

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        head (nn.Module, optional): Projection head. (default: :obj:`None`)
        loss (nn.Module, optional): :obj:`None` builds ``InfoNCE(temperature=0.5)``.
        epsilon (float, optional): FGSM step :math:`\epsilon \ge 0` in pixel units.
            (default: :obj:`0.03`)
        adversarial_weight (float, optional): :math:`w \ge 0`. (default: :obj:`1.0`)
        generator (torch.Generator, optional): Randomness of the views.
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        epsilon: float = 0.03,
        adversarial_weight: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(encoder, augment, head, loss, generator)
        if not (math.isfinite(epsilon) and epsilon >= 0):
            raise ValueError(f"epsilon must be a finite number >= 0 (got {epsilon})")
        if not (math.isfinite(adversarial_weight) and adversarial_weight >= 0):
            raise ValueError(f"adversarial_weight must be a finite number >= 0 (got {adversarial_weight})")
        self.epsilon = epsilon
        self.adversarial_weight = adversarial_weight

    def adversarial_view(self, view1: Tensor, view2: Tensor) -> Tensor:
        r"""One FGSM step on ``view1`` that increases the loss against ``view2`` (its passes leave
        the batch-norm running statistics as they were: only the training pass updates them)."""
        attacked = view1.detach().requires_grad_(True)
        with torch.enable_grad(), frozen_statistics(self):
            loss = self.loss(self.project(attacked), self.project(view2.detach()))
            (gradient,) = torch.autograd.grad(loss, attacked)
        return (attacked + self.epsilon * gradient.sign()).clamp(0.0, 1.0).detach()

    def forward(self, images: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        images, _ = unpack(images, targets)
        view1, view2 = self.views(images)
        adversarial = self.adversarial_view(view1, view2)
        z = self.project(torch.cat([view1, view2, adversarial]))
        z1, z2, z_adv = z.chunk(3)
        return self.loss(z1, z2) + self.adversarial_weight * self.loss(z_adv, z2)


class _MomentumMethod(_ImageMethod):
    r"""A query network, its momentum (key) copy and a queue of past keys."""

    queue: MemoryQueue

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None,
        queue_size: int,
        momentum: float,
        generator: torch.Generator | None = None,
        key_splits: int = 1,
    ) -> None:
        head = head if head is not None else projection_head(_out_channels(encoder, "encoder"))
        super().__init__(encoder, head, augment, generator)
        _check_momentum(momentum)
        check_splits(key_splits)
        self.momentum = momentum
        self.key_splits = key_splits
        self.key_encoder = momentum_copy(encoder)
        self.key_head = momentum_copy(head)
        dim = _out_channels(head, "head")
        self.queue = MemoryQueue(queue_size, dim, store_labels=False)
        # MoCo starts from a queue of random unit vectors, so the very first step
        # already has negatives.
        device = generator.device if generator is not None else None
        initial = torch.randn(queue_size, dim, generator=generator, device=device)
        self.queue.enqueue(F.normalize(initial, dim=1).cpu())

    @torch.no_grad()
    def keys(self, view: Tensor) -> Tensor:
        r"""Momentum-network embeddings :math:`k = g_\xi(f_\xi(x))`, no gradient; in training
        with ``key_splits > 1``, over that many random parts of the batch (shuffling BN)."""
        splits = self.key_splits if self.training else 1
        return encode_in_parts(lambda part: self.key_head(self.key_encoder(part)), view, splits, self.generator)

    @torch.no_grad()
    def momentum_update(self) -> None:
        r""":math:`\xi \leftarrow m\,\xi + (1 - m)\,\theta` for encoder and head."""
        update_momentum(self.encoder, self.key_encoder, self.momentum)
        update_momentum(self.head, self.key_head, self.momentum)

    def query_and_key(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Query, key and the current queue for one batch (updates the key network first
        when training, as the reference implementation does)."""
        view1, view2 = self.views(images)
        if self.training:
            self.momentum_update()
        query = self.project(view1)
        key = self.keys(view2)
        return query, key, self.queue.get().keys

    def remember(self, key: Tensor) -> None:
        r"""Enqueues the batch's keys (training only)."""
        if self.training:
            self.queue.enqueue(F.normalize(key.detach(), dim=1))


class MoCo(_MomentumMethod):
    r"""MoCo v2 (`He et al., CVPR 2020 <https://arxiv.org/abs/1911.05722>`_; `Chen et al.,
    2020 <https://arxiv.org/abs/2003.04297>`_): the query view goes through the trained
    network, the key view through its momentum copy, and the negatives are a FIFO queue
    of past keys (:class:`gcl.losses.MemoryQueue`), scored by
    :class:`gcl.losses.InfoNCE` in its MoCo form:

    .. math::
        \ell = -\log \frac{\exp(q^\top k^+ / \tau)}{\exp(q^\top k^+ / \tau)
        + \sum_{k^- \in Q} \exp(q^\top k^- / \tau)},
        \qquad \xi \leftarrow m\,\xi + (1 - m)\,\theta.

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        head (nn.Module, optional): Projection head (MoCo v2's MLP by default).
        loss (nn.Module, optional): :obj:`None` builds ``InfoNCE.moco(temperature=0.2)``.
        queue_size (int, optional): Number of queued keys. (default: :obj:`4096`)
        momentum (float, optional): :math:`m`. (default: :obj:`0.99`)
        generator (torch.Generator, optional): Randomness of the initial queue and the views.
        key_splits (int, optional): Batch-norm statistics of the key network over this many
            random parts of the batch instead of the whole batch (MoCo's shuffling BN, in one
            process): with ``1`` the query and its key share batch statistics, which MoCo
            (§3.3) found to leak the positive; needs at least 2 images per part. (default: :obj:`1`)
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        queue_size: int = 4096,
        momentum: float = 0.99,
        generator: torch.Generator | None = None,
        key_splits: int = 1,
    ) -> None:
        super().__init__(encoder, augment, head, queue_size, momentum, generator, key_splits)
        self.loss = loss if loss is not None else InfoNCE.moco(temperature=0.2)

    def forward(self, images: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        images, _ = unpack(images, targets)
        query, key, negatives = self.query_and_key(images)
        loss = self.loss(query, key, negatives)
        self.remember(key)
        return loss


class MoCHi(_MomentumMethod):
    r"""MoCo with synthetic hard negatives, `MoCHi <https://arxiv.org/abs/2010.01028>`_
    (Kalantidis et al., NeurIPS 2020): the loss :class:`gcl.losses.MoCHiLoss` mixes the
    hardest queue entries (and the query) into extra negatives per query.

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        head (nn.Module, optional): Projection head.
        loss (nn.Module, optional): :obj:`None` builds ``MoCHiLoss(temperature=0.2,
            num_hardest=128, num_synthetic_negatives=64, num_synthetic_query_mix=16)``.
        queue_size (int, optional): Number of queued keys. (default: :obj:`4096`)
        momentum (float, optional): Key-network momentum. (default: :obj:`0.99`)
        generator (torch.Generator, optional): Randomness of the initial queue and the views.
        key_splits (int, optional): Batch-norm statistics of the key network over this many
            random parts of the batch instead of the whole batch (MoCo's shuffling BN, in one
            process): with ``1`` the query and its key share batch statistics, which MoCo
            (§3.3) found to leak the positive; needs at least 2 images per part. (default: :obj:`1`)
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        queue_size: int = 4096,
        momentum: float = 0.99,
        generator: torch.Generator | None = None,
        key_splits: int = 1,
    ) -> None:
        super().__init__(encoder, augment, head, queue_size, momentum, generator, key_splits)
        self.loss = (
            loss
            if loss is not None
            else MoCHiLoss(
                temperature=0.2, num_hardest=128, num_synthetic_negatives=64, num_synthetic_query_mix=16
            )
        )

    def forward(self, images: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        images, _ = unpack(images, targets)
        query, key, negatives = self.query_and_key(images)
        loss = self.loss(query, key, negatives, self.generator)
        self.remember(key)
        return loss


class SupCon(_ImageMethod):
    r"""Supervised contrastive learning, `Khosla et al. <https://arxiv.org/abs/2004.11362>`_
    (NeurIPS 2020): two views per image; every other embedding with the same label is a
    positive (:class:`gcl.losses.SupConLoss` on features :obj:`[N, 2, d]`).

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        head (nn.Module, optional): Projection head.
        loss (nn.Module, optional): :obj:`None` builds ``SupConLoss(temperature=0.1)``.
        generator (torch.Generator, optional): Randomness of the views.
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        head = head if head is not None else projection_head(_out_channels(encoder, "encoder"))
        super().__init__(encoder, head, augment, generator)
        self.loss = loss if loss is not None else SupConLoss(temperature=0.1)

    def forward(self, images: Tensor | Batch, labels: Tensor | None = None) -> Tensor:
        images, labels = unpack(images, labels)
        if labels is None:
            raise ValueError("SupCon needs labels: call method(images, labels) or pass a Batch")
        check_images(images)
        if images.size(0) < 2:
            raise ValueError(f"SupCon needs at least 2 images per batch for negatives (got {images.size(0)})")
        view1, view2 = self.views(images)
        z = self.project(torch.cat([view1, view2]))
        z1, z2 = z.chunk(2)
        return self.loss(torch.stack([z1, z2], dim=1), labels)


class IMix(_ImageMethod):
    r"""`i-Mix <https://arxiv.org/abs/2010.08887>`_ (Lee et al., ICLR 2021) on SimCLR:
    the first views are mixed with a permutation of themselves
    (:func:`gcl.losses.imix_mix`) and classified against the clean second views with
    mixed virtual labels (:class:`gcl.losses.IMixLoss`):

    .. math::
        \tilde{x}_i = \lambda x^{(1)}_i + (1 - \lambda) x^{(1)}_{\pi(i)},\quad
        \ell_i = \lambda\,\mathrm{CE}(s_i/\tau, i) + (1 - \lambda)\,\mathrm{CE}(s_i/\tau, \pi(i)).

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        head (nn.Module, optional): Projection head.
        loss (nn.Module, optional): :obj:`None` builds ``IMixLoss(temperature=0.2)``.
        alpha (float, optional): Beta parameter of :math:`\lambda`. (default: :obj:`1.0`)
        generator (torch.Generator, optional): Randomness of the views and the mixing.
    """

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        alpha: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        head = head if head is not None else projection_head(_out_channels(encoder, "encoder"))
        super().__init__(encoder, head, augment, generator)
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0 (got {alpha})")
        self.alpha = alpha
        self.loss = loss if loss is not None else IMixLoss(temperature=0.2)

    def forward(self, images: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        images, _ = unpack(images, targets)
        view1, view2 = self.views(images)
        mixed = imix_mix(view1, self.alpha, self.generator)
        z = self.project(torch.cat([mixed.inputs, view2]))
        query, key = z.chunk(2)
        return self.loss(query, key, mixed.permutation, mixed.coefficient)


class PCL(_MomentumMethod):
    r"""Prototypical Contrastive Learning, `Li et al. <https://arxiv.org/abs/2005.04966>`_
    (ICLR 2021): an EM loop. The E-step (:meth:`update_prototypes`, once per epoch)
    clusters momentum features of the whole training set with :func:`gcl.losses.kmeans`
    for each :math:`k` in ``num_clusters`` and estimates each cluster's concentration
    :math:`\phi` (:func:`gcl.losses.estimate_concentration`); the M-step trains with
    :class:`gcl.losses.ProtoNCELoss`, MoCo's instance term plus the prototype term
    (see the loss for the formula). Before the first E-step only the instance term is
    used (the paper's warm-up).

    ``forward`` needs each image's index in the training set (to look up its cluster),
    either as ``method(images, indices)`` or as a :class:`~gcl.adapters.Batch`.

    Args:
        encoder (nn.Module): Images to features, with ``out_channels``.
        augment (nn.Module): ``augment(images, generator)``.
        num_items (int): Size of the training set.
        num_clusters (list[int], optional): :math:`k_1, \dots, k_M`. (default: :obj:`(10, 20)`)
        head (nn.Module, optional): Projection head.
        loss (nn.Module, optional): :obj:`None` builds ``ProtoNCELoss(temperature=0.2)``.
        queue_size (int, optional): Number of queued keys. (default: :obj:`4096`)
        momentum (float, optional): Key-network momentum. (default: :obj:`0.99`)
        generator (torch.Generator, optional): Randomness of the queue and of k-means.
        key_splits (int, optional): Batch-norm statistics of the key network over this many
            random parts of the batch instead of the whole batch (MoCo's shuffling BN, in one
            process): with ``1`` the query and its key share batch statistics, which MoCo
            (§3.3) found to leak the positive; needs at least 2 images per part. (default: :obj:`1`)

    Buffers:
        ``assignments`` :obj:`[M, num_items]` (``-1`` before the first E-step),
        ``prototypes_m`` :obj:`[k_m, d]`, ``concentrations_m`` :obj:`[k_m]`.
    """

    assignments: Tensor

    def __init__(
        self,
        encoder: nn.Module,
        augment: nn.Module,
        num_items: int,
        num_clusters: tuple[int, ...] | list[int] = (10, 20),
        head: nn.Module | None = None,
        loss: nn.Module | None = None,
        queue_size: int = 4096,
        momentum: float = 0.99,
        generator: torch.Generator | None = None,
        key_splits: int = 1,
    ) -> None:
        super().__init__(encoder, augment, head, queue_size, momentum, generator, key_splits)
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be an integer >= 1 (got {num_items!r})")
        clusters = list(num_clusters)
        if not clusters or any(
            isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_items for k in clusters
        ):
            raise ValueError(
                f"num_clusters must be a non-empty list of integers in [1, {num_items}] (got {num_clusters!r})"
            )
        self.num_items = num_items
        self.num_clusters = clusters
        self.loss = loss if loss is not None else ProtoNCELoss(temperature=0.2)
        # The reference code rescales the concentrations so that their mean equals
        # the instance temperature.
        temperature = getattr(self.loss, "temperature", 0.2)
        is_number = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
        self.concentration_temperature = float(temperature) if is_number else 0.2
        dim = self.queue.dim
        self.register_buffer("assignments", torch.full((len(clusters), num_items), -1, dtype=torch.long))
        for m, k in enumerate(clusters):
            self.register_buffer(f"prototypes_{m}", torch.zeros(k, dim))
            self.register_buffer(f"concentrations_{m}", torch.ones(k))

    def _check_indices(self, indices: Tensor, count: int) -> None:
        if not isinstance(indices, Tensor) or indices.dim() != 1 or indices.is_floating_point() \
                or indices.dtype == torch.bool:
            raise ValueError("indices must be a 1-D integer tensor of training-set positions (got "
                             f"{indices.dtype if isinstance(indices, Tensor) else type(indices).__name__} "
                             f"of shape {tuple(getattr(indices, 'shape', ()))})")
        if indices.numel() != count:
            raise ValueError(f"indices must hold one position per image (got {indices.numel()} for {count} images)")
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= self.num_items:
            raise ValueError(f"indices must lie in [0, {self.num_items}) (num_items; got {low} to {high})")

    @property
    def has_prototypes(self) -> bool:
        r"""Whether an E-step has run."""
        return bool((self.assignments >= 0).all())

    @torch.no_grad()
    def update_prototypes(self, images: Tensor, batch_size: int = 512) -> None:
        r"""E-step: clusters the momentum features of all ``num_items`` training images
        (un-augmented, in eval mode) and stores prototypes and concentrations. Under
        :mod:`torch.distributed` every rank holds the same features, but their k-means
        draws differ (each rank's random stream is its own): rank 0's clustering is
        broadcast, as PCL's code does, so that every replica uses the same prototypes.

        Args:
            images (torch.Tensor): The whole training set, :obj:`[num_items, C, H, W]`,
                in the order of the indices passed to ``forward``.
            batch_size (int, optional): Images per encoder call. (default: :obj:`512`)
        """
        check_images(images)
        if images.size(0) != self.num_items:
            raise ValueError(
                f"images must hold all {self.num_items} training items (got {images.size(0)})"
            )
        with evaluation_mode(self):
            features = torch.cat([self.keys(chunk) for chunk in images.split(batch_size)])
        features = F.normalize(features, dim=1)
        for m, k in enumerate(self.num_clusters):
            result = kmeans(features, k, generator=self.generator)
            centroids = F.normalize(result.centroids, dim=1)
            phi = estimate_concentration(
                features,
                result.assignments,
                result.centroids,
                clip_quantiles=(0.1, 0.9),
                temperature=self.concentration_temperature,
            )
            buffers = (self.assignments[m], getattr(self, f"prototypes_{m}"), getattr(self, f"concentrations_{m}"))
            for buffer, value in zip(buffers, (result.assignments, centroids, phi)):
                buffer.copy_(value)
                if is_distributed():
                    torch.distributed.broadcast(buffer, src=0)

    def forward(self, images: Tensor | Batch, indices: Tensor | None = None) -> Tensor:
        images, indices = unpack(images, indices)
        if indices is None:
            raise ValueError("PCL needs the training-set index of every image: method(images, indices)")
        check_images(images)
        self._check_indices(indices, images.size(0))
        query, key, negatives = self.query_and_key(images)
        if self.has_prototypes:
            index = indices.to(self.assignments.device).long()
            count = len(self.num_clusters)
            loss = self.loss(
                query,
                key,
                negatives,
                [self.assignments[m, index] for m in range(count)],
                [getattr(self, f"prototypes_{m}") for m in range(count)],
                [getattr(self, f"concentrations_{m}") for m in range(count)],
            )
        else:
            loss = self.loss(query, key, negatives)
        self.remember(key)
        return loss
