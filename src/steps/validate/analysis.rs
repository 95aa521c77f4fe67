//! The numbers of an A/B evaluation: per segment and overall, per metric and per treatment arm
//! against control — sizes, rates or means, lift with intervals, p-value, power, minimum
//! detectable effect, the sample-ratio check, and the correction across segments.

use super::assignment::Assignment;
use super::outcomes::{MetricType, Outcomes};
use crate::stats::correction::Correction;
use crate::stats::lift::{self, Interval};
use crate::stats::srm::{self, SrmTest};
use crate::stats::{ArmSummary, Moments, Undefined, power, proportions, welch};

/// What the analysis is asked for.
#[derive(Debug, Clone)]
pub struct Settings {
    pub alpha: f64,
    /// The power the minimum detectable effect is computed for.
    pub power: f64,
    pub min_per_group: u64,
    pub correction: Correction,
    /// Customers without an outcome row count as 0 (true) or are left out (false).
    pub missing_as_zero: bool,
}

/// The groups in the order they are reported, the control's position, and the expected split.
#[derive(Debug, Clone)]
pub struct Groups {
    pub names: Vec<String>,
    pub control: usize,
    /// Expected share of each group, when known.
    pub weights: Option<Vec<f64>>,
}

#[derive(Debug)]
pub struct Analysis {
    pub groups: Groups,
    pub metrics: Vec<(String, MetricType)>,
    /// Overall first, then the segments by name.
    pub populations: Vec<Population>,
}

#[derive(Debug)]
pub struct Population {
    /// `None` for everybody together.
    pub segment: Option<String>,
    /// Customers assigned to each group.
    pub assigned: Vec<u64>,
    /// `None` when the expected split is unknown.
    pub srm: Option<Result<SrmTest, Undefined>>,
    /// One per metric.
    pub metrics: Vec<MetricResult>,
}

impl Population {
    pub fn label(&self) -> &str {
        self.segment.as_deref().unwrap_or("overall")
    }
}

#[derive(Debug)]
pub struct MetricResult {
    /// Per group: customers measured, rate or mean, per-unit variance.
    pub groups: Vec<ArmSummary>,
    /// One per group other than control, in group order.
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug)]
pub struct Comparison {
    /// The treatment group compared with control.
    pub group: usize,
    /// Why this comparison cannot be judged (too few customers, no test possible).
    pub insufficient: Option<String>,
    pub absolute: Result<Interval, Undefined>,
    pub relative: Result<Interval, Undefined>,
    pub p_value: Result<f64, Undefined>,
    /// Adjusted across segments (segments with enough data only); the raw p-value overall.
    pub p_adjusted: Option<f64>,
    pub power: Result<f64, Undefined>,
    pub mde: Result<Mde, Undefined>,
}

/// The smallest lift the test would detect with the target power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mde {
    pub absolute: f64,
    /// `None` when the control mean is 0.
    pub relative: Option<f64>,
}

/// Runs every test.
pub fn analyse(
    assignment: &Assignment,
    outcomes: &Outcomes,
    groups: Groups,
    group_index: &[usize],
    settings: &Settings,
) -> Analysis {
    let group_count = groups.names.len();
    let mut segment_order: Vec<usize> = (0..assignment.segments.len()).collect();
    segment_order.sort_by(|&a, &b| assignment.segments[a].cmp(&assignment.segments[b]));
    // Population 0 is overall; segment s is population 1 + its rank by name.
    let mut population_of_segment = vec![0usize; assignment.segments.len()];
    for (rank, &segment) in segment_order.iter().enumerate() {
        population_of_segment[segment] = rank + 1;
    }
    let populations_count = 1 + assignment.segments.len();

    let mut assigned = vec![vec![0u64; group_count]; populations_count];
    let mut moments = vec![
        vec![vec![Moments::default(); group_count]; outcomes.metrics.len()];
        populations_count
    ];
    for customer in 0..assignment.len() {
        let group = group_index[assignment.group_of[customer] as usize];
        let mut targets = vec![0usize];
        if let Some(segment) = assignment.segment_of[customer] {
            targets.push(population_of_segment[segment as usize]);
        }
        for &p in &targets {
            assigned[p][group] += 1;
        }
        for (m, metric) in outcomes.metrics.iter().enumerate() {
            let value = match metric.values[customer] {
                Some(v) => v,
                None if settings.missing_as_zero => 0.0,
                None => continue,
            };
            for &p in &targets {
                moments[p][m][group].push(value);
            }
        }
    }

    let mut populations: Vec<Population> = (0..populations_count)
        .map(|p| {
            let segment = (p > 0).then(|| assignment.segments[segment_order[p - 1]].clone());
            let srm = groups
                .weights
                .as_ref()
                .map(|weights| srm::test(&assigned[p], weights));
            let metrics = outcomes
                .metrics
                .iter()
                .enumerate()
                .map(|(m, metric)| measure(&moments[p][m], metric.metric_type, &groups, settings))
                .collect();
            Population {
                segment,
                assigned: assigned[p].clone(),
                srm,
                metrics,
            }
        })
        .collect();

    correct(
        &mut populations,
        outcomes.metrics.len(),
        settings.correction,
    );
    Analysis {
        metrics: outcomes
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.metric_type))
            .collect(),
        groups,
        populations,
    }
}

