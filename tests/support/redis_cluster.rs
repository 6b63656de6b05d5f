//! A real Redis Cluster for tests and benchmarks: six `redis-server --cluster-enabled yes` on
//! free loopback ports (three masters, each with one replica, made by
//! `redis-cli --cluster create`), in a private directory, all killed on drop.
//!
//! Nodes time out after 1 s (`cluster-node-timeout 1000`), so a killed master's replica takes
//! over within a few seconds. Nothing is mocked, and nothing ever talks to a Redis this fixture
//! did not start.

// Each test binary that includes this file uses a different part of it.
#![allow(dead_code)]

// Also included by redis_server.rs: a binary with both fixtures compiles it twice, which is
// harmless (functions only, no types) and lets either fixture be included alone.
#[allow(clippy::duplicate_mod)]
#[path = "redis_process.rs"]
mod process;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long the cluster may take to form, or to fail over.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Six nodes on `127.0.0.1`; after [`start`](Self::start), nodes 0–2 are the masters (see
/// [`replica_of`](Self::replica_of) for their replicas).
pub(crate) struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    server: PathBuf,
}

struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

impl RedisCluster {
    /// Starts six nodes, joins them into a cluster with one replica per master, and waits until
    /// every node reports `cluster_state:ok` and every replica is in sync.
    ///
    /// Panics with instructions when `redis-server` or `redis-cli` is not installed.
    pub(crate) fn start() -> Self {
        let server = process::find_binary("redis-server");
        let cli = process::find_binary("redis-cli");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir: process::private_dir("cluster"),
            server,
        };
        let ports = process::free_ports(12);
        for (port, bus_port) in ports[..6].iter().zip(&ports[6..]) {
            cluster.nodes.push(Node {
                port: *port,
                bus_port: *bus_port,
                child: None,
            });
            cluster.spawn_anywhere(cluster.nodes.len() - 1);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.until("the cluster forming", || {
            (0..6).all(|node| cluster.is_ok(node) && cluster.knows_all(node))
                && (0..3).all(|master| cluster.role(master) == "master")
                && (3..6).all(|replica| cluster.in_sync(replica))
        });
        cluster
    }

    /// The number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The port of node `node`.
    pub(crate) fn port(&self, node: usize) -> u16 {
        self.nodes[node].port
    }

    /// The `redis://` URL of node `node`.
    pub(crate) fn url(&self, node: usize) -> String {
        format!("redis://127.0.0.1:{}/", self.nodes[node].port)
    }

    /// Every node's URL, starting with node `first` (a client tries seed nodes in order).
    pub(crate) fn urls_from(&self, first: usize) -> Vec<String> {
        (0..self.len())
            .map(|i| self.url((first + i) % self.len()))
            .collect()
    }

