//! Failure paths with the real binary: a full SQLite database or disk never yields an
//! acknowledged write that is lost, a PostgreSQL outage gets fast 503s and heals by itself, and
//! sandbox workers never outlive their server or their deadline.

use crate::common;

use common::process::Process;
use common::receiver::{Answer, Receiver};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "reliability-admin-token-0123456789abcdefghijklmnop";
const ACTIONS: &str = "/management/v1/actions";

fn sqlite_env(db: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("ACTIONSD_DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display())),
        ("ACTIONSD_ADMIN_TOKEN", ADMIN.to_string()),
        ("ACTIONSD_SANDBOX_WORKERS", "1".to_string()),
    ]
}

/// An action body whose script is about `size` bytes (so a few fill a page).
fn big_action(name: &str, size: usize) -> Value {
    json!({"name": name, "script": format!("function {name}(ctx, api) {{ /* {} */ }}", "x".repeat(size))})
}

/// What a write under pressure may answer: 200 (then it must be durable) or a clean 503 code 14
/// with Retry-After. Anything else fails the test.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<String>,
    unavailable: usize,
}

async fn create_checked(server: &Process, name: &str, size: usize, tally: &Mutex<Tally>) -> bool {
    let resp = server
        .client
        .post(format!("{}{ACTIONS}", server.base))
        .bearer_auth(ADMIN)
        .json(&big_action(name, size))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = resp.json().await.expect("JSON body");
    match status {
        StatusCode::OK => {
            let id = body["id"].as_str().expect("id").to_string();
            // Acknowledged means readable at once, too.
            let (status, r) = server.get(&format!("{ACTIONS}/{id}"), ADMIN).await;
            assert_eq!(status, 200, "action {id} acknowledged but not readable: {r}\n{}", server.log_text());
            tally.lock().unwrap().acknowledged.push(id);
            true
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(body["code"], 14, "{body}");
            assert!(body["message"].as_str().unwrap_or("").contains("unavailable"), "{body}");
            assert!(retry_after.is_some(), "503 without Retry-After: {body}");
            tally.lock().unwrap().unavailable += 1;
            false
        }
        other => panic!("write under a full database answered {other}: {body}\n{}", server.log_text()),
    }
}

/// Writes with `parallel` clients until `failures` writes were refused (or `max` were tried).
async fn fill(server: &Process, prefix: &str, size: usize, parallel: usize, failures: usize) -> Tally {
    let tally = Mutex::new(Tally::default());
    let mut i = 0usize;
    while tally.lock().unwrap().unavailable < failures && i < 20_000 {
        let names: Vec<String> = (i..i + parallel).map(|n| format!("{prefix}_{n}")).collect();
        i += parallel;
        futures::future::join_all(names.iter().map(|n| create_checked(server, n, size, &tally))).await;
    }
    let t = tally.into_inner().unwrap();
    assert!(t.unavailable >= failures, "the database never filled up ({} writes acknowledged)", t.acknowledged.len());
    t
}

/// Every acknowledged action is there (after a restart).
async fn assert_all_present(server: &Process, ids: &[String], what: &str) {
    let mut lost = Vec::new();
    for id in ids {
        let (status, _) = server.get(&format!("{ACTIONS}/{id}"), ADMIN).await;
        if status != 200 {
            lost.push(id.clone());
        }
    }
    assert!(lost.is_empty(), "{what}: {} acknowledged writes lost: {lost:?}", lost.len());
}

/// The database capped at a small size (`ACTIONSD_SQLITE_MAX_SIZE`: SQLite answers SQLITE_FULL
/// exactly as for a full disk, and rolls the transaction back on its own): no root needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_sqlite_database_never_acknowledges_a_lost_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("full.db");
    let mut env = sqlite_env(&db);
    env.push(("ACTIONSD_SQLITE_MAX_SIZE", "768KiB".to_string()));
    let server = Process::start(dir.path(), "capped-1", &env).await;
    // An action bound to a trigger, for a run whose record (60 KB of logs) cannot be written later.
    let (status, r) = server.post(ACTIONS, ADMIN, json!({"name": "bound", "script": "function bound(ctx, api) { for (var i = 0; i < 60; i++) console.log('x'.repeat(1000)); }"})).await;
    assert_eq!(status, 200, "{r}");
    let bound = r["id"].as_str().unwrap().to_string();
    let (status, r) = server.post("/management/v1/flows/2/trigger/4", ADMIN, json!({"actionIds": [bound]})).await;
    assert_eq!(status, 200, "{r}");

    let mut tally = fill(&server, "fill", 3000, 8, 40).await;
    tally.acknowledged.push(bound);
    // Small writes in between: some fit into partly used pages, none may be lost.
    let more = fill(&server, "small", 10, 4, 8).await;
    tally.acknowledged.extend(more.acknowledged);
    // A failed write leaves nothing behind: the unique name is free for a retry later.
    assert!(tally.unavailable > 0);

    // A successful run's record waits in its batch, retried while the database is full; SIGTERM
    // still ends the server (the batch is dropped, as the log says).
    let (status, r) = server.post("/management/v1/flows/2/trigger/4/_execute", ADMIN, json!({"context": {}})).await;
    assert_eq!(status, 200, "{r}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log_text().contains("writing run records failed; retrying") {
        assert!(Instant::now() < deadline, "the run record was never retried\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log_text();
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30))).await.unwrap();
    assert!(status.is_some(), "SIGTERM did not end the server within 30 s\n{log}");

    let server = Process::start(dir.path(), "capped-2", &sqlite_env(&db)).await;
    assert_all_present(&server, &tally.acknowledged, "after SIGTERM and restart").await;
    let (status, r) = server.post(&format!("{ACTIONS}/_search"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["details"]["totalResult"], tally.acknowledged.len().to_string(), "nothing unacknowledged appeared");
    // Without the cap the same database takes writes again, the refused names included.
    let again = Mutex::new(Tally::default());
    for n in 0..5 {
        assert!(create_checked(&server, &format!("fill_{}", 10_000 + n), 3000, &again).await, "{}", server.log_text());
    }
}

/// A real full disk: the database on a small tmpfs, the rest of it filled by a file. Needs root
/// (mount); elsewhere skipped with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_never_acknowledges_a_lost_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED full_disk_never_acknowledges_a_lost_write: mount not permitted: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED full_disk_never_acknowledges_a_lost_write: no mount command: {e}");
            return;
        }
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let db = mnt.join("disk.db");
    let server = Process::start(dir.path(), "disk-1", &sqlite_env(&db)).await;
    // Some history first, so the WAL index is in place.
    let tally = Mutex::new(Tally::default());
    for n in 0..20 {
        assert!(create_checked(&server, &format!("warm_{n}"), 500, &tally).await);
    }
    // Fill the rest of the disk.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).and_then(|_| f.sync_data()).is_ok() {}
        let mut small = [0u8; 512];
        small.fill(1);
        while f.write_all(&small).and_then(|_| f.sync_data()).is_ok() {}
    }
    let mut tally = tally.into_inner().unwrap();
    let full = fill(&server, "full", 3000, 8, 40).await;
    tally.acknowledged.extend(full.acknowledged);
    let (status, r) = server.request(reqwest::Method::GET, "/debug/healthz", None, None).await;
    assert_eq!(status, 200, "{r}");

    // Space freed: writes succeed again, no restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let again = Mutex::new(Tally::default());
    for n in 0..10 {
        assert!(
            create_checked(&server, &format!("after_free_{n}"), 3000, &again).await,
            "write after freeing the disk refused\n{}",
            server.log_text()
        );
    }
    tally.acknowledged.extend(again.into_inner().unwrap().acknowledged);
    server.kill_9();

    let server = Process::start(dir.path(), "disk-2", &sqlite_env(&db)).await;
    assert_all_present(&server, &tally.acknowledged, "after kill -9 and restart").await;
    let (status, r) = server.post(&format!("{ACTIONS}/_search"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["details"]["totalResult"], tally.acknowledged.len().to_string());
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Sandbox workers

/// PIDs whose parent is `ppid`, from /proc.
fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Some((parent, _)) = stat(pid) {
            if parent == ppid {
                out.push(pid);
            }
        }
    }
    out
}

/// (parent pid, state) of a process, None once it is gone.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((parent, state))
}

fn alive(pid: u32) -> bool {
    matches!(stat(pid), Some((_, state)) if state != 'Z' && state != 'X')
}

fn is_worker(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("sandbox-worker"))
        .unwrap_or(false)
}

