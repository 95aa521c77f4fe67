//! Logs through tracing-subscriber: human lines on a terminal, JSON for machines. Everything
//! written passes the redactor, so a secret never reaches a log.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::redact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the global subscriber. `verbosity` 0 shows warnings, 1 info, 2 debug;
/// `SEGFLOW_LOG` (an env-filter directive) overrides it. With `progress_shown`, the terminal
/// already tells what the engine does, so the engine's own lines are left out at verbosity 0.
pub fn init(format: LogFormat, verbosity: u8, progress_shown: bool) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let default = match verbosity {
        0 if format == LogFormat::Json => "segflow=info",
        0 if progress_shown => "segflow=warn,segflow::engine=off",
        0 => "segflow=warn",
        1 => "segflow=info",
        _ => "segflow=debug",
    };
    let filter = EnvFilter::try_from_env("SEGFLOW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether logs go out as JSON lines (`--log-format json`): then stderr carries nothing else.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A note for the person at the terminal (a hint, what happens next). With JSON logs it becomes
/// a JSON log event, so stderr stays machine-readable.
pub fn notice(text: &str) {
    if is_json() {
        tracing::warn!(target: "segflow", "{}", redact::apply(text));
    } else {
        eprintln!("{}", redact::apply(text));
    }
}

/// stderr, with secrets masked in every formatted line.
struct RedactingStderr;

struct RedactingWriter {
    buffer: Vec<u8>,
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { buffer: Vec::new() }
    }
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    /// A writer holds one event; it is masked and written whole when the event is done.
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = io::stderr().write_all(redact::apply(&text).as_bytes());
    }
}
