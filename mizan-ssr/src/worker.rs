//! One worker process: spawn, ready handshake, one request at a time, stop.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lines::{Line, LineReader};
use crate::pool::{stopped, Config, Stop};
use crate::{Html, SsrError};

/// How long a worker that closed its pipes gets to exit by itself before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// Lines of the worker's stderr kept for the message of a startup error.
const STDERR_TAIL_LINES: usize = 10;
/// Bound of one stderr line, and of the part of it that is kept for a startup error.
const STDERR_LINE_BYTES: usize = 64 * 1024;
const STDERR_TAIL_LINE_BYTES: usize = 500;
/// Bound of a stray stdout line in the log.
const LOGGED_LINE_BYTES: usize = 200;

/// Counters shared by every worker of a pool.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) spawned: AtomicU64,
    pub(crate) discarded: AtomicU64,
}

/// Why a request got no usable reply.
enum Fault {
    /// Stdout ended or stdin refused the request: the process is gone.
    Gone,
    /// A line longer than the bound.
    TooLong,
    /// A reply with this request's id that does not fit the protocol.
    Malformed(String),
}

#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<RenderParams<'a>>,
}

#[derive(Serialize)]
struct RenderParams<'a> {
    component: &'a str,
    props: &'a RawValue,
}

#[derive(Deserialize)]
struct Reply {
    id: u64,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    pong: Option<bool>,
    #[serde(default)]
    ready: Option<bool>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

/// A running worker process.
pub(crate) struct Worker {
    child: Child,
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
    stdout: LineReader<BufReader<ChildStdout>>,
    stderr_task: Option<JoinHandle<()>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    counters: Arc<Counters>,
    max_line_bytes: usize,
    next_id: u64,
    /// Whether it answered a render (with HTML or a render error) or a ping: a worker that
    /// fails after that is not in a crash loop.
    pub(crate) proved_healthy: bool,
}

impl Worker {
    /// Spawns the process and waits for its ready line.
    pub(crate) async fn start(
        config: &Config,
        counters: &Arc<Counters>,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<Self, SsrError> {
        let mut command = Command::new(&config.program);
        command
            .args(&config.args)
            .envs(config.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &config.current_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|source| SsrError::Startup {
            message: format!("cannot start `{}`", config.program.to_string_lossy()),
            source: Some(source),
        })?;
        counters.spawned.fetch_add(1, Ordering::Relaxed);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SsrError::Startup {
                message: "the worker's standard streams are not piped".to_owned(),
                source: None,
            });
        };
        let pid = child.id();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = tokio::spawn(forward_stderr(stderr, pid, stderr_tail.clone()));
        let mut worker = Self {
            child,
            pid,
            stdin: Some(stdin),
            stdout: LineReader::new(
                BufReader::with_capacity(64 * 1024, stdout),
                config.max_line_bytes,
            ),
            stderr_task: Some(stderr_task),
            stderr_tail,
            counters: counters.clone(),
            max_line_bytes: config.max_line_bytes,
            next_id: 1,
            proved_healthy: false,
        };
        let handshake = tokio::select! {
            biased;
            _ = stopped(stop, Stop::Graceful) => {
                worker.kill().await;
                return Err(SsrError::Closed);
            }
            handshake = tokio::time::timeout(config.ready_timeout, worker.await_ready()) => handshake,
        };
        let message = match handshake {
            Ok(Ok(())) => return Ok(worker),
            Ok(Err(Fault::TooLong)) => {
                worker.kill().await;
                format!(
                    "the worker wrote a line longer than {} bytes before it was ready",
                    config.max_line_bytes
                )
            }
            Ok(Err(_)) => match worker.reap().await {
                Some(status) => format!("the worker exited before it was ready ({status})"),
                None => "the worker closed its stdout before it was ready".to_owned(),
            },
            Err(_) => {
                worker.kill().await;
                format!(
                    "the worker sent no ready line (`{{\"id\":0,\"ready\":true}}`) within {:?}",
                    config.ready_timeout
                )
            }
        };
        Err(SsrError::Startup {
            message: message + &worker.stderr_tail().await,
            source: None,
        })
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Renders one component; `Ok` or [`SsrError::Render`] leave the worker in service, any
    /// other error means it must be replaced.
    pub(crate) async fn render(
        &mut self,
        component: &str,
        props: &RawValue,
        timeout: Duration,
    ) -> Result<Html, SsrError> {
        let id = self.next_id();
        let request = Request {
            id,
            method: "render",
            params: Some(RenderParams { component, props }),
        };
        let outcome = tokio::time::timeout(timeout, self.exchange(&request)).await;
        match outcome {
            Err(_) => Err(SsrError::Timeout(timeout)),
            Ok(Ok(reply)) => {
                if let Some(html) = reply.html {
                    self.proved_healthy = true;
                    Ok(Html::from_trusted(html))
                } else if let Some(error) = reply.error {
                    self.proved_healthy = true;
                    Err(SsrError::Render(match error {
                        serde_json::Value::String(message) => message,
                        other => other.to_string(),
                    }))
                } else {
                    Err(SsrError::Protocol(format!(
                        "the reply to render {id} has neither `html` nor `error`"
                    )))
                }
            }
            Ok(Err(Fault::Gone)) => Err(SsrError::Crashed {
                status: self.reap().await,
            }),
            Ok(Err(Fault::TooLong)) => Err(SsrError::Protocol(format!(
                "a reply line is longer than {} bytes",
                self.max_line_bytes
            ))),
            Ok(Err(Fault::Malformed(message))) => Err(SsrError::Protocol(message)),
        }
    }

