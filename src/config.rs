//! The server configuration: every setting is a CLI flag and an `ACTIONSD_*` environment variable.

use crate::domain::duration::{parse_config, Duration};
use clap::Args;

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_config(s)
        .filter(|d| d.nanos >= 0)
        .ok_or_else(|| format!("invalid duration {s:?} (use e.g. 20s, 500ms, 5m, 24h, 7d)"))
}

/// A duration that must be more than zero (a bound of 0 would fail every run or request).
fn positive_duration_arg(s: &str) -> Result<Duration, String> {
    let d = duration_arg(s)?;
    if d.nanos == 0 {
        return Err(format!("{s:?} must be more than zero"));
    }
    Ok(d)
}

/// A count of at least one (workers, concurrent runs or attempts, kept rows).
fn count_arg(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(format!("{s:?} must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("invalid number {s:?}")),
    }
}

/// Most sandbox workers one server starts: each is a process (a few MiB idle, up to the action
/// memory limit busy) with three pipes; past this, run more servers instead.
pub const MAX_SANDBOX_WORKERS: usize = 1024;

/// A count from 1 to `max`; past it, the message says what the bound is.
fn count_up_to(s: &str, max: usize, bound: &str) -> Result<usize, String> {
    match count_arg(s)? {
        n if n > max => Err(format!("{s:?} is too many: at most {max} {bound}")),
        n => Ok(n),
    }
}

fn workers_arg(s: &str) -> Result<usize, String> {
    count_up_to(s, MAX_SANDBOX_WORKERS, "sandbox workers per server")
}

/// An organization's share of the sandbox workers: at most their number (a larger share is the
/// whole pool, which [`Config::org_concurrency`] gives anyway).
fn org_share_arg(s: &str) -> Result<usize, String> {
    count_up_to(s, MAX_SANDBOX_WORKERS, "(the most sandbox workers a server has)")
}

/// Most deliveries in flight at once: each is an outgoing HTTP call with its connection.
pub const MAX_DELIVERY_CONCURRENCY: usize = 10_000;

fn delivery_concurrency_arg(s: &str) -> Result<usize, String> {
    count_up_to(s, MAX_DELIVERY_CONCURRENCY, "deliveries in flight")
}

/// The smallest memory limit a run can start in (an empty realm takes a few MiB).
pub const MIN_ACTION_MEMORY: u64 = 4 << 20;

/// The largest memory limit a run may have (far beyond any machine's memory for one script).
pub const MAX_ACTION_MEMORY: u64 = 1 << 40;

fn memory_arg(s: &str) -> Result<u64, String> {
    let n = size_arg(s)?;
    if n < MIN_ACTION_MEMORY {
        return Err(format!("{s:?} is too small: a run needs at least 4MiB"));
    }
    if n > MAX_ACTION_MEMORY {
        return Err(format!("{s:?} is too large: at most 1024GiB"));
    }
    Ok(n)
}

fn log_format_arg(s: &str) -> Result<String, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        f @ ("text" | "json") => Ok(f.to_string()),
        _ => Err(format!("invalid log format {s:?} (text or json)")),
    }
}

/// Comma-separated browser origins (`scheme://host[:port]`), or `*` for any.
fn cors_arg(s: &str) -> Result<String, String> {
    let origins: Vec<&str> = s.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();
    if origins.contains(&"*") {
        if origins.len() > 1 {
            return Err("`*` (any origin) cannot be combined with other origins".into());
        }
        return Ok(s.to_string());
    }
    // Kept as browsers send them (`Origin`): host in lower case and ASCII (punycode), no default port.
    let mut normalized = Vec::with_capacity(origins.len());
    for origin in origins {
        let parsed = url::Url::parse(origin)
            .map_err(|_| format!("invalid origin {origin:?} (use e.g. https://app.example.com)"))?;
        let bare = parsed.path() == "/" && parsed.query().is_none() && parsed.fragment().is_none();
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() || !bare || origin.ends_with('/') {
            return Err(format!("invalid origin {origin:?} (use e.g. https://app.example.com)"));
        }
        normalized.push(parsed.origin().ascii_serialization());
    }
    Ok(normalized.join(","))
}

