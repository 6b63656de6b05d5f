//! A real `redis-server` for tests and benchmarks: started on a free loopback port with no
//! persistence of its own, in a private directory, and killed on drop.
//!
//! Fault tests [`stop`](RedisServer::stop) and [`restart`](RedisServer::restart) it on the same
//! port, or [`pause`](RedisServer::pause) it with `SIGSTOP` to play a hung server. Nothing is
//! mocked, and nothing ever talks to a Redis this fixture did not start.

// Each test binary that includes this file uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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
        let binary = find_binary();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        for _ in 0..5 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("mizan-redis-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
            let mut server = Self {
                binary: binary.clone(),
                port: free_port(),
                dir,
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end().to_owned();
        // A bulk string: its contents instead of its length.
        match line
            .strip_prefix('$')
            .and_then(|len| len.parse::<usize>().ok())
        {
            Some(len) => {
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body)?;
                body.truncate(len);
                Ok(String::from_utf8_lossy(&body).into_owned())
            }
            None => Ok(line),
        }
    }

    /// Starts the process; whether it came up and answers `PING`.
    fn spawn(&mut self) -> bool {
        let log = self.dir.join("redis.log");
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("a child");
            let pid = format!("process_id:{}", child.id());
            if self.command(&["PING"]).is_ok_and(|reply| reply == "+PONG") {
                // Make sure it is our server that answered, not someone else's on this port.
                let info = self.command(&["INFO", "server"]).unwrap_or_default();
                if info.lines().any(|line| line.trim_end() == pid) {
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
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
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

/// `redis-server` from `PATH` (or the usual system directories).
fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| is_file(candidate))
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not installed, and the Redis tests start their own server. \
                 Install it (Debian/Ubuntu: `apt-get install -y redis-server`; macOS: \
                 `brew install redis`) or run ./scripts/test.sh, which installs it"
            )
        })
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file())
}

/// A loopback port nobody listens on right now (never 6379: that one may be someone's Redis).
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("a local address").port();
        if port != 6379 {
            return port;
        }
    }
}