fn measure(
    moments: &[Moments],
    metric_type: MetricType,
    groups: &Groups,
    settings: &Settings,
) -> MetricResult {
    let summaries: Vec<ArmSummary> = moments
        .iter()
        .map(|m| match metric_type {
            MetricType::Proportion => ArmSummary::proportion(m.sum().round() as u64, m.n()),
            MetricType::Mean => ArmSummary::mean(m),
        })
        .collect();
    let control = summaries[groups.control];
    let comparisons = (0..summaries.len())
        .filter(|&g| g != groups.control)
        .map(|g| compare(&control, &summaries[g], g, metric_type, groups, settings))
        .collect();
    MetricResult {
        groups: summaries,
        comparisons,
    }
}

fn compare(
    control: &ArmSummary,
    treatment: &ArmSummary,
    group: usize,
    metric_type: MetricType,
    groups: &Groups,
    settings: &Settings,
) -> Comparison {
    let control_name = &groups.names[groups.control];
    let treatment_name = &groups.names[group];
    let p_value = match metric_type {
        MetricType::Proportion => proportions::ztest(
            conversions(treatment),
            treatment.n,
            conversions(control),
            control.n,
        )
        .map(|t| t.p_value),
        MetricType::Mean => welch::ttest(treatment, control).map(|t| t.p_value),
    };
    let insufficient = if control.n == 0 {
        Some(format!("no customers in {control_name}"))
    } else if treatment.n == 0 {
        Some(format!("no customers in {treatment_name}"))
    } else if control.n < settings.min_per_group || treatment.n < settings.min_per_group {
        let (name, n) = if control.n < treatment.n {
            (control_name, control.n)
        } else {
            (treatment_name, treatment.n)
        };
        Some(format!(
            "{name} has {n} customers, fewer than min_per_group ({})",
            settings.min_per_group
        ))
    } else {
        p_value
            .as_ref()
            .err()
            .map(|why| format!("no test possible: {why}"))
    };
    let (power, mde) = power_and_mde(control, treatment, metric_type, settings);
    Comparison {
        group,
        insufficient,
        absolute: lift::absolute(control, treatment, settings.alpha),
        relative: lift::relative(control, treatment, settings.alpha),
        p_value,
        p_adjusted: None,
        power,
        mde,
    }
}

fn conversions(summary: &ArmSummary) -> u64 {
    (summary.mean * summary.n as f64).round() as u64
}

/// Achieved power at the observed effect, and the minimum detectable effect at the target
/// power, both from statsmodels' `NormalIndPower`: Cohen's h for proportions, the lift over the
/// pooled standard deviation for means.
fn power_and_mde(
    control: &ArmSummary,
    treatment: &ArmSummary,
    metric_type: MetricType,
    settings: &Settings,
) -> (Result<f64, Undefined>, Result<Mde, Undefined>) {
    let (nc, nt) = (control.n, treatment.n);
    if nc == 0 || nt == 0 {
        return (Err(Undefined::EmptyGroup), Err(Undefined::EmptyGroup));
    }
    let relative = |absolute: f64| (control.mean != 0.0).then(|| absolute / control.mean.abs());
    match metric_type {
        MetricType::Proportion => {
            let h = power::cohens_h(treatment.mean, control.mean);
            let achieved = power::power(h, nt, nc, settings.alpha);
            let mde = power::minimum_detectable_effect(nt, nc, settings.alpha, settings.power)
                .and_then(|h| power::proportion_at(control.mean, h).ok_or(Undefined::NotDetectable))
                .map(|p| {
                    let absolute = p - control.mean;
                    Mde {
                        absolute,
                        relative: relative(absolute),
                    }
                });
            (achieved, mde)
        }
        MetricType::Mean => {
            if nc < 2 || nt < 2 {
                return (Err(Undefined::TooFewUnits), Err(Undefined::TooFewUnits));
            }
            let pooled = (((nc - 1) as f64 * control.variance
                + (nt - 1) as f64 * treatment.variance)
                / (nc + nt - 2) as f64)
                .sqrt();
            if pooled <= 0.0 || !pooled.is_finite() {
                return (Err(Undefined::NoVariation), Err(Undefined::NoVariation));
            }
            let d = (treatment.mean - control.mean) / pooled;
            let achieved = power::power(d, nt, nc, settings.alpha);
            let mde =
                power::minimum_detectable_effect(nt, nc, settings.alpha, settings.power).map(|d| {
                    let absolute = d * pooled;
                    Mde {
                        absolute,
                        relative: relative(absolute),
                    }
                });
            (achieved, mde)
        }
    }
}

