"""The NYC-taxi steps of `rask-bench taxi` on Dask DataFrames (pandas backend), on the threaded
scheduler and on a LocalCluster of worker processes, printing the same JSON lines.

    python taxi_bench.py --data DIR --rows-per-file N [--workers 2]

The CSV files are the ones `rask-bench taxi` generated (run it first). A last step,
`parquet_write_only` of the `pyarrow` engine, times pyarrow's Parquet writer alone writing the
twelve monthly frames, already parsed (by pandas) and in memory, a thread per core: the floor of
Dask's `to_parquet`.
"""
import argparse
import glob
import json
import os
import shutil
import time

import dask
import dask.dataframe as dd
import pandas as pd

PAYMENT_NAMES = [(1, "Credit Card"), (2, "Cash"), (3, "No Charge"), (4, "Dispute"), (5, "Unknown"), (6, "Voided trip")]


REPEAT = 1  # runs of each step; the median time is reported (set from --repeat)
# Steps whose first run took less than SHORT_STEP_SECONDS run at least SHORT_STEP_RUNS times,
# as in rask-bench: on a shared machine one run's noise is a large share of a few milliseconds.
SHORT_STEP_SECONDS = 0.1
SHORT_STEP_RUNS = 15
last_runs = 1


def emit(engine, scenario, seconds, result):
    print(json.dumps({"bench": "taxi", "engine": engine, "scenario": scenario, "seconds": seconds, "runs": last_runs, "result": result}), flush=True)


def as_map(series):
    return {str(k): (None if pd.isna(v) else round(float(v), 6)) for k, v in series.items()}


def timed(run):
    global last_runs
    runs = REPEAT
    seconds = []
    while len(seconds) < runs:
        # The last run's answer goes first, as in rask-bench: a persisted collection still held
        # would let the next run find its results already on the cluster.
        out = None
        started = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - started)
        if len(seconds) == 1 and seconds[0] < SHORT_STEP_SECONDS:
            runs = max(runs, SHORT_STEP_RUNS)
    last_runs = runs
    return sorted(seconds)[len(seconds) // 2], out


def run(engine, csv_glob, parquet_dir):
    df = dd.read_csv(csv_glob, parse_dates=["tpep_pickup_datetime", "tpep_dropoff_datetime"], blocksize="64MiB")
    s, n = timed(lambda: len(df))
    emit(engine, "len", s, n)
    s, r = timed(lambda: df.groupby("passenger_count").trip_distance.mean().compute())
    emit(engine, "groupby_passenger_mean", s, as_map(r.sort_index()))

    def tips():
        tipped = df[(df.tip_amount > 0) & (df.fare_amount > 0)]
        tipped = tipped.assign(
            tip_fraction=tipped.tip_amount / tipped.fare_amount,
            day_of_week=tipped.tpep_pickup_datetime.dt.dayofweek + 1,
            hour=tipped.tpep_pickup_datetime.dt.hour,
        )
        return dask.compute(tipped.groupby("day_of_week").tip_fraction.mean(), tipped.groupby("hour").tip_fraction.mean())

    s, (dow, hour) = timed(tips)
    emit(engine, "tip_fraction_by_dow_hour", s, {"dow": as_map(dow.sort_index()), "hour": as_map(hour.sort_index())})
    names = pd.DataFrame(PAYMENT_NAMES, columns=["payment_type", "payment_name"])
    s, r = timed(lambda: df.merge(names, on="payment_type", how="left").groupby("payment_name").tip_amount.mean().compute())
    emit(engine, "merge_groupby", s, as_map(r))
    s, r = timed(lambda: df.passenger_count.value_counts().compute())
    emit(engine, "value_counts", s, as_map(r))
    target = os.path.join(parquet_dir, engine)
    shutil.rmtree(target, ignore_errors=True)
    s, _ = timed(lambda: df.to_parquet(target, compression="snappy", write_index=False, overwrite=True))
    emit(engine, "to_parquet", s, None)
    s, r = timed(lambda: dd.read_parquet(target, columns=["passenger_count"]).passenger_count.sum().compute())
    emit(engine, "parquet_column_sum", s, float(r))
    run_shuffles(engine, df)


JOIN_ON = ["VendorID", "day", "hour"]


def day_map(pairs):
    """Mean passengers per day as {"YYYY-MM-DD": mean} (the answer of resample_day_mean)."""
    items = pairs.items() if hasattr(pairs, "items") else pairs
    return {str(k)[:10]: (None if v is None or v != v else round(float(v), 6)) for k, v in items}


def first_pickups(times):
    return [str(t)[:19] for t in times]


def run_shuffles(engine, df):
    """The walkthrough's second half: set_index (a full shuffle, p2p on the cluster), one day
    by loc, the first rides, the daily mean and a rolling mean of passengers, and the large
    join, as Dask does each by default."""
    def set_index():
        indexed = df.set_index("tpep_pickup_datetime").persist()
        return indexed, len(indexed)

    s, (indexed, rows) = timed(set_index)
    emit(engine, "set_index", s, rows)
    s, day = timed(lambda: indexed.loc["2015-05-05"].compute())
    emit(engine, "loc_day", s, len(day))
    s, head = timed(lambda: indexed.head(5))
    emit(engine, "head_sorted", s, first_pickups(head.index))
    s, r = timed(lambda: indexed.passenger_count.resample("1D").mean().compute())
    emit(engine, "resample_day_mean", s, day_map(r))
    s, r = timed(lambda: float(indexed.passenger_count.rolling(10).mean().sum().compute()))
    emit(engine, "rolling_10_mean", s, r)
    keyed = df.assign(day=df.tpep_pickup_datetime.dt.floor("D"), hour=df.tpep_pickup_datetime.dt.hour)

    def join_large():
        per_hour = keyed.groupby(JOIN_ON).fare_amount.mean().rename("mean_fare").reset_index()
        return len(keyed.merge(per_hour, on=JOIN_ON, how="inner"))

    s, rows = timed(join_large)
    emit(engine, "join_large", s, rows)


def pyarrow_write_only(csv_glob, parquet_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from concurrent.futures import ThreadPoolExecutor

    frames = [pd.read_csv(f, parse_dates=["tpep_pickup_datetime", "tpep_dropoff_datetime"]) for f in sorted(glob.glob(csv_glob))]
    tables = [pa.Table.from_pandas(f, preserve_index=False) for f in frames]
    target = os.path.join(parquet_dir, "pyarrow-write-only")
    os.makedirs(target, exist_ok=True)

    def write(i):
        pq.write_table(tables[i], os.path.join(target, f"part-{i}.parquet"), compression="snappy")
        return tables[i].num_rows

    def write_all():
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            return sum(pool.map(write, range(len(tables))))

    s, rows = timed(write_all)
    emit("pyarrow", "parquet_write_only", s, rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="target/nyc-taxi")
    parser.add_argument("--rows-per-file", type=int, default=400_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    global REPEAT
    REPEAT = max(1, args.repeat)
    csv_glob = os.path.join(args.data, f"csv-{args.rows_per_file}", "*.csv")
    parquet_dir = os.path.join(args.data, f"parquet-bench-{args.rows_per_file}")
    with dask.config.set(scheduler="threads"):
        run("dask-threads", csv_glob, parquet_dir)
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster):
        run("dask-processes", csv_glob, parquet_dir)
    pyarrow_write_only(csv_glob, parquet_dir)


if __name__ == "__main__":
    main()
