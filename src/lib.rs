//! actionsd: a standalone, ZITADEL-compatible identity actions server.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod listen;
pub mod metrics;
pub mod runtime;
pub mod service;
pub mod store;
pub mod tls;
pub mod v2;

use api::{AppState, Inner};
use axum::http::{HeaderName, HeaderValue, Request};
use axum::Router;
use config::Config;
use std::sync::Arc;
use std::time::Duration;
use store::tokens::AdminToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_swagger_ui::SwaggerUi;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Connects to the database, applies migrations, bootstraps the instance and builds the state.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    build(config, None, true).await
}

/// As [`build_state`], on a given PostgreSQL schema (tests isolate themselves this way).
pub async fn build_state_with_schema(config: Config, schema: Option<&str>) -> anyhow::Result<AppState> {
    build(config, schema, true).await
}

/// The state for a one-shot command (`org create`, `token create`): no background jobs, so the
/// command never claims deliveries, prunes or batches run records and then exits holding them.
pub async fn build_state_for_command(config: Config) -> anyhow::Result<AppState> {
    build(config, None, false).await
}

async fn build(mut config: Config, schema: Option<&str>, background: bool) -> anyhow::Result<AppState> {
    // An empty ACTIONSD_ADMIN_TOKEN (`.env.example`'s line uncommented as it is, an empty secret
    // of an orchestrator) is unset: a token of no characters can never be sent, and registering
    // it would also stop the bootstrap token from being generated, now and on every later start.
    if config.admin_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        config.admin_token = None;
    }
    // Held through the migrations, the key file and the bootstrap (released after the admin
    // token is written): two processes starting on one SQLite file take turns there.
    let start_lock = sqlite_start_lock(&config.database_url).await?;
    let (dbs, new_key_file, key_from_file) = connect_checked(&mut config, schema).await?;
    let store = store::Store::new(dbs).await.map_err(|e| registering_failed(e, &config.database_url))?;
    if let Some(key_path) = new_key_file {
        let key = write_new_key_file(&store, &key_path, config.encryption_key.as_deref().unwrap_or("")).await?;
        config.encryption_key = Some(key);
    }
    // Checked once more: with PostgreSQL another replica starting at the same moment may have
    // sealed the instance signing key since the check before the migrations (with its own key,
    // if the two were given different ones); this start stops before it writes anything.
    v2::payload::KeyState::check_key(&store, config.encryption_key.as_deref().unwrap_or(""))
        .await
        .map_err(|e| wrong_key(e, key_from_file, &config.database_url))?;
    // A generated token reaches its file before it is committed: a token nobody can know is no
    // use, and a start that fails (or dies) in between must leave the next one to generate it.
    let token_file = config.admin_token_file.clone();
    let keep = move |secret: &str| write_secret_file(&token_file, secret).map_err(|e| e.to_string());
    let (default_org, admin) = store::tokens::bootstrap(&store, config.admin_token.clone(), keep)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {}", e.message))?;
    match admin {
        AdminToken::Generated => {
            tracing::info!(path = %config.admin_token_file, "generated the bootstrap admin token");
            if !background {
                // A one-shot command logs nothing: said where an operator reads it.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "actionsd: generated the bootstrap admin token into {}",
                    config.admin_token_file
                );
            }
        }
        AdminToken::FromConfig => {
            tracing::info!("admin token from ACTIONSD_ADMIN_TOKEN registered")
        }
        AdminToken::Existing => {}
    }
    drop(start_lock);
    let store = Arc::new(store);
    let exe = match &config.sandbox_exe {
        Some(path) => std::path::PathBuf::from(path),
        None => std::env::current_exe()?,
    };
    let sandbox = runtime::pool::SandboxPool::new(runtime::pool::PoolConfig {
        exe,
        workers: config.workers(),
        org_concurrency: config.org_concurrency(),
        queue_timeout: config.queue_timeout.as_std(),
        memory_limit: config.action_memory_limit,
        deny_list: config.http_deny_list.clone(),
        allow_list: config.http_allow_list.clone(),
    });
    let (background_stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut background_tasks = Vec::new();
    let run_writer = if background {
        if store.backend == sea_orm::DatabaseBackend::Sqlite {
            release_dead_process_leases(&store).await;
        }
        let (run_writer, writer_task) = store::runs::RunWriter::start(store.clone(), stop_rx.clone());
        background_tasks.push(("run writer", writer_task));
        background_tasks
            .push(("run pruning", tokio::spawn(prune_runs(store.clone(), config.clone(), stop_rx.clone()))));
        if store.backend == sea_orm::DatabaseBackend::Postgres {
            background_tasks
                .push(("run-record listener", tokio::spawn(service::tail::listen(store.clone(), stop_rx.clone()))));
        }
        background_tasks.push(("tail leases", tokio::spawn(renew_tail_leases(store.clone(), stop_rx.clone()))));
        background_tasks.push(("node lease", tokio::spawn(renew_node_lease(store.clone(), stop_rx))));
        run_writer
    } else {
        store::runs::RunWriter::direct()
    };
    let v2 = Arc::new(v2::V2::load(&store, &config).await?);
    let metrics = Arc::new(metrics::Metrics::new());
    let key = config.encryption_key.clone().unwrap_or_default();
    let targets = Arc::new(service::targets::Targets::new(store.clone(), v2.clone(), metrics.clone(), key));
    let limits = service::execute::Limits {
        max_trigger_time: config.max_trigger_time,
        max_action_timeout: config.max_action_timeout,
    };
    let execute = service::execute::ExecuteTrigger::new(
        store.clone(),
        sandbox.clone(),
        targets.clone(),
        metrics.clone(),
        run_writer,
        limits,
        config.encryption_key.clone().unwrap_or_default(),
    );
    let connector_health = Arc::new(service::connector::Health::default());
    if background {
        background_tasks.push((
            "connector health",
            tokio::spawn(flush_connector_health(store.clone(), connector_health.clone(), background_stop.subscribe())),
        ));
    }
    let body_budget = usize::try_from(config.max_body_bytes_in_flight >> 10).unwrap_or(usize::MAX);
    let state = AppState(Arc::new(Inner {
        bodies_in_flight: Arc::new(tokio::sync::Semaphore::new(body_budget.min(tokio::sync::Semaphore::MAX_PERMITS))),
        v2,
        store,
        sandbox,
        targets,
        execute,
        connector_health: connector_health.clone(),
        connector_cache: Default::default(),
        background_stop,
        closing: tokio::sync::watch::channel(false).0,
        background_tasks: std::sync::Mutex::new(background_tasks),
        lease_releases: Default::default(),
        detached: tokio_util::task::TaskTracker::new(),
        config,
        auth: Default::default(),
        metrics,
        default_org,
        protos: Arc::new(
            api::grpc::Protos::load().map_err(|e| anyhow::anyhow!("loading the protobuf descriptors: {e}"))?,
        ),
    }));
    state.auth.reload(&state.store).await.map_err(|e| anyhow::anyhow!("loading tokens failed: {e}"))?;
    if background {
        let queue = service::queue::start(
            state.targets.clone(),
            service::queue::QueueConfig::from_config(&state.config),
            state.background_stop.subscribe(),
        );
        if let Ok(mut tasks) = state.background_tasks.lock() {
            tasks.push(("delivery queue", queue));
        }
    }
    Ok(state)
}

