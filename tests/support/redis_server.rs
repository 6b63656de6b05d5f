//! A real `redis-server` for tests and benchmarks: started on a free loopback port with no
//! persistence of its own, in a private directory, and killed on drop.
//!
//! Fault tests [`stop`](RedisServer::stop) and [`restart`](RedisServer::restart) it on the same
//! port, or [`pause`](RedisServer::pause) it with `SIGSTOP` to play a hung server. Nothing is
//! mocked, and nothing ever talks to a Redis this fixture did not start.

// Each test binary that includes this file uses a different part of it.
#![allow(dead_code)]

// Also included by redis_cluster.rs: a binary with both fixtures compiles it twice, which is
// harmless (functions only, no types) and lets either fixture be included alone.
#[allow(clippy::duplicate_mod)]
#[path = "redis_process.rs"]
mod process;

use std::path::PathBuf;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process on `127.0.0.1:{port}`.
pub(crate) struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// Panics with instructions when `redis-server` is not installed.
    pub(crate) fn start() -> Self {
        let binary = process::find_binary("redis-server");
        for _ in 0..5 {
            let mut server = Self {
                binary: binary.clone(),
                port: process::free_ports(1)[0],
                dir: process::private_dir("redis"),
                child: None,
            };
            if server.spawn() {
                return server;
            }
            // Someone took the port between our probe and the server's bind: try another.
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (as a crash would: no shutdown, no save) and waits for it to exit.
    pub(crate) fn stop(&mut self) {
        process::kill(&mut self.child);
    }

    /// Starts the server again on the same port (stopping it first if it runs). It loads the
    /// snapshot of the last [`save`](Self::save), if any; otherwise it starts empty.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}:\n{}",
                self.port,
                self.log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Freezes the server with `SIGSTOP`: connections stay open, nothing is answered.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on with `SIGCONT`.
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }

    /// Writes a snapshot (`SAVE`) that the next [`restart`](Self::restart) loads.
    pub(crate) fn save(&self) {
        let reply = self.command(&["SAVE"]).expect("SAVE");
        assert_eq!(reply, "+OK", "SAVE answered {reply}");
    }

    /// Sends one command; the reply's first line (`+PONG`, `:3`), or a bulk string's contents.
    pub(crate) fn command(&self, args: &[&str]) -> std::io::Result<String> {
        process::command(self.port, args)
    }

    /// Starts the process; whether it came up and answers `PING`.
    fn spawn(&mut self) -> bool {
        let child = process::spawn_server(&self.binary, self.port, &self.dir, &[]);
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if process::answers_ping(self.port) {
                // Make sure it is our server that answered, not someone else's on this port.
                if process::is_process(self.port, pid) {
                    return true;
                }
                self.stop();
                return false;
            }
            let child = self.child.as_mut().expect("a child");
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {START_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        process::signal(child, signal);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL also ends a paused process.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
