//! Selection by the sorted index: [`DataFrame::loc`] (a label — on a datetime index a partial
//! date such as `"2015-05-05"`, that whole day), [`DataFrame::loc_range`] (a label slice,
//! both ends included as in pandas) and [`DataFrame::loc_mask`] (a boolean column).
//!
//! The divisions say which partitions can hold the labels: only those are read (a day of a
//! year-long index is one or two partitions), each filtered by the exact condition.

use std::sync::Arc;

use rask_core::{Key, Name, Tokenizer};

use crate::error::{Error, Result};
use crate::frame::{DataFrame, Divisions};
use crate::polars_adapter::index::{self as pli, Label, Span};
use crate::polars_adapter::Expr;

impl DataFrame {
    /// The rows whose index equals `label` — for a date or datetime index, whose index falls
    /// in the period a partial date names (`"2015"`, `"2015-05"`, `"2015-05-05"`,
    /// `"2015-05-05 13:30"`). Reads only the partitions the divisions allow.
    pub fn loc(&self, label: impl Into<Label>) -> Result<DataFrame> {
        let span = self.span(&label.into())?;
        self.index_between(Some(&span), Some(&span))
    }

    /// The rows with `start <= index <= end` (`None`: open), where a partial date as `end`
    /// includes its whole period, as in pandas: `loc_range(Some("2015-05-05"),
    /// Some("2015-05-06"))` is two days.
    pub fn loc_range<A: Into<Label>, B: Into<Label>>(
        &self,
        start: Option<A>,
        end: Option<B>,
    ) -> Result<DataFrame> {
        let start = start.map(|s| self.span(&s.into())).transpose()?;
        let end = end.map(|e| self.span(&e.into())).transpose()?;
        self.index_between(start.as_ref(), end.as_ref())
    }

    /// The rows where a boolean expression holds (`df.loc[df.x > 0]`): a filter, which keeps
    /// the index.
    pub fn loc_mask(&self, mask: Expr) -> Result<DataFrame> {
        self.filter(mask)
    }

    fn span(&self, label: &Label) -> Result<Span> {
        let divisions = self.divisions.as_deref().ok_or_else(|| {
            Error::Invalid(format!(
                "loc by the label {label:?} needs an index, and this frame has none: set one with set_index(\"column\") (or read Parquet with ParquetOptions::index), or filter with a comparison"
            ))
        })?;
        let dtype = self
            .schema()
            .get(&divisions.column)
            .cloned()
            .unwrap_or(crate::polars_adapter::DataType::Null);
        pli::span(&divisions.column, &dtype, label)
    }

    /// The partitions that can hold index keys in `from..=to`, each filtered.
    fn index_between(&self, from: Option<&Span>, to: Option<&Span>) -> Result<DataFrame> {
        let divisions = self.divisions.clone().expect("span() checked the index");
        let low = from.map_or(f64::NEG_INFINITY, |s| s.keys.0);
        let high = to.map_or(f64::INFINITY, |s| s.keys.1);
        let filtered = self.filter(pli::between(&divisions.column, from, to))?;
        let mut keep: Vec<u32> = (0..self.npartitions)
            .filter(|&i| {
                let (lo, hi) = divisions.bounds[i as usize];
                lo <= high && hi >= low
            })
            .collect();
        if keep.is_empty() {
            // No partition can hold the labels: the first one, filtered, is an empty answer
            // with the frame's columns.
            keep.push(0);
        }
        filtered.select_partitions(&keep, &divisions)
    }

    /// A frame of some of the partitions, in the given order.
    pub(crate) fn select_partitions(
        &self,
        keep: &[u32],
        divisions: &Divisions,
    ) -> Result<DataFrame> {
        if keep.len() as u32 == self.npartitions {
            return Ok(self.clone());
        }
        let (graph, input) = self.partitions();
        let mut tokenizer = Tokenizer::new();
        tokenizer.str(input.as_str());
        keep.iter().for_each(|&i| {
            tokenizer.u64(u64::from(i));
        });
        let name = Name::tokenized("partitions", tokenizer.finish());
        let aliases = keep
            .iter()
            .enumerate()
            .map(|(j, &i)| (Key::part(name.clone(), j as u32), Key::part(input.clone(), i)))
            .collect();
        let graph = rask_core::partitioned::alias_layer(name.clone(), aliases, &[&graph]);
        let mut frame = DataFrame::from_partitions(
            graph,
            name,
            keep.len() as u32,
            Arc::new(self.schema().clone()),
        );
        frame.divisions = Some(Arc::new(Divisions {
            column: divisions.column.clone(),
            bounds: keep.iter().map(|&i| divisions.bounds[i as usize]).collect(),
        }));
        Ok(frame)
    }
}
