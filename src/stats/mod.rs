//! Experiment statistics for `validate.holdout` and `validate.ab`: the tests, intervals, power
//! and corrections GrowthBook, statsmodels and scipy compute, on per-arm summaries.
//!
//! Distributions come from `statrs`. Every function returns `Err(Undefined)` with the reason
//! where a value does not exist (an empty arm, no variation…), so no NaN reaches a user.

pub mod correction;
pub mod lift;
pub mod moments;
pub mod power;
pub mod proportions;
pub mod srm;
pub mod welch;

pub use moments::{ArmSummary, Moments};

/// Why a statistic has no value for the data given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undefined {
    #[error("a group has no customers")]
    EmptyGroup,
    #[error("a group has fewer than 2 customers, so its variance is unknown")]
    TooFewUnits,
    #[error("nobody converted in either group")]
    NoConversions,
    #[error("everybody converted in both groups")]
    AllConverted,
    #[error("the metric has the same value for every customer")]
    NoVariation,
    #[error("the control mean is 0, so a relative lift is undefined")]
    ZeroBaseline,
    #[error("fewer than 2 arms are expected to get customers")]
    SingleArm,
    #[error("an arm has fewer than {0} customers, too few to judge the split")]
    TooFewForSrm(u64),
    #[error("no lift is detectable with this many customers")]
    NotDetectable,
}

/// `Some(x)` when `x` is a finite number.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}
