//! The image-stack walkthrough of Dask's "Distributed NumPy on a Cluster" (2017), on rask.
//!
//! A stack of electron-microscope-like images (synthetic: a bright disk that drifts and
//! brightens over time, plus noise; `uint8`, one chunk per image) is rechunked to 20 images
//! per chunk and persisted, averaged over time and over space, recentred image by image with a
//! registered `map_blocks` function (a roll by (3, −2)), rechunked all-to-all into per-pixel
//! time series (`(N, 10, 10)` chunks), Fourier-transformed along time, and `|x|²` kept as
//! `float32`. Each step prints its time; the mean image, the brightness over time and the
//! power spectra at a corner and at the centre are written as PNG files.
//!
//! ```text
//! cargo run --release -p rask --example image_stack -- [--images 400] [--size 1000]
//!     [--out target/image-stack] [--cluster WORKERS]
//! ```
//!
//! `--cluster N` runs everything on a local cluster of N worker processes (this program
//! started as `image_stack worker ...`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ndarray::{ArrayD, IxDyn};
use plotters::prelude::*;
use rask::array::prelude::*;
use rask::{ComputeExt, LocalCluster};

/// Chunks are megabytes: an allocator that keeps freed memory for the next chunk (glibc's
/// returns it to the kernel and faults it back in).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error>;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Times one step and prints a line about it.
fn step<T>(label: &str, run: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let started = Instant::now();
    let result = run()?;
    println!("{label:<60} {:>9.3} s", started.elapsed().as_secs_f64());
    Ok(result)
}

/// Rolls every image of a chunk by (3, −2), as `np.roll(b, (3, -2), axis=(1, 2))`.
fn recenter(chunk: &ArrayD<u8>) -> ArrayD<u8> {
    rask::array::chunk_ops::roll(chunk, &[3, -2], &[1, 2])
}
rask::array::register_block_fn!("image_stack::recenter", recenter, u8, u8);

/// The synthetic stack: noise, plus a disk that moves right and gets brighter over time.
fn synthetic_stack(images: usize, size: usize) -> Result<Array<u8>, Error> {
    let noise =
        rask::array::random::integers::<u8>(0, 64, &[images, size, size], [1, size, size], 2017)?
            .astype::<f32>();
    let disk = ndarray::Array2::from_shape_fn((size, size), |(r, c)| {
        let (dr, dc) = (r as f32 - size as f32 / 2.0, c as f32 - size as f32 / 3.0);
        if dr * dr + dc * dc < (size as f32 / 6.0).powi(2) {
            120.0f32
        } else {
            0.0
        }
    })
    .into_dyn();
    let ramp = arange(0.0f32, images as f32, 1.0, 1)?.slice(&[
        Index::Full,
        Index::NewAxis,
        Index::NewAxis,
    ])? * (60.0 / images.max(1) as f32);
    let image = noise.zip_with_ndarray(&disk, rask::array::BinaryOp::Add)?;
    Ok(image.try_add(&ramp)?.clip(0.0, 255.0).astype::<u8>())
}