/// The database connected, its encryption key found (the variable, or the SQLite key file; a new
/// one generated for a new database, with the path of the file to write it to) and checked against
/// what the database holds, and then migrated: a start with the wrong key, or without its key
/// file, leaves the database as it was, so that the binary it was upgraded from still starts on
/// it. Also whether the key came from the key file.
async fn connect_checked(
    config: &mut Config,
    schema: Option<&str>,
) -> anyhow::Result<(store::Databases, Option<std::path::PathBuf>, bool)> {
    let mut new_key_file = None;
    let key_from_file = config.encryption_key.as_deref().unwrap_or("").is_empty() && !config.is_postgres();
    if config.encryption_key.as_deref().unwrap_or("").is_empty() {
        if config.is_postgres() {
            anyhow::bail!("ACTIONSD_ENCRYPTION_KEY is required with PostgreSQL so that all replicas share it");
        }
        let (key, new_file) = sqlite_encryption_key(&config.database_url);
        config.encryption_key = Some(key);
        new_key_file = new_file;
    } else if config.encryption_key.as_deref().is_some_and(|k| k.trim().len() < MIN_ENCRYPTION_KEY_CHARS) {
        tracing::warn!(
            "ACTIONSD_ENCRYPTION_KEY is short: anyone who guesses it can read the stored secrets; \
             use e.g. `head -c 32 /dev/urandom | base64`"
        );
    }
    let dbs = store::connect::connect_unmigrated(&config.database_url, schema, &config.db_options())
        .await
        .map_err(|e| anyhow::Error::from(e).context(database_named(&config.database_url)))?;
    let sealed = store::connect::setting_before_migrations(&dbs.db, v2::payload::SIGNING_KEY_SETTING).await;
    if let Some(sealed) = sealed {
        match &new_key_file {
            Some(key_path) => anyhow::bail!(missing_key_file(key_path)),
            None => v2::payload::KeyState::check_sealed(config.encryption_key.as_deref().unwrap_or(""), &sealed)
                .map_err(|e| wrong_key(e, key_from_file, &config.database_url))?,
        }
    }
    store::connect::migrate(&dbs.db)
        .await
        .map_err(|e| anyhow::Error::from(e).context(database_named(&config.database_url)))?;
    Ok((dbs, new_key_file, key_from_file))
}

