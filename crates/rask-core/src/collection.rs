//! What can be computed, and what computes it.
//!
//! A [`Collection`] is anything that stands for a lazy result: it has a graph, the keys of its
//! outputs, a way to turn the output values into its result type, and the optimizations it
//! wants. A [`Scheduler`] runs a graph for some keys and returns their values; the local
//! threaded scheduler and the distributed client are schedulers. `persist` keeps results where
//! the scheduler computed them and gives back a graph that reads them.
//!
//! Tuples, vectors and references of collections are collections too, so several results are
//! computed in one pass that shares their common subgraphs: `(&a, &b).compute()`.

use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::graph::{Graph, Layer};
use crate::key::{Key, Name};
use crate::optimize::Optimizations;
use crate::task::{Arg, TaskSpec};
use crate::value::Value;

/// Runs graphs.
pub trait Scheduler: Send + Sync {
    /// Computes the values of `outputs` (in that order) from `graph`.
    fn compute(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> Result<Vec<Value>>;

    /// Computes `outputs` and keeps them, like Dask's `persist`: returns a graph of one layer
    /// that provides `outputs` without computing anything again. This default computes them
    /// here and holds the values in the graph; a cluster's client keeps them on the workers
    /// instead (the graph then holds the client's claims on them).
    fn persist(
        &self,
        graph: &Graph,
        outputs: &[Key],
        optimizations: &Optimizations,
    ) -> Result<Graph> {
        let values = self.compute(graph, outputs, optimizations)?;
        let identity = crate::registry::lookup(crate::delayed::IDENTITY)?;
        let tasks = outputs
            .iter()
            .cloned()
            .zip(values)
            .map(|(key, value)| (key, TaskSpec::new(identity.clone(), vec![Arg::Value(value)])))
            .collect();
        let name = outputs.first().map_or_else(|| Name::from("persisted"), |k| k.name().clone());
        Ok(Graph::from_layer(Layer::tasks(name, tasks, &[])))
    }

    /// Waits until the results a graph made by [`Scheduler::persist`] reads exist. A cluster's
    /// persist returns at once (as Dask's does); this default's has computed them already.
    fn wait_persisted(&self, _graph: &Graph) -> Result<()> {
        Ok(())
    }
}

/// A lazy result.
pub trait Collection {
    /// What computing it returns.
    type Output;

    /// The graph that computes it.
    fn graph(&self) -> Graph;

    /// The keys whose values make up the result.
    fn output_keys(&self) -> Vec<Key>;

    /// Turns the output values (in `output_keys` order) into the result.
    fn finalize(&self, values: Vec<Value>) -> Result<Self::Output>;

    /// The optimizations this collection wants.
    fn optimizations(&self) -> Optimizations {
        Optimizations::default()
    }
}

/// Computes a collection on a given scheduler.
pub fn compute_on<C: Collection + ?Sized>(
    collection: &C,
    scheduler: &dyn Scheduler,
) -> Result<C::Output> {
    let keys = collection.output_keys();
    let values = scheduler.compute(&collection.graph(), &keys, &collection.optimizations())?;
    collection.finalize(values)
}

fn default_slot() -> &'static RwLock<Option<Arc<dyn Scheduler>>> {
    static SLOT: RwLock<Option<Arc<dyn Scheduler>>> = RwLock::new(None);
    &SLOT
}

/// Makes `scheduler` the one `compute()` uses in this process (`None`: back to the local
/// threaded scheduler). A distributed client installs itself here, like Dask's
/// `Client(set_as_default=True)`.
pub fn set_default_scheduler(scheduler: Option<Arc<dyn Scheduler>>) {
    *default_slot().write().unwrap_or_else(|poisoned| poisoned.into_inner()) = scheduler;
}

/// The scheduler installed with [`set_default_scheduler`], if any.
pub fn default_scheduler() -> Option<Arc<dyn Scheduler>> {
    default_slot().read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

impl<C: Collection + ?Sized> Collection for &C {
    type Output = C::Output;
    fn graph(&self) -> Graph {
        (**self).graph()
    }
    fn output_keys(&self) -> Vec<Key> {
        (**self).output_keys()
    }
    fn finalize(&self, values: Vec<Value>) -> Result<Self::Output> {
        (**self).finalize(values)
    }
    fn optimizations(&self) -> Optimizations {
        (**self).optimizations()
    }
}

impl<C: Collection> Collection for Vec<C> {
    type Output = Vec<C::Output>;
    fn graph(&self) -> Graph {
        let graphs: Vec<Graph> = self.iter().map(Collection::graph).collect();
        Graph::merge(&graphs.iter().collect::<Vec<_>>())
    }
    fn output_keys(&self) -> Vec<Key> {
        self.iter().flat_map(Collection::output_keys).collect()
    }
    fn finalize(&self, values: Vec<Value>) -> Result<Self::Output> {
        let mut values = values.into_iter();
        self.iter()
            .map(|c| c.finalize(values.by_ref().take(c.output_keys().len()).collect()))
            .collect()
    }
    fn optimizations(&self) -> Optimizations {
        self.first().map(Collection::optimizations).unwrap_or_default()
    }
}

macro_rules! tuple_collection {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Collection),+> Collection for ($($name,)+) {
            type Output = ($($name::Output,)+);
            fn graph(&self) -> Graph {
                Graph::merge(&[$(&self.$index.graph()),+])
            }
            fn output_keys(&self) -> Vec<Key> {
                let mut keys = Vec::new();
                $(keys.extend(self.$index.output_keys());)+
                keys
            }
            fn finalize(&self, values: Vec<Value>) -> Result<Self::Output> {
                let mut values = values.into_iter();
                Ok(($(self.$index.finalize(values.by_ref().take(self.$index.output_keys().len()).collect())?,)+))
            }
            fn optimizations(&self) -> Optimizations {
                self.0.optimizations()
            }
        }
    };
}
tuple_collection!(A 0, B 1);
tuple_collection!(A 0, B 1, C 2);
tuple_collection!(A 0, B 1, C 2, D 3);
