//! Datasets handed in memory to the steps of the same run that need them.
//!
//! Every dataset is written to its Parquet file first, and the file stays the record: a resumed
//! run, a retried step, `segflow data` and the web UI read it. But a step that needs a dataset
//! written earlier in the same run gets the record batches the writer was given, instead of
//! decoding the file again (which was on the data benchmark's critical path twice: clean's read
//! of the customers and the aggregate's read of 10,000,000 transactions).
//!
//! Memory is bounded: a run keeps at most its budget of Arrow buffers (`SEGFLOW_HANDOFF_MIB`,
//! 1,024 MiB unless set; 0 turns hand-offs off). A dataset that would go over it is not kept,
//! and the steps that need it read its file. A kept dataset leaves the run's keeping once every
//! step that needs it has started; its memory counts against the budget until the last of
//! those steps lets go of it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayData};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

/// The budget when `SEGFLOW_HANDOFF_MIB` is not set.
pub const DEFAULT_HANDOFF_MIB: u64 = 1024;

/// The environment variable that sets a run's hand-off budget, in MiB.
pub const HANDOFF_BUDGET_VAR: &str = "SEGFLOW_HANDOFF_MIB";

/// The budget `SEGFLOW_HANDOFF_MIB` asks for, in bytes, or why its value is not one.
pub fn budget_from_env() -> Result<u64, String> {
    match std::env::var(HANDOFF_BUDGET_VAR) {
        Err(_) => Ok(DEFAULT_HANDOFF_MIB << 20),
        Ok(text) => parse_budget(&text),
    }
}

fn parse_budget(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .and_then(|mib| mib.checked_mul(1 << 20))
        .ok_or_else(|| {
            format!(
                "{HANDOFF_BUDGET_VAR}={text:?} is not a whole number of MiB; set it to the memory \
                 a run may keep datasets in between steps (say {HANDOFF_BUDGET_VAR}=512), 0 to \
                 read every dataset from its file, or unset it for {DEFAULT_HANDOFF_MIB}"
            )
        })
}

/// The datasets one run keeps in memory, by step and name, and the memory they hold.
pub struct Handoff {
    budget: Arc<Budget>,
    kept: Mutex<HashMap<String, Vec<KeptDataset>>>,
}

