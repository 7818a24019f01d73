r"""First and second load times of datasets with an empty processed cache.

Each dataset loads twice in a fresh process with ``GCL_CACHE`` pointing to an
empty temporary folder: the first load unpacks archives, checks the raw files
and builds the processed cache; the second reads that cache. Wall-clock seconds
(the loads read files, so CPU time would leave out the disk).

Usage::

    GCL_DATA=/path/to/root python benchmarks/perf/first_load.py COLLAB DD REDDIT-BINARY \
        --json /tmp/gcl-perf/first-load.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_json

CHILD = """
import json, sys, time
from gcl.data import load_dataset
times = []
for _ in range(2):
    started = time.perf_counter()
    data = load_dataset(sys.argv[1])
    times.append(time.perf_counter() - started)
print(json.dumps({"first": times[0], "second": times[1], "graphs": len(data)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    results = {}
    for name in args.datasets:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "GCL_CACHE": cache}
            out = subprocess.run([sys.executable, "-c", CHILD, name], env=env, check=True,
                                 capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
            print(name, results[name], flush=True)
    write_json(args.json, {"environment": environment(threads=1), "datasets": results})


if __name__ == "__main__":
    main()
