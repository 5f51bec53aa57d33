//! Shuffles: `N` input partitions into `M` output partitions, each row to the output its key
//! picks (by hash, or by range for sorting), verified so that no row is lost or made up.
//!
//! The graph is the task-based shuffle of Dask (`shuffle_group`, `getitem`, `concat`), in one
//! stage:
//!
//! ```text
//! input i ──split──▶ shards i ──pick (i, j)──▶ piece (i, j) ──┐
//!                                                            ├─assemble j──▶ output j
//!                    shards i' ─pick (i', j)─▶ piece (i', j) ─┘
//! ```
//!
//! A *split* task cuts one input into `M` pieces (the collection's own function: a DataFrame
//! gathers the rows of each output together, a Bag its items); a *pick* task takes piece `j`
//! out of it, so output `j` reads — and on a cluster fetches — only its own pieces, never a
//! whole split; an *assemble* task concatenates the pieces of one output in input order, which
//! keeps a shuffle stable. That is `N + N·M + M` tasks; the picks are tiny, and the scheduler
//! places each beside its split.
//!
//! **Verification.** Every split measures its input ([`Tally`]: the row count and an
//! order-independent checksum, a wrapping sum of row hashes) and every piece it cut, and fails
//! if the pieces do not add up to the input. Each piece carries the split's tally of it to the
//! output, and each assemble task measures what it built and fails if that is not the sum of
//! what the splits sent ([`check_output`]). The outputs together therefore hold exactly the
//! inputs' rows, or the shuffle fails with an error naming the partitions — never a silently
//! short answer.

use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::key::{Key, Name, Tokenizer};
use crate::task::{Arg, TaskFn, TaskSpec};
use crate::value::Value;

/// The row count and checksum of some rows: checksums are wrapping sums of row hashes, so the
/// tally of a union is the sum of the tallies, in any order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Rows (or items).
    pub rows: u64,
    /// The wrapping sum of the rows' hashes.
    pub checksum: u64,
}

impl Tally {
    /// The tally of both sets of rows.
    #[must_use]
    pub fn plus(self, other: Tally) -> Tally {
        Tally { rows: self.rows + other.rows, checksum: self.checksum.wrapping_add(other.checksum) }
    }

    /// The tally of all of them.
    pub fn sum(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        tallies.into_iter().fold(Tally::default(), Tally::plus)
    }
}

/// How a collection shuffles: the three task functions and their extra arguments.
///
/// * `split(input, outputs: u32, input_index: u32, split_args...)` returns one value holding
///   `outputs` pieces (it checks its pieces against its input with [`check_split`]);
/// * `pick(shards, j: u32)` returns piece `j` with the split's tally of it;
/// * `assemble([piece (0, j), piece (1, j), ...], j: u32, assemble_args...)` returns output
///   `j` (it checks what it built against the pieces' tallies with [`check_output`]).
#[derive(Clone)]
pub struct Shuffle {
    /// The readable prefix of the split and pick tasks' names (`"shuffle"`).
    pub prefix: String,
    /// Cuts one input into pieces.
    pub split: TaskFn,
    /// Arguments of every split after the input and the two indices.
    pub split_args: Vec<Arg>,
    /// Takes one piece out of a split.
    pub pick: TaskFn,
    /// Builds one output from its pieces.
    pub assemble: TaskFn,
    /// Arguments of every assemble task after its pieces and its index.
    pub assemble_args: Vec<Arg>,
    /// How many outputs (`M`, at least 1).
    pub outputs: u32,
}

