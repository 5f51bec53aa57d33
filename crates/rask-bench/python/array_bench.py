"""The steps of `rask-bench array` on dask.array (threaded scheduler), on dask.distributed (a
LocalCluster of worker processes, one thread each: what `rask-cluster` is) and on plain NumPy,
printing the same JSON lines.

    python array_bench.py [--images 400] [--size 1000] [--engines dask,dask-distributed,numpy]
                          [--workers 2] [--repeat 3]

Run the `numpy` engine with OPENBLAS_NUM_THREADS=1 (scripts/bench-array.sh does) to compare
with NumPy on one thread. The FFT step runs once, and on dask.distributed every step that
persists (a repeat would find the persisted keys still held); the others `--repeat` times
(a step with a run under 0.1 s at least 15 times), reporting the median; each run starts after
the last one's answer is dropped, as in rask-bench.
"""
import argparse
import json
import time

import numpy as np

REPEAT = 1
SHORT_STEP_SECONDS = 0.1
SHORT_STEP_RUNS = 15
last_runs = 1


def emit(engine, scenario, seconds, result, **extra):
    line = {"bench": "array", "engine": engine, "scenario": scenario, "seconds": seconds, "runs": last_runs, "result": result}
    line.update(extra)
    print(json.dumps(line), flush=True)


