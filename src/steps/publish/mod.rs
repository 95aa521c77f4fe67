//! Publish steps: where segments leave segflow — to email platforms and webhooks, to files, and
//! as notifications about the run.

pub mod file;
mod input;
pub mod notify;
pub mod webhook;