/// Adjusts the segments' p-values per metric and treatment group; overall keeps its own.
fn correct(populations: &mut [Population], metrics: usize, correction: Correction) {
    let Some(first) = populations.first() else {
        return;
    };
    let comparisons = first.metrics.first().map_or(0, |m| m.comparisons.len());
    if let Some(overall) = populations.first_mut() {
        for metric in &mut overall.metrics {
            for comparison in &mut metric.comparisons {
                if comparison.insufficient.is_none() {
                    comparison.p_adjusted = comparison.p_value.as_ref().ok().copied();
                }
            }
        }
    }
    for m in 0..metrics {
        for c in 0..comparisons {
            let family: Vec<(usize, f64)> = populations
                .iter()
                .enumerate()
                .skip(1)
                .filter_map(|(p, population)| {
                    let comparison = &population.metrics[m].comparisons[c];
                    match (&comparison.insufficient, &comparison.p_value) {
                        (None, Ok(p_value)) => Some((p, *p_value)),
                        _ => None,
                    }
                })
                .collect();
            let raw: Vec<f64> = family.iter().map(|(_, p)| *p).collect();
            for ((p, _), adjusted) in family.iter().zip(correction.adjust(&raw)) {
                populations[*p].metrics[m].comparisons[c].p_adjusted = Some(adjusted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::steps::validate::outcomes::Metric;

    fn settings() -> Settings {
        Settings {
            alpha: 0.05,
            power: 0.8,
            min_per_group: 30,
            correction: Correction::Holm,
            missing_as_zero: true,
        }
    }

    /// An assignment of `rows` = (segment, group, converted).
    fn fixture(rows: &[(&str, &str, Option<f64>)]) -> (Assignment, Outcomes) {
        let mut assignment = Assignment::default();
        let mut values = Vec::new();
        for (i, (segment, group, value)) in rows.iter().enumerate() {
            assignment.index.insert(i.to_string(), i);
            let s = match assignment.segments.iter().position(|x| x == segment) {
                Some(s) => s,
                None => {
                    assignment.segments.push(segment.to_string());
                    assignment.segments.len() - 1
                }
            };
            let g = match assignment.groups.iter().position(|x| x == group) {
                Some(g) => g,
                None => {
                    assignment.groups.push(group.to_string());
                    assignment.groups.len() - 1
                }
            };
            assignment.segment_of.push(Some(s as u32));
            assignment.group_of.push(g as u32);
            values.push(*value);
        }
        let outcomes = Outcomes {
            metrics: vec![Metric {
                name: "converted".into(),
                metric_type: MetricType::Proportion,
                values,
            }],
            unmatched_rows: 0,
            rows: rows.len() as u64,
        };
        (assignment, outcomes)
    }

    fn control_treatment(assignment: &Assignment) -> (Groups, Vec<usize>) {
        let names = vec!["control".to_string(), "treatment".to_string()];
        let position: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let index = assignment
            .groups
            .iter()
            .map(|g| position[g.as_str()])
            .collect();
        (
            Groups {
                names,
                control: 0,
                weights: Some(vec![0.5, 0.5]),
            },
            index,
        )
    }

    fn many(
        segment: &'static str,
        group: &'static str,
        n: usize,
        converted: usize,
    ) -> Vec<(&'static str, &'static str, Option<f64>)> {
        (0..n)
            .map(|i| (segment, group, Some(if i < converted { 1.0 } else { 0.0 })))
            .collect()
    }

    #[test]
    fn segments_and_overall_match_the_reference_tests() {
        let mut rows = many("A", "control", 1000, 100);
        rows.extend(many("A", "treatment", 1000, 120));
        rows.extend(many("B", "control", 500, 50));
        rows.extend(many("B", "treatment", 500, 50));
        let (assignment, outcomes) = fixture(&rows);
        let (groups, index) = control_treatment(&assignment);
        let analysis = analyse(&assignment, &outcomes, groups, &index, &settings());
        let labels: Vec<&str> = analysis.populations.iter().map(|p| p.label()).collect();
        assert_eq!(labels, ["overall", "A", "B"]);
        let a = &analysis.populations[1].metrics[0].comparisons[0];
        // statsmodels proportions_ztest([120, 100], [1000, 1000]) = 0.1529177818639.
        assert!((a.p_value.clone().unwrap() - 0.1529177818639).abs() < 1e-9);
        let b = &analysis.populations[2].metrics[0].comparisons[0];
        assert_eq!(b.p_value, Ok(1.0));
        // Holm across A and B: min(1, 2 × 0.1529) for A; B stays 1.
        assert!((a.p_adjusted.unwrap() - 2.0 * 0.1529177818639).abs() < 1e-9);
        assert_eq!(b.p_adjusted, Some(1.0));
        let overall = &analysis.populations[0];
        assert_eq!(overall.assigned, vec![1500, 1500]);
        assert_eq!(overall.metrics[0].groups[1].n, 1500);
        assert!((overall.metrics[0].groups[1].mean - 170.0 / 1500.0).abs() < 1e-12);
    }

    #[test]
    fn small_segments_are_insufficient_and_left_out_of_the_correction() {
        let mut rows = many("A", "control", 200, 20);
        rows.extend(many("A", "treatment", 200, 40));
        rows.extend(many("tiny", "control", 5, 1));
        rows.extend(many("tiny", "treatment", 6, 2));
        let (assignment, outcomes) = fixture(&rows);
        let (groups, index) = control_treatment(&assignment);
        let analysis = analyse(&assignment, &outcomes, groups, &index, &settings());
        let tiny = &analysis.populations[2].metrics[0].comparisons[0];
        assert_eq!(
            tiny.insufficient.as_deref(),
            Some("control has 5 customers, fewer than min_per_group (30)")
        );
        assert_eq!(tiny.p_adjusted, None);
        let a = &analysis.populations[1].metrics[0].comparisons[0];
        // Alone in the family, A's adjusted p-value is its own.
        assert_eq!(a.p_adjusted, a.p_value.clone().ok());
    }

    #[test]
    fn zero_conversions_and_empty_groups_say_why() {
        let mut rows = many("none", "control", 100, 0);
        rows.extend(many("none", "treatment", 100, 0));
        rows.extend(many("solo", "treatment", 100, 10));
        let (assignment, outcomes) = fixture(&rows);
        let (groups, index) = control_treatment(&assignment);
        let analysis = analyse(&assignment, &outcomes, groups, &index, &settings());
        let none = &analysis.populations[1].metrics[0].comparisons[0];
        assert_eq!(
            none.insufficient.as_deref(),
            Some("no test possible: nobody converted in either group")
        );
        assert_eq!(none.relative, Err(Undefined::NoVariation));
        let solo = &analysis.populations[2];
        assert_eq!(solo.assigned, vec![0, 100]);
        let comparison = &solo.metrics[0].comparisons[0];
        assert_eq!(
            comparison.insufficient.as_deref(),
            Some("no customers in control")
        );
        assert_eq!(comparison.p_value, Err(Undefined::EmptyGroup));
        assert_eq!(comparison.power, Err(Undefined::EmptyGroup));
    }

    #[test]
    fn missing_outcomes_count_as_zero_or_are_left_out() {
        let mut rows: Vec<(&str, &str, Option<f64>)> = many("A", "control", 100, 10);
        rows.extend((0..100).map(|i| ("A", "treatment", if i < 50 { Some(1.0) } else { None })));
        let (assignment, outcomes) = fixture(&rows);
        let (groups, index) = control_treatment(&assignment);
        let zero = analyse(&assignment, &outcomes, groups.clone(), &index, &settings());
        assert_eq!(zero.populations[0].metrics[0].groups[1].n, 100);
        assert!((zero.populations[0].metrics[0].groups[1].mean - 0.5).abs() < 1e-12);
        let mut exclude = settings();
        exclude.missing_as_zero = false;
        let left_out = analyse(&assignment, &outcomes, groups, &index, &exclude);
        assert_eq!(left_out.populations[0].metrics[0].groups[1].n, 50);
        assert_eq!(left_out.populations[0].metrics[0].groups[1].mean, 1.0);
        // The sample-ratio check looks at who was assigned, not who has outcomes.
        assert_eq!(left_out.populations[0].assigned, vec![100, 100]);
    }
}
