//! What the engine tells whoever watches a run (the terminal progress, the server).

use std::time::Duration;

use crate::store::{RunState, StepState};

#[derive(Debug, Clone)]
pub enum EngineEvent {
    RunStarted {
        run_id: String,
        pipeline: String,
        steps: Vec<String>,
    },
    StepStarted {
        step: String,
        attempt: u32,
    },
    StepRetrying {
        step: String,
        attempt: u32,
        wait: Duration,
        error: String,
    },
    StepFinished {
        step: String,
        state: StepState,
        duration: Option<Duration>,
        reason: Option<String>,
    },
    RunFinished {
        run_id: String,
        state: RunState,
        error: Option<String>,
    },
}

pub type EventSink = tokio::sync::mpsc::UnboundedSender<EngineEvent>;
