r"""One way to seed everything."""

from __future__ import annotations

import numbers
import os

import torch


def check_seed(seed: object) -> None:
    r"""Refuses a seed outside :math:`[0, 2^{32})`: torch's CPU generator keeps the low 32 bits
    (seeds 0 and :math:`2^{32}` draw alike) and NumPy's take 32."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32) (got {seed!r})")


def seed_everything(seed: int, *, deterministic: bool = False) -> torch.Generator:
    r"""Seed torch's global generators (CPU and CUDA) and return a fresh
    :class:`torch.Generator` seeded with ``seed`` for data shuffling.

    gcl's library code draws randomness from torch only, so this is all that is
    needed for a run to repeat exactly on CPU.

    Args:
        seed (int): The seed, in :math:`[0, 2^{32})`.
        deterministic (bool): Also ask torch for deterministic kernels (slower
            on GPU; CPU kernels used by gcl are deterministic already).
            (default: :obj:`False`)
    """
    check_seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
