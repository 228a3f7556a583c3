//! Running a command in the container (`POST /v1/exec`) and reading services'
//! logs (`GET /v1/logs`).
//!
//! Pebble starts an exec'd command only once the client has connected the task's
//! `stdio` (and, with split stderr, `stderr`) WebSockets, within five seconds. Output
//! arrives as binary messages; a text message `{"command":"end"}` ends a stream, and
//! the client sends the same on `stdio` to close the command's standard input. The
//! exit code is the `exit-code` of the task's data once the change is ready.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::{encode, Client};
use crate::error::{Error, Result};
use crate::types::Status;

/// Output beyond this is dropped (the command keeps running): a check's output is
/// small, and a hostile or runaway command must not exhaust the charm's memory.
const MAX_OUTPUT: usize = 1 << 20;
const END: &str = r#"{"command":"end"}"#;
/// Streamed input goes out in messages of at most this many bytes.
const CHUNK: usize = 64 * 1024;

/// What to run, as whom, for how long.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Pebble kills the command after this long; the call gives up a little later.
    pub timeout: Duration,
    /// Standard input (closed after it is sent).
    pub stdin: Vec<u8>,
}

/// A finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A finished command whose output was streamed ([`Client::exec_streaming`]).
#[derive(Debug)]
pub struct StreamedOutput {
    pub exit_code: i64,
    pub stderr: Vec<u8>,
    /// Reading the input failed: the command's input was closed early.
    pub stdin_error: Option<std::io::Error>,
    /// Writing the output failed: the rest of it was dropped.
    pub stdout_error: Option<std::io::Error>,
}

/// A started exec: its change, task, deadline and connected streams.
struct Started {
    change: String,
    task: String,
    deadline: Instant,
    stdio: WebSocket<UnixStream>,
    stderr: WebSocket<UnixStream>,
}

/// One line of a service's log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogEntry {
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub message: String,
}

impl Client {
    /// Runs a command and waits for it: its exit code and output. A command that
    /// cannot be started (missing executable, unknown user) is [`Error::Change`].
    pub fn exec(&self, opts: &ExecOptions) -> Result<ExecOutput> {
        let started = self.start_exec(opts)?;
        let Started {
            change,
            task,
            deadline,
            mut stdio,
            stderr,
        } = started;
        let stderr = thread::spawn(move || read_stream(stderr));
        let what = || format!("exec {:?}: stdio", opts.command.first());
        if !opts.stdin.is_empty() {
            stdio
                .send(Message::binary(opts.stdin.clone()))
                .map_err(|e| self.ws_error(&what(), e))?;
        }
        stdio
            .send(Message::text(END))
            .map_err(|e| self.ws_error(&what(), e))?;
        let stdout = read_stream(stdio).map_err(|e| self.ws_error(&what(), e))?;
        let stderr = match stderr.join() {
            Ok(r) => r.map_err(|e| self.ws_error("exec: stderr", e))?,
            Err(_) => return Err(self.protocol("exec: the stderr reader panicked")),
        };
        let exit_code = self.exit_code(&change, &task, deadline)?;
        Ok(ExecOutput {
            exit_code,
            stdout,
            stderr,
        })
    }

