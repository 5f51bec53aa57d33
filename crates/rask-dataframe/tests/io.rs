//! CSV and Parquet: blocks cut anywhere, odd files, and every kind of bad input.

use std::fs;

use polars::prelude::*;
use rask_dataframe::{agg, read_csv, read_parquet, CsvOptions, ParquetOptions, WriteOptions};
use rask_local::{ComputeExt, LocalScheduler};

fn compute(frame: &rask_dataframe::DataFrame) -> DataFrame {
    frame.compute_with(&LocalScheduler::new().threads(2)).unwrap()
}

fn polars_csv(path: &std::path::Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(None)
        .try_into_reader_with_file_path(Some(path.into()))
        .unwrap()
        .finish()
        .unwrap()
}

#[test]
fn blocks_cut_at_every_byte_offset_read_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("plain.csv", "a,b,name\n1,2.5,x\n3,4.5,yy\n5,6.5,zzz\n7,8.5,é\n9,10.5,日本\n"),
        ("crlf.csv", "a,b,name\r\n1,2.5,x\r\n3,4.5,yy\r\n5,6.5,zzz\r\n"),
        ("no-final-newline.csv", "a,b,name\n1,2.5,x\n3,4.5,yy"),
        ("blank-lines.csv", "a,b,name\n1,2.5,x\n\n3,4.5,yy\n\r\n5,,\n"),
        ("quoted.csv", "a,b,name\n1,2.5,\"x,y\"\n3,4.5,\"q\"\n5,6.5,z\n"),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        let expected = polars_csv(&path);
        for blocksize in 1..=text.len() as u64 + 1 {
            let df =
                read_csv(path.to_str().unwrap(), CsvOptions::default().blocksize(Some(blocksize)))
                    .unwrap();
            let got = compute(&df);
            assert!(
                got.equals_missing(&expected),
                "{name} with blocksize {blocksize}:\n{got}\nvs\n{expected}"
            );
            // Counting rows (without parsing them) agrees.
            let rows = df.len().unwrap().compute().unwrap();
            assert_eq!(rows, expected.height() as u64, "{name} with blocksize {blocksize}");
        }
    }
}

#[test]
fn header_only_files_give_zero_rows_with_the_right_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.csv");
    fs::write(&path, "a,b,c\n").unwrap();
    let df = read_csv(path.to_str().unwrap(), CsvOptions::default()).unwrap();
    assert_eq!(df.columns(), ["a", "b", "c"]);
    let out = compute(&df);
    assert_eq!(out.height(), 0);
    assert_eq!(out.width(), 3);
    assert_eq!(df.len().unwrap().compute().unwrap(), 0);
}

#[test]
fn globs_usecols_dtypes_and_parse_dates() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        fs::write(
            dir.path().join(format!("part-{i}.csv")),
            format!(
                "when,n,x\n2015-01-0{} 10:00:00,{i},1.5\n2015-01-0{} 11:30:00,{},2.5\n",
                i + 1,
                i + 1,
                i * 10
            ),
        )
        .unwrap();
    }
    let pattern = format!("{}/*.csv", dir.path().display());
    let options = CsvOptions::default()
        .parse_dates(["when"])
        .dtypes([("n", DataType::Float64)])
        .usecols(["when", "n"]);
    let df = read_csv(&pattern, options).unwrap();
    assert_eq!(df.columns(), ["when", "n"]);
    let out = compute(&df);
    assert_eq!(out.height(), 6);
    assert!(matches!(out.column("when").unwrap().dtype(), DataType::Datetime(..)));
    assert_eq!(out.column("n").unwrap().dtype(), &DataType::Float64);
    let hours = compute(
        &df.with_column(col("when").dt().hour().alias("h")).unwrap().agg([agg::sum("h")]).unwrap(),
    );
    assert_eq!(hours.column("h").unwrap().get(0).unwrap().extract::<i64>(), Some(3 * (10 + 11)));
}

#[test]
fn missing_files_and_empty_globs_name_the_pattern() {
    let err = read_csv("/no/such/dir/*.csv", CsvOptions::default()).unwrap_err().to_string();
    assert!(err.contains("/no/such/dir/*.csv") && err.contains("no files"), "{err}");
    let err =
        read_parquet("/no/such/file.parquet", ParquetOptions::default()).unwrap_err().to_string();
    assert!(err.contains("/no/such/file.parquet"), "{err}");
}

