//! The lowering pipeline and the optimizations a collection gets.
//!
//! [`prepare`] turns a layered graph and the requested keys into the ordered [`TaskGraph`] a
//! scheduler runs: lower (culling and blockwise fusion), validate (no cycles), fuse linear
//! chains, optionally fuse fan-ins, run a collection's own pass if it has one, and finally
//! order the tasks so that a task's index is its priority.
//!
//! A collection chooses its [`Optimizations`]: the defaults, none at all, or its own pass in
//! addition to (or instead of) the built-in ones.

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::fuse::{fuse_fan_in, fuse_linear, FanInFusion};
use crate::graph::Graph;
use crate::key::Key;
use crate::lower::lower;
use crate::order::{heights, order, order_by_heights};
use crate::task_graph::TaskGraph;

/// A graph pass supplied by a collection.
pub type CustomPass = Arc<dyn Fn(TaskGraph) -> Result<TaskGraph> + Send + Sync>;

/// Which optimizations run when a graph is lowered.
#[derive(Clone)]
pub struct Optimizations {
    /// Make only the tasks the outputs need.
    pub cull: bool,
    /// Fuse chains of blockwise layers before expanding them.
    pub fuse_blockwise: bool,
    /// Fuse linear chains of tasks.
    pub fuse_linear: bool,
    /// Fuse small fan-ins too ("aggressive fusion"), for overhead-bound graphs.
    pub fuse_fan_in: Option<FanInFusion>,
    /// A collection's own pass, run after the built-in ones and before ordering.
    pub custom: Option<CustomPass>,
}

impl Default for Optimizations {
    fn default() -> Self {
        Optimizations {
            cull: true,
            fuse_blockwise: true,
            fuse_linear: true,
            fuse_fan_in: None,
            custom: None,
        }
    }
}

impl Optimizations {
    /// No optimization at all: every task of the graph runs as written.
    pub fn none() -> Self {
        Optimizations {
            cull: false,
            fuse_blockwise: false,
            fuse_linear: false,
            fuse_fan_in: None,
            custom: None,
        }
    }

    /// The defaults plus fan-in fusion.
    pub fn aggressive() -> Self {
        Optimizations { fuse_fan_in: Some(FanInFusion::default()), ..Self::default() }
    }

    /// These settings with a pass of the collection's own.
    pub fn with_custom(
        mut self,
        pass: impl Fn(TaskGraph) -> Result<TaskGraph> + Send + Sync + 'static,
    ) -> Self {
        self.custom = Some(Arc::new(pass));
        self
    }
}

impl fmt::Debug for Optimizations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Optimizations")
            .field("cull", &self.cull)
            .field("fuse_blockwise", &self.fuse_blockwise)
            .field("fuse_linear", &self.fuse_linear)
            .field("fuse_fan_in", &self.fuse_fan_in)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

/// Lowers, validates, optimizes and orders a graph for the requested outputs.
pub fn prepare(graph: &Graph, outputs: &[Key], optimizations: &Optimizations) -> Result<TaskGraph> {
    let mut tasks = lower(graph, outputs, optimizations.cull, optimizations.fuse_blockwise)?;
    // Heights reject cycles before any pass relies on acyclicity; they stay valid for ordering
    // as long as no pass changes the graph.
    let mut known_heights = Some(heights(&tasks)?);
    if optimizations.fuse_linear {
        let (fused, changed) = fuse_linear(tasks);
        tasks = fused;
        if changed {
            known_heights = None;
        }
    }
    if let Some(settings) = optimizations.fuse_fan_in {
        tasks = fuse_fan_in(&tasks, settings)?;
        known_heights = None;
    }
    if let Some(pass) = &optimizations.custom {
        tasks = pass(tasks)?;
        known_heights = None;
    }
    let priority = match known_heights {
        Some(heights) => order_by_heights(&tasks, &heights),
        None => order(&tasks)?,
    };
    Ok(tasks.renumber(&priority))
}
