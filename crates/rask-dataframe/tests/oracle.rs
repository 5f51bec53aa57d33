//! Every operation against the same operation in plain Polars on the whole data, over random
//! data and random partitionings: results must never depend on how the data is partitioned.

use polars::prelude::*;
use proptest::prelude::*;
use rask_dataframe::{
    agg, from_polars, DataFrame as RaskFrame, JoinHow, JoinStrategy, SetIndexOptions, SortOptions,
};

mod common;

use common::{assert_close, compute};
use rask_local::{ComputeExt, LocalScheduler};

/// A frame with a nullable string key, a small integer key, and two float columns.
fn frame(keys: &[Option<u8>], xs: &[f64]) -> DataFrame {
    let n = keys.len().min(xs.len());
    let k: Vec<Option<String>> =
        keys[..n].iter().map(|k| k.map(|k| format!("k{}", k % 5))).collect();
    let g: Vec<i64> = keys[..n].iter().map(|k| i64::from(k.unwrap_or(7) % 3)).collect();
    let x: Vec<f64> = xs[..n].to_vec();
    let y: Vec<Option<f64>> =
        xs[..n].iter().enumerate().map(|(i, v)| (i % 4 != 0).then_some(v * 2.0 + 1.0)).collect();
    df!("k" => k, "g" => g, "x" => x, "y" => y).unwrap()
}

fn sorted(df: &DataFrame, by: &[&str]) -> DataFrame {
    df.sort(by.to_vec(), SortMultipleOptions::default().with_nulls_last(false)).unwrap()
}