#[test]
fn a_malformed_line_names_the_file_the_byte_offset_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let mut text = String::from("a,b\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{i}\n"));
    }
    let offset = text.len();
    text.push_str("1,2,3,4\n");
    text.push_str("5,6\n");
    fs::write(&path, &text).unwrap();
    let df = read_csv(
        path.to_str().unwrap(),
        CsvOptions::default().blocksize(Some(64)).sample_bytes(100),
    )
    .unwrap();
    let err = df.compute_with(&LocalScheduler::sync()).unwrap_err().to_string();
    assert!(err.contains("bad.csv"), "{err}");
    assert!(err.contains(&format!("byte {offset}")), "{err}");
    assert!(err.contains("line 52"), "{err}");
}

#[test]
fn mixed_types_list_every_offending_column_with_a_ready_override() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let mut text = String::from("id,price,flag,name\n");
    for i in 0..2000 {
        text.push_str(&format!("{i},{}.5,true,n{i}\n", i));
    }
    text.push_str("x17,cheap,true,last\n");
    fs::write(&path, &text).unwrap();
    // The sample covers only the first rows, so `id` and `price` look numeric.
    let df = read_csv(path.to_str().unwrap(), CsvOptions::default().sample_bytes(1000)).unwrap();
    let err = df.compute_with(&LocalScheduler::sync()).unwrap_err().to_string();
    assert!(err.contains("`id`") && err.contains("\"x17\""), "{err}");
    assert!(err.contains("`price`") && err.contains("\"cheap\""), "{err}");
    assert!(!err.contains("`flag`"), "{err}");
    assert!(
        err.contains("dtypes([(\"id\", DataType::String), (\"price\", DataType::String)])"),
        "{err}"
    );
}

#[test]
fn quoted_line_breaks_are_refused_for_blocks_and_read_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quoted.csv");
    fs::write(&path, "a,note\n1,\"two\nlines\"\n2,plain\n").unwrap();
    let err = read_csv(path.to_str().unwrap(), CsvOptions::default().blocksize(Some(8)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("quoted") && err.contains("blocksize(None)"), "{err}");
    let df = read_csv(path.to_str().unwrap(), CsvOptions::default().blocksize(None)).unwrap();
    let out = compute(&df);
    assert_eq!(out.height(), 2);
    assert_eq!(out.column("note").unwrap().str().unwrap().get(0), Some("two\nlines"));
}

#[test]
fn nulls_in_group_keys_are_kept_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.csv");
    fs::write(&path, "k,v\na,1\n,2\nb,3\n,4\na,5\n").unwrap();
    let df = read_csv(path.to_str().unwrap(), CsvOptions::default().blocksize(Some(6))).unwrap();
    let kept = compute(&df.group_by(["k"]).agg([agg::sum("v")]).unwrap());
    assert_eq!(kept.height(), 3);
    assert_eq!(
        kept.column("v").unwrap().get(0).unwrap().extract::<i64>(),
        Some(6),
        "null group first:\n{kept}"
    );
    let dropped = compute(&df.group_by(["k"]).dropna(true).agg([agg::sum("v")]).unwrap());
    assert_eq!(dropped.height(), 2);
}

#[test]
fn parquet_round_trips_and_counts_rows_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    let mut text = String::from("a,b\n");
    for i in 0..1000 {
        text.push_str(&format!("{i},{}\n", i % 7));
    }
    fs::write(&csv, &text).unwrap();
    let df = read_csv(csv.to_str().unwrap(), CsvOptions::default().blocksize(Some(1500))).unwrap();
    let target = dir.path().join("out");
    let written = df.to_parquet(target.to_str().unwrap(), WriteOptions::default()).unwrap();
    assert_eq!(written, 1000);
    let back = read_parquet(target.to_str().unwrap(), ParquetOptions::default()).unwrap();
    assert_eq!(back.npartitions(), df.npartitions());
    assert!(compute(&back).equals_missing(&compute(&df)));
    // Counting rows reads no data: the count is a literal from the footers, no task reads.
    let len = back.len().unwrap();
    assert_eq!(rask_core::Collection::graph(&len).num_tasks(), 1);
    assert_eq!(len.compute().unwrap(), 1000);
    let filtered = back.filter(col("b").eq(lit(3))).unwrap();
    assert_eq!(filtered.len().unwrap().compute().unwrap(), 1000 / 7 + 1);
    let projected =
        read_parquet(target.to_str().unwrap(), ParquetOptions::default().columns(["b"])).unwrap();
    assert_eq!(compute(&projected).width(), 1);
}

