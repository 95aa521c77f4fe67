//! `trim` and `lowercase` of text columns, in blocks of rows on every core.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};

use super::config::Columns;
use super::table::Table;
use crate::data::parallel::{join_blocks, map_slices};
use crate::steps::StepError;

#[derive(Debug, Clone, Copy)]
pub enum TextOperation {
    Trim,
    Lowercase,
}

impl TextOperation {
    fn apply(self, value: &str) -> Cow<'_, str> {
        match self {
            TextOperation::Trim => Cow::Borrowed(value.trim()),
            TextOperation::Lowercase if value.chars().any(char::is_uppercase) => {
                Cow::Owned(value.to_lowercase())
            }
            TextOperation::Lowercase => Cow::Borrowed(value),
        }
    }
}

pub fn apply(
    table: &mut Table,
    columns: &Columns,
    operation: TextOperation,
) -> Result<(), StepError> {
    let names = match columns {
        Columns::All(_) => table.text_columns(),
        Columns::Named(names) => names.clone(),
    };
    for name in &names {
        let text: ArrayRef = Arc::new(table.text_column(name)?);
        let blocks = map_slices(&text, |block| changed_block(block, operation));
        let changed: usize = blocks.iter().map(|(_, changed)| changed).sum();
        // A column no value of which changes is kept as it is, not copied.
        if changed > 0 {
            let arrays: Vec<ArrayRef> = blocks.into_iter().map(|(array, _)| array).collect();
            table.replace(name, join_blocks(&arrays, &text)?)?;
        }
        table.count_changed(changed);
    }
    Ok(())
}

/// One block with the operation applied, and how many of its values changed (a block none of
/// whose values changes comes back as it was).
fn changed_block(block: ArrayRef, operation: TextOperation) -> (ArrayRef, usize) {
    let text = block
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("text_column gives Utf8");
    let changes = |v: &str| operation.apply(v) != v;
    if !text.iter().flatten().any(changes) {
        return (block, 0);
    }
    let mut changed = 0;
    let result: StringArray = text
        .iter()
        .map(|value| {
            value.map(|v| {
                let new = operation.apply(v);
                if new != v {
                    changed += 1;
                }
                new
            })
        })
        .collect();
    (Arc::new(result), changed)
}