/// `actionsd migrate`: the migrations the database lacks, applied as a start applies them (in its
/// turn on a SQLite file, after the encryption key is checked), without starting anything. With
/// PostgreSQL and no `ACTIONSD_ENCRYPTION_KEY` the key is not checked (a migration job may run
/// without it). No key file is written for a new SQLite database (the first start writes it).
pub async fn migrate_database(mut config: Config) -> anyhow::Result<()> {
    let _starting = sqlite_start_lock(&config.database_url).await?;
    if config.is_postgres() && config.encryption_key.as_deref().unwrap_or("").is_empty() {
        connect_database(&config, None).await?;
        return Ok(());
    }
    connect_checked(&mut config, None).await?;
    Ok(())
}

/// The start's error when this process cannot register itself in the database (its first
/// write): the database named, and a full one said so: every start writes before it serves, so
/// space must be freed first.
fn registering_failed(e: sea_orm::DbErr, url: &str) -> anyhow::Error {
    let full = if store::is_full(&e) {
        " (the database or its disk is full: free space, or raise ACTIONSD_SQLITE_MAX_SIZE, and start again)"
    } else {
        ""
    };
    anyhow::Error::from(e).context(format!("registering this process in {} failed{full}", database_named(url)))
}

/// The start's error for a key that does not open the database's sealed values: a key read from
/// the key file is not the variable's, and the file is named instead.
fn wrong_key(e: anyhow::Error, key_from_file: bool, url: &str) -> anyhow::Error {
    if !key_from_file {
        return e;
    }
    anyhow::anyhow!(
        "the key file {} does not hold the key this database's secrets were sealed with ({e:#}): restore the key \
         file the database was created with, or set ACTIONSD_ENCRYPTION_KEY to that key",
        sqlite_key_path(url).display()
    )
}

/// The start's error for a database that holds sealed values while its key file is gone.
fn missing_key_file(key_path: &std::path::Path) -> String {
    format!(
        "the encryption key file {} is missing, but the database already holds values encrypted with its key: \
         restore the file (or set ACTIONSD_ENCRYPTION_KEY to the key it held)",
        key_path.display()
    )
}

/// A configured encryption key shorter than this (a generated one is 43 characters) is warned about.
const MIN_ENCRYPTION_KEY_CHARS: usize = 32;

/// The SQLite file a URL names and the path `<file>.<suffix>` beside it; None for PostgreSQL and
/// in-memory databases.
fn beside_sqlite_file(url: &str, suffix: &str) -> Option<(String, String)> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let path = config::sqlite_file_path(url);
    (!path.is_empty()).then(|| (path.to_string(), format!("{path}.{suffix}")))
}

