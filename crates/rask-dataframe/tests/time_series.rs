//! Windows and resampling against Polars on the whole frame, over random uneven partitionings
//! (empty partitions, one partition, windows longer than partitions, equal times on both sides
//! of a boundary): the result must not depend on where the partitions end.

use polars::prelude::*;
use proptest::prelude::*;
use rask_dataframe::{agg, from_polars, AsofOptions, Direction, SetIndexOptions, Side};

mod common;

use common::{assert_close, compute, uneven};

/// Values with nulls: `x` floats, `n` integers.
fn values(xs: &[f64]) -> DataFrame {
    let x: Vec<Option<f64>> =
        xs.iter().enumerate().map(|(i, v)| (i % 5 != 3).then_some(*v)).collect();
    let n: Vec<i64> = xs.iter().map(|v| (*v as i64) % 7).collect();
    df!("x" => x, "n" => n).unwrap()
}

/// Rides at random seconds of a few days (many equal times), sorted: `t` (µs) and `v`.
fn rides(seconds: &[u32], span: u32) -> DataFrame {
    let start = 1_430_438_400_000_000i64; // 2015-05-01 00:00:00
    let mut s: Vec<u32> = seconds.iter().map(|s| s % span).collect();
    s.sort_unstable();
    let t: Vec<i64> = s.iter().map(|s| start + i64::from(*s) * 1_000_000).collect();
    let v: Vec<Option<f64>> =
        (0..s.len()).map(|i| (i % 6 != 2).then_some((i * 7 % 11) as f64)).collect();
    df!("t" => t, "v" => v)
        .unwrap()
        .lazy()
        .with_columns([col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None))])
        .collect()
        .unwrap()
}

