//! DataFrames on a cluster: the stock `rask worker` binary runs DataFrame tasks (they are
//! built-in registered functions), partitions cross processes as Arrow IPC, and results are
//! identical to the local scheduler's.

mod common;

use std::sync::Arc;

use common::{eventually, json, within};
use rask::dataframe::polars_adapter as pl;
use rask::dataframe::prelude::*;
use rask::{ComputeExt, LocalCluster, LocalScheduler};

fn taxi_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    rask::datasets::write_taxi_csvs(dir.path(), 3_000).unwrap();
    dir
}

/// The taxi files in small blocks: several partitions per file, so partials and shuffle
/// pieces move between workers.
fn small_blocks(dir: &tempfile::TempDir) -> DataFrame {
    let pattern = format!("{}/*.csv", dir.path().display());
    read_csv(
        &pattern,
        CsvOptions::default().blocksize(Some(200_000)).parse_dates(["tpep_pickup_datetime"]),
    )
    .unwrap()
}

#[test]
fn the_taxi_analysis_gives_identical_results_on_worker_processes() {
    within(240, || {
        let dir = taxi_dir();
        let df = small_blocks(&dir);
        assert!(df.npartitions() > 12);
        let names = pl::payment_names_frame(&rask::datasets::PAYMENT_NAMES).unwrap();
        let by_passengers = df
            .group_by(["passenger_count"])
            .agg([agg::mean("trip_distance"), agg::size()])
            .unwrap();
        let tips = df
            .join_frame(&names, &["payment_type"], &["payment_type"], JoinHow::Left)
            .unwrap()
            .with_column(col("tpep_pickup_datetime").dt().hour().alias("hour"))
            .unwrap()
            .group_by(["payment_name", "hour"])
            .split_out(3)
            .agg([agg::mean("tip_amount"), agg::std("fare_amount")])
            .unwrap();
        let counts = df.value_counts("passenger_count").unwrap();
        let local = LocalScheduler::new();
        let expected = (
            by_passengers.compute_with(&local).unwrap(),
            pl::sort_by(
                &tips.compute_with(&local).unwrap(),
                &["payment_name".into(), "hour".into()],
            )
            .unwrap(),
            counts.compute_with(&local).unwrap(),
            df.len().unwrap().compute_with(&local).unwrap(),
        );

        let cluster = LocalCluster::processes(env!("CARGO_BIN_EXE_rask"), 2, 1).unwrap();
        let client = cluster.client().unwrap();
        let on_cluster = (
            by_passengers.compute_with(&client).unwrap(),
            pl::sort_by(
                &tips.compute_with(&client).unwrap(),
                &["payment_name".into(), "hour".into()],
            )
            .unwrap(),
            counts.compute_with(&client).unwrap(),
            df.len().unwrap().compute_with(&client).unwrap(),
        );
        // Equal but for float rounding: partitions arrive in other chunkings, and Polars sums
        // chunk by chunk.
        assert!(
            pl::frames_close(&expected.0, &on_cluster.0, 1e-9),
            "{}\n{}",
            expected.0,
            on_cluster.0
        );
        assert!(
            pl::frames_close(&expected.1, &on_cluster.1, 1e-9),
            "{}\n{}",
            expected.1,
            on_cluster.1
        );
        assert!(pl::frames_equal(&expected.2, &on_cluster.2), "{}\n{}", expected.2, on_cluster.2);
        assert_eq!(expected.3, on_cluster.3);
        assert_eq!(expected.3, 36_000);

        // Eager operations use the default scheduler: the client once installed.
        rask::set_default_scheduler(Some(Arc::new(client)));
        let head = df.head(5);
        let written =
            df.to_parquet(dir.path().join("parquet").to_str().unwrap(), WriteOptions::default());
        rask::set_default_scheduler(None);
        assert_eq!(pl::height(&head.unwrap()), 5);
        assert_eq!(written.unwrap(), 36_000);
        let back =
            read_parquet(dir.path().join("parquet").to_str().unwrap(), Default::default()).unwrap();
        assert_eq!(back.len().unwrap().compute().unwrap(), 36_000);
    });
}

