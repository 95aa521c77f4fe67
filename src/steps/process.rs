//! Running an external program for a step, shared by `shell` and plugin kinds.
//!
//! The program runs in its own process group with `PR_SET_PDEATHSIG`, so nothing it starts
//! outlives the step: on cancellation (Ctrl-C, the step's timeout) the group gets SIGTERM, then
//! SIGKILL after a grace period; whatever is left when the program exits is killed too. stderr
//! goes line by line into the step's log, and its last lines are kept for the error message.

use std::collections::{BTreeSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::StepContext;
use crate::store::LogStream;

/// How many stderr lines a failure message quotes.
pub const STDERR_TAIL: usize = 20;
/// How long a program gets to exit after SIGTERM, unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// What happens to the program's stdout.
#[derive(Debug, Clone, Copy)]
pub enum Stdout {
    /// Each line goes to the step log.
    Log,
    /// Kept and returned, up to this many bytes (more fails the step).
    Capture { limit: usize },
}

/// How to run a program, besides the `Command` itself (program, arguments, environment, folder).
#[derive(Debug, Clone)]
pub struct Options {
    /// Written to the program's stdin, which is then closed; without it stdin is empty.
    pub stdin: Option<Vec<u8>>,
    pub stdout: Stdout,
    pub kill_grace: Duration,
}

/// A program that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The captured stdout (empty with `Stdout::Log`).
    pub stdout: Vec<u8>,
    /// Whether stdout went past the capture limit (what is kept is cut there).
    pub stdout_overflow: bool,
    /// The last lines of stderr, secrets masked.
    pub stderr_tail: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start the program: {0}")]
    Start(std::io::Error),
    #[error("cannot wait for the program: {0}")]
    Wait(std::io::Error),
    #[error("cancelled: the program was stopped")]
    Cancelled,
}

/// Keeps segflow's secrets (`SEGFLOW_SECRET_*`, the secrets file's path) out of a program's
/// environment: a step gets a secret only when its config names it.
pub fn remove_secret_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with(crate::secrets::ENV_PREFIX) || name == "SEGFLOW_SECRETS_FILE" {
            command.env_remove(name.as_ref());
        }
    }
}

/// Runs `command` to its end, or until the step is cancelled.
pub async fn run(
    mut command: Command,
    options: Options,
    ctx: &StepContext,
) -> Result<Finished, ProcessError> {
    remove_secret_env(&mut command);
    command
        .stdin(if options.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // If segflow itself dies (kill -9), the program dies with it instead of living on unseen.
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
        });
    }
    let mut child = command.spawn().map_err(ProcessError::Start)?;
    let group = ProcessGroup::new(child.id().map(|id| Pid::from_raw(id as i32)));
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    ctx.info(&format!(
        "started `{program}` (pid {})",
        child.id().unwrap_or(0)
    ));

    let tail = Mutex::new(VecDeque::with_capacity(STDERR_TAIL));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let feed = async {
        if let (Some(mut pipe), Some(bytes)) = (stdin, options.stdin.as_deref()) {
            // A program that exits without reading its input closes the pipe: its exit status
            // says what went wrong, not the broken pipe.
            let _ = pipe.write_all(bytes).await;
            let _ = pipe.shutdown().await;
        }
    };
    let wait = async {
        let result = tokio::select! {
            status = child.wait() => Some(status),
            _ = ctx.cancel.cancelled() => {
                group.signal(Signal::SIGTERM);
                if tokio::time::timeout(options.kill_grace, child.wait()).await.is_err() {
                    group.signal(Signal::SIGKILL);
                    let _ = child.wait().await;
                }
                None
            }
        };
        // Whatever the program left running in its group goes too, so its pipes close.
        group.signal(Signal::SIGKILL);
        result
    };
    let out = async {
        match options.stdout {
            Stdout::Log => {
                pump(stdout, LogStream::Stdout, ctx, None).await;
                (Vec::new(), false)
            }
            Stdout::Capture { limit } => capture(stdout, limit).await,
        }
    };
    let (_, (captured, overflow), _, status) = tokio::join!(
        feed,
        out,
        pump(stderr, LogStream::Stderr, ctx, Some(&tail)),
        wait
    );

    let status = status.ok_or(ProcessError::Cancelled)?;
    let status = status.map_err(ProcessError::Wait)?;
    let tail = tail.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Finished {
        status,
        stdout: captured,
        stdout_overflow: overflow,
        stderr_tail: tail.into_iter().collect(),
    })
}

impl Finished {
    /// "exited with code 2" / "was killed by signal SIGKILL".
    pub fn how_it_ended(&self) -> String {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!(
                "was killed by signal {}",
                Signal::try_from(signal).map_or(signal.to_string(), |s| s.to_string())
            ),
            _ => "failed".to_string(),
        }
    }

    /// `what` and how it ended, with the last lines of stderr when there are any.
    pub fn failure_message(&self, what: &str) -> String {
        let mut message = format!("{what} {}", self.how_it_ended());
        if !self.stderr_tail.is_empty() {
            message.push_str("; last lines of stderr:\n");
            message.push_str(&self.stderr_tail.join("\n"));
        }
        message
    }
}

/// The process groups of the programs running now, so that segflow can kill them all when it
/// must exit at once (a second Ctrl-C) without waiting for each step to stop.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Kills every program segflow started that is still running, with all they started.
pub fn kill_all_programs() {
    let groups = LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    for &group in groups.iter() {
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
}

/// Signals a whole process group; a no-op once the group is gone.
struct ProcessGroup(Option<Pid>);

impl ProcessGroup {
    fn new(pid: Option<Pid>) -> Self {
        if let Some(pid) = pid {
            LIVE_GROUPS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid.as_raw());
        }
        ProcessGroup(pid)
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.0 {
            let _ = killpg(pid, signal);
        }
    }
}

impl Drop for ProcessGroup {
    /// A dropped step (timeout, engine shutdown) never leaves its programs behind.
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
        if let Some(pid) = self.0 {
            LIVE_GROUPS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid.as_raw());
        }
    }
}

/// Copies a program's output into the step log, line by line.
async fn pump(
    stream: impl AsyncRead + Unpin,
    kind: LogStream,
    ctx: &StepContext,
    tail: Option<&Mutex<VecDeque<String>>>,
) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']);
                ctx.log(kind, line);
                if let Some(tail) = tail {
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(crate::redact::apply(line).into_owned());
                }
            }
        }
    }
}

/// Reads a stream whole, keeping at most `limit` bytes; the rest is read and dropped so the
/// program never blocks on a full pipe.
async fn capture(stream: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut reader = BufReader::new(stream);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    overflow = true;
                }
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    (kept, overflow)
}
