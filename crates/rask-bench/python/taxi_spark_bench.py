"""The NYC-taxi steps of `rask-bench taxi` on PySpark in local mode on this machine's OpenJDK —
the seed's own "Dask vs Spark" comparison — printing the same JSON lines.

    python taxi_spark_bench.py --data DIR --rows-per-file N [--repeat 3]

Set up the way Spark's users would: `local[*]`, the CSV reader given the schema (no inference
pass), adaptive query execution on (Spark's default since 3.2, set explicitly), shuffle
partitions as many as the cores times a small factor, the driver's memory raised for the
collected results. `set_index` is `orderBy` of the pickup time, cached and counted (Spark has
no index); `loc_day` a range filter on that cached sorted frame, `head_sorted` its first five
rows; `resample_day_mean` a group-by on the truncated day, `rolling_10_mean` a window of ten
rows ordered by pickup time (one partition: Spark has no ordered partitions to borrow rows
from); `join_large` the join on (VendorID, day, hour) with the per-triple frame, counted.
"""
import argparse
import os

from pyspark.sql import SparkSession, Window, functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampNTZType

import taxi_bench
from taxi_bench import JOIN_ON, PAYMENT_NAMES, day_map, emit, first_pickups, timed

PICKUP = "tpep_pickup_datetime"
LONGS = {"VendorID", "passenger_count", "RateCodeID", "payment_type"}
TIMES = {"tpep_pickup_datetime", "tpep_dropoff_datetime"}
HEADER = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount"


def schema():
    def kind(name):
        if name in LONGS:
            return LongType()
        if name in TIMES:
            return TimestampNTZType()
        if name == "store_and_fwd_flag":
            return StringType()
        return DoubleType()

    return StructType([StructField(name, kind(name)) for name in HEADER.split(",")])


def as_map(rows):
    return {str(r[0]): (None if r[1] is None else round(float(r[1]), 6)) for r in rows}


def run(spark, csv_glob, parquet_dir):
    engine = "spark"
    df = spark.read.option("timestampNTZFormat", "yyyy-MM-dd HH:mm:ss").csv(csv_glob, header=True, schema=schema())
    s, n = timed(lambda: df.count())
    emit(engine, "len", s, n)
    s, r = timed(lambda: df.groupBy("passenger_count").agg(F.mean("trip_distance")).orderBy("passenger_count").collect())
    emit(engine, "groupby_passenger_mean", s, as_map(r))
    tipped = df.where((F.col("tip_amount") > 0) & (F.col("fare_amount") > 0)).select(
        (F.col("tip_amount") / F.col("fare_amount")).alias("tip_fraction"),
        F.dayofweek(PICKUP).alias("day_of_week"),
        F.hour(PICKUP).alias("hour"),
    )

    def tips():
        return (tipped.groupBy("day_of_week").agg(F.mean("tip_fraction")).orderBy("day_of_week").collect(),
                tipped.groupBy("hour").agg(F.mean("tip_fraction")).orderBy("hour").collect())

    s, (dow, hour) = timed(tips)
    emit(engine, "tip_fraction_by_dow_hour", s, {"dow": as_map(dow), "hour": as_map(hour)})
    names = spark.createDataFrame(PAYMENT_NAMES, ["payment_type", "payment_name"])
    s, r = timed(lambda: df.join(F.broadcast(names), "payment_type", "left").groupBy("payment_name").agg(F.mean("tip_amount")).collect())
    emit(engine, "merge_groupby", s, as_map(r))
    s, r = timed(lambda: df.groupBy("passenger_count").count().collect())
    emit(engine, "value_counts", s, as_map(r))
    target = os.path.join(parquet_dir, "spark")
    s, _ = timed(lambda: df.write.mode("overwrite").option("compression", "snappy").parquet(target))
    emit(engine, "to_parquet", s, None)
    s, r = timed(lambda: spark.read.parquet(target).agg(F.sum("passenger_count")).collect()[0][0])
    emit(engine, "parquet_column_sum", s, float(r))
    state = {}

    def set_index():
        if "sorted" in state:
            state.pop("sorted").unpersist(blocking=True)
        state["sorted"] = df.orderBy(PICKUP).cache()
        return state["sorted"].count()

    s, rows = timed(set_index)
    emit(engine, "set_index", s, rows)
    ordered = state["sorted"]
    s, day = timed(lambda: ordered.where((F.col(PICKUP) >= F.lit("2015-05-05").cast("timestamp_ntz")) & (F.col(PICKUP) < F.lit("2015-05-06").cast("timestamp_ntz"))).collect())
    emit(engine, "loc_day", s, len(day))
    s, head = timed(lambda: ordered.select(PICKUP).head(5))
    emit(engine, "head_sorted", s, first_pickups([r[0] for r in head]))
    s, r = timed(lambda: ordered.groupBy(F.date_trunc("day", PICKUP).alias("d")).agg(F.mean("passenger_count")).orderBy("d").collect())
    emit(engine, "resample_day_mean", s, day_map([(row[0], row[1]) for row in r]))
    ten = Window.orderBy(PICKUP).rowsBetween(-9, 0)
    rolling = F.when(F.count("passenger_count").over(ten) == 10, F.avg("passenger_count").over(ten))
    s, r = timed(lambda: ordered.select(rolling.alias("m")).agg(F.sum("m")).collect()[0][0])
    emit(engine, "rolling_10_mean", s, float(r))
    keyed = df.withColumn("day", F.to_date(PICKUP)).withColumn("hour", F.hour(PICKUP))

    def join_large():
        per_hour = keyed.groupBy(*JOIN_ON).agg(F.mean("fare_amount").alias("mean_fare"))
        return keyed.join(per_hour, JOIN_ON, "inner").count()

    s, rows = timed(join_large)
    emit(engine, "join_large", s, rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="target/nyc-taxi")
    parser.add_argument("--rows-per-file", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    taxi_bench.REPEAT = max(1, args.repeat)
    csv_glob = os.path.join(args.data, f"csv-{args.rows_per_file}", "*.csv")
    parquet_dir = os.path.join(args.data, f"parquet-bench-{args.rows_per_file}")
    cores = os.cpu_count() or 2
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("rask-taxi-comparison")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(cores * 4))
        .config("spark.driver.memory", "8g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        run(spark, csv_glob, parquet_dir)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