fn with(df: &DataFrame, exprs: Vec<Expr>) -> DataFrame {
    df.clone().lazy().with_columns(exprs).collect().unwrap()
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..7)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn rolling_by_rows_matches_polars_at_every_boundary(
        xs in proptest::collection::vec(-50.0f64..50.0, 0..60), cuts in cuts(), window in 1usize..9, min in 0usize..9,
    ) {
        let df = values(&xs);
        let frame = uneven(&df, &cuts);
        let min = min.min(window);
        let o = RollingOptionsFixedWindow { window_size: window, min_periods: min, ..Default::default() };
        let var = RollingOptionsFixedWindow { fn_params: Some(RollingFnParams::Var(RollingVarParams { ddof: 1 })), ..o.clone() };
        let both = |f: &dyn Fn(Expr) -> Expr| vec![f(col("x")).alias("x"), f(col("n")).alias("n")];
        let rolling = frame.rolling(window).min_periods(min);
        assert_close(&compute(&rolling.mean().unwrap()), &with(&df, both(&|c| c.rolling_mean(o.clone()))));
        assert_close(&compute(&rolling.sum().unwrap()), &with(&df, both(&|c| c.rolling_sum(o.clone()))));
        assert_close(&compute(&rolling.min().unwrap()), &with(&df, both(&|c| c.rolling_min(o.clone()))));
        assert_close(&compute(&rolling.max().unwrap()), &with(&df, both(&|c| c.rolling_max(o.clone()))));
        assert_close(&compute(&rolling.std().unwrap()), &with(&df, both(&|c| c.rolling_std(var.clone()))));
        assert_close(&compute(&rolling.var().unwrap()), &with(&df, both(&|c| c.rolling_var(var.clone()))));
        let counted = both(&|c| c.is_not_null().cast(DataType::UInt32).rolling_sum(o.clone()));
        assert_close(&compute(&rolling.count().unwrap()), &with(&df, counted));
        // A function of your own: the sum of the window's non-null values.
        let own = compute(&frame.select([col("x")]).unwrap().rolling(window).min_periods(min.max(1)).apply("sum", |w| w.iter().sum()).unwrap());
        let o1 = RollingOptionsFixedWindow { min_periods: min.max(1), ..o.clone() };
        assert_close(&own, &df.clone().lazy().select([col("x").rolling_sum(o1)]).collect().unwrap());
    }

    #[test]
    fn shift_diff_and_pct_change_match_polars_both_ways(
        xs in proptest::collection::vec(-50.0f64..50.0, 0..50), cuts in cuts(), periods in -6i64..7,
    ) {
        let df = values(&xs);
        let frame = uneven(&df, &cuts);
        let both = |f: &dyn Fn(Expr) -> Expr| vec![f(col("x")).alias("x"), f(col("n")).alias("n")];
        assert_close(&compute(&frame.shift(periods).unwrap()), &with(&df, both(&|c| c.shift(lit(periods)))));
        assert_close(&compute(&frame.diff(periods).unwrap()), &with(&df, both(&|c| c.diff(lit(periods), Default::default()))));
        assert_close(&compute(&frame.pct_change(periods).unwrap()), &with(&df, both(&|c| c.pct_change(lit(periods)))));
    }

    #[test]
    fn rolling_by_time_matches_polars_with_equal_times_across_boundaries(
        seconds in proptest::collection::vec(any::<u32>(), 0..80), span in 1u32..400, cuts in cuts(), which in 0usize..3,
    ) {
        let df = rides(&seconds, span);
        // Cut where the data says, then index it (already sorted: nothing moves).
        let frame = uneven(&df, &cuts).set_index_with("t", SetIndexOptions::default().sorted(true)).unwrap();
        let window = ["2s", "1m", "90s"][which];
        let o = RollingOptionsDynamicWindow {
            window_size: Duration::parse(window), min_periods: 1, closed_window: ClosedWindow::Right, fn_params: None,
        };
        let var = RollingOptionsDynamicWindow { fn_params: Some(RollingFnParams::Var(RollingVarParams { ddof: 1 })), ..o.clone() };
        let rolling = frame.rolling(window);
        let v = || col("v");
        assert_close(&compute(&rolling.mean().unwrap()), &with(&df, vec![v().rolling_mean_by(col("t"), o.clone())]));
        assert_close(&compute(&rolling.sum().unwrap()), &with(&df, vec![v().rolling_sum_by(col("t"), o.clone())]));
        assert_close(&compute(&rolling.max().unwrap()), &with(&df, vec![v().rolling_max_by(col("t"), o.clone())]));
        assert_close(&compute(&rolling.std().unwrap()), &with(&df, vec![v().rolling_std_by(col("t"), var)]));
        let counted = v().is_not_null().cast(DataType::UInt32).rolling_sum_by(col("t"), o.clone());
        assert_close(&compute(&rolling.count().unwrap()), &with(&df, vec![counted]));
        let own = compute(&rolling.apply("sum", |w| w.iter().sum()).unwrap());
        assert_close(&own, &with(&df, vec![v().rolling_sum_by(col("t"), o)]));
    }

    #[test]
    fn resample_matches_polars_group_by_with_empty_bins_filled(
        seconds in proptest::collection::vec(any::<u32>(), 1..80), cuts in cuts(), which in 0usize..4, right in any::<bool>(),
    ) {
        let (rule, every, span) = [("1h", "1h", 86_400 * 2), ("15min", "15m", 20_000), ("1d", "1d", 86_400 * 9), ("ME", "1mo", 86_400 * 80)][which];
        let df = rides(&seconds, span);
        let frame = uneven(&df, &cuts).set_index_with("t", SetIndexOptions::default().sorted(true)).unwrap();
        let resampler = frame.resample(rule);
        let resampler = if right { resampler.closed(Side::Right).label(Side::Right) } else { resampler };
        let got = compute(&resampler.agg([
            agg::mean("v"), agg::sum("v").alias("v_sum"), agg::count("v").alias("v_count"),
            agg::max("v").alias("v_max"), agg::first("v").alias("v_first"), agg::std("v").alias("s"), agg::size().alias("rows"),
        ]).unwrap());
        // The oracle: a group-by on the truncated time.
        let bin = if right {
            (col("t").cast(DataType::Int64) - lit(1i64)).cast(DataType::Datetime(TimeUnit::Microseconds, None)).dt().truncate(lit(every))
        } else {
            col("t").dt().truncate(lit(every))
        };
        let grouped = df.clone().lazy().group_by([bin.alias("b")]).agg([
            col("v").mean().alias("v"), col("v").sum().alias("v_sum"), col("v").count().alias("v_count"),
            col("v").max().alias("v_max"), col("v").first().alias("v_first"), col("v").std(1).alias("s"),
            len().alias("rows"),
        ]).sort(["b"], Default::default()).collect().unwrap();
        let as_i64 = |frame: &DataFrame, c: &str| -> Vec<i64> {
            frame.column(c).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().into_no_null_iter().collect()
        };
        // The bins with rows equal the group-by's, in order.
        let filled = got.clone().lazy().filter(col("rows").gt(lit(0))).collect().unwrap();
        assert_close(&filled.drop("t").unwrap(), &grouped.drop("b").unwrap());
        // Between them, every empty bin: counts and sums 0, the rest null.
        let empty = got.clone().lazy().filter(col("rows").eq(lit(0))).collect().unwrap();
        prop_assert_eq!(as_i64(&empty, "v_count").iter().sum::<i64>(), 0);
        prop_assert_eq!(empty.column("v_sum").unwrap().f64().unwrap().into_no_null_iter().sum::<f64>(), 0.0);
        prop_assert_eq!(empty.column("v").unwrap().null_count(), empty.height());
        prop_assert_eq!(empty.column("v_max").unwrap().null_count(), empty.height());
        let labels = as_i64(&got, "t");
        let bins = as_i64(&grouped, "b");
        let step = |start: i64| -> i64 {
            match every {
                "1h" => start + 3_600_000_000,
                "15m" => start + 900_000_000,
                "1d" => start + 86_400_000_000,
                _ => col_month_after(start),
            }
        };
        // Labels: consecutive bins, from the first bin with rows to the last.
        for w in labels.windows(2) {
            let (a, b) = (w[0], w[1]);
            prop_assert!(b > a, "labels out of order: {:?}", labels);
            if every != "1mo" { prop_assert_eq!(step(a), b); }
        }
        let first_label = match (rule, right) {
            (_, true) => step(bins[0]),
            ("ME", false) => step(bins[0]) - 86_400_000_000,
            _ => bins[0],
        };
        prop_assert_eq!(labels[0], first_label);
        prop_assert_eq!(got.height() >= bins.len(), true);
    }
}