/// `kill -9` of the server while an action spins (`while(true){}`, 10 s timeout): its workers
/// end with it, long before the timeout.
async fn killed_server_leaves_no_worker(env: Vec<(&'static str, String)>, dir: &Path) {
    let server = Process::start(dir, "spin", &env).await;
    let (status, r) = server
        .post(
            ACTIONS,
            ADMIN,
            json!({"name": "spin", "script": "function spin(ctx, api) { while (true) {} }", "timeout": "10s"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let (status, r) = server.post("/management/v1/flows/2/trigger/4", ADMIN, json!({"actionIds": [id]})).await;
    assert_eq!(status, 200, "{r}");
    let pid = server.pid();
    let exec = {
        let (client, url) =
            (server.client.clone(), format!("{}/management/v1/flows/2/trigger/4/_execute", server.base));
        tokio::spawn(async move { client.post(url).bearer_auth(ADMIN).json(&json!({"context": {}})).send().await })
    };
    // Wait until the run holds a worker (the metrics count it busy).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
        let busy = text
            .lines()
            .find(|l| l.starts_with("actionsd_sandbox_workers{") && l.contains("busy"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if busy >= 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started:\n{text}\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let workers: Vec<u32> = children_of(pid).into_iter().filter(|p| is_worker(*p)).collect();
    assert!(!workers.is_empty(), "no sandbox worker found under the server {pid}");
    let killed = Instant::now();
    server.kill_9();
    let _ = exec.await;
    loop {
        let left: Vec<u32> = workers.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            eprintln!("{} worker(s) gone {:?} after kill -9 of the server", workers.len(), killed.elapsed());
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "sandbox workers {left:?} still run {:?} after the server was killed (the action's timeout is 10 s)",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_server_leaves_no_worker_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sqlite_env(&dir.path().join("spin.db"));
    killed_server_leaves_no_worker(env, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_server_leaves_no_worker_postgres() {
    let Some(url) = common::postgres_url_or_skip("killed_server_leaves_no_worker_postgres") else { return };
    let schema = common::create_schema(&url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("ACTIONSD_DATABASE_URL", common::url_with_schema(&url, &schema)),
        ("ACTIONSD_ADMIN_TOKEN", ADMIN.to_string()),
        ("ACTIONSD_ENCRYPTION_KEY", "reliability-encryption-key-0123456789".to_string()),
        ("ACTIONSD_SANDBOX_WORKERS", "1".to_string()),
    ];
    killed_server_leaves_no_worker(env, dir.path()).await;
    common::drop_schema(&url, &schema).await;
}

/// The worker holds a run's deadline on its own: with its server alive but not killing it (stdin
/// kept open, nobody reading), it ends itself shortly after the deadline.
#[test]
fn worker_ends_itself_at_the_deadline() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_actionsd"))
        .args(["sandbox-worker", "--memory-limit", "67108864"])
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let job = json!({
        "script": "function spin(ctx, api) { while (true) {} }",
        "name": "spin", "flow": 2, "trigger": 4, "context": {}, "state": {},
        "top_level_ms": 5000, "deadline_ms": 300,
    });
    let mut stdin = child.stdin.take().unwrap();
    let sent = Instant::now();
    writeln!(stdin, "{job}").unwrap();
    stdin.flush().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(5), "the worker ran on past its deadline");
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    eprintln!("worker ended {took:?} after a job with a 300 ms deadline");
    assert!(stderr.contains("run deadline passed"), "{status}: {stderr}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Startup (engine warm-up) happens before the job is read; the bound is deadline + margin.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    drop(stdin);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL outage, on a throwaway cluster of its own (so other tests keep their server).

struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Cluster {
    fn pg_bin() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> =
            std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.into_iter().rev().find(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
    }

    /// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        cmd.args(args).output().expect("run a PostgreSQL tool")
    }

    fn create(dir: &Path) -> Result<Cluster, String> {
        let bin = Cluster::pg_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let base = dir.join("pg");
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        if is_root() {
            let ok = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status();
            if !matches!(ok, Ok(s) if s.success()) {
                return Err("cannot hand the cluster directory to the postgres user".into());
            }
        }
        let c = Cluster {
            bin,
            data: base.join("data"),
            sock: base.clone(),
            port: common::process::free_port(),
            log: base.join("server.log"),
        };
        let out = c.run("initdb", &["-D", c.data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(c)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.sock.display());
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                self.log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops at once (like a crash: connections are cut).
    fn stop(&self) {
        let _ = self.run("pg_ctl", &["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_fails_fast_and_heals() {
    if common::postgres_url_or_skip("postgres_outage_fails_fast_and_heals").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = match Cluster::create(dir.path()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED PostgreSQL variant: postgres_outage_fails_fast_and_heals (no throwaway cluster: {e})");
            return;
        }
    };
    cluster.start();
    let rx = Receiver::start().await;
    let env = vec![
        ("ACTIONSD_DATABASE_URL", cluster.url()),
        ("ACTIONSD_ADMIN_TOKEN", ADMIN.to_string()),
        ("ACTIONSD_ENCRYPTION_KEY", "reliability-encryption-key-0123456789".to_string()),
        ("ACTIONSD_HTTP_ALLOW_LIST", "127.0.0.1".to_string()),
        ("ACTIONSD_SANDBOX_WORKERS", "1".to_string()),
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", "200ms,500ms,1s".to_string()),
    ];
    let server = Process::start(dir.path(), "outage", &env).await;
    // Every created action becomes a delivery to the receiver.
    let (status, r) = server
        .post(
            "/v2/actions/targets",
            ADMIN,
            json!({"name": "receiver", "endpoint": rx.url("/events"), "timeout": "5s", "restWebhook": {}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let target = r["id"].as_str().unwrap().to_string();
    let (status, r) = server
        .request(
            reqwest::Method::PUT,
            "/v2/actions/executions",
            Some(ADMIN),
            Some(json!({"condition": {"event": {"event": "action.added"}}, "targets": [target]})),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    rx.set_default(Answer::status(200));
    let connector = Connector::prepare(&server).await;

    // Write load throughout: 4 writers, each request timed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let slowest_refusal = Arc::new(Mutex::new(Duration::ZERO));
    let load = {
        let (stop, acknowledged, slowest) = (stop.clone(), acknowledged.clone(), slowest_refusal.clone());
        let (client, base) = (server.client.clone(), server.base.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..4)
                .for_each_concurrent(4, |w| {
                    let (stop, acknowledged, slowest, client, base) =
                        (stop.clone(), acknowledged.clone(), slowest.clone(), client.clone(), base.clone());
                    async move {
                        let mut n = 0;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            n += 1;
                            let name = format!("load_{w}_{n}");
                            let started = Instant::now();
                            let resp = client
                                .post(format!("{base}{ACTIONS}"))
                                .bearer_auth(ADMIN)
                                .json(&json!({"name": name, "script": format!("function {name}() {{}}")}))
                                .timeout(Duration::from_secs(30))
                                .send()
                                .await
                                .expect("the server answers during the outage");
                            let status = resp.status();
                            let retry_after = resp.headers().contains_key("retry-after");
                            let body: Value = resp.json().await.expect("JSON");
                            match status.as_u16() {
                                200 => acknowledged.lock().unwrap().push(body["id"].as_str().unwrap().to_string()),
                                503 => {
                                    assert_eq!(body["code"], 14, "{body}");
                                    assert!(retry_after, "503 without Retry-After");
                                    let took = started.elapsed();
                                    {
                                        let mut s = slowest.lock().unwrap();
                                        *s = (*s).max(took);
                                    }
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                                other => panic!("write during an outage answered {other}: {body}"),
                            }
                        }
                    }
                })
                .await
        })
    };
    let before = wait_for(|| acknowledged.lock().unwrap().len() >= 20, Duration::from_secs(30)).await;
    assert!(before, "no writes before the outage\n{}", server.log_text());

    cluster.stop();
    let down_at = Instant::now();
    // Ready answers 503 quickly; healthz stays 200.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _) = server.request(reqwest::Method::GET, "/debug/ready", None, None).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "ready during the outage");
        assert!(took < Duration::from_millis(1500), "ready took {took:?} during the outage");
        let (status, _) = server.request(reqwest::Method::GET, "/debug/healthz", None, None).await;
        assert_eq!(status, 200, "healthz during the outage");
    }
    // Reads fail fast too.
    let started = Instant::now();
    let (status, r) = server.post(&format!("{ACTIONS}/_search"), ADMIN, json!({})).await;
    assert_eq!(status, 503, "{r}");
    assert_eq!(r["code"], 14, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a read took {:?} during the outage\n{}",
        started.elapsed(),
        server.log_text()
    );
    // Connector calls still check their signature (with the connection as last read) and answer
    // as their fail mode says: closed → the forwarded error, open → pass-through.
    connector.during_outage(&server).await;
    while down_at.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acknowledged_during = acknowledged.lock().unwrap().len();
    cluster.start();
    let up_at = Instant::now();
    // Recovers by itself: writes are acknowledged again and ready is 200.
    let healed =
        wait_for(|| acknowledged.lock().unwrap().len() >= acknowledged_during + 20, Duration::from_secs(30)).await;
    assert!(healed, "writes did not recover after the database came back\n{}", server.log_text());
    eprintln!("writes acknowledged again {:?} after the database came back", up_at.elapsed());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.expect("load");
    let (status, _) = server.request(reqwest::Method::GET, "/debug/ready", None, None).await;
    assert_eq!(status, 200);
    let slowest = *slowest_refusal.lock().unwrap();
    eprintln!("slowest 503 during the outage: {slowest:?}");
    assert!(slowest < Duration::from_secs(3), "a write waited {slowest:?} for its 503");

    // Nothing acknowledged is lost, and every acknowledged create is delivered.
    let ids = acknowledged.lock().unwrap().clone();
    assert_all_present(&server, &ids, "after the outage").await;
    let want: BTreeSet<String> = ids.iter().cloned().collect();
    let got = rx
        .wait_until(Duration::from_secs(60), "deliveries of every acknowledged create", |reqs| {
            let seen: BTreeSet<String> =
                reqs.iter().filter_map(|r| r.json()["aggregateID"].as_str().map(str::to_string)).collect();
            want.is_subset(&seen)
        })
        .await;
    eprintln!("{} creates acknowledged, {} deliveries received", ids.len(), got.len());
    drop(server);
}

/// Two connector connections (fail closed, fail open) running an action of the default org.
struct Connector {
    closed: String,
    open: String,
}

const CONNECTOR_KEY: &str = "outage-signing-key-0123456789";

impl Connector {
    async fn prepare(server: &Process) -> Connector {
        let (status, org) = server.request(reqwest::Method::GET, "/management/v1/orgs/me", Some(ADMIN), None).await;
        assert_eq!(status, 200, "{org}");
        let org = org["org"]["id"].as_str().unwrap().to_string();
        let (status, action) = server
            .post(ACTIONS, ADMIN, json!({"name": "outage_claim", "script": "function outage_claim(ctx, api) { api.v1.claims.setClaim('up', true); }"}))
            .await;
        assert_eq!(status, 200, "{action}");
        let (status, r) =
            server.post("/management/v1/flows/2/trigger/5", ADMIN, json!({"actionIds": [action["id"]]})).await;
        assert_eq!(status, 200, "{r}");
        let mut urls = Vec::new();
        for mode in ["FAIL_MODE_CLOSED", "FAIL_MODE_OPEN"] {
            let body = json!({"name": mode, "signingKeys": [CONNECTOR_KEY], "failMode": mode, "defaultOrgId": org});
            let (status, r) = server.post("/connector/v1/connections", ADMIN, body).await;
            assert_eq!(status, 200, "{r}");
            let url = r["callUrl"].as_str().unwrap().to_string();
            // A call while the database is up: it runs, and the connection is read.
            let (status, reply) = Self::call(server, &url).await;
            assert_eq!(
                (status.as_u16(), &reply["append_claims"]),
                (200, &json!([{"key": "up", "value": true}])),
                "{reply}"
            );
            urls.push(url);
        }
        Connector { open: urls.pop().unwrap(), closed: urls.pop().unwrap() }
    }

    async fn call(server: &Process, url: &str) -> (reqwest::StatusCode, Value) {
        let body =
            serde_json::to_vec(&json!({"function": "function/preaccesstoken", "userinfo": {"sub": "1"}})).unwrap();
        let t = chrono::Utc::now().timestamp();
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(&body);
        let header =
            format!("t={t},v1={}", hex::encode(common::receiver::hmac_sha256(CONNECTOR_KEY.as_bytes(), &signed)));
        let resp = server
            .client
            .post(format!("{}{url}", server.base))
            .header("content-type", "application/json")
            .header("ZITADEL-Signature", header)
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("the server answers connector calls during the outage");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn during_outage(&self, server: &Process) {
        let (status, reply) = Self::call(server, &self.closed).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["forwardedStatusCode"], 400, "fail closed: {reply}");
        let message = reply["forwardedErrorMessage"].as_str().unwrap_or("");
        assert!(message.starts_with("actions unavailable: "), "{reply}");
        let (status, reply) = Self::call(server, &self.open).await;
        assert_eq!((status.as_u16(), reply.clone()), (200, json!({})), "fail open passes through");
    }
}

async fn wait_for(mut pred: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pred()
}

// ---------------------------------------------------------------------------------------------
// Commit-time failures injected in-process (no root needed), on both backends.

mod in_process {
    use super::*;
    use crate::common::TestServer;
    use actionsd::store::events::{append, Aggregate, NewEvent};
    use sea_orm::{ConnectionTrait, DatabaseTransaction};

    /// Appends an action event for `aggregate`, then runs `sabotage` in the same transaction.
    async fn failing_write(
        s: &TestServer,
        aggregate: &'static str,
        sabotage: &'static str,
    ) -> actionsd::error::ApiError {
        let org = s.state.default_org;
        let result = s
            .state
            .store
            .write(&[], move |txn: &DatabaseTransaction| {
                Box::pin(async move {
                    append(
                        txn,
                        NewEvent {
                            aggregate_type: Aggregate::Action,
                            aggregate_id: aggregate.to_string(),
                            event_type: "action.added",
                            resource_owner: org,
                            creator: 0,
                            payload: json!({}),
                        },
                    )
                    .await?;
                    txn.execute_unprepared(sabotage).await?;
                    Ok(())
                })
            })
            .await;
        result.expect_err("a transaction whose commit fails must not be acknowledged")
    }

    async fn event_count(s: &TestServer, aggregate: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM events WHERE aggregate_id = '{aggregate}'");
        let row = s
            .state
            .store
            .db
            .query_one(sea_orm::Statement::from_string(s.state.store.backend, sql))
            .await
            .expect("count")
            .expect("row");
        row.try_get::<i64>("", "n").expect("n")
    }

    /// After a failed commit: later writes are acknowledged only when another connection (the read
    /// pool) sees them, i.e. they really committed.
    async fn later_writes_commit(s: &TestServer, prefix: &str) {
        for n in 0..20 {
            let name = format!("{prefix}_{n}");
            let r = s.post(ACTIONS, &s.admin, json!({"name": name, "script": format!("function {name}() {{}}")})).await;
            assert_eq!(r.status, 200, "{r:?}");
            let id = r.body["id"].as_str().unwrap();
            let got = s.get(&format!("{ACTIONS}/{id}"), &s.admin).await;
            assert_eq!(got.status, 200, "write {n} after a failed commit acknowledged but not committed: {got:?}");
        }
    }

    /// A deferred foreign key violated inside the transaction: the database refuses the COMMIT.
    async fn commit_refused_by_the_database(s: &TestServer) {
        let setup = [
            "CREATE TABLE fault_parent (id BIGINT PRIMARY KEY)",
            "CREATE TABLE fault_child (parent BIGINT REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED)",
        ];
        for sql in setup {
            s.state.store.db.execute_unprepared(sql).await.expect(sql);
        }
        for round in 0..3 {
            let err =
                failing_write(s, ["fk-0", "fk-1", "fk-2"][round], "INSERT INTO fault_child (parent) VALUES (42)").await;
            assert!(matches!(err.http_status().as_u16(), 500 | 503), "{err:?}");
            assert_eq!(
                event_count(s, ["fk-0", "fk-1", "fk-2"][round]).await,
                0,
                "the refused transaction left its event"
            );
            later_writes_commit(s, &format!("after_fk_{round}")).await;
        }
    }

    crate::backend_tests!(commit_refused_by_the_database);

    /// PostgreSQL: a statement cancelled while it waits (a lock held elsewhere, then
    /// `pg_cancel_backend`, as `statement_timeout` does after 30 s) is a passing condition: 503 code
    /// 14 `STORE-Unav1` with `Retry-After`, on a read through the API and on a write, and nothing
    /// of the write is kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cancelled_statements_answer_unavailable_postgres() {
        use sea_orm::TransactionTrait;
        let Some(s) = TestServer::postgres().await else { return };
        // A write whose statement runs past its (local) statement timeout.
        let err = failing_write(&s, "timeout-0", "SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(2)").await;
        assert_eq!((err.http_status().as_u16(), err.retry_after), (503, Some(2)), "{err:?}");
        assert_eq!(event_count(&s, "timeout-0").await, 0);
        // A read through the API waiting on a lock held here, cancelled by the holder.
        let holder = s.state.store.db.begin().await.expect("begin");
        holder.execute_unprepared("LOCK TABLE actions IN ACCESS EXCLUSIVE MODE").await.expect("lock");
        let list = {
            let (base, admin) = (s.base.clone(), s.admin.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{base}/management/v1/actions/_search"))
                    .bearer_auth(admin)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("list")
            })
        };
        let holder_pid = holder
            .query_one(sea_orm::Statement::from_string(s.state.store.backend, "SELECT pg_backend_pid() AS pid"))
            .await
            .expect("pid")
            .expect("row")
            .try_get::<i32>("", "pid")
            .expect("pid");
        // Asked outside the holder's transaction: pg_stat_activity keeps one snapshot per transaction.
        let waiting = format!(
            "SELECT COUNT(pg_cancel_backend(pid)) AS n FROM pg_stat_activity WHERE {holder_pid} = ANY(pg_blocking_pids(pid))"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = s
                .state
                .store
                .db
                .query_one(sea_orm::Statement::from_string(s.state.store.backend, waiting.clone()))
                .await
                .expect("cancel")
                .expect("row");
            if row.try_get::<i64>("", "n").expect("n") > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the list never waited on the lock");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        holder.rollback().await.expect("rollback");
        let answer = list.await.expect("join");
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()), Some("2".into()));
        let body: Value = answer.json().await.expect("json");
        assert_eq!(
            (body["code"].as_i64(), body["details"][0]["id"].as_str()),
            (Some(14), Some("STORE-Unav1")),
            "{body}"
        );
        s.stop().await;
    }

    /// One-shot commands (`org create`, `token create`) build their state without background jobs:
    /// nothing that could claim deliveries, prune, or hold run records in a batch when they exit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_shot_commands_start_no_background_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
        let config = common::test_config(&url, dir.path());
        let state = actionsd::build_state_for_command(config.clone()).await.expect("state");
        assert!(state.background_tasks.lock().unwrap().is_empty(), "a one-shot command started background jobs");
        assert!(
            state.execute.run_writer.submit(Default::default()).is_err(),
            "run records must be written at once, not batched"
        );
        drop(state);
        // The server's state does start them.
        let state = actionsd::build_state(config).await.expect("state");
        assert!(state.background_tasks.lock().unwrap().len() >= 4);
        let _ = state.background_stop.send(true);
    }

    /// SQLite rolls a transaction back by itself after SQLITE_FULL or an I/O error; the driver still
    /// believes it is open. Simulated with a ROLLBACK behind the driver's back: the COMMIT fails, the
    /// request is not acknowledged, and the connection is not reused in that state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_rollback_behind_the_drivers_back() {
        let s = TestServer::sqlite().await;
        for round in 0..3 {
            let aggregate = ["rb-0", "rb-1", "rb-2"][round];
            let err = failing_write(&s, aggregate, "ROLLBACK").await;
            assert!(matches!(err.http_status().as_u16(), 500 | 503), "{err:?}");
            assert_eq!(event_count(&s, aggregate).await, 0);
            later_writes_commit(&s, &format!("after_rollback_{round}")).await;
        }
        s.stop().await;
    }

    /// SQLite commits the transactions of concurrent writers together, and still answers each
    /// writer with its own fate: a create whose name is taken gets 409 while the others of its
    /// group commit; a transaction that breaks the group (a ROLLBACK behind the driver's back, as
    /// SQLite does by itself after SQLITE_FULL) takes its whole group down, and every writer of
    /// that group is refused, never acknowledged. Whatever was acknowledged is committed (seen by
    /// the read pool); whatever was refused left nothing (the same create succeeds on retry).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_group_commit_answers_each_writer_with_its_own_fate() {
        let s = Arc::new(TestServer::sqlite().await);
        let stats = s.state.store.group_commits().expect("SQLite commits in groups");
        let before = (
            stats.commits.load(std::sync::atomic::Ordering::Relaxed),
            stats.writes.load(std::sync::atomic::Ordering::Relaxed),
        );
        for round in 0..3 {
            let taken = format!("taken_{round}");
            let r = s.post(ACTIONS, &s.admin, json!({"name": taken, "script": "function taken() {}"})).await;
            assert_eq!(r.status, 200, "{r:?}");
            let mut tasks = Vec::new();
            for n in 0..32 {
                let s = s.clone();
                let name = if n % 8 == 7 { taken.clone() } else { format!("g{round}_{n}") };
                tasks.push(tokio::spawn(async move {
                    let body = json!({"name": name, "script": format!("function {name}() {{}}")});
                    let r = s.post(ACTIONS, &s.admin, body).await;
                    (name, r)
                }));
            }
            let sabotaged = ["gs-0", "gs-1", "gs-2"][round];
            let broken = {
                let s = s.clone();
                tokio::spawn(async move { failing_write(&s, sabotaged, "ROLLBACK").await })
            };
            let mut refused = Vec::new();
            for t in tasks {
                let (name, r) = t.await.expect("task");
                match r.status.as_u16() {
                    200 => {
                        let id = r.body["id"].as_str().expect("id");
                        let got = s.get(&format!("{ACTIONS}/{id}"), &s.admin).await;
                        assert_eq!(got.status, 200, "{name} acknowledged but not committed: {got:?}");
                    }
                    409 => assert_eq!(name, taken, "a free name was refused as taken: {r:?}"),
                    500 | 503 => refused.push(name),
                    other => panic!("{name}: unexpected {other}: {r:?}"),
                }
            }
            let err = broken.await.expect("task");
            assert!(matches!(err.http_status().as_u16(), 500 | 503), "{err:?}");
            assert_eq!(event_count(&s, sabotaged).await, 0, "the broken transaction left its event");
            for name in refused.into_iter().filter(|n| *n != taken) {
                let r = s.post(ACTIONS, &s.admin, json!({"name": name, "script": "function x() {}"})).await;
                assert_eq!(r.status, 200, "{name} was refused, yet something of it stayed: {r:?}");
            }
        }
        let after = (
            stats.commits.load(std::sync::atomic::Ordering::Relaxed),
            stats.writes.load(std::sync::atomic::Ordering::Relaxed),
        );
        assert!(
            after.1 - before.1 > after.0 - before.0,
            "no two writes were ever committed together: {before:?} -> {after:?}"
        );
    }

    /// Node numbers are leased: two live processes never share one, a released or expired one is
    /// taken again, and when all 1,024 are held a start fails clearly instead of colliding.
    async fn node_numbers_are_leased(url: &str, schema: Option<&str>) {
        use actionsd::store::{connect, DbOptions, Store};
        let open = || async { Store::new(connect(url, schema, &DbOptions::default()).await.expect("connect")).await };
        let mut stores = Vec::new();
        for _ in 0..5 {
            stores.push(open().await.expect("store"));
        }
        let numbers: BTreeSet<i64> = stores.iter().map(|s| s.ids.node()).collect();
        assert_eq!(numbers.len(), 5, "two live stores share a node number: {numbers:?}");
        // Ids minted by different stores in the same millisecond differ.
        let ids: BTreeSet<i64> = stores.iter().map(|s| s.new_id()).collect();
        assert_eq!(ids.len(), 5);
        // A released number is the next one taken.
        let released = stores[2].ids.node();
        stores.remove(2).close().await;
        let again = open().await.expect("store");
        assert_eq!(again.ids.node(), released);
        // Renewal keeps the number; a lease taken over by another owner is noticed and replaced.
        again.renew_node_lease().await.expect("renew");
        assert_eq!(again.ids.node(), released);
        let db = &again.db;
        let backend = again.backend;
        let exec = |sql: String| async move {
            db.execute(sea_orm::Statement::from_string(backend, sql)).await.expect("sql");
        };
        exec(format!("UPDATE node_leases SET owner = -1 WHERE node_no = {released}")).await;
        again.renew_node_lease().await.expect("renew after losing the lease");
        assert_ne!(again.ids.node(), released, "kept minting with a number another process holds");
        // Every number held by live owners: a new start fails instead of sharing one.
        let far = 4_102_444_800_000_000i64; // year 2100
        exec("DELETE FROM node_leases".to_string()).await;
        exec(format!(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 1023) \
             INSERT INTO node_leases (node_no, owner, lease_until) SELECT n, -2, {far} FROM seq"
        ))
        .await;
        let err = open().await.err().expect("a start with no free node number must fail");
        assert!(err.to_string().contains("node numbers are leased"), "{err}");
        // Expired leases are free again.
        exec("UPDATE node_leases SET lease_until = 0 WHERE node_no = 7".to_string()).await;
        let late = open().await.expect("store");
        assert_eq!(late.ids.node(), 7);
        // Ids stored by a process whose clock was ahead (an hour, here): a new start mints after
        // them, not from its own clock, so no stored id is minted again.
        let stored = (chrono::Utc::now().timestamp_millis() - 1_704_067_200_000 + 3_600_000) << 22;
        exec(format!(
            "INSERT INTO orgs (id, name, name_folded, is_default, sequence, created_at, changed_at) \
             VALUES ({stored}, 'ahead', 'ahead', false, 1, 0, 0)"
        ))
        .await;
        exec("UPDATE node_leases SET lease_until = 0 WHERE node_no = 8".to_string()).await;
        let restarted = open().await.expect("store");
        let next = restarted.new_id();
        assert!(next > stored, "minted {next}, not after the stored {stored}");
        // So for a minted key outside the object tables (a live tail's lease, minted later still).
        let lease = stored + (1 << 30);
        exec(format!("INSERT INTO tail_leases (id, org_id, node, expires_at) VALUES ({lease}, 1, 1, 0)")).await;
        exec("UPDATE node_leases SET lease_until = 0 WHERE node_no = 9".to_string()).await;
        let restarted = open().await.expect("store");
        let next = restarted.new_id();
        assert!(next > lease, "minted {next}, not after the stored tail lease {lease}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn node_numbers_are_leased_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("nodes.db").display());
        node_numbers_are_leased(&url, None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn node_numbers_are_leased_postgres() {
        let Some(url) = common::postgres_url_or_skip("node_numbers_are_leased_postgres") else { return };
        let schema = common::create_schema(&url).await;
        node_numbers_are_leased(&url, Some(&schema)).await;
        common::drop_schema(&url, &schema).await;
    }
}

/// A shutdown always ends: a client that never finishes its request (half-sent headers, a body
/// that never comes) holds it up for the grace period at most (the longest trigger + 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_is_bounded_by_the_grace_period() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sqlite_env(&dir.path().join("grace.db"));
    env.push(("ACTIONSD_MAX_TRIGGER_TIME", "1s".to_string()));
    let server = Process::start(dir.path(), "grace", &env).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut headers = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    headers.write_all(b"GET /debug/healthz HTTP/1.1\r\nHost: x\r\n").await.expect("send");
    let mut body = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    body.write_all(b"POST /management/v1/actions/_search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        .await
        .expect("send");
    body.write_all(format!("{ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").as_bytes())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30))).await.unwrap();
    let took = started.elapsed();
    assert!(status.is_some(), "still running 30 s after SIGTERM");
    assert!(took >= Duration::from_secs(5) && took < Duration::from_secs(12), "ended after {took:?}");
    drop((headers, body));
}

/// `actionsd <args>` in `dir` on the database `url`, with no other setting inherited.
fn actionsd_in(dir: &std::path::Path, url: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_actionsd"));
    command.args(args).current_dir(dir).env_clear().env("ACTIONSD_DATABASE_URL", url);
    command
}

/// A server given another `ACTIONSD_ENCRYPTION_KEY` than the one its database's values were sealed
/// with stops, naming the variable, before it writes anything: the admin token it was given is
/// not registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_encryption_key_stops_the_start_before_any_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sealed.db").display());
    let key = ("ACTIONSD_ENCRYPTION_KEY", "the-first-key-of-this-database-0001".to_string());
    let admin = ("ACTIONSD_ADMIN_TOKEN", "admin-token-of-the-first-start-0001".to_string());
    let first =
        Process::start(dir.path(), "first", &[("ACTIONSD_DATABASE_URL", url.clone()), key.clone(), admin.clone()])
            .await;
    assert!(first.terminate(Duration::from_secs(30)).is_some_and(|s| s.success()));
    let refused = "admin-token-of-the-refused-start-01";
    let out = actionsd_in(dir.path(), &url, &["serve"])
        .env("ACTIONSD_ADDR", format!("127.0.0.1:{}", common::process::free_port()))
        .env("ACTIONSD_ENCRYPTION_KEY", "another-key-than-the-first-one-0002")
        .env("ACTIONSD_ADMIN_TOKEN", refused)
        .output()
        .expect("run actionsd");
    assert!(!out.status.success(), "started with another key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ACTIONSD_ENCRYPTION_KEY"), "{stderr}");
    let again = Process::start(dir.path(), "again", &[("ACTIONSD_DATABASE_URL", url), key]).await;
    let (status, _) = again.get("/management/v1/orgs/me", &admin.1).await;
    assert_eq!(status, 200, "the first start's token still works");
    let (status, body) = again.get("/management/v1/orgs/me", refused).await;
    assert_eq!(status, 401, "the refused start registered its token: {body}");
}

/// The generated bootstrap admin token is never lost: when its file cannot be written the start
/// fails and keeps no token, so the next start (with a writable path) generates one; a file that
/// was there already is replaced by one of mode 0600, not written into.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bootstrap_token_reaches_its_file_or_is_not_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("boot.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let out = actionsd_in(dir.path(), &url, &["serve"])
        .env("ACTIONSD_ADDR", format!("127.0.0.1:{}", common::process::free_port()))
        .env("ACTIONSD_ADMIN_TOKEN_FILE", dir.path().join("missing/admin.token"))
        .output()
        .expect("run actionsd");
    assert!(!out.status.success(), "started without writing its token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write"), "{stderr}");

    // Readable by others before the start: the start replaces it.
    let file = dir.path().join("admin.token");
    std::fs::write(&file, "old\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Process::start(dir.path(), "boot", &[("ACTIONSD_DATABASE_URL", url.clone())]).await;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_ne!(token, "old");
    let (status, r) = server.post("/admin/v1/tokens/_search", &token, json!({})).await;
    assert_eq!(status, 200, "the generated token works: {r}");
}

/// The generated encryption key file of a SQLite database that went missing is not replaced by a
/// new key (which could read none of the stored secrets): the start fails naming the file, and
/// succeeds again once it is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_is_named_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("keyed.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let key_file = dir.path().join("keyed.db.key");
    let first = Process::start(dir.path(), "first", &[("ACTIONSD_DATABASE_URL", url.clone())]).await;
    assert!(first.terminate(Duration::from_secs(30)).is_some_and(|s| s.success()));
    let key = std::fs::read_to_string(&key_file).expect("the generated key file");
    std::fs::rename(&key_file, dir.path().join("elsewhere.key")).unwrap();
    let out = actionsd_in(dir.path(), &url, &["serve"])
        .env("ACTIONSD_ADDR", format!("127.0.0.1:{}", common::process::free_port()))
        .env("ACTIONSD_ADMIN_TOKEN_FILE", dir.path().join("admin.token"))
        .output()
        .expect("run actionsd");
    assert!(!out.status.success(), "started with a new key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("keyed.db.key is missing") && stderr.contains("encrypted with its key"), "{stderr}");
    assert!(!key_file.exists(), "a new key file was written in its place");
    std::fs::rename(dir.path().join("elsewhere.key"), &key_file).unwrap();
    let again = Process::start(dir.path(), "again", &[("ACTIONSD_DATABASE_URL", url)]).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    drop(again);
}

/// One server per SQLite file: a second `serve` on the same file refuses to start, saying why,
/// while one-shot commands still run beside the first; once the first is gone (even killed), a
/// new server starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("one.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let first = Process::start(dir.path(), "first", &[("ACTIONSD_DATABASE_URL", url.clone())]).await;
    let second = actionsd_in(dir.path(), &url, &["serve"])
        .env("ACTIONSD_ADDR", format!("127.0.0.1:{}", common::process::free_port()))
        .output()
        .expect("run actionsd");
    assert!(!second.status.success(), "a second server started on the same file");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another actionsd server is serving") && stderr.contains("PostgreSQL"), "{stderr}");
    let cli = actionsd_in(dir.path(), &url, &["org", "create", "Beside The Server"]).output().expect("run actionsd");
    assert!(cli.status.success(), "{cli:?}");
    first.kill_9();
    let again = Process::start(dir.path(), "again", &[("ACTIONSD_DATABASE_URL", url.clone())]).await;
    drop(again);
}

/// A server's sandbox directory: where the lock file it holds open is.
fn sandbox_of(pid: u32) -> std::path::PathBuf {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds");
    let lock = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .find(|target| target.file_name().is_some_and(|n| n == ".owner.lock"))
        .expect("the server holds its sandbox directory's lock");
    lock.parent().unwrap().to_path_buf()
}

/// The sandbox directory removed under a running server (an age-based `/tmp` cleaner on a quiet
/// server): the next worker start makes it again, and actions go on running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_sandbox_directory_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Process::start(dir.path(), "cleaned", &sqlite_env(&dir.path().join("cleaned.db"))).await;
    let sandbox = sandbox_of(server.pid());
    std::fs::remove_dir_all(&sandbox).expect("remove the sandbox directory");
    let run = |script: &str, timeout: &str| json!({"name": "f", "script": script, "timeout": timeout, "flowType": "2", "triggerType": "4", "context": {}});
    // The deadline kills the one worker; its replacement starts without the directory there.
    let (status, r) =
        server.post("/management/v1/actions/_test", ADMIN, run("function f(ctx, api) { while (true) {} }", "1s")).await;
    assert_eq!((status.as_u16(), r["outcome"].as_str()), (200, Some("OUTCOME_FAILED")), "{r}");
    for n in 0..3 {
        let script = format!("function f(ctx, api) {{ api.v1.claims.setClaim('n', {n}) }}");
        let (status, r) = server.post("/management/v1/actions/_test", ADMIN, run(&script, "5s")).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["outcome"], "OUTCOME_SUCCEEDED", "{r}\n{}", server.log_text());
        assert_eq!(r["effects"]["claims"]["n"], n, "{r}");
    }
    assert!(sandbox.is_dir(), "made again");
    assert!(server.log_text().contains("the sandbox directory was removed; made it again"), "{}", server.log_text());
    // Something else at its path (here a link to a directory others can read) is not used: no
    // worker starts there, said at ERROR, until the path is cleared.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::remove_dir_all(&sandbox).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &sandbox).unwrap();
    let (status, r) =
        server.post("/management/v1/actions/_test", ADMIN, run("function f(ctx, api) { while (true) {} }", "1s")).await;
    assert_eq!((status.as_u16(), r["outcome"].as_str()), (200, Some("OUTCOME_FAILED")), "{r}");
    let (status, r) = server.post("/management/v1/actions/_test", ADMIN, run("function f(ctx, api) {}", "5s")).await;
    assert_eq!((status.as_u16(), r["outcome"].as_str()), (200, Some("OUTCOME_FAILED")), "{r}");
    assert!(r["error"].as_str().unwrap_or("").contains("not a private directory"), "{r}");
    assert!(server.log_text().contains("cannot start a sandbox worker"), "{}", server.log_text());
    std::fs::remove_file(&sandbox).unwrap();
    let (status, r) = server.post("/management/v1/actions/_test", ADMIN, run("function f(ctx, api) {}", "5s")).await;
    assert_eq!((status.as_u16(), r["outcome"].as_str()), (200, Some("OUTCOME_SUCCEEDED")), "{r}");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing was written elsewhere");
}

