//! The run loop: decide which steps can run, start them up to the run's concurrency, record
//! every transition durably before acting on it, and handle results, retries, timeouts and
//! cancellation.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::events::EngineEvent;
use super::expressions;
use super::retry::delay_before;
use super::trigger::{Decision, decide};
use super::{Engine, EngineError, timezone_of};
use crate::data::{DatasetRef, UpstreamStep};
use crate::plan::Plan;
use crate::redact;
use crate::spec::model::{Condition, Pipeline};
use crate::spec::{LoadedPipeline, expr};
use crate::steps::{StepContext, StepError, StepKind, StepOutput};
use crate::store::{Attempt, AttemptOutcome, Event, RunRecord, RunState, StepRecord, StepState};

/// How long a cancelled or timed-out step gets to stop on its own.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct AttemptResult {
    result: Result<StepOutput, StepError>,
    outcome: AttemptOutcome,
    datasets: Vec<DatasetRef>,
    report: Option<std::path::PathBuf>,
}

/// A step ready to start: its kind, its `with` with expressions evaluated, its context.
struct Launch {
    index: usize,
    kind: Arc<dyn StepKind>,
    with: Value,
    ctx: StepContext,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    TimedOut,
    /// segflow is shutting down: nothing new starts, running steps may finish, and the run is
    /// recorded as interrupted so that the next start resumes it.
    Drain,
}

impl Stop {
    /// Why a step that did not finish was stopped.
    fn reason(self) -> &'static str {
        match self {
            Stop::Cancelled => "the run was cancelled",
            Stop::TimedOut => "the run timed out",
            Stop::Drain => "segflow shut down while the run was in progress",
        }
    }

    /// The state of a step this stop kept from finishing.
    fn step_state(self) -> StepState {
        match self {
            Stop::Drain => StepState::Interrupted,
            _ => StepState::Cancelled,
        }
    }
}

struct Executor<'e> {
    engine: &'e Engine,
    run: RunRecord,
    pipeline: Pipeline,
    plan: Plan,
    steps: Vec<StepRecord>,
    /// Position of each step in the topological order; candidates are decided in that order.
    rank: Vec<usize>,
    candidates: BTreeSet<(usize, usize)>,
    ready: VecDeque<usize>,
    retry_at: Vec<(Instant, usize)>,
    tasks: JoinSet<(usize, AttemptResult)>,
    task_steps: HashMap<tokio::task::Id, usize>,
    attempt_tokens: HashMap<usize, CancellationToken>,
    run_values: Value,
    cancel: CancellationToken,
    drain: CancellationToken,
    stop: Option<Stop>,
    /// Transitions not yet committed.
    dirty: BTreeSet<usize>,
    events: Vec<Event>,
}

