//! Live progress of a run: spinners per step on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::EngineEvent;
use crate::store::StepState;

pub struct Progress {
    tty: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub async fn render(self, mut events: UnboundedReceiver<EngineEvent>) {
        let multi = MultiProgress::with_draw_target(if self.tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let mut bars: HashMap<String, ProgressBar> = HashMap::new();
        let spinner =
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}")
                .expect("the template is valid");
        while let Some(event) = events.recv().await {
            // With JSON logs the engine's own log events tell the same, as JSON.
            if crate::logging::is_json() {
                continue;
            }
            let line = describe(&event);
            if !self.tty {
                if let Some(line) = line {
                    eprintln!("{} {line}", chrono::Local::now().format("%H:%M:%S"));
                }
                continue;
            }
            match &event {
                EngineEvent::StepStarted { step, attempt } => {
                    let bar = bars.entry(step.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(spinner.clone());
                        bar.set_prefix(step.clone());
                        bar.enable_steady_tick(Duration::from_millis(100));
                        bar
                    });
                    bar.set_message(if *attempt > 1 {
                        format!("attempt {attempt}")
                    } else {
                        String::new()
                    });
                }
                EngineEvent::StepRetrying { step, .. } => {
                    if let (Some(bar), Some(line)) = (bars.get(step), line) {
                        bar.set_message(line);
                    }
                }
                EngineEvent::StepFinished { step, .. } => {
                    let text = line.unwrap_or_default();
                    match bars.remove(step) {
                        Some(bar) => {
                            bar.set_style(ProgressStyle::with_template("{msg}").expect("valid"));
                            bar.finish_with_message(text);
                        }
                        None => {
                            let _ = multi.println(text);
                        }
                    }
                }
                _ => {
                    if let Some(line) = line {
                        let _ = multi.println(line);
                    }
                }
            }
        }
        for bar in bars.values() {
            bar.abandon();
        }
    }
}

fn describe(event: &EngineEvent) -> Option<String> {
    Some(match event {
        EngineEvent::RunStarted {
            run_id,
            pipeline,
            steps,
        } => {
            format!("run {run_id} of {pipeline}: {} steps", steps.len())
        }
        EngineEvent::StepStarted { step, attempt } => {
            if *attempt > 1 {
                format!("▶ {step} (attempt {attempt})")
            } else {
                format!("▶ {step}")
            }
        }
        EngineEvent::StepRetrying {
            step,
            attempt,
            wait,
            error,
        } => format!(
            "↻ {step}: attempt {attempt} failed, retrying in {}: {}",
            humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)),
            first_line(error)
        ),
        EngineEvent::StepFinished {
            step,
            state,
            duration,
            reason,
        } => {
            let mark = match state {
                StepState::Succeeded => "✔",
                StepState::Skipped => "○",
                StepState::Failed | StepState::UpstreamFailed => "✘",
                _ => "■",
            };
            let took = duration
                .map(|d| {
                    format!(
                        " in {}",
                        humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
                    )
                })
                .unwrap_or_default();
            let why = reason
                .as_deref()
                .map(|r| format!(": {}", first_line(r)))
                .unwrap_or_default();
            format!("{mark} {step} {}{took}{why}", state.name())
        }
        EngineEvent::RunFinished { .. } => return None,
    })
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