def timed(run, once=False):
    global last_runs
    runs = 1 if once else REPEAT
    seconds = []
    out = None
    while len(seconds) < runs:
        # The last run's answer goes first, so a run reuses the memory the one before it freed
        # (as rask-bench does): fresh pages are several times slower to touch in a VM.
        out = None
        started = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - started)
        # Any run under the bound makes it a short step (as rask-bench does).
        if not once and min(seconds) < SHORT_STEP_SECONDS:
            runs = max(runs, SHORT_STEP_RUNS)
    last_runs = runs
    seconds.sort()
    return seconds[runs // 2], out


def recenter(block):
    return np.roll(block, (3, -2), axis=(1, 2))


def dask_steps(images, size, scale, engine="dask"):
    import dask
    import dask.array as da

    distributed = engine == "dask-distributed"
    if distributed:
        from distributed import wait
    else:
        dask.config.set(scheduler="threads")

    def persisted(x):
        x = x.persist()
        if distributed:
            wait(x)  # persist returns at once on a cluster
        return x

    rng = da.random.default_rng(2017)
    stack = rng.integers(0, 256, size=(images, size, size), chunks=(1, size, size), dtype=np.uint8)
    # Threaded: the median of the repeats, as rask's local step (a fresh process's first run
    # can be several times slower on this machine).
    seconds, stack = timed(lambda: persisted(stack.rechunk((min(20, images), size, size))), once=distributed)
    emit(engine, "stack_rechunk_persist", seconds, int(stack.nbytes))
    seconds, mean = timed(lambda: stack.mean(axis=0).compute())
    emit(engine, "mean_axis0", seconds, float(mean.mean()))
    seconds, brightness = timed(lambda: stack.mean(axis=(1, 2)).compute())
    emit(engine, "mean_axis12", seconds, float(brightness[0]))
    seconds, rec = timed(lambda: stack.map_blocks(recenter, dtype=np.uint8).mean(axis=0).compute())
    emit(engine, "recenter_mean", seconds, float(rec[3, 0]))

    def fft_power():
        power = persisted(abs(da.fft.fft(stack.rechunk((images, min(10, size), min(10, size))), axis=0) ** 2).astype(np.float32))
        return power[:, 0, 0].compute()

    seconds, corner = timed(fft_power, once=True)
    emit(engine, "rechunk_fft_power", seconds, float(corner.astype(np.float64).sum()))
    del stack

    n = max(1, round(8000 * scale ** 0.5))
    c = max(1, round(1000 * scale ** 0.5))
    seconds, std = timed(lambda: da.random.default_rng(1).random((n, n), chunks=(c, c)).std().compute())
    emit(engine, "random_std", seconds, float(std))
    rows = max(1, round(1_000_000 * scale))
    step = max(1, round(100_000 * scale))

    def gram():
        x = da.random.default_rng(2).random((rows, 20), chunks=(step, 20))
        return (x.T @ x).compute()

    seconds, g = timed(gram)
    emit(engine, "gram_xtx", seconds, float(g[0, 0]))

    tall = max(50, round(200_000 * scale))
    tall_chunk = max(50, round(20_000 * scale))

    def tsqr():
        x = da.random.default_rng(3).random((tall, 50), chunks=(tall_chunk, 50))
        u, s, v = da.linalg.svd(x)
        return dask.compute(u, s, v)[1]

    seconds, s = timed(tsqr)
    emit(engine, "tsqr_svd", seconds, float(s[0]))
    # Four blocks per side (Dask's LU wants square blocks).
    mc = max(1, round(1000 * scale ** 0.5))
    m = 4 * mc

    def solve():
        a = da.random.default_rng(4).random((m, m), chunks=(mc, mc)) + m * da.eye(m, chunks=mc)
        b = da.random.default_rng(5).random((m, 1), chunks=(mc, 1))
        return da.linalg.solve(a, b).compute()

    seconds, x = timed(solve)
    emit(engine, "solve", seconds, float(x[0, 0]))


def numpy_steps(images, size, scale):
    rng = np.random.default_rng(2017)
    stack = rng.integers(0, 256, size=(images, size, size), dtype=np.uint8)
    emit("numpy", "stack_rechunk_persist", 0.0, int(stack.nbytes))
    seconds, mean = timed(lambda: stack.mean(axis=0))
    emit("numpy", "mean_axis0", seconds, float(mean.mean()))
    seconds, brightness = timed(lambda: stack.mean(axis=(1, 2)))
    emit("numpy", "mean_axis12", seconds, float(brightness[0]))
    seconds, rec = timed(lambda: recenter(stack).mean(axis=0))
    emit("numpy", "recenter_mean", seconds, float(rec[3, 0]))
    seconds, corner = timed(lambda: (np.abs(np.fft.fft(stack, axis=0) ** 2).astype(np.float32))[:, 0, 0], once=True)
    emit("numpy", "rechunk_fft_power", seconds, float(corner.astype(np.float64).sum()))
    del stack
    n = max(1, round(8000 * scale ** 0.5))
    seconds, std = timed(lambda: np.random.default_rng(1).random((n, n)).std())
    emit("numpy", "random_std", seconds, float(std))
    rows = max(1, round(1_000_000 * scale))

    def gram():
        x = np.random.default_rng(2).random((rows, 20))
        return x.T @ x

    seconds, g = timed(gram)
    emit("numpy", "gram_xtx", seconds, float(g[0, 0]))
    tall = max(50, round(200_000 * scale))
    seconds, s = timed(lambda: np.linalg.svd(np.random.default_rng(3).random((tall, 50)), full_matrices=False)[1])
    emit("numpy", "tsqr_svd", seconds, float(s[0]))
    m = 4 * max(1, round(1000 * scale ** 0.5))

    def solve():
        a = np.random.default_rng(4).random((m, m)) + m * np.eye(m)
        b = np.random.default_rng(5).random((m, 1))
        return np.linalg.solve(a, b)

    seconds, x = timed(solve)
    emit("numpy", "solve", seconds, float(x[0, 0]))
    elements = max(8, round((64 << 20) * scale))
    data = (np.arange(elements) % 1000).astype(np.float64)
    seconds, total = timed(lambda: data.sum())
    emit("numpy", "memory_bandwidth", seconds, float(total), sum_gb_per_s=elements * 8 / seconds / 1e9)


def graph_steps():
    # The same graphs as local_bench.py's build/lower scenarios (which this reuses): ones(10**6)
    # in 1,000 chunks, then 100 times x + 1; built, then optimized and materialized.
    from local_bench import build_add_100x1000, lower_add_100x1000

    tasks, seconds = build_add_100x1000(15)
    emit("dask", "build_elementwise_100x1000", seconds, tasks)
    tasks, seconds = lower_add_100x1000(5)
    emit("dask", "lower_elementwise_100x1000", seconds, tasks)


def main():
    global REPEAT
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--engines", default="dask,numpy")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    REPEAT = max(1, args.repeat)
    for engine in args.engines.split(","):
        if engine == "dask":
            dask_steps(args.images, args.size, args.scale)
            graph_steps()
        elif engine == "dask-distributed":
            from distributed import Client, LocalCluster

            with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster):
                dask_steps(args.images, args.size, args.scale, engine)
        elif engine == "numpy":
            numpy_steps(args.images, args.size, args.scale)
        else:
            raise SystemExit(f"unknown engine {engine}: use dask, dask-distributed or numpy")


if __name__ == "__main__":
    main()
