//! `dedupe`: one row per key. Without `order_by` the first (or last) row in dataset order wins;
//! with it, the row with the smallest (or largest) value, ties going to dataset order. Duplicates
//! are dropped, not rejected: they are not bad data. One pass with a hash map of encoded keys.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::DataType;
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
    let rows = table.rows();
    let order_rows = match &rule.order_by {
        None => None,
        Some(order_by) => {
            let order = table.column(order_by)?;
            // Encoded so that byte order is value order; nulls never win.
            let options = SortOptions {
                descending: rule.keep == Keep::Last,
                nulls_first: false,
            };
            let converter = RowConverter::new(vec![SortField::new_with_options(
                order.data_type().clone(),
                options,
            )])?;
            Some(converter.convert_columns(&[order])?)
        }
    };
    let keep_last = rule.keep == Keep::Last;
    // Whether the row `candidate` should replace `best` as its key's row.
    let better = |candidate: usize, best: usize| match &order_rows {
        None => keep_last,
        Some(order) => {
            let (candidate, best) = (order.row(candidate), order.row(best));
            candidate < best || (candidate == best && keep_last)
        }
    };
    let winners = match key_columns.as_slice() {
        // One text key (the usual customer id) is hashed as it is, not encoded first.
        [only] if only.data_type() == &DataType::Utf8 => {
            let text = only
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("a Utf8 column");
            winners(
                rows,
                |row| text.is_valid(row).then(|| text.value(row)),
                better,
            )
        }
        _ => {
            let converter = RowConverter::new(
                key_columns
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?;
            let keys = converter.convert_columns(&key_columns)?;
            winners(rows, |row| keys.row(row).data(), better)
        }
    };
    let mut keep = vec![false; rows];
    for row in winners {
        keep[row] = true;
    }
    table.drop_unless(&BooleanArray::from(keep))
}

/// The row each key keeps: its first row, replaced by a later one whenever `better` says so.
fn winners<K: Hash + Eq>(
    rows: usize,
    key: impl Fn(usize) -> K,
    better: impl Fn(usize, usize) -> bool,
) -> Vec<usize> {
    let mut chosen: HashMap<K, usize, FastHash> =
        HashMap::with_capacity_and_hasher(rows, FastHash::default());
    for row in 0..rows {
        match chosen.entry(key(row)) {
            Entry::Vacant(slot) => {
                slot.insert(row);
            }
            Entry::Occupied(mut slot) => {
                if better(row, *slot.get()) {
                    slot.insert(row);
                }
            }
        }
    }
    chosen.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;

    /// Rows `row` 0..6 with text keys a, b, a, null, b, null and an order column.
    fn table() -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("row", DataType::Int64, false),
            Field::new("day", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                    Some("b"),
                    None,
                ])),
                Arc::new(Int64Array::from_iter_values(0..6)),
                Arc::new(Int64Array::from(vec![5, 1, 3, 2, 9, 4])),
            ],
        )
        .unwrap();
        Table::new(batch)
    }

    fn kept(rule: Dedupe, key: &[&str]) -> Vec<i64> {
        kept_of(&mut table(), rule, key)
    }

    /// The `row` values `rule`, keyed on `key`, keeps of `table`.
    fn kept_of(table: &mut Table, rule: Dedupe, key: &[&str]) -> Vec<i64> {
        let rule = Dedupe {
            key: Some(key.iter().map(|k| k.to_string()).collect()),
            ..rule
        };
        table.begin("dedupe");
        apply(table, &rule).unwrap();
        let rows = table.column("row").unwrap();
        rows.as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    fn rule(keep: Keep, order_by: Option<&str>) -> Dedupe {
        Dedupe {
            key: None,
            keep,
            order_by: order_by.map(str::to_string),
        }
    }

    #[test]
    fn one_text_key_keeps_first_last_or_by_order_and_nulls_are_one_key() {
        assert_eq!(kept(rule(Keep::First, None), &["key"]), [0, 1, 3]);
        assert_eq!(kept(rule(Keep::Last, None), &["key"]), [2, 4, 5]);
        assert_eq!(kept(rule(Keep::First, Some("day")), &["key"]), [1, 2, 3]);
        assert_eq!(kept(rule(Keep::Last, Some("day")), &["key"]), [0, 4, 5]);
    }

    #[test]
    fn text_keys_hashed_as_text_agree_with_the_row_encoding() {
        // The same keys as Utf8View take the row-encoded path.
        for (keep, order_by) in [
            (Keep::First, None),
            (Keep::Last, None),
            (Keep::First, Some("day")),
        ] {
            let mut viewed = table();
            let view = datafusion::arrow::compute::cast(
                &viewed.column("key").unwrap(),
                &DataType::Utf8View,
            )
            .unwrap();
            viewed.replace("key", view).unwrap();
            let encoded = kept_of(&mut viewed, rule(keep, order_by), &["key"]);
            assert_eq!(encoded, kept(rule(keep, order_by), &["key"]));
        }
        assert_eq!(kept(rule(Keep::First, None), &["key", "row"]).len(), 6);
    }
}