/// A server killed with `kill -9` cannot remove its sandbox directory (with its workers' log
/// spill files): the next server to start removes it, and leaves a live server's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_servers_sandbox_directory_is_removed_by_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live_dir = tempfile::tempdir().expect("tempdir");
    let live = Process::start(live_dir.path(), "live", &sqlite_env(&live_dir.path().join("live.db"))).await;
    let live_sandbox = sandbox_of(live.pid());
    let env = sqlite_env(&dir.path().join("killed.db"));
    let first = Process::start(dir.path(), "first", &env).await;
    let sandbox = sandbox_of(first.pid());
    assert!(sandbox.is_dir());
    first.kill_9();
    assert!(sandbox.is_dir(), "a killed server cannot clean up");
    let second = Process::start(dir.path(), "second", &env).await;
    assert!(!sandbox.exists(), "the next start removes {}", sandbox.display());
    assert!(live_sandbox.is_dir(), "a live server's directory is kept");
    assert!(sandbox_of(second.pid()).is_dir());
    drop(live);
}

/// `actionsd org create` holds a name to the API's rule (1 to 200 characters, trimmed, not blank)
/// before it opens or creates anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_create_on_the_command_line_checks_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let run = |name: &str| actionsd_in(dir.path(), &url, &["org", "create", name]).output().expect("run actionsd");
    for bad in ["", "   ", &"x".repeat(201)] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("AddOrgRequest.Name"), "{out:?}");
    }
    assert!(!dir.path().join("cli.db").exists(), "nothing was created for a refused name");
    // So `token create` with a role or an organization that cannot be.
    for args in
        [&["token", "create", "--role", "NOPE"][..], &["token", "create", "--role", "ORG_OWNER", "--org", "not-an-id"]]
    {
        let out = actionsd_in(dir.path(), &url, args).output().expect("run actionsd");
        assert!(!out.status.success(), "{args:?} was accepted");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("unknown role \"NOPE\"") || said.contains("invalid org id \"not-an-id\""), "{said}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{args:?} left {left:?} behind");
    }
    let out = run("  CLI Org ");
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "{id:?}");
    // The first command on a new database made the bootstrap admin token: it says where.
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(told.contains("generated the bootstrap admin token into actionsd-admin.token"), "{told}");
    assert!(dir.path().join("actionsd-admin.token").is_file());
    // A bad listen address is refused naming the setting.
    let out = actionsd_in(dir.path(), &url, &["serve"]).env("ACTIONSD_ADDR", "not-an-address").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ACTIONSD_ADDR \"not-an-address\""), "{out:?}");
}

