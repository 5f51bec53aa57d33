//! An S3-compatible server (moto's server mode) on a loopback port, for tests of object-store
//! reads and writes. `scripts/s3-server.sh` installs it in `.venv-s3` (the test script runs it
//! first) and prints its path, which `RASK_S3_SERVER` may name instead.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::StorageOptions;

/// A running server; stopped when dropped.
pub struct S3Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// Starts the server and waits (at most 60 s) until it answers. Panics with what to do when
    /// it is not installed: this is for tests.
    pub fn start() -> S3Server {
        // The checkout's venv, found from the working directory (a test runs in its crate's
        // directory): a path fixed at compile time would name whichever checkout last built
        // this crate into a shared target directory.
        let program = std::env::var("RASK_S3_SERVER").unwrap_or_else(|_| {
            let here = std::env::current_dir().unwrap_or_default();
            here.ancestors()
                .map(|dir| dir.join(".venv-s3/bin/moto_server"))
                .find(|candidate| candidate.exists())
                .unwrap_or_else(|| here.join(".venv-s3/bin/moto_server"))
                .to_string_lossy()
                .into_owned()
        });
        assert!(
            std::path::Path::new(&program).exists(),
            "no S3-compatible server at {program}: run scripts/s3-server.sh (scripts/test.sh does) or set RASK_S3_SERVER"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let server = S3Server { child, port };
        // Poll with a deadline: the server answers once it listens.
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.request("GET", "/").is_err() {
            assert!(Instant::now() < deadline, "the S3 server did not start within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A bare HTTP request (moto accepts unsigned requests); the whole response.
    pub fn request(&self, method: &str, path: &str) -> std::io::Result<String> {
        let port = self.port;
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }

    /// Creates a bucket; panics unless the server says 200.
    pub fn create_bucket(&self, name: &str) {
        let created = self.request("PUT", &format!("/{name}")).expect("the server answers");
        assert!(created.starts_with("HTTP/1.1 200"), "creating bucket {name}: {created}");
    }

    /// The storage options that reach this server.
    pub fn options(&self) -> StorageOptions {
        [
            ("aws_endpoint", format!("http://127.0.0.1:{}", self.port)),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_region", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}
