r"""VideoMoCo assembled from :mod:`gcl.losses` objects."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gcl.adapters.batches import Batch, check_splits, encode_in_parts, evaluation_mode, unpack
from gcl.adapters.image.methods import momentum_copy, projection_head
from gcl.adapters.video.augment import adversarial_drop, check_clips, drop_frames, random_translate
from gcl.losses import InfoNCE, MemoryQueue, update_momentum

__all__ = ["VideoMoCo", "decayed_negatives"]


def decayed_negatives(
    query: Tensor, key: Tensor, negatives: Tensor, ages: Tensor, decay: float, temperature: float
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Rewrites a MoCo step so that a plain InfoNCE (``normalize=False``) weights every
    negative by :math:`t^{\text{age}}` in its denominator.

    Queries, keys and negatives are L2-normalised and one coordinate is appended:
    :math:`1` to the query, :math:`0` to the key and
    :math:`\tau\, a_j \ln t` to negative :math:`j` of age :math:`a_j`. Then

    .. math::
        \frac{q'^\top n'_j}{\tau} = \frac{\hat{q}^\top \hat{n}_j}{\tau} + a_j \ln t
        \;\Rightarrow\; e^{q'^\top n'_j/\tau} = t^{a_j}\, e^{\hat{q}^\top \hat{n}_j/\tau},
        \qquad \frac{q'^\top k'}{\tau} = \frac{\hat{q}^\top \hat{k}}{\tau}.

    Args:
        query (torch.Tensor): :obj:`[N, d]`.
        key (torch.Tensor): :obj:`[N, d]`.
        negatives (torch.Tensor): :obj:`[K, d]`.
        ages (torch.Tensor): :obj:`[K]`, non-negative.
        decay (float): :math:`t \in (0, 1]`.
        temperature (float): :math:`\tau` of the InfoNCE that will score them.

    Returns:
        (query, key, negatives): Each with one more column.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1] (got {decay})")
    if ages.shape != (negatives.size(0),):
        raise ValueError(f"ages must have shape ({negatives.size(0)},) (got {tuple(ages.shape)})")
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    n = F.normalize(negatives, dim=1)
    shift = temperature * ages.to(n.dtype) * math.log(decay)
    return (
        torch.cat([q, q.new_ones(q.size(0), 1)], dim=1),
        torch.cat([k, k.new_zeros(k.size(0), 1)], dim=1),
        torch.cat([n, shift[:, None].to(n.device)], dim=1),
    )


class VideoMoCo(nn.Module):
    r"""`VideoMoCo <https://arxiv.org/abs/2103.05905>`_ (Pan et al., CVPR 2021): MoCo on
    clips whose query view has frames dropped, randomly (:func:`drop_frames`) or by an
    adversarial frame-importance generator (:func:`adversarial_drop` with, e.g.,
    :class:`FrameImportance`), and a queue whose older keys are down-weighted:

    .. math::
        \ell = -\log \frac{e^{q^\top k^+/\tau}}{e^{q^\top k^+/\tau}
        + \sum_{j \in Q} t^{a_j}\, e^{q^\top k_j/\tau}},

    with :math:`a_j` the number of training steps since key :math:`j` was enqueued
    and :math:`t \le 1` the decay. The key is the momentum network's embedding of the
    whole clip; the queue is :class:`gcl.losses.MemoryQueue` (its integer labels store
    the step at which each key was written) and the loss is
    :class:`gcl.losses.InfoNCE` in its MoCo form on the coordinates of
    :func:`decayed_negatives`. With a generator, one backward pass trains the encoder
    to minimise and the generator to maximise the loss. Like the paper, which applies
    the usual spatial augmentations to both views, ``max_shift`` adds a random
    translation (the same for all frames of a clip) to each view.

    Args:
        encoder (nn.Module): Clips :obj:`[N, C, T, H, W]` to features, with
            ``out_channels`` (e.g. :class:`VideoEncoder3D`).
        num_keep (int): Frames kept in the query view.
        head (nn.Module, optional): Projection head (MoCo v2's MLP by default).
        frame_generator (nn.Module, optional): Frame-importance generator; :obj:`None`
            drops frames at random. (default: :obj:`None`)
        queue_size (int, optional): Queued keys. (default: :obj:`4096`)
        momentum (float, optional): Key-network momentum. (default: :obj:`0.99`)
        temperature (float, optional): :math:`\tau`. (default: :obj:`0.2`)
        decay (float, optional): :math:`t \in (0, 1]`; 1 turns the decay off.
            (default: :obj:`0.99`)
        generator (torch.Generator, optional): Randomness of the initial queue, the random
            frame drops and the shifts.
        max_shift (int, optional): Clip-consistent random translation (:func:`random_translate`)
            of both views, in pixels; 0 turns it off. (default: :obj:`0`)
        key_splits (int, optional): Batch-norm statistics of the key network over this many
            random parts of the batch (MoCo's shuffling BN, in one process, see
            :func:`gcl.adapters.batches.encode_in_parts`); ``1``: the whole batch. (default: :obj:`1`)
    """

    queue: MemoryQueue
    step: Tensor

    def __init__(
        self,
        encoder: nn.Module,
        num_keep: int,
        head: nn.Module | None = None,
        frame_generator: nn.Module | None = None,
        queue_size: int = 4096,
        momentum: float = 0.99,
        temperature: float = 0.2,
        decay: float = 0.99,
        generator: torch.Generator | None = None,
        max_shift: int = 0,
        key_splits: int = 1,
    ) -> None:
        super().__init__()
        check_splits(key_splits)
        self.key_splits = key_splits
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be an integer >= 0 (got {max_shift!r})")
        self.max_shift = max_shift
        if isinstance(num_keep, bool) or not isinstance(num_keep, int) or num_keep < 1:
            raise ValueError(f"num_keep must be an integer >= 1 (got {num_keep!r})")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] (got {momentum})")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1] (got {decay})")
        out = getattr(encoder, "out_channels", None)
        if head is None:
            if not isinstance(out, int):
                raise ValueError(f"encoder must expose an integer out_channels (got {out!r})")
            head = projection_head(out)
        dim = getattr(head, "out_channels", None)
        if not isinstance(dim, int):
            raise ValueError(f"head must expose an integer out_channels (got {dim!r})")
        self.encoder = encoder
        self.head = head
        self.frame_generator = frame_generator
        self.key_encoder = momentum_copy(encoder)
        self.key_head = momentum_copy(head)
        self.num_keep = num_keep
        self.momentum = momentum
        self.decay = decay
        self.generator = generator
        # MoCo's form of InfoNCE on raw dot products: decayed_negatives has already
        # normalised the embeddings and appended the age column.
        self.loss = InfoNCE(
            temperature=temperature,
            symmetric=False,
            intra_view_negatives=False,
            cross_view_negatives=False,
            normalize=False,
        )
        self.queue = MemoryQueue(queue_size, dim, store_labels=True)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        device = generator.device if generator is not None else None
        initial = torch.randn(queue_size, dim, generator=generator, device=device)
        self.queue.enqueue(F.normalize(initial, dim=1).cpu(), labels=torch.zeros(queue_size, dtype=torch.long))

    def query_view(self, clips: Tensor) -> Tensor:
        r"""The clip with :math:`T - K` frames dropped (adversarially when a frame
        generator is set)."""
        if self.frame_generator is None:
            return drop_frames(clips, self.num_keep, self.generator).clips
        return adversarial_drop(clips, self.frame_generator(clips), self.num_keep).clips

    @torch.no_grad()
    def momentum_update(self) -> None:
        r""":math:`\xi \leftarrow m\,\xi + (1 - m)\,\theta` for encoder and head."""
        update_momentum(self.encoder, self.key_encoder, self.momentum)
        update_momentum(self.head, self.key_head, self.momentum)

    def forward(self, clips: Tensor | Batch, targets: Tensor | None = None) -> Tensor:
        clips, _ = unpack(clips, targets)
        check_clips(clips, getattr(self.encoder, "in_channels", None))  # before any augmentation moves axes
        if self.training:
            self.momentum_update()
        query_clips = random_translate(clips, self.max_shift, self.generator)
        query = self.head(self.encoder(self.query_view(query_clips)))
        with torch.no_grad():
            key_clips = random_translate(clips, self.max_shift, self.generator)
            key = encode_in_parts(lambda part: self.key_head(self.key_encoder(part)), key_clips,
                                  self.key_splits if self.training else 1, self.generator)
        keys, stamps = self.queue.get()
        assert stamps is not None
        ages = (self.step - stamps).clamp(min=0)
        temperature = float(self.loss.temperature)
        q, k, negatives = decayed_negatives(query, key, keys, ages, self.decay, temperature)
        loss = self.loss(q, k, negatives.to(q.dtype))
        if self.training:
            self.step += 1
            stamp = torch.full((key.size(0),), int(self.step), dtype=torch.long)
            self.queue.enqueue(F.normalize(key.detach(), dim=1), labels=stamp)
        return loss

    @torch.no_grad()
    def embed(self, clips: Tensor) -> Tensor:
        r"""Encoder features of whole clips (no head, no gradient), with the encoder in
        evaluation mode for the call (running batch-norm statistics, left unchanged)."""
        check_clips(clips)
        with evaluation_mode(self.encoder):
            return self.encoder(clips)