impl Shuffle {
    /// The tasks that shuffle `inputs` into the outputs `(output, j)`: splits, picks, and the
    /// assemble tasks. The split and pick tasks are named after `output`, so two shuffles of
    /// the same inputs into different outputs never share keys.
    pub fn tasks(&self, inputs: &[Key], output: &Name) -> Vec<(Key, TaskSpec)> {
        let outputs = self.outputs.max(1);
        let stage = |what: &str| {
            Name::tokenized(
                &format!("{}-{what}", self.prefix),
                Tokenizer::new().str(output.as_str()).finish(),
            )
        };
        let (splits, picks) = (stage("split"), stage("pick"));
        let n = inputs.len() as u32;
        let mut tasks =
            Vec::with_capacity(inputs.len() * (outputs as usize + 1) + outputs as usize);
        for (i, input) in inputs.iter().enumerate() {
            let mut args = vec![
                Arg::Key(input.clone()),
                Arg::Value(Value::serde(outputs)),
                Arg::Value(Value::serde(i as u32)),
            ];
            args.extend(self.split_args.iter().cloned());
            tasks.push((
                Key::part(splits.clone(), i as u32),
                TaskSpec::new(self.split.clone(), args),
            ));
        }
        for i in 0..n {
            for j in 0..outputs {
                let args =
                    vec![Arg::Key(Key::part(splits.clone(), i)), Arg::Value(Value::serde(j))];
                tasks.push((
                    Key::block(picks.clone(), &[i, j]),
                    TaskSpec::new(self.pick.clone(), args),
                ));
            }
        }
        for j in 0..outputs {
            let pieces = (0..n).map(|i| Arg::Key(Key::block(picks.clone(), &[i, j]))).collect();
            let mut args = vec![Arg::List(pieces), Arg::Value(Value::serde(j))];
            args.extend(self.assemble_args.iter().cloned());
            tasks.push((Key::part(output.clone(), j), TaskSpec::new(self.assemble.clone(), args)));
        }
        tasks
    }
}

/// Fails unless the pieces a split cut from input `input` add up to the input.
pub fn check_split(input: u32, whole: Tally, pieces: &[Tally]) -> Result<(), TaskError> {
    let cut = Tally::sum(pieces.iter().copied());
    if cut == whole {
        return Ok(());
    }
    Err(TaskError::msg(format!(
        "shuffle verification failed: input partition {input} holds {} rows (checksum {:#018x}) but its {} pieces hold {} (checksum {:#018x}); no output was made from it — this is a bug in the split, please report it",
        whole.rows,
        whole.checksum,
        pieces.len(),
        cut.rows,
        cut.checksum
    )))
}

