//! The pool: a fixed number of worker slots, a bounded queue, restarts with backoff.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::worker::{Counters, Worker};
use crate::{Html, SsrError};

/// How long a worker gets to exit by itself at [`SsrPool::shutdown`] before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the slots are told to do; ordered, so "at least graceful" includes killing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    Run,
    /// Finish the render in flight, then close the worker's stdin and let it exit.
    Graceful,
    /// Kill the workers now.
    Kill,
}

/// Resolves once the pool asks for at least `level` (a pool that is gone asks to kill).
pub(crate) async fn stopped(stop: &mut watch::Receiver<Stop>, level: Stop) -> Stop {
    match stop.wait_for(|s| *s >= level).await {
        Ok(s) => *s,
        Err(_) => Stop::Kill,
    }
}

/// Everything a slot needs to start workers.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) envs: Vec<(OsString, OsString)>,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) workers: usize,
    pub(crate) render_timeout: Duration,
    pub(crate) ready_timeout: Duration,
    pub(crate) queue_bound: usize,
    pub(crate) queue_timeout: Duration,
    pub(crate) max_line_bytes: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

/// Configures and starts an [`SsrPool`]; made by [`SsrPool::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build().await`"]
pub struct SsrPoolBuilder {
    config: Config,
}

impl SsrPoolBuilder {
    /// Runs the workers with this program instead of `node`, keeping the arguments (the worker
    /// script): `with_program("bun")` runs `bun <script>`.
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.config.program = program.into();
        self
    }

    /// Replaces the whole command line: the program and every argument.
    pub fn with_command<I, A>(mut self, program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.config.program = program.into();
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets an environment variable of the workers (e.g. `NODE_ENV=production`, which makes
    /// React render several times faster than its development build).
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.config.envs.push((key.into(), value.into()));
        self
    }

    /// The workers' working directory (by default the server's).
    pub fn with_current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.current_dir = Some(dir.into());
        self
    }

    /// The number of worker processes (at least 1).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.config.workers = workers.max(1);
        self
    }

    /// How long one render may take in its worker; past it the caller gets
    /// [`SsrError::Timeout`] and the worker is killed and replaced.
    pub fn with_render_timeout(mut self, timeout: Duration) -> Self {
        self.config.render_timeout = timeout;
        self
    }

    /// How long a new worker may take to announce that it is ready.
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.config.ready_timeout = timeout;
        self
    }

    /// How many renders may wait for a worker when every worker is busy; one more fails at once
    /// with [`SsrError::Overloaded`].
    pub fn with_queue_bound(mut self, bound: usize) -> Self {
        self.config.queue_bound = bound;
        self
    }

    /// How long a render may wait in the queue for a worker before it fails with
    /// [`SsrError::Overloaded`].
    pub fn with_queue_timeout(mut self, timeout: Duration) -> Self {
        self.config.queue_timeout = timeout;
        self
    }

    /// The longest line read from a worker's stdout (at least 64 bytes). A longer reply fails
    /// its render with [`SsrError::Protocol`] and the worker is replaced; the line is never held
    /// in memory beyond this bound.
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.config.max_line_bytes = max.max(64);
        self
    }

    /// A worker idle this long is sent a ping; one that does not answer within `timeout` (hung,
    /// stopped, stuck in a loop) is killed and replaced.
    pub fn with_health_check(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.ping_interval = interval;
        self.config.ping_timeout = timeout;
        self
    }

    /// The delay before restarting a worker that crashed or failed to start: `min` at first,
    /// doubling on each failure in a row up to `max`, back to `min` after a worker that had
    /// answered a render or a health-check ping.
    pub fn with_restart_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// Starts the workers and waits until every one has announced it is ready.
    ///
    /// Must be awaited inside a Tokio runtime with its IO and time drivers enabled
    /// (`#[tokio::main]` enables both); the workers are supervised by tasks of that runtime,
    /// which must keep running while the pool is used. Fails with [`SsrError::Startup`] when a
    /// worker cannot be started (the program or the script is missing, the script exits or
    /// sends no ready line in time); the workers already started are then stopped.
    pub async fn build(self) -> Result<SsrPool, SsrError> {
        let config = self.config;
        let (stop_tx, _) = watch::channel(Stop::Run);
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let capacity = config.workers + config.queue_bound;
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(jobs_rx),
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            counters: Arc::new(Counters::default()),
            slots: Mutex::new(vec![None; config.workers]),
            closed: AtomicBool::new(false),
            config,
        });
        let mut tasks = Vec::new();
        let mut first_starts = Vec::new();
        for slot in 0..shared.config.workers {
            let (started_tx, started_rx) = oneshot::channel();
            tasks.push(tokio::spawn(run_slot(
                shared.clone(),
                slot,
                stop_tx.subscribe(),
                started_tx,
            )));
            first_starts.push(started_rx);
        }
        let pool = SsrPool {
            inner: Arc::new(PoolInner {
                shared,
                jobs: jobs_tx,
                stop: stop_tx,
                tasks: tokio::sync::Mutex::new(tasks),
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        for started in first_starts {
            let outcome = started.await.unwrap_or_else(|_| {
                Err(SsrError::Startup {
                    message: "the worker supervisor ended before the worker was ready".to_owned(),
                    source: None,
                })
            });
            if let Err(err) = outcome {
                pool.stop(Stop::Kill).await;
                return Err(err);
            }
        }
        Ok(pool)
    }
}

/// A pool of persistent JavaScript worker processes that render components to HTML.
///
/// Cheap to clone (all clones share the workers), so it can be app state. Each worker renders
/// one component at a time; renders beyond the workers wait in a bounded queue. When the last
/// clone is dropped the workers are killed and collected in the background;
/// [`shutdown`](Self::shutdown) stops them gracefully and waits.
#[derive(Clone, Debug)]
pub struct SsrPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    stop: watch::Sender<Stop>,
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        self.stop.send_if_modified(|s| raise(s, Stop::Kill));
    }
}

