//! Datasets between steps: Arrow tables kept as Parquet files in the run folder, read with DataFusion.

mod checked_cast;
mod column_encode;
mod column_type;
mod dataset;
mod inputs;
pub mod parallel;
mod read;
mod session;
mod value_free;

pub use checked_cast::{Checked, as_text, cast_checked};
pub use column_type::{ColumnType, describe_type, expectation};
pub use dataset::{Column, DataError, DatasetRef, DatasetWriter, MAIN_DATASET, columns_of};
pub use inputs::{UpstreamStep, session_with_inputs};
pub use read::{ReadError, first_rows_json, read_dataset};
pub use session::ordered_session;
pub use value_free::{message_of, without_values};

/// The hasher of per-customer maps (publish state, dedupe keys): keys are the user's own customer
/// ids, not an attacker's input, and SipHash showed in profiles of large publishes and cleans.
pub type FastHash = foldhash::fast::RandomState;

/// The cores this process may use (1 when the system does not say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
