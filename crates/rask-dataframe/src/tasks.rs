//! The built-in task functions of DataFrames, registered by name so that the stock
//! `rask worker` runs them, and the codec that moves partitions between processes as Arrow IPC.
//!
//! Every function takes raw [`Value`]s: partitions are `PlFrame` values, the literal arguments
//! (sources, steps, aggregation specs) are serde values of types registered with
//! `register_type!`.

use rask_core::{registry, TaskError, TaskFn, TaskResult, Value};

use crate::error::{Error, Result};
use crate::plan::{Source, Steps};
use crate::polars_adapter::{self as pl, PlFrame};

/// A partition as a value: sized by its in-memory size, sent as Arrow IPC.
pub fn partition_value(frame: PlFrame) -> Value {
    let size = pl::estimated_size(&frame);
    Value::sized(frame, encode_partition, size)
}

fn encode_partition(frame: &PlFrame) -> std::result::Result<Vec<u8>, String> {
    pl::to_ipc(frame).map_err(|e| e.to_string())
}

fn decode_partition(bytes: &[u8]) -> rask_core::Result<Value> {
    pl::from_ipc(bytes).map(partition_value).map_err(|e| rask_core::Error::Decode {
        type_name: "a DataFrame partition (Arrow IPC)",
        reason: e.to_string(),
    })
}

rask_core::__private::inventory::submit! {
    rask_core::codec::TypeCodec { type_name: std::any::type_name::<PlFrame>, decode: decode_partition }
}

/// The Polars frame inside a value.
pub fn frame_of(value: &Value) -> Result<&PlFrame> {
    value.get::<PlFrame>(&"a DataFrame partition").map_err(Error::Engine)
}

/// Argument `index` of a task as a `T` (`what` names it in errors).
pub(crate) fn arg<'a, T: 'static>(
    args: &'a [Value],
    index: usize,
    what: &str,
) -> std::result::Result<&'a T, TaskError> {
    let value = args
        .get(index)
        .ok_or_else(|| TaskError::msg(format!("missing argument {index} ({what})")))?;
    Ok(value.get::<T>(&what)?)
}

fn extras(args: &[Value], index: usize) -> std::result::Result<Vec<&PlFrame>, TaskError> {
    let list = args
        .get(index)
        .and_then(Value::as_list)
        .ok_or_else(|| TaskError::msg("missing the list of broadcast inputs"))?;
    list.iter().map(|v| frame_of(v).map_err(TaskError::from)).collect()
}

/// `read(source, part, steps, extras)`: reads partition `part` of a source and applies the
/// steps in one Polars query.
fn read(args: &[Value]) -> TaskResult {
    let source: &Source = arg(args, 0, "source")?;
    let part: &u32 = arg(args, 1, "partition index")?;
    let steps: &Steps = arg(args, 2, "steps")?;
    let extras = extras(args, 3)?;
    Ok(partition_value(pl::read_source(source, *part, &steps.0, &extras)?))
}

/// `apply(partition, part, steps, extras)`: applies steps to a partition.
fn apply(args: &[Value]) -> TaskResult {
    let frame = frame_of(args.first().ok_or_else(|| TaskError::msg("missing the partition"))?)?;
    let part: &u32 = arg(args, 1, "partition index")?;
    let steps: &Steps = arg(args, 2, "steps")?;
    let extras = extras(args, 3)?;
    Ok(partition_value(pl::apply_steps(frame.clone(), *part, &steps.0, &extras)?))
}

rask_core::register_function!("rask_dataframe::read", read);
rask_core::register_function!("rask_dataframe::apply", apply);

pub(crate) fn read_function() -> TaskFn {
    registry::lookup("rask_dataframe::read").expect("registered above")
}

pub(crate) fn apply_function() -> TaskFn {
    registry::lookup("rask_dataframe::apply").expect("registered above")
}

/// Looks up one of this crate's registered functions.
pub(crate) fn function(name: &str) -> TaskFn {
    registry::lookup(name).unwrap_or_else(|_| panic!("{name} is registered by rask-dataframe"))
}

/// The frames of a list argument.
pub(crate) fn frames_of(value: &Value) -> std::result::Result<Vec<&PlFrame>, TaskError> {
    let list = value.as_list().ok_or_else(|| TaskError::msg("expected a list of partitions"))?;
    list.iter().map(|v| frame_of(v).map_err(TaskError::from)).collect()
}