/// What a run may keep, and what is kept now (by datasets in the run's keeping, by those steps
/// still hold and by writers still filling theirs).
struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// Takes `bytes` from the budget when they fit.
    fn reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Handoff {
    pub fn new(limit_bytes: u64) -> Self {
        Handoff {
            budget: Arc::new(Budget {
                limit: limit_bytes,
                used: AtomicU64::new(0),
            }),
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// A keeping that keeps nothing: every dataset is read from its file.
    pub fn disabled() -> Self {
        Handoff::new(0)
    }

    /// Collects the batches of one dataset while it is written, as long as they fit.
    pub fn keeper(&self) -> Option<Keeper> {
        (self.budget.limit > 0).then(|| Keeper {
            budget: Arc::clone(&self.budget),
            batches: Vec::new(),
            seen: HashSet::new(),
            bytes: 0,
            gave_up: false,
        })
    }

    /// Keeps the datasets a step that succeeded wrote, for the steps that need it.
    pub fn keep(&self, step: &str, datasets: Vec<KeptDataset>) {
        if datasets.is_empty() {
            return;
        }
        self.lock().insert(step.to_string(), datasets);
    }

    /// The datasets of `step` that are kept.
    pub fn kept(&self, step: &str) -> Vec<KeptDataset> {
        self.lock().get(step).cloned().unwrap_or_default()
    }

    /// Lets go of the datasets of `step`; steps that hold them keep them until they are done.
    pub fn release(&self, step: &str) {
        self.lock().remove(step);
    }

    /// The steps whose datasets are kept.
    pub fn steps(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The bytes of Arrow buffers kept now, by this run's keeping and the steps holding them.
    pub fn bytes_in_use(&self) -> u64 {
        self.budget.used.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<KeptDataset>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A dataset's batches, in the order they were written, as one step handed them on.
#[derive(Clone)]
pub struct KeptDataset {
    inner: Arc<Kept>,
}

struct Kept {
    name: String,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    rows: u64,
    bytes: u64,
    budget: Arc<Budget>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

impl KeptDataset {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.inner.schema)
    }

    pub fn batches(&self) -> &[RecordBatch] {
        &self.inner.batches
    }

    pub fn rows(&self) -> u64 {
        self.inner.rows
    }
}

impl std::fmt::Debug for KeptDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptDataset")
            .field("name", &self.inner.name)
            .field("rows", &self.inner.rows)
            .field("bytes", &self.inner.bytes)
            .finish()
    }
}

/// The batches of one dataset being written, and the memory they take from the run's budget.
/// Once a batch does not fit, the keeper gives everything back and keeps nothing more.
pub struct Keeper {
    budget: Arc<Budget>,
    batches: Vec<RecordBatch>,
    /// The allocations counted so far: batches sliced from one table share them.
    seen: HashSet<usize>,
    bytes: u64,
    /// A batch did not fit: part of a dataset is no use downstream.
    gave_up: bool,
}

impl Keeper {
    /// Keeps `batch` (its buffers are shared, not copied). False once the dataset is over the
    /// budget: the keeper then holds nothing.
    pub fn keep(&mut self, batch: &RecordBatch) -> bool {
        if self.gave_up {
            return false;
        }
        let mut bytes = 0;
        for column in batch.columns() {
            bytes += new_bytes(&column.to_data(), &mut self.seen);
        }
        if !self.budget.reserve(bytes) {
            self.budget.release(self.bytes);
            self.bytes = 0;
            self.batches = Vec::new();
            self.seen = HashSet::new();
            self.gave_up = true;
            return false;
        }
        self.bytes += bytes;
        self.batches.push(batch.clone());
        true
    }

    /// The kept dataset, named `name`, with `schema` (which every batch has); `None` when it
    /// did not fit.
    pub fn finish(mut self, name: &str, schema: SchemaRef) -> Option<KeptDataset> {
        if self.gave_up {
            return None;
        }
        let batches = std::mem::take(&mut self.batches);
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        let bytes = std::mem::take(&mut self.bytes);
        Some(KeptDataset {
            inner: Arc::new(Kept {
                name: name.to_string(),
                schema,
                batches,
                rows,
                bytes,
                budget: Arc::clone(&self.budget),
            }),
        })
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// The capacity of the allocations under `data` not counted yet.
fn new_bytes(data: &ArrayData, seen: &mut HashSet<usize>) -> u64 {
    let mut bytes = 0;
    let mut count = |buffer: &datafusion::arrow::buffer::Buffer| {
        if seen.insert(buffer.data_ptr().as_ptr() as usize) {
            bytes += buffer.capacity() as u64;
        }
    };
    for buffer in data.buffers() {
        count(buffer);
    }
    if let Some(nulls) = data.nulls() {
        count(nulls.buffer());
    }
    for child in data.child_data() {
        bytes += new_bytes(child, seen);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("email", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("c{i}@example.com")),
                )),
            ],
        )
        .unwrap()
    }

    fn buffer_bytes(batch: &RecordBatch) -> u64 {
        batch
            .columns()
            .iter()
            .map(|c| c.get_buffer_memory_size() as u64)
            .sum()
    }

    #[test]
    fn a_dataset_within_the_budget_is_kept_and_its_memory_counted_until_the_last_holder_lets_go() {
        let handoff = Handoff::new(10 << 20);
        let table = batch(10_000);
        let mut keeper = handoff.keeper().unwrap();
        // Two slices of one table share its buffers: counted once.
        assert!(keeper.keep(&table.slice(0, 5_000)));
        assert!(keeper.keep(&table.slice(5_000, 5_000)));
        let in_table = buffer_bytes(&table);
        assert_eq!(handoff.bytes_in_use(), in_table);

        let kept = keeper.finish("main", table.schema()).unwrap();
        assert_eq!(kept.rows(), 10_000);
        assert_eq!(kept.batches().len(), 2);
        handoff.keep("customers", vec![kept]);
        let held = handoff.kept("customers");
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].name(), "main");

        handoff.release("customers");
        assert!(handoff.kept("customers").is_empty());
        assert_eq!(handoff.bytes_in_use(), in_table, "a step still holds it");
        drop(held);
        assert_eq!(handoff.bytes_in_use(), 0);
    }

    #[test]
    fn a_dataset_over_the_budget_is_not_kept_and_gives_its_memory_back() {
        let one = batch(10_000);
        let size = buffer_bytes(&one);
        let handoff = Handoff::new(size * 2 + size / 2);
        let mut keeper = handoff.keeper().unwrap();
        assert!(keeper.keep(&batch(10_000)));
        assert!(keeper.keep(&batch(10_000)));
        assert!(!keeper.keep(&batch(10_000)), "the third is over the budget");
        assert_eq!(handoff.bytes_in_use(), 0);
        // A keeper that gave up keeps nothing more, even what would fit again: part of a
        // dataset is no use downstream.
        assert!(!keeper.keep(&batch(10)));
        assert_eq!(handoff.bytes_in_use(), 0);
        assert!(keeper.finish("main", one.schema()).is_none());
        assert_eq!(handoff.bytes_in_use(), 0);
    }

    #[test]
    fn a_budget_of_zero_keeps_nothing() {
        assert!(Handoff::disabled().keeper().is_none());
        assert!(Handoff::new(0).keeper().is_none());
    }

    #[test]
    fn the_budget_is_read_in_mib_and_a_bad_value_says_how_to_set_it() {
        assert_eq!(parse_budget("512"), Ok(512 << 20));
        assert_eq!(parse_budget(" 0 "), Ok(0));
        let error = parse_budget("1GB").unwrap_err();
        assert!(error.contains("SEGFLOW_HANDOFF_MIB=\"1GB\""), "{error}");
        assert!(error.contains("whole number of MiB"), "{error}");
        assert!(parse_budget(&u64::MAX.to_string()).is_err());
    }
}
