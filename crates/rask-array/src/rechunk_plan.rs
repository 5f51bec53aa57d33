//! The rechunk planner: which intermediate chunking, if any, a rechunk goes through so that no
//! task holds more than a memory bound of input.
//!
//! A rechunk task reads the input chunks its output chunk overlaps, whole: in one process that
//! costs nothing (chunks are shared), but on a cluster each of those chunks is sent to the
//! task's worker and held there. An all-to-all rechunk — images to per-pixel time series — has
//! every output read *every* input along the time axis: 400 images of 1 MB make each output
//! task hold 400 MB. Like Dask's planner and the rechunker project, rask then goes through an
//! intermediate chunking `I`: old → `I` → new, with `I` chosen so that both stages' tasks read
//! at most the bound (128 MiB unless given), and among those the one with the fewest tasks.
//!
//! Per axis the candidates for `I` are regular chunkings from the smaller of the old and new
//! chunk lengths up to the larger one, doubling; their combinations are evaluated exactly (the
//! input bytes of the worst task of a stage is the product over axes of the worst overlap
//! along each axis). When the one-stage rechunk fits, there is no intermediate.

/// The default bound on the input bytes one rechunk task holds (Dask's `array.chunk-size`).
pub const DEFAULT_TASK_INPUT_BYTES: usize = 128 << 20;

/// The most intermediate chunkings the planner evaluates.
const MAX_COMBINATIONS: usize = 4096;

/// The worst task of a one-stage rechunk from `old` to `new`: per axis, the largest sum of the
/// old chunk lengths a new chunk overlaps.
fn worst_overlap(old: &[usize], new: &[usize]) -> usize {
    let mut starts = Vec::with_capacity(old.len());
    let mut at = 0;
    for &n in old {
        starts.push(at);
        at += n;
    }
    let (mut worst, mut first, mut start) = (0, 0, 0);
    for &n in new {
        let end = start + n;
        if n > 0 {
            while first < old.len() && starts[first] + old[first] <= start {
                first += 1;
            }
            let (mut i, mut sum) = (first, 0);
            while i < old.len() && starts[i] < end {
                sum += old[i];
                i += 1;
            }
            worst = worst.max(sum);
        }
        start = end;
    }
    worst
}

/// The bytes the worst task of a one-stage rechunk reads.
pub fn task_input_bytes(old: &[Vec<usize>], new: &[Vec<usize>], itemsize: usize) -> usize {
    old.iter().zip(new).map(|(o, n)| worst_overlap(o, n)).product::<usize>() * itemsize
}

/// `length` in chunks of `size` (the last shorter).
fn regular(length: usize, size: usize) -> Vec<usize> {
    if length == 0 {
        return vec![0];
    }
    let size = size.clamp(1, length);
    let mut chunks = vec![size; length / size];
    if length % size != 0 {
        chunks.push(length % size);
    }
    chunks
}

/// A plan: the chunkings to pass through before the new one (none, or one intermediate).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Intermediate chunkings, in order.
    pub stages: Vec<Vec<Vec<usize>>>,
    /// The bytes the worst task of any stage reads.
    pub worst_task_bytes: usize,
}

