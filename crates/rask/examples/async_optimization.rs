//! Asynchronous optimization on a cluster, after Dask's "Asynchronous Optimization" walkthrough
//! (2017): consensus ADMM for a least-squares problem split over data chunks that live on the
//! workers.
//!
//! * **Synchronous**: every round, update all chunks with the current consensus `z`, wait for
//!   all of them (and so for the slowest), then update `z`.
//! * **Asynchronous**: keep every chunk busy; as results arrive (`as_completed`, taking every
//!   finished result at once with `next_batch`), fold them into `z` and resubmit those chunks
//!   with the newest `z`. A slow chunk no longer holds the others back.
//!
//! One chunk is a straggler (it sleeps longer), as on a real cluster. The example starts its
//! own cluster from this binary (`rask::cli::cluster_main` makes the binary a worker when it is
//! started as one), runs both versions for the same wall time and prints how close each got.
//!
//! ```text
//! cargo run --release -p rask --example async_optimization -- [--seconds 2] [--chunks 4]
//! ```

use std::time::{Duration, Instant};

use rask::{Client, Future, LocalCluster};
use serde::{Deserialize, Serialize};

/// One chunk of the data: rows of `a` and targets `b`, plus how slow its worker is.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Chunk {
    rows: Vec<Vec<f64>>,
    targets: Vec<f64>,
    delay_ms: u64,
}

const DIM: usize = 8;
const RHO: f64 = 1.0;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn noise(seed: u64) -> f64 {
    (splitmix(seed) % 10_000) as f64 / 10_000.0 - 0.5
}

/// The true coefficients the data was made from.
fn truth() -> Vec<f64> {
    (0..DIM).map(|j| 1.0 + j as f64 * 0.5).collect()
}

fn make_chunk(index: usize, rows: usize, straggler: bool) -> Chunk {
    let x = truth();
    let mut a = Vec::with_capacity(rows);
    let mut b = Vec::with_capacity(rows);
    for r in 0..rows {
        let row: Vec<f64> =
            (0..DIM).map(|j| noise((index * 1_000_003 + r * 31 + j) as u64) * 4.0).collect();
        let target =
            row.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>() + 0.01 * noise(r as u64 ^ 0xabc);
        a.push(row);
        b.push(target);
    }
    Chunk { rows: a, targets: b, delay_ms: if straggler { 40 } else { 10 } }
}

/// The local ADMM step: approximately minimise ||A x - b||² + rho/2 ||x - z + u||² by gradient
/// descent, starting from z - u.
#[rask::delayed(impure)]
fn local_update(chunk: &Chunk, z: &[f64], u: &[f64]) -> Vec<f64> {
    std::thread::sleep(Duration::from_millis(chunk.delay_ms));
    let n = chunk.rows.len() as f64;
    let mut x: Vec<f64> = z.iter().zip(u).map(|(z, u)| z - u).collect();
    for _ in 0..50 {
        let mut grad = [0.0; DIM];
        for (row, target) in chunk.rows.iter().zip(&chunk.targets) {
            let residual = row.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>() - target;
            for (g, a) in grad.iter_mut().zip(row) {
                *g += 2.0 * residual * a / n;
            }
        }
        for j in 0..DIM {
            grad[j] += RHO * (x[j] - z[j] + u[j]);
            x[j] -= 0.05 * grad[j];
        }
    }
    x
}

