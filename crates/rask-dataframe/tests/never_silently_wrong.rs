//! Regression tests of issue "Never silently wrong": each test is named after the problem a
//! new user met. Wrong input must be refused with an error that names the column, the type or
//! the value and the fix; CSV text must read as pandas and Polars users expect.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use rask_dataframe::{agg, from_polars, read_csv, CsvOptions, DataFrame as RaskFrame};
use rask_local::{ComputeExt, LocalScheduler};

fn compute(frame: &RaskFrame) -> DataFrame {
    frame.compute_with(&LocalScheduler::new().threads(2)).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn csv(path: &Path, options: CsvOptions) -> RaskFrame {
    read_csv(path.to_str().unwrap(), options).unwrap()
}

fn error_of<T: std::fmt::Debug, E: std::fmt::Display>(result: Result<T, E>) -> String {
    result.expect_err("an error").to_string()
}

/// A column whose first values are `NA` (read as text when `NA` is not a null marker), then
/// numbers, and a column of names.
fn scores_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("name,score\n");
    for i in 0..20 {
        let score = if i < 3 { "NA".to_string() } else { format!("{}", i * 10) };
        text.push_str(&format!("person{i},{score}\n"));
    }
    write(dir, "scores.csv", &text)
}

#[test]
fn mean_std_and_var_of_a_text_column_are_refused_naming_the_column_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = scores_csv(dir.path());
    // With the defaults off, `NA` is text and so is the column.
    let frame = csv(&path, CsvOptions::default().keep_default_na(false));
    assert_eq!(frame.schema().get("score"), Some(&DataType::String));
    for aggregation in [agg::mean("score"), agg::std("score"), agg::var("score"), agg::sum("score")]
    {
        let message = error_of(frame.agg([aggregation]));
        assert!(message.contains("`score`") && message.contains("String"), "{message}");
        assert!(message.contains("null_values([\"NA\"])"), "suggests null_values: {message}");
    }
    // A column of names: the mean of names was 0.0.
    let message = error_of(frame.group_by(["score"]).agg([agg::mean("name")]));
    assert!(message.contains("`name`") && message.contains("holds text"), "{message}");
    assert!(!message.contains("null_values"), "names are not null markers: {message}");
    // The fix works: with `NA` as null (the default now) the mean is of the 17 numbers.
    let fixed = compute(&csv(&path, CsvOptions::default()).agg([agg::mean("score")]).unwrap());
    let expected = (3..20).map(|i| f64::from(i * 10)).sum::<f64>() / 17.0;
    let mean = fixed.column("score").unwrap().f64().unwrap().get(0).unwrap();
    assert!((mean - expected).abs() < 1e-9, "{mean} != {expected}");
}

#[test]
fn a_column_that_was_all_missing_in_the_sample_suggests_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,late\n");
    for i in 0..200 {
        let late = if i < 100 { String::new() } else { format!("{i}.5") };
        text.push_str(&format!("{i},{late}\n"));
    }
    let path = write(dir.path(), "late.csv", &text);
    let frame = csv(&path, CsvOptions::default().sample_bytes(300));
    assert_eq!(frame.schema().get("late"), Some(&DataType::String));
    let message = error_of(frame.agg([agg::mean("late")]));
    assert!(message.contains("dtypes([(\"late\", DataType::Float64)])"), "{message}");
    let typed =
        csv(&path, CsvOptions::default().sample_bytes(300).dtypes([("late", DataType::Float64)]));
    let sum = compute(&typed.agg([agg::sum("late")]).unwrap());
    let expected: f64 = (100..200).map(|i| f64::from(i) + 0.5).sum();
    assert_eq!(sum.column("late").unwrap().f64().unwrap().get(0), Some(expected));
}

