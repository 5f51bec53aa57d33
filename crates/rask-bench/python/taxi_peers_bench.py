"""The NYC-taxi steps of `rask-bench taxi` on the single-node engines a user would pick instead
of rask — Polars (the Python package, lazy queries) and DuckDB (SQL over the same CSV files) —
printing the same JSON lines, in the same session as rask and Dask.

    python taxi_peers_bench.py --data DIR --rows-per-file N [--repeat 3]

Each engine is used the way its own documentation recommends: Polars with `scan_csv` and lazy
queries (`sink_parquet` for the Parquet copy), DuckDB with `read_csv` in SQL on all cores
(`COPY ... TO` for the Parquet copy, a sorted table for the index steps, whose row order DuckDB
keeps). `set_index` is a full sort by pickup time kept in memory (neither engine has an index),
`loc_day` a range filter on that sorted data, `head_sorted` its first five rows,
`resample_day_mean` a group-by on the day (Polars: `group_by_dynamic` on the sorted frame), and
`rolling_10_mean` a window of ten rows in pickup order (DuckDB: a window function).
"""
import argparse
import datetime
import os

import duckdb
import polars as pl

import taxi_bench
from taxi_bench import JOIN_ON, PAYMENT_NAMES, day_map, emit, first_pickups, timed

PICKUP = "tpep_pickup_datetime"
DAY = (datetime.datetime(2015, 5, 5), datetime.datetime(2015, 5, 6))


def as_map(frame, key, value):
    return {str(k): (None if v is None else round(float(v), 6)) for k, v in zip(frame[key], frame[value])}


def run_polars(csv_glob, parquet_dir):
    engine = "polars-py"

    def scan():
        return pl.scan_csv(csv_glob, try_parse_dates=True)

    s, n = timed(lambda: scan().select(pl.len()).collect().item())
    emit(engine, "len", s, n)
    s, r = timed(lambda: scan().group_by("passenger_count").agg(pl.col("trip_distance").mean()).sort("passenger_count").collect())
    emit(engine, "groupby_passenger_mean", s, as_map(r, "passenger_count", "trip_distance"))

    def tips():
        tipped = scan().filter((pl.col("tip_amount") > 0) & (pl.col("fare_amount") > 0)).with_columns(
            tip_fraction=pl.col("tip_amount") / pl.col("fare_amount"),
            day_of_week=pl.col(PICKUP).dt.weekday(),
            hour=pl.col(PICKUP).dt.hour(),
        )
        return pl.collect_all([
            tipped.group_by("day_of_week").agg(pl.col("tip_fraction").mean()).sort("day_of_week"),
            tipped.group_by("hour").agg(pl.col("tip_fraction").mean()).sort("hour"),
        ])

    s, (dow, hour) = timed(tips)
    emit(engine, "tip_fraction_by_dow_hour", s, {"dow": as_map(dow, "day_of_week", "tip_fraction"), "hour": as_map(hour, "hour", "tip_fraction")})
    names = pl.DataFrame(PAYMENT_NAMES, schema=["payment_type", "payment_name"], orient="row")
    s, r = timed(lambda: scan().join(names.lazy(), on="payment_type", how="left").group_by("payment_name").agg(pl.col("tip_amount").mean()).collect())
    emit(engine, "merge_groupby", s, as_map(r, "payment_name", "tip_amount"))
    s, r = timed(lambda: scan().group_by("passenger_count").agg(pl.len().alias("count")).collect())
    emit(engine, "value_counts", s, as_map(r, "passenger_count", "count"))
    target = os.path.join(parquet_dir, "polars-py.parquet")
    s, _ = timed(lambda: scan().sink_parquet(target, compression="snappy"))
    emit(engine, "to_parquet", s, None)
    s, r = timed(lambda: pl.scan_parquet(target).select(pl.col("passenger_count").sum()).collect().item())
    emit(engine, "parquet_column_sum", s, float(r))
    s, ordered = timed(lambda: scan().sort(PICKUP, maintain_order=True).collect())
    emit(engine, "set_index", s, ordered.height)
    s, day = timed(lambda: ordered.filter(pl.col(PICKUP).is_between(DAY[0], DAY[1], closed="left")))
    emit(engine, "loc_day", s, day.height)
    s, head = timed(lambda: ordered.head(5))
    emit(engine, "head_sorted", s, first_pickups(head[PICKUP]))
    s, r = timed(lambda: ordered.group_by_dynamic(PICKUP, every="1d").agg(pl.col("passenger_count").mean()))
    emit(engine, "resample_day_mean", s, day_map(zip(r[PICKUP], r["passenger_count"])))
    s, r = timed(lambda: ordered.select(pl.col("passenger_count").rolling_mean(10).sum()).item())
    emit(engine, "rolling_10_mean", s, float(r))

    def join_large():
        keyed = scan().with_columns(day=pl.col(PICKUP).dt.date(), hour=pl.col(PICKUP).dt.hour())
        per_hour = keyed.group_by(JOIN_ON).agg(pl.col("fare_amount").mean().alias("mean_fare"))
        return keyed.join(per_hour, on=JOIN_ON, how="inner").select(pl.len()).collect().item()

    s, rows = timed(join_large)
    emit(engine, "join_large", s, rows)


