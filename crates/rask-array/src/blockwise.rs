//! `blockwise`: a user function over aligned blocks of several arrays, in index notation.
//!
//! `blockwise("ik", &[(&a, "ij"), (&b, "jk")], f)` calls `f` once per output block `(i, k)`
//! with block `(i, ·)` of `a` and block `(·, k)` of `b`, where `·` is every block along the
//! contracted index `j` joined into one (Dask's `concatenate=True`): `f` sees whole rows of `a`
//! and whole columns of `b`, and returns the output block. It is one rask-core `Blockwise`
//! layer (index-aligned, with `j` a contracted index), so it fuses with elementwise neighbours
//! like any other; inputs whose chunks along a shared index differ are rechunked to the first
//! one's.
//!
//! An input may have several contracted indices (`"ijk", "jk" -> "i"`): it then receives the
//! whole block grid along all of them, joined into one block.
//!
//! A closure runs locally; on a cluster, register the function with
//! [`register_blockwise_fn!`](crate::register_blockwise_fn) and call [`blockwise_registered`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use ndarray::{ArrayD, Axis};
use rask_core::{AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Layer, TaskError, TaskFn, Value};

use crate::array::{chunk_of, layer_name, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

/// The layer's plan: per input its axis maps, the output chunks and the contracted grid.
struct Plan<T: Element> {
    inputs: Vec<Array<T>>,
    maps: Vec<Vec<AxisMap>>,
    /// Per input, the axes along which its contracted blocks are joined.
    joins: Vec<Joins>,
    chunks: Chunks,
    contracted: Vec<u32>,
}

fn plan<T: Element>(out_index: &str, inputs: &[(&Array<T>, &str)]) -> Result<Plan<T>> {
    let out: Vec<char> = out_index.chars().collect();
    let unique =
        |letters: &[char]| letters.iter().enumerate().all(|(i, c)| !letters[..i].contains(c));
    if !unique(&out) {
        return Err(Error::Invalid(format!(
            "blockwise output index {out_index:?} repeats a letter: each output axis has its own"
        )));
    }
    // The length and chunks of every index letter, from the first input that has it.
    let mut letters: BTreeMap<char, Vec<usize>> = BTreeMap::new();
    for (k, (array, index)) in inputs.iter().enumerate() {
        let index: Vec<char> = index.chars().collect();
        if index.len() != array.ndim() || !unique(&index) {
            return Err(Error::Invalid(format!(
                "blockwise input {k} has {} axes (shape {:?}) but index {:?}: give one distinct \
                 letter per axis",
                array.ndim(),
                array.shape(),
                index.iter().collect::<String>()
            )));
        }
        for (axis, letter) in index.iter().enumerate() {
            let lengths = &array.chunks.per_axis()[axis];
            match letters.get(letter) {
                None => {
                    letters.insert(*letter, lengths.clone());
                }
                Some(first) if first.iter().sum::<usize>() != lengths.iter().sum::<usize>() => {
                    return Err(Error::Invalid(format!(
                        "blockwise index {letter:?} has length {} in one input and {} in input \
                         {k}: arrays sharing an index must agree on its length",
                        first.iter().sum::<usize>(),
                        lengths.iter().sum::<usize>()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(missing) = out.iter().find(|c| !letters.contains_key(c)) {
        return Err(Error::Invalid(format!(
            "blockwise output index {missing:?} is in no input: every output axis must come \
             from an input's axis"
        )));
    }
    let contracted_letters: Vec<char> =
        letters.keys().copied().filter(|c| !out.contains(c)).collect();
    let mut plan = Plan {
        inputs: Vec::new(),
        maps: Vec::new(),
        joins: Vec::new(),
        chunks: Chunks(out.iter().map(|c| letters[c].clone()).collect()),
        contracted: contracted_letters.iter().map(|c| letters[c].len() as u32).collect(),
    };
    for (array, index) in inputs {
        let index: Vec<char> = index.chars().collect();
        let wanted: Vec<Vec<usize>> = index.iter().map(|c| letters[c].clone()).collect();
        let aligned = if array.chunks.per_axis() == wanted.as_slice() {
            (*array).clone()
        } else {
            array.rechunk(wanted)?
        };
        // (contracted index, axis, blocks) of each contracted axis, in the contracted indices'
        // order: the order of the block list the task receives (row-major over them).
        let mut join: Vec<(usize, u64, u32)> = Vec::new();
        let mut map = Vec::with_capacity(index.len());
        for (axis, letter) in index.iter().enumerate() {
            match out.iter().position(|c| c == letter) {
                Some(o) => map.push(AxisMap::Out(o as u8)),
                None => {
                    let c = contracted_letters.iter().position(|c| c == letter).expect("listed");
                    join.push((c, axis as u64, plan.contracted[c]));
                    map.push(AxisMap::Contracted(c as u8));
                }
            }
        }
        join.sort_unstable();
        plan.inputs.push(aligned);
        plan.maps.push(map);
        plan.joins.push(join.into_iter().map(|(_, axis, blocks)| (axis, blocks)).collect());
    }
    Ok(plan)
}

fn layer<T: Element, U: Element>(plan: Plan<T>, func: TaskFn, label: &str) -> Array<U> {
    let name = layer_name("blockwise", |t| {
        t.str(label);
        plan.inputs.iter().for_each(|a| {
            t.str(a.name.as_str());
        });
    });
    let mut args: Vec<BlockArg> = plan
        .inputs
        .iter()
        .zip(&plan.maps)
        .map(|(a, map)| BlockArg::Aligned(a.name.clone(), map.clone()))
        .collect();
    args.push(BlockArg::Value(Value::serde(plan.joins.clone())));
    let mut op = Blockwise::new(BlockGrid::of(&plan.chunks.grid()), func, args);
    op.contracted = plan.contracted.clone();
    let graphs: Vec<&Graph> = plan.inputs.iter().map(|a| &a.graph).collect();
    let graph = Graph::from_layer(Layer::blockwise(name.clone(), op, &graphs));
    Array::from_graph(graph, name, plan.chunks)
}

/// `f` over the blocks of `inputs` aligned by index letters (see the module's overview):
/// `blockwise("ik", &[(&a, "ij"), (&b, "jk")], |blocks| blocks[0].dot(blocks[1]))`.
pub fn blockwise<T: Element, U: Element>(
    out_index: &str,
    inputs: &[(&Array<T>, &str)],
    f: impl Fn(&[&ArrayD<T>]) -> ArrayD<U> + Send + Sync + 'static,
) -> Result<Array<U>> {
    let plan = plan(out_index, inputs)?;
    let func = TaskFn::closure("blockwise", move |args: &[Value]| {
        let blocks = joined_inputs::<T>(args)?;
        let refs: Vec<&ArrayD<T>> = blocks.iter().map(|b| b.as_ref()).collect();
        Ok(chunk_value(f(&refs)))
    });
    Ok(layer(plan, func, &format!("closure-{}", rask_core::Token::unique())))
}

/// [`blockwise`] with a function registered by
/// [`register_blockwise_fn!`](crate::register_blockwise_fn): runs on a cluster as locally.
pub fn blockwise_registered<T: Element, U: Element>(
    out_index: &str,
    inputs: &[(&Array<T>, &str)],
    function: &str,
) -> Result<Array<U>> {
    let func = rask_core::registry::lookup(function)?;
    let plan = plan(out_index, inputs)?;
    Ok(layer(plan, func, function))
}

/// Per input, `(axis, blocks)` of each contracted axis, in the order its block list runs
/// (row-major, the first slowest); empty for an input without contracted axes.
type Joins = Vec<(u64, u32)>;

/// The blocks a blockwise task received, the contracted ones joined along their axes (the
/// last argument says which axes of which input).
#[doc(hidden)]
pub fn joined_inputs<T: Element>(
    args: &[Value],
) -> std::result::Result<Vec<Cow<'_, ArrayD<T>>>, TaskError> {
    let (joins, blocks) =
        args.split_last().ok_or_else(|| TaskError::msg("missing the blockwise inputs"))?;
    let joins = joins.get::<Vec<Joins>>(&"the blockwise joins")?;
    blocks
        .iter()
        .zip(joins)
        .enumerate()
        .map(|(k, (value, join))| {
            if join.is_empty() {
                return Ok(Cow::Borrowed(chunk_of::<T>(
                    value,
                    &format_args!("blockwise input {k}"),
                )?));
            }
            let list = value.as_list().ok_or_else(|| {
                TaskError::msg(format!("blockwise input {k}: a list of blocks was expected"))
            })?;
            let parts = list
                .iter()
                .map(|v| chunk_of::<T>(v, &format_args!("a block of blockwise input {k}")))
                .collect::<rask_core::Result<Vec<_>>>()?;
            let expected: u32 = join.iter().map(|&(_, blocks)| blocks).product();
            if parts.len() != expected as usize {
                return Err(TaskError::msg(format!(
                    "blockwise input {k}: {} blocks for a contracted grid of {expected}",
                    parts.len()
                )));
            }
            Ok(Cow::Owned(join_grid(&parts, join)?))
        })
        .collect()
}

/// Joins a row-major list of blocks over the contracted axes `join` into one block: the list
/// splits into as many groups as the first axis has blocks, each joined over the other axes,
/// and the groups are concatenated along the first.
fn join_grid<T: Element>(
    parts: &[&ArrayD<T>],
    join: &[(u64, u32)],
) -> std::result::Result<ArrayD<T>, TaskError> {
    let Some((&(axis, blocks), rest)) = join.split_first() else {
        return Err(TaskError::msg("a join over no contracted axis"));
    };
    let groups: Vec<Cow<'_, ArrayD<T>>> = if rest.is_empty() {
        parts.iter().map(|&p| Cow::Borrowed(p)).collect()
    } else {
        let per_group = parts.len() / blocks.max(1) as usize;
        parts
            .chunks(per_group.max(1))
            .map(|group| join_grid(group, rest).map(Cow::Owned))
            .collect::<std::result::Result<_, _>>()?
    };
    let views: Vec<_> = groups.iter().map(|g| g.view()).collect();
    Ok(ndarray::concatenate(Axis(axis as usize), &views)?)
}
rask_core::register_type!(Vec<Joins>);

/// Registers a function of aligned blocks for [`blockwise_registered`]:
/// `rask_array::register_blockwise_fn!("mylib::gram", gram, f64, f64);` for
/// `fn gram(blocks: &[&ArrayD<f64>]) -> ArrayD<f64>`.
#[macro_export]
macro_rules! register_blockwise_fn {
    ($name:literal, $function:path, $in:ty, $out:ty) => {
        const _: () = {
            fn call(args: &[$crate::__private::Value]) -> $crate::__private::TaskResult {
                let blocks = $crate::blockwise::joined_inputs::<$in>(args)?;
                let refs: Vec<&$crate::__private::ArrayD<$in>> =
                    blocks.iter().map(|b| b.as_ref()).collect();
                let out: $crate::__private::ArrayD<$out> = $function(&refs);
                Ok($crate::element::chunk_value(out))
            }
            $crate::__private::register_function!($name, call);
        };
    };
}