/// A setting that cannot work stops `serve`, naming it, before the database, its key file or the
/// bootstrap token file is created: a first start with a typo leaves nothing behind, and no
/// "listening" is logged for a server that never served.
#[test]
fn a_start_refused_for_its_settings_leaves_nothing_behind() {
    let certs = tempfile::tempdir().expect("tempdir");
    common::make_test_ca(certs.path());
    let at = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("ACTIONSD_ADDR", "not-an-address".into())], "ACTIONSD_ADDR \"not-an-address\""),
        (
            vec![("ACTIONSD_TLS_CERT_FILE", at("missing.pem")), ("ACTIONSD_TLS_KEY_FILE", at("key.pem"))],
            "ACTIONSD_TLS_CERT_FILE",
        ),
        // Certificate and key swapped.
        (
            vec![("ACTIONSD_TLS_CERT_FILE", at("key.pem")), ("ACTIONSD_TLS_KEY_FILE", at("cert.pem"))],
            "ACTIONSD_TLS_CERT_FILE",
        ),
        (vec![("ACTIONSD_PUBLIC_URL", "notaurl".into())], "ACTIONSD_PUBLIC_URL"),
    ];
    for (env, says) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("start.db").display());
        let mut command = actionsd_in(dir.path(), &url, &["serve"]);
        if !env.iter().any(|(k, _)| *k == "ACTIONSD_ADDR") {
            command.env("ACTIONSD_ADDR", format!("127.0.0.1:{}", common::process::free_port()));
        }
        let out = command.envs(env.clone()).output().expect("run actionsd");
        let told = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(told.contains(says), "{env:?}: {told}");
        assert!(!told.contains("listening"), "{env:?}: {told}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{env:?} left {left:?} behind");
    }
    // A `.env` that is a directory (what a bind mount of a missing file makes) is refused too.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".env")).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("start.db").display());
    let out = actionsd_in(dir.path(), &url, &["serve"]).output().expect("run actionsd");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".env: not a file"), "{out:?}");
    assert!(!dir.path().join("start.db").exists());
}

