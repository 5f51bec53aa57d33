//! Group-wise operations by shuffle (apply, transform, drop_duplicates) and frames side by
//! side, against Polars on the whole frame over random partitionings.

use polars::prelude::*;
use proptest::prelude::*;
use rask_dataframe::{concat_columns, from_polars, Keep};
use rask_local::{ComputeExt, LocalScheduler};

mod common;

use common::{compute, uneven};

/// Rows in a canonical order (results of shuffles come grouped by partition).
fn canonical(df: &DataFrame) -> DataFrame {
    let names: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
    df.sort(names, SortMultipleOptions::default().with_nulls_last(true)).unwrap()
}

fn assert_same_rows(got: &DataFrame, expected: &DataFrame) {
    let (got, expected) = (canonical(got), canonical(expected));
    assert!(got.equals_missing(&expected), "rows differ:\n{got}\n{expected}");
}

/// Keys with nulls and repeats, an order column and a value.
fn rows(keys: &[Option<u8>]) -> DataFrame {
    let k: Vec<Option<String>> = keys.iter().map(|k| k.map(|k| format!("k{}", k % 4))).collect();
    let n: Vec<i64> = (0..keys.len() as i64).collect();
    let x: Vec<i64> = keys.iter().map(|k| i64::from(k.unwrap_or(9) % 3)).collect();
    df!("k" => k, "n" => n, "x" => x).unwrap()
}

fn keys() -> impl Strategy<Value = Vec<Option<u8>>> {
    proptest::collection::vec(proptest::option::weighted(0.8, any::<u8>()), 0..60)
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..6)
}

/// A group's two last rows by `n`, with the group's row count (what `apply` computes).
fn last_two(group: DataFrame) -> Result<DataFrame, String> {
    let rows = group.height() as u32;
    group
        .lazy()
        .sort(["n"], Default::default())
        .tail(2)
        .with_columns([lit(rows).cast(DataType::UInt32).alias("rows")])
        .collect()
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn drop_duplicates_keeps_the_first_last_or_no_row_of_each_set(keys in keys(), cuts in cuts()) {
        let df = rows(&keys);
        let frame = uneven(&df, &cuts);
        for (keep, strategy) in [(Keep::First, UniqueKeepStrategy::First), (Keep::Last, UniqueKeepStrategy::Last), (Keep::None, UniqueKeepStrategy::None)] {
            let got = compute(&frame.drop_duplicates(Some(&["k", "x"]), keep).unwrap());
            let expected = df.clone().lazy().unique_stable_generic(Some(vec![col("k"), col("x")]), strategy).collect().unwrap();
            assert_same_rows(&got, &expected);
        }
        let whole = compute(&frame.select([col("k"), col("x")]).unwrap().drop_duplicates(None, Keep::First).unwrap());
        let expected = df.clone().lazy().select([col("k"), col("x")]).unique_stable(None, UniqueKeepStrategy::First).collect().unwrap();
        assert_same_rows(&whole, &expected);
    }

    #[test]
    fn group_apply_and_transform_see_whole_groups_in_frame_order(keys in keys(), cuts in cuts()) {
        let df = rows(&keys);
        let frame = uneven(&df, &cuts);
        let returns = Schema::from_iter([
            Field::new("k".into(), DataType::String), Field::new("n".into(), DataType::Int64),
            Field::new("x".into(), DataType::Int64), Field::new("rows".into(), DataType::UInt32),
        ]);
        let got = compute(&frame.group_by(["k"]).apply("last_two", returns, last_two).unwrap());
        let expected = df.group_by(["k"]).unwrap().apply(|g| last_two(g).map_err(|e| polars_err!(ComputeError: "{e}"))).unwrap();
        assert_same_rows(&got, &expected);
        // Each row's position within its group, from 0 (needs the group's rows in order).
        let position = Schema::from_iter([Field::new("position".into(), DataType::Int64)]);
        let transformed = frame.group_by(["k"]).transform("position", position, |g| {
            let n = g.height() as i64;
            df!("position" => (0..n).collect::<Vec<i64>>()).map_err(|e| e.to_string())
        }).unwrap();
        let expected = df.clone().lazy().with_columns([
            (col("n").cum_count(false).over([col("k")]).unwrap().cast(DataType::Int64) - lit(1i64)).alias("position"),
        ]).collect().unwrap();
        assert_same_rows(&compute(&transformed), &expected);
    }

    #[test]
    fn columns_side_by_side_match_polars(keys in keys(), cuts in cuts()) {
        let df = rows(&keys);
        let frame = uneven(&df, &cuts);
        let left = frame.select([col("k"), col("n")]).unwrap();
        let right = frame.select([(col("x") * lit(10)).alias("x10")]).unwrap();
        let got = compute(&concat_columns(&[left, right.clone()]).unwrap());
        let expected = df.clone().lazy().select([col("k"), col("n"), (col("x") * lit(10)).alias("x10")]).collect().unwrap();
        prop_assert!(got.equals_missing(&expected), "{got}\n{expected}");
        let assigned = compute(&frame.assign("x", &right).unwrap());
        let expected = df.clone().lazy().with_columns([(col("x") * lit(10)).alias("x")]).collect().unwrap();
        prop_assert!(assigned.equals_missing(&expected), "{assigned}\n{expected}");
    }
}

#[test]
fn frames_of_other_partitionings_and_broken_group_functions_are_refused() {
    let df = rows(&[Some(1), Some(2), Some(1), None, Some(3), Some(2)]);
    let frame = from_polars(df.clone(), 2).unwrap();
    let other = from_polars(df.clone(), 3).unwrap();
    let message = concat_columns(&[frame.clone(), other.select([col("x").alias("y")]).unwrap()])
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("2 partitions and frame 1 has 3"), "{message}");
    let message = concat_columns(&[frame.clone(), frame.clone()]).err().unwrap().to_string();
    assert!(message.contains("`k` is in two of the frames"), "{message}");
    // A filter changes one side's rows: the tasks refuse to pair them.
    let filtered =
        frame.filter(col("x").gt(lit(0))).unwrap().select([col("n").alias("m")]).unwrap();
    let error = concat_columns(&[frame.clone(), filtered])
        .unwrap()
        .compute_with(&LocalScheduler::new())
        .unwrap_err()
        .to_string();
    assert!(error.contains("partition") && error.contains("same partitioning"), "{error}");
    let message = frame.assign("z", &frame).err().unwrap().to_string();
    assert!(message.contains("one column"), "{message}");
    // A transform must return a row per row; apply the schema it promised.
    let one = Schema::from_iter([Field::new("v".into(), DataType::Int64)]);
    let bad = frame
        .group_by(["k"])
        .transform("short", one.clone(), |_| df!("v" => [1i64]).map_err(|e| e.to_string()))
        .unwrap();
    let error = bad.compute_with(&LocalScheduler::new()).unwrap_err().to_string();
    assert!(error.contains("returns one row per row"), "{error}");
    let wrong = frame.group_by(["k"]).apply("wrong", one, Ok).unwrap();
    let error = wrong.compute_with(&LocalScheduler::new()).unwrap_err().to_string();
    assert!(error.contains("promised") && error.contains("declare what it returns"), "{error}");
    let message = frame.drop_duplicates(Some(&["nope"]), Keep::First).err().unwrap().to_string();
    assert!(message.contains("unknown column `nope`"), "{message}");
}