#[test]
fn persist_on_a_cluster_keeps_the_partitions_on_the_workers_until_the_frame_goes() {
    within(240, || {
        let dir = taxi_dir();
        let pattern = format!("{}/*.csv", dir.path().display());
        let df = read_csv(&pattern, CsvOptions::default().blocksize(Some(200_000)))
            .unwrap()
            .filter(col("passenger_count").gt(lit(0)))
            .unwrap();
        let parts = df.npartitions() as u64;
        let expected = df
            .value_counts("passenger_count")
            .unwrap()
            .compute_with(&LocalScheduler::new())
            .unwrap();

        let dashboard = common::free_loopback_address();
        let cluster = LocalCluster::processes_with(
            env!("CARGO_BIN_EXE_rask"),
            2,
            1,
            &["--dashboard-address", &dashboard],
        )
        .unwrap();
        let client = cluster.client().unwrap();
        let results_on_workers = || -> u64 {
            if std::net::TcpStream::connect(&dashboard).is_err() {
                return u64::MAX; // not serving yet
            }
            let workers = json(&dashboard, "/api/workers");
            workers.as_array().unwrap().iter().map(|w| w["results"].as_u64().unwrap()).sum()
        };

        let persisted = df.persist_with(&client).unwrap();
        // The frame reads results held on the cluster: no task of it computes or carries data.
        {
            let layers = rask_core::Collection::graph(&persisted).layers();
            assert!(
                layers.iter().all(|l| matches!(l.kind(), rask_core::LayerKind::External(_))),
                "only references to the cluster's results"
            );
        }
        eventually(60, "the partitions to be held by the workers", || {
            results_on_workers() == parts
        });

        // Later computations start from them, and give the local answer.
        let counts = persisted.value_counts("passenger_count").unwrap();
        assert!(pl::frames_close(&counts.compute_with(&client).unwrap(), &expected, 1e-9));
        let more =
            persisted.with_column((col("tip_amount") * lit(2.0)).alias("double_tip")).unwrap();
        let total = more.agg([agg::sum("double_tip")]).unwrap().compute_with(&client).unwrap();
        let local_total =
            df.agg([agg::sum("tip_amount")]).unwrap().compute_with(&LocalScheduler::new()).unwrap();
        let (a, b) = (
            pl::scalar_f64(&total, "double_tip").unwrap(),
            pl::scalar_f64(&local_total, "tip_amount").unwrap(),
        );
        assert!((a - 2.0 * b).abs() <= 1e-9 * b.abs(), "{a} vs 2 × {b}");

        // Dropping the frames releases the partitions on the workers.
        drop((persisted, counts, more));
        eventually(60, "the workers to free the partitions", || results_on_workers() == 0);
    });
}

#[test]
fn shuffles_sorts_and_large_joins_give_identical_results_on_worker_processes() {
    within(240, || {
        let dir = taxi_dir();
        let df = small_blocks(&dir);
        let by_time = df.set_index("tpep_pickup_datetime").unwrap();
        let by_fare = df
            .sort_values_with(
                &["fare_amount", "trip_distance"],
                SortOptions::default().descending([true, false]),
            )
            .unwrap();
        // A second large frame: one row per (vendor, passengers), in several partitions.
        let per_pair = df
            .group_by(["VendorID", "passenger_count"])
            .agg([agg::mean("tip_amount").alias("mean_tip")])
            .unwrap()
            .repartition(3)
            .unwrap();
        let joined = df
            .select([col("VendorID"), col("passenger_count"), col("fare_amount")])
            .unwrap()
            .join_with(
                &per_pair,
                &["VendorID", "passenger_count"],
                &["VendorID", "passenger_count"],
                JoinHow::Inner,
                JoinStrategy::Shuffle,
            )
            .unwrap();
        let key: Vec<String> =
            ["VendorID", "passenger_count", "fare_amount", "mean_tip"].map(String::from).into();
        let local = LocalScheduler::new();
        let expected = (
            by_time.compute_with(&local).unwrap(),
            by_fare.compute_with(&local).unwrap(),
            pl::sort_by(&joined.compute_with(&local).unwrap(), &key).unwrap(),
        );
        let cluster = LocalCluster::processes(env!("CARGO_BIN_EXE_rask"), 2, 1).unwrap();
        let client = cluster.client().unwrap();
        let on_cluster = (
            by_time.compute_with(&client).unwrap(),
            by_fare.compute_with(&client).unwrap(),
            pl::sort_by(&joined.compute_with(&client).unwrap(), &key).unwrap(),
        );
        // Sorts are stable: the same rows in the same order, whichever process sorted them.
        assert!(pl::frames_equal(&expected.0, &on_cluster.0));
        assert!(pl::frames_equal(&expected.1, &on_cluster.1));
        assert!(pl::frames_close(&expected.2, &on_cluster.2, 1e-9));
        assert_eq!(pl::height(&expected.0), 36_000);
        assert_eq!(pl::height(&expected.2), 36_000);
    });
}

