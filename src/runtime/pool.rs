//! The server side of the sandbox: a pool of warm worker processes, per-organization slots,
//! and the hard deadline (the worker is killed when a run passes it).

use super::{Job, JobResult};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub struct PoolConfig {
    pub exe: PathBuf,
    pub workers: usize,
    pub org_concurrency: usize,
    pub queue_timeout: Duration,
    pub memory_limit: u64,
    pub deny_list: String,
    pub allow_list: String,
}

/// Why a run did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum RunFailure {
    /// The deadline passed; the worker was killed.
    Timeout,
    /// The script's top level ran past its own bound (`min(5s, timeout)`); the worker was killed.
    TopLevelTimeout(Duration),
    /// The worker ran out of its memory allowance.
    Memory,
    /// The worker died for another reason.
    Crashed(String),
}

/// A run that produced no result: why, and what it had logged until then (read from its
/// worker's [`super::LogSpill`] file).
#[derive(Debug)]
pub struct Failed {
    pub failure: RunFailure,
    pub logs: Vec<super::LogRecord>,
    /// The HTTP calls it had started.
    pub http_calls: u32,
}

impl From<RunFailure> for Failed {
    fn from(failure: RunFailure) -> Self {
        Failed { failure, logs: Vec::new(), http_calls: 0 }
    }
}

struct Worker {
    /// Its process id and the sandbox directory: where its log file is.
    pid: Option<u32>,
    dir: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
    /// Ends when the worker's stderr is closed (so all of it has been read).
    stderr_done: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Worker {
    /// Its log file goes with it (kept, unread, only while the process lives).
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            super::LogSpill::remove(&self.dir, pid);
        }
    }
}

#[derive(Default)]
pub struct PoolStats {
    pub busy: std::sync::atomic::AtomicI64,
    pub restarted: std::sync::atomic::AtomicU64,
    /// When a failed worker start was last logged: seconds since the pool's start, plus one.
    spawn_failure_logged: std::sync::atomic::AtomicU64,
}

/// The standard variables that point outgoing TLS at other trust roots (README, Configuration).
const TRUST_STORE_VARS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

pub struct SandboxPool {
    config: PoolConfig,
    idle: Mutex<Vec<Worker>>,
    slots: Arc<Semaphore>,
    org_slots: Mutex<HashMap<i64, Arc<Semaphore>>>,
    pub stats: PoolStats,
    /// The workers' working directory: empty, so nothing they could reach is on disk; private
    /// (0700, a random name) and removed with the pool. Their log spill files are kept there.
    /// None when no private directory could be made: workers then run in `/` and spill no logs.
    dir_guard: Option<PrivateDir>,
    started: Instant,
}

/// A sandbox directory and the lock that marks it as in use: held (an exclusive `flock`) for as
/// long as the server lives, released by the kernel when it ends, also by `kill -9`.
struct PrivateDir {
    dir: tempfile::TempDir,
    _owner: std::fs::File,
}

const DIR_PREFIX: &str = "actionsd-sandbox-";
const OWNER_LOCK: &str = ".owner.lock";

impl PrivateDir {
    /// Makes this pool's directory, then removes the ones that servers which ended without
    /// cleaning up (`kill -9`, a crash) left behind, with their workers' log spill files.
    fn create() -> Option<PrivateDir> {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o700);
        let dir = tempfile::Builder::new().prefix(DIR_PREFIX).permissions(private).tempdir().ok()?;
        // Locked before it takes its name, so a sweep never finds it unlocked.
        let staging = dir.path().join(".owner.lock.new");
        let owner = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staging).ok()?
        };
        owner.try_lock().ok()?;
        std::fs::rename(&staging, dir.path().join(OWNER_LOCK)).ok()?;
        sweep_abandoned(dir.path());
        Some(PrivateDir { dir, _owner: owner })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Removes the sandbox directories (beside `own`) whose owner lock nobody holds. One without a
/// lock file is left alone: it is being made, or is not ours to judge.
fn sweep_abandoned(own: &std::path::Path) {
    let Some(parent) = own.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_str().is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !ours || path == own || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(lock) = std::fs::File::open(path.join(OWNER_LOCK)) else { continue };
        if lock.try_lock().is_ok() {
            drop(lock);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed the sandbox directory of an ended server"),
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "could not remove a stale sandbox directory")
                }
            }
        }
    }
}

