//! A deterministic synthetic NYC yellow-cab dataset with the 2015 schema.
//!
//! The real 2015 trip records are about 2 GB a month and not reachable from every machine, so
//! the examples and benchmarks generate look-alike files: the same 19 columns in the same order
//! and format, with plausible distributions (most rides carry one passenger, cash rides have no
//! recorded tip, fares grow with distance, rush hours are busier). The same arguments always
//! produce byte-identical files, so figures from different runs compare.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::calendar::days_from_civil;
use crate::error::{Error, Result};

/// The header of the 2015 yellow-cab CSV files.
pub const TAXI_HEADER: &str = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount";

/// The names of the payment types (codes 1 to 6 of the data dictionary).
pub const PAYMENT_NAMES: [(i64, &str); 6] = [
    (1, "Credit Card"),
    (2, "Cash"),
    (3, "No Charge"),
    (4, "Dispute"),
    (5, "Unknown"),
    (6, "Voided trip"),
];

/// SplitMix64: tiny, fast and good enough for synthetic data; deterministic across platforms.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

fn write_datetime(out: &mut String, seconds: i64) {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let rem = seconds.rem_euclid(86_400);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// Hour weights: quiet nights, busy evenings.
const HOUR_WEIGHTS: [u32; 24] =
    [5, 3, 2, 2, 2, 3, 5, 8, 10, 9, 8, 8, 9, 9, 9, 9, 10, 12, 14, 14, 13, 12, 10, 8];

/// The CSV text of `rows` trips in `month` (1–12) of 2015.
pub fn taxi_month_csv(month: u32, rows: usize) -> String {
    let mut rng = Rng(0x7A41_0000 + u64::from(month));
    let start = days_from_civil(2015, i64::from(month), 1);
    let end = if month == 12 {
        days_from_civil(2016, 1, 1)
    } else {
        days_from_civil(2015, i64::from(month) + 1, 1)
    };
    let days = (end - start) as u64;
    let total_weight: u32 = HOUR_WEIGHTS.iter().sum();
    let mut out = String::with_capacity(rows * 190 + TAXI_HEADER.len() + 2);
    out.push_str(TAXI_HEADER);
    out.push('\n');
    for _ in 0..rows {
        let day = start + rng.below(days) as i64;
        let mut pick = rng.below(u64::from(total_weight)) as u32;
        let mut hour = 0;
        while pick >= HOUR_WEIGHTS[hour] {
            pick -= HOUR_WEIGHTS[hour];
            hour += 1;
        }
        let pickup = day * 86_400 + hour as i64 * 3600 + rng.below(3600) as i64;
        // Distances are skewed: most rides are short.
        let distance = (-(1.0 - rng.unit()).ln() * 2.8 + 0.1).min(60.0);
        let minutes = distance * (2.5 + rng.unit() * 3.0) + 2.0;
        let dropoff = pickup + (minutes * 60.0) as i64;
        let passengers = match rng.below(100) {
            0..=69 => 1,
            70..=83 => 2,
            84..=88 => 3,
            89..=91 => 4,
            92..=95 => 5,
            96..=98 => 6,
            _ => 0,
        };
        let vendor = 1 + rng.below(2);
        let rate_code = if rng.below(100) < 97 { 1 } else { 2 + rng.below(5) };
        let payment = match rng.below(1000) {
            0..=619 => 1,
            620..=989 => 2,
            990..=995 => 3,
            _ => 4,
        };
        let fare = ((2.5 + distance * 2.5 + minutes * 0.2) * 2.0).round() / 2.0;
        let extra = if (16..20).contains(&hour) {
            1.0
        } else if !(6..20).contains(&hour) {
            0.5
        } else {
            0.0
        };
        let mta_tax = 0.5;
        let surcharge = 0.3;
        let tolls = if distance > 12.0 && rng.below(3) == 0 { 5.54 } else { 0.0 };
        // Card rides tip 0-30%, often around 20%; cash tips are not recorded.
        let tip = if payment == 1 && rng.below(10) < 9 {
            ((fare * (0.1 + rng.unit() * 0.2)) * 100.0).round() / 100.0
        } else {
            0.0
        };
        let total = fare + extra + mta_tax + surcharge + tolls + tip;
        let lon = -73.98 + (rng.unit() - 0.5) * 0.12;
        let lat = 40.75 + (rng.unit() - 0.5) * 0.10;
        let dlon = lon + (rng.unit() - 0.5) * distance * 0.02;
        let dlat = lat + (rng.unit() - 0.5) * distance * 0.02;
        let flag = if rng.below(100) == 0 { 'Y' } else { 'N' };
        let _ = write!(out, "{vendor},");
        write_datetime(&mut out, pickup);
        out.push(',');
        write_datetime(&mut out, dropoff);
        let _ = writeln!(
            out,
            ",{passengers},{distance:.2},{lon:.6},{lat:.6},{rate_code},{flag},{dlon:.6},{dlat:.6},{payment},{fare:.1},{extra:.1},{mta_tax:.1},{tip:.2},{tolls:.2},{surcharge:.1},{total:.2}"
        );
    }
    out
}

/// Writes the twelve monthly files `yellow_tripdata_2015-MM.csv` into `dir` (those that are not
/// there yet), `rows_per_file` trips each, on all cores. Returns the paths.
pub fn write_taxi_csvs(dir: &Path, rows_per_file: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir.display(), e))?;
    let paths: Vec<PathBuf> =
        (1..=12).map(|m| dir.join(format!("yellow_tripdata_2015-{m:02}.csv"))).collect();
    let missing: Vec<(u32, &PathBuf)> =
        (1..=12u32).zip(&paths).filter(|(_, path)| !path.exists()).collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((month, path)) = missing.get(i) else { return Ok(()) };
                        let text = taxi_month_csv(*month, rows_per_file);
                        // Write to a temporary name first: an interrupted run leaves no
                        // truncated file that a later run would take as complete.
                        let tmp = path.with_extension("csv.partial");
                        let mut file = std::fs::File::create(&tmp)
                            .map_err(|e| Error::io("cannot write", tmp.display(), e))?;
                        file.write_all(text.as_bytes())
                            .map_err(|e| Error::io("cannot write", tmp.display(), e))?;
                        std::fs::rename(&tmp, path)
                            .map_err(|e| Error::io("cannot write", path.display(), e))?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("taxi generator panicked"))
    })?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1000, 0, 16_436, 16_800, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(days_from_civil(2015, 2, 28) + 1), (2015, 3, 1));
    }

    #[test]
    fn months_are_deterministic_and_have_the_2015_schema() {
        let a = taxi_month_csv(3, 200);
        assert_eq!(a, taxi_month_csv(3, 200));
        assert_ne!(a, taxi_month_csv(4, 200));
        let mut lines = a.lines();
        assert_eq!(lines.next(), Some(TAXI_HEADER));
        let columns = TAXI_HEADER.split(',').count();
        for line in lines {
            assert_eq!(line.split(',').count(), columns, "{line}");
            assert!(line.split(',').nth(1).unwrap().starts_with("2015-03-"), "{line}");
        }
    }
}