pub async fn execute(
    engine: &Engine,
    run_id: &str,
    cancel: CancellationToken,
    drain: CancellationToken,
) -> Result<RunRecord, EngineError> {
    let mut run = engine
        .store
        .get_run(run_id)?
        .ok_or_else(|| EngineError::UnknownRun(run_id.to_string()))?;
    if run.state.is_finished() {
        return Err(EngineError::NotResumable {
            run: run.id.clone(),
            why: format!(
                "is already {}; use `segflow resume` or `segflow retry`",
                run.state.name()
            ),
        });
    }
    let (loaded, plan): (LoadedPipeline, Plan) = engine.load_run_pipeline(&run)?;
    let stored: HashMap<String, StepRecord> = engine
        .store
        .get_steps(&run.id)?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let steps: Vec<StepRecord> = loaded
        .pipeline
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            stored
                .get(&s.id)
                .cloned()
                .unwrap_or_else(|| StepRecord::pending(&s.id, &s.uses, i))
        })
        .collect();
    let mut rank = vec![0; plan.len()];
    for (position, &step) in plan.order().iter().enumerate() {
        rank[step] = position;
    }
    run.state = RunState::Running;
    run.started_at.get_or_insert_with(Utc::now);
    run.ended_at = None;
    run.error = None;
    let run_values = expressions::run_values(&run, timezone_of(&loaded));

    let mut executor = Executor {
        engine,
        candidates: (0..steps.len())
            .filter(|&i| steps[i].state == StepState::Pending)
            .map(|i| (rank[i], i))
            .collect(),
        run,
        pipeline: loaded.pipeline,
        plan,
        steps,
        rank,
        ready: VecDeque::new(),
        retry_at: Vec::new(),
        tasks: JoinSet::new(),
        task_steps: HashMap::new(),
        attempt_tokens: HashMap::new(),
        run_values,
        cancel,
        drain,
        stop: None,
        dirty: BTreeSet::new(),
        events: Vec::new(),
    };
    executor.event(None, "run started".into());
    executor.commit_with_run()?;
    tracing::info!(run = %executor.run.id, pipeline = %executor.run.pipeline, "run started");
    engine.emit(EngineEvent::RunStarted {
        run_id: executor.run.id.clone(),
        pipeline: executor.run.pipeline.clone(),
        steps: executor
            .pipeline
            .steps
            .iter()
            .map(|s| s.id.clone())
            .collect(),
    });
    executor.run_loop().await?;
    executor.finish()
}

