//! The client of `scripts/chaos.sh`: three demo instances on one Redis (or one Redis Cluster)
//! and one database, mixed traffic for a bounded time, and Redis frozen, killed and restarted
//! underneath.
//!
//! ```text
//! CHAOS_DEMO=target/release/examples/demo DATABASE_URL=postgres://... \
//!     cargo run --release --example chaos
//! CHAOS_REDIS=cluster ...   # a Redis Cluster instead of one redis-server
//! ```
//!
//! It starts a `redis-server` of its own on a free loopback port (no persistence) and three demo
//! processes (`CHAOS_DEMO`), on axum, tower and actix, all with `MIZAN_REDIS_URL` on that Redis
//! and the same `DATABASE_URL` and secrets. With `CHAOS_REDIS=cluster` it starts a Redis Cluster
//! instead (three masters, one replica each: the fixture of `tests/support/redis_cluster.rs`)
//! and gives each instance `MIZAN_REDIS_CLUSTER` with every node as a seed, starting from a
//! different master, so that the three invalidation-bus listeners sit on three different masters.
//! For `CHAOS_SECONDS` (default 90) it runs:
//!
//! - one writer per key, each writing `v1`, `v2`, ... in order on a different instance each time:
//!   three users' names (`update_profile`), four note folders (`add_note`), the catalog
//!   (`add_item`, paced);
//! - readers fetching those keys' context bundles from every instance, each checking that what
//!   it sees is not older than the newest value whose mutation had returned before the read
//!   started (a *stale read*);
//! - a session checker: log in on one instance, use the token on the next, log out on the third,
//!   and the token must be refused on the first.
//!
//! Meanwhile Redis is frozen (`SIGSTOP`) for a few seconds and thawed (`SIGCONT`), killed
//! (`SIGKILL`) and restarted empty, and frozen again. On a cluster (see [`timeline`]): a master
//! is frozen for longer than the node timeout (its replica is promoted meanwhile, and the old
//! master comes back as a replica), another master is killed and its replica takes over, and
//! the killed node is started again and rejoins as a replica. The report: requests, non-2xx
//! answers by status, transport errors, stale reads, revocation failures, latency, peak RSS per
//! instance, each fault step with its time (and, on a cluster, the roles it left), how often
//! each instance's invalidation bus lost Redis and came back, and how long after Redis answered
//! again each instance re-applied the purges it lost (from the demo's log lines). Exits non-zero
//! on a stale read, a 5xx or a revocation failure. Everything it started is stopped at the end.

#[path = "../tests/support/redis_cluster.rs"]
mod redis_cluster;

use std::collections::BTreeMap;
use std::error::Error;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_cluster::RedisCluster;
use serde_json::{json, Value};

type BoxError = Box<dyn Error + Send + Sync>;

const ADAPTERS: [&str; 3] = ["axum", "tower", "actix"];
const USERS: [i64; 3] = [1, 2, 3];
const FOLDERS: usize = 4;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        if port != 6379 {
            return port;
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

/// A `redis-server` child on a free loopback port, keeping nothing on disk.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    fn start(dir: &Path) -> Result<Self, BoxError> {
        let mut redis = Self {
            port: free_port(),
            dir: dir.to_owned(),
            child: None,
        };
        redis.spawn()?;
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn spawn(&mut self) -> Result<(), BoxError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the instances share: one `redis-server`, or a Redis Cluster.
enum Backend {
    Single(Redis),
    Cluster(RedisCluster),
}

impl Backend {
    /// The variable and value that point instance number `i` at this backend. On a cluster the
    /// seeds are every node, starting at master `i`: the instance's bus listens on the first
    /// seed that accepts.
    fn env(&self, i: usize) -> (&'static str, String) {
        match self {
            Backend::Single(redis) => ("MIZAN_REDIS_URL", redis.url()),
            Backend::Cluster(cluster) => {
                let seeds: Vec<String> = (0..cluster.len())
                    .map(|n| format!("127.0.0.1:{}", cluster.port((i + n) % cluster.len())))
                    .collect();
                ("MIZAN_REDIS_CLUSTER", seeds.join(","))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Backend::Single(redis) => format!("redis on port {}", redis.port),
            Backend::Cluster(cluster) => format!("Redis Cluster {}", roles(cluster)),
        }
    }

    fn stop(&mut self) {
        match self {
            Backend::Single(redis) => redis.kill(),
            Backend::Cluster(cluster) => {
                for node in 0..cluster.len() {
                    cluster.kill(node);
                }
            }
        }
    }
}

/// Every node of the cluster with its port and role (`node 3 :41234 replica of 0`), from each
/// node's `INFO replication`; `down` for a node that does not answer.
fn roles(cluster: &RedisCluster) -> String {
    let text: Vec<String> = (0..cluster.len())
        .map(|node| {
            let info = cluster
                .command(node, &["INFO", "replication"])
                .unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.trim_end().strip_prefix(name))
                    .map(str::to_owned)
            };
            let role = match field("role:").as_deref() {
                Some("master") => "master".to_owned(),
                Some("slave") => {
                    let port = field("master_port:").and_then(|p| p.parse::<u16>().ok());
                    match (0..cluster.len()).find(|&m| Some(cluster.port(m)) == port) {
                        Some(master) => format!("replica of {master}"),
                        None => "replica".to_owned(),
                    }
                }
                Some(other) => other.to_owned(),
                None => "down".to_owned(),
            };
            format!("node {node} :{} {role}", cluster.port(node))
        })
        .collect();
    format!("[{}]", text.join(", "))
}

