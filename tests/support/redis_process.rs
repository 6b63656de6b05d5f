//! What the Redis fixtures (`redis_server.rs`, `redis_cluster.rs`) share: finding the binaries,
//! free loopback ports, a private directory, starting a `redis-server` child, telling whether a
//! port is answered by that child, one command over RESP, and signalling or killing the child.
//!
//! Each fixture includes it as its own child module `process`, so that either can be included
//! alone (`examples/chaos.rs` includes only the cluster's).

// Each fixture uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// `name` (`redis-server`, `redis-cli`) from `PATH` (or the usual system directories).
///
/// Panics with instructions when it is not installed.
pub(super) fn find_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_file(candidate))
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed, and the Redis tests start their own servers and \
                 clusters. Install it (Debian/Ubuntu: `apt-get install -y redis-server`, which \
                 brings redis-cli; macOS: `brew install redis`) or run ./scripts/test.sh, which \
                 installs it"
            )
        })
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file())
}

/// `n` distinct loopback ports nobody listens on right now (never 6379, nor 16379: those may
/// be someone's Redis and its cluster bus).
pub(super) fn free_ports(n: usize) -> Vec<u16> {
    // Hold every listener until all are chosen, so that no port is handed out twice.
    let mut listeners = Vec::new();
    while listeners.len() < n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("a local address").port();
        if port != 6379 && port != 16379 {
            listeners.push(listener);
        }
    }
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a local address").port())
        .collect()
}

/// A new empty directory `mizan-{kind}-{this process}-{n}` under the system's temporary one.
pub(super) fn private_dir(kind: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mizan-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
    dir
}

/// A `redis-server` on `127.0.0.1:{port}`, in the foreground, with no persistence of its own
/// (`SAVE` still writes a snapshot), its files in `dir` and its log in `dir/redis.log`; `extra`
/// arguments come before those. Started, with no stdio; panics if it cannot be run.
pub(super) fn spawn_server(binary: &Path, port: u16, dir: &Path, extra: &[&str]) -> Child {
    Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(extra)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()))
}

/// Whether something on `port` answers `PING` with `PONG`.
pub(super) fn answers_ping(port: u16) -> bool {
    command(port, &["PING"]).is_ok_and(|reply| reply == "+PONG")
}

/// Whether the server on `port` is the process `pid` (and not someone else's on this port).
pub(super) fn is_process(port: u16, pid: u32) -> bool {
    let pid = format!("process_id:{pid}");
    command(port, &["INFO", "server"])
        .unwrap_or_default()
        .lines()
        .any(|line| line.trim_end() == pid)
}

/// Sends one command to the server on `port`; the reply's first line (`+PONG`, `:3`,
/// `-MOVED ...`), or a bulk string's contents.
pub(super) fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let lines = command_lines(port, args, 1)?;
    Ok(lines.into_iter().next().unwrap_or_default())
}

/// Sends one command; the first `lines` lines of the reply, a bulk string alone read whole.
pub(super) fn command_lines(
    port: u16,
    args: &[&str],
    lines: usize,
) -> std::io::Result<Vec<String>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut out = Vec::new();
    while out.len() < lines {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end().to_owned();
        // A bulk string alone: its contents instead of its length.
        match line
            .strip_prefix('$')
            .and_then(|len| len.parse::<usize>().ok())
        {
            Some(len) if lines == 1 => {
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body)?;
                body.truncate(len);
                out.push(String::from_utf8_lossy(&body).into_owned());
            }
            _ => out.push(line),
        }
    }
    Ok(out)
}

/// Sends `signal` (`-STOP`, `-CONT`) to `child` with `kill`.
pub(super) fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} failed");
}

/// Kills the child, if any (as a crash would: no shutdown, no save; SIGKILL also ends a paused
/// process), and waits for it to exit.
pub(super) fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
