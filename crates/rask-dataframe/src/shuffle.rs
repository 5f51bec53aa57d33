//! DataFrame shuffles: rows moved between partitions by a hash of key columns (joins of two
//! large frames, [`DataFrame::shuffle`]) or by ranges of one column (sorting, `set_index`), on
//! rask-core's [`Shuffle`] — split, pick, assemble, every output verified against what the
//! inputs sent.
//!
//! A split hashes every row once (the checksums, summed by output into the pieces' tallies),
//! gathers the rows of each output together in one frame (one `take` of the whole partition)
//! and keeps where each output's rows start; a pick is a zero-copy slice of it with
//! the split's tally; an assemble task concatenates its pieces in input order (so equal keys
//! keep their order: the shuffle is stable), checks the tally, and may sort what it built.
//! Splits and pieces cross processes as Arrow IPC behind a small header.

use std::sync::Arc;

use rask_core::partitioned::{shuffle, Shuffle, Tally};
use rask_core::{Arg, Graph, Layer, Name, TaskError, TaskResult, Tokenizer, Value};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::polars_adapter::shuffle::{self as pls, RangeSplit};
use crate::polars_adapter::{self as pl, PlFrame, Schema};
use crate::tasks::{self, arg, frame_of, partition_value};

/// Which output each row goes to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Partitioning {
    /// By a hash of these columns.
    Hash(Vec<String>),
    /// By where one column's value falls among boundaries.
    Range(RangeSplit),
}
rask_core::register_type!(Partitioning);

/// What each assemble task does after checking its rows: sort them, or not.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Assemble {
    /// The columns to sort by, with a direction each.
    pub sort_by: Vec<(String, bool)>,
    /// Nulls after the values.
    pub nulls_last: bool,
    /// The schema of the partitions (for outputs that receive no rows).
    pub schema: Schema,
}
rask_core::register_type!(Assemble);

/// The rows of one input by output, with the tally of each output's rows.
struct Shards {
    rows: PlFrame,
    offsets: Vec<usize>,
    tallies: Vec<Tally>,
}

/// One output's rows from one input, with the split's tally of them.
struct Piece {
    rows: PlFrame,
    sent: Tally,
}

/// A header (MessagePack, length-prefixed) followed by a frame as Arrow IPC.
fn encode_framed<H: Serialize>(
    header: &H,
    frame: &PlFrame,
) -> std::result::Result<Vec<u8>, String> {
    let header = rmp_serde::to_vec(header).map_err(|e| e.to_string())?;
    let ipc = pl::to_ipc(frame).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(8 + header.len() + ipc.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&ipc);
    Ok(out)
}

fn decode_framed<H: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &'static str,
) -> rask_core::Result<(H, PlFrame)> {
    let fail = |reason: String| rask_core::Error::Decode { type_name: what, reason };
    let length = bytes.get(..8).ok_or_else(|| fail("shorter than its header length".into()))?;
    let length = u64::from_le_bytes(length.try_into().expect("eight bytes")) as usize;
    let header = bytes
        .get(8..8usize.saturating_add(length))
        .ok_or_else(|| fail(format!("a header of {length} bytes in {} bytes", bytes.len())))?;
    let header = rmp_serde::from_slice(header).map_err(|e| fail(e.to_string()))?;
    let frame = pl::from_ipc(&bytes[8 + length..]).map_err(|e| fail(e.to_string()))?;
    Ok((header, frame))
}

fn shards_value(shards: Shards) -> Value {
    let size = pl::estimated_size(&shards.rows);
    Value::sized(shards, encode_shards, size)
}

fn encode_shards(shards: &Shards) -> std::result::Result<Vec<u8>, String> {
    encode_framed(&(&shards.offsets, &shards.tallies), &shards.rows)
}

fn decode_shards(bytes: &[u8]) -> rask_core::Result<Value> {
    let ((offsets, tallies), rows) = decode_framed(bytes, "the shards of a shuffle split")?;
    Ok(shards_value(Shards { rows, offsets, tallies }))
}

fn piece_value(piece: Piece) -> Value {
    let size = pl::estimated_size(&piece.rows);
    Value::sized(piece, encode_piece, size)
}

fn encode_piece(piece: &Piece) -> std::result::Result<Vec<u8>, String> {
    encode_framed(&piece.sent, &piece.rows)
}

fn decode_piece(bytes: &[u8]) -> rask_core::Result<Value> {
    let (sent, rows) = decode_framed(bytes, "a piece of a shuffle")?;
    Ok(piece_value(Piece { rows, sent }))
}