/// Losing the reader of the server's stderr (a `| tee` or log shipper that ends) changes nothing
/// for clients: the log lines that can no longer be written are dropped, requests are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_log_pipe_does_not_break_requests() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("pipe.db").display());
    let port = common::process::free_port();
    let mut child = actionsd_in(dir.path(), &url, &["serve"])
        .env("ACTIONSD_ADDR", format!("127.0.0.1:{port}"))
        .env("ACTIONSD_ADMIN_TOKEN", ADMIN)
        // Every request logs (the request span and its events).
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn actionsd");
    let stderr = child.stderr.take().unwrap();
    let listening = tokio::task::spawn_blocking(move || {
        let lines = std::io::BufReader::new(stderr).lines();
        let mut seen = String::new();
        for line in lines.map_while(Result::ok) {
            if line.contains("actionsd listening") {
                return Ok(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        Err(seen)
        // The reader is dropped here: the pipe's read end closes.
    })
    .await
    .unwrap();
    if let Err(seen) = listening {
        let _ = child.kill();
        panic!("the server did not start:\n{seen}");
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..3 {
        let r = client.get(format!("{base}/debug/healthz")).send().await;
        assert!(r.as_ref().is_ok_and(|r| r.status() == 200), "{r:?}");
    }
    let created = client
        .post(format!("{base}/management/v1/actions"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "a", "script": "function a(ctx, api) {}"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let read = client.get(format!("{base}/management/v1/actions/{id}")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert!(child.try_wait().unwrap().is_none(), "the server ended");
    let _ = child.kill();
    let _ = child.wait();
}

/// Outgoing HTTPS trusts the CA that `SSL_CERT_FILE` names (an internal PKI), in scripts' `fetch`
/// too (its workers start with an empty environment); without it, such a server is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_internal_ca_is_trusted_through_ssl_cert_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_test_ca(dir.path());
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    // An HTTPS endpoint with a certificate of that CA: an actionsd serving TLS.
    let tls = common::TestServer::sqlite_with(|c| {
        c.tls_cert_file = Some(at("cert.pem"));
        c.tls_key_file = Some(at("key.pem"));
    })
    .await;
    let port = tls.base.rsplit(':').next().unwrap().to_string();
    let script = format!(
        "function a(ctx, api) {{ try {{ console.log('status ' + require('zitadel/http').fetch('https://localhost:{port}/debug/healthz').status); }} catch (e) {{ console.log(String(e)); }} }}"
    );
    let body = json!({"name": "a", "script": script, "flowType": "2", "triggerType": "4", "context": {}});
    for (name, trust) in [("untrusting", None), ("trusting", Some(at("ca.pem")))] {
        let mut env = sqlite_env(&dir.path().join(format!("{name}.db")));
        env.push(("ACTIONSD_HTTP_ALLOW_LIST", "127.0.0.1,localhost".to_string()));
        if let Some(ca) = trust.clone() {
            env.push(("SSL_CERT_FILE", ca));
        }
        let server = Process::start(dir.path(), name, &env).await;
        let (status, r) = server.post("/management/v1/actions/_test", ADMIN, body.clone()).await;
        assert_eq!(status, 200, "{r}");
        let logged = r["runs"][0]["logs"][0]["message"].as_str().unwrap_or("").to_string();
        match trust {
            Some(_) => assert_eq!(logged, "status 200", "{r}"),
            None => assert!(logged.contains("certificate") || logged.contains("UnknownIssuer"), "{r}"),
        }
    }
    tls.stop().await;
}

/// A PostgreSQL database that takes no connections for now (`ALLOW_CONNECTIONS false`, as for
/// maintenance) is an outage like any other: every request is a fast 503 code 14 with
/// Retry-After (not an internal error), and the server heals when connections are allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_database_refusing_connections_is_unavailable() {
    use sea_orm::{ConnectionTrait, Database};
    let Some(url) = common::postgres_url_or_skip("postgres_database_refusing_connections_is_unavailable") else {
        return;
    };
    let name = format!("refusing_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&url).await.expect("connect");
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    let db_url = common::sibling_database_url(&url, &name);
    let server = common::TestServer::postgres_database(&db_url).await;
    let id = server.create_action(&server.admin, "before").await;

    let allow = |yes: bool| format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {yes}");
    admin.execute_unprepared(&allow(false)).await.expect("refuse connections");
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("end the server's connections");
    // Each request tries to connect again, and is refused by the database itself.
    for i in 0..4 {
        let started = Instant::now();
        let body = json!({"name": format!("during{i}"), "script": format!("function during{i}() {{}}")});
        let r = server.post("/management/v1/actions", &server.admin, body).await;
        assert_eq!(r.status, 503, "write {i} while the database refuses connections: {r:?}");
        assert_eq!(r.code(), 14, "{r:?}");
        assert!(r.headers.contains_key("retry-after"), "503 without Retry-After: {r:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "write {i} took {:?}", started.elapsed());
        let r = server.get(&format!("/management/v1/actions/{id}"), &server.admin).await;
        assert_eq!(r.status, 503, "read {i} while the database refuses connections: {r:?}");
    }

    admin.execute_unprepared(&allow(true)).await.expect("allow connections");
    let mut healed = None;
    for _ in 0..100 {
        let r = server.get(&format!("/management/v1/actions/{id}"), &server.admin).await;
        if r.status == 200 {
            healed = Some(r);
            break;
        }
        assert_eq!(r.status, 503, "{r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healed = healed.expect("the server reads again once connections are allowed");
    assert_eq!(healed.body["action"]["name"], "before", "{healed:?}");
    server.stop().await;
    admin.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await.expect("drop database");
    admin.close().await.ok();
}

/// Connections are bounded in all and per client address: past either bound a new connection is
/// closed as soon as it is accepted (idle HTTP/2 connections, which may stay open, cannot use up
/// the process's files), other addresses are still served, and a place freed is taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_in_all_and_per_address() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sqlite_env(&dir.path().join("conns.db"));
    env.push(("ACTIONSD_MAX_CONNECTIONS", "25".into()));
    env.push(("ACTIONSD_MAX_CONNECTIONS_PER_IP", "10".into()));
    let server = Process::start(dir.path(), "conns", &env).await;
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    // An HTTP/2 client that says hello and then nothing: admitted if the server answers with its
    // own SETTINGS, refused if the connection is closed without a byte.
    let idle_h2 = |from: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.expect("connect");
        let _ = stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await;
        let mut buf = [0u8; 64];
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer or a close");
        let admitted = matches!(read, Ok(n) if n > 0);
        (stream, admitted)
    };
    // (The start's readiness probe may keep one pooled connection from 127.0.0.1 open: the
    // bounds are checked from other addresses.)
    let mut held = Vec::new();
    for i in 0..10 {
        let (stream, admitted) = idle_h2("127.0.0.2").await;
        assert!(admitted, "connection {i} from 127.0.0.2 refused");
        held.push(stream);
    }
    assert!(!idle_h2("127.0.0.2").await.1, "an 11th connection from one address was admitted");
    let mut others = Vec::new();
    for from in ["127.0.0.3", "127.0.0.4"] {
        loop {
            let (stream, admitted) = idle_h2(from).await;
            if !admitted {
                break;
            }
            others.push(stream);
            assert!(others.len() <= 15, "more than 25 connections admitted");
        }
    }
    assert!(others.len() >= 14, "only {} connections admitted beside the first ten", others.len());
    // Places freed are taken again: a request from the first address is served once its idle
    // connections are gone.
    held.clear();
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.get(format!("{}/debug/healthz", server.base)).send().await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(Instant::now() < deadline, "not served after the idle connections closed: {other:?}"),
        }
        tokio::task::yield_now().await;
    }
    assert!(server.log_text().contains("connection refused: too many open"), "{}", server.log_text());
}

/// With TLS, connections still in their handshake are bounded too: past
/// `tls::MAX_HANDSHAKES` clients that connected and said nothing, another connection is closed at
/// once (not held for the handshake's 10 s), and once they are gone a client is served over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_handshakes_under_way_are_bounded() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    common::make_test_ca(dir.path());
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let s = common::TestServer::sqlite_with(|c| {
        c.tls_cert_file = Some(at("cert.pem"));
        c.tls_key_file = Some(at("key.pem"));
    })
    .await;
    let addr: std::net::SocketAddr = s.base.rsplit("//").next().unwrap().parse().unwrap();
    let mut silent = Vec::new();
    for _ in 0..actionsd::tls::MAX_HANDSHAKES {
        silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    let mut one_more = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), one_more.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "a connection past the bound was kept: {read:?}");
    // The first ones are still waiting for their handshake.
    let first = tokio::time::timeout(Duration::from_millis(200), silent[0].read(&mut buf)).await;
    assert!(first.is_err(), "a silent client within the bound was closed early: {first:?}");
    drop(silent);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(at("ca.pem")).unwrap()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("https://localhost:{}/debug/healthz", addr.port());
    loop {
        match client.get(&url).send().await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(Instant::now() < deadline, "not served after the silent clients left: {other:?}"),
        }
        tokio::task::yield_now().await;
    }
    s.stop().await;
}

/// An HTTP/2 connection may stay idle but not silent: the server pings a connection that has sent
/// nothing for the read timeout and closes it when the ping goes unanswered, while a client that
/// answers pings (every HTTP/2 client does) keeps its idle connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_http2_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sqlite_env(&dir.path().join("h2.db"));
    env.push(("ACTIONSD_REQUEST_READ_TIMEOUT", "1s".into()));
    let server = Process::start(dir.path(), "h2", &env).await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    // Reads one frame: (type, flags, payload); None when the connection ends.
    async fn frame(stream: &mut tokio::net::TcpStream) -> Option<(u8, u8, Vec<u8>)> {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.ok()?;
        Some((head[3], head[4], payload))
    }
    let started = Instant::now();
    let (silent, answering) = tokio::join!(
        async {
            // Reads, never answers.
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(PREFACE).await.unwrap();
            let mut pinged = false;
            while let Some((kind, flags, _)) = frame(&mut stream).await {
                pinged |= kind == 6 && flags & 1 == 0;
            }
            (pinged, started.elapsed())
        },
        async {
            // Answers every ping, and is still open after several ping rounds.
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(PREFACE).await.unwrap();
            let mut pings = 0;
            let open = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some((kind, flags, payload)) = frame(&mut stream).await {
                    if kind == 6 && flags & 1 == 0 {
                        pings += 1;
                        let mut ack = vec![0, 0, 8, 6, 1, 0, 0, 0, 0];
                        ack.extend_from_slice(&payload);
                        stream.write_all(&ack).await.unwrap();
                    }
                }
            })
            .await
            .is_err();
            (open, pings)
        }
    );
    let (pinged, closed_after) = silent;
    assert!(pinged, "the silent connection was closed without a ping");
    assert!(closed_after < Duration::from_secs(5), "the silent connection was kept {closed_after:?}");
    let (open, pings) = answering;
    assert!(open, "a connection that answers pings was closed");
    assert!(pings >= 2, "only {pings} pings in 5 s");
    // A part of the preface, then silence: neither protocol yet, closed at the read timeout
    // like a connection that sent nothing (hyper waits for the rest without a bound of its own).
    for part in [&PREFACE[..1], &PREFACE[..23]] {
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(part).await.unwrap();
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "{} bytes of the preface held the connection for 5 s", part.len());
        assert!(started.elapsed() >= Duration::from_millis(900), "closed before the read timeout");
    }
}