fn data() -> impl Strategy<Value = (Vec<Option<u8>>, Vec<f64>, u32)> {
    (0usize..60).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::option::weighted(0.85, any::<u8>()), n),
            proptest::collection::vec(-100.0f64..100.0, n),
            1u32..7,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn per_partition_steps_match_polars((keys, xs, parts) in data()) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap()
            .filter(col("x").gt(lit(0.0))).unwrap()
            .with_columns([(col("x") * lit(3.0)).alias("x3"), col("y").fill_null(lit(-1.0)).alias("y")]).unwrap()
            .rename([("g", "group")]).unwrap()
            .drop(["k"]).unwrap()
            .cast([("group", DataType::Int32)]).unwrap();
        let polars = df.lazy()
            .filter(col("x").gt(lit(0.0)))
            .with_columns([(col("x") * lit(3.0)).alias("x3"), col("y").fill_null(lit(-1.0)).alias("y")])
            .rename(["g"], ["group"], true)
            .drop(cols(["k"]))
            .with_columns([col("group").cast(DataType::Int32)])
            .collect().unwrap();
        assert_close(&compute(&rask), &polars);
    }

    #[test]
    fn group_by_aggregations_match_polars((keys, xs, parts) in data(), split_every in 2usize..5, dropna in any::<bool>()) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap()
            .group_by(["k", "g"]).split_every(split_every).dropna(dropna)
            .agg([
                agg::sum("x").alias("sum"), agg::mean("y").alias("mean"), agg::min("x").alias("min"),
                agg::max("y").alias("max"), agg::count("y").alias("count"), agg::size(),
                agg::std("x").alias("std"), agg::var("y").alias("var"), agg::n_unique("g").alias("nu"),
            ]).unwrap();
        let mut lazy = df.lazy();
        if dropna {
            lazy = lazy.filter(col("k").is_not_null());
        }
        let polars = lazy.group_by([col("k"), col("g")]).agg([
            col("x").sum().alias("sum"), col("y").mean().alias("mean"), col("x").min().alias("min"),
            col("y").max().alias("max"), col("y").count().alias("count"), len().alias("size"),
            col("x").std(1).alias("std"), col("y").var(1).alias("var"), col("g").n_unique().alias("nu"),
        ]).collect().unwrap();
        assert_close(&compute(&rask), &sorted(&polars, &["k", "g"]));
    }

    #[test]
    fn split_out_gives_the_same_groups((keys, xs, parts) in data(), split_out in 1u32..4) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap()
            .group_by(["k"]).split_out(split_out)
            .agg([agg::sum("x"), agg::n_unique("g").alias("distinct_g"), agg::median("y").alias("median_y")]).unwrap();
        prop_assert_eq!(rask.npartitions(), split_out);
        let polars = df.lazy().group_by([col("k")])
            .agg([col("x").sum(), col("g").n_unique().alias("distinct_g"), col("y").median().alias("median_y")])
            .collect().unwrap();
        assert_close(&sorted(&compute(&rask), &["k"]), &sorted(&polars, &["k"]));
    }

    #[test]
    fn reductions_value_counts_and_len_match_polars((keys, xs, parts) in data()) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap();
        let sums = compute(&rask.sum().unwrap());
        let polars_sums = df.clone().lazy().select([col("g").sum(), col("x").sum(), col("y").sum()]).collect().unwrap();
        assert_close(&sums, &polars_sums);
        let means = compute(&rask.mean().unwrap());
        let polars_means = df.clone().lazy().select([col("g").mean(), col("x").mean(), col("y").mean()]).collect().unwrap();
        assert_close(&means, &polars_means);
        let counts = compute(&rask.value_counts("g").unwrap());
        let polars_counts = df.clone().lazy().group_by([col("g")]).agg([len().alias("count")])
            .sort(["count", "g"], SortMultipleOptions::default().with_order_descending_multi([true, false]))
            .collect().unwrap();
        assert_close(&counts, &polars_counts);
        prop_assert_eq!(rask.len().unwrap().compute().unwrap(), df.height() as u64);
        let filtered = rask.filter(col("x").gt(lit(0.0))).unwrap();
        let expected = df.clone().lazy().filter(col("x").gt(lit(0.0))).collect().unwrap().height();
        prop_assert_eq!(filtered.len().unwrap().compute().unwrap(), expected as u64);
    }

    #[test]
    fn head_tail_repartition_and_concat_keep_rows_in_order((keys, xs, parts) in data(), n in 0usize..20, new_parts in 1u32..9) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap();
        assert_close(&rask.head(n).unwrap(), &df.head(Some(n)));
        assert_close(&rask.tail(n).unwrap(), &df.tail(Some(n)));
        let re = rask.repartition(new_parts).unwrap();
        prop_assert_eq!(re.npartitions(), new_parts);
        assert_close(&compute(&re), &df);
        let both = rask_dataframe::concat(&[rask.clone(), re]).unwrap();
        assert_close(&compute(&both), &df.vstack(&df).unwrap());
    }

    #[test]
    fn joins_match_polars((keys, xs, parts) in data()) {
        let df = frame(&keys, &xs);
        // Keys 1 and 2 match some rows, 5 none, and a null key never matches.
        let names = df!("g" => [Some(1i64), Some(2), Some(5), None], "label" => ["one", "two", "five", "none"]).unwrap();
        let hows = [
            (JoinHow::Left, JoinType::Left), (JoinHow::Inner, JoinType::Inner),
            (JoinHow::Right, JoinType::Right), (JoinHow::Outer, JoinType::Full),
            (JoinHow::Semi, JoinType::Semi), (JoinHow::Anti, JoinType::Anti),
        ];
        for (how, polars_how) in hows {
            let mut args = JoinArgs::new(polars_how).with_suffix(Some("_right".into()));
            if how == JoinHow::Outer {
                args.coalesce = JoinCoalesce::CoalesceColumns;
            }
            let expected = df.clone().lazy().join(names.clone().lazy(), [col("g")], [col("g")], args).collect().unwrap();
            let all: Vec<&str> = expected.get_column_names().iter().map(|c| c.as_str()).collect();
            let expected = sorted(&expected, &all);
            let broadcast = from_polars(df.clone(), parts).unwrap().join_frame(&names, &["g"], &["g"], how).unwrap();
            assert_close(&sorted(&compute(&broadcast), &all), &expected);
            let right = from_polars(names.clone(), 2).unwrap();
            let left = from_polars(df.clone(), parts).unwrap();
            for strategy in [JoinStrategy::Auto, JoinStrategy::Broadcast, JoinStrategy::Shuffle] {
                let joined = left.join_with(&right, &["g"], &["g"], how, strategy).unwrap();
                assert_close(&sorted(&compute(&joined), &all), &expected);
            }
        }
    }

    #[test]
    fn joins_of_two_large_frames_by_shuffle_match_polars((keys, xs, parts) in data(), right_parts in 2u32..6) {
        // The frame with itself on a key with many duplicates (every row of a group matches
        // every other), nulls included: both sides are shuffled.
        let df = frame(&keys, &xs);
        let right = df.clone().lazy().select([col("k"), col("x").alias("rx")]).collect().unwrap();
        let hows = [
            (JoinHow::Left, JoinType::Left), (JoinHow::Inner, JoinType::Inner),
            (JoinHow::Right, JoinType::Right), (JoinHow::Outer, JoinType::Full),
            (JoinHow::Semi, JoinType::Semi), (JoinHow::Anti, JoinType::Anti),
        ];
        let left = from_polars(df.clone(), parts).unwrap();
        let rask_right = from_polars(right.clone(), right_parts).unwrap();
        for (how, polars_how) in hows {
            let mut args = JoinArgs::new(polars_how).with_suffix(Some("_right".into()));
            if how == JoinHow::Outer {
                args.coalesce = JoinCoalesce::CoalesceColumns;
            }
            let expected = df.clone().lazy().join(right.clone().lazy(), [col("k")], [col("k")], args).collect().unwrap();
            let all: Vec<&str> = expected.get_column_names().iter().map(|c| c.as_str()).collect();
            let joined = left.join(&rask_right, &["k"], &["k"], how).unwrap();
            prop_assert_eq!(joined.npartitions(), parts.max(right_parts));
            assert_close(&sorted(&compute(&joined), &all), &sorted(&expected, &all));
        }
    }

    #[test]
    fn a_hash_shuffle_keeps_every_row_and_puts_each_key_in_one_partition((keys, xs, parts) in data(), outputs in 1u32..6) {
        let df = frame(&keys, &xs).with_row_index("row".into(), None).unwrap();
        let shuffled = from_polars(df.clone(), parts).unwrap().shuffle(&["k"], Some(outputs)).unwrap();
        prop_assert_eq!(shuffled.npartitions(), outputs);
        let partitions: Vec<DataFrame> = shuffled.to_delayed().iter()
            .map(|d| d.compute_with(&LocalScheduler::new().threads(2)).unwrap()).collect();
        let mut owner = std::collections::HashMap::new();
        for (i, part) in partitions.iter().enumerate() {
            for key in part.column("k").unwrap().str().unwrap().iter() {
                let previous = owner.insert(key.map(str::to_string), i);
                prop_assert!(previous.is_none_or(|p| p == i), "key {key:?} in partitions {previous:?} and {i}");
            }
            // Rows of a partition keep their input order.
            let rows: Vec<u32> = part.column("row").unwrap().u32().unwrap().into_no_null_iter().collect();
            prop_assert!(rows.windows(2).all(|w| w[0] < w[1]));
        }
        assert_close(&sorted(&compute(&shuffled), &["row"]), &df);
    }

    #[test]
    fn sort_values_matches_polars((keys, xs, parts) in data(), which in 0usize..4, descending in any::<bool>(), nulls_last in any::<bool>(), outputs in 1u32..6) {
        let df = frame(&keys, &xs).with_row_index("row".into(), None).unwrap();
        let by: &[&str] = [&["x"][..], &["k", "x"], &["y", "row"], &["g", "k", "y"]][which];
        let options = SortOptions::default().descending([descending]).nulls_last(nulls_last).npartitions(outputs);
        let rask = from_polars(df.clone(), parts).unwrap().sort_values_with(by, options).unwrap();
        prop_assert!(rask.npartitions() <= outputs);
        let expected = df.sort(by.to_vec(), SortMultipleOptions::default()
            .with_order_descending(descending).with_nulls_last(nulls_last).with_maintain_order(true)).unwrap();
        assert_close(&compute(&rask), &expected);
    }

    #[test]
    fn nlargest_and_nsmallest_match_polars((keys, xs, parts) in data(), n in 0usize..12) {
        let df = frame(&keys, &xs).with_row_index("row".into(), None).unwrap();
        let rask = from_polars(df.clone(), parts).unwrap();
        for (largest, by) in [(true, vec!["y"]), (false, vec!["g", "y"]), (true, vec!["k", "x"])] {
            let top = if largest { rask.nlargest(n, &by) } else { rask.nsmallest(n, &by) }.unwrap();
            let expected = df.sort(by.clone(), SortMultipleOptions::default()
                .with_order_descending(largest).with_nulls_last(true).with_maintain_order(true)).unwrap().head(Some(n));
            assert_close(&compute(&top), &expected);
        }
    }

    #[test]
    fn set_index_sorts_and_its_divisions_hold_every_partition((keys, xs, parts) in data(), outputs in 1u32..6, presorted in any::<bool>()) {
        let mut df = frame(&keys, &xs).with_row_index("row".into(), None).unwrap();
        if presorted {
            df = df.sort(["x"], SortMultipleOptions::default().with_maintain_order(true)).unwrap();
        }
        let rask = from_polars(df.clone(), parts).unwrap()
            .set_index_with("x", SetIndexOptions::default().npartitions(outputs)).unwrap();
        prop_assert_eq!(rask.index(), Some("x"));
        // Persisting keeps the index: the same rows in the same partitions.
        let persisted = rask.persist().unwrap();
        prop_assert_eq!(persisted.divisions(), rask.divisions());
        let expected = df.sort(["x"], SortMultipleOptions::default().with_maintain_order(true)).unwrap();
        assert_close(&compute(&rask), &expected);
        let divisions = rask.divisions().unwrap().clone();
        prop_assert!(divisions.sorted());
        for (part, (lo, hi)) in rask.to_delayed().iter().zip(&divisions.bounds) {
            let part = part.compute_with(&LocalScheduler::new().threads(2)).unwrap();
            for x in part.column("x").unwrap().f64().unwrap().into_no_null_iter() {
                prop_assert!(*lo <= x && x <= *hi, "{x} outside {lo}..={hi}");
            }
        }
        // Sorted input is not moved: no shuffle task at all.
        if presorted {
            let graph = rask_core::Collection::graph(&rask);
            let keys = rask_core::Collection::output_keys(&rask);
            let tasks = rask_core::optimize::prepare(&graph, &keys, &rask_core::Optimizations::none()).unwrap();
            prop_assert!(tasks.tasks().iter().all(|t| !t.key.prefix().starts_with("shuffle")));
            prop_assert_eq!(rask.npartitions(), parts);
        }
    }

    #[test]
    fn exact_medians_match_polars((keys, xs, parts) in data(), split_every in 2usize..5) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap();
        let grouped = rask.group_by(["k"]).split_every(split_every)
            .agg([agg::median("x").alias("mx"), agg::median("y").alias("my"), agg::median("g")]).unwrap();
        let polars = df.clone().lazy().group_by([col("k")])
            .agg([col("x").median().alias("mx"), col("y").median().alias("my"), col("g").median()])
            .collect().unwrap();
        assert_close(&compute(&grouped), &sorted(&polars, &["k"]));
        let whole = rask.agg([agg::median("x"), agg::median("y")]).unwrap();
        let polars_whole = df.lazy().select([col("x").median(), col("y").median()]).collect().unwrap();
        assert_close(&compute(&whole), &polars_whole);
    }

    #[test]
    fn cumulative_group_by_operations_match_polars((keys, xs, parts) in data()) {
        let df = frame(&keys, &xs);
        let rask = from_polars(df.clone(), parts).unwrap();
        let summed = rask.group_by(["k"]).cum_sum("x").unwrap();
        let counted = summed.group_by(["k", "g"]).cum_count().unwrap();
        let maxed = counted.group_by(["g"]).cum_max("y").unwrap();
        let mined = maxed.group_by(["k"]).cum_min("x").unwrap();
        let polars = df.lazy()
            .with_columns([col("x").cum_sum(false).over([col("k")]).unwrap().alias("x_cum_sum")])
            // `g` has no nulls, so its running non-null count is the row's 1-based index.
            .with_columns([(col("g").cum_count(false).over([col("k"), col("g")]).unwrap().cast(DataType::Int64) - lit(1i64)).alias("cum_count")])
            .with_columns([col("y").cum_max(false).over([col("g")]).unwrap().alias("y_cum_max")])
            .with_columns([col("x").cum_min(false).over([col("k")]).unwrap().alias("x_cum_min")])
            .collect().unwrap();
        assert_close(&compute(&mined), &polars);
    }

    #[test]
    fn random_splits_are_disjoint_and_cover_every_row((keys, xs, parts) in data(), seed in any::<u64>()) {
        let df = frame(&keys, &xs).with_row_index("row".into(), None).unwrap();
        let rask = from_polars(df.clone(), parts).unwrap();
        let pieces = rask.random_split(&[0.3, 0.7], seed).unwrap();
        let a = compute(&pieces[0]);
        let b = compute(&pieces[1]);
        prop_assert_eq!(a.height() + b.height(), df.height());
        let all = sorted(&a.vstack(&b).unwrap(), &["row"]);
        assert_close(&all, &df);
        // The same seed gives the same sample.
        let s1 = compute(&rask.sample(0.5, seed).unwrap());
        let s2 = compute(&rask.sample(0.5, seed).unwrap());
        assert_close(&s1, &s2);
    }
}