fn raise(current: &mut Stop, to: Stop) -> bool {
    if *current < to {
        *current = to;
        true
    } else {
        false
    }
}

/// The state the slot tasks share with the pool handles.
#[derive(Debug)]
struct Shared {
    config: Config,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    permits: Arc<Semaphore>,
    capacity: usize,
    counters: Arc<Counters>,
    /// The pid of each slot's worker while it is ready.
    slots: Mutex<Vec<Option<u32>>>,
    closed: AtomicBool,
}

impl Shared {
    fn set_slot(&self, slot: usize, pid: Option<u32>) {
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(entry) = slots.get_mut(slot) {
                *entry = pid;
            }
        }
    }

    /// The error of a render whose job was dropped unanswered.
    fn unanswered(&self) -> SsrError {
        if self.closed.load(Ordering::Acquire) {
            SsrError::Closed
        } else {
            SsrError::Crashed { status: None }
        }
    }
}

/// One render, from the caller to a slot.
#[derive(Debug)]
struct Job {
    component: String,
    props: Box<RawValue>,
    /// Told when a slot takes the job; a closed receiver means the caller gave up waiting.
    picked: oneshot::Sender<()>,
    reply: oneshot::Sender<Result<Html, SsrError>>,
    /// Held until the job is done, so queued and in-flight renders count against the bound.
    _permit: OwnedSemaphorePermit,
}

/// A snapshot of a pool's state, from [`SsrPool::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SsrStats {
    /// Worker processes started since the pool was built, replacements included.
    pub spawned: u64,
    /// Workers running and ready (they announced readiness and have not failed since).
    pub ready: usize,
    /// Renders accepted and not yet answered: in flight or queued.
    pub pending: usize,
    /// Lines read from workers' stdout that were not an awaited reply (console output, late or
    /// duplicate replies, malformed JSON), discarded.
    pub discarded: u64,
    /// The process ids of the ready workers.
    pub pids: Vec<u32>,
}