rask_core::__private::inventory::submit! {
    rask_core::codec::TypeCodec { type_name: std::any::type_name::<Shards>, decode: decode_shards }
}
rask_core::__private::inventory::submit! {
    rask_core::codec::TypeCodec { type_name: std::any::type_name::<Piece>, decode: decode_piece }
}

/// `split(partition, outputs, input, partitioning)`.
fn split(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let outputs = *arg::<u32>(args, 1, "the output count")?;
    let input = *arg::<u32>(args, 2, "the input index")?;
    let buckets = match arg::<Partitioning>(args, 3, "the partitioning")? {
        Partitioning::Hash(keys) => pls::hash_buckets(frame, keys, outputs)?,
        Partitioning::Range(range) => range.buckets(frame)?,
    };
    if let Some(&b) = buckets.iter().find(|&&b| b >= outputs) {
        return Err(TaskError::msg(format!(
            "a row of input {input} went to output {b} of {outputs}"
        )));
    }
    // One hash per row, summed by output: the pieces' tallies, which the outputs check what
    // they receive against.
    let checksums = pls::row_checksums(frame)?;
    let mut tallies = vec![Tally::default(); outputs as usize];
    for (&b, &h) in buckets.iter().zip(&checksums) {
        let tally = &mut tallies[b as usize];
        *tally = tally.plus(Tally { rows: 1, checksum: h });
    }
    let (rows, offsets) = pls::gather(frame, &buckets, outputs)?;
    // The gathered pieces are as many rows as counted for them.
    if let Some(j) =
        (0..outputs as usize).find(|&j| (offsets[j + 1] - offsets[j]) as u64 != tallies[j].rows)
    {
        return Err(TaskError::msg(format!(
            "shuffle verification failed: input partition {input} gathered {} rows for output {j} but counted {}",
            offsets[j + 1] - offsets[j],
            tallies[j].rows
        )));
    }
    Ok(shards_value(Shards { rows, offsets, tallies }))
}

/// `pick(shards, j)`.
fn pick(args: &[Value]) -> TaskResult {
    let shards = arg::<Shards>(args, 0, "the shards of a split")?;
    let j = *arg::<u32>(args, 1, "the output index")? as usize;
    let (start, end) = match (shards.offsets.get(j), shards.offsets.get(j + 1)) {
        (Some(&s), Some(&e)) => (s, e),
        _ => {
            return Err(TaskError::msg(format!(
                "a split of {} outputs has no output {j}",
                shards.tallies.len()
            )))
        }
    };
    let rows = pl::slice(&shards.rows, start as i64, end - start);
    Ok(piece_value(Piece { rows, sent: shards.tallies[j] }))
}

/// `assemble([pieces], j, assemble)`.
fn assemble(args: &[Value]) -> TaskResult {
    let pieces = args
        .first()
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the pieces of a shuffle output"))?;
    let j = *arg::<u32>(args, 1, "the output index")?;
    let spec = arg::<Assemble>(args, 2, "what to do with the output")?;
    let mut frames = Vec::with_capacity(pieces.len());
    let mut sent = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let piece = piece.get::<Piece>(&"a piece of a shuffle")?;
        frames.push(piece.rows.clone());
        sent.push(piece.sent);
    }
    let built = pl::concat(frames, &spec.schema)?;
    shuffle::check_output(j, pls::tally(&built)?, &sent)?;
    let (by, descending): (Vec<String>, Vec<bool>) = spec.sort_by.iter().cloned().unzip();
    Ok(partition_value(pls::sort(&built, &by, &descending, spec.nulls_last)?))
}

rask_core::register_function!("rask_dataframe::shuffle_split", split);
rask_core::register_function!("rask_dataframe::shuffle_pick", pick);
rask_core::register_function!("rask_dataframe::shuffle_assemble", assemble);

impl DataFrame {
    /// Moves every row to the partition a hash of `on` picks, so that rows with equal keys
    /// end up in the same partition (Dask's `shuffle(on)`): `npartitions` outputs (`None`: as
    /// many as the frame has). Row order within a partition follows the input partitions.
    pub fn shuffle(&self, on: &[&str], npartitions: Option<u32>) -> Result<DataFrame> {
        let keys: Vec<String> = on.iter().map(|c| c.to_string()).collect();
        if keys.is_empty() {
            return Err(Error::Invalid("shuffle needs at least one column to shuffle on".into()));
        }
        self.check_columns(&keys, "shuffle")?;
        let outputs = npartitions.unwrap_or(self.npartitions).max(1);
        self.shuffled(Partitioning::Hash(keys), outputs, Vec::new(), false)
    }

