//! Picking runs up again: after a crash, on `segflow resume`, and on `segflow retry --from`.

use chrono::Utc;

use super::{Engine, EngineError};
use crate::spec::suggest;
use crate::store::{
    AttemptOutcome, Event, RunRecord, RunState, StateStore, StepRecord, StepState, StoreResult,
};

/// Marks runs left `running` (or `queued`: recorded, about to start) by a process that died as
/// interrupted. Call it right after opening the store: holding the store's lock proves no other
/// process is running them.
pub fn mark_interrupted(store: &dyn StateStore) -> StoreResult<Vec<String>> {
    let mut marked = Vec::new();
    for mut run in store.list_runs(None, usize::MAX)? {
        if !matches!(run.state, RunState::Running | RunState::Queued) {
            continue;
        }
        let mut steps = store.get_steps(&run.id)?;
        for step in steps.iter_mut() {
            if matches!(step.state, StepState::Running | StepState::Retrying) {
                close_open_attempt(step);
                step.state = StepState::Interrupted;
                step.reason = Some("segflow stopped while the step ran".into());
            }
        }
        run.state = RunState::Interrupted;
        run.error = Some(
            "segflow stopped while the run was in progress; `segflow resume` finishes it".into(),
        );
        let refs: Vec<&StepRecord> = steps.iter().collect();
        let event = Event {
            at: Utc::now(),
            step: None,
            message: "run interrupted (segflow stopped while it ran)".into(),
        };
        store.commit(&run.id, Some(&run), &refs, &[event])?;
        marked.push(run.id);
    }
    Ok(marked)
}

fn close_open_attempt(step: &mut StepRecord) {
    if let Some(attempt) = step.attempts.last_mut()
        && attempt.ended_at.is_none()
    {
        attempt.ended_at = Some(Utc::now());
        attempt.outcome = Some(AttemptOutcome::Interrupted);
    }
}

fn load_run(engine: &Engine, run_id: &str) -> Result<(RunRecord, Vec<StepRecord>), EngineError> {
    let run = engine
        .store
        .get_run(run_id)?
        .ok_or_else(|| EngineError::UnknownRun(run_id.to_string()))?;
    let steps = engine.store.get_steps(run_id)?;
    Ok((run, steps))
}

fn requeue(
    engine: &Engine,
    mut run: RunRecord,
    steps: &[StepRecord],
    message: String,
) -> Result<RunRecord, EngineError> {
    run.state = RunState::Queued;
    run.resumes += 1;
    run.ended_at = None;
    run.error = None;
    let refs: Vec<&StepRecord> = steps.iter().collect();
    let event = Event {
        at: Utc::now(),
        step: None,
        message,
    };
    engine.store.commit(&run.id, Some(&run), &refs, &[event])?;
    Ok(run)
}

pub fn prepare_resume(engine: &Engine, run_id: &str) -> Result<RunRecord, EngineError> {
    let (run, mut steps) = load_run(engine, run_id)?;
    match run.state {
        RunState::Succeeded => {
            return Err(EngineError::NotResumable {
                run: run.id,
                why: "already succeeded: nothing to resume (to run steps again, use `segflow retry RUN --from STEP`)".into(),
            });
        }
        RunState::Queued => return Ok(run),
        _ => {}
    }
    let (loaded, _) = engine.load_run_pipeline(&run)?;
    for (position, spec) in loaded.pipeline.steps.iter().enumerate() {
        if !steps.iter().any(|s| s.id == spec.id) {
            steps.push(StepRecord::pending(&spec.id, &spec.uses, position));
        }
    }
    let mut rerun = Vec::new();
    for step in steps.iter_mut() {
        if step.state != StepState::Succeeded {
            close_open_attempt(step);
            step.reset();
            rerun.push(step.id.clone());
        }
    }
    let message = format!("resumed: {} step(s) to run again", rerun.len());
    requeue(engine, run, &steps, message)
}

pub fn prepare_retry(engine: &Engine, run_id: &str, from: &str) -> Result<RunRecord, EngineError> {
    let (run, mut steps) = load_run(engine, run_id)?;
    if !run.state.is_finished() {
        return Err(EngineError::NotResumable {
            run: run.id,
            why: format!("is {}; retry it once it has finished", run.state.name()),
        });
    }
    let (loaded, plan) = engine.load_run_pipeline(&run)?;
    let Some(position) = plan.position(from) else {
        let hint = suggest::hint(from, loaded.pipeline.steps.iter().map(|s| s.id.as_str()))
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return Err(EngineError::UnknownStep {
            run: run.id,
            step: from.to_string(),
            hint,
        });
    };
    for ancestor in plan.ancestors(position) {
        let id = plan.id(ancestor);
        let succeeded = steps
            .iter()
            .any(|s| s.id == id && s.state == StepState::Succeeded);
        if !succeeded {
            return Err(EngineError::NotResumable {
                run: run.id.clone(),
                why: format!(
                    "cannot run `{from}` again: `{id}`, which it needs, did not succeed; use `segflow resume {}`",
                    run.id
                ),
            });
        }
    }
    let mut targets = vec![position];
    targets.extend(plan.descendants(position));
    for &target in &targets {
        let id = plan.id(target);
        match steps.iter_mut().find(|s| s.id == id) {
            Some(step) => step.reset(),
            None => steps.push(StepRecord::pending(
                id,
                &loaded.pipeline.steps[target].uses,
                target,
            )),
        }
    }
    let message = format!(
        "retry from `{from}`: {} step(s) to run again",
        targets.len()
    );
    requeue(engine, run, &steps, message)
}