impl SsrPool {
    /// A builder for a pool running `node <script>`; every option has a default:
    ///
    /// | option | default |
    /// |---|---|
    /// | program ([`with_program`](SsrPoolBuilder::with_program), [`with_command`](SsrPoolBuilder::with_command)) | `node <script>` |
    /// | [`with_workers`](SsrPoolBuilder::with_workers) | the number of CPUs, at most 8 |
    /// | [`with_render_timeout`](SsrPoolBuilder::with_render_timeout) | 5 s |
    /// | [`with_ready_timeout`](SsrPoolBuilder::with_ready_timeout) | 10 s |
    /// | [`with_queue_bound`](SsrPoolBuilder::with_queue_bound) | 64 renders |
    /// | [`with_queue_timeout`](SsrPoolBuilder::with_queue_timeout) | 5 s |
    /// | [`with_max_line_bytes`](SsrPoolBuilder::with_max_line_bytes) | 8 MiB |
    /// | [`with_health_check`](SsrPoolBuilder::with_health_check) | a ping after 10 s idle, answered within 2 s |
    /// | [`with_restart_backoff`](SsrPoolBuilder::with_restart_backoff) | 100 ms doubling up to 10 s |
    pub fn builder(script: impl Into<OsString>) -> SsrPoolBuilder {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        SsrPoolBuilder {
            config: Config {
                program: "node".into(),
                args: vec![script.into()],
                envs: Vec::new(),
                current_dir: None,
                workers: cpus.min(8),
                render_timeout: Duration::from_secs(5),
                ready_timeout: Duration::from_secs(10),
                queue_bound: 64,
                queue_timeout: Duration::from_secs(5),
                max_line_bytes: 8 * 1024 * 1024,
                ping_interval: Duration::from_secs(10),
                ping_timeout: Duration::from_secs(2),
                backoff_min: Duration::from_millis(100),
                backoff_max: Duration::from_secs(10),
            },
        }
    }

