//! `trim` and `lowercase` of text columns, in blocks of rows on every core.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};

use super::config::Columns;
use super::table::Table;
use crate::data::parallel::{join_blocks, map_text_slices};
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
        let text = table.text_column(name)?;
        let blocks = map_text_slices(&text, |block| changed_block(block, operation));
        let changed: usize = blocks.iter().map(|(_, changed)| changed).sum();
        // A column no value of which changes is kept as it is, not copied.
        if changed > 0 {
            let arrays: Vec<ArrayRef> = blocks.into_iter().map(|(array, _)| array).collect();
            table.replace(name, join_blocks(&arrays)?)?;
        }
        table.count_changed(changed);
    }
    Ok(())
}

/// One block with the operation applied, and how many of its values changed (a block none of
/// whose values changes comes back as it was).
fn changed_block(text: &StringArray, operation: TextOperation) -> (ArrayRef, usize) {
    let changes = |v: &str| operation.apply(v) != v;
    let Some(first) = text.iter().position(|v| v.is_some_and(changes)) else {
        return (Arc::new(text.clone()), 0);
    };
    // Rows before the first change are known to stay as they are.
    let mut changed = 0;
    let result: StringArray = text
        .iter()
        .enumerate()
        .map(|(row, value)| {
            value.map(|v| {
                if row < first {
                    return Cow::Borrowed(v);
                }
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
