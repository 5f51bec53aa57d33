//! DataFrames and Arrays: `DataFrame::to_array` and [`from_array`].
//!
//! A frame of numeric columns becomes a 2-d `Array<f64>` whose row chunks are the partitions
//! (Dask's `to_dask_array(lengths=True)`): the partition lengths are known from Parquet
//! metadata, or counted first (a pass that reads the data; nothing else is computed). The
//! columns are one chunk. The other way, a 1-d or 2-d array becomes a frame with one partition
//! per row chunk and the named columns. Nulls become NaN (as in a float column of pandas); a
//! column that is not numeric is refused, naming it.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use rask_array::element::chunk_value;
use rask_array::{Array, Chunks};
use rask_core::{
    Arg, Graph, Key, Layer, Name, Optimizations, TaskError, TaskResult, TaskSpec, Token, Tokenizer,
    Value,
};

use crate::error::{Error, Result};
use crate::frame::DataFrame;
use crate::polars_adapter::{self as pl, DataType};
use crate::tasks::{frame_of, function, partition_value};

impl DataFrame {
    /// The frame as a 2-d `f64` array: one row chunk per partition, the columns in order as
    /// one chunk. Every column must be numeric (or boolean).
    pub fn to_array(&self) -> Result<Array<f64>> {
        let fields = pl::schema_fields(self.schema());
        let not_numeric: Vec<&str> = fields
            .iter()
            .filter(|(_, dtype)| !pl::is_numeric(dtype) && *dtype != DataType::Boolean)
            .map(|(name, _)| name.as_str())
            .collect();
        if !not_numeric.is_empty() {
            return Err(Error::Invalid(format!(
                "to_array needs numeric columns, but {not_numeric:?} are not: select the \
                 numeric ones first (df.select([...]))"
            )));
        }
        let columns: Vec<String> = fields.into_iter().map(|(name, _)| name).collect();
        let lengths = self.partition_lengths()?;
        let (graph, partitions) = self.partitions();
        let name = Name::tokenized("to-array", {
            let mut t = Tokenizer::new();
            t.str(partitions.as_str());
            columns.iter().for_each(|c| {
                t.str(c);
            });
            t.finish()
        });
        let convert = function("rask_dataframe::to_array_chunk");
        let columns_value = Value::serde(columns.clone());
        let tasks = (0..self.npartitions())
            .map(|i| {
                let spec = TaskSpec::new(
                    convert.clone(),
                    vec![
                        Arg::Key(Key::part(partitions.clone(), i)),
                        Arg::Value(columns_value.clone()),
                    ],
                );
                (Key::block(name.clone(), &[i, 0]), spec)
            })
            .collect();
        let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[&graph]));
        let chunks =
            Chunks::new(&[lengths.iter().sum(), columns.len()], vec![lengths, vec![columns.len()]])
                .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Array::from_graph(graph, name, chunks))
    }

    /// Rows per partition: from the files' metadata when known, otherwise counted.
    fn partition_lengths(&self) -> Result<Vec<usize>> {
        if let Some(rows) = &self.known_rows {
            return Ok(rows.iter().map(|&n| n as usize).collect());
        }
        let counted = self.select([pl::len_expr()])?;
        let (graph, name) = counted.partitions();
        let keys: Vec<Key> = (0..self.npartitions()).map(|i| Key::part(name.clone(), i)).collect();
        let values =
            rask_local::current_scheduler().compute(&graph, &keys, &Optimizations::default())?;
        values.iter().map(|value| Ok(pl::scalar_f64(frame_of(value)?, "len")? as usize)).collect()
    }
}

/// A frame of a 1-d or 2-d array: one partition per row chunk, with these column names (one
/// per column of the array; the columns are gathered into one chunk first).
pub fn from_array(array: &Array<f64>, columns: &[&str]) -> Result<DataFrame> {
    let shape = array.shape();
    let width = match shape.as_slice() {
        [_] => 1,
        [_, width] => *width,
        _ => {
            return Err(Error::Invalid(format!(
                "from_array takes a 1-d or 2-d array, not one of shape {shape:?}: reshape it"
            )))
        }
    };
    if columns.len() != width {
        return Err(Error::Invalid(format!(
            "{} column names for an array of {width} columns (shape {shape:?}): give one per column",
            columns.len()
        )));
    }
    let rows = if shape.len() == 2 && array.numblocks()[1] != 1 {
        array
            .rechunk(vec![array.chunks().per_axis()[0].clone(), vec![width]])
            .map_err(|e| Error::Invalid(e.to_string()))?
    } else {
        array.clone()
    };
    let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let name = Name::tokenized("from-array", {
        let mut t = Tokenizer::new();
        t.str(rows.name().as_str()).token(Token::unique());
        t.finish()
    });
    let convert = function("rask_dataframe::from_array_chunk");
    let names_value = Value::serde(names.clone());
    let npartitions = rows.numblocks()[0];
    let tasks = (0..npartitions)
        .map(|i| {
            let index: Vec<u32> = if shape.len() == 2 { vec![i, 0] } else { vec![i] };
            let spec = TaskSpec::new(
                convert.clone(),
                vec![Arg::Key(rows.block_key(&index)), Arg::Value(names_value.clone())],
            );
            (Key::part(name.clone(), i), spec)
        })
        .collect();
    let graph = Graph::from_layer(Layer::tasks(name.clone(), tasks, &[rows.graph_ref()]));
    let schema =
        pl::schema_from(&names.iter().map(|n| (n.clone(), DataType::Float64)).collect::<Vec<_>>());
    Ok(DataFrame::from_partitions(graph, name, npartitions, Arc::new(schema)))
}

fn to_array_chunk(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let columns = args
        .get(1)
        .ok_or_else(|| TaskError::msg("missing the columns"))?
        .get::<Vec<String>>(&"the columns")?;
    let values = pl::numeric_matrix(frame, columns)?;
    let rows = pl::height(frame);
    Ok(chunk_value(ArrayD::from_shape_vec(IxDyn(&[rows, columns.len()]), values)?))
}
rask_core::register_function!("rask_dataframe::to_array_chunk", to_array_chunk);

fn from_array_chunk(args: &[Value]) -> TaskResult {
    let chunk = args
        .first()
        .ok_or_else(|| TaskError::msg("missing the chunk"))?
        .get::<ArrayD<f64>>(&"an array chunk")?;
    let names =
        args.get(1)
            .ok_or_else(|| TaskError::msg("missing the column names"))?
            .get::<Vec<String>>(&"the column names")?;
    let rows = chunk.shape()[0];
    let matrix = chunk.to_shape((rows, names.len())).map_err(|e| TaskError::msg(e.to_string()))?;
    let columns =
        names.iter().enumerate().map(|(j, n)| (n.clone(), matrix.column(j).to_vec())).collect();
    Ok(partition_value(pl::frame_f64(columns)?))
}
rask_core::register_function!("rask_dataframe::from_array_chunk", from_array_chunk);