/// Rides at random seconds over ten days of May 2015, in random order.
fn rides(seconds: &[u32]) -> DataFrame {
    let start = 1_430_438_400_000_000i64; // 2015-05-01 00:00:00 in microseconds
    let t: Vec<i64> = seconds.iter().map(|s| start + i64::from(*s % 864_000) * 1_000_000).collect();
    let n: Vec<i64> = (0..seconds.len() as i64).collect();
    df!("t" => t, "n" => n)
        .unwrap()
        .lazy()
        .with_columns([col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None))])
        .collect()
        .unwrap()
}

fn polars_between(df: &DataFrame, from: &str, to: &str) -> DataFrame {
    let at = |s: &str| {
        lit(s).str().to_datetime(
            Some(TimeUnit::Microseconds),
            None,
            StrptimeOptions::default(),
            lit("raise"),
        )
    };
    df.clone().lazy().filter(col("t").gt_eq(at(from)).and(col("t").lt(at(to)))).collect().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn loc_by_partial_dates_and_ranges_matches_polars_and_reads_only_the_partitions_it_needs(
        seconds in proptest::collection::vec(any::<u32>(), 0..400), parts in 1u32..6, outputs in 1u32..8,
    ) {
        let df = rides(&seconds);
        let sorted = df.sort(["t"], SortMultipleOptions::default().with_maintain_order(true)).unwrap();
        let indexed = from_polars(df.clone(), parts).unwrap()
            .set_index_with("t", SetIndexOptions::default().npartitions(outputs)).unwrap();
        let day = indexed.loc("2015-05-05").unwrap();
        assert_close(&compute(&day), &polars_between(&sorted, "2015-05-05 00:00:00", "2015-05-06 00:00:00"));
        let hour = indexed.loc("2015-05-03 07").unwrap();
        assert_close(&compute(&hour), &polars_between(&sorted, "2015-05-03 07:00:00", "2015-05-03 08:00:00"));
        let span = indexed.loc_range(Some("2015-05-02"), Some("2015-05-04")).unwrap();
        assert_close(&compute(&span), &polars_between(&sorted, "2015-05-02 00:00:00", "2015-05-05 00:00:00"));
        let from = indexed.loc_range(Some("2015-05-09 12:00"), None::<&str>).unwrap();
        assert_close(&compute(&from), &polars_between(&sorted, "2015-05-09 12:00:00", "2015-06-01 00:00:00"));
        assert_close(&compute(&indexed.loc("2015-05").unwrap()), &sorted);
        assert_eq!(compute(&indexed.loc("2014").unwrap()).height(), 0);
        // Only partitions whose divisions overlap the day are read.
        let bounds = &indexed.divisions().unwrap().bounds;
        let (lo, hi) = (1_430_784_000_000_000f64, 1_430_870_400_000_000f64);
        let overlapping = bounds.iter().filter(|(a, b)| *a <= hi && *b >= lo).count().max(1);
        prop_assert_eq!(day.npartitions() as usize, overlapping);
        // head reads from the first partitions: the first rides.
        assert_close(&indexed.head(3).unwrap(), &sorted.head(Some(3)));
        assert_close(&indexed.tail(3).unwrap(), &sorted.tail(Some(3)));
    }

    #[test]
    fn loc_by_number_matches_polars((keys, xs, parts) in data(), label in 0i64..3) {
        let df = frame(&keys, &xs);
        let indexed = from_polars(df.clone(), parts).unwrap().set_index("g").unwrap();
        let expected = df.clone().lazy().filter(col("g").eq(lit(label))).collect().unwrap();
        assert_close(&sorted(&compute(&indexed.loc(label).unwrap()), &["x"]), &sorted(&expected, &["x"]));
        let range = indexed.loc_range(Some(1i64), Some(2i64)).unwrap();
        let expected = df.lazy().filter(col("g").gt_eq(lit(1)).and(col("g").lt_eq(lit(2)))).collect().unwrap();
        assert_close(&sorted(&compute(&range), &["g", "x"]), &sorted(&expected, &["g", "x"]));
    }
}