/// Fails unless output `output`, as built (`built`), holds exactly what the splits sent it
/// (`sent[i]`: the tally input partition `i`'s split made of its piece for this output). The
/// error names the output and every input that sent it rows.
pub fn check_output(output: u32, built: Tally, sent: &[Tally]) -> Result<(), TaskError> {
    let expected = Tally::sum(sent.iter().copied());
    if built == expected {
        return Ok(());
    }
    let senders: Vec<String> = sent
        .iter()
        .enumerate()
        .filter(|(_, t)| t.rows > 0)
        .map(|(i, t)| format!("input {i}: {}", t.rows))
        .collect();
    Err(TaskError::msg(format!(
        "shuffle verification failed: output partition {output} holds {} rows (checksum {:#018x}) but the inputs sent it {} (checksum {:#018x}; {}); rows were lost or changed on the way, so no result is given",
        built.rows,
        built.checksum,
        expected.rows,
        expected.checksum,
        if senders.is_empty() { "none sent any".to_string() } else { senders.join(", ") }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, Layer};
    use crate::value::Value;

    // A toy collection: partitions are `Vec<u64>`, rows go to output `value % outputs`, the
    // checksum of a row is the row itself.
    fn tally(rows: &[u64]) -> Tally {
        Tally { rows: rows.len() as u64, checksum: rows.iter().fold(0, |a, r| a.wrapping_add(*r)) }
    }

    fn split(args: &[Value]) -> crate::TaskResult {
        let rows = args[0].get::<Vec<u64>>(&"input")?;
        let outputs = *args[1].get::<u32>(&"outputs")?;
        let input = *args[2].get::<u32>(&"input index")?;
        // A split that drops the rows equal to `lose` (none by default), to test the check.
        let lose = *args[3].get::<u64>(&"lose")?;
        let mut pieces = vec![Vec::new(); outputs as usize];
        for &row in rows {
            if row != lose {
                pieces[(row % u64::from(outputs)) as usize].push(row);
            }
        }
        let tallies: Vec<Tally> = pieces.iter().map(|p| tally(p)).collect();
        check_split(input, tally(rows), &tallies)?;
        Ok(Value::new(pieces))
    }

    fn pick(args: &[Value]) -> crate::TaskResult {
        let pieces = args[0].get::<Vec<Vec<u64>>>(&"shards")?;
        let j = *args[1].get::<u32>(&"output")? as usize;
        // The piece and what the split counted of it; a pick told to corrupt sends one row
        // fewer than it claims.
        Ok(Value::new((pieces[j].clone(), tally(&pieces[j]))))
    }

    fn corrupting_pick(args: &[Value]) -> crate::TaskResult {
        let pieces = args[0].get::<Vec<Vec<u64>>>(&"shards")?;
        let j = *args[1].get::<u32>(&"output")? as usize;
        let mut rows = pieces[j].clone();
        let claim = tally(&rows);
        rows.pop();
        Ok(Value::new((rows, claim)))
    }

    fn assemble(args: &[Value]) -> crate::TaskResult {
        let j = *args[1].get::<u32>(&"output")?;
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for piece in args[0].as_list().expect("a list") {
            let (rows, claim) = piece.get::<(Vec<u64>, Tally)>(&"piece")?;
            out.extend_from_slice(rows);
            sent.push(*claim);
        }
        check_output(j, tally(&out), &sent)?;
        Ok(Value::new(out))
    }

    crate::register_function!("rask_core::shuffle::tests::split", split);
    crate::register_function!("rask_core::shuffle::tests::pick", pick);
    crate::register_function!("rask_core::shuffle::tests::corrupting_pick", corrupting_pick);
    crate::register_function!("rask_core::shuffle::tests::assemble", assemble);

    fn run(pick_name: &str, lose: u64) -> Result<Vec<Vec<u64>>, String> {
        let lookup = |n: &str| crate::registry::lookup(n).unwrap();
        let identity = lookup("rask::identity");
        let inputs: Vec<Vec<u64>> = vec![vec![5, 1, 8, 3], vec![], vec![2, 9, 4, 7, 6, 0]];
        let leaves: Vec<(Key, TaskSpec)> = inputs
            .iter()
            .enumerate()
            .map(|(i, rows)| {
                let spec =
                    TaskSpec::new(identity.clone(), vec![Arg::Value(Value::new(rows.clone()))]);
                (Key::part("input", i as u32), spec)
            })
            .collect();
        let keys: Vec<Key> = leaves.iter().map(|(k, _)| k.clone()).collect();
        let leaves = Graph::from_tasks(leaves);
        let shuffle = Shuffle {
            prefix: "toy".into(),
            split: lookup("rask_core::shuffle::tests::split"),
            split_args: vec![Arg::Value(Value::serde(lose))],
            pick: lookup(pick_name),
            assemble: lookup("rask_core::shuffle::tests::assemble"),
            assemble_args: vec![],
            outputs: 3,
        };
        let output = Name::from("shuffled");
        let tasks = shuffle.tasks(&keys, &output);
        assert_eq!(tasks.len(), 3 + 3 * 3 + 3, "N splits, N·M picks, M outputs");
        // The indices the shuffle adds travel to workers: they must serialize.
        for (key, spec) in &tasks {
            for arg in &spec.args {
                if let Arg::Value(value) = arg {
                    assert!(
                        value.encode().is_ok(),
                        "an argument of {key} cannot leave the process"
                    );
                }
            }
        }
        let graph = Graph::from_layer(Layer::tasks(output.clone(), tasks, &[&leaves]));
        let outputs: Vec<Key> = (0..3).map(|j| Key::part(output.clone(), j)).collect();
        Ok(super::super::run_in_order(&graph, &outputs)?
            .iter()
            .map(|value| value.get::<Vec<u64>>(&"out").unwrap().clone())
            .collect())
    }

    #[test]
    fn every_row_reaches_its_output_in_input_order() {
        let outputs = run("rask_core::shuffle::tests::pick", u64::MAX).unwrap();
        assert_eq!(outputs, vec![vec![3, 9, 6, 0], vec![1, 4, 7], vec![5, 8, 2]]);
    }

    #[test]
    fn a_split_that_loses_rows_fails_naming_its_input() {
        let error = run("rask_core::shuffle::tests::pick", 9).unwrap_err();
        assert!(error.contains("input partition 2 holds 6 rows"), "{error}");
        assert!(error.contains("pieces hold 5"), "{error}");
    }

    #[test]
    fn an_output_short_of_what_was_sent_fails_naming_the_senders() {
        let error = run("rask_core::shuffle::tests::corrupting_pick", u64::MAX).unwrap_err();
        assert!(error.contains("shuffle verification failed: output partition"), "{error}");
        assert!(error.contains("input 0: "), "{error}");
    }

    #[test]
    fn tallies_add_in_any_order() {
        let (a, b, c) = (tally(&[1, 2]), tally(&[u64::MAX]), tally(&[]));
        assert_eq!(a.plus(b).plus(c), Tally::sum([c, b, a]));
        assert_eq!(Tally::sum([a, b]).rows, 3);
    }
}