/// One server per SQLite file: `serve` takes an exclusive lock on `<database>.lock` beside it and
/// refuses to start while another process holds it. Two servers on one file would each see the
/// other's writes as "database is locked" (503) whenever they met; replicas are PostgreSQL's.
/// One-shot commands (`token create`, `org create`, `migrate`) take no such lock and run beside a
/// server (each takes the start lock, [`sqlite_start_lock`], while it opens the database). None for
/// PostgreSQL and in-memory databases.
pub fn claim_sqlite_file(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some((path, lock_path)) = beside_sqlite_file(url, "lock") else { return Ok(None) };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| anyhow::anyhow!("{}: cannot open {lock_path}: {e}", database_named(url)))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another actionsd server is serving {path} (it holds {lock_path}): SQLite takes one server; \
             use PostgreSQL for several replicas"
        ),
        Err(std::fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {lock_path}: {e}"),
    }
}

/// How long a start waits for another process's start on the same SQLite file.
const START_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Every process opening a SQLite file (`serve` and the one-shot commands) migrates it, reads or
/// creates its key file and bootstraps it while holding `<database>.start.lock`, so that two first
/// starts at once (a server and a provisioning script's `token create`) take turns instead of
/// meeting at the database's write lock half-way (SQLite refuses a transaction that read before
/// the other's commit). The wait is bounded. None for PostgreSQL and in-memory databases.
pub async fn sqlite_start_lock(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some((path, lock_path)) = beside_sqlite_file(url, "start.lock") else { return Ok(None) };
    let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path) {
        Ok(file) => file,
        // A directory that cannot be written to: the database cannot be created there either,
        // and opening it says so in its own words.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: cannot open {lock_path}: {e}", database_named(url)),
    };
    let started = tokio::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < START_LOCK_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another actionsd process has been starting on {path} for {} s (it holds {lock_path})",
                START_LOCK_WAIT.as_secs()
            ),
            Err(std::fs::TryLockError::Error(e)) => anyhow::bail!("cannot lock {lock_path}: {e}"),
        }
    }
}

/// The key file of a SQLite database: `<database>.key` beside it.
fn sqlite_key_path(url: &str) -> std::path::PathBuf {
    key_path_beside(&config::sqlite_file_path(url))
}

fn key_path_beside(path: &str) -> std::path::PathBuf {
    if path.is_empty() || path == ":memory:" {
        std::path::PathBuf::from("actionsd.key")
    } else {
        let db = std::path::Path::new(path);
        db.with_file_name(format!("{}.key", db.file_name().and_then(|n| n.to_str()).unwrap_or("actionsd")))
    }
}

/// Earlier versions kept the key file beside the URL's path as written, not percent-decoded
/// (`my%20db.db.key` for the database `my db.db`). When only that file is there, its key is
/// copied to the decoded name; the old file stays (an earlier binary, started again, reads it).
fn adopt_undecoded_key_file(url: &str, key_path: &std::path::Path) {
    let raw = config::sqlite_url_path(url);
    if raw.is_empty() || raw == config::sqlite_file_path(url) || key_path.exists() {
        return;
    }
    let legacy = key_path_beside(raw);
    let Ok(key) = std::fs::read_to_string(&legacy) else { return };
    if key.trim().is_empty() {
        return;
    }
    match create_secret_file(&key_path.to_string_lossy(), key.trim()) {
        Ok(_) => tracing::info!(
            from = %legacy.display(),
            to = %key_path.display(),
            "copied the key file to the database's decoded file name"
        ),
        Err(e) => tracing::warn!(from = %legacy.display(), error = %e, "copying the key file failed"),
    }
}

/// With SQLite and no configured key, the key lives in a file beside the database (created once):
/// the key read from it, or a new one and the path to write it to (see `write_new_key_file`).
fn sqlite_encryption_key(url: &str) -> (String, Option<std::path::PathBuf>) {
    let key_path = sqlite_key_path(url);
    adopt_undecoded_key_file(url, &key_path);
    if let Ok(existing) = std::fs::read_to_string(&key_path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return (existing.to_string(), None);
        }
    }
    (store::tokens::generate_secret(), Some(key_path))
}

/// The configured database, connected and migrated; an error names it (see [`database_named`]).
pub async fn connect_database(config: &Config, schema: Option<&str>) -> anyhow::Result<store::Databases> {
    store::connect(&config.database_url, schema, &config.db_options())
        .await
        .map_err(|e| anyhow::Error::from(e).context(database_named(&config.database_url)))
}