#[test]
fn loc_without_an_index_or_with_a_label_of_another_type_is_refused() {
    let plain = from_polars(rides(&[1, 2, 3]), 2).unwrap();
    let err = plain.loc("2015-05-01").unwrap_err().to_string();
    assert!(err.contains("needs an index") && err.contains("set_index"), "{err}");
    let indexed = plain.set_index("t").unwrap();
    let err = indexed.loc(5i64).unwrap_err().to_string();
    assert!(err.contains("`t`") && err.contains("date strings"), "{err}");
    let err = indexed.loc("next tuesday").unwrap_err().to_string();
    assert!(err.contains("\"2015-05-05\""), "{err}");
    let numbers =
        from_polars(df!("g" => [1i64, 2, 3]).unwrap(), 2).unwrap().set_index("g").unwrap();
    let err = numbers.loc("2015").unwrap_err().to_string();
    assert!(err.contains("i64") && err.contains("numbers"), "{err}");
}

#[test]
fn set_index_of_partitions_in_order_sorts_within_them_and_moves_nothing() {
    // Each partition's values come after the previous one's, but not in order within.
    let df =
        df!("x" => [3i64, 1, 2, 6, 4, 5, 9, 7, 8], "v" => (0..9i64).collect::<Vec<_>>()).unwrap();
    let rask = from_polars(df.clone(), 3).unwrap().set_index("x").unwrap();
    let graph = rask_core::Collection::graph(&rask);
    let keys = rask_core::Collection::output_keys(&rask);
    let tasks =
        rask_core::optimize::prepare(&graph, &keys, &rask_core::Optimizations::none()).unwrap();
    assert!(tasks.tasks().iter().all(|t| !t.key.prefix().starts_with("shuffle")), "no shuffle");
    assert_eq!(rask.divisions().unwrap().bounds, vec![(1.0, 3.0), (4.0, 6.0), (7.0, 9.0)]);
    assert_close(&compute(&rask), &df.sort(["x"], SortMultipleOptions::default()).unwrap());
}

