//! Trigger rules: given the states of the steps a step needs, run it, skip it, or wait.
//! The semantics are Airflow's, which is what teams moving from Airflow expect.

use crate::spec::model::Trigger;
use crate::store::StepState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some needed step has not finished and the outcome depends on it.
    Wait,
    Run,
    Skip(String),
    UpstreamFailed(String),
}

fn failed(state: StepState) -> bool {
    matches!(
        state,
        StepState::Failed
            | StepState::UpstreamFailed
            | StepState::Cancelled
            | StepState::Interrupted
    )
}

pub fn decide(trigger: Trigger, upstream: &[(&str, StepState)]) -> Decision {
    let first = |pred: &dyn Fn(StepState) -> bool| {
        upstream
            .iter()
            .find(|(_, s)| pred(*s))
            .map(|(id, _)| id.to_string())
    };
    let all_done = upstream.iter().all(|(_, s)| s.is_terminal());
    let failed_step = first(&failed);
    match trigger {
        Trigger::AllSuccess => {
            if let Some(id) = failed_step {
                Decision::UpstreamFailed(format!("needed step `{id}` failed"))
            } else if !all_done {
                Decision::Wait
            } else if let Some(id) = first(&|s| s == StepState::Skipped) {
                Decision::Skip(format!("needed step `{id}` was skipped"))
            } else {
                Decision::Run
            }
        }
        Trigger::AllDone => {
            if all_done {
                Decision::Run
            } else {
                Decision::Wait
            }
        }
        Trigger::OneFailed => {
            if failed_step.is_some() {
                Decision::Run
            } else if all_done {
                Decision::Skip("no needed step failed (trigger: one_failed)".into())
            } else {
                Decision::Wait
            }
        }
        Trigger::NoneFailed => {
            if let Some(id) = failed_step {
                Decision::UpstreamFailed(format!("needed step `{id}` failed"))
            } else if all_done {
                Decision::Run
            } else {
                Decision::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepState::*;

    #[test]
    fn follows_airflow_rules() {
        let ok = [("a", Succeeded), ("b", Succeeded)];
        let skipped = [("a", Succeeded), ("b", Skipped)];
        let failed = [("a", Failed), ("b", Running)];
        let running = [("a", Succeeded), ("b", Running)];
        assert_eq!(decide(Trigger::AllSuccess, &ok), Decision::Run);
        assert!(matches!(
            decide(Trigger::AllSuccess, &skipped),
            Decision::Skip(_)
        ));
        assert!(matches!(
            decide(Trigger::AllSuccess, &failed),
            Decision::UpstreamFailed(_)
        ));
        assert_eq!(decide(Trigger::AllSuccess, &running), Decision::Wait);
        assert_eq!(decide(Trigger::AllDone, &failed), Decision::Wait);
        assert_eq!(
            decide(Trigger::AllDone, &[("a", Failed), ("b", Skipped)]),
            Decision::Run
        );
        assert_eq!(decide(Trigger::OneFailed, &failed), Decision::Run);
        assert!(matches!(decide(Trigger::OneFailed, &ok), Decision::Skip(_)));
        assert_eq!(decide(Trigger::NoneFailed, &skipped), Decision::Run);
        assert!(matches!(
            decide(Trigger::NoneFailed, &failed),
            Decision::UpstreamFailed(_)
        ));
        assert_eq!(decide(Trigger::AllSuccess, &[]), Decision::Run);
        assert!(matches!(decide(Trigger::OneFailed, &[]), Decision::Skip(_)));
    }
}
