//! # rask-core: the task-graph model under every rask collection
//!
//! Every rask collection — DataFrames, Arrays, Bags, `Delayed` values — turns user code into a
//! graph of tasks, and every rask scheduler runs such graphs. This crate is that shared model.
//! It knows nothing of threads, sockets or data frames.
//!
//! * [`Key`] names a result: a readable prefix plus a deterministic [`Token`], optionally with a
//!   partition index.
//! * [`TaskSpec`] is one task: a [`TaskFn`] and its [`Arg`]s (literals, references to other
//!   keys, lists of them).
//! * [`Graph`] is a DAG of `Arc`-shared [`Layer`]s: lists of explicit tasks, or symbolic
//!   [`Blockwise`] operations over many partitions that are expanded only when lowered.
//! * [`optimize::prepare`] lowers a graph for some outputs: culls, fuses blockwise layers and
//!   linear chains (and small fan-ins, when asked), checks for cycles and orders the tasks
//!   ([`order`]) into a [`TaskGraph`] whose task indices are priorities.
//! * [`Value`] is a shared, type-erased result that can serialize itself when it must leave
//!   the process; [`registry`] holds the functions any process of the same binary can call by
//!   name.
//! * [`codec`] and [`wire`] are how values and tasks travel between processes: bytes plus a
//!   type name, and tasks whose functions are named as in the registry.
//! * [`partitioned`] is what every partitioned collection combines chunks with: tree
//!   reductions and aliases of keys.
//! * [`Delayed<T>`] is a typed lazy value; [`Collection`] is anything that can be computed,
//!   and [`Scheduler`] anything that computes.
//!
//! ```
//! use rask_core::{Arg, Graph, Key, TaskSpec, optimize::{prepare, Optimizations}};
//!
//! let identity = rask_core::registry::lookup("rask::identity").unwrap();
//! let graph = Graph::from_tasks([
//!     (Key::new("x"), TaskSpec::new(identity.clone(), vec![Arg::value(1_i64)])),
//!     (Key::new("y"), TaskSpec::new(identity, vec![Arg::Key(Key::new("x"))])),
//! ]);
//! let tasks = prepare(&graph, &[Key::new("y")], &Optimizations::none()).unwrap();
//! assert_eq!(tasks.len(), 2);
//! ```

pub mod codec;
pub mod collection;
pub mod delayed;
pub mod error;
pub mod fuse;
pub mod graph;
pub mod key;
pub mod lower;
pub mod optimize;
pub mod order;
pub mod partitioned;
pub mod registry;
pub mod task;
pub mod task_graph;
pub mod value;
pub mod wire;

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;

pub use codec::WireValue;
pub use collection::{compute_on, default_scheduler, set_default_scheduler, Collection, Scheduler};
pub use delayed::{delayed, reduce_with, Delayed, IntoArg};
pub use error::{Error, Result, TaskError, TaskFailure};
pub use fuse::FanInFusion;
pub use graph::{AxisMap, BlockArg, BlockGrid, Blockwise, Graph, Layer, LayerKind};
pub use key::{BlockIndex, Key, Name, Token, Tokenizer};
pub use optimize::Optimizations;
pub use partitioned::TreeReduction;
pub use task::{Arg, TaskFn, TaskResult, TaskSpec};
pub use task_graph::{Task, TaskGraph, TaskIndex};
pub use value::{Value, ValueList};
pub use wire::{encode_graph, WireTask};