#[test]
fn parquet_pieces_filter_project_and_limit_like_polars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("groups.parquet");
    let mut frame = df!(
        "t" => (0..1000i64).collect::<Vec<_>>(),
        "v" => (0..1000).map(|i| f64::from(i % 13)).collect::<Vec<_>>(),
        "s" => (0..1000).map(|i| format!("s{}", i % 5)).collect::<Vec<_>>()
    )
    .unwrap();
    ParquetWriter::new(fs::File::create(&path).unwrap())
        .with_row_group_size(Some(100))
        .finish(&mut frame)
        .unwrap();
    let path = path.to_str().unwrap();
    for split in [false, true] {
        let df = read_parquet(path, ParquetOptions::default().split_row_groups(split)).unwrap();
        assert_eq!(df.npartitions(), if split { 10 } else { 1 });
        assert!(compute(&df).equals_missing(&frame), "split {split}");
        // A filter (Polars' own scan prunes row groups) and a projection.
        let filtered = df.filter(col("v").gt(lit(6.0)).and(col("t").lt(lit(450)))).unwrap();
        let got = compute(&filtered.select([col("s"), col("t")]).unwrap());
        let expected = frame
            .clone()
            .lazy()
            .filter(col("v").gt(lit(6.0)).and(col("t").lt(lit(450))))
            .select([col("s"), col("t")])
            .collect()
            .unwrap();
        assert!(got.equals_missing(&expected), "split {split}: {got} vs {expected}");
        // A row limit, inside a piece and across pieces.
        for n in [5, 150] {
            assert!(df.head(n).unwrap().equals_missing(&frame.head(Some(n))), "head {n}");
            assert!(df.tail(n).unwrap().equals_missing(&frame.tail(Some(n))), "tail {n}");
        }
        let sum = df.agg([agg::sum("v")]).unwrap().compute().unwrap();
        let expected: f64 = (0..1000).map(|i| f64::from(i % 13)).sum();
        assert_eq!(sum.column("v").unwrap().f64().unwrap().get(0), Some(expected));
    }
}

#[test]
fn writes_refuse_existing_targets_overwrite_and_append_without_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ds");
    let path = target.to_str().unwrap();
    let first =
        rask_dataframe::from_polars(df!("t" => (0..100i64).collect::<Vec<_>>()).unwrap(), 3)
            .unwrap();
    first.to_parquet(path, WriteOptions::default().index("t")).unwrap();
    let err = first.to_parquet(path, WriteOptions::default()).unwrap_err().to_string();
    assert!(err.contains("already exists") && err.contains("overwrite"), "{err}");
    let overlapping = first
        .to_parquet(path, WriteOptions::default().append(true).index("t"))
        .unwrap_err()
        .to_string();
    assert!(overlapping.contains("overlap"), "{overlapping}");
    let later =
        rask_dataframe::from_polars(df!("t" => (100..150i64).collect::<Vec<_>>()).unwrap(), 2)
            .unwrap();
    later.to_parquet(path, WriteOptions::default().append(true).index("t")).unwrap();
    let all = read_parquet(path, ParquetOptions::default()).unwrap();
    assert_eq!(all.npartitions(), 5);
    assert_eq!(all.len().unwrap().compute().unwrap(), 150);
    later.to_parquet(path, WriteOptions::default().overwrite(true)).unwrap();
    assert_eq!(
        read_parquet(path, ParquetOptions::default()).unwrap().len().unwrap().compute().unwrap(),
        50
    );
}

#[test]
fn a_failed_write_leaves_the_old_dataset_intact() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ds");
    let path = target.to_str().unwrap();
    let good = rask_dataframe::from_polars(df!("v" => [1i64, 2, 3]).unwrap(), 3).unwrap();
    good.to_parquet(path, WriteOptions::default()).unwrap();
    let failing = good
        .map_partitions("fail-on-2", good.schema().clone(), |f| {
            if f.column("v").unwrap().i64().unwrap().get(0) == Some(2) {
                Err("partition 1 cannot be computed".into())
            } else {
                Ok(f)
            }
        })
        .unwrap();
    let err =
        failing.to_parquet(path, WriteOptions::default().overwrite(true)).unwrap_err().to_string();
    assert!(err.contains("cannot be computed"), "{err}");
    let still = read_parquet(path, ParquetOptions::default()).unwrap();
    assert_eq!(
        compute(&still).column("v").unwrap().i64().unwrap().iter().flatten().collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // No staging directory is left behind.
    let leftovers: Vec<_> =
        fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("ds")]);
}

