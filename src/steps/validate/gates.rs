//! Declarative gates: what an evaluation must show for the pipeline to go on, e.g.
//! `require: { srm: pass, min_lift: 0.01, max_p: 0.05, min_power: 0.8 }`, judged per segment
//! and overall into "pass", "fail" or "insufficient data" (with the reasons).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::analysis::{Analysis, Comparison, Population};
use crate::report::format_number;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Require {
    /// The metric the gates look at (default: the first in `metrics`).
    #[serde(default)]
    pub metric: Option<String>,
    /// `pass`: the split must match the expected weights (no sample-ratio mismatch).
    #[serde(default)]
    pub srm: Option<SrmRequirement>,
    /// The smallest relative lift accepted, e.g. 0.01 for +1% over control.
    #[serde(default)]
    pub min_lift: Option<f64>,
    /// The smallest absolute lift accepted (percentage points as a fraction for rates, units for means).
    #[serde(default)]
    pub min_abs_lift: Option<f64>,
    /// The largest p-value accepted (segments: after the correction across segments).
    #[serde(default)]
    pub max_p: Option<f64>,
    /// The smallest achieved power accepted (power at the observed effect).
    #[serde(default)]
    pub min_power: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SrmRequirement {
    /// No sample-ratio mismatch in the segment (or overall).
    Pass,
}

/// What happens when the gates do not pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// The step fails with the list of failed gates (downstream steps do not run).
    #[default]
    Fail,
    /// The step succeeds with `passed: false` and a warning; use `when:` downstream.
    Warn,
}

/// Which verdicts decide `passed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Overall and every segment.
    #[default]
    All,
    /// Only everybody together.
    Overall,
    /// Only the segments.
    Segments,
}

/// What a verdict of "insufficient data" does to `passed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientData {
    /// Ignored, as long as something was judged and passed.
    #[default]
    Ignore,
    /// Counts as a failure.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "pass")]
    Pass,
    #[serde(rename = "fail")]
    Fail,
    #[serde(rename = "insufficient data")]
    Insufficient,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Insufficient => "insufficient data",
        }
    }
}

/// The verdict on one population (overall or a segment).
#[derive(Debug, Clone)]
pub struct Judgement {
    pub segment: Option<String>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// Per treatment group, in group order: its own verdict.
    pub per_group: Vec<Verdict>,
}

impl Judgement {
    pub fn label(&self) -> &str {
        self.segment.as_deref().unwrap_or("overall")
    }
}

/// Judges overall and every segment on metric `metric`.
pub fn judge(
    analysis: &Analysis,
    metric: usize,
    require: &Require,
    srm_threshold: f64,
    correction_name: &str,
) -> Vec<Judgement> {
    let several = analysis.groups.names.len() > 2;
    analysis
        .populations
        .iter()
        .map(|population| {
            let mut reasons = Vec::new();
            let mut per_group = Vec::new();
            for comparison in &population.metrics[metric].comparisons {
                let prefix = if several {
                    format!("{}: ", analysis.groups.names[comparison.group])
                } else {
                    String::new()
                };
                let (verdict, why) = judge_comparison(
                    population,
                    comparison,
                    require,
                    srm_threshold,
                    correction_name,
                );
                reasons.extend(why.into_iter().map(|r| format!("{prefix}{r}")));
                per_group.push(verdict);
            }
            Judgement {
                segment: population.segment.clone(),
                verdict: combine(&per_group),
                reasons,
                per_group,
            }
        })
        .collect()
}

fn combine(verdicts: &[Verdict]) -> Verdict {
    if verdicts.contains(&Verdict::Fail) {
        Verdict::Fail
    } else if verdicts.contains(&Verdict::Insufficient) || verdicts.is_empty() {
        Verdict::Insufficient
    } else {
        Verdict::Pass
    }
}