/// What a database that cannot be opened is called in the start's error: the variable and the URL,
/// its password left out.
pub fn database_named(raw: &str) -> String {
    format!("ACTIONSD_DATABASE_URL {}", database_url_shown(raw))
}

/// A database URL as an error may show it: its password (in the user info or a parameter) left
/// out, and of a URL this cannot take apart only the scheme.
pub fn database_url_shown(raw: &str) -> String {
    match url::Url::parse(raw) {
        // `scheme:anything` (no authority): whatever follows may be a password.
        Ok(url) if url.cannot_be_a_base() && url.scheme() != "sqlite" => format!("{}:…", url.scheme()),
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            // A password may also be a parameter (`?password=…`, `sslpassword`).
            let secret = |key: &str| key.to_ascii_lowercase().contains("pass");
            if url.query_pairs().any(|(k, _)| secret(&k)) {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret(&k) { "***".into() } else { v.into_owned() };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        // Not a URL this could take apart: its scheme only, since it may hold a password anywhere.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
                format!("{scheme}://…")
            }
            _ => "(not shown)".to_string(),
        },
    }
}

/// Writes a newly generated key file, unless the database already holds values sealed with a key
/// (then the file that held it is missing: a new key could read none of them, and writing one
/// would take the place where the old file has to be restored).
async fn write_new_key_file(store: &store::Store, key_path: &std::path::Path, key: &str) -> anyhow::Result<String> {
    // Created only where no file is: another process starting on the same new database at the
    // same moment (a one-shot command beside `serve`) may have written its own key first, and
    // then that one is everybody's (replacing it would leave that process sealing values with a
    // key no file holds).
    let path = key_path.to_string_lossy();
    if !create_secret_file(&path, key)? {
        let theirs = std::fs::read_to_string(key_path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
        if !theirs.trim().is_empty() {
            return Ok(theirs.trim().to_string());
        }
        // An empty file holds no key: replaced.
        write_secret_file(&path, key)?;
    }
    let sealed = store::orgs::get_setting(&store.db, v2::payload::SIGNING_KEY_SETTING)
        .await
        .map_err(|e| anyhow::anyhow!("reading the instance signing key: {e}"))?;
    if sealed.is_some() {
        let _ = std::fs::remove_file(key_path);
        anyhow::bail!(missing_key_file(key_path));
    }
    tracing::info!(path = %key_path.display(), "generated the encryption key");
    Ok(key.to_string())
}

/// Writes a secret to a new file readable only by its owner (mode 0600), written whole beside it
/// and then linked into place, so that it is never seen half written; false (and nothing written)
/// when a file is already there.
fn create_secret_file(path: &str, secret: &str) -> anyhow::Result<bool> {
    let temp = format!("{path}.{}.tmp", std::process::id());
    write_secret_file(&temp, secret)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow::anyhow!("cannot write {path}: {e}")),
    }
}