#[test]
fn time_series_and_group_operations_give_identical_results_on_worker_processes() {
    within(240, || {
        let dir = taxi_dir();
        let df = small_blocks(&dir);
        let by_time = df
            .select([col("tpep_pickup_datetime"), col("passenger_count"), col("VendorID")])
            .unwrap()
            .set_index("tpep_pickup_datetime")
            .unwrap();
        let passengers =
            by_time.select([col("tpep_pickup_datetime"), col("passenger_count")]).unwrap();
        let daily = passengers.resample("1d").mean().unwrap();
        let rolled = passengers.rolling(10).mean().unwrap();
        let last_hour = passengers.rolling("1h").sum().unwrap();
        let change = passengers.diff(-3).unwrap();
        // The trips as of each hour's first ride of the same vendor.
        let hourly_first = by_time
            .with_column(col("tpep_pickup_datetime").dt().truncate(lit("1h")).alias("hour"))
            .unwrap()
            .drop_duplicates(Some(&["VendorID", "hour"]), Keep::First)
            .unwrap()
            .select([
                col("tpep_pickup_datetime"),
                col("VendorID"),
                col("passenger_count").alias("first_passengers"),
            ])
            .unwrap()
            .set_index("tpep_pickup_datetime")
            .unwrap();
        let asof =
            by_time.merge_asof(&hourly_first, AsofOptions::default().by(["VendorID"])).unwrap();
        let local = LocalScheduler::new();
        let cluster = LocalCluster::processes(env!("CARGO_BIN_EXE_rask"), 2, 1).unwrap();
        let client = cluster.client().unwrap();
        for (what, frame) in [
            ("resample", &daily),
            ("rolling", &rolled),
            ("time window", &last_hour),
            ("diff", &change),
            ("merge_asof", &asof),
        ] {
            let expected = frame.compute_with(&local).unwrap();
            let got = frame.compute_with(&client).unwrap();
            assert!(pl::frames_close(&expected, &got, 1e-9), "{what} differs:\n{expected}\n{got}");
            assert!(pl::height(&expected) > 0, "{what} is empty");
        }
        assert_eq!(pl::height(&asof.compute_with(&client).unwrap()), 36_000);
    });
}

#[test]
fn a_worker_killed_during_a_shuffle_gives_the_exact_result_or_an_explicit_error() {
    within(300, || {
        let dir = tempfile::tempdir().unwrap();
        rask::datasets::write_taxi_csvs(dir.path(), 20_000).unwrap();
        let pattern = format!("{}/*.csv", dir.path().display());
        let df = read_csv(&pattern, CsvOptions::default().blocksize(Some(400_000))).unwrap();
        let sorted = df.sort_values(&["trip_distance", "fare_amount"]).unwrap();
        let expected = sorted.compute_with(&LocalScheduler::new()).unwrap();

        let dashboard = common::free_loopback_address();
        let mut cluster = LocalCluster::processes_with(
            env!("CARGO_BIN_EXE_rask"),
            2,
            1,
            &["--dashboard-address", &dashboard],
        )
        .unwrap();
        let client = cluster.client().unwrap();
        let running = {
            let sorted = sorted.clone();
            std::thread::spawn(move || sorted.compute_with(&client))
        };
        // Kill a worker once the shuffle has results on the workers (splits or pieces).
        eventually(120, "results on the workers", || {
            std::net::TcpStream::connect(&dashboard).is_ok()
                && json(&dashboard, "/api/workers")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w["results"].as_u64().unwrap())
                    .sum::<u64>()
                    > 0
        });
        cluster.stop_worker(0);
        cluster.add_worker().unwrap();
        match running.join().unwrap() {
            Ok(frame) => assert!(pl::frames_equal(&frame, &expected), "a different answer"),
            Err(error) => {
                let error = error.to_string();
                assert!(error.contains("killed") || error.contains("lost"), "{error}");
            }
        }
    });
}