impl Executor<'_> {
    async fn run_loop(&mut self) -> Result<(), EngineError> {
        let deadline = self
            .pipeline
            .timeout
            .map(|t| tokio::time::Instant::now() + t.0);
        loop {
            let mut spawn = Vec::new();
            loop {
                self.settle();
                if !self.start_ready(&mut spawn) {
                    break;
                }
            }
            self.commit()?;
            for launch in spawn {
                self.spawn(launch);
            }
            if self.tasks.is_empty() && self.retry_at.is_empty() && self.ready.is_empty() {
                return Ok(());
            }
            let next_retry = self
                .retry_at
                .iter()
                .map(|(at, _)| *at)
                .min()
                .map(tokio::time::Instant::from_std);
            // Biased: a cancellation or the deadline is seen before the step results it causes.
            tokio::select! {
                biased;
                _ = self.cancel.cancelled(), if self.stop.is_none() => {
                    self.stop_run(Stop::Cancelled);
                }
                _ = self.drain.cancelled(), if self.stop.is_none() => {
                    self.stop_run(Stop::Drain);
                }
                _ = sleep_until_opt(deadline), if self.stop.is_none() && deadline.is_some() => {
                    self.stop_run(Stop::TimedOut);
                }
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.on_joined(joined);
                    while let Some(joined) = self.tasks.try_join_next_with_id() {
                        self.on_joined(joined);
                    }
                }
                _ = sleep_until_opt(next_retry), if next_retry.is_some() => {
                    let now = Instant::now();
                    let (due, later): (Vec<_>, Vec<_>) =
                        self.retry_at.drain(..).partition(|(at, _)| *at <= now);
                    self.retry_at = later;
                    for (_, index) in due {
                        self.steps[index].state = StepState::Pending;
                        self.steps[index].next_attempt_at = None;
                        self.candidates.insert((self.rank[index], index));
                    }
                }
            }
        }
    }

    /// Decides every candidate step in topological order, so a skip cascades in one pass.
    fn settle(&mut self) {
        while let Some((_, index)) = self.candidates.pop_first() {
            if self.steps[index].state != StepState::Pending || self.ready.contains(&index) {
                continue;
            }
            if self.stop.is_some() {
                continue;
            }
            let upstream: Vec<(&str, StepState)> = self
                .plan
                .upstream(index)
                .into_iter()
                .map(|u| (self.steps[u].id.as_str(), self.steps[u].state))
                .collect();
            match decide(self.pipeline.steps[index].trigger, &upstream) {
                Decision::Wait => {}
                Decision::Run => self.ready.push_back(index),
                Decision::Skip(reason) => self.conclude(index, StepState::Skipped, Some(reason)),
                Decision::UpstreamFailed(reason) => {
                    self.conclude(index, StepState::UpstreamFailed, Some(reason))
                }
            }
        }
    }

    /// Starts ready steps while there is room. Returns true when a step was concluded without
    /// running (so the graph must be settled again).
    fn start_ready(&mut self, spawn: &mut Vec<Launch>) -> bool {
        let mut concluded = false;
        let limit = self.pipeline.concurrency();
        while self.tasks.len() + spawn.len() < limit && self.stop.is_none() {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            match self.prepare(index) {
                Ok(Some(launch)) => spawn.push(launch),
                Ok(None) => {
                    concluded = true;
                }
                Err(reason) => {
                    self.conclude(index, StepState::Failed, Some(reason));
                    concluded = true;
                }
            }
        }
        concluded
    }

    /// Evaluates `when` and `with`, then marks the step running. `Ok(None)`: skipped.
    fn prepare(&mut self, index: usize) -> Result<Option<Launch>, String> {
        let step = self.pipeline.steps[index].clone();
        let kind = self
            .engine
            .registry
            .get(&step.uses)
            .cloned()
            .ok_or_else(|| format!("unknown step kind `{}`", step.uses))?;
        let needs_context = matches!(step.when, Some(Condition::Expression(_)))
            || serde_json::to_string(&step.with).is_ok_and(|s| s.contains("${{"));
        let context = needs_context.then(|| {
            let steps: Vec<&StepRecord> = self.steps.iter().collect();
            expressions::context(
                &self.run_values,
                &self.run.params,
                &steps,
                &self.engine.secrets,
            )
        });
        let when = match &step.when {
            None => true,
            Some(Condition::Literal(b)) => *b,
            Some(Condition::Expression(text)) => {
                let context = context.as_ref().expect("built for expressions");
                let value = if expr::has_expression(text) {
                    expr::render_str(text, context)
                } else {
                    expr::eval(text, context)
                }
                .map_err(|e| self.expression_failure("when", &e))?;
                truthy(&value)
            }
        };
        if !when {
            self.conclude(index, StepState::Skipped, Some("`when` is false".into()));
            return Ok(None);
        }
        let with = match &context {
            Some(context) => expr::render_value(&step.with, context)
                .map_err(|e| self.expression_failure("with", &e))?,
            None => step.with.clone(),
        };

        let record = &mut self.steps[index];
        let number = record.attempts.len() as u32 + 1;
        record.state = StepState::Running;
        record.reason = None;
        record.started_at.get_or_insert_with(Utc::now);
        record.attempts.push(Attempt {
            number,
            started_at: Utc::now(),
            ended_at: None,
            outcome: None,
            error: None,
        });
        self.dirty.insert(index);
        self.event(Some(index), format!("started (attempt {number})"));
        tracing::info!(run = %self.run.id, step = %step.id, attempt = number, "step started");
        self.engine.emit(EngineEvent::StepStarted {
            step: step.id.clone(),
            attempt: number,
        });

        let inputs = self
            .plan
            .upstream(index)
            .into_iter()
            .map(|u| UpstreamStep {
                id: self.steps[u].id.clone(),
                outputs: self.steps[u].outputs.clone(),
                datasets: self.steps[u].datasets.clone(),
            })
            .collect();
        let token = self.cancel.child_token();
        self.attempt_tokens.insert(index, token.clone());
        let ctx = StepContext::new(
            self.run.id.clone(),
            self.run.pipeline.clone(),
            step.id.clone(),
            number,
            self.run.params.clone(),
            self.run.base_dir.clone(),
            self.engine.store.runs_dir().join(&self.run.id),
            inputs,
            token,
            Arc::clone(&self.engine.store),
            Arc::clone(&self.engine.secrets),
        );
        Ok(Some(Launch {
            index,
            kind,
            with,
            ctx,
        }))
    }

    /// Why an expression failed, with a hint when it read the outputs of a step that did not
    /// succeed (skipped steps set no outputs).
    fn expression_failure(&self, field: &str, error: &expr::ExprError) -> String {
        let text = redact::apply(&error.to_string()).into_owned();
        let unset = self.steps.iter().find(|s| {
            s.state != StepState::Succeeded && text.contains(&format!("steps.{}.outputs", s.id))
        });
        match unset {
            Some(step) => format!(
                "`{field}`: {text}; step `{id}` is {state}, so it set no outputs: write `steps.{id}.outputs.NAME | default(VALUE)`, or test `steps.{id}.state == 'succeeded'`",
                id = step.id,
                state = step.state.name()
            ),
            None => format!("`{field}`: {text}"),
        }
    }

    fn spawn(&mut self, launch: Launch) {
        let Launch {
            index,
            kind,
            with,
            ctx,
        } = launch;
        let timeout = self.pipeline.timeout_for(&self.pipeline.steps[index]);
        let handle = self.tasks.spawn(async move {
            let result = run_attempt(kind.as_ref(), with, &ctx, timeout).await;
            (index, result)
        });
        self.task_steps.insert(handle.id(), index);
    }

    fn on_joined(
        &mut self,
        joined: Result<(tokio::task::Id, (usize, AttemptResult)), tokio::task::JoinError>,
    ) {
        let (index, result) = match joined {
            Ok((id, (index, result))) => {
                self.task_steps.remove(&id);
                (index, result)
            }
            Err(error) => {
                let Some(index) = self.task_steps.remove(&error.id()) else {
                    return;
                };
                let message = if error.is_panic() {
                    format!("the step crashed: {}", panic_message(error.into_panic()))
                } else {
                    "the step was aborted".to_string()
                };
                let result = AttemptResult {
                    result: Err(StepError::permanent(message)),
                    outcome: AttemptOutcome::Failed,
                    datasets: Vec::new(),
                    report: None,
                };
                (index, result)
            }
        };
        self.attempt_tokens.remove(&index);
        self.on_attempt_done(index, result);
    }

    fn on_attempt_done(&mut self, index: usize, done: AttemptResult) {
        let policy = self.pipeline.retry_for(&self.pipeline.steps[index]);
        let now = Utc::now();
        let record = &mut self.steps[index];
        let attempt_number = record.attempts.len() as u32;
        let tries = record.attempts_this_execution();
        if let Some(attempt) = record.attempts.last_mut() {
            attempt.ended_at = Some(now);
            attempt.outcome = Some(done.outcome);
        }
        self.dirty.insert(index);
        match done.result {
            Ok(output) => {
                let mut outputs = Value::Object(output.outputs);
                redact::apply_json(&mut outputs);
                let Value::Object(outputs) = outputs else {
                    unreachable!()
                };
                record.outputs = outputs;
                record.datasets = done.datasets;
                record.report = done.report;
                self.conclude(index, StepState::Succeeded, None);
            }
            Err(error) => {
                let message = redact::apply(&error.message).into_owned();
                if let Some(attempt) = record.attempts.last_mut() {
                    attempt.error = Some(message.clone());
                }
                // A step that failed on purpose (validate.ab's gates) wrote a report saying
                // why: keep it, so `runs show` and the web UI can show it.
                record.report = done.report;
                // While draining, running steps may still finish or fail on their own; only a
                // step the grace period cut short counts as stopped.
                let told_to_stop =
                    self.cancel.is_cancelled() || done.outcome == AttemptOutcome::Cancelled;
                let stopped =
                    told_to_stop || matches!(self.stop, Some(Stop::Cancelled | Stop::TimedOut));
                let will_retry = error.retryable && tries < policy.attempts;
                if stopped || (will_retry && self.stop == Some(Stop::Drain)) {
                    let stop = self.stop.unwrap_or(Stop::Cancelled);
                    self.conclude(index, stop.step_state(), Some(stop.reason().into()));
                } else if will_retry {
                    let wait = delay_before(&policy, tries + 1);
                    record.state = StepState::Retrying;
                    record.next_attempt_at =
                        Some(now + chrono::Duration::from_std(wait).unwrap_or_default());
                    self.retry_at.push((Instant::now() + wait, index));
                    let id = record.id.clone();
                    self.event(
                        Some(index),
                        format!(
                            "attempt {attempt_number} failed, retrying in {}: {message}",
                            humantime::format_duration(round_ms(wait))
                        ),
                    );
                    tracing::info!(run = %self.run.id, step = %id, attempt = attempt_number, "step failed, will retry: {message}");
                    self.engine.emit(EngineEvent::StepRetrying {
                        step: id,
                        attempt: attempt_number,
                        wait,
                        error: message,
                    });
                } else {
                    self.conclude(index, StepState::Failed, Some(message));
                }
            }
        }
    }

    /// Puts a step in a final state and queues the steps that need it for a decision.
    fn conclude(&mut self, index: usize, state: StepState, reason: Option<String>) {
        let record = &mut self.steps[index];
        record.state = state;
        record.reason = reason.clone();
        record.ended_at = Some(Utc::now());
        record.next_attempt_at = None;
        let duration = record
            .duration_ms()
            .map(|ms| Duration::from_millis(ms.max(0) as u64));
        let id = record.id.clone();
        self.dirty.insert(index);
        let message = match &reason {
            Some(reason) => format!("{}: {reason}", state.name()),
            None => state.name().to_string(),
        };
        self.event(Some(index), message);
        match state {
            StepState::Failed => {
                tracing::error!(run = %self.run.id, step = %id, "step failed: {}", reason.as_deref().unwrap_or(""))
            }
            _ => {
                tracing::info!(run = %self.run.id, step = %id, state = state.name(), "step finished")
            }
        }
        self.engine.emit(EngineEvent::StepFinished {
            step: id,
            state,
            duration,
            reason,
        });
        for down in self.plan.downstream(index) {
            self.candidates.insert((self.rank[down], down));
        }
    }

    /// Stops the run: nothing new starts; running steps are told to stop, except when
    /// draining, where they may finish (the caller cancels them after a grace period).
    fn stop_run(&mut self, stop: Stop) {
        self.stop = Some(stop);
        tracing::warn!(run = %self.run.id, "stopping the run: {}", stop.reason());
        if stop != Stop::Drain {
            for token in self.attempt_tokens.values() {
                token.cancel();
            }
        }
        let waiting: Vec<usize> = self
            .ready
            .drain(..)
            .chain(self.retry_at.drain(..).map(|(_, i)| i))
            .collect();
        for index in waiting {
            self.conclude(index, stop.step_state(), Some(stop.reason().into()));
        }
    }

    fn finish(mut self) -> Result<RunRecord, EngineError> {
        // Whatever never got to run in a stopped run is cancelled (or interrupted, when
        // draining), so `resume` picks it up.
        let stop = self.stop.unwrap_or(Stop::Cancelled);
        for index in 0..self.steps.len() {
            if !self.steps[index].state.is_terminal() {
                self.steps[index].state = stop.step_state();
                self.steps[index].reason = Some(stop.reason().into());
                self.dirty.insert(index);
            }
        }
        // A drain that came when every step had finished anyway leaves the run as it was.
        let interrupted = self.steps.iter().any(|s| s.state == StepState::Interrupted);
        if self.stop == Some(Stop::Drain) && !interrupted {
            self.stop = None;
        }
        let failed: Vec<&str> = self
            .steps
            .iter()
            .filter(|s| s.state == StepState::Failed)
            .map(|s| s.id.as_str())
            .collect();
        let (state, error) = match self.stop {
            Some(Stop::Drain) => (
                RunState::Interrupted,
                Some(
                    "segflow shut down while the run was in progress; it resumes on the next start"
                        .to_string(),
                ),
            ),
            Some(Stop::Cancelled) => (RunState::Cancelled, Some("cancelled".to_string())),
            Some(Stop::TimedOut) => (
                RunState::Failed,
                Some(format!(
                    "the run timed out after {}",
                    self.pipeline
                        .timeout
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                )),
            ),
            None if !failed.is_empty() => (
                RunState::Failed,
                Some(format!("failed steps: {}", failed.join(", "))),
            ),
            None if self.steps.iter().any(|s| s.state.is_failure()) => (
                RunState::Failed,
                Some("steps did not run because others failed".into()),
            ),
            None => (RunState::Succeeded, None),
        };
        self.run.state = state;
        self.run.error = error.clone();
        self.run.ended_at = Some(Utc::now());
        self.event(None, format!("run {}", state.name()));
        self.commit_with_run()?;
        tracing::info!(run = %self.run.id, state = state.name(), "run finished");
        self.engine.emit(EngineEvent::RunFinished {
            run_id: self.run.id.clone(),
            state,
            error,
        });
        Ok(self.run)
    }

    fn event(&mut self, step: Option<usize>, message: String) {
        self.events.push(Event {
            at: Utc::now(),
            step: step.map(|i| self.steps[i].id.clone()),
            message,
        });
    }

    /// Writes the changed steps and new events, flushed, in one go.
    fn commit(&mut self) -> Result<(), EngineError> {
        if self.dirty.is_empty() && self.events.is_empty() {
            return Ok(());
        }
        let dirty: Vec<&StepRecord> = self.dirty.iter().map(|&i| &self.steps[i]).collect();
        self.engine
            .store
            .commit(&self.run.id, None, &dirty, &self.events)?;
        self.dirty.clear();
        self.events.clear();
        Ok(())
    }

    /// Like `commit`, with the run record itself (its state changed).
    fn commit_with_run(&mut self) -> Result<(), EngineError> {
        let dirty: Vec<&StepRecord> = self.dirty.iter().map(|&i| &self.steps[i]).collect();
        self.engine
            .store
            .commit(&self.run.id, Some(&self.run), &dirty, &self.events)?;
        self.dirty.clear();
        self.events.clear();
        Ok(())
    }
}