/// Writes a secret to a file readable only by its owner (mode 0600): written whole to a new file
/// beside it, then renamed over it, so that an existing file of other permissions (or a symbolic
/// link) at the path is replaced, never written into, and the file is never half written.
fn write_secret_file(path: &str, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| anyhow::anyhow!("cannot write {path}: {e}");
    let temp = format!("{path}.{}.tmp", std::process::id());
    let _ = std::fs::remove_file(&temp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts.open(&temp).and_then(|mut f| {
        f.write_all(secret.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(e));
    }
    Ok(())
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let cors = {
        let configured = state.config.cors_origins();
        let origins: Vec<HeaderValue> = configured.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        // `*`: any origin (no credentials are ever allowed, so a wildcard is safe to honour).
        let allow = if configured.iter().any(|o| o == "*") { AllowOrigin::any() } else { AllowOrigin::list(origins) };
        (!configured.is_empty()).then(|| {
            CorsLayer::new()
                .allow_origin(allow)
                // The requested ones, named: a wildcard does not cover `Authorization` in
                // browsers (the Fetch standard), and every call carries a bearer token.
                .allow_methods(tower_http::cors::AllowMethods::mirror_request())
                .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
                .expose_headers([
                    REQUEST_ID.clone(),
                    // Not CORS-safelisted: a page could not read when to retry a 503.
                    axum::http::header::RETRY_AFTER,
                    HeaderName::from_static("grpc-status"),
                    HeaderName::from_static("grpc-message"),
                    HeaderName::from_static("grpc-status-details-bin"),
                ])
                .max_age(Duration::from_secs(3600))
        })
    };
    // The OpenAPI document is written once: every request for it shares these bytes (built per
    // request, an HTTP/2 client that never reads its answers held a copy per open stream).
    let openapi_json = axum::body::Bytes::from(
        serde_json::to_vec(&api::openapi::ApiDoc::openapi_doc()).expect("the OpenAPI document serializes"),
    );
    let openapi_route = axum::routing::get(move || {
        let body = openapi_json.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body) }
    });
    let router = api::api_router()
        .route("/openapi.json", openapi_route)
        .merge(api::ops::router())
        .merge(api::connector_call::router())
        .merge(api::tail::router())
        .merge(api::types::router())
        .merge(api::grpc::reflection_router())
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
        .merge(
            Router::from(
                SwaggerUi::new("/docs")
                    // No online validator badge: it would send the document's URL to swagger.io.
                    .config(utoipa_swagger_ui::Config::new(["/openapi.json"]).validator_url("none")),
            )
            .layer(axum::middleware::map_response(swagger_errors)),
        );
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            let err = error::ApiError::internal("handler panicked");
            api::error_response(&err, api::Transport::Gateway)
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                // A 5xx answer is not by itself an error of this server: a caller's own deadline
                // (504), a compressed body (501) or a full database (503) are the caller's or the
                // operator's, and logged where they are decided (warn); an internal error logs ERROR
                // itself. At error level here, any caller could fill the log with ERROR lines.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(axum::middleware::map_request(keep_safe_request_id))
}