/// Readiness answers 503 naming a background job (run writer, pruning, delivery queue, leases)
/// that has ended before shutdown: they all run until the stop signal, so one that ended has
/// failed, and a server without its delivery queue or run writer is not one to send traffic to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ready_names_a_background_job_that_stopped() {
    let s = common::TestServer::sqlite().await;
    let ready = || async {
        let r = s.client.get(format!("{}/debug/ready", s.base)).send().await.expect("ready");
        (r.status(), r.text().await.expect("body"))
    };
    let names: Vec<&str> = s.state.background_tasks.lock().unwrap().iter().map(|(name, _)| *name).collect();
    for job in ["run writer", "run pruning", "delivery queue", "node lease"] {
        assert!(names.contains(&job), "{job} not among the watched jobs {names:?}");
    }
    let (fail, failed) = tokio::sync::oneshot::channel::<()>();
    let job = tokio::spawn(async move {
        let _ = failed.await;
        panic!("a background job fails");
    });
    s.state.background_tasks.lock().unwrap().push(("test job", job));
    assert_eq!(ready().await, (StatusCode::OK, "ok".to_string()), "while every job runs");
    fail.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = ready().await;
    while answer.0 == StatusCode::OK && Instant::now() < deadline {
        tokio::task::yield_now().await;
        answer = ready().await;
    }
    assert_eq!(answer, (StatusCode::SERVICE_UNAVAILABLE, "background job stopped: test job (see the log)".to_string()));
    let (status, _) = ready().await;
    assert_eq!(status, 503, "it stays unready");
    let r = s.get("/debug/healthz", &s.admin).await;
    assert_eq!(r.status, 200, "the process itself is alive: {r:?}");
    s.stop().await;
}

