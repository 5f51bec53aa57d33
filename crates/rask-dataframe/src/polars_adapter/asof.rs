//! As-of joins as Polars queries: the rows at a group's edge (its last or first right row) and
//! the join of a left partition with the right rows it can reach.

use polars::prelude::{
    col, AsOfOptions, AsofStrategy, IntoLazy, JoinArgs, JoinType, LazyFrame, SortMultipleOptions,
};

use super::{concat, frame_schema, PlFrame};
use crate::asof::{AsofSpec, Direction};
use crate::error::{Error, Result};

fn run(lazy: LazyFrame, what: &str) -> Result<PlFrame> {
    lazy.collect().map_err(|e| Error::polars(what, e))
}

/// Right rows without a null index, in index order (stable).
fn ordered(frames: Vec<PlFrame>, spec: &AsofSpec) -> Result<LazyFrame> {
    let schema = frames.first().map(frame_schema).unwrap_or_default();
    let on = col(spec.right_on.as_str());
    Ok(concat(frames, &schema)?
        .lazy()
        .filter(on.clone().is_not_null())
        .sort([spec.right_on.as_str()], SortMultipleOptions::default().with_maintain_order(true)))
}

/// The last (`last`) or first right row of every `by` group (of all rows without groups) in
/// `part` and the rows carried with it, which lie before it (`last`) or after it.
pub fn edge_rows(
    part: &PlFrame,
    carried: Option<&PlFrame>,
    spec: &AsofSpec,
    last: bool,
) -> Result<PlFrame> {
    let mut frames = vec![part.clone()];
    if let Some(carried) = carried {
        if last {
            frames.insert(0, carried.clone());
        } else {
            frames.push(carried.clone());
        }
    }
    let rows = ordered(frames, spec)?;
    let rows = if spec.by.is_empty() {
        if last {
            rows.tail(1)
        } else {
            rows.limit(1)
        }
    } else {
        // One row per group: the position of its last (first) row, then those rows in order.
        let by: Vec<polars::prelude::Expr> = spec.by.iter().map(|c| col(c.as_str())).collect();
        let index = polars::prelude::PlSmallStr::from_static("__rask_row");
        let numbered = rows.with_row_index(index.clone(), None);
        let position = if last { col(index.clone()).max() } else { col(index.clone()).min() };
        let picked = numbered
            .clone()
            .group_by(by)
            .agg([position.alias(index.clone())])
            .select([col(index.clone())]);
        let mut args = JoinArgs::new(JoinType::Semi);
        args.maintain_order = polars::prelude::MaintainOrderJoin::Left;
        numbered
            .join(picked, [col(index.clone())], [col(index.clone())], args)
            .drop(polars::prelude::cols([index.as_str()]))
    };
    run(rows, "the edge rows of an as-of join")
}

/// A left partition joined as of its index with the right rows (in index order).
pub fn merge(left: &PlFrame, right: Vec<PlFrame>, spec: &AsofSpec) -> Result<PlFrame> {
    let right = ordered(right, spec)?;
    let strategy = match spec.direction {
        Direction::Backward => AsofStrategy::Backward,
        Direction::Forward => AsofStrategy::Forward,
        Direction::Nearest => AsofStrategy::Nearest,
    };
    let by = (!spec.by.is_empty())
        .then(|| spec.by.iter().map(|c| c.as_str().into()).collect::<Vec<_>>());
    let options = AsOfOptions {
        strategy,
        tolerance: None,
        tolerance_str: spec.tolerance.as_deref().map(Into::into),
        left_by: by.clone(),
        right_by: by,
        allow_eq: true,
        check_sortedness: true,
    };
    let mut args = JoinArgs::new(JoinType::AsOf(Box::new(options)));
    args.suffix = Some("_right".into());
    let lazy = left.clone().lazy().join(
        right,
        [col(spec.left_on.as_str())],
        [col(spec.right_on.as_str())],
        args,
    );
    run(lazy, "an as-of join")
}