    /// Renders the registered `component` with `props` (serialized to a JSON object) to HTML.
    ///
    /// Fails fast with [`SsrError::Overloaded`] when every worker is busy and the queue is full.
    /// The future may be dropped at any point: a render already sent finishes in its worker
    /// (bounded by the render timeout) and its reply is discarded. It can be awaited from any
    /// executor while the runtime that built the pool runs.
    pub async fn render<P: Serialize + ?Sized>(
        &self,
        component: &str,
        props: &P,
    ) -> Result<Html, SsrError> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(SsrError::Closed);
        }
        let props = serde_json::value::to_raw_value(props).map_err(SsrError::Props)?;
        let permit = match shared.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(SsrError::Overloaded),
            Err(TryAcquireError::Closed) => return Err(SsrError::Closed),
        };
        let (picked_tx, picked_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        let job = Job {
            component: component.to_owned(),
            props,
            picked: picked_tx,
            reply: reply_tx,
            _permit: permit,
        };
        self.inner.jobs.send(job).map_err(|_| SsrError::Closed)?;
        // The timer belongs to the pool's runtime, so any executor can await this future.
        let queue_wait = {
            let _runtime = self.inner.runtime.enter();
            tokio::time::sleep(shared.config.queue_timeout)
        };
        tokio::select! {
            biased;
            picked = picked_rx => picked.map_err(|_| shared.unanswered())?,
            () = queue_wait => return Err(SsrError::Overloaded),
        }
        reply_rx.await.unwrap_or_else(|_| Err(shared.unanswered()))
    }

    /// A snapshot of the pool's counters and workers.
    pub fn stats(&self) -> SsrStats {
        let shared = &self.inner.shared;
        let pids: Vec<u32> = shared
            .slots
            .lock()
            .map(|slots| slots.iter().flatten().copied().collect())
            .unwrap_or_default();
        SsrStats {
            spawned: shared.counters.spawned.load(Ordering::Relaxed),
            ready: pids.len(),
            pending: shared.capacity - shared.permits.available_permits().min(shared.capacity),
            discarded: shared.counters.discarded.load(Ordering::Relaxed),
            pids,
        }
    }

    /// Stops the pool: new renders fail with [`SsrError::Closed`], renders in flight finish,
    /// queued ones fail with [`SsrError::Closed`], each worker's stdin is closed so it exits (it
    /// is killed after 2 s otherwise), and every process is collected before this returns.
    pub async fn shutdown(&self) {
        self.stop(Stop::Graceful).await;
    }

    async fn stop(&self, level: Stop) {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        shared.permits.close();
        self.inner.stop.send_if_modified(|s| raise(s, level));
        // Queued renders fail now (their callers see `Closed`), not after the renders in flight.
        {
            let mut queue = shared.queue.lock().await;
            queue.close();
            while queue.try_recv().is_ok() {}
        }
        // Held while waiting, so a second `shutdown` returns only once the first is done.
        let mut tasks = self.inner.tasks.lock().await;
        for task in tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// How a worker's service ended.
enum End {
    Stop(Stop),
    Replace(String),
}

/// Supervises one slot: starts a worker, serves renders, replaces it when it fails.
async fn run_slot(
    shared: Arc<Shared>,
    slot: usize,
    mut stop: watch::Receiver<Stop>,
    started: oneshot::Sender<Result<(), SsrError>>,
) {
    let config = &shared.config;
    let mut started = Some(started);
    let mut delay = config.backoff_min;
    loop {
        match Worker::start(config, &shared.counters, &mut stop).await {
            Err(SsrError::Closed) => return,
            Err(err) => {
                if let Some(started) = started.take() {
                    let _ = started.send(Err(err));
                    return;
                }
                tracing::warn!(slot, error = %err, retry_in = ?delay, "an SSR worker failed to start");
            }
            Ok(mut worker) => {
                if let Some(started) = started.take() {
                    let _ = started.send(Ok(()));
                }
                shared.set_slot(slot, worker.pid());
                let end = serve(&shared, &mut worker, &mut stop).await;
                shared.set_slot(slot, None);
                match end {
                    End::Stop(Stop::Kill) => {
                        worker.kill().await;
                        return;
                    }
                    End::Stop(_) => {
                        worker.shut_down(SHUTDOWN_GRACE).await;
                        return;
                    }
                    End::Replace(reason) => {
                        let pid = worker.pid();
                        let status = worker.kill().await;
                        tracing::warn!(slot, pid, ?status, %reason, retry_in = ?delay, "replacing an SSR worker");
                        if worker.proved_healthy {
                            delay = config.backoff_min;
                        }
                    }
                }
            }
        }
        tokio::select! {
            biased;
            _ = stopped(&mut stop, Stop::Graceful) => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = delay.saturating_mul(2).min(config.backoff_max);
    }
}

/// Serves renders with one worker until it must be replaced or the pool stops.
async fn serve(shared: &Shared, worker: &mut Worker, stop: &mut watch::Receiver<Stop>) -> End {
    let config = &shared.config;
    loop {
        // Any interval is accepted; one too long to add means "never".
        let ping_at = Instant::now()
            .checked_add(config.ping_interval)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
        let job = loop {
            tokio::select! {
                biased;
                level = stopped(stop, Stop::Graceful) => return End::Stop(level),
                line = worker.idle_line() => {
                    if let Err(reason) = line {
                        return End::Replace(reason);
                    }
                }
                job = next_job(shared) => match job {
                    Some(job) => break Some(job),
                    None => return End::Stop(Stop::Kill),
                },
                () = tokio::time::sleep_until(ping_at) => {
                    if let Err(reason) = worker.ping(config.ping_timeout).await {
                        return End::Replace(format!("health check failed: {reason}"));
                    }
                    // Healthy: start a new idle period.
                    break None;
                }
            }
        };
        let Some(job) = job else { continue };
        if job.picked.send(()).is_err() {
            continue;
        }
        let result = tokio::select! {
            biased;
            _ = stopped(stop, Stop::Kill) => return End::Stop(Stop::Kill),
            result = worker.render(&job.component, &job.props, config.render_timeout) => result,
        };
        let replace = match &result {
            Ok(_) | Err(SsrError::Render(_)) => None,
            Err(err) => Some(err.to_string()),
        };
        let _ = job.reply.send(result);
        if let Some(reason) = replace {
            return End::Replace(reason);
        }
    }
}

async fn next_job(shared: &Shared) -> Option<Job> {
    shared.queue.lock().await.recv().await
}
