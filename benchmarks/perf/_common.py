r"""Shared pieces of the speed and memory benchmarks in this folder.

Every script measures on one CPU thread (``--threads``, default 1): the machine
these numbers are taken on is shared, and intra-op threads on an oversubscribed
machine make timings swing by orders of magnitude rather than speed anything up.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "datasets"


def use_shared_data() -> None:
    r"""Point :func:`gcl.data.load_dataset` at the benchmark data root (NCI1, DD, COLLAB ...)."""
    if "GCL_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["GCL_DATA"] = str(SHARED_DATA)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    r"""``median [min–max]`` in milliseconds."""
    return f"{1e3 * median(values):.1f} [{1e3 * min(values):.1f}–{1e3 * max(values):.1f}]"


def peak_rss_bytes() -> int:
    r"""Peak resident set size of this process so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def environment(threads: int, device: str = "cpu") -> dict[str, Any]:
    r"""Versions, machine and load, recorded next to every result (and the GPU, for a CUDA ``device``)."""
    import torch
    import torch_geometric

    import gcl

    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    gpu = {}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        gpu = {"device": device, "gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1),
               "cuda": torch.version.cuda}
    return {
        **gpu,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "gcl": gcl.__version__,
        "commit": commit,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def write_json(path: str | os.PathLike[str] | None, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2)
    if path is None:
        print(text)
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    print(f"wrote {path}", file=sys.stderr)


def tensor_bytes(obj: Any) -> int:
    r"""Bytes held by the tensors of a PyG storage / dict / list (each storage counted once)."""
    import torch

    seen: set[int] = set()
    total = 0

    def visit(value: Any) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            key = storage.data_ptr()
            if key not in seen:
                seen.add(key)
                total += storage.nbytes()
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif hasattr(value, "to_dict"):
            visit(value.to_dict())

    visit(obj)
    return total
