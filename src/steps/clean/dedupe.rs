//! `dedupe`: one row per key. Without `order_by` the first (or last) row in dataset order wins;
//! with it, the row with the smallest (or largest) value, ties going to dataset order. Duplicates
//! are dropped, not rejected: they are not bad data. One pass with a hash map of encoded keys.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::row::{RowConverter, SortField};

use super::config::{Dedupe, Keep};
use super::table::Table;
use crate::data::FastHash;
use crate::steps::StepError;

pub fn apply(table: &mut Table, rule: &Dedupe) -> Result<(), StepError> {
    let key_names: Vec<String> = match &rule.key {
        Some(key) if key.is_empty() => {
            return Err(StepError::permanent("dedupe: `key` lists no column"));
        }
        Some(key) => key.clone(),
        None => table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
    };
    let key_columns: Vec<ArrayRef> = key_names
        .iter()
        .map(|k| table.column(k))
        .collect::<Result<_, _>>()?;
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let keys = converter.convert_columns(&key_columns)?;

    let rows = table.rows();
    let winners: Vec<usize> = match &rule.order_by {
        None => {
            let mut chosen: HashMap<&[u8], usize, FastHash> =
                HashMap::with_capacity_and_hasher(rows, FastHash::default());
            for row in 0..rows {
                match chosen.entry(keys.row(row).data()) {
                    Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                    Entry::Occupied(mut slot) => {
                        if rule.keep == Keep::Last {
                            slot.insert(row);
                        }
                    }
                }
            }
            chosen.into_values().collect()
        }
        Some(order_by) => {
            let order = table.column(order_by)?;
            // Encoded so that byte order is value order; nulls never win.
            let options = SortOptions {
                descending: rule.keep == Keep::Last,
                nulls_first: false,
            };
            let order_converter = RowConverter::new(vec![SortField::new_with_options(
                order.data_type().clone(),
                options,
            )])?;
            let order_rows = order_converter.convert_columns(&[order])?;
            let mut chosen: HashMap<&[u8], usize, FastHash> =
                HashMap::with_capacity_and_hasher(rows, FastHash::default());
            for row in 0..rows {
                match chosen.entry(keys.row(row).data()) {
                    Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                    Entry::Occupied(mut slot) => {
                        let best = order_rows.row(*slot.get());
                        let candidate = order_rows.row(row);
                        let better =
                            candidate < best || (candidate == best && rule.keep == Keep::Last);
                        if better {
                            slot.insert(row);
                        }
                    }
                }
            }
            chosen.into_values().collect()
        }
    };
    let mut keep = vec![false; rows];
    for row in winners {
        keep[row] = true;
    }
    table.drop_unless(&BooleanArray::from(keep))
}