#[test]
fn a_corrupt_parquet_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.parquet");
    fs::write(&path, b"PAR1 this is not parquet at all PAR1").unwrap();
    let err =
        read_parquet(path.to_str().unwrap(), ParquetOptions::default()).unwrap_err().to_string();
    assert!(err.contains("broken.parquet") && err.contains("not a valid Parquet file"), "{err}");
}

#[test]
fn head_reads_only_the_first_partition() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.csv");
    let bad = dir.path().join("b.csv");
    fs::write(&good, "x\n1\n2\n3\n").unwrap();
    // A later file that would fail to parse: head(2) must not read it.
    fs::write(&bad, "x\noops\n").unwrap();
    let df = read_csv(&format!("{}/*.csv", dir.path().display()), CsvOptions::default()).unwrap();
    let head = df.head(2).unwrap();
    assert_eq!(
        head.column("x").unwrap().i64().unwrap().iter().flatten().collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(df.compute_with(&LocalScheduler::sync()).is_err());
}

#[test]
fn parquet_statistics_give_divisions_and_prune_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("ordered");
    let path = target.to_str().unwrap();
    let t: Vec<i64> = (0..100).collect();
    let v: Vec<f64> = t.iter().map(|x| *x as f64 * 0.5).collect();
    rask_dataframe::from_polars(df!("t" => t, "v" => v).unwrap(), 4)
        .unwrap()
        .to_parquet(path, WriteOptions::default())
        .unwrap();

    let df = read_parquet(path, ParquetOptions::default().index("t")).unwrap();
    let divisions = df.divisions().expect("divisions from the statistics");
    assert_eq!(divisions.column, "t");
    assert_eq!(divisions.bounds, [(0.0, 24.0), (25.0, 49.0), (50.0, 74.0), (75.0, 99.0)]);
    assert!(divisions.sorted());
    assert!(df.to_string().contains("divisions on `t`: 0..=24, 25..=49"), "{df}");
    // Row subsets and renames keep them; a computed column may replace the index.
    assert!(df.filter(col("v").gt(lit(3.0))).unwrap().divisions().is_some());
    assert_eq!(df.rename([("t", "time")]).unwrap().divisions().unwrap().column, "time");
    assert!(df.with_column((col("t") * lit(2)).alias("t")).unwrap().divisions().is_none());
    assert!(read_parquet(path, ParquetOptions::default()).unwrap().divisions().is_none());

    // Only the partitions whose statistics overlap the range are read.
    let pruned =
        read_parquet(path, ParquetOptions::default().index("t").index_range(30.0, 60.0)).unwrap();
    assert_eq!(pruned.npartitions(), 2);
    let rows = compute(&pruned);
    let ts: Vec<i64> = rows.column("t").unwrap().i64().unwrap().iter().flatten().collect();
    assert_eq!(ts, (25..75).collect::<Vec<_>>());
    let err = read_parquet(path, ParquetOptions::default().index("t").index_range(500.0, 600.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("500..=600"), "{err}");
    let err = read_parquet(path, ParquetOptions::default().index_range(1.0, 2.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("index(\"column\")"), "{err}");
    let err = read_parquet(path, ParquetOptions::default().index("nope")).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("t, v"), "{err}");
}