/// A frame with one column of every kind an aggregation might be given.
fn typed_frame() -> DataFrame {
    let dates = Column::new("date".into(), [Some(19_000i32), None, Some(18_000), Some(19_500)])
        .cast(&DataType::Date)
        .unwrap();
    let times = Column::new("time".into(), [Some(5i64), Some(1_000_000), None, Some(7)])
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap();
    let durations = Column::new("wait".into(), [Some(3i64), Some(1), Some(2), None])
        .cast(&DataType::Duration(TimeUnit::Microseconds))
        .unwrap();
    let category = Column::new("kind".into(), ["b", "a", "b", "c"])
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    DataFrame::new_infer_height(vec![
        Column::new("text".into(), [Some("b"), Some("a"), None, Some("c")]),
        Column::new("flag".into(), [Some(true), Some(false), Some(true), None]),
        dates,
        times,
        durations,
        category,
        Column::new("x".into(), [1.5f64, 2.5, -1.0, 4.0]),
    ])
    .unwrap()
}

#[test]
fn every_aggregation_of_a_non_numeric_column_is_refused_or_equals_polars() {
    let data = typed_frame();
    type Make = fn(&str) -> rask_dataframe::Agg;
    type PolarsAgg = fn(Expr) -> Expr;
    let aggregations: [(&str, Make, PolarsAgg); 11] = [
        ("sum", agg::sum, |e| e.sum()),
        ("mean", agg::mean, |e| e.mean()),
        ("min", agg::min, |e| e.min()),
        ("max", agg::max, |e| e.max()),
        ("std", agg::std, |e| e.std(1)),
        ("var", agg::var, |e| e.var(1)),
        ("median", agg::median, |e| e.median()),
        ("count", agg::count, |e| e.count()),
        ("n_unique", agg::n_unique, |e| e.n_unique()),
        ("first", agg::first, |e| e.first()),
        ("last", agg::last, |e| e.last()),
    ];
    let mut refused = Vec::new();
    for column in ["text", "flag", "date", "time", "wait", "kind"] {
        for (name, make, polars_agg) in &aggregations {
            for parts in [1u32, 3] {
                let frame = from_polars(data.clone(), parts).unwrap();
                match frame.agg([make(column)]) {
                    Err(error) => {
                        let message = error.to_string();
                        assert!(message.contains(&format!("`{name}` of `{column}`")), "{message}");
                        if parts == 1 {
                            refused.push(format!("{name}({column})"));
                        }
                    }
                    Ok(lazy) => {
                        // Allowed: the same value and type as Polars on the whole frame.
                        let ours = compute(&lazy);
                        let theirs = data
                            .clone()
                            .lazy()
                            .select([polars_agg(col(column))])
                            .collect()
                            .unwrap();
                        let (a, b) = (ours.column(column).unwrap(), theirs.column(column).unwrap());
                        let same_type = a.dtype() == b.dtype()
                            || (a.dtype().is_integer() && b.dtype().is_integer());
                        let a = a.cast(b.dtype()).unwrap();
                        assert!(
                            same_type
                                && a.as_materialized_series()
                                    .equals_missing(b.as_materialized_series()),
                            "{name}({column}) over {parts} partitions: {ours} vs Polars {theirs}"
                        );
                    }
                }
            }
        }
    }
    // The silent coercions are gone: numbers-only aggregations refuse text, dates and times,
    // durations and categoricals; ordering ones refuse categoricals.
    for expected in [
        "sum(text)",
        "mean(text)",
        "std(text)",
        "var(text)",
        "median(text)",
        "mean(date)",
        "std(time)",
        "median(wait)",
        "mean(wait)",
        "sum(kind)",
        "min(kind)",
    ] {
        assert!(refused.contains(&expected.to_string()), "{expected} not refused: {refused:?}");
    }
    for allowed in
        ["min(text)", "max(date)", "sum(flag)", "mean(flag)", "count(text)", "n_unique(kind)"]
    {
        assert!(!refused.contains(&allowed.to_string()), "{allowed} refused");
    }
}

#[test]
fn correlation_covariance_and_quantiles_of_text_are_refused() {
    let frame = from_polars(typed_frame(), 2).unwrap();
    for message in [
        error_of(frame.corr(&["x", "text"])),
        error_of(frame.cov(&["date", "x"])),
        error_of(frame.quantiles("text", &[0.5])),
        error_of(frame.quantiles("flag", &[0.5])),
    ] {
        assert!(message.starts_with("cannot take `"), "{message}");
    }
    assert!(frame.corr(&["x", "flag"]).is_ok(), "booleans are numbers to a correlation");
}