#[test]
fn set_index_keeps_equal_values_in_one_partition() {
    // 300 rows of one value and 300 of another, in 6 partitions that each hold both.
    let x: Vec<i64> = (0..600).map(|i| (i % 2) * 10).collect();
    let df = df!("x" => x, "v" => (0..600i64).collect::<Vec<_>>()).unwrap();
    let rask = from_polars(df, 6)
        .unwrap()
        .set_index_with("x", SetIndexOptions::default().npartitions(4))
        .unwrap();
    let heights: Vec<usize> = rask
        .to_delayed()
        .iter()
        .map(|d| d.compute_with(&LocalScheduler::new().threads(2)).unwrap().height())
        .filter(|h| *h > 0)
        .collect();
    assert_eq!(heights, vec![300, 300], "each value whole in one partition");
}

#[test]
fn set_index_sorted_refuses_unsorted_data_naming_the_partitions() {
    let df = df!("t" => [1i64, 2, 3, 9, 4, 5, 6, 7, 8]).unwrap();
    let err = from_polars(df, 3)
        .unwrap()
        .set_index_with("t", SetIndexOptions::default().sorted(true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not sorted by `t`"), "{err}");
    assert!(err.contains("partition 1 is not sorted within"), "{err}");
    assert!(err.contains("partition 2 starts at 6 before partition 1 ends at 9"), "{err}");
}

#[test]
fn join_keys_that_are_missing_or_of_other_types_are_refused() {
    let left = from_polars(df!("a" => [1i64, 2], "b" => ["x", "y"]).unwrap(), 2).unwrap();
    let right = from_polars(df!("a" => ["1", "2"], "c" => [1i64, 2]).unwrap(), 2).unwrap();
    let err = left.join(&right, &["a"], &["a"], JoinHow::Inner).unwrap_err().to_string();
    assert!(
        err.contains("incompatible types") && err.contains("`a` is i64") && err.contains("str"),
        "{err}"
    );
    let err = left.join(&right, &["a"], &["zz"], JoinHow::Inner).unwrap_err().to_string();
    assert!(err.contains("zz") && err.contains("a, c"), "{err}");
    let err = left.sort_values(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("a, b"), "{err}");
}

#[test]
fn correlation_and_covariance_match_the_two_pass_formulas() {
    let xs: Vec<f64> = (0..500).map(|i| ((i * 37) % 101) as f64).collect();
    let ys: Vec<f64> = xs.iter().enumerate().map(|(i, x)| x * 0.5 + (i % 7) as f64).collect();
    let df = df!("a" => xs.clone(), "b" => ys.clone()).unwrap();
    let rask = from_polars(df, 7).unwrap();
    let corr = compute(&rask.corr(&["a", "b"]).unwrap());
    let cov = compute(&rask.cov(&["a", "b"]).unwrap());
    // The textbook two-pass formulas on the whole columns (Polars' `cov` feature is not
    // built: rask computes moments itself).
    let n = xs.len() as f64;
    let (mean_a, mean_b) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov_of = |u: &[f64], mu: f64, v: &[f64], mv: f64| {
        u.iter().zip(v).map(|(a, b)| (a - mu) * (b - mv)).sum::<f64>() / (n - 1.0)
    };
    let cov_ab = cov_of(&xs, mean_a, &ys, mean_b);
    let var_a = cov_of(&xs, mean_a, &xs, mean_a);
    let r = cov_ab / (var_a * cov_of(&ys, mean_b, &ys, mean_b)).sqrt();
    let get = |f: &DataFrame, c: &str, row: usize| {
        f.column(c).unwrap().get(row).unwrap().extract::<f64>().unwrap()
    };
    assert!((get(&corr, "b", 0) - r).abs() < 1e-9);
    assert!((get(&corr, "a", 0) - 1.0).abs() < 1e-12);
    assert!((get(&cov, "b", 0) - cov_ab).abs() < 1e-6);
    assert!((get(&cov, "a", 0) - var_a).abs() < 1e-6);
}

#[test]
fn approximate_quantiles_are_within_a_percent_of_the_rank() {
    let xs: Vec<f64> = (0..20_000).map(|i| ((i * 7919) % 20_000) as f64).collect();
    let df = df!("x" => xs).unwrap();
    let q = compute(&from_polars(df, 9).unwrap().quantiles("x", &[0.1, 0.5, 0.9]).unwrap());
    let values: Vec<f64> =
        q.column("x").unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect();
    for (value, expected) in values.iter().zip([2_000.0, 10_000.0, 18_000.0]) {
        assert!((value - expected).abs() < 200.0, "{value} vs {expected}");
    }
}

#[test]
fn categoricals_and_dummies_unify_categories_across_partitions() {
    let df = df!("c" => ["a", "b", "a", "c", "b", "a"], "v" => [1i64, 2, 3, 4, 5, 6]).unwrap();
    let rask = from_polars(df.clone(), 3).unwrap();
    let cat = rask.categorize(["c"]).unwrap();
    let out = compute(&cat);
    assert!(matches!(out.column("c").unwrap().dtype(), DataType::Categorical(..)));
    assert_eq!(out.height(), 6);
    let counts = compute(&cat.value_counts("c").unwrap());
    assert_eq!(counts.height(), 3);
    let dummies = compute(&rask.to_dummies(["c"]).unwrap());
    assert_eq!(
        dummies.get_column_names().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["v", "c_a", "c_b", "c_c"]
    );
    let a: Vec<u8> =
        dummies.column("c_a").unwrap().u8().unwrap().iter().map(|v| v.unwrap()).collect();
    assert_eq!(a, [1, 0, 1, 0, 0, 1]);
}

#[test]
fn unknown_columns_name_the_column_and_list_the_others() {
    let rask = from_polars(df!("a" => [1i64], "b" => [2i64]).unwrap(), 1).unwrap();
    let err = rask.filter(col("nope").gt(lit(1))).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("a, b"), "{err}");
    let err = rask.group_by(["zzz"]).agg([agg::sum("a")]).unwrap_err().to_string();
    assert!(err.contains("zzz") && err.contains("a, b"), "{err}");
    let err = rask.drop(["q"]).unwrap_err().to_string();
    assert!(err.contains("`q`"), "{err}");
}

#[test]
fn the_lazy_display_shows_the_structure_and_no_data() {
    let rask =
        from_polars(df!("a" => [1i64, 2, 3], "name" => ["x", "y", "z"]).unwrap(), 2).unwrap();
    let shown = rask.filter(col("a").gt(lit(1))).unwrap().to_string();
    assert!(shown.contains("npartitions=2"), "{shown}");
    assert!(shown.contains("name") && shown.contains("str"), "{shown}");
    assert!(!shown.contains('z'), "no data: {shown}");
}

#[test]
fn persist_and_delayed_partitions_round_trip() {
    let df = df!("a" => (0..100i64).collect::<Vec<_>>()).unwrap();
    let rask =
        from_polars(df.clone(), 4).unwrap().with_column((col("a") * lit(2)).alias("b")).unwrap();
    let persisted = rask.persist().unwrap();
    assert_close(&compute(&persisted), &compute(&rask));
    let parts = rask.to_delayed();
    assert_eq!(parts.len(), 4);
    let back = RaskFrame::from_delayed(&parts, rask.schema().clone()).unwrap();
    assert_close(&compute(&back), &compute(&rask));
    let doubled = rask
        .map_partitions("double", rask.schema().clone(), |f| {
            f.lazy().with_columns([col("a") * lit(2)]).collect().map_err(|e| e.to_string())
        })
        .unwrap();
    let out = compute(&doubled);
    assert_eq!(out.column("a").unwrap().i64().unwrap().get(99), Some(198));
}

#[test]
fn timeseries_is_deterministic_and_partitioned_by_day() {
    let ts =
        rask_dataframe::datasets::timeseries(946_684_800, 946_684_800 + 3 * 86_400, 60, 86_400, 1)
            .unwrap();
    assert_eq!(ts.npartitions(), 3);
    assert_eq!(ts.len().unwrap().compute().unwrap(), 3 * 1440);
    let a = compute(&ts);
    let b = compute(&ts);
    assert_close(&a, &b);
    let names = compute(&ts.unique(["name"]).unwrap());
    assert!(names.height() > 20);
}

#[test]
fn aggregations_computed_together_share_one_read_per_partition() {
    let ts =
        rask_dataframe::datasets::timeseries(946_684_800, 946_684_800 + 4 * 86_400, 30, 86_400, 7)
            .unwrap();
    let positive = ts.filter(col("x").gt(lit(0.0))).unwrap();
    let by_name = positive.group_by(["name"]).agg([agg::mean("y")]).unwrap();
    let by_id = positive.group_by(["id"]).agg([agg::sum("x"), agg::size()]).unwrap();
    let together = (&by_name, &by_id);
    // Lowered, the two trees read each partition once.
    let graph = rask_core::Collection::graph(&together);
    let keys = rask_core::Collection::output_keys(&together);
    let tasks = rask_core::optimize::prepare(
        &graph,
        &keys,
        &rask_core::Collection::optimizations(&together),
    )
    .unwrap();
    let shared = tasks.tasks().iter().filter(|t| t.key.prefix() == "read-shared").count();
    assert_eq!(shared, 4, "one shared read per partition");
    let reads = tasks
        .tasks()
        .iter()
        .filter(|t| t.ops().iter().any(|op| op.func.name() == "rask_dataframe::read"))
        .count();
    assert_eq!(reads, 4, "no other reads left");
    // And the results are those of separate computations.
    let (a, b) = together.compute_with(&LocalScheduler::new().threads(2)).unwrap();
    assert_close(&a, &compute(&by_name));
    assert_close(&b, &compute(&by_id));
    let all = compute(&ts);
    let expected = all
        .lazy()
        .filter(col("x").gt(lit(0.0)))
        .group_by([col("name")])
        .agg([col("y").mean()])
        .collect()
        .unwrap();
    assert_close(&a, &sorted(&expected, &["name"]));
}