/// The plan for rechunking `old` into `new` with tasks holding at most `limit` bytes of input.
/// If no plan fits, the one whose worst task reads least (the caller says so).
pub fn plan(old: &[Vec<usize>], new: &[Vec<usize>], itemsize: usize, limit: usize) -> Plan {
    let direct = task_input_bytes(old, new, itemsize);
    if direct <= limit {
        return Plan { stages: Vec::new(), worst_task_bytes: direct };
    }
    // Per axis, the candidate intermediate chunkings.
    let candidates: Vec<Vec<Vec<usize>>> = old
        .iter()
        .zip(new)
        .map(|(o, n)| {
            let length: usize = o.iter().sum();
            let small = o.iter().chain(n).copied().filter(|&c| c > 0).min().unwrap_or(1);
            let large = o.iter().chain(n).copied().max().unwrap_or(1).max(small);
            let mut sizes = Vec::new();
            let mut s = small;
            while s < large {
                sizes.push(s);
                s *= 2;
            }
            sizes.push(large);
            // The old and the new chunking themselves first (thinning keeps the first), then
            // the regular ones.
            let mut options: Vec<Vec<usize>> = vec![o.clone(), n.clone()];
            for regular_option in sizes.into_iter().map(|s| regular(length, s)) {
                if !options.contains(&regular_option) {
                    options.push(regular_option);
                }
            }
            options
        })
        .collect();
    // Keep the search small: at most about 4096 combinations, thinning each axis's list evenly.
    let per_axis = (MAX_COMBINATIONS as f64).powf(1.0 / candidates.len().max(1) as f64).floor();
    let per_axis = (per_axis as usize).max(2);
    let candidates: Vec<Vec<Vec<usize>>> = candidates
        .into_iter()
        .map(|options| {
            if options.len() <= per_axis {
                return options;
            }
            let step = options.len() as f64 / per_axis as f64;
            (0..per_axis).map(|i| options[(i as f64 * step) as usize].clone()).collect()
        })
        .collect();
    let mut best: Option<(bool, usize, usize, Vec<Vec<usize>>)> = None; // (fits, tasks, worst, I)
    let counts: Vec<u32> = candidates.iter().map(|c| c.len() as u32).collect();
    let combos = rask_core::BlockGrid::of(&counts);
    for c in 0..combos.len() as u32 {
        let pick = combos.unravel(c);
        let intermediate: Vec<Vec<usize>> =
            pick.iter().enumerate().map(|(a, &i)| candidates[a][i as usize].clone()).collect();
        let first = task_input_bytes(old, &intermediate, itemsize);
        let second = task_input_bytes(&intermediate, new, itemsize);
        let worst = first.max(second);
        let tasks = intermediate.iter().map(Vec::len).product::<usize>()
            + new.iter().map(Vec::len).product::<usize>();
        let fits = worst <= limit;
        let better = match &best {
            None => true,
            Some((best_fits, best_tasks, best_worst, _)) => match (fits, *best_fits) {
                (true, false) => true,
                (false, true) => false,
                (true, true) => (tasks, worst) < (*best_tasks, *best_worst),
                (false, false) => (worst, tasks) < (*best_worst, *best_tasks),
            },
        };
        if better {
            best = Some((fits, tasks, worst, intermediate));
        }
    }
    let (_, _, worst, intermediate) = best.expect("at least one candidate per axis");
    if worst >= direct {
        return Plan { stages: Vec::new(), worst_task_bytes: direct };
    }
    Plan { stages: vec![intermediate], worst_task_bytes: worst }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_overlaps_count_whole_input_chunks() {
        assert_eq!(worst_overlap(&[4, 4, 2], &[3, 3, 3, 1]), 8);
        assert_eq!(worst_overlap(&[1; 10], &[10]), 10);
        assert_eq!(worst_overlap(&[10], &[1; 10]), 10);
        assert_eq!(worst_overlap(&[5, 0, 5], &[5, 5]), 5);
    }

    #[test]
    fn an_all_to_all_rechunk_goes_through_an_intermediate_under_the_bound() {
        // 400 images of 1000×1000 bytes to per-pixel series of (400, 10, 10).
        let old = vec![vec![1; 400], vec![1000], vec![1000]];
        let new = vec![vec![400], vec![10; 100], vec![10; 100]];
        assert_eq!(task_input_bytes(&old, &new, 1), 400_000_000);
        let limit = 32 << 20;
        let plan = plan(&old, &new, 1, limit);
        assert_eq!(plan.stages.len(), 1);
        assert!(plan.worst_task_bytes <= limit, "{plan:?}");
        let middle = &plan.stages[0];
        assert!(task_input_bytes(&old, middle, 1) <= limit);
        assert!(task_input_bytes(middle, &new, 1) <= limit);
        // Within the bound already: no intermediate.
        assert!(plan_fits_directly(&old, &[vec![20; 20], vec![1000], vec![1000]]));
    }

    fn plan_fits_directly(old: &[Vec<usize>], new: &[Vec<usize>]) -> bool {
        plan(old, new, 1, DEFAULT_TASK_INPUT_BYTES).stages.is_empty()
    }
}