/// Text a remote party chose (a target's forwarded error message, here with a line break and a
/// forged level) reaches the text log quoted and escaped: it cannot start a log line of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remote_text_in_a_log_line_is_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sqlite_env(&dir.path().join("logs.db"));
    env.push(("ACTIONSD_HTTP_ALLOW_LIST", "127.0.0.1".to_string()));
    let server = Process::start(dir.path(), "logs", &env).await;
    let rx = Receiver::start().await;
    let forged = "boom\nERROR actionsd: forged line";
    rx.set_default(Answer::json(200, json!({"forwardedStatusCode": 403, "forwardedErrorMessage": forged})));
    let target = json!({"name": "lenient\nERROR x", "restWebhook": {}, "timeout": "5s", "endpoint": rx.url("/hook")});
    let (status, r) = server.post("/v2/actions/targets", ADMIN, target).await;
    assert_eq!(status, 200, "{r}");
    let id = r["id"].as_str().expect("target id").to_string();
    let execution = json!({"condition": {"request": {"method": "/zitadel.management.v1.ManagementService/CreateAction"}}, "targets": [id]});
    let (status, r) =
        server.request(reqwest::Method::PUT, "/v2/actions/executions", Some(ADMIN), Some(execution)).await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = server.post(ACTIONS, ADMIN, json!({"name": "kept", "script": "function kept() {}"})).await;
    assert_eq!(status, 200, "a failing target without interruptOnError is only logged: {r}");
    let log = server.log_text();
    let line =
        log.lines().find(|l| l.contains("target failed; continuing")).unwrap_or_else(|| panic!("no log line:\n{log}"));
    assert!(line.contains(r#"boom\nERROR actionsd: forged line"#), "the message escaped in its line: {line}");
    assert!(line.contains(r#"target="lenient\nERROR x""#), "the target's name quoted: {line}");
    assert!(!log.lines().any(|l| l.starts_with("ERROR")), "a forged line:\n{log}");
}

/// A write of another process on the same SQLite file (a one-shot `token create` beside the
/// server) is waited for, not failed: a request's transaction holds the write lock from its
/// first statement, so it cannot have read a snapshot the other's commit made stale (SQLite would
/// refuse that transaction at once, "database is locked", a 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_process_writing_the_sqlite_file_is_waited_for() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let s = common::TestServer::sqlite().await;
    let id = s.create_action(&s.admin, "waited").await;
    let other = sea_orm::Database::connect(s.state.config.database_url.as_str()).await.expect("second connection");
    let txn = other.begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO settings (key, value) VALUES ('other-process', 'x')").await.unwrap();
    // The other process holds the write lock; an update (which reads the action, then writes it)
    // waits for it.
    let update = {
        let (base, admin, client) = (s.base.clone(), s.admin.clone(), s.client.clone());
        let id = id.clone();
        tokio::spawn(async move {
            client
                .put(format!("{base}/management/v1/actions/{id}"))
                .bearer_auth(admin)
                .json(&json!({"name": "waited", "script": "function waited(ctx, api) { /* changed */ }"}))
                .send()
                .await
                .map(|r| r.status())
        })
    };
    let mut update = update;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut update).await.is_err(),
        "the update waits while another process holds the write lock"
    );
    txn.commit().await.unwrap();
    let status = update.await.unwrap().expect("answered");
    assert_eq!(status, StatusCode::OK, "the update ran after the other process's commit");
    let r = s.get(&format!("/management/v1/actions/{id}"), &s.admin).await;
    assert!(r.body["action"]["script"].as_str().unwrap_or("").contains("changed"), "{r:?}");
}