/// Distance from the true coefficients.
fn error(z: &[f64]) -> f64 {
    z.iter().zip(truth()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt()
}

fn consensus(xs: &[Vec<f64>], us: &[Vec<f64>]) -> Vec<f64> {
    let k = xs.len() as f64;
    (0..DIM).map(|j| xs.iter().zip(us).map(|(x, u)| x[j] + u[j]).sum::<f64>() / k).collect()
}

/// What a run reached: the consensus, how many chunk updates it made, and when it first came
/// within `TOLERANCE` of the truth.
struct Outcome {
    z: Vec<f64>,
    updates: usize,
    reached: Option<Duration>,
}

const TOLERANCE: f64 = 1e-3;

fn synchronous(
    client: &Client,
    chunks: &[Future<Chunk>],
    budget: Duration,
) -> rask::Result<Outcome> {
    let k = chunks.len();
    let (mut z, mut us) = (vec![0.0; DIM], vec![vec![0.0; DIM]; k]);
    let started = Instant::now();
    let mut updates = 0;
    let mut reached = None;
    while started.elapsed() < budget {
        let futures: Vec<_> = (0..k)
            .map(|i| client.submit(local_update::lazy(&chunks[i], z.clone(), us[i].clone())))
            .collect::<Result<_, _>>()
            .map_err(|e| rask::Error::Cluster(e.to_string()))?;
        let xs = client.gather(&futures).map_err(|e| rask::Error::Cluster(e.to_string()))?;
        z = consensus(&xs, &us);
        for (u, x) in us.iter_mut().zip(&xs) {
            for j in 0..DIM {
                u[j] += x[j] - z[j];
            }
        }
        updates += k;
        if reached.is_none() && error(&z) < TOLERANCE {
            reached = Some(started.elapsed());
        }
    }
    Ok(Outcome { z, updates, reached })
}

fn asynchronous(
    client: &Client,
    chunks: &[Future<Chunk>],
    budget: Duration,
) -> rask::Result<Outcome> {
    let k = chunks.len();
    let (mut z, mut us, mut xs) =
        (vec![0.0; DIM], vec![vec![0.0; DIM]; k], vec![vec![0.0; DIM]; k]);
    let cluster_error = |e: rask::ClientError| rask::Error::Cluster(e.to_string());
    // Which chunk each running future belongs to, by key.
    let mut owner = std::collections::HashMap::new();
    let mut first = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let future = client
            .submit(local_update::lazy(chunk, z.clone(), us[i].clone()))
            .map_err(cluster_error)?;
        owner.insert(future.key().clone(), i);
        first.push(future);
    }
    let started = Instant::now();
    let mut updates = 0;
    let mut reached = None;
    client.block_on(async {
        let mut running = client.asynchronous().as_completed(first);
        while !running.is_empty() {
            for future in running.next_batch().await.map_err(cluster_error)? {
                let i = owner.remove(future.key()).expect("every future belongs to a chunk");
                xs[i] = future.result().await.map_err(cluster_error)?;
                for j in 0..DIM {
                    us[i][j] += xs[i][j] - z[j];
                }
                z = consensus(&xs, &us);
                updates += 1;
                if reached.is_none() && error(&z) < TOLERANCE {
                    reached = Some(started.elapsed());
                }
                if started.elapsed() < budget {
                    let next = client
                        .submit(local_update::lazy(&chunks[i], z.clone(), us[i].clone()))
                        .map_err(cluster_error)?;
                    owner.insert(next.key().clone(), i);
                    running.add(next);
                }
            }
        }
        Ok::<_, rask::Error>(())
    })?;
    Ok(Outcome { z, updates, reached })
}

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> rask::Result<()> {
    // When this binary is started as `... worker ADDR` (by the cluster below), be a worker.
    if let Some(exit) = rask::cli::cluster_main() {
        std::process::exit(exit);
    }
    let budget = Duration::from_secs(flag("--seconds", 2));
    let nchunks = flag("--chunks", 4) as usize;
    let cluster = LocalCluster::processes_of_this_binary(2, 2)
        .map_err(|e| rask::Error::Cluster(e.to_string()))?;
    let client = cluster.client().map_err(|e| rask::Error::Cluster(e.to_string()))?;
    let data: Vec<Chunk> = (0..nchunks).map(|i| make_chunk(i, 400, i == 0)).collect();
    let chunks = client.scatter(data, false).map_err(|e| rask::Error::Cluster(e.to_string()))?;
    println!(
        "{nchunks} chunks of 400 rows on 2 workers; chunk 0 is a straggler; {budget:?} per method"
    );

    let report = |name: &str, outcome: &Outcome| {
        let reached =
            outcome.reached.map_or_else(|| "never".to_string(), |t| format!("after {t:.2?}"));
        println!(
            "{name}: {:4} chunk updates, final distance to the truth {:.1e}, within {TOLERANCE:.0e} {reached}",
            outcome.updates,
            error(&outcome.z)
        );
    };
    let sync = synchronous(&client, &chunks, budget)?;
    report("synchronous ADMM ", &sync);
    let asynchronous = asynchronous(&client, &chunks, budget)?;
    report("asynchronous ADMM", &asynchronous);
    if let (Some(a), Some(s)) = (asynchronous.reached, sync.reached) {
        println!(
            "the asynchronous version got there {:.1}x sooner",
            s.as_secs_f64() / a.as_secs_f64()
        );
    }
    if error(&sync.z) > 0.5 || error(&asynchronous.z) > 0.5 {
        return Err(rask::Error::Cluster("ADMM did not converge".into()));
    }
    Ok(())
}
