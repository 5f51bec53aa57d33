//! `map_blocks`: a user function of each chunk — a closure locally, a registered function
//! ([`register_block_fn!`](crate::register_block_fn)) on a cluster — as one blockwise layer,
//! so it fuses with elementwise neighbours like any other.

use ndarray::ArrayD;
use rask_core::{AxisMap, BlockArg, TaskFn, Value};

use crate::array::{chunk_arg, layer_name, Array};
use crate::chunks::Chunks;
use crate::element::{chunk_value, Element};
use crate::error::{Error, Result};

impl<T: Element> Array<T> {
    /// A function of each chunk, run in this process: `x.map_blocks(|chunk| chunk.mapv(f))`.
    /// The output chunks are taken to be the input's; a closure cannot go to a cluster (use
    /// [`Array::map_blocks_registered`] there).
    pub fn map_blocks<U: Element>(
        &self,
        f: impl Fn(&ArrayD<T>) -> ArrayD<U> + Send + Sync + 'static,
    ) -> Array<U> {
        self.map_blocks_with_chunks((*self.chunks).clone(), f)
    }

    /// [`Array::map_blocks`] with declared output chunks (one chunk per input chunk).
    pub fn map_blocks_with_chunks<U: Element>(
        &self,
        chunks: Chunks,
        f: impl Fn(&ArrayD<T>) -> ArrayD<U> + Send + Sync + 'static,
    ) -> Array<U> {
        let func = TaskFn::closure("map_blocks", move |args: &[Value]| {
            let chunk = chunk_arg::<T>(args, 0)?;
            Ok(chunk_value(f(chunk)))
        });
        let name = layer_name("map_blocks", |t| {
            t.str(self.name.as_str()).token(rask_core::Token::unique());
        });
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        let operand = self.operand();
        let graphs = [&operand.graph];
        Array::blockwise_layer(
            name,
            func,
            vec![BlockArg::Aligned(operand.name, identity)],
            &graphs,
            chunks,
        )
    }

    /// A registered function of each chunk (see [`register_block_fn!`](crate::register_block_fn)):
    /// runs on a cluster as locally. `chunks`: the output chunks, `None` for the input's.
    pub fn map_blocks_registered<U: Element>(
        &self,
        function: &str,
        chunks: Option<Chunks>,
    ) -> Result<Array<U>> {
        let func = rask_core::registry::lookup(function)?;
        let chunks = chunks.unwrap_or_else(|| (*self.chunks).clone());
        if chunks.grid() != self.chunks.grid() {
            return Err(Error::Chunks(format!(
                "map_blocks gives one chunk per input chunk: the output grid {:?} must be the input's {:?}",
                chunks.grid(),
                self.chunks.grid()
            )));
        }
        let name = layer_name("map_blocks", |t| {
            t.str(function).str(self.name.as_str());
        });
        let identity: Vec<AxisMap> = (0..self.ndim()).map(|a| AxisMap::Out(a as u8)).collect();
        let operand = self.operand();
        let graphs = [&operand.graph];
        Ok(Array::blockwise_layer(
            name,
            func,
            vec![BlockArg::Aligned(operand.name, identity)],
            &graphs,
            chunks,
        ))
    }
}

/// Registers a function of one chunk for [`Array::map_blocks_registered`]:
/// `rask_array::register_block_fn!("image_stack::recenter", recenter, u8, u8);` for
/// `fn recenter(chunk: &ArrayD<u8>) -> ArrayD<u8>`.
#[macro_export]
macro_rules! register_block_fn {
    ($name:literal, $function:path, $in:ty, $out:ty) => {
        const _: () = {
            fn call(args: &[$crate::__private::Value]) -> $crate::__private::TaskResult {
                let chunk = args
                    .first()
                    .ok_or_else(|| $crate::__private::TaskError::msg("missing the chunk"))?
                    .get::<$crate::__private::ArrayD<$in>>(&"the chunk")?;
                let out: $crate::__private::ArrayD<$out> = $function(chunk);
                Ok($crate::element::chunk_value(out))
            }
            $crate::__private::register_function!($name, call);
        };
    };
}
