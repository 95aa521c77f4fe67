//! `segflow serve` in a test: the real binary on 127.0.0.1:0, and a small blocking HTTP/1.1
//! client for its API (requests go to loopback only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Project;

/// A running `segflow serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Sent as `Authorization: Bearer …` with every request when set.
    pub token: Option<String>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), HTTP {}:\n{}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "HTTP {}: {}", self.status, self.body);
        self
    }

    /// Asserts an API error: the status and a JSON body with `error` and `hint`.
    #[track_caller]
    pub fn expect_error(self, status: u16) -> Value {
        let answer = self.expect(status);
        let body = answer.json();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        assert!(
            body["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{body}"
        );
        body
    }
}

impl Project {
    /// Starts `segflow serve --pipelines pipelines --listen 127.0.0.1:0 ARGS…` (with `--grace 5s`
    /// unless ARGS give one) with `env`, and waits for the address it prints.
    pub fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec![
            "serve",
            "--pipelines",
            "pipelines",
            "--listen",
            "127.0.0.1:0",
        ];
        if !args.contains(&"--grace") {
            all.extend(["--grace", "5s"]);
        }
        all.extend_from_slice(args);
        let mut command = self.command(&all);
        command.env_remove("SEGFLOW_API_TOKEN");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("segflow serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr");
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split_once(" on http://")
                    .filter(|_| line.starts_with("segflow is serving"))
                    .and_then(|(_, addr)| addr.trim().parse::<SocketAddr>().ok())
                {
                    let _ = addr_tx.send(addr);
                }
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "segflow serve did not say where it listens:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Server {
            child,
            addr,
            stderr,
            token: None,
        }
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to a minute) until the server has printed `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "`{needle}` never came in the log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit (status 0); returns all the server printed.
    #[track_caller]
    pub fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                let log = self.stderr();
                assert_eq!(status.code(), Some(0), "serve did not exit cleanly\n{log}");
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Answer {
        self.request("POST", path, &[], body)
    }

    /// One request on its own connection. `headers` replace the default ones of the same name.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut stream = TcpStream::connect(self.addr).expect("connect to segflow serve");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut all: Vec<(String, String)> = vec![
            ("Host".into(), self.addr.to_string()),
            ("Connection".into(), "close".into()),
        ];
        if let Some(token) = &self.token {
            all.push(("Authorization".into(), format!("Bearer {token}")));
        }
        if let Some(body) = body {
            all.push(("Content-Type".into(), "application/json".into()));
            all.push(("Content-Length".into(), body.len().to_string()));
        } else if method == "POST" {
            all.push(("Content-Length".into(), "0".into()));
        }
        for (name, value) in headers {
            all.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            all.push((name.to_string(), value.to_string()));
        }
        let mut text = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &all {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body.unwrap_or_default());
        stream.write_all(text.as_bytes()).expect("send the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        parse_answer(&raw)
    }

    /// Polls a run until it has finished, and returns it.
    pub fn wait_for_run(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let run = self.get(&format!("/api/runs/{id}")).expect(200).json();
            let state = run["state"].as_str().unwrap_or_default().to_string();
            if !matches!(state.as_str(), "queued" | "running") {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} is still {state} after {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls until a run is in `state`.
    pub fn wait_for_state(&self, id: &str, state: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let run = self.get(&format!("/api/runs/{id}")).expect(200).json();
            if run["state"] == state {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never became {state}: {run}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already stopped (and reaped): its pid may belong to another process by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