/// Swagger UI's routes answer an unknown file or another method with a bare status: given the
/// `{code, message}` body every other route answers them with (contract README §3.1).
async fn swagger_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    let bare = !response.headers().contains_key(header::CONTENT_TYPE);
    if !bare || !matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) {
        return response;
    }
    // The answer's own headers (`Allow` on a 405) are kept; the body and its type are the gateway's.
    let mut answer = api::route_error(response.status());
    let own: Vec<_> = answer.headers().keys().cloned().collect();
    for (name, value) in response.headers() {
        if name != header::CONTENT_LENGTH && !own.contains(name) {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

/// A caller's `x-request-id` is kept only when it is one that cannot flood or forge a log line
/// (at most 128 characters of letters, digits and `._:/+=-`, given once); another is dropped and
/// a new one generated in its place.
async fn keep_safe_request_id<B>(mut req: Request<B>) -> Request<B> {
    let safe = |v: &str| {
        !v.is_empty() && v.len() <= 128 && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:/+=-".contains(&c))
    };
    // None when absent (nothing to remove) or given more than once.
    if !api::single_header(req.headers(), REQUEST_ID.as_str()).is_some_and(safe) {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// How long a shutdown waits for requests in flight: the longest a trigger may run, plus a margin.
pub fn shutdown_grace(config: &Config) -> Duration {
    config.max_trigger_time.as_std() + Duration::from_secs(5)
}

/// Serves until `shutdown` resolves; background jobs stop with it.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A TLS configuration that does not load stops the start, before anything runs.
    let tls = match (&state.config.tls_cert_file, &state.config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(std::io::Error::other)?),
        _ => None,
    };
    // The token cache's refresher is one of the background jobs readiness watches; it stops
    // with them, after the requests in flight.
    let refresher = tokio::spawn(refresh_auth(state.clone(), state.background_stop.subscribe()));
    if let Ok(mut tasks) = state.background_tasks.lock() {
        tasks.push(("token cache refresh", refresher));
    }
    let sandbox = state.sandbox.clone();
    tokio::spawn(async move { sandbox.warm().await });
    let router = app(state.clone());
    let read_timeout = state.config.request_read_timeout.as_std();
    let closing = state.closing.clone();
    let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<()>();
    let signalled_at = Arc::new(std::sync::OnceLock::new());
    let signal_time = signalled_at.clone();
    // Live tails end first; then the requests in flight are drained.
    let graceful = async move {
        shutdown.await;
        let _ = signal_time.set(tokio::time::Instant::now());
        closing.send_replace(true);
        let _ = signalled_tx.send(());
    };
    // The drain is bounded: a request still running (or a client still sending one) when the
    // grace period ends is cut off, so that a shutdown always ends.
    let grace = shutdown_grace(&state.config);
    let cut_off = async move {
        if signalled.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "shutting down: connections still open after the grace period are closed"
        );
    };
    use axum::serve::ListenerExt;
    let files = listen::raise_open_file_limit();
    let limits = state.config.connection_limits(files);
    if limits.0 as u64 > files.saturating_sub(1024) {
        tracing::warn!(
            max_connections = limits.0,
            open_file_limit = files,
            "ACTIONSD_MAX_CONNECTIONS leaves fewer than 1024 of the open-file limit to the database, the sandbox \
             workers and outgoing calls: raise the limit (ulimit -n) or lower the setting"
        );
    }
    match tls {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor)?;
            tokio::select! {
                () = listen::serve(listener, router, read_timeout, limits, graceful) => {},
                () = cut_off => {},
            }
        }
        None => {
            // No Nagle delay: an HTTP/2 answer (gRPC) is several small writes (headers, message,
            // trailers), and the last would otherwise wait for the client's delayed ACK (~40 ms).
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            tokio::select! {
                () = listen::serve(listener, router, read_timeout, limits, graceful) => {},
                () = cut_off => {},
            }
        }
    }
    // Triggers whose callers went away run on: their records are written before the run writer
    // stops, within the same grace period from the signal (each is bounded by the trigger time).
    state.detached.close();
    let until = signalled_at.get().copied().unwrap_or_else(tokio::time::Instant::now) + grace;
    if tokio::time::timeout_at(until, state.detached.wait()).await.is_err() {
        tracing::warn!(
            runs = state.detached.len(),
            "shutting down: triggers still running after the grace period are cut off, without their run records"
        );
    }
    // The tails have ended (their connections are drained): their leases go back while the
    // database is still open, so that a restarted server has every slot.
    let releases: Vec<_> = state.lease_releases.lock().map(|mut r| r.drain(..).collect()).unwrap_or_default();
    for release in releases {
        let _ = release.await;
    }
    let _ = state.background_stop.send(true);
    let tasks: Vec<_> = state.background_tasks.lock().map(|mut t| t.drain(..).collect()).unwrap_or_default();
    for (_, task) in tasks {
        let _ = task.await;
    }
    state.store.close().await;
    Ok(())
}

/// Adds the connector's call counters to the stored health every second (and once at shutdown).
async fn flush_connector_health(
    store: Arc<store::Store>,
    health: Arc<service::connector::Health>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let flush = |store: Arc<store::Store>, health: Arc<service::connector::Health>| async move {
        let deltas = health.take();
        if let Err(e) = store::connections::add_health(&store, deltas.clone()).await {
            tracing::warn!(error = %e, "recording connector health failed; kept for the next attempt");
            health.restore(deltas);
        }
    };
    service::every(Duration::from_secs(1), false, stop, || flush(store.clone(), health.clone())).await;
    flush(store, health).await;
}

/// Prunes run records every minute (once across replicas on PostgreSQL).
async fn prune_runs(store: Arc<store::Store>, config: Config, stop: tokio::sync::watch::Receiver<bool>) {
    let (retention, max_rows) = (config.run_retention.as_std(), config.run_max_rows);
    service::every(Duration::from_secs(60), true, stop, || {
        let store = store.clone();
        async move {
            match store::runs::prune(&store, retention, max_rows).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "pruned run records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning run records failed"),
            }
            match store::recordings::prune(&store, max_rows).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "pruned recorded contexts"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning recorded contexts failed"),
            }
        }
    })
    .await
}