/// 0.0123 → "1.23%".
fn percent(x: f64) -> String {
    let text = format!("{:.2}", x * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

fn judge_comparison(
    population: &Population,
    comparison: &Comparison,
    require: &Require,
    srm_threshold: f64,
    correction_name: &str,
) -> (Verdict, Vec<String>) {
    let mut failed = Vec::new();
    let mut unknown = Vec::new();
    if let Some(why) = &comparison.insufficient {
        unknown.push(why.clone());
    }
    if require.srm.is_some() {
        match &population.srm {
            None => unknown.push(
                "the expected split is unknown, so the sample ratio cannot be checked; give `weights:`"
                    .into(),
            ),
            Some(Err(why)) => unknown.push(format!("sample ratio not judged: {why}")),
            Some(Ok(test)) if !test.ok(srm_threshold) => failed.push(format!(
                "sample-ratio mismatch: {} is below {}",
                p_phrase(test.p_value),
                format_number(srm_threshold)
            )),
            Some(Ok(_)) => {}
        }
    }
    // Numbers from too little data say nothing: do not judge the lift gates on them.
    if comparison.insufficient.is_some() {
        return if failed.is_empty() {
            (Verdict::Insufficient, unknown)
        } else {
            (Verdict::Fail, failed)
        };
    }
    if let Some(max_p) = require.max_p {
        let adjusted = population.segment.is_some() && correction_name != "none";
        match (comparison.p_adjusted, &comparison.p_value) {
            (Some(p), _) if p > max_p => failed.push(format!(
                "{}{} is above max_p {}",
                p_phrase(p),
                if adjusted {
                    format!(" ({correction_name}-adjusted)")
                } else {
                    String::new()
                },
                format_number(max_p)
            )),
            (Some(_), _) => {}
            (None, Err(why)) => unknown.push(format!("no p-value: {why}")),
            (None, Ok(_)) => {}
        }
    }
    if let Some(min_lift) = require.min_lift {
        match &comparison.relative {
            Ok(lift) if lift.estimate < min_lift => failed.push(format!(
                "relative lift {} is below min_lift {}",
                percent(lift.estimate),
                percent(min_lift)
            )),
            Ok(_) => {}
            Err(why) => unknown.push(format!("no relative lift: {why}")),
        }
    }
    if let Some(min_abs_lift) = require.min_abs_lift {
        match &comparison.absolute {
            Ok(lift) if lift.estimate < min_abs_lift => failed.push(format!(
                "absolute lift {} is below min_abs_lift {}",
                format_number(lift.estimate),
                format_number(min_abs_lift)
            )),
            Ok(_) => {}
            Err(why) => unknown.push(format!("no absolute lift: {why}")),
        }
    }
    if let Some(min_power) = require.min_power {
        match &comparison.power {
            Ok(power) if *power < min_power => failed.push(format!(
                "power {} is below min_power {}",
                format_number(*power),
                format_number(min_power)
            )),
            Ok(_) => {}
            Err(why) => unknown.push(format!("no power: {why}")),
        }
    }
    unknown.dedup();
    if !failed.is_empty() {
        (Verdict::Fail, failed)
    } else if !unknown.is_empty() {
        (Verdict::Insufficient, unknown)
    } else {
        (Verdict::Pass, Vec::new())
    }
}

/// A p-value people can read: "p = 0.0312", or "p < 0.0001".
pub fn p_phrase(p: f64) -> String {
    if p < 0.0001 {
        "p < 0.0001".into()
    } else {
        format!("p = {}", format_number(p))
    }
}

/// Whether the judged verdicts let the pipeline go on.
pub fn passed(judgements: &[Judgement], scope: Scope, insufficient: InsufficientData) -> bool {
    let considered: Vec<&Judgement> = judgements
        .iter()
        .filter(|j| match scope {
            Scope::All => true,
            Scope::Overall => j.segment.is_none(),
            Scope::Segments => j.segment.is_some(),
        })
        .collect();
    let any = |v: Verdict| considered.iter().any(|j| j.verdict == v);
    !any(Verdict::Fail)
        && any(Verdict::Pass)
        && !(insufficient == InsufficientData::Fail && any(Verdict::Insufficient))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ArmSummary;
    use crate::stats::Undefined;
    use crate::stats::lift::Interval;
    use crate::stats::srm;
    use crate::steps::validate::analysis::{Groups, MetricResult};

    fn comparison(relative: f64, p: f64, power: f64) -> Comparison {
        Comparison {
            group: 1,
            insufficient: None,
            absolute: Ok(Interval {
                estimate: relative * 0.1,
                low: 0.0,
                high: 0.0,
            }),
            relative: Ok(Interval {
                estimate: relative,
                low: relative - 0.1,
                high: relative + 0.1,
            }),
            p_value: Ok(p),
            p_adjusted: Some(p),
            power: Ok(power),
            mde: Err(Undefined::NotDetectable),
        }
    }

    fn population(segment: Option<&str>, counts: [u64; 2], comparison: Comparison) -> Population {
        Population {
            segment: segment.map(str::to_string),
            assigned: counts.to_vec(),
            srm: Some(srm::test(&counts, &[0.1, 0.9])),
            metrics: vec![MetricResult {
                groups: vec![ArmSummary::proportion(10, 100); 2],
                comparisons: vec![comparison],
            }],
        }
    }

    fn analysis(populations: Vec<Population>) -> Analysis {
        Analysis {
            groups: Groups {
                names: vec!["control".into(), "treatment".into()],
                control: 0,
                weights: Some(vec![0.1, 0.9]),
            },
            metrics: vec![(
                "converted".into(),
                crate::steps::validate::outcomes::MetricType::Proportion,
            )],
            populations,
        }
    }

    fn require() -> Require {
        Require {
            srm: Some(SrmRequirement::Pass),
            min_lift: Some(0.01),
            max_p: Some(0.05),
            min_power: Some(0.8),
            ..Require::default()
        }
    }

    #[test]
    fn each_gate_fails_with_its_reason() {
        let a = analysis(vec![
            population(None, [1000, 9000], comparison(0.05, 0.001, 0.95)),
            population(Some("low lift"), [100, 900], comparison(0.005, 0.001, 0.95)),
            population(Some("noisy"), [100, 900], comparison(0.05, 0.2, 0.95)),
            population(Some("weak"), [100, 900], comparison(0.05, 0.01, 0.5)),
            population(Some("skewed"), [300, 700], comparison(0.05, 0.001, 0.95)),
        ]);
        let judgements = judge(&a, 0, &require(), 0.001, "Holm");
        let verdicts: Vec<(&str, Verdict)> =
            judgements.iter().map(|j| (j.label(), j.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("overall", Verdict::Pass),
                ("low lift", Verdict::Fail),
                ("noisy", Verdict::Fail),
                ("weak", Verdict::Fail),
                ("skewed", Verdict::Fail),
            ]
        );
        assert_eq!(
            judgements[1].reasons,
            ["relative lift 0.5% is below min_lift 1%"]
        );
        assert_eq!(
            judgements[2].reasons,
            ["p = 0.2 (Holm-adjusted) is above max_p 0.05"]
        );
        assert_eq!(judgements[3].reasons, ["power 0.5 is below min_power 0.8"]);
        assert_eq!(
            judgements[4].reasons,
            ["sample-ratio mismatch: p < 0.0001 is below 0.001"]
        );
        assert!(!passed(&judgements, Scope::All, InsufficientData::Ignore));
        assert!(passed(
            &judgements,
            Scope::Overall,
            InsufficientData::Ignore
        ));
    }

    #[test]
    fn insufficient_data_is_neither_pass_nor_fail() {
        let mut small = comparison(0.05, 0.01, 0.9);
        small.insufficient = Some("control has 5 customers, fewer than min_per_group (30)".into());
        let a = analysis(vec![
            population(None, [1000, 9000], comparison(0.05, 0.001, 0.95)),
            population(Some("tiny"), [5, 40], small),
        ]);
        let judgements = judge(&a, 0, &require(), 0.001, "Holm");
        assert_eq!(judgements[1].verdict, Verdict::Insufficient);
        assert_eq!(
            judgements[1].reasons,
            [
                "control has 5 customers, fewer than min_per_group (30)",
                "sample ratio not judged: an arm has fewer than 8 customers, too few to judge the split",
            ]
        );
        assert!(passed(&judgements, Scope::All, InsufficientData::Ignore));
        assert!(!passed(&judgements, Scope::All, InsufficientData::Fail));
        // Nothing judged at all is not a pass.
        assert!(!passed(
            &judgements[1..],
            Scope::All,
            InsufficientData::Ignore
        ));
    }

    #[test]
    fn an_undefined_lift_is_insufficient_not_a_failure() {
        let mut zero_base = comparison(0.0, 0.01, 0.9);
        zero_base.relative = Err(Undefined::ZeroBaseline);
        let a = analysis(vec![population(None, [1000, 9000], zero_base)]);
        let judgements = judge(&a, 0, &require(), 0.001, "Holm");
        assert_eq!(judgements[0].verdict, Verdict::Insufficient);
        assert_eq!(
            judgements[0].reasons,
            ["no relative lift: the control mean is 0, so a relative lift is undefined"]
        );
    }

    #[test]
    fn no_requirements_pass_when_the_data_suffices() {
        let a = analysis(vec![population(
            None,
            [1000, 9000],
            comparison(-0.2, 0.9, 0.1),
        )]);
        let judgements = judge(&a, 0, &Require::default(), 0.001, "Holm");
        assert_eq!(judgements[0].verdict, Verdict::Pass);
    }
}
