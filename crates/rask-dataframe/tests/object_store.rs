//! Reading and writing through `object_store` against a real S3-compatible server (moto's
//! server mode) that the test starts on a loopback port. `scripts/s3-server.sh` installs it
//! (the test script runs it first).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rask_dataframe::io::store::Location;
use rask_dataframe::{
    agg, from_polars, read_csv, read_parquet, CsvOptions, ParquetOptions, WriteOptions,
};
use rask_local::{ComputeExt, LocalScheduler};

struct S3Server {
    child: Child,
    port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> S3Server {
    let program = std::env::var("RASK_S3_SERVER").unwrap_or_else(|_| {
        format!("{}/../../.venv-s3/bin/moto_server", env!("CARGO_MANIFEST_DIR"))
    });
    assert!(
        std::path::Path::new(&program).exists(),
        "no S3-compatible server at {program}: run scripts/s3-server.sh (scripts/test.sh does) or set RASK_S3_SERVER"
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = S3Server { child, port };
    // Wait (with a deadline) until the server answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if request(port, "GET", "/").is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the S3 server did not start within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// A bare HTTP request (moto accepts unsigned requests), for creating the bucket.
fn request(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn options(port: u16) -> Vec<(String, String)> {
    [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "test".into()),
        ("aws_region", "us-east-1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn csv_and_parquet_on_s3_read_and_write_like_local_files() {
    let server = start_server();
    let created = request(server.port, "PUT", "/rask-test").unwrap();
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    let opts = options(server.port);
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