    /// The frame shuffled by `partitioning` into `outputs` partitions, each sorted by
    /// `sort_by` afterwards.
    pub(crate) fn shuffled(
        &self,
        partitioning: Partitioning,
        outputs: u32,
        sort_by: Vec<(String, bool)>,
        nulls_last: bool,
    ) -> Result<DataFrame> {
        let (graph, input) = self.partitions();
        let inputs = self.partition_keys();
        let spec = Assemble { sort_by, nulls_last, schema: self.schema().clone() };
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str()).u64(u64::from(outputs));
        let bytes = rmp_serde::to_vec(&(&partitioning, &spec))
            .map_err(|e| Error::Invalid(format!("the shuffle cannot be serialized: {e}")))?;
        tokenizer.bytes(&bytes);
        let name = Name::tokenized("shuffle", tokenizer.finish());
        let plan = Shuffle {
            prefix: "shuffle".into(),
            split: tasks::function("rask_dataframe::shuffle_split"),
            split_args: vec![Arg::Value(Value::serde(partitioning))],
            pick: tasks::function("rask_dataframe::shuffle_pick"),
            assemble: tasks::function("rask_dataframe::shuffle_assemble"),
            assemble_args: vec![Arg::Value(Value::serde(spec))],
            outputs,
        };
        let layer = Layer::tasks(name.clone(), plan.tasks(&inputs, &name), &[&graph]);
        Ok(DataFrame::from_partitions(
            Graph::from_layer(layer),
            name,
            outputs,
            Arc::new(self.schema().clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> PlFrame {
        pl::frame_f64(vec![
            ("k".into(), vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            ("v".into(), vec![0.5, 1.5, 2.5, 3.5, 4.5]),
        ])
        .unwrap()
    }

    fn split_of(frame: PlFrame, outputs: u32) -> Value {
        let args = [
            partition_value(frame),
            Value::serde(outputs),
            Value::serde(0u32),
            Value::serde(Partitioning::Hash(vec!["k".into()])),
        ];
        split(&args).unwrap()
    }

    fn assemble_of(pieces: Vec<Value>, schema: Schema) -> TaskResult {
        let spec = Assemble { schema, ..Assemble::default() };
        assemble(&[Value::list(pieces), Value::serde(1u32), Value::serde(spec)])
    }

    #[test]
    fn an_output_missing_a_row_fails_verification_naming_the_partitions() {
        let frame = rows();
        let schema = pl::frame_schema(&frame);
        let shards = split_of(frame, 2);
        let piece = pick(&[shards.clone(), Value::serde(1u32)]).unwrap();
        let whole = piece.get::<Piece>(&"piece").unwrap();
        assert!(assemble_of(vec![piece.clone()], schema.clone()).is_ok());
        // The same claim with one row fewer on the way.
        let height = pl::height(&whole.rows);
        assert!(height > 0, "a piece with rows (hash of 1..=5 into 2 outputs)");
        let short =
            piece_value(Piece { rows: pl::slice(&whole.rows, 0, height - 1), sent: whole.sent });
        let error =
            assemble_of(vec![piece.clone(), short], schema.clone()).unwrap_err().to_string();
        assert!(error.contains("shuffle verification failed: output partition 1"), "{error}");
        assert!(error.contains(&format!("input 1: {height}")), "{error}");
        // A changed value with the same row count fails too: the checksum differs.
        let changed =
            pl::frame_f64(vec![("k".into(), vec![99.0]), ("v".into(), vec![0.0])]).unwrap();
        let forged = piece_value(Piece { rows: changed, sent: Tally { rows: 1, ..whole.sent } });
        assert!(assemble_of(vec![forged], schema).is_err());
    }

    #[test]
    fn splits_and_pieces_cross_processes_whole() {
        let shards = split_of(rows(), 3);
        let bytes = shards.encode().unwrap();
        let back = decode_shards(&bytes).unwrap();
        let (a, b) = (shards.get::<Shards>(&"a").unwrap(), back.get::<Shards>(&"b").unwrap());
        assert_eq!(a.offsets, b.offsets);
        assert_eq!(a.tallies, b.tallies);
        assert!(pl::frames_equal(&a.rows, &b.rows));
        let piece = pick(&[back, Value::serde(2u32)]).unwrap();
        let again = decode_piece(&piece.encode().unwrap()).unwrap();
        let (p, q) = (piece.get::<Piece>(&"p").unwrap(), again.get::<Piece>(&"q").unwrap());
        assert_eq!(p.sent, q.sent);
        assert!(pl::frames_equal(&p.rows, &q.rows));
        assert!(decode_piece(&[1, 2, 3]).is_err(), "a truncated piece is an error, not a panic");
        assert!(decode_piece(&u64::MAX.to_le_bytes()).is_err());
    }
}