#[test]
fn two_aggregations_of_one_column_without_aliases_are_refused_when_the_plan_is_built() {
    let frame = from_polars(typed_frame(), 2).unwrap();
    let message = error_of(frame.agg([agg::mean("x"), agg::max("x")]));
    assert!(message.contains("named `x`") && message.contains(".alias("), "{message}");
    let message = error_of(frame.group_by(["text"]).agg([agg::first("text")]));
    assert!(message.contains("group key `text`"), "{message}");
    let message = error_of(frame.agg([agg::mean("nope")]));
    assert!(message.contains("unknown column `nope`"), "{message}");
    let fine = frame.agg([agg::mean("x"), agg::max("x").alias("x_max")]).unwrap();
    assert_eq!(compute(&fine).get_column_names(), ["x", "x_max"]);
}

#[test]
fn csv_reads_the_null_markers_pandas_reads_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        "1,2.5,a,2015-01-01 00:00:00",
        "NA,NaN,N/A,null",
        ",,,",
        "null,N/A,NULL,NA",
        "-nan,#N/A,None,",
        "4,5.5,b,2015-01-02 00:00:00",
    ];
    let text = format!("i,f,s,d\n{}\n", rows.join("\n"));
    let plain = write(dir.path(), "plain.csv", &text);
    // A quote sends the block to Polars' reader instead of the fast scanner: both must agree.
    let quoted = write(dir.path(), "quoted.csv", &text.replace(",a,", ",\"a\","));
    for path in [&plain, &quoted] {
        let frame = compute(&csv(path, CsvOptions::default().parse_dates(["d"])));
        assert_eq!(frame.column("i").unwrap().dtype(), &DataType::Int64);
        assert_eq!(frame.column("f").unwrap().dtype(), &DataType::Float64);
        for column in ["i", "f", "s", "d"] {
            assert_eq!(
                frame.column(column).unwrap().null_count(),
                4,
                "{column} of {path:?}: {frame}"
            );
        }
        assert_eq!(frame.column("f").unwrap().f64().unwrap().get(5), Some(5.5));
    }
    // keep_default_na(false): only the empty field is null; markers are text.
    let kept = compute(&csv(&plain, CsvOptions::default().keep_default_na(false)));
    assert_eq!(kept.column("s").unwrap().dtype(), &DataType::String);
    assert_eq!(kept.column("s").unwrap().null_count(), 1);
    assert_eq!(kept.column("i").unwrap().str().unwrap().get(1), Some("NA"));
    // null_values adds markers to the defaults, even ones that look like numbers.
    let extra = write(dir.path(), "extra.csv", "i,f\n1,-999\n-,2.5\nNA,3.5\n");
    let frame = compute(&csv(&extra, CsvOptions::default().null_values(["-", "-999"])));
    assert_eq!(
        frame.column("i").unwrap().i64().unwrap().iter().collect::<Vec<_>>(),
        [Some(1), None, None]
    );
    assert_eq!(frame.column("f").unwrap().f64().unwrap().get(0), None);
}

#[test]
fn a_type_mismatch_beyond_the_sample_on_a_null_marker_suggests_null_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,fare\n");
    for i in 0..500 {
        let fare = if i == 400 { "-".to_string() } else { format!("{i}") };
        text.push_str(&format!("{i},{fare}\n"));
    }
    let path = write(dir.path(), "fares.csv", &text);
    let frame = csv(&path, CsvOptions::default().sample_bytes(200));
    let message = error_of(frame.agg([agg::sum("fare")]).unwrap().compute());
    assert!(message.contains("`fare`"), "{message}");
    assert!(message.contains("null_values([\"-\"])"), "{message}");
    let fixed = csv(&path, CsvOptions::default().sample_bytes(200).null_values(["-"]));
    let sum = compute(&fixed.agg([agg::sum("fare")]).unwrap());
    let expected: i64 = (0..500).filter(|i| *i != 400).sum();
    assert_eq!(sum.column("fare").unwrap().i64().unwrap().get(0), Some(expected));
}

