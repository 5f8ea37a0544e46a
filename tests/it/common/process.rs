//! The real `actionsd` binary as a child process, for tests that kill it (`kill -9`) or run
//! several servers on one database.

use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `actionsd serve` process; killed when dropped.
pub struct Process {
    child: Child,
    pub base: String,
    log: PathBuf,
    pub client: reqwest::Client,
}

/// A port that nothing listens on, for a server started as another process. It is picked below
/// the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by
/// default), so the outgoing connections the tests open all the time cannot take it between the
/// pick and the server's bind; only another such pick can, which `Process::start` survives.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

impl Process {
    /// Starts `actionsd serve` in `dir` on a free port, with no `ACTIONSD_*` variable inherited but
    /// the ones in `env`; output goes to `<dir>/<name>.log`. Waits until `/debug/ready` answers 200.
    ///
    /// The port is free when it is picked but released before the server binds it, so another
    /// socket (an outgoing connection's ephemeral port, say) can take it in between: a start that
    /// ends in "Address already in use" is tried again on a new port.
    pub async fn start(dir: &Path, name: &str, env: &[(&str, String)]) -> Process {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut p = Process::spawn(dir, name, env);
            match p.wait_ready().await {
                Ok(()) => return p,
                Err(log) if attempts < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("actionsd exited during start:\n{log}"),
            }
        }
    }

    fn spawn(dir: &Path, name: &str, env: &[(&str, String)]) -> Process {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_actionsd"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ACTIONSD_") {
                cmd.env_remove(key);
            }
        }
        cmd.arg("serve")
            .current_dir(dir)
            .env("ACTIONSD_ADDR", format!("127.0.0.1:{port}"))
            .env("ACTIONSD_ADMIN_TOKEN_FILE", dir.join("admin.token"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn actionsd");
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        Process { child, base: format!("http://127.0.0.1:{port}"), log, client }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ok once `/debug/ready` answers 200; the log (with the exit status) if the process ended.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(format!("({status})\n{}", self.log_text()));
            }
            if let Ok(r) = self.client.get(format!("{}/debug/ready", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return Ok(());
                }
            }
            assert!(Instant::now() < deadline, "actionsd not ready after 60 s:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits (at most `within`) for the process to end; its exit status, or None if
    /// it was still running (it is then killed).
    pub fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL: no graceful shutdown, nothing flushed or released.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Any request; `token` None sends no Authorization header.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request {path}: {e}\n{}", self.log_text()));
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None).await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