/// `migrate` takes its turn on a SQLite file's start lock like every other process opening it:
/// it waits while another start holds the lock, and migrates once it is free.
#[test]
fn migrate_takes_its_turn_at_the_start_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("turns.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("turns.db.start.lock"))
        .unwrap();
    lock.lock().expect("the start lock, as another start would hold it");
    let mut migrate = actionsd_in(dir.path(), &url, &["migrate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run actionsd migrate");
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        assert!(migrate.try_wait().unwrap().is_none(), "migrate ran while another start held the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!db.exists() || std::fs::metadata(&db).unwrap().len() == 0, "nothing migrated yet");
    lock.unlock().unwrap();
    let status = migrate.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(std::fs::metadata(&db).unwrap().len() > 0, "migrated once the lock was free");
}

/// A SQLite URL's path is percent-decoded as the driver decodes it: the key, lock and start-lock
/// files sit beside the database file the driver opens (`my%20dir` is the directory `my dir`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_encoded_sqlite_path_keeps_its_files_beside_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("my dir")).unwrap();
    let url = format!("sqlite://{}/my%20dir/x%23.db?mode=rwc", dir.path().display());
    let mut config = common::test_config(&url, dir.path());
    config.encryption_key = None;
    let state = actionsd::build_state_for_command(config).await.expect("a start on the decoded path");
    let beside = dir.path().join("my dir");
    assert!(beside.join("x#.db").exists(), "the database");
    let key = std::fs::read_to_string(beside.join("x#.db.key")).expect("the key file beside it");
    assert_eq!(state.config.encryption_key.as_deref(), Some(key.trim()));
    assert!(beside.join("x#.db.start.lock").exists(), "the start lock beside it");
    assert!(!dir.path().join("my%20dir").exists(), "nothing under the encoded name");
    drop(state);

    // Earlier versions put the key file under the name as written (`a%20b.db.key` beside the
    // database `a b.db`): a start finds it there and copies it to the decoded name.
    let url = format!("sqlite://{}/a%20b.db?mode=rwc", dir.path().display());
    let config = || {
        let mut c = common::test_config(&url, dir.path());
        c.encryption_key = None;
        c
    };
    let first = actionsd::build_state_for_command(config()).await.expect("the first start");
    let key = first.config.encryption_key.clone().unwrap();
    drop(first);
    std::fs::rename(dir.path().join("a b.db.key"), dir.path().join("a%20b.db.key")).unwrap();
    let again = actionsd::build_state_for_command(config()).await.expect("a start beside the earlier key file");
    assert_eq!(again.config.encryption_key.as_deref(), Some(key.as_str()));
    assert_eq!(std::fs::read_to_string(dir.path().join("a b.db.key")).unwrap().trim(), key);
    assert!(dir.path().join("a%20b.db.key").exists(), "the earlier file stays");
}

/// A key file that holds another key than the one the database's secrets were sealed with (a
/// file copied from another database) stops the start naming that file, not the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_of_another_database_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("own.db").display());
    let config = || {
        let mut c = common::test_config(&url, dir.path());
        c.encryption_key = None;
        c
    };
    drop(actionsd::build_state_for_command(config()).await.expect("the first start"));
    let key_file = dir.path().join("own.db.key");
    std::fs::write(&key_file, "a-key-of-another-database-0000000000000\n").unwrap();
    let err = match actionsd::build_state_for_command(config()).await {
        Ok(_) => panic!("started with another database's key file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&key_file.display().to_string()), "{err}");
    assert!(err.starts_with("the key file "), "{err}");
}

/// A start refused for its key (another key, or a key file gone) leaves the database's schema as
/// it found it: the key is checked before the migrations run, so that after a mistyped key during
/// an upgrade the earlier binary still starts on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_for_its_key_does_not_migrate() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("older.db").display());
    let config = |key: Option<&str>| {
        let mut c = common::test_config(&url, dir.path());
        c.encryption_key = key.map(str::to_string);
        c
    };
    let first = actionsd::build_state_for_command(config(Some("the-key-of-this-database-000000000001")))
        .await
        .expect("the first start");
    // The database as an earlier version left it: without migration 16 and those after it.
    let newest = "m20261207_000016_open_deliveries_order_index";
    first
        .store
        .db
        .execute_unprepared(&format!("DELETE FROM seaql_migrations WHERE version >= '{newest}'"))
        .await
        .unwrap();
    first.store.db.execute_unprepared("DROP INDEX ix_deliveries_open_order").await.unwrap();
    drop(first);
    let applied = || async {
        let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
        let row = db
            .query_one(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                format!("SELECT count(*) AS n FROM seaql_migrations WHERE version = '{newest}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap() == 1
    };
    for refused in [Some("another-key-than-this-database-has-0002"), None] {
        let err = match actionsd::build_state_for_command(config(refused)).await {
            Ok(_) => panic!("started with {refused:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("key"), "{refused:?}: {err}");
        assert!(!applied().await, "{refused:?}: the refused start migrated the database");
        // `actionsd migrate` checks the key the same way.
        let err = match actionsd::migrate_database(config(refused)).await {
            Ok(()) => panic!("migrated with {refused:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("key"), "migrate with {refused:?}: {err}");
        assert!(!applied().await, "{refused:?}: migrate migrated the database");
    }
    assert!(!dir.path().join("older.db.key").exists(), "no key file was left by the refused start");
    actionsd::build_state_for_command(config(Some("the-key-of-this-database-000000000001")))
        .await
        .expect("the start with the right key");
    assert!(applied().await, "migrated by the start with the right key");
}

/// A trigger whose caller went away runs on (execute.md §3), and a SIGTERM arriving meanwhile
/// waits for it: the run's record (a failed one here) is stored before the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_waits_for_runs_whose_caller_went_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sqlite_env(&dir.path().join("abandoned.db"));
    let server = Process::start(dir.path(), "abandoned", &env).await;
    let script = "function slow(ctx, api) { var end = Date.now() + 1500; while (Date.now() < end) {} throw new Error('slow failed'); }";
    let (status, r) = server.post(ACTIONS, ADMIN, json!({"name": "slow", "script": script, "timeout": "10s"})).await;
    assert_eq!(status, 200, "{r}");
    let id = r["id"].as_str().expect("id").to_string();
    let (status, r) = server.post("/management/v1/flows/3/trigger/1", ADMIN, json!({"actionIds": [id.clone()]})).await;
    assert_eq!(status, 200, "{r}");
    // The caller gives up long before the run ends.
    let gave_up = server
        .client
        .post(format!("{}/management/v1/flows/3/trigger/1/_execute", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"context": {}}))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the call was expected to time out: {gave_up:?}");
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30))).await.unwrap();
    assert!(status.is_some_and(|s| s.success()), "SIGTERM ended the server: {status:?}");

    let server = Process::start(dir.path(), "abandoned-again", &env).await;
    let (status, r) = server
        .post("/management/v1/runs/_search", ADMIN, json!({"queries": [{"actionIdQuery": {"actionId": id}}]}))
        .await;
    assert_eq!(status, 200, "{r}");
    let runs = r["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "the abandoned run's record: {r}\n{}", server.log_text());
    assert_eq!(runs[0]["outcome"], "OUTCOME_FAILED", "{r}");
}

/// The live tails of a killed server give their slots back within 5 s of its death
/// (authoring.md §5): a restarted server on the same database opens a full set of tails again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_servers_tails_free_their_slots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sqlite_env(&dir.path().join("tails.db"));
    let server = Process::start(dir.path(), "tails", &env).await;
    let open = |server: &Process| {
        server.client.get(format!("{}/management/v1/runs/_tail", server.base)).bearer_auth(ADMIN).send()
    };
    let mut streams = Vec::new();
    for _ in 0..10 {
        let r = open(&server).await.expect("tail");
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let r = open(&server).await.expect("tail");
    assert_eq!(r.status(), 429, "the 11th tail");
    server.kill_9();
    let killed = Instant::now();
    drop(streams);

    let server = Process::start(dir.path(), "tails-again", &env).await;
    let mut reopened = Vec::new();
    while reopened.len() < 10 {
        let r = open(&server).await.expect("tail");
        if r.status() == 200 {
            reopened.push(r);
            continue;
        }
        assert_eq!(r.status(), 429);
        assert!(killed.elapsed() < Duration::from_secs(5), "slots still taken {:?} after the kill", killed.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ACTIONSD_ADMIN_TOKEN` naming the secret of an existing token of another role makes it the
/// admin, and that change is an event like any other (`token.changed`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_token_made_admin_is_an_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("promote.db");
    let server = Process::start(dir.path(), "promote", &sqlite_env(&db)).await;
    let (status, org) = server.get("/management/v1/orgs/me", ADMIN).await;
    assert_eq!(status, 200, "{org}");
    let org = org["org"]["id"].as_str().expect("org id").to_string();
    let (status, r) = server.post("/admin/v1/tokens", ADMIN, json!({"orgId": org, "role": "ORG_VIEWER"})).await;
    assert_eq!(status, 200, "{r}");
    let (id, viewer) = (r["id"].as_str().unwrap().to_string(), r["token"].as_str().unwrap().to_string());
    let (status, _) = server.post("/admin/v1/tokens/_search", &viewer, json!({})).await;
    assert_eq!(status, 403, "a viewer cannot list tokens");
    assert!(server.terminate(Duration::from_secs(30)).is_some_and(|s| s.success()));

    let mut env = sqlite_env(&db);
    env.retain(|(k, _)| *k != "ACTIONSD_ADMIN_TOKEN");
    env.push(("ACTIONSD_ADMIN_TOKEN", viewer.clone()));
    let server = Process::start(dir.path(), "promoted", &env).await;
    let (status, r) = server.post("/admin/v1/tokens/_search", &viewer, json!({})).await;
    assert_eq!(status, 200, "the token is the admin now: {r}");
    assert!(server.terminate(Duration::from_secs(30)).is_some_and(|s| s.success()));

    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", db.display())).await.expect("open");
    let rows = conn
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT event_type, payload FROM events WHERE event_type LIKE 'token.%' ORDER BY position",
        ))
        .await
        .expect("events");
    let events: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (r.try_get::<String>("", "event_type").unwrap(), r.try_get::<String>("", "payload").unwrap_or_default())
        })
        .collect();
    let changed: Vec<&(String, String)> = events.iter().filter(|(t, _)| t == "token.changed").collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert!(changed[0].1.contains(&id) && changed[0].1.contains("IAM_OWNER"), "{events:?}");
}