/// The URL clients reach this server at: the connector's `callUrl`s are built on it, so it is an
/// absolute http(s) URL with a host, and no query, fragment or credentials (the call path is
/// appended to it).
fn public_url_arg(s: &str) -> Result<String, String> {
    let wrong = || format!("invalid public URL {s:?} (use e.g. https://actions.example.com)");
    let parsed = url::Url::parse(s.trim()).map_err(|_| wrong())?;
    let plain = parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() || !plain || s.contains(['?', '#']) {
        return Err(wrong());
    }
    // As a client reaches it: host in lower case and ASCII (punycode), no default port.
    Ok(parsed.to_string())
}

fn body_budget_arg(s: &str) -> Result<u64, String> {
    let n = size_arg(s)?;
    if n < 1 << 20 {
        return Err("must be at least 1MiB (one request body)".into());
    }
    Ok(n)
}

/// The path of a SQLite URL as written (`sqlite://my%20db.db?mode=rwc` → `my%20db.db`; empty when
/// it names none).
pub fn sqlite_url_path(url: &str) -> &str {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    path.split('?').next().unwrap_or("")
}

/// The file a SQLite URL names, percent-decoded as the driver decodes it (`my%20db.db` is
/// `my db.db`), so that the lock and key files sit beside the database the driver opens. A path
/// that does not decode to UTF-8 is kept as written (the driver refuses it).
pub fn sqlite_file_path(url: &str) -> std::borrow::Cow<'_, str> {
    let path = sqlite_url_path(url);
    percent_encoding::percent_decode_str(path).decode_utf8().unwrap_or(std::borrow::Cow::Borrowed(path))
}

fn database_url_arg(s: &str) -> Result<String, String> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    // The URL as shown in an error leaves out its password.
    let shown = crate::database_url_shown(s);
    if s.starts_with("sqlite:") && sqlite_file_path(s).is_empty() {
        return Err(format!("database URL {shown} names no file (use sqlite://<file>?mode=rwc)"));
    }
    if known.iter().any(|k| s.starts_with(k)) {
        Ok(s.to_string())
    } else {
        Err(format!("unsupported database URL {shown} (use sqlite://<file>?mode=rwc or postgres://…)"))
    }
}

/// The deny and allow lists, checked when the configuration is read (before anything is created).
fn deny_list_arg(s: &str) -> Result<String, String> {
    crate::runtime::http::NetPolicy::parse(s, "")?;
    Ok(s.to_string())
}

fn allow_list_arg(s: &str) -> Result<String, String> {
    crate::runtime::http::NetPolicy::parse("", s)?;
    Ok(s.to_string())
}

/// A retry schedule: the waits after the 1st, 2nd, … failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<std::time::Duration>);