/// A demo process.
struct Instance {
    adapter: &'static str,
    url: String,
    log: PathBuf,
    child: Child,
}

impl Instance {
    fn start(
        demo: &Path,
        adapter: &'static str,
        (redis_var, redis): (&str, String),
        out: &Path,
    ) -> Result<Self, BoxError> {
        let port = free_port();
        let log = out.join(format!("{adapter}.log"));
        let child = Command::new(demo)
            .env("MIZAN_ADDR", format!("127.0.0.1:{port}"))
            .env("MIZAN_ADAPTER", adapter)
            .env(redis_var, redis)
            .env("MIZAN_SSR", "off")
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                "info,actix_web::middleware::logger=warn,tower_http=warn",
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(out.join(format!("{adapter}.err")))?)
            .spawn()?;
        Ok(Self {
            adapter,
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        })
    }

    /// The peak resident set (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    fn stop(&mut self) {
        signal(self.child.id(), "-INT");
        let deadline = Instant::now() + Duration::from_secs(5);
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

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fault the timeline applies to Redis.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `SIGSTOP`, then `SIGCONT` after this long: a hung server, connections stay open.
    Freeze(Duration),
    /// `SIGKILL`, then a new, empty server on the same port after this long.
    KillAndRestart(Duration),
    /// Cluster: `SIGSTOP` master 0 (the first seed of the axum instance, so its bus listener),
    /// then `SIGCONT` after this long. Longer than the node timeout (1 s), so its replica is
    /// promoted meanwhile and the old master comes back as a replica.
    FreezeMaster(Duration),
    /// Cluster: `SIGKILL` master 1 (or another master, if 1 is no longer one), and wait until
    /// its replica has taken over.
    KillMaster,
    /// Cluster: start the node `KillMaster` killed again, empty, with its cluster configuration;
    /// it rejoins as a replica of the node that replaced it.
    RestartKilled,
}

/// When each fault starts, as a fraction of the run.
fn timeline(cluster: bool) -> Vec<(f64, Fault)> {
    if cluster {
        vec![
            (0.2, Fault::FreezeMaster(Duration::from_secs(4))),
            (0.45, Fault::KillMaster),
            (0.75, Fault::RestartKilled),
        ]
    } else {
        vec![
            (0.2, Fault::Freeze(Duration::from_secs(5))),
            (0.5, Fault::KillAndRestart(Duration::from_secs(3))),
            (0.75, Fault::Freeze(Duration::from_secs(3))),
        ]
    }
}

/// One step of a fault.
struct Event {
    /// What happened, in full.
    what: String,
    /// Its name in the stale-read and re-applied lines (`SIGCONT`, `restarted`, ...).
    short: String,
    /// When, in unix ms.
    at: u64,
}

/// What the traffic saw.
#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    /// The first few transport errors, with when they happened.
    transport_samples: Vec<String>,
    latencies_us: Vec<u32>,
    stale: Vec<String>,
    revocation_failures: u64,
    session_rounds: u64,
}