    /// Sends a ping and waits for its pong; an error says why the worker must be replaced.
    pub(crate) async fn ping(&mut self, timeout: Duration) -> Result<(), String> {
        let id = self.next_id();
        let request = Request {
            id,
            method: "ping",
            params: None,
        };
        match tokio::time::timeout(timeout, self.exchange(&request)).await {
            Err(_) => Err(format!("no pong within {timeout:?}")),
            Ok(Ok(reply)) if reply.pong == Some(true) => {
                self.proved_healthy = true;
                Ok(())
            }
            Ok(Ok(_)) => Err("the reply to a ping is not a pong".to_owned()),
            Ok(Err(Fault::Gone)) => Err("the worker exited".to_owned()),
            Ok(Err(Fault::TooLong)) => Err("a line over the bound".to_owned()),
            Ok(Err(Fault::Malformed(message))) => Err(message),
        }
    }

    /// Reads one line while no request is in flight: `Ok` for a stray line (logged and
    /// discarded), `Err` with the reason when the worker must be replaced.
    pub(crate) async fn idle_line(&mut self) -> Result<(), String> {
        match self.stdout.next().await {
            Ok(Line::Complete(line)) => {
                self.discard(&line);
                Ok(())
            }
            Ok(Line::TooLong) => Err(format!(
                "a line longer than {} bytes on stdout",
                self.max_line_bytes
            )),
            Ok(Line::Eof) | Err(_) => Err("the worker exited while idle".to_owned()),
        }
    }

    /// Closes stdin (the worker exits when it ends), waits `grace`, then kills.
    pub(crate) async fn shut_down(&mut self, grace: Duration) {
        self.stdin = None;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
        self.pid = None;
    }

    /// Kills the process (if it still runs) and collects its exit status.
    pub(crate) async fn kill(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        self.pid = None;
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }

    /// Collects the exit status of a worker that closed its pipes, killing it if it has not
    /// exited within a short grace.
    async fn reap(&mut self) -> Option<ExitStatus> {
        self.stdin = None;
        match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.pid = None;
                Some(status)
            }
            _ => self.kill().await,
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    async fn exchange(&mut self, request: &Request<'_>) -> Result<Reply, Fault> {
        let mut line = serde_json::to_vec(request).map_err(|e| Fault::Malformed(e.to_string()))?;
        line.push(b'\n');
        let stdin = self.stdin.as_mut().ok_or(Fault::Gone)?;
        stdin.write_all(&line).await.map_err(|_| Fault::Gone)?;
        stdin.flush().await.map_err(|_| Fault::Gone)?;
        self.read_reply(request.id).await
    }

    async fn await_ready(&mut self) -> Result<(), Fault> {
        self.read_reply(0)
            .await
            .and_then(|reply| match reply.ready {
                Some(true) => Ok(()),
                _ => Err(Fault::Malformed(
                    "the first reply is not `ready`".to_owned(),
                )),
            })
    }

    /// Reads lines until the reply with this id; every other line is discarded.
    async fn read_reply(&mut self, id: u64) -> Result<Reply, Fault> {
        loop {
            match self.stdout.next().await {
                Ok(Line::Complete(line)) => match parse_reply(&line, id) {
                    Some(reply) => return reply,
                    None => self.discard(&line),
                },
                Ok(Line::TooLong) => return Err(Fault::TooLong),
                Ok(Line::Eof) | Err(_) => return Err(Fault::Gone),
            }
        }
    }