fn schedule_arg(s: &str) -> Result<Schedule, String> {
    let steps = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            // A step under 100ms would retry a failing delivery all but without pause until its
            // max age (thousands of attempts a minute against one receiver).
            duration_arg(p).map(|d| d.as_std()).and_then(|d| {
                if d < std::time::Duration::from_millis(100) {
                    Err(format!("retry step {p:?} must be at least 100ms"))
                } else {
                    Ok(d)
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if steps.is_empty() {
        return Err("the retry schedule needs at least one step".into());
    }
    Ok(Schedule(steps))
}

fn size_arg(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = [
        ("GiB", 1u64 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1_000),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suffix, m)| t.strip_suffix(suffix).map(|n| (n, *m)))
    .unwrap_or((t, 1));
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?} (use e.g. 64MiB)"))
}

/// A SQLite size limit: at least 512 KiB, since the schema alone takes about 280 KiB and a
/// smaller limit could only fail the start with a full-disk error after creating the files.
fn sqlite_size_arg(s: &str) -> Result<u64, String> {
    let size = size_arg(s)?;
    if size < 512 << 10 {
        return Err(format!("{s:?} is too small for the database: at least 512KiB"));
    }
    Ok(size)
}

pub const DEFAULT_DENY_LIST: &str = "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/4, 240.0.0.0/4, ::/128, ::1/128, fc00::/7, fe80::/10, ff00::/8, localhost, *.localhost";

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// SQLite file (embedded default) or postgres://… URL.
    #[arg(long, env = "ACTIONSD_DATABASE_URL", default_value = "sqlite://actionsd.db?mode=rwc", value_parser = database_url_arg, hide_env_values = true)]
    pub database_url: String,

    /// Longest wait of a request for a database connection before it gets 503 Unavailable.
    #[arg(long, env = "ACTIONSD_DB_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = positive_duration_arg)]
    pub db_acquire_timeout: Duration,

    /// SQLite: largest size the database's pages may take (e.g. 10GiB; the -wal file can add a few MiB until a checkpoint); writes past it get 503
    /// like a full disk. Unset: limited by the disk only.
    #[arg(long, env = "ACTIONSD_SQLITE_MAX_SIZE", value_parser = sqlite_size_arg)]
    pub sqlite_max_size: Option<u64>,

    /// Listen address.
    #[arg(long, env = "ACTIONSD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// The URL clients reach this server at (e.g. https://actions.example.com); it prefixes the
    /// connector's callUrl. Unset: callUrl is only the path.
    #[arg(long, env = "ACTIONSD_PUBLIC_URL", value_parser = public_url_arg)]
    pub public_url: Option<String>,

    /// If set, (re)registered at start as an IAM_OWNER token of the default org.
    #[arg(long, env = "ACTIONSD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Where a generated bootstrap admin token is written (mode 0600).
    #[arg(long, env = "ACTIONSD_ADMIN_TOKEN_FILE", default_value = "actionsd-admin.token")]
    pub admin_token_file: String,

    /// Upper bound for an action's timeout.
    #[arg(long, env = "ACTIONSD_MAX_ACTION_TIMEOUT", default_value = "20s", value_parser = positive_duration_arg)]
    pub max_action_timeout: Duration,

    /// What actions' fetch and v2 targets may not reach.
    #[arg(long, env = "ACTIONSD_HTTP_DENY_LIST", default_value = DEFAULT_DENY_LIST, value_parser = deny_list_arg)]
    pub http_deny_list: String,

    /// Addresses and names allowed even if denied.
    #[arg(long, env = "ACTIONSD_HTTP_ALLOW_LIST", default_value = "", value_parser = allow_list_arg)]
    pub http_allow_list: String,

    /// Concurrent action runs on this server (default: 2 × cores).
    #[arg(long, env = "ACTIONSD_SANDBOX_WORKERS", value_parser = workers_arg)]
    pub sandbox_workers: Option<usize>,

    /// Concurrent runs one organization may hold (default: half of the workers).
    #[arg(long, env = "ACTIONSD_ORG_CONCURRENCY", value_parser = org_share_arg)]
    pub org_concurrency: Option<usize>,

    /// How long a run may wait for a worker before the request gets 503.
    #[arg(long, env = "ACTIONSD_QUEUE_TIMEOUT", default_value = "5s", value_parser = duration_arg)]
    pub queue_timeout: Duration,

    /// Wall clock for all actions of one _execute.
    #[arg(long, env = "ACTIONSD_MAX_TRIGGER_TIME", default_value = "60s", value_parser = positive_duration_arg)]
    pub max_trigger_time: Duration,

    /// Longest a client may take to send a request: the first bytes on a new connection, the
    /// headers of each request, and its body (408 when the body is late). Slower clients are cut
    /// off instead of holding a connection.
    #[arg(long, env = "ACTIONSD_REQUEST_READ_TIMEOUT", default_value = "30s", value_parser = positive_duration_arg)]
    pub request_read_timeout: Duration,

    /// Most bytes of request bodies over 16 KiB that calls in flight may hold at once (each is
    /// parsed into a message many times its size); a call past it waits up to
    /// `--queue-timeout`, then gets 503 with Retry-After. At least 1 MiB (one body).
    #[arg(long, env = "ACTIONSD_MAX_BODY_BYTES_IN_FLIGHT", default_value = "32MiB", value_parser = body_budget_arg)]
    pub max_body_bytes_in_flight: u64,

    /// Most client connections open at once (default: the open-file limit less 1024, kept for the
    /// database, sandbox workers and outgoing calls). A connection past it is closed at once.
    #[arg(long, env = "ACTIONSD_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Most connections open at once from one client address (default: a quarter of
    /// `--max-connections`, at least 256). Behind a proxy every client has the proxy's address.
    #[arg(long, env = "ACTIONSD_MAX_CONNECTIONS_PER_IP", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_ip: Option<u64>,

    /// Memory per action run.
    #[arg(long, env = "ACTIONSD_ACTION_MEMORY_LIMIT", default_value = "64MiB", value_parser = memory_arg)]
    pub action_memory_limit: u64,

    /// How long run records are kept.
    #[arg(long, env = "ACTIONSD_RUN_RETENTION", default_value = "7d", value_parser = positive_duration_arg)]
    pub run_retention: Duration,

    /// Most run records kept per organization (and most recorded `_execute` contexts).
    #[arg(long, env = "ACTIONSD_RUN_MAX_ROWS", default_value = "100000", value_parser = clap::value_parser!(u64).range(1..))]
    pub run_max_rows: u64,

    /// Key that encrypts stored secrets at rest: signing keys, tokens, action secrets, queued
    /// bodies (required with PostgreSQL).
    #[arg(long, env = "ACTIONSD_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// After this a failing delivery is dead.
    #[arg(long, env = "ACTIONSD_DELIVERY_MAX_AGE", default_value = "24h", value_parser = positive_duration_arg)]
    pub delivery_max_age: Duration,

    /// Waits between delivery attempts, comma-separated; the last one repeats until the max age.
    #[arg(long, env = "ACTIONSD_DELIVERY_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,30m,1h,3h,6h", value_parser = schedule_arg)]
    pub delivery_retry_schedule: Schedule,

    /// Delivery attempts in flight at once on this server.
    #[arg(long, env = "ACTIONSD_DELIVERY_CONCURRENCY", default_value = "64", value_parser = delivery_concurrency_arg)]
    pub delivery_concurrency: usize,

    /// How often the queue is polled for work committed through other replicas and for due retries.
    #[arg(long, env = "ACTIONSD_DELIVERY_POLL_INTERVAL", default_value = "100ms", value_parser = duration_arg)]
    pub delivery_poll_interval: Duration,

    /// Allowed browser origins for CORS, comma-separated (empty: no CORS).
    #[arg(long, env = "ACTIONSD_CORS_ORIGINS", default_value = "", value_parser = cors_arg)]
    pub cors_origins: String,

    /// The executable started for sandbox workers (default: this program).
    #[arg(long, env = "ACTIONSD_SANDBOX_EXE", hide = true)]
    pub sandbox_exe: Option<String>,

    /// TLS certificate chain (PEM, leaf first) for the API port; with `--tls-key-file`, every
    /// transport is served over HTTPS (HTTP/2 by ALPN for gRPC). Unset: plain HTTP and h2c.
    #[arg(long, env = "ACTIONSD_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<String>,

    /// The private key (PEM) of `--tls-cert-file`.
    #[arg(long, env = "ACTIONSD_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<String>,

    /// Log format: text or json.
    #[arg(long, env = "ACTIONSD_LOG_FORMAT", default_value = "text", value_parser = log_format_arg)]
    pub log_format: String,

    /// Checks every JSON answer against its protobuf message (unknown fields refused) and fails
    /// the call with 500 if it does not fit: for tests and debugging, not for production.
    #[arg(long, env = "ACTIONSD_CHECK_PROTO_ANSWERS", hide = true)]
    pub check_proto_answers: bool,
}

