//! The v1 JavaScript runtime.
//! subcommand `sandbox-worker`), one fresh Boa realm per run. The server talks to a worker over
//! its stdin/stdout (one JSON line per job and per result) and enforces the hard limits from
//! outside: it kills a worker whose run passes its deadline, and the worker's OS data limit
//! (RLIMIT_DATA) makes an allocation past the memory cap abort the process. A killed or crashed
//! worker fails only its run and is replaced.

pub mod api;
pub mod bench;
pub mod http;
pub mod pool;
pub mod secrets;
pub mod sort;
pub mod trigger;
pub mod worker;

use serde::{Deserialize, Serialize};

/// One action run, as sent to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub script: String,
    /// The action's name: the global function called as `name(ctx, api)`.
    pub name: String,
    pub flow: i32,
    pub trigger: i32,
    /// The host's `context` from `_execute`.
    pub context: serde_json::Value,
    /// Effects of the actions that succeeded before this one.
    pub state: serde_json::Value,
    /// Milliseconds the top-level evaluation may take (`min(5s, timeout)`).
    pub top_level_ms: u64,
    /// Milliseconds the whole run may take from when the worker reads it (0: no bound of its
    /// own). The server sets it from the run's deadline when it sends the job; the worker ends
    /// itself shortly after it, should the server not be there to kill it.
    #[serde(default)]
    pub deadline_ms: u64,
    /// The organization's secrets (name → value) for `require("zitadel/secrets")`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// A replay with `FETCH_DENY`: every `fetch` throws (catchable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deny_fetch: bool,
}

/// Put in a run's context when its `fetch` must throw (a replay with `FETCH_DENY`).
pub struct FetchDenied;

/// What a run that ended without an answer had left in its worker's [`LogSpill`] file.
#[derive(Debug, Default)]
pub struct Spilled {
    pub logs: Vec<LogRecord>,
    pub http_calls: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpilledCount {
    http_calls: u32,
}

/// A worker's log records of the run in progress, also written to a file of its own in the
/// sandbox directory as they are made. A run killed at its deadline, out of memory or crashed
/// answers nothing and its memory is gone; the server then reads what it had logged from the file
/// (the records up to the moment it stopped, where an author debugging a timeout looks first).
pub struct LogSpill {
    file: std::cell::RefCell<std::fs::File>,
    /// Whether the file holds records of the current run.
    dirty: std::cell::Cell<bool>,
}

impl LogSpill {
    /// The file of the worker with process id `pid` in the sandbox directory `dir`.
    pub fn path(dir: &std::path::Path, pid: u32) -> std::path::PathBuf {
        dir.join(format!("worker-{pid}.log"))
    }

    /// In the worker: its file in `dir` (the private directory its pool named on its command
    /// line), created new and readable by its owner only.
    pub fn create(dir: &std::path::Path) -> Option<std::rc::Rc<Self>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(Self::path(dir, std::process::id()))
            .ok()?;
        Some(std::rc::Rc::new(LogSpill { file: std::cell::RefCell::new(file), dirty: std::cell::Cell::new(false) }))
    }

    /// After a run has answered: its records go (a file write only after a run that logged), so
    /// that what a run logged is on disk only while it runs.
    pub fn end_run(&self) {
        use std::io::Seek;
        if self.dirty.replace(false) {
            let mut file = self.file.borrow_mut();
            let _ = file.set_len(0);
            let _ = file.seek(std::io::SeekFrom::Start(0));
        }
    }

    /// Writes `record` (made with the run's secrets already redacted).
    pub fn append(&self, record: &LogRecord) {
        if let Ok(line) = serde_json::to_vec(record) {
            self.write_line(line);
        }
    }

    /// Notes that the run made its `count`th HTTP call (counted as it starts, so that a run killed
    /// during a `fetch` reports it).
    pub fn http_call(&self, count: u32) {
        if let Ok(line) = serde_json::to_vec(&SpilledCount { http_calls: count }) {
            self.write_line(line);
        }
    }

    fn write_line(&self, mut line: Vec<u8>) {
        use std::io::Write;
        self.dirty.set(true);
        line.push(b'\n');
        let _ = self.file.borrow_mut().write_all(&line);
    }

    /// In the server, after the worker with `pid` ended without an answer: the records its run had
    /// made (at most what a run keeps; a line cut short by the kill is left out). The file goes.
    pub fn take(dir: &std::path::Path, pid: u32) -> Spilled {
        use std::io::Read;
        let path = Self::path(dir, pid);
        let mut text = String::new();
        if let Ok(file) = std::fs::File::open(&path) {
            let _ = file.take(256 * 1024).read_to_string(&mut text);
        }
        let _ = std::fs::remove_file(&path);
        let mut spilled = Spilled::default();
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<LogRecord>(line) {
                spilled.logs.push(record);
            } else if let Ok(count) = serde_json::from_str::<SpilledCount>(line) {
                spilled.http_calls = spilled.http_calls.max(count.http_calls);
            }
        }
        spilled
    }

    /// In the server, when a worker ends after answering: its file goes.
    pub fn remove(dir: &std::path::Path, pid: u32) {
        let _ = std::fs::remove_file(Self::path(dir, pid));
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogRecord {
    pub level: String,
    pub message: String,
    pub time: String,
}

/// What a worker answers for one job.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    /// The new effects state (only when `ok`).
    #[serde(default)]
    pub state: Option<serde_json::Value>,
    #[serde(default)]
    pub logs: Vec<LogRecord>,
    #[serde(default)]
    pub http_calls: u32,
    #[serde(default)]
    pub log_bytes: u64,
    /// The worker asks to be replaced after this answer: its data segment has grown past half of
    /// the run memory limit over its start (the allocator keeps what a large run mapped), which
    /// would shrink the next run's headroom, maybe another organization's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retire: bool,
}

/// Worker settings passed on its command line.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub memory_limit: u64,
    /// The directory of the worker's [`LogSpill`] file (the pool's sandbox directory).
    pub log_dir: Option<std::path::PathBuf>,
    pub deny_list: String,
    pub allow_list: String,
}