struct Shared {
    instances: Vec<String>,
    client: reqwest::Client,
    stats: Mutex<Stats>,
    /// Per key: the newest value whose mutation has returned.
    returned: Vec<AtomicU64>,
    done: AtomicBool,
    /// Every fault step, for the report.
    events: Mutex<Vec<Event>>,
}

impl Shared {
    /// Sends a request; the status and JSON body, or `None` after a transport error.
    async fn send(&self, request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
        let start = Instant::now();
        let outcome = request.send().await;
        let elapsed = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let status = outcome
            .as_ref()
            .ok()
            .map(|response| response.status().as_u16());
        {
            let mut stats = self.stats.lock().unwrap();
            match status {
                Some(status) => {
                    stats.latencies_us.push(elapsed);
                    *stats.by_status.entry(status).or_default() += 1;
                }
                None => {
                    stats.transport_errors += 1;
                    if stats.transport_samples.len() < 5 {
                        let err = outcome.as_ref().err().map(|e| format!("{e:?}"));
                        stats.transport_samples.push(format!(
                            "at unix ms {}: {}",
                            unix_ms(),
                            err.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        let body = outcome.ok()?.json().await.unwrap_or(Value::Null);
        Some((status?, body))
    }

    async fn call(
        &self,
        i: usize,
        bearer: Option<&str>,
        function: &str,
        args: Value,
    ) -> Option<(u16, Value)> {
        let mut request = self
            .client
            .post(format!("{}/api/mizan/call/", self.instances[i]))
            .json(&json!({"fn": function, "args": args}));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn fetch(&self, i: usize, path: &str) -> Option<Value> {
        let url = format!("{}/api/mizan/ctx/{path}", self.instances[i]);
        match self.send(self.client.get(url)).await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// The last fault step before `at`: its short name and unix ms. (On one server, a purge
    /// can only be re-applied after `SIGCONT` or `restarted`; on a cluster, the masters that
    /// were not hit answer all along.)
    fn last_event_before(&self, at: u64) -> Option<(String, u64)> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .rfind(|event| event.at <= at)
            .map(|event| (event.short.clone(), event.at))
    }
}

/// A key the writers write and the readers check.
#[derive(Clone)]
enum Key {
    User(i64),
    Folder(String),
    Catalog,
}

impl Key {
    async fn write(&self, shared: &Shared, i: usize, n: u64) -> bool {
        let value = format!("v{n}");
        let (function, args) = match self {
            Key::User(id) => ("update_profile", json!({"user_id": id, "name": value})),
            Key::Folder(folder) => ("add_note", json!({"folder": folder, "text": value})),
            Key::Catalog => ("add_item", json!({"name": value})),
        };
        matches!(shared.call(i, None, function, args).await, Some((200, _)))
    }

    /// The newest value number the key's bundle shows on instance `i`.
    async fn read(&self, shared: &Shared, i: usize) -> Option<u64> {
        let number = |v: &Value| {
            v.as_str()
                .and_then(|s| s.strip_prefix('v'))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let newest = |list: &Value, field: Option<&str>| {
            list.as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| number(field.map_or(item, |f| &item[f])))
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        };
        Some(match self {
            Key::User(id) => {
                let bundle = shared.fetch(i, &format!("user/?user_id={id}")).await?;
                number(&bundle["user_profile"]["name"])
            }
            Key::Folder(folder) => {
                let bundle = shared.fetch(i, &format!("notes/?folder={folder}")).await?;
                newest(&bundle["notes_list"], None)
            }
            Key::Catalog => {
                let bundle = shared.fetch(i, "catalog/").await?;
                newest(&bundle["catalog_items"], Some("name"))
            }
        })
    }

    fn name(&self) -> String {
        match self {
            Key::User(id) => format!("user {id}"),
            Key::Folder(folder) => format!("notes {folder}"),
            Key::Catalog => "catalog".into(),
        }
    }
}

/// Waits until the instance serves, or fails at once if its process exited.
async fn wait_ready(client: &reqwest::Client, instance: &mut Instance) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client.get(format!("{}/api/mizan/ctx/catalog/", instance.url));
        if let Ok(response) = answer.send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if let Ok(Some(status)) = instance.child.try_wait() {
            return Err(format!("the {} instance exited ({status})", instance.adapter).into());
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not answer within 60 s", instance.url).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

/// `at_unix_ms` of every `lost purges re-applied` line of a demo log.
fn reapplied_at(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains("lost purges re-applied"))
        .filter_map(|line| {
            let rest = &line[line.find("at_unix_ms=")? + "at_unix_ms=".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// How many lines of a demo log contain `needle`.
fn log_count(log: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|line| line.contains(needle)).count()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let demo = PathBuf::from(
        std::env::var("CHAOS_DEMO").unwrap_or_else(|_| "target/release/examples/demo".into()),
    );
    let database = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is required")?;
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(90);
    let out = PathBuf::from(std::env::var("CHAOS_OUT").unwrap_or_else(|_| "target/chaos".into()));
    std::fs::create_dir_all(&out)?;
    let run = Duration::from_secs(seconds);

    let cluster = match std::env::var("CHAOS_REDIS").as_deref() {
        Ok("cluster") => true,
        Ok("single") | Err(_) => false,
        Ok(other) => {
            return Err(format!("CHAOS_REDIS={other:?}: expected single or cluster").into())
        }
    };
    let mut backend = if cluster {
        Backend::Cluster(tokio::task::block_in_place(RedisCluster::start))
    } else {
        Backend::Single(Redis::start(&out)?)
    };
    let mut instances = Vec::new();
    for (i, adapter) in ADAPTERS.into_iter().enumerate() {
        instances.push(Instance::start(&demo, adapter, backend.env(i), &out)?);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    for instance in &mut instances {
        if let Err(err) = wait_ready(&client, instance).await {
            let stderr = out.join(format!("{}.err", instance.adapter));
            let said = std::fs::read_to_string(stderr).unwrap_or_default();
            return Err(format!("{err}\n{said}").into());
        }
    }
    println!(
        "chaos: {}, instances {}, {seconds} s, database {}",
        backend.describe(),
        instances
            .iter()
            .map(|i| format!("{} {}", i.adapter, i.url))
            .collect::<Vec<_>>()
            .join(", "),
        database.split('@').next_back().unwrap_or("")
    );

    // Fresh folder names, so that notes of an earlier run on the same database do not count.
    let tag = unix_ms();
    let keys: Vec<Key> = USERS
        .iter()
        .map(|&id| Key::User(id))
        .chain((0..FOLDERS).map(|f| Key::Folder(format!("chaos{tag}f{f}"))))
        .chain([Key::Catalog])
        .collect();
    let shared = Arc::new(Shared {
        instances: instances.iter().map(|i| i.url.clone()).collect(),
        client,
        stats: Mutex::default(),
        returned: keys.iter().map(|_| AtomicU64::new(0)).collect(),
        done: AtomicBool::new(false),
        events: Mutex::default(),
    });
    let n = shared.instances.len();
    let started = Instant::now();
    let mut tasks = Vec::new();

    // Writers: one per key, in order.
    for (k, key) in keys.iter().cloned().enumerate() {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            // The catalog grows with every write: a slower pace keeps its bundle small.
            let mut pace = tokio::time::interval(match key {
                Key::Catalog => Duration::from_millis(500),
                _ => Duration::from_millis(20),
            });
            let mut v = 0;
            while !shared.done.load(Ordering::SeqCst) {
                pace.tick().await;
                v += 1;
                if key.write(&shared, (k + v as usize) % n, v).await {
                    shared.returned[k].fetch_max(v, Ordering::SeqCst);
                }
            }
        }));
    }
    // Readers.
    for r in 0..8 {
        let (shared, keys) = (Arc::clone(&shared), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut turn = r * 7;
            while !shared.done.load(Ordering::SeqCst) {
                turn += 1;
                let (k, i) = (turn % keys.len(), (turn / keys.len()) % n);
                let floor = shared.returned[k].load(Ordering::SeqCst);
                let started_ms = unix_ms();
                let Some(seen) = keys[k].read(&shared, i).await else {
                    continue;
                };
                if seen < floor {
                    let since = shared
                        .last_event_before(started_ms)
                        .map_or("no fault before it".to_owned(), |(what, at)| {
                            format!("{} ms after {what}", started_ms - at)
                        });
                    let report = format!(
                        "{} on {}: saw v{seen}, v{floor} had returned ({since})",
                        keys[k].name(),
                        ADAPTERS[i]
                    );
                    shared.stats.lock().unwrap().stale.push(report);
                }
            }
        }));
    }
    // Sessions: a logout on one instance revokes the token on the others.
    {
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut round = 0usize;
            while !shared.done.load(Ordering::SeqCst) {
                round += 1;
                let (a, b, c) = (round % n, (round + 1) % n, (round + 2) % n);
                let login = json!({"username": "bob", "password": "bob"});
                let Some((200, tokens)) = shared.call(a, None, "login", login).await else {
                    continue;
                };
                let access = tokens["result"]["access"].as_str().unwrap_or("").to_owned();
                let used = shared.call(b, Some(&access), "secret", json!({})).await;
                let logout = shared.call(c, Some(&access), "logout", json!({})).await;
                if !matches!(used, Some((200, _))) || !matches!(logout, Some((200, _))) {
                    continue;
                }
                let after = shared.call(a, Some(&access), "secret", json!({})).await;
                let revoked = matches!(after, Some((401, _)));
                let mut stats = shared.stats.lock().unwrap();
                stats.session_rounds += 1;
                if revoked {
                    // Expected: not an error.
                    *stats.by_status.entry(401).or_default() -= 1;
                } else {
                    stats.revocation_failures += 1;
                }
                drop(stats);
            }
        }));
    }

    // The faults.
    let event = |what: String, short: &str| {
        println!("chaos: {:>6.1} s  {what}", started.elapsed().as_secs_f64());
        shared.events.lock().unwrap().push(Event {
            what,
            short: short.to_owned(),
            at: unix_ms(),
        });
    };
    let mut killed = None;
    for (at, fault) in timeline(cluster) {
        let start_at = started + run.mul_f64(at);
        tokio::time::sleep_until(start_at.into()).await;
        match (fault, &mut backend) {
            (Fault::Freeze(length), Backend::Single(redis)) => {
                signal(redis.pid(), "-STOP");
                event("SIGSTOP".into(), "SIGSTOP");
                tokio::time::sleep(length).await;
                signal(redis.pid(), "-CONT");
                event("SIGCONT".into(), "SIGCONT");
            }
            (Fault::KillAndRestart(down), Backend::Single(redis)) => {
                redis.kill();
                event("killed".into(), "killed");
                tokio::time::sleep(down).await;
                redis.spawn()?;
                event("restarted".into(), "restarted");
            }
            (Fault::FreezeMaster(length), Backend::Cluster(nodes)) => {
                let master = 0;
                let replica = tokio::task::block_in_place(|| nodes.replica_of(master));
                let thaw_at = Instant::now() + length;
                nodes.pause(master);
                event(
                    format!("SIGSTOP master node {master} (its replica: node {replica})"),
                    "SIGSTOP",
                );
                // Watch the replica (which answers) until the thaw.
                let mut promoted = false;
                while Instant::now() < thaw_at {
                    if !promoted && nodes.role(replica) == "master" {
                        promoted = true;
                        event(format!("node {replica} promoted to master"), "promoted");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                nodes.resume(master);
                event(format!("SIGCONT node {master}"), "SIGCONT");
                tokio::task::block_in_place(|| nodes.wait_ok());
                event(
                    format!("cluster_state:ok on every node: {}", roles(nodes)),
                    "cluster ok",
                );
            }
            (Fault::KillMaster, Backend::Cluster(nodes)) => {
                let master = tokio::task::block_in_place(|| {
                    let masters = nodes.masters();
                    if masters.contains(&1) {
                        1
                    } else {
                        masters[0]
                    }
                });
                let replica = tokio::task::block_in_place(|| nodes.replica_of(master));
                event(
                    format!("SIGKILL master node {master} (its replica: node {replica})"),
                    "killed",
                );
                let promoted = tokio::task::block_in_place(|| nodes.kill_and_fail_over(master));
                event(
                    format!(
                        "node {promoted} promoted, cluster_state:ok on every running node: {}",
                        roles(nodes)
                    ),
                    "failed over",
                );
                killed = Some(master);
            }
            (Fault::RestartKilled, Backend::Cluster(nodes)) => {
                if let Some(node) = killed.take() {
                    event(format!("restarting node {node}"), "restarting");
                    tokio::task::block_in_place(|| nodes.restart(node));
                    event(
                        format!("node {node} rejoined: {}", roles(nodes)),
                        "rejoined",
                    );
                }
            }
            (fault, _) => return Err(format!("{fault:?} does not apply to this backend").into()),
        }
    }
    tokio::time::sleep_until((started + run).into()).await;
    shared.done.store(true, Ordering::SeqCst);
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = started.elapsed();

    // A last read of every key on every instance: each shows the newest value that returned.
    let mut final_mismatches = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let floor = shared.returned[k].load(Ordering::SeqCst);
        for (i, adapter) in ADAPTERS.iter().enumerate() {
            match key.read(&shared, i).await {
                Some(seen) if seen >= floor => {}
                other => final_mismatches.push(format!(
                    "{} on {adapter}: {other:?}, expected v{floor}",
                    key.name(),
                )),
            }
        }
    }

    let rss: Vec<(&str, Option<f64>)> = instances
        .iter()
        .map(|i| (i.adapter, i.peak_rss_mib()))
        .collect();
    for instance in &mut instances {
        instance.stop();
    }
    let final_topology = match &backend {
        Backend::Cluster(nodes) => Some(roles(nodes)),
        Backend::Single(_) => None,
    };
    backend.stop();

    // Report.
    let stats = shared.stats.lock().unwrap();
    let requests: u64 = stats.by_status.values().sum::<u64>() + stats.transport_errors;
    let mut latencies = stats.latencies_us.clone();
    latencies.sort_unstable();
    let non_2xx: BTreeMap<u16, u64> = stats
        .by_status
        .iter()
        .filter(|(status, count)| !(200..300).contains(*status) && **count > 0)
        .map(|(s, c)| (*s, *c))
        .collect();
    let server_errors: u64 = non_2xx
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, c)| c)
        .sum();
    println!();
    println!("## chaos report ({:.0} s)", elapsed.as_secs_f64());
    println!();
    println!(
        "- requests: {requests} ({:.0}/s); transport errors: {}",
        requests as f64 / elapsed.as_secs_f64(),
        stats.transport_errors
    );
    for sample in &stats.transport_samples {
        println!("    - {sample}");
    }
    println!("- non-2xx answers by status: {non_2xx:?} (the expected 401 after a logout excluded)");
    println!(
        "- latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    let writes: u64 = shared
        .returned
        .iter()
        .map(|v| v.load(Ordering::SeqCst))
        .sum();
    println!(
        "- writes returned: {writes}; stale reads: {}",
        stats.stale.len()
    );
    for stale in stats.stale.iter().take(20) {
        println!("    - {stale}");
    }
    println!(
        "- session rounds (login A, use B, logout C, refused on A): {}; revocation failures: {}",
        stats.session_rounds, stats.revocation_failures
    );
    println!(
        "- final reads older than the last returned write: {}",
        final_mismatches.len()
    );
    for mismatch in &final_mismatches {
        println!("    - {mismatch}");
    }
    for (adapter, mib) in &rss {
        match mib {
            Some(mib) => println!("- peak RSS {adapter}: {mib:.1} MiB"),
            None => println!("- peak RSS {adapter}: unknown"),
        }
    }
    println!("- Redis faults, and lost purges re-applied (after the last fault step before):");
    for event in shared.events.lock().unwrap().iter() {
        println!("    - +{} ms: {}", event.at.saturating_sub(tag), event.what);
    }
    for instance in &instances {
        for at in reapplied_at(&instance.log) {
            let since = shared
                .last_event_before(at)
                .map_or("before any fault".to_owned(), |(what, when)| {
                    format!("{} ms after {what}", at - when)
                });
            println!(
                "    - {}: re-applied at +{} ms, {since}",
                instance.adapter,
                at.saturating_sub(tag)
            );
        }
    }

    println!("- invalidation bus, from each instance's log:");
    for instance in &instances {
        println!(
            "    - {}: lost Redis {}×, reconnected with a resync {}×, published late {}×",
            instance.adapter,
            log_count(&instance.log, "invalidation bus lost Redis"),
            log_count(&instance.log, "invalidation bus reconnected"),
            log_count(&instance.log, "invalidation bus published a message late"),
        );
    }
    if let Some(topology) = final_topology {
        println!("- cluster at the end: {topology}");
    }

    let failed = !stats.stale.is_empty()
        || server_errors > 0
        || stats.revocation_failures > 0
        || !final_mismatches.is_empty();
    if failed {
        return Err("chaos: stale reads, 5xx answers or revocation failures (see above)".into());
    }
    Ok(())
}
