"""Distributed baseline: Dask's scheduler and workers on rask's distributed benchmark shapes.

Starts ``dask scheduler`` and two ``dask worker`` processes (1 thread each, no nanny, no
dashboard) on loopback, connects a client, and prints one JSON object per scenario, in the same
form as ``rask-bench distributed --json``:

* ``roundtrip``: sequential ``client.submit(inc, i).result()``, with ``ms_per_call``;
* ``map_sum_100k`` and ``tree_100k``: the same dict graphs as the local benchmark, run with
  ``client.get`` (``tasks_per_s``), and the scheduler process's CPU seconds per task
  (``scheduler_us_per_task``, from /proc).

Run from the repository root (after ``scripts/python-env.sh``):

    .venv/bin/python crates/rask-bench/python/distributed_bench.py [--size 100000] [--calls 1000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from operator import add

from dask.distributed import Client


def inc(x):
    return x + 1


def sum_list(xs):
    return sum(xs)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def map_sum(n):
    dsk = {("inc", i): (inc, i) for i in range(n)}
    dsk["sum"] = (sum_list, [("inc", i) for i in range(n)])
    return dsk, "sum", sum(range(1, n + 1)), n + 1


def tree(leaves):
    dsk = {("leaf", i): (inc, i) for i in range(leaves)}
    level = [("leaf", i) for i in range(leaves)]
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for i in range(0, len(level) - 1, 2):
            key = (f"add-level-{depth}", i // 2)
            dsk[key] = (add, level[i], level[i + 1])
            nxt.append(key)
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return dsk, level[0], sum(range(1, leaves + 1)), len(dsk)


def emit(scenario, **fields):
    print(json.dumps({"bench": "distributed", "engine": "dask", "scenario": scenario, **fields}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--scenarios", default="roundtrip,map_sum_100k,tree_100k")
    args = parser.parse_args()
    bin_dir = os.path.dirname(sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        file = os.path.join(tmp, "scheduler.json")
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scheduler = subprocess.Popen(
            [os.path.join(bin_dir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", file], **quiet)
        workers = [
            subprocess.Popen(
                [os.path.join(bin_dir, "dask"), "worker", "--scheduler-file", file, "--nthreads", "1",
                 "--nworkers", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"], **quiet)
            for _ in range(2)
        ]
        try:
            deadline = time.time() + 60
            while not os.path.exists(file):
                if time.time() > deadline:
                    sys.exit("the dask scheduler did not start")
                time.sleep(0.05)
            client = Client(scheduler_file=file, timeout=60)
            client.wait_for_workers(2, timeout=60)
            for scenario in args.scenarios.split(","):
                if scenario == "roundtrip":
                    client.submit(inc, -1, pure=False).result()
                    started = time.perf_counter()
                    for i in range(args.calls):
                        assert client.submit(inc, i, pure=False).result() == i + 1
                    seconds = time.perf_counter() - started
                    emit(scenario, calls=args.calls, seconds=seconds, ms_per_call=seconds * 1e3 / args.calls)
                elif scenario in ("map_sum_100k", "tree_100k"):
                    dsk, key, expected, tasks = (map_sum if scenario == "map_sum_100k" else tree)(args.size)
                    cpu_before = cpu_seconds(scheduler.pid)
                    started = time.perf_counter()
                    got = client.get(dsk, key)
                    seconds = time.perf_counter() - started
                    cpu = cpu_seconds(scheduler.pid) - cpu_before
                    if got != expected:
                        sys.exit(f"{scenario}: got {got}, expected {expected}")
                    emit(scenario, tasks=tasks, seconds=seconds, tasks_per_s=round(tasks / seconds, 1),
                         scheduler_cpu_seconds=cpu, scheduler_us_per_task=cpu * 1e6 / tasks)
                else:
                    sys.exit(f"unknown scenario {scenario!r}")
            client.close()
        finally:
            for process in workers + [scheduler]:
                process.terminate()
            for process in workers + [scheduler]:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
