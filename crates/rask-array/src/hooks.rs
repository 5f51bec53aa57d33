//! Constructor hooks: functions that see every array as it is made, like Dask's array plugins
//! (`dask.config.set(array_plugins=[...])`).
//!
//! A hook gets an [`ArrayInfo`] (the operation, shape, chunks, type and task count) and
//! answers with a [`HookAction`]: `Keep` the array lazy, or `Compute` it at once — the eager
//! mode for debugging, where an error shows at the operation that caused it instead of at the
//! final `compute()`. Typical hooks warn about chunks over a size or graphs over a task count.
//!
//! Hooks are installed for as long as the returned [`HookGuard`] lives. They see the arrays
//! operations return, not the steps inside an operation (per-chunk partials of a reduction) nor
//! persisted arrays.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::array::Array;
use crate::chunks::Chunks;
use crate::element::Element;

/// What a hook sees of an array.
#[derive(Debug)]
pub struct ArrayInfo<'a> {
    /// The operation that made it (the prefix of its layer's name: `"rechunk"`, `"add"`).
    pub operation: &'a str,
    /// The shape.
    pub shape: Vec<usize>,
    /// The chunks.
    pub chunks: &'a Chunks,
    /// The element type (`"float64"`).
    pub dtype: &'static str,
    /// The bytes of its largest chunk.
    pub max_chunk_bytes: usize,
    /// How many tasks its graph holds.
    pub tasks: usize,
}

/// What a hook asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    /// Leave the array lazy.
    Keep,
    /// Compute the array now and keep its chunks (`persist`). If computing fails, the error is
    /// logged here and the array stays lazy, so the final `compute()` reports it.
    Compute,
}

type Hook = Arc<dyn Fn(&ArrayInfo<'_>) -> HookAction + Send + Sync>;

static HOOKS: RwLock<Vec<(usize, Hook)>> = RwLock::new(Vec::new());
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Installs a hook until the guard is dropped.
#[must_use = "the hook is removed when the guard is dropped"]
pub fn add_hook(hook: impl Fn(&ArrayInfo<'_>) -> HookAction + Send + Sync + 'static) -> HookGuard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    HOOKS.write().unwrap_or_else(|e| e.into_inner()).push((id, Arc::new(hook)));
    ACTIVE.fetch_add(1, Ordering::Release);
    HookGuard { id }
}

/// Removes its hook when dropped.
#[derive(Debug)]
pub struct HookGuard {
    id: usize,
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        HOOKS.write().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.id);
        ACTIVE.fetch_sub(1, Ordering::Release);
    }
}

/// Runs the hooks on a new array (nothing to do, and no lock taken, when there are none).
pub(crate) fn apply<T: Element>(array: Array<T>) -> Array<T> {
    if ACTIVE.load(Ordering::Acquire) == 0 {
        return array;
    }
    let hooks: Vec<Hook> =
        HOOKS.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, h)| h.clone()).collect();
    let info = ArrayInfo {
        operation: array.name().prefix(),
        shape: array.shape(),
        chunks: array.chunks(),
        dtype: T::DTYPE,
        max_chunk_bytes: array.chunks().max_block_shape().iter().product::<usize>()
            * size_of::<T>(),
        tasks: array.graph_ref().num_tasks(),
    };
    // Every hook sees the array (no short circuit), and any of them may ask to compute it.
    let mut compute = false;
    for hook in &hooks {
        compute |= hook(&info) == HookAction::Compute;
    }
    if !compute {
        return array;
    }
    match array.persist() {
        Ok(persisted) => persisted,
        Err(error) => {
            tracing::error!(operation = info.operation, %error, "an array hook computed the array eagerly and it failed");
            array
        }
    }
}