/// One attempt of a step, bounded by its timeout and stoppable by its token.
async fn run_attempt(
    kind: &dyn StepKind,
    with: Value,
    ctx: &StepContext,
    timeout: Option<Duration>,
) -> AttemptResult {
    let future = kind.run(with, ctx);
    tokio::pin!(future);
    // Biased: a step that fails because it was told to stop counts as stopped, not failed.
    let (result, outcome) = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => {
            match tokio::time::timeout(STOP_GRACE, &mut future).await {
                Ok(Ok(output)) => (Ok(output), AttemptOutcome::Succeeded),
                _ => (Err(StepError::permanent("cancelled")), AttemptOutcome::Cancelled),
            }
        }
        result = &mut future => {
            let outcome = if result.is_ok() { AttemptOutcome::Succeeded } else { AttemptOutcome::Failed };
            (result, outcome)
        }
        _ = sleep_opt(timeout) => {
            ctx.cancel.cancel();
            let _ = tokio::time::timeout(STOP_GRACE, &mut future).await;
            let limit = humantime::format_duration(timeout.unwrap_or_default());
            (Err(StepError::new(format!("timed out after {limit}"))), AttemptOutcome::TimedOut)
        }
    };
    AttemptResult {
        result,
        outcome,
        datasets: ctx.datasets(),
        report: ctx.report(),
    }
}

async fn sleep_opt(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Jinja truthiness, for `when`.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
