//! Reading and writing through `object_store` against a real S3-compatible server (moto's
//! server mode, `rask_storage::s3_test_server`) that the test starts on a loopback port.
//! `scripts/s3-server.sh` installs it (the test script runs it first).

use rask_dataframe::io::store::Location;
use rask_dataframe::{
    agg, from_polars, read_csv, read_parquet, CsvOptions, ParquetOptions, WriteOptions,
};
use rask_local::{ComputeExt, LocalScheduler};
use rask_storage::s3_test_server::S3Server;

#[test]
fn csv_and_parquet_on_s3_read_and_write_like_local_files() {
    let server = S3Server::start();
    server.create_bucket("rask-test");
    let opts = server.options();
    let local = LocalScheduler::new().threads(2);

    // Two CSV objects, read as one frame in small blocks (ranged GETs).
    let mut expected_rows = 0;
    for i in 0..2 {
        let mut text = String::from("k,v\n");
        for j in 0..500 {
            text.push_str(&format!("k{},{}\n", j % 3, i * 1000 + j));
            expected_rows += 1;
        }
        Location::parse(&format!("s3://rask-test/csv/part-{i}.csv"), &opts)
            .write_all(text.into_bytes())
            .unwrap();
    }
    let df = read_csv(
        "s3://rask-test/csv/*.csv",
        CsvOptions::default().blocksize(Some(1000)).storage_options(opts.clone()),
    )
    .unwrap();
    assert!(df.npartitions() > 2);
    let all = df.compute_with(&local).unwrap();
    assert_eq!(all.height(), expected_rows);
    let sums = df.group_by(["k"]).agg([agg::sum("v")]).unwrap().compute_with(&local).unwrap();
    let total: i64 = sums.column("v").unwrap().i64().unwrap().iter().flatten().sum();
    assert_eq!(total, (0..500).sum::<i64>() + (1000..1500).sum::<i64>());

    // Parquet written to the bucket and read back, with row counts from the footers.
    let frame = from_polars(all.clone(), 3).unwrap();
    let written = frame
        .to_parquet("s3://rask-test/pq", WriteOptions::default().storage_options(opts.clone()))
        .unwrap();
    assert_eq!(written as usize, expected_rows);
    let err = frame
        .to_parquet("s3://rask-test/pq", WriteOptions::default().storage_options(opts.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let back =
        read_parquet("s3://rask-test/pq", ParquetOptions::default().storage_options(opts.clone()))
            .unwrap();
    assert_eq!(back.npartitions(), 3);
    assert_eq!(back.len().unwrap().compute_with(&local).unwrap() as usize, expected_rows);
    assert!(back.compute_with(&local).unwrap().equals_missing(&all));

    let err = read_csv("s3://rask-test/nothing/*.csv", CsvOptions::default().storage_options(opts))
        .unwrap_err()
        .to_string();
    assert!(err.contains("s3://rask-test/nothing/*.csv"), "{err}");
}