#[test]
fn csv_datasets_round_trip_and_append_after_the_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("in.csv");
    let rows: Vec<String> = (0..500).map(|i| format!("{i},{}.5,name {}\n", i % 7, i % 3)).collect();
    fs::write(&source, format!("id,x,name\n{}", rows.concat())).unwrap();
    let frame =
        read_csv(source.to_str().unwrap(), CsvOptions::default().blocksize(Some(2_000))).unwrap();
    assert!(frame.npartitions() > 3);
    let target = dir.path().join("out");
    let written = frame.to_csv(target.to_str().unwrap(), WriteOptions::default()).unwrap();
    assert_eq!(written, 500);
    let files = fs::read_dir(&target).unwrap().count();
    assert_eq!(files, frame.npartitions() as usize, "one file per partition");
    let back =
        compute(&read_csv(&format!("{}/*.csv", target.display()), CsvOptions::default()).unwrap());
    let sorted = |df: DataFrame| df.sort(["id"], Default::default()).unwrap();
    assert!(sorted(back).equals_missing(&sorted(polars_csv(&source))));
    // A second write refuses; an append adds files numbered after the existing ones.
    let message =
        frame.to_csv(target.to_str().unwrap(), WriteOptions::default()).unwrap_err().to_string();
    assert!(message.contains("already exists"), "{message}");
    frame.to_csv(target.to_str().unwrap(), WriteOptions::default().append(true)).unwrap();
    assert_eq!(fs::read_dir(&target).unwrap().count(), 2 * files);
    let all = read_csv(&format!("{}/*.csv", target.display()), CsvOptions::default()).unwrap();
    assert_eq!(all.len().unwrap().compute().unwrap(), 1000);
    let message = frame
        .to_csv(target.to_str().unwrap(), WriteOptions::default().append(true).index("id"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("to_csv takes no index"), "{message}");
}

#[test]
fn json_lines_are_read_in_blocks_exactly_once_with_inferred_or_given_types() {
    let dir = tempfile::tempdir().unwrap();
    for file in 0..3 {
        let lines: Vec<String> = (0..300)
            .map(|i| {
                let id = file * 1000 + i;
                let tag = if i % 5 == 0 { "null".to_string() } else { format!("\"t{}\"", i % 4) };
                format!(
                    "{{\"id\": {id}, \"score\": {}.25, \"tag\": {tag}, \"ok\": {}}}\n",
                    i % 9,
                    i % 2 == 0
                )
            })
            .collect();
        fs::write(dir.path().join(format!("part-{file}.json")), lines.concat()).unwrap();
    }
    let pattern = format!("{}/*.json", dir.path().display());
    for blocksize in [None, Some(997), Some(4_096)] {
        let frame = rask_dataframe::read_json(
            &pattern,
            rask_dataframe::JsonOptions::default().blocksize(blocksize),
        )
        .unwrap();
        let got = compute(&frame).sort(["id"], Default::default()).unwrap();
        assert_eq!(got.height(), 900, "blocksize {blocksize:?}");
        assert_eq!(
            got.column("id").unwrap().i64().unwrap().into_no_null_iter().collect::<Vec<_>>(),
            (0..3).flat_map(|f| (0..300).map(move |i| f * 1000 + i)).collect::<Vec<i64>>()
        );
        assert_eq!(got.column("tag").unwrap().null_count(), 180);
        assert_eq!(got.column("score").unwrap().dtype(), &DataType::Float64);
        assert_eq!(got.column("ok").unwrap().dtype(), &DataType::Boolean);
        // Queries run inside the read, as for CSV.
        let mean = compute(&frame.filter(col("ok")).unwrap().agg([agg::mean("score")]).unwrap());
        let expected: f64 =
            (0..300).filter(|i| i % 2 == 0).map(|i| f64::from(i % 9) + 0.25).sum::<f64>() / 150.0;
        assert!(
            (mean.column("score").unwrap().f64().unwrap().get(0).unwrap() - expected).abs() < 1e-9
        );
    }
    let typed = rask_dataframe::read_json(
        &pattern,
        rask_dataframe::JsonOptions::default().dtypes([("id", DataType::Float64)]),
    )
    .unwrap();
    assert_eq!(typed.schema().get("id"), Some(&DataType::Float64));
    let message = rask_dataframe::read_json(
        &pattern,
        rask_dataframe::JsonOptions::default().dtypes([("nope", DataType::Int64)]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(message.contains("unknown column `nope`"), "{message}");
    // A broken line fails naming the file and where its block starts.
    fs::write(
        dir.path().join("part-9.json"),
        "{\"id\": 1, \"score\": 2.0, \"tag\": \"a\", \"ok\": true}\n{\"id\": oops}\n",
    )
    .unwrap();
    let error = compute_err(&rask_dataframe::read_json(&pattern, Default::default()).unwrap());
    assert!(error.contains("part-9.json") && error.contains("from byte"), "{error}");
}

fn compute_err(frame: &rask_dataframe::DataFrame) -> String {
    frame.compute_with(&LocalScheduler::new()).unwrap_err().to_string()
}