/// Permission to run actions: one worker slot, counted against the organization's share.
pub struct Slot {
    _org: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl SandboxPool {
    pub fn new(config: PoolConfig) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(config.workers));
        let dir_guard = PrivateDir::create();
        Arc::new(SandboxPool {
            config,
            idle: Mutex::new(Vec::new()),
            slots,
            org_slots: Mutex::new(HashMap::new()),
            stats: PoolStats::default(),
            dir_guard,
            started: Instant::now(),
        })
    }

    /// The workers' private directory (`/` if none could be made).
    pub fn dir(&self) -> &std::path::Path {
        self.dir_guard.as_ref().map_or(std::path::Path::new("/"), |d| d.path())
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Starts the workers ahead of the first request, yielding after each one: starting a
    /// process takes milliseconds, and a long start must neither hold a runtime thread nor keep
    /// a stopping server waiting (the task is dropped at its next yield).
    pub async fn warm(self: &Arc<Self>) {
        for _ in 0..self.config.workers {
            match self.spawn() {
                Ok(w) => self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(w),
                // Logged by `spawn`; runs start workers on demand.
                Err(_) => break,
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits (bounded by the queue timeout) for the org's share and a free worker slot.
    pub async fn acquire(&self, org: i64) -> Option<Slot> {
        let deadline = Instant::now() + self.config.queue_timeout;
        let org_sem = {
            let mut map = self.org_slots.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(org).or_insert_with(|| Arc::new(Semaphore::new(self.config.org_concurrency))).clone()
        };
        let org_permit = tokio::time::timeout_at(deadline, org_sem.acquire_owned()).await.ok()?.ok()?;
        let global = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await.ok()?.ok()?;
        Some(Slot { _org: org_permit, _global: global })
    }

    /// A new worker. The private directory is made again if something removed it (an age-based
    /// `/tmp` cleaner on a quiet server), and a binary removed from disk since the start is
    /// started through `/proc/self/exe`, the running one. A failure is
    /// logged (at most every 10 s): without workers, every action run fails.
    fn spawn(&self) -> std::io::Result<Worker> {
        let spawned = match self.restore_dir().and_then(|()| self.spawn_from(&self.config.exe)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.config.exe.exists() => {
                self.spawn_from(std::path::Path::new("/proc/self/exe"))
            }
            other => other,
        };
        if let Err(e) = &spawned {
            let now = self.started.elapsed().as_secs() + 1;
            let last = self.stats.spawn_failure_logged.load(std::sync::atomic::Ordering::Relaxed);
            if last == 0 || now >= last + 10 {
                self.stats.spawn_failure_logged.store(now, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %e, exe = %self.config.exe.display(), "cannot start a sandbox worker: action runs fail until one starts");
            }
        }
        spawned
    }

    /// Makes the private directory again when it is gone. What is found at its path must be a
    /// directory of this user's, private (0700), not a link: in a shared `/tmp` another user
    /// could put one there after a cleaner removed ours. Anything else is an error (no worker
    /// starts, and `spawn` logs it).
    fn restore_dir(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let Some(dir) = &self.dir_guard else { return Ok(()) };
        match std::fs::symlink_metadata(dir.path()) {
            Ok(meta) => {
                // `/proc/self` belongs to this process's user.
                let uid = std::fs::metadata("/proc/self")?.uid();
                if meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "{} is not a private directory of this user's",
                        dir.path().display()
                    )))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Without its lock file: another server's sweep leaves a directory without one alone.
                std::fs::DirBuilder::new().mode(0o700).create(dir.path())?;
                tracing::warn!(path = %dir.path().display(), "the sandbox directory was removed; made it again");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn spawn_from(&self, exe: &std::path::Path) -> std::io::Result<Worker> {
        let mut command = Command::new(exe);
        command.arg("sandbox-worker").arg("--memory-limit").arg(self.config.memory_limit.to_string());
        if self.dir_guard.is_some() {
            command.arg("--log-dir").arg(self.dir());
        }
        command.env_clear();
        // The trust store settings reach `fetch` too (made absolute: workers run elsewhere).
        for name in TRUST_STORE_VARS {
            if let Some(value) = std::env::var_os(name) {
                let path = PathBuf::from(value);
                let path = if path.is_relative() { std::env::current_dir()?.join(path) } else { path };
                command.env(name, path);
            }
        }
        let mut child = command
            .current_dir(self.dir())
            .env("MALLOC_ARENA_MAX", "1")
            // mimalloc reserves its arenas (1 GiB) committed on Linux by default; reserved
            // without access instead, only what is really committed counts against the
            // worker's RLIMIT_DATA (the memory cap).
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            .env("ACTIONSD_HTTP_DENY_LIST", &self.config.deny_list)
            .env("ACTIONSD_HTTP_ALLOW_LIST", &self.config.allow_list)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?);
        let stderr_buf = Arc::new(Mutex::new(String::new()));
        let mut stderr_done = None;
        if let Some(mut stderr) = child.stderr.take() {
            let buf = stderr_buf.clone();
            stderr_done = Some(tokio::spawn(async move {
                let mut chunk = vec![0u8; 4096];
                while let Ok(n) = stderr.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                    b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if b.len() > 16 * 1024 {
                        let cut = b.len() - 8 * 1024;
                        let cut = (cut..b.len()).find(|i| b.is_char_boundary(*i)).unwrap_or(b.len());
                        b.drain(..cut);
                    }
                }
            }));
        }
        Ok(Worker {
            pid: child.id(),
            dir: self.dir().to_path_buf(),
            child,
            stdin,
            stdout,
            stderr: stderr_buf,
            stderr_done,
        })
    }

    fn take_worker(&self) -> std::io::Result<Worker> {
        if let Some(w) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(w);
        }
        self.spawn()
    }

    fn replace_in_background(self: &Arc<Self>) {
        self.stats.restarted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pool = self.clone();
        tokio::spawn(async move {
            if let Ok(w) = pool.spawn() {
                let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < pool.config.workers {
                    idle.push(w);
                }
            }
        });
    }

    /// Runs one job on a worker, holding `slot`, until `deadline`.
    pub async fn run(self: &Arc<Self>, _slot: &Slot, job: &Job, deadline: Instant) -> Result<JobResult, Failed> {
        let mut worker = self.take_worker().map_err(|e| RunFailure::Crashed(format!("cannot start a worker: {e}")))?;
        // Counted down on drop too: a request cancelled mid-run (its client went away) drops this
        // future, and the worker with it (killed on drop, its state unknown).
        let busy = Busy::start(&self.stats.busy);
        let outcome = self.exchange(&mut worker, job, deadline).await;
        drop(busy);
        match outcome {
            Ok(result) if result.retire => {
                // Its memory headroom has shrunk: a fresh worker takes its place.
                let _ = worker.child.start_kill();
                tokio::spawn(async move {
                    let _ = worker.child.wait().await;
                });
                self.replace_in_background();
                Ok(result)
            }
            Ok(result) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < self.config.workers {
                    idle.push(worker);
                }
                Ok(result)
            }
            Err(failure) => {
                // The worker is dead or runs away: kill it and start a fresh one.
                let _ = worker.child.start_kill();
                let failure = match failure {
                    RunFailure::Crashed(_) => {
                        let status = tokio::time::timeout(Duration::from_secs(2), worker.child.wait()).await;
                        if let Some(reader) = worker.stderr_done.take() {
                            let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
                        }
                        let stderr = worker.stderr.lock().map(|s| s.clone()).unwrap_or_default();
                        classify_crash(
                            status.ok().and_then(|s| s.ok()),
                            &stderr,
                            Duration::from_millis(job.top_level_ms),
                        )
                    }
                    other => other,
                };
                let spilled = worker.pid.map(|pid| super::LogSpill::take(&worker.dir, pid)).unwrap_or_default();
                tokio::spawn(async move {
                    let _ = worker.child.wait().await;
                });
                self.replace_in_background();
                Err(Failed { failure, logs: spilled.logs, http_calls: spilled.http_calls })
            }
        }
    }

    async fn exchange(&self, worker: &mut Worker, job: &Job, deadline: Instant) -> Result<JobResult, RunFailure> {
        let mut line = serde_json::to_vec(job).map_err(|e| RunFailure::Crashed(e.to_string()))?;
        line.push(b'\n');
        let io = async {
            worker.stdin.write_all(&line).await?;
            worker.stdin.flush().await?;
            let mut answer = String::new();
            let n = worker.stdout.read_line(&mut answer).await?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "worker exited"));
            }
            Ok(answer)
        };
        match tokio::time::timeout_at(deadline, io).await {
            Err(_) => Err(RunFailure::Timeout),
            Ok(Err(e)) => Err(RunFailure::Crashed(e.to_string())),
            Ok(Ok(answer)) => {
                serde_json::from_str(&answer).map_err(|e| RunFailure::Crashed(format!("bad answer: {e}")))
            }
        }
    }
}

/// One run counted in [`PoolStats::busy`] while it lives.
struct Busy<'a>(&'a std::sync::atomic::AtomicI64);

impl<'a> Busy<'a> {
    fn start(counter: &'a std::sync::atomic::AtomicI64) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(counter)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn classify_crash(status: Option<std::process::ExitStatus>, stderr: &str, top_level: Duration) -> RunFailure {
    if stderr.contains(super::worker::TOP_LEVEL_EXIT) {
        return RunFailure::TopLevelTimeout(top_level);
    }
    if stderr.contains(super::worker::DEADLINE_EXIT) {
        return RunFailure::Timeout;
    }
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        return RunFailure::Memory;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.and_then(|s| s.signal()) {
            let name = match sig {
                11 => "SIGSEGV (stack overflow)".to_string(),
                6 => "SIGABRT".to_string(),
                9 => "SIGKILL".to_string(),
                other => format!("signal {other}"),
            };
            let detail = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            return RunFailure::Crashed(if detail.is_empty() { name } else { format!("{name}: {detail}") });
        }
    }
    match status.and_then(|s| s.code()) {
        Some(code) => RunFailure::Crashed(format!("exit code {code}")),
        None => RunFailure::Crashed("worker died".into()),
    }
}