#[test]
fn errors_give_rask_options_instead_of_polars_python_advice() {
    let dir = tempfile::tempdir().unwrap();
    // A line with more fields than the header, inside the sample and beyond it.
    let ragged = write(dir.path(), "ragged.csv", "a,b\n1,2\n3,4,5\n6,7\n");
    let message = error_of(read_csv(ragged.to_str().unwrap(), CsvOptions::default()));
    assert!(message.contains("line 3") && message.contains("\"3,4,5\""), "{message}");
    assert!(message.contains("truncate_ragged_lines(true)"), "{message}");
    assert!(!message.contains("truncate_ragged_lines="), "Python advice: {message}");
    let mut long = String::from("a,b\n");
    for i in 0..300 {
        long.push_str(if i == 250 { "3,4,5\n" } else { "1,2\n" });
    }
    let beyond = write(dir.path(), "beyond.csv", &long);
    let frame = csv(&beyond, CsvOptions::default().sample_bytes(100));
    let message = error_of(frame.agg([agg::sum("a")]).unwrap().compute());
    assert!(message.contains("truncate_ragged_lines(true)"), "{message}");
    // The option reads such lines: the extra field is dropped.
    for path in [&ragged, &beyond] {
        let read = csv(path, CsvOptions::default().sample_bytes(100).truncate_ragged_lines(true));
        let frame = compute(&read);
        assert_eq!(frame.width(), 2);
        assert_eq!(frame.column("b").unwrap().null_count(), 0, "{frame}");
    }
    // A value that does not parse: rask's options, not `schema_overrides` or `ignore_errors`.
    let mut text = String::from("a,b\n");
    for i in 0..300 {
        text.push_str(&format!("{i},{}\n", if i == 250 { "x7" } else { "1" }));
    }
    let bad = write(dir.path(), "bad.csv", &text);
    let frame = csv(&bad, CsvOptions::default().sample_bytes(100));
    let message = error_of(frame.agg([agg::sum("b")]).unwrap().compute());
    for python in ["schema_overrides", "infer_schema_length", "ignore_errors`", "=True"] {
        assert!(!message.contains(python), "Python advice `{python}`: {message}");
    }
    assert!(message.contains("`b`") && message.contains("x7"), "{message}");
    let lenient = csv(&bad, CsvOptions::default().sample_bytes(100).ignore_errors(true));
    let sum = compute(&lenient.agg([agg::sum("b"), agg::count("b").alias("n")]).unwrap());
    assert_eq!(sum.column("b").unwrap().i64().unwrap().get(0), Some(299));
    assert_eq!(sum.column("n").unwrap().u32().unwrap().get(0), Some(299));
}

#[test]
fn from_polars_with_zero_partitions_is_an_error() {
    let message = error_of(from_polars(typed_frame(), 0));
    assert!(message.contains("at least one partition"), "{message}");
}

#[test]
fn an_aggregation_failing_inside_polars_names_the_column_and_the_value() {
    // A function that returns text where it declared numbers: the mean must not read the text
    // as null.
    let numbers = df!("x" => [1.0f64, 2.0, 3.0]).unwrap();
    let declared = numbers.schema().as_ref().clone();
    let lying = from_polars(numbers, 2)
        .unwrap()
        .map_partitions("as_text", declared, |frame| {
            frame
                .lazy()
                .select([col("x").cast(DataType::String).alias("x")])
                .with_columns([when(col("x").eq(lit("2.0")))
                    .then(lit("two"))
                    .otherwise(col("x"))
                    .alias("x")])
                .collect()
                .map_err(|e| e.to_string())
        })
        .unwrap();
    let message = error_of(lying.agg([agg::mean("x")]).unwrap().compute());
    assert!(message.contains("'x'") || message.contains("`x`"), "{message}");
    assert!(message.contains("two"), "{message}");
    // A strict cast in the query names them too, and is not called malformed CSV.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "codes.csv", "code\n1\n2\nx9\n");
    let cast = csv(&path, CsvOptions::default()).cast([("code", DataType::Int64)]).unwrap();
    let message = error_of(cast.compute());
    assert!(message.contains("x9") && !message.contains("malformed"), "{message}");
}