    /// Runs a command with streamed standard input and output, for data too large to
    /// hold in memory: `stdin` is read in chunks and sent until its end (then the
    /// command's standard input is closed), while every chunk of the command's
    /// standard output is written to `stdout` as it arrives. `opts.stdin` is sent
    /// first, before `stdin` (e.g. a passphrase line the command reads first).
    ///
    /// Failures of the two streams do not abandon the command: a failing `stdin`
    /// closes the command's input early, a failing `stdout` makes the rest of the
    /// output be read and dropped; both are returned in [`StreamedOutput`] next to
    /// the exit code, so the caller reports the first cause. Standard error is
    /// collected (at most 1 MiB).
    pub fn exec_streaming(
        &self,
        opts: &ExecOptions,
        stdin: &mut dyn Read,
        stdout: &mut (dyn Write + Send),
    ) -> Result<StreamedOutput> {
        let Started {
            change,
            task,
            deadline,
            mut stdio,
            stderr,
        } = self.start_exec(opts)?;
        let what = || format!("exec {:?}: stdio", opts.command.first());
        // One connection carries both directions: a second handle on the same socket
        // reads the output while this thread writes the input, so a command that
        // writes while it reads never waits on us.
        let reader_stream = stdio.get_ref().try_clone().map_err(|source| Error::Io {
            socket: self.socket.clone(),
            request: what(),
            source,
        })?;
        let reader = WebSocket::from_raw_socket(reader_stream, Role::Client, None);
        let stderr = thread::spawn(move || read_stream(stderr));
        // Pebble keeps reading (and dropping) input after the command ended: stop
        // sending once its output has ended.
        let ended = AtomicBool::new(false);
        let (sent, received) = thread::scope(|scope| {
            let out = scope.spawn(|| copy_out(reader, stdout, &ended));
            let sent = send_input(&mut stdio, &opts.stdin, stdin, &ended);
            let received = match out.join() {
                Ok(r) => r,
                Err(_) => Err(tungstenite::Error::ConnectionClosed),
            };
            (sent, received)
        });
        let (stdin_error, ws_in) = match sent {
            Ok(e) => (e, None),
            Err(e) => (None, Some(e)),
        };
        let stdout_error = received.map_err(|e| self.ws_error(&what(), e))?;
        let stderr = match stderr.join() {
            Ok(r) => r.map_err(|e| self.ws_error("exec: stderr", e))?,
            Err(_) => return Err(self.protocol("exec: the stderr reader panicked")),
        };
        let exit_code = self.exit_code(&change, &task, deadline)?;
        if let (Some(e), 0) = (ws_in, exit_code) {
            // The input could not all be sent, yet the command succeeded.
            return Err(self.ws_error(&what(), e));
        }
        Ok(StreamedOutput {
            exit_code,
            stderr,
            stdin_error,
            stdout_error,
        })
    }