/// The first day of the month after the one that holds `micros` (µs since 1970).
fn col_month_after(micros: i64) -> i64 {
    let t = col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None));
    let frame = df!("t" => [micros])
        .unwrap()
        .lazy()
        .select([
            t.clone().dt().year().cast(DataType::Int64).alias("y"),
            t.dt().month().cast(DataType::Int64).alias("m"),
        ])
        .collect()
        .unwrap();
    let get = |c: &str| frame.column(c).unwrap().i64().unwrap().get(0).unwrap();
    let (year, month) = if get("m") == 12 { (get("y") + 1, 1) } else { (get("y"), get("m") + 1) };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400_000_000
}

/// Quotes: sorted times (µs) with a ticker and a price.
fn quotes(seconds: &[u32], span: u32, start_offset: i64) -> DataFrame {
    let start = 1_430_438_400_000_000i64 + start_offset * 1_000_000;
    let mut s: Vec<u32> = seconds.iter().map(|s| s % span).collect();
    s.sort_unstable();
    let t: Vec<i64> = s.iter().map(|s| start + i64::from(*s) * 1_000_000).collect();
    let ticker: Vec<String> = (0..s.len()).map(|i| format!("T{}", (i * 7 + s.len()) % 3)).collect();
    let price: Vec<f64> = (0..s.len()).map(|i| i as f64 + 0.5).collect();
    df!("t" => t, "ticker" => ticker, "price" => price)
        .unwrap()
        .lazy()
        .with_columns([col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None))])
        .collect()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn merge_asof_matches_polars_whatever_the_partitions_of_either_side(
        trades in proptest::collection::vec(any::<u32>(), 0..50), quoted in proptest::collection::vec(any::<u32>(), 0..50),
        left_cuts in cuts(), right_cuts in cuts(), which in 0usize..3, grouped in any::<bool>(), tolerance in any::<bool>(),
    ) {
        let left = quotes(&trades, 300, 20).rename("price", "size".into()).unwrap().clone();
        let right = quotes(&quoted, 400, 0);
        let index = |df: &DataFrame, cuts: &[usize]| uneven(df, cuts).set_index_with("t", SetIndexOptions::default().sorted(true)).unwrap();
        let direction = [Direction::Backward, Direction::Forward, Direction::Nearest][which];
        let mut options = AsofOptions::default().direction(direction);
        if grouped { options = options.by(["ticker"]); }
        if tolerance { options = options.tolerance("30s"); }
        let got = compute(&index(&left, &left_cuts).merge_asof(&index(&right, &right_cuts), options).unwrap());
        let by = grouped.then(|| vec!["ticker".into()]);
        let strategy = [AsofStrategy::Backward, AsofStrategy::Forward, AsofStrategy::Nearest][which];
        let asof = AsOfOptions {
            strategy, tolerance: None, tolerance_str: tolerance.then(|| "30s".into()),
            left_by: by.clone(), right_by: by, allow_eq: true, check_sortedness: true,
        };
        let mut args = JoinArgs::new(JoinType::AsOf(Box::new(asof)));
        args.suffix = Some("_right".into());
        let expected = left.clone().lazy().join(right.clone().lazy(), [col("t")], [col("t")], args).collect().unwrap();
        assert_close(&got, &expected);
    }
}

#[test]
fn windows_and_resampling_on_frames_without_a_datetime_index_are_refused() {
    let df = rides(&[1, 5, 9], 100);
    let plain = from_polars(df.clone(), 2).unwrap();
    let message = plain.rolling("2s").mean().err().unwrap().to_string();
    assert!(
        message.contains("needs a datetime index") && message.contains("set_index"),
        "{message}"
    );
    let message = plain.resample("1d").mean().err().unwrap().to_string();
    assert!(message.contains("needs a datetime index"), "{message}");
    let by_number = from_polars(df.clone(), 2).unwrap().set_index("v").unwrap();
    let message = by_number.resample("1d").mean().err().unwrap().to_string();
    assert!(message.contains("the index `v` holds Float64"), "{message}");
    let indexed = from_polars(df, 2).unwrap().set_index("t").unwrap();
    let message = indexed.rolling("2 secs").mean().err().unwrap().to_string();
    assert!(message.contains("not a length of time") && message.contains("units:"), "{message}");
    let message = indexed.resample("1fortnight").sum().err().unwrap().to_string();
    assert!(message.contains("\"fortnight\" is not a unit"), "{message}");
    let texts = from_polars(df!("s" => ["a", "b"]).unwrap(), 1).unwrap();
    let message = texts.rolling(2).mean().err().unwrap().to_string();
    assert!(message.contains("needs numbers") && message.contains("`s`"), "{message}");
    let message =
        from_polars(values(&[1.0, 2.0]), 1).unwrap().rolling(0).sum().err().unwrap().to_string();
    assert!(message.contains("at least one row"), "{message}");
}