    fn discard(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.counters.discarded.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "mizan_ssr::worker",
            pid = self.pid,
            line = %String::from_utf8_lossy(&line[..line.len().min(LOGGED_LINE_BYTES)]),
            "discarded a stdout line that is not the awaited reply"
        );
    }

    /// The last lines of stderr, once the process has closed it (waits briefly).
    async fn stderr_tail(&mut self) -> String {
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(EXIT_GRACE, task).await;
        }
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = tail.into();
            format!("; its stderr ended with: {}", lines.join(" | "))
        }
    }
}

/// `Some` when the line is the reply to `id` (well-formed or not), `None` for any other line.
///
/// A reply written after stray output that did not end its line (`progress...{"id":3,...}`) is
/// recovered: the line is tried again from each later `{"id":`, which can only start an object
/// (inside a JSON string the quotes would be escaped).
fn parse_reply(line: &[u8], id: u64) -> Option<Result<Reply, Fault>> {
    match serde_json::from_slice::<Reply>(line) {
        Ok(reply) if reply.id == id => return Some(Ok(reply)),
        Ok(_) => return None,
        Err(err) => {
            if let Ok(other) = serde_json::from_slice::<IdOnly>(line) {
                return (other.id == id).then(|| {
                    Err(Fault::Malformed(format!(
                        "the reply to request {id} is malformed: {err}"
                    )))
                });
            }
        }
    }
    memchr::memmem::find_iter(line, br#"{"id":"#)
        .filter(|&at| at > 0)
        .find_map(|at| match serde_json::from_slice::<Reply>(&line[at..]) {
            Ok(reply) if reply.id == id => Some(Ok(reply)),
            _ => None,
        })
}

/// Forwards the worker's stderr (its console output) to `tracing`, line by line, and keeps
/// the last lines for startup errors.
async fn forward_stderr(stderr: ChildStderr, pid: Option<u32>, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = LineReader::new(BufReader::new(stderr), STDERR_LINE_BYTES);
    loop {
        let text = match lines.next().await {
            Ok(Line::Complete(line)) => String::from_utf8_lossy(&line).into_owned(),
            Ok(Line::TooLong) => format!("(a line longer than {STDERR_LINE_BYTES} bytes)"),
            Ok(Line::Eof) | Err(_) => return,
        };
        tracing::info!(target: "mizan_ssr::worker", pid, "{text}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            let mut end = text.len().min(STDERR_TAIL_LINE_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            tail.push_back(text[..end].to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_awaited_id_is_a_reply() {
        let mine = parse_reply(br#"{"id":3,"html":"<p>x</p>"}"#, 3);
        assert!(matches!(mine, Some(Ok(Reply { html: Some(h), .. })) if h == "<p>x</p>"));
        for stray in [
            &br#"{"id":2,"html":"late"}"#[..],
            b"hello from console.log",
            b"{\"id\":",
            b"[1,2,3]",
            br#"{"id":"3","html":"x"}"#,
            br#"{"html":"no id"}"#,
            br#"progress {"id":2,"html":"another id"}"#,
            br#"{"id":{"id":3,"html":"nested"}}"#,
        ] {
            assert!(
                parse_reply(stray, 3).is_none(),
                "{}",
                String::from_utf8_lossy(stray)
            );
        }
        let broken = parse_reply(br#"{"id":3,"html":42}"#, 3);
        assert!(matches!(broken, Some(Err(Fault::Malformed(_)))));
    }

    #[test]
    fn a_reply_after_an_unended_stray_line_is_recovered() {
        for line in [
            &br#"loading...{"id":3,"html":"<p>x</p>"}"#[..],
            br#"{"id":{"id":3,"html":"<p>x</p>"}"#,
            br#"{"id":2,"html":"cut{"id":3,"html":"<p>x</p>"}"#,
        ] {
            let reply = parse_reply(line, 3);
            assert!(
                matches!(&reply, Some(Ok(Reply { html: Some(h), .. })) if h == "<p>x</p>"),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn requests_are_one_line_of_json() {
        let props = RawValue::from_string(r#"{"text":"a\nb\u2028"}"#.to_owned()).unwrap();
        let request = Request {
            id: 7,
            method: "render",
            params: Some(RenderParams {
                component: "Card",
                props: &props,
            }),
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"id":7,"method":"render","params":{"component":"Card","props":{"text":"a\nb\u2028"}}}"#
        );
        let ping = Request {
            id: 8,
            method: "ping",
            params: None,
        };
        assert_eq!(
            serde_json::to_string(&ping).unwrap(),
            r#"{"id":8,"method":"ping"}"#
        );
    }
}