    /// Starts a command: the exec change, its task and both connected WebSockets.
    fn start_exec(&self, opts: &ExecOptions) -> Result<Started> {
        let mut body = json!({
            "command": opts.command,
            "environment": opts.environment,
            "timeout": format!("{}s", opts.timeout.as_secs().max(1)),
            "split-stderr": true,
        });
        for (key, value) in [
            ("working-dir", &opts.working_dir),
            ("user", &opts.user),
            ("group", &opts.group),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        let (change, result) = self.post_async_full("/v1/exec", &body)?;
        let task = result
            .as_ref()
            .and_then(|r| r.get("task-id"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.protocol("POST /v1/exec: no task-id in the reply"))?
            .to_string();
        let deadline = Instant::now() + opts.timeout + Duration::from_secs(5);
        // Pebble starts the command once both are connected: nothing is on the wire
        // before the second one is.
        let stdio = self.task_websocket(&task, "stdio", deadline)?;
        let stderr = self.task_websocket(&task, "stderr", deadline)?;
        Ok(Started {
            change,
            task,
            deadline,
            stdio,
            stderr,
        })
    }

    /// Waits for an exec change and returns its task's exit code.
    fn exit_code(&self, change: &str, task: &str, deadline: Instant) -> Result<i64> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let change = self.wait_change(change, remaining.max(Duration::from_secs(1)))?;
        if change.status == Status::Error || change.err.is_some() {
            return Err(Error::Change {
                socket: self.socket.clone(),
                task_logs: change.failed_task_logs(),
                err: change
                    .err
                    .clone()
                    .unwrap_or_else(|| format!("change {} ended in Error", change.id)),
                id: change.id,
                kind: change.kind,
            });
        }
        change
            .tasks
            .iter()
            .find(|t| t.id == task)
            .and_then(|t| t.data.as_ref())
            .and_then(|d| d.get("exit-code"))
            .and_then(Value::as_i64)
            .ok_or_else(|| self.protocol(format!("exec change {}: no exit code", change.id)))
    }

    /// The last `n` log lines of `services` (all services when empty), oldest first.
    pub fn logs(&self, services: &[&str], n: usize) -> Result<Vec<LogEntry>> {
        let mut target = format!("/v1/logs?n={n}");
        if !services.is_empty() {
            target.push_str("&services=");
            target.push_str(&super::list(services));
        }
        let req = crate::http::Request::new("GET", target);
        let what = req.describe();
        let resp = self.send(req, self.timeout)?;
        if resp.status != 200 {
            // Errors come as the usual JSON envelope.
            self.envelope(&resp, &what)?;
            return Err(self.protocol(format!("{what}: HTTP {}", resp.status)));
        }
        // One JSON object per line.
        let mut out = vec![];
        for line in BufReader::new(resp.body.as_slice()).lines() {
            let line = line.map_err(|e| self.protocol(format!("{what}: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry: LogEntry = serde_json::from_str(&line)
                .map_err(|e| self.protocol(format!("{what}: bad log line ({e})")))?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Connects one of a task's WebSockets over the Pebble socket.
    fn task_websocket(
        &self,
        task: &str,
        id: &str,
        deadline: Instant,
    ) -> Result<WebSocket<UnixStream>> {
        let stream = UnixStream::connect(&self.socket).map_err(|source| Error::Connect {
            socket: self.socket.clone(),
            source,
        })?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let what = format!("GET /v1/tasks/{task}/websocket/{id}");
        for r in [
            stream.set_read_timeout(Some(left)),
            stream.set_write_timeout(Some(left)),
        ] {
            r.map_err(|source| Error::Io {
                socket: self.socket.clone(),
                request: what.clone(),
                source,
            })?;
        }
        let url = format!(
            "ws://localhost/v1/tasks/{}/websocket/{}",
            encode(task),
            encode(id)
        );
        match tungstenite::client::client(url, stream) {
            Ok((ws, _)) => Ok(ws),
            Err(e) => Err(self.protocol(format!("{what}: WebSocket handshake failed: {e}"))),
        }
    }

    fn ws_error(&self, what: &str, e: tungstenite::Error) -> Error {
        match e {
            tungstenite::Error::Io(source)
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Error::Timeout {
                    socket: self.socket.clone(),
                    request: what.to_string(),
                    timeout: Duration::ZERO,
                }
            }
            tungstenite::Error::Io(source) => Error::Io {
                socket: self.socket.clone(),
                request: what.to_string(),
                source,
            },
            other => self.protocol(format!("{what}: {other}")),
        }
    }
}

/// Sends `first`, then `input` in chunks, then the end of input. An error reading
/// `input` ends the input early and is returned as `Ok(Some(_))`; an error sending
/// is `Err`.
fn send_input(
    ws: &mut WebSocket<UnixStream>,
    first: &[u8],
    input: &mut dyn Read,
    ended: &AtomicBool,
) -> tungstenite::Result<Option<std::io::Error>> {
    if !first.is_empty() {
        ws.send(Message::binary(first.to_vec()))?;
    }
    let mut buf = vec![0u8; CHUNK];
    let mut failed = None;
    while !ended.load(Ordering::Relaxed) {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => ws.send(Message::binary(buf[..n].to_vec()))?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    ws.send(Message::text(END))?;
    Ok(failed)
}

/// Writes every binary message to `out` until the end of the stream. After `out`
/// fails once, the rest is read and dropped; that error is returned as `Ok(Some(_))`.
fn copy_out(
    mut ws: WebSocket<UnixStream>,
    out: &mut (dyn Write + Send),
    ended: &AtomicBool,
) -> tungstenite::Result<Option<std::io::Error>> {
    let mut failed: Option<std::io::Error> = None;
    let _end = SetOnDrop(ended);
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => {
                if failed.is_none() {
                    if let Err(e) = out.write_all(&data) {
                        failed = Some(e);
                    }
                }
            }
            Ok(Message::Text(t)) if t.as_str() == END => break,
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(e) => return Err(e),
        }
    }
    // The command's output has ended, so has the command: a send still under way
    // would wait for a reader that is gone (Pebble stops reading the input then).
    let _ = ws.get_ref().shutdown(std::net::Shutdown::Write);
    if failed.is_none() {
        if let Err(e) = out.flush() {
            failed = Some(e);
        }
    }
    Ok(failed)
}

/// Sets the flag when dropped (whichever way the reader ends).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Reads binary messages until the `end` command or the end of the connection.
fn read_stream<S: Read + Write>(mut ws: WebSocket<S>) -> tungstenite::Result<Vec<u8>> {
    let mut out = vec![];
    loop {
        match ws.read() {
            Ok(Message::Binary(data)) => {
                let room = MAX_OUTPUT.saturating_sub(out.len());
                out.extend_from_slice(&data[..data.len().min(room)]);
            }
            Ok(Message::Text(t)) if t.as_str() == END => break,
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(e) => return Err(e),
        }
    }
    let _ = ws.close(None);
    // Let the close handshake go out; errors here change nothing.
    let _ = ws.flush();
    Ok(out)
}