fn write_gray_png(path: &Path, image: &ArrayD<f64>) -> Result<(), Error> {
    let (h, w) = (image.shape()[0], image.shape()[1]);
    let (lo, hi) =
        image.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let root = BitMapBackend::new(path, (w as u32, h as u32)).into_drawing_area();
    for r in 0..h {
        for c in 0..w {
            let v = if hi > lo { ((image[[r, c]] - lo) / (hi - lo) * 255.0) as u8 } else { 0 };
            root.draw_pixel((c as i32, r as i32), &RGBColor(v, v, v))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Line plots without text (no font is needed): each series in its own colour.
fn write_lines_png(path: &Path, series: &[(&[f64], RGBColor)], log: bool) -> Result<(), Error> {
    let root = BitMapBackend::new(path, (800, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let value = |v: f64| if log { v.max(1e-12).log10() } else { v };
    let n = series.iter().map(|(s, _)| s.len()).max().unwrap_or(1).max(2);
    let (lo, hi) = series
        .iter()
        .flat_map(|(s, _)| s.iter().map(|&v| value(v)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let mut chart =
        ChartBuilder::on(&root).margin(10).build_cartesian_2d(0f64..(n - 1) as f64, lo..hi)?;
    for (s, colour) in series {
        chart.draw_series(LineSeries::new(
            s.iter().enumerate().map(|(i, &v)| (i as f64, value(v))),
            colour,
        ))?;
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Error> {
    if let Some(code) = rask::cli::cluster_main() {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().collect();
    let images: usize = flag(&args, "--images", 400);
    let size: usize = flag(&args, "--size", 1000);
    let out: PathBuf = flag(&args, "--out", PathBuf::from("target/image-stack"));
    let workers: usize = flag(&args, "--cluster", 0);
    std::fs::create_dir_all(&out)?;
    if size < 20 || images < 2 {
        return Err("the stack needs at least 2 images of at least 20×20 pixels".into());
    }

    let _cluster = if workers > 0 {
        let program = std::env::current_exe()?;
        let cluster =
            LocalCluster::processes_with(&program, workers, 1, &["--dashboard-address", "none"])?;
        rask::set_default_scheduler(Some(Arc::new(cluster.client()?)));
        println!("running on a local cluster of {workers} worker processes");
        Some(cluster)
    } else {
        None
    };

    let stack = synthetic_stack(images, size)?;
    println!("{stack}");
    let stack = step("rechunk to 20 images per chunk, persist", || {
        let persisted = stack.rechunk([20.min(images), size, size])?.persist()?;
        persisted.wait()?;
        Ok(persisted)
    })?;
    println!("{stack}");
    let mean_image = step("mean over time", || Ok(stack.mean(0)?.compute()?))?;
    let brightness =
        step("mean brightness over time (axes 1, 2)", || Ok(stack.mean([1, 2])?.compute()?))?;
    let recentered = step("recenter with map_blocks, then mean over time", || {
        let rolled: Array<u8> = stack.map_blocks_registered("image_stack::recenter", None)?;
        Ok(rolled.mean(0)?.compute()?)
    })?;
    let tile = 10.min(size);
    let spectra = step(
        &format!("rechunk to ({images}, {tile}, {tile}), FFT, |x|² as f32, persist"),
        || {
            Ok(stack
                .rechunk([images, tile, tile])?
                .fft(0)?
                .abs_squared()
                .astype::<f32>()
                .persist()?)
        },
    )?;
    let (corner, centre) = step("the spectrum at (0, 0) and at the centre", || {
        let corner = spectra.slice(&[Index::Full, Index::At(0), Index::At(0)])?.compute()?;
        let mid = (size / 2) as i64;
        let centre = spectra.slice(&[Index::Full, Index::At(mid), Index::At(mid)])?.compute()?;
        Ok((corner, centre))
    })?;

    // The recentred mean is the mean rolled by (3, −2): a check that the step did what it says.
    let expected = ArrayD::from_shape_fn(IxDyn(&[size, size]), |at| {
        mean_image[[(at[0] + size - 3) % size, (at[1] + 2) % size]]
    });
    let worst =
        recentered.iter().zip(expected.iter()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    if worst > 1e-9 {
        return Err(format!("the recentred mean is off by {worst}").into());
    }
    let to_f64 = |x: &ArrayD<f32>| -> Vec<f64> { x.iter().map(|&v| f64::from(v)).collect() };
    write_gray_png(&out.join("mean-image.png"), &mean_image)?;
    write_lines_png(
        &out.join("brightness.png"),
        &[(brightness.as_slice().unwrap_or(&[]), BLUE)],
        false,
    )?;
    let (corner, centre) = (to_f64(&corner), to_f64(&centre));
    let half = images / 2 + 1;
    write_lines_png(
        &out.join("spectra.png"),
        &[(&corner[1..half], BLUE), (&centre[1..half], RED)],
        true,
    )?;
    println!(
        "\nmean brightness {:.2} → {:.2}; spectrum at (0, 0): DC {:.3e}; wrote {}/{{mean-image,brightness,spectra}}.png",
        brightness[0],
        brightness[images - 1],
        corner[0],
        out.display()
    );
    Ok(())
}
