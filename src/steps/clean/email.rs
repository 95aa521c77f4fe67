//! `email`: trims and lowercases an email column and checks each address. Invalid addresses
//! reject their row (or become null with `on_invalid: null`); a null stays null (that is
//! `drop_missing`'s business). Reasons never quote the address.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use regex::Regex;

use super::config::{EmailRule, OnInvalidEmail};
use super::table::Table;
use crate::data::parallel::{join_blocks, map_text_slices};
use crate::steps::StepError;

/// The WHATWG HTML "valid e-mail address" rule (what browsers check), plus a dot in the domain.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$",
    )
    .expect("a valid regex")
});

/// Whether a normalised (trimmed, lowercased) address is well formed.
pub fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    local.len() <= 64
        && address.len() <= 254
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        && EMAIL.is_match(address)
}

/// Trimmed and lowercased, copied only when that changes it (most addresses are already clean).
fn normalise(value: &str) -> Cow<'_, str> {
    let trimmed = value.trim();
    if trimmed.is_ascii() && !trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(trimmed)
    } else {
        Cow::Owned(trimmed.to_lowercase())
    }
}

pub fn apply(table: &mut Table, rule: &EmailRule) -> Result<(), StepError> {
    let name = rule.column();
    let text = table.text_column(name)?;
    let blocks = map_text_slices(&text, checked_block);
    let (mut arrays, mut invalid, mut changed) = (Vec::new(), Vec::with_capacity(text.len()), 0);
    for block in blocks {
        arrays.push(block.normalised);
        invalid.extend(block.invalid);
        changed += block.changed;
    }
    let count = invalid.iter().filter(|i| **i).count();
    table.replace(name, join_blocks(&arrays)?)?;
    table.count_changed(changed);
    table.detail("invalid", count.into());
    if rule.on_invalid() == OnInvalidEmail::Reject {
        let reasons = invalid
            .into_iter()
            .map(|bad| bad.then(|| format!("invalid email in `{name}`")))
            .collect();
        table.reject(reasons)?;
    }
    Ok(())
}

/// One block of addresses, normalised and checked.
struct CheckedBlock {
    /// The normalised addresses; null where the address is invalid or missing.
    normalised: ArrayRef,
    /// Per row, whether its address is invalid.
    invalid: Vec<bool>,
    /// How many addresses normalising changed.
    changed: usize,
}

fn checked_block(text: &StringArray) -> CheckedBlock {
    let mut changed = 0;
    let mut invalid = vec![false; text.len()];
    // The block's own bytes: a slice's `value_data` is the whole column's.
    let offsets = text.value_offsets();
    let bytes = (offsets[text.len()] - offsets[0]) as usize;
    let mut normalised = StringBuilder::with_capacity(text.len(), bytes);
    for (row, value) in text.iter().enumerate() {
        let Some(value) = value else {
            normalised.append_null();
            continue;
        };
        let clean = normalise(value);
        if clean != value {
            changed += 1;
        }
        if is_valid(&clean) {
            normalised.append_value(clean);
        } else {
            invalid[row] = true;
            normalised.append_null();
        }
    }
    CheckedBlock {
        normalised: Arc::new(normalised.finish()),
        invalid,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_real_addresses_and_refuses_malformed_ones() {
        for good in [
            "ann@example.com",
            "a.b+tag@mail.example.co.uk",
            "x_y@sub-domain.io",
        ] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "ann@@example.com",
            "ann smith@example.com",
            ".ann@example.com",
            "ann..b@example.com",
            "ann@-example.com",
            "ann@example.c0m",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
