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
    pub deny_list: String,
    pub allow_list: String,
}