/// SQLite, before the background jobs start: this server is the file's only one (it holds the
/// file's lock), so the leases found now are those of a process that died without giving them
/// back. Its live tails' slots are free at once, and its delivery attempts in flight are made
/// again at once, instead of after their leases. A failure leaves them to expire.
async fn release_dead_process_leases(store: &store::Store) {
    if let Err(e) = store::tails::release_all(store).await {
        tracing::warn!(error = %e.message, "dropping a dead process's live-tail leases failed; they expire");
    }
    match store::deliveries::release_stale_leases(store).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deliveries = n, "deliveries leased by a process that died are claimable again"),
        Err(e) => {
            tracing::warn!(error = %e.message, "giving back the delivery leases of a dead process failed; they expire")
        }
    }
}

/// Keeps the leases of this process's open live tails (see `store::tails`).
async fn renew_tail_leases(store: Arc<store::Store>, stop: tokio::sync::watch::Receiver<bool>) {
    service::every(store::tails::RENEW_EVERY, false, stop, || {
        let store = store.clone();
        async move {
            if store.tail.open() == 0 {
                return;
            }
            if let Err(e) = store::tails::renew(&store).await {
                tracing::warn!(error = %e, "renewing the live tails' leases failed");
            }
        }
    })
    .await
}

/// Keeps the node-number lease (see `store::nodes`); it was taken at start.
async fn renew_node_lease(store: Arc<store::Store>, stop: tokio::sync::watch::Receiver<bool>) {
    service::every(store::nodes::RENEW_EVERY, false, stop, || {
        let store = store.clone();
        async move {
            if let Err(e) = store.renew_node_lease().await {
                tracing::warn!(error = %e, "renewing the node-number lease failed");
            }
        }
    })
    .await
}

async fn refresh_auth(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    service::every(api::auth::REFRESH_INTERVAL, true, stop, || {
        let state = state.clone();
        async move {
            if let Err(e) = state.auth.reload(&state.store).await {
                tracing::warn!(error = %e, "token cache reload failed");
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    /// A start on a full database fails at its first write, naming the database and the cause.
    #[tokio::test]
    async fn a_start_on_a_full_database_says_so() {
        use sea_orm::ConnectionTrait;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("full.db").display());
        let opts = crate::store::connect::DbOptions { sqlite_max_size: Some(512 << 10), ..Default::default() };
        let dbs = crate::store::connect::connect(&url, None, &opts).await.expect("connect");
        // Every page in use, the table a start writes first included: rows by the thousand, then
        // one by one until not even one fits.
        let many = format!("INSERT INTO nodes (started_at) VALUES {}", vec!["(1)"; 1000].join(","));
        let mut filled = false;
        for rows in [many.as_str(), "INSERT INTO nodes (started_at) VALUES (1)"] {
            filled = false;
            for _ in 0..100_000 {
                if let Err(e) = dbs.writer.execute_unprepared(rows).await {
                    assert!(crate::store::is_full(&e), "{e}");
                    filled = true;
                    break;
                }
            }
        }
        assert!(filled, "the quota never stopped the inserts");
        let Err(e) = crate::store::Store::new(dbs).await else {
            panic!("a start registered itself in a full database")
        };
        assert!(crate::store::is_full(&e), "{e}");
        let text = format!("{:#}", super::registering_failed(e, &url));
        assert!(text.contains("ACTIONSD_DATABASE_URL sqlite://") && text.contains("is full: free space"), "{text}");
    }

    #[test]
    fn a_database_is_named_without_its_password() {
        for (url, shown) in [
            ("postgres://app:s3cret@db:5432/actions", "ACTIONSD_DATABASE_URL postgres://app:***@db:5432/actions"),
            (
                "postgres://db/actions?user=app&password=s3cret&sslmode=require",
                "ACTIONSD_DATABASE_URL postgres://db/actions?user=app&password=***&sslmode=require",
            ),
            ("sqlite://actionsd.db?mode=rwc", "ACTIONSD_DATABASE_URL sqlite://actionsd.db?mode=rwc"),
            ("host=db password=s3cret", "ACTIONSD_DATABASE_URL (not shown)"),
            ("postgres://app:s3cret@[::1/x", "ACTIONSD_DATABASE_URL postgres://…"),
        ] {
            let named = super::database_named(url);
            assert_eq!(named, shown, "{url}");
        }
    }
}