def run_duckdb(csv_glob, parquet_dir):
    engine = "duckdb"
    con = duckdb.connect()
    csv = f"read_csv('{csv_glob}')"

    def one(sql):
        return con.sql(sql).fetchall()

    s, r = timed(lambda: one(f"SELECT count(*) FROM {csv}")[0][0])
    emit(engine, "len", s, r)
    s, r = timed(lambda: one(f"SELECT passenger_count, avg(trip_distance) FROM {csv} GROUP BY ALL ORDER BY 1"))
    emit(engine, "groupby_passenger_mean", s, {str(k): round(v, 6) for k, v in r})
    tipped = f"(SELECT tip_amount / fare_amount AS tip_fraction, isodow({PICKUP}) AS day_of_week, hour({PICKUP}) AS hour FROM {csv} WHERE tip_amount > 0 AND fare_amount > 0)"

    def tips():
        con.sql(f"CREATE OR REPLACE TEMP TABLE tipped AS SELECT * FROM {tipped}")
        return (one("SELECT day_of_week, avg(tip_fraction) FROM tipped GROUP BY ALL ORDER BY 1"),
                one("SELECT hour, avg(tip_fraction) FROM tipped GROUP BY ALL ORDER BY 1"))

    s, (dow, hour) = timed(tips)
    emit(engine, "tip_fraction_by_dow_hour", s, {"dow": {str(k): round(v, 6) for k, v in dow}, "hour": {str(k): round(v, 6) for k, v in hour}})
    con.sql("CREATE OR REPLACE TABLE names (payment_type BIGINT, payment_name VARCHAR)")
    con.executemany("INSERT INTO names VALUES (?, ?)", PAYMENT_NAMES)
    s, r = timed(lambda: one(f"SELECT payment_name, avg(tip_amount) FROM {csv} LEFT JOIN names USING (payment_type) GROUP BY ALL"))
    emit(engine, "merge_groupby", s, {str(k): round(v, 6) for k, v in r})
    s, r = timed(lambda: one(f"SELECT passenger_count, count(*) FROM {csv} GROUP BY ALL"))
    emit(engine, "value_counts", s, {str(k): v for k, v in r})
    target = os.path.join(parquet_dir, "duckdb.parquet")
    s, _ = timed(lambda: con.sql(f"COPY (SELECT * FROM {csv}) TO '{target}' (FORMAT parquet, COMPRESSION snappy)"))
    emit(engine, "to_parquet", s, None)
    s, r = timed(lambda: one(f"SELECT sum(passenger_count) FROM '{target}'")[0][0])
    emit(engine, "parquet_column_sum", s, float(r))

    def set_index():
        con.sql(f"CREATE OR REPLACE TABLE sorted AS SELECT * FROM {csv} ORDER BY {PICKUP}")
        return one("SELECT count(*) FROM sorted")[0][0]

    s, rows = timed(set_index)
    emit(engine, "set_index", s, rows)
    s, day = timed(lambda: con.sql(f"SELECT * FROM sorted WHERE {PICKUP} >= '2015-05-05' AND {PICKUP} < '2015-05-06'").to_arrow_table())
    emit(engine, "loc_day", s, day.num_rows)
    s, head = timed(lambda: one(f"SELECT {PICKUP} FROM sorted LIMIT 5"))
    emit(engine, "head_sorted", s, first_pickups([t for (t,) in head]))
    s, r = timed(lambda: one(f"SELECT date_trunc('day', {PICKUP}) AS d, avg(passenger_count) FROM sorted GROUP BY d ORDER BY d"))
    emit(engine, "resample_day_mean", s, day_map(r))
    window = f"WINDOW w AS (ORDER BY {PICKUP} ROWS BETWEEN 9 PRECEDING AND CURRENT ROW)"
    rolling = f"SELECT sum(m) FROM (SELECT CASE WHEN count(passenger_count) OVER w = 10 THEN avg(passenger_count) OVER w END AS m FROM sorted {window})"
    s, r = timed(lambda: one(rolling)[0][0])
    emit(engine, "rolling_10_mean", s, float(r))
    keyed = f"(SELECT *, CAST({PICKUP} AS DATE) AS day, hour({PICKUP}) AS hour FROM {csv})"
    join = f"WITH k AS {keyed}, p AS (SELECT VendorID, day, hour, avg(fare_amount) AS mean_fare FROM k GROUP BY ALL) SELECT count(*) FROM k JOIN p USING (VendorID, day, hour)"
    s, rows = timed(lambda: one(join)[0][0])
    emit(engine, "join_large", s, rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="target/nyc-taxi")
    parser.add_argument("--rows-per-file", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--engines", default="polars-py,duckdb")
    args = parser.parse_args()
    taxi_bench.REPEAT = max(1, args.repeat)
    csv_glob = os.path.join(args.data, f"csv-{args.rows_per_file}", "*.csv")
    parquet_dir = os.path.join(args.data, f"parquet-bench-{args.rows_per_file}")
    os.makedirs(parquet_dir, exist_ok=True)
    for engine in args.engines.split(","):
        {"polars-py": run_polars, "duckdb": run_duckdb}[engine](csv_glob, parquet_dir)


if __name__ == "__main__":
    main()