impl Config {
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://") || self.database_url.starts_with("postgresql://")
    }

    pub fn db_options(&self) -> crate::store::DbOptions {
        crate::store::DbOptions {
            acquire_timeout: self.db_acquire_timeout.as_std().max(std::time::Duration::from_millis(10)),
            sqlite_max_size: self.sqlite_max_size,
        }
    }

    pub fn workers(&self) -> usize {
        self.sandbox_workers
            .unwrap_or_else(|| 2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
            .clamp(1, MAX_SANDBOX_WORKERS)
    }

    /// The connection bounds: (total, per client address). The defaults follow `files`, the
    /// open-file limit (raised to its hard limit at start, see
    /// [`crate::listen::raise_open_file_limit`]).
    pub fn connection_limits(&self, files: u64) -> (usize, usize) {
        let total = self.max_connections.unwrap_or_else(|| files.saturating_sub(1024).max(64));
        let per_ip = self.max_connections_per_ip.unwrap_or((total / 4).max(256));
        let clamp = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        (clamp(total), clamp(per_ip.min(total)))
    }

    pub fn org_concurrency(&self) -> usize {
        self.org_concurrency.unwrap_or_else(|| self.workers() / 2).clamp(1, self.workers())
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    }

    /// A configuration with defaults, for tests and embedding.
    pub fn for_database(url: &str) -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Defaults only: the surrounding environment's ACTIONSD_* variables are not read.
        use clap::{CommandFactory, FromArgMatches};
        let cmd = Wrapper::command().mut_args(|a| a.env(None::<&'static str>));
        let matches = cmd.get_matches_from(["actionsd"]);
        let mut c = Wrapper::from_arg_matches(&matches).expect("the defaults parse").config;
        c.database_url = url.to_string();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_ignore_the_environment() {
        // A variable that would change the default if it were read (set for this process only;
        // other tests do not read this one).
        std::env::set_var("ACTIONSD_RUN_MAX_ROWS", "7");
        let c = Config::for_database("sqlite::memory:");
        std::env::remove_var("ACTIONSD_RUN_MAX_ROWS");
        assert_eq!(c.run_max_rows, 100_000);
        assert_eq!(c.database_url, "sqlite::memory:");
    }

    /// Settings that would break every run or request are refused at start, with a clear text.
    #[test]
    fn nonsense_values_are_refused() {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        use clap::{CommandFactory, FromArgMatches};
        let parse = |args: &[&str]| {
            let cmd = Wrapper::command().mut_args(|a| a.env(None::<&'static str>));
            let mut all = vec!["actionsd"];
            all.extend_from_slice(args);
            cmd.try_get_matches_from(all)
                .map_err(|e| e.to_string())
                .and_then(|m| Wrapper::from_arg_matches(&m).map_err(|e| e.to_string()))
                .map(|w| w.config)
        };
        for (args, says) in [
            (&["--max-action-timeout", "0s"][..], "must be more than zero"),
            (&["--max-trigger-time", "0s"], "must be more than zero"),
            (&["--run-retention", "0s"], "must be more than zero"),
            (&["--delivery-max-age", "0s"], "must be more than zero"),
            (&["--db-acquire-timeout", "0s"], "must be more than zero"),
            (&["--action-memory-limit", "1KiB"], "at least 4MiB"),
            (&["--action-memory-limit", "0"], "at least 4MiB"),
            (&["--sandbox-workers", "0"], "at least 1"),
            (&["--sandbox-workers", "1025"], "at most 1024 sandbox workers"),
            (&["--sandbox-workers", "100000"], "at most 1024 sandbox workers"),
            (&["--org-concurrency", "1025"], "at most 1024"),
            (&["--org-concurrency", "2305843009213693952"], "at most 1024"),
            (&["--delivery-concurrency", "10001"], "at most 10000 deliveries"),
            (&["--delivery-concurrency", "2305843009213693952"], "at most 10000 deliveries"),
            (&["--org-concurrency", "0"], "at least 1"),
            (&["--delivery-concurrency", "0"], "at least 1"),
            (&["--run-max-rows", "0"], "0"),
            (&["--log-format", "xml"], "text or json"),
            (&["--cors-origins", "not an origin"], "invalid origin"),
            (&["--cors-origins", "https://a.example.com/path"], "invalid origin"),
            (&["--cors-origins", "*, https://a.example.com"], "cannot be combined"),
            (&["--database-url", "mysql://x@y/z"], "unsupported database URL"),
            (&["--database-url", "sqlite://"], "names no file"),
            (&["--database-url", "sqlite:"], "names no file"),
            (&["--database-url", "sqlite://?mode=rwc"], "names no file"),
            (&["--action-memory-limit", "9223372036854775808"], "at most 1024GiB"),
            (&["--action-memory-limit", "1025GiB"], "at most 1024GiB"),
            (&["--database-url", "actionsd2.db"], "unsupported database URL"),
            (&["--http-deny-list", "10.0.0.0/33"], "invalid deny list entry"),
            (&["--http-allow-list", "bad name!"], "invalid allow list entry"),
            (&["--public-url", "notaurl"], "invalid public URL"),
            (&["--max-body-bytes-in-flight", "64KiB"], "at least 1MiB"),
            (&["--delivery-retry-schedule", "0s"], "at least 100ms"),
            (&["--delivery-retry-schedule", "5s,0.000000001s"], "at least 100ms"),
            (&["--sqlite-max-size", "1KiB"], "at least 512KiB"),
            (&["--sqlite-max-size", "0"], "at least 512KiB"),
            (&["--public-url", "ftp://actions.example.com"], "invalid public URL"),
            (&["--public-url", "https://actions.example.com/base?x=1"], "invalid public URL"),
            (&["--public-url", "https://actions.example.com/#top"], "invalid public URL"),
            (&["--public-url", "https://user:pw@actions.example.com"], "invalid public URL"),
        ] {
            let err = parse(args).expect_err(&format!("{args:?} should be refused"));
            assert!(err.contains(says), "{args:?}: {err}");
        }
        let c =
            parse(&["--log-format", "JSON", "--cors-origins", "https://a.example.com, http://localhost:3000"]).unwrap();
        assert_eq!(c.log_format, "json");
        assert_eq!(c.cors_origins(), ["https://a.example.com", "http://localhost:3000"]);
        assert_eq!(parse(&["--cors-origins", "*"]).unwrap().cors_origins(), ["*"]);
        // Origins and the public URL as browsers and clients spell them.
        let c = parse(&[
            "--cors-origins",
            "http://A.Example:80, https://ü.example:8443",
            "--public-url",
            "HTTPS://Actions.Example.com:443/Base",
        ])
        .unwrap();
        assert_eq!(c.cors_origins(), ["http://a.example", "https://xn--tda.example:8443"]);
        assert_eq!(c.public_url.as_deref(), Some("https://actions.example.com/Base"));
        assert!(parse(&["--database-url", "sqlite::memory:"]).is_ok());
        assert_eq!(parse(&["--action-memory-limit", "1024GiB"]).unwrap().action_memory_limit, 1 << 40);
        assert_eq!(parse(&["--sandbox-workers", "1024"]).unwrap().workers(), MAX_SANDBOX_WORKERS);
        assert_eq!(parse(&["--delivery-concurrency", "10000"]).unwrap().delivery_concurrency, 10_000);
        // A share larger than the pool is the pool.
        let c = parse(&["--sandbox-workers", "4", "--org-concurrency", "1024"]).unwrap();
        assert_eq!(c.org_concurrency(), 4);
        let public = parse(&["--public-url", "https://actions.example.com/base/"]).unwrap().public_url;
        assert_eq!(public.as_deref(), Some("https://actions.example.com/base/"));
        assert_eq!(
            parse(&["--queue-timeout", "0s"]).unwrap().queue_timeout.nanos,
            0,
            "no wait for a worker is a choice"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size_arg("64MiB").unwrap(), 64 << 20);
        assert_eq!(size_arg("1000").unwrap(), 1000);
        assert!(size_arg("lots").is_err());
    }
}