    /// Every node's URL, node 0 first.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.urls_from(0)
    }

    /// The nodes that are running masters now.
    pub(crate) fn masters(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&node| self.is_running(node) && self.role(node) == "master")
            .collect()
    }

    /// The running master that owns `key`'s slot (the others answer `-MOVED`).
    pub(crate) fn owner_of(&self, key: &str) -> usize {
        self.masters()
            .into_iter()
            .find(|&node| {
                self.command(node, &["EXISTS", key])
                    .is_ok_and(|r| r.starts_with(':'))
            })
            .unwrap_or_else(|| panic!("no master owns {key}"))
    }

    /// How many keys node `node` holds.
    pub(crate) fn key_count(&self, node: usize) -> u64 {
        let reply = self.command(node, &["DBSIZE"]).expect("DBSIZE");
        reply[1..]
            .parse()
            .unwrap_or_else(|_| panic!("DBSIZE answered {reply}"))
    }

    /// How many connections listen on `channel` at node `node` (`PUBSUB NUMSUB` counts the
    /// node's own clients only); 0 for a killed node.
    pub(crate) fn subscribers(&self, node: usize, channel: &str) -> u64 {
        if !self.is_running(node) {
            return 0;
        }
        let reply = process::command_lines(self.port(node), &["PUBSUB", "NUMSUB", channel], 4)
            .expect("PUBSUB NUMSUB");
        // `*2`, `$len`, the channel, `:count`.
        reply[3][1..].parse().expect("a count")
    }

    /// Starts node `node` again after [`kill`](Self::kill), with the cluster configuration it
    /// had (its `nodes.conf`) and no data, and waits until it has rejoined: a master that was
    /// failed over meanwhile comes back as a replica of the node that replaced it, in sync.
    pub(crate) fn restart(&mut self, node: usize) {
        assert!(!self.is_running(node), "node {node} is running");
        self.spawn(node);
        self.until(&format!("node {node} rejoining"), || {
            self.is_ok(node)
                && (self.role(node) == "master" || self.in_sync(node))
                && (0..self.len()).all(|n| !self.is_running(n) || self.is_ok(n))
        });
    }

    /// Runs `redis-server` for node `node` in its own directory and waits until it answers.
    /// Starts node `node` on its ports or, when another process bound one of them after it was
    /// chosen (the server then exits at once), on fresh ones. Only before the cluster is created.
    fn spawn_anywhere(&mut self, node: usize) {
        for _ in 0..5 {
            let child = self.spawn_child(node);
            let port = self.nodes[node].port;
            self.nodes[node].child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let exited = match self.nodes[node].child.as_mut() {
                    Some(child) => child.try_wait().ok().flatten().is_some(),
                    None => true,
                };
                if exited {
                    break;
                }
                if process::answers_ping(port) {
                    return;
                }
                sleep(Duration::from_millis(20));
            }
            process::kill(&mut self.nodes[node].child);
            let ports = process::free_ports(2);
            (self.nodes[node].port, self.nodes[node].bus_port) = (ports[0], ports[1]);
        }
        panic!("node {node} could not start on free ports five times");
    }

    /// The `redis-server` process of node `node`, on its ports, in its own directory.
    fn spawn_child(&self, node: usize) -> Child {
        let (port, bus_port) = (self.nodes[node].port, self.nodes[node].bus_port);
        let node_dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("a node directory");
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "1000",
            "--cluster-port",
            &bus_port.to_string(),
            "--cluster-config-file",
            "nodes.conf",
        ];
        process::spawn_server(&self.server, port, &node_dir, &cluster_args)
    }

    fn spawn(&mut self, node: usize) {
        let port = self.nodes[node].port;
        let child = self.spawn_child(node);
        let pid = child.id();
        self.nodes[node].child = Some(child);
        self.until(&format!("node {node} answering PING"), || {
            process::answers_ping(port) && process::is_process(port, pid)
        });
    }

    /// Kills node `node` (as a crash would) and waits for it to exit.
    pub(crate) fn kill(&mut self, node: usize) {
        process::kill(&mut self.nodes[node].child);
    }

    /// Freezes node `node` with `SIGSTOP`: connections stay open, nothing is answered (and
    /// after a second the other nodes count it as failed).
    pub(crate) fn pause(&self, node: usize) {
        self.signal(node, "-STOP");
    }

    /// Lets a paused node go on with `SIGCONT`.
    pub(crate) fn resume(&self, node: usize) {
        self.signal(node, "-CONT");
    }

    fn signal(&self, node: usize, signal: &str) {
        let child = self.nodes[node]
            .child
            .as_ref()
            .expect("the node is running");
        process::signal(child, signal);
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub(crate) fn wait_ok(&self) {
        self.until("every node reporting cluster_state:ok", || {
            (0..self.len()).all(|n| !self.is_running(n) || self.is_ok(n))
        });
    }

    /// Kills master `master` and waits until its replica has taken over and every running node
    /// reports `cluster_state:ok` again; the new master.
    pub(crate) fn kill_and_fail_over(&mut self, master: usize) -> usize {
        let replica = self.replica_of(master);
        self.kill(master);
        self.until("the replica taking over", || {
            self.role(replica) == "master"
                && (0..self.len()).all(|n| !self.is_running(n) || self.is_ok(n))
        });
        replica
    }

    /// The running replica of master `master`.
    pub(crate) fn replica_of(&self, master: usize) -> usize {
        let port = self.port(master).to_string();
        (0..self.len())
            .find(|&node| {
                self.is_running(node)
                    && self
                        .command(node, &["INFO", "replication"])
                        .unwrap_or_default()
                        .lines()
                        .any(|line| line.trim_end() == format!("master_port:{port}"))
            })
            .unwrap_or_else(|| panic!("master {master} has no running replica"))
    }

    /// Sends one command to node `node`; the reply's first line (`+PONG`, `:3`, `-MOVED ...`),
    /// or a bulk string's contents.
    pub(crate) fn command(&self, node: usize, args: &[&str]) -> std::io::Result<String> {
        process::command(self.port(node), args)
    }

    fn is_running(&self, node: usize) -> bool {
        self.nodes[node].child.is_some()
    }

    fn is_ok(&self, node: usize) -> bool {
        self.command(node, &["CLUSTER", "INFO"])
            .is_ok_and(|info| info.lines().any(|l| l.trim_end() == "cluster_state:ok"))
    }

    fn knows_all(&self, node: usize) -> bool {
        let all = format!("cluster_known_nodes:{}", self.len());
        self.command(node, &["CLUSTER", "INFO"])
            .is_ok_and(|info| info.lines().any(|l| l.trim_end() == all))
    }

    /// `master` or `slave`, from `INFO replication`; empty when the node does not answer.
    pub(crate) fn role(&self, node: usize) -> String {
        let info = self
            .command(node, &["INFO", "replication"])
            .unwrap_or_default();
        info.lines()
            .find_map(|line| line.trim_end().strip_prefix("role:"))
            .unwrap_or_default()
            .to_owned()
    }

    fn in_sync(&self, replica: usize) -> bool {
        let info = self
            .command(replica, &["INFO", "replication"])
            .unwrap_or_default();
        info.lines()
            .any(|l| l.trim_end() == "master_link_status:up")
    }

    /// Polls `condition` until it holds, panicking with the nodes' logs after
    /// [`SETTLE_TIMEOUT`].
    fn until(&self, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !condition() {
            if Instant::now() > deadline {
                let logs: String = self
                    .nodes
                    .iter()
                    .map(|node| {
                        let log = self.dir.join(node.port.to_string()).join("redis.log");
                        let log = std::fs::read_to_string(log).unwrap_or_default();
                        let tail: Vec<&str> = log.lines().rev().take(15).collect();
                        format!(
                            "--- node {}:\n{}\n",
                            node.port,
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        )
                    })
                    .collect();
                panic!("{what} did not happen within {SETTLE_TIMEOUT:?}\n{logs}");
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
