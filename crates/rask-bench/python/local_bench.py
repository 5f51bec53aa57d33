"""Local scheduler baseline: Dask's threaded scheduler on rask's benchmark graphs.

Runs the same task-graph shapes that rask's local benchmarks use, as plain
Dask dict graphs, on ``dask.threaded.get`` with 2 workers, and prints one JSON
object per scenario to stdout:

    {"bench":"local","engine":"dask-threaded","scenario":NAME,"tasks":N,
     "seconds":S,"tasks_per_s":R}

``seconds`` is the best wall time over ``--repeat`` runs of executing the
graph only (graph construction is not timed), except for the two dask.array
scenarios, which time graph building (``build_add_100x1000``) and
optimize-plus-materialize (``lower_add_100x1000``).  Every result is checked;
a wrong answer exits non-zero.  ``dask.threaded.get`` never fuses tasks, so
the graphs run exactly as built.

Run from the repository root:

    scripts/python-env.sh
    .venv/bin/python crates/rask-bench/python/local_bench.py
    .venv/bin/python crates/rask-bench/python/local_bench.py --scenarios tree_100k --repeat 5
    .venv/bin/python crates/rask-bench/python/local_bench.py --big   # adds map_sum_1m
"""

import argparse
import json
import sys
import time
from operator import add

import dask
import dask.array as da
import dask.threaded

NUM_WORKERS = 2


def inc(x):
    return x + 1


def sum_list(xs):
    return sum(xs)


def run(dsk, key):
    return dask.threaded.get(dsk, key, num_workers=NUM_WORKERS)


# --- plain dict graphs: (graph, output key, expected result) -----------------


def tree_graph(n):
    dsk = {("leaf", i): (inc, i) for i in range(n)}
    level, depth = [("leaf", i) for i in range(n)], 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, len(level) - 1, 2):
            key = ("add", depth, j // 2)
            dsk[key] = (add, level[j], level[j + 1])
            nxt.append(key)
        if len(level) % 2:
            nxt.append(level[-1])  # odd item carried up unchanged
        level = nxt
    return dsk, level[0], sum(i + 1 for i in range(n))


def map_sum_graph(n):
    dsk = {("inc", i): (inc, i) for i in range(n)}
    dsk["sum"] = (sum_list, [("inc", i) for i in range(n)])
    return dsk, "sum", sum(i + 1 for i in range(n))


def chain_graph(n):
    dsk = {"x-0": (inc, 0)}
    for i in range(1, n):
        dsk[f"x-{i}"] = (inc, f"x-{i - 1}")
    return dsk, f"x-{n - 1}", n


def graph_scenario(make):
    def bench(repeat):
        best, tasks = float("inf"), 0
        for _ in range(repeat):
            dsk, key, expected = make()  # fresh graph each run, not timed
            tasks = len(dsk)
            t0 = time.perf_counter()
            result = run(dsk, key)
            best = min(best, time.perf_counter() - t0)
            if result != expected:
                sys.exit(f"wrong result: got {result!r}, expected {expected!r}")
        return tasks, best

    return bench


# --- dask.array: graph building and lowering ----------------------------------


def build_add():
    x = da.ones(10**6, chunks=1000)
    for _ in range(100):
        x = x + 1
    return x


def build_add_100x1000(repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        x = build_add()
        best = min(best, time.perf_counter() - t0)
    return len(x.__dask_graph__()), best


def lower_add_100x1000(repeat):
    best, graph, opt = float("inf"), None, None
    for _ in range(repeat):
        x = build_add()  # not timed
        t0 = time.perf_counter()
        (opt,) = dask.optimize(x)
        graph = dict(opt.__dask_graph__())
        best = min(best, time.perf_counter() - t0)
    total = opt.sum().compute(scheduler="threads", num_workers=NUM_WORKERS)
    if total != 10**6 * 101:
        sys.exit(f"wrong result: got {total!r}, expected {10**6 * 101}")
    return len(graph), best


SCENARIOS = {
    "tree_100k": graph_scenario(lambda: tree_graph(100_000)),
    "map_sum_100k": graph_scenario(lambda: map_sum_graph(100_000)),
    "chain_10k": graph_scenario(lambda: chain_graph(10_000)),
    "map_sum_10k": graph_scenario(lambda: map_sum_graph(10_000)),
    "map_sum_1m": graph_scenario(lambda: map_sum_graph(1_000_000)),
    "build_add_100x1000": build_add_100x1000,
    "lower_add_100x1000": lower_add_100x1000,
}
BIG = {"map_sum_1m"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(SCENARIOS))
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; best is reported")
    p.add_argument("--big", action="store_true", help="also run map_sum_1m")
    args = p.parse_args()

    if args.scenarios:
        names = [s for s in args.scenarios.split(",") if s]
        unknown = [s for s in names if s not in SCENARIOS]
        if unknown:
            p.error(f"unknown scenario(s): {', '.join(unknown)}")
    else:
        names = [s for s in SCENARIOS if args.big or s not in BIG]

    with dask.config.set(num_workers=NUM_WORKERS):
        for name in names:
            tasks, seconds = SCENARIOS[name](max(1, args.repeat))
            print(json.dumps({
                "bench": "local",
                "engine": "dask-threaded",
                "scenario": name,
                "tasks": tasks,
                "seconds": round(seconds, 6),
                "tasks_per_s": round(tasks / seconds, 1) if seconds > 0 else None,
            }, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
