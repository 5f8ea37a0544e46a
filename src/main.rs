//! The `actionsd` command: serve (default), migrate, openapi, org create, token create.

use actionsd::config::Config;
use actionsd::domain::role::Role;
use actionsd::store;
use clap::{Parser, Subcommand};

/// mimalloc instead of the C library's allocator: a sandbox run builds a fresh realm (thousands of
/// small objects) and drops it, and glibc's malloc/free took about 30 % of a run's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "actionsd", version, about = "A standalone, ZITADEL-compatible identity actions server")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Measure the per-run cost of the sandbox (benchmark helper).
    #[command(hide = true)]
    BenchRuntime {
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
    },
    /// Measure delivery throughput and latency and the cost of a request execution (benchmark helper).
    #[command(hide = true)]
    BenchDelivery {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 300)]
        latency_events: usize,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Internal: a sandbox worker process, started by the server.
    #[command(hide = true)]
    SandboxWorker {
        #[arg(long, default_value_t = 64 << 20)]
        memory_limit: u64,
        /// Where the worker writes the log records of its runs as they are made (see
        /// `runtime::LogSpill`); without it, nowhere.
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and print its id.
    Create { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token and print it.
    Create {
        /// Organization id, or `default`.
        #[arg(long, default_value = "default")]
        org: String,
        /// IAM_OWNER, ORG_OWNER, ORG_VIEWER or ORG_EXECUTOR.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        description: String,
    },
}

/// The command line, with the server's settings accepted before or after the subcommand
/// (`actionsd --addr … serve` and `actionsd serve --addr …`).
/// `exported` holds the `ACTIONSD_*` variables of the environment before `.env` was read.
fn parse_cli(exported: &std::collections::HashSet<std::ffi::OsString>) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_args(|a| a.global(true));
    let matches = command.clone().try_get_matches().unwrap_or_else(|e| refused(&command, e, exported));
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| refused(&command, e, exported))
}

/// Ends the process for a refused command line or setting. clap names the flag; a value that came
/// from an `ACTIONSD_*` variable (the environment or `.env`) is named by its variable as well, so
/// that whoever set it there finds it.
fn refused(command: &clap::Command, e: clap::Error, exported: &std::collections::HashSet<std::ffi::OsString>) -> ! {
    use clap::error::{ContextKind, ContextValue};
    // The argument clap names (`--flag <VALUE>`).
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(named)) => named
            .split_whitespace()
            .next()
            .and_then(|flag| command.get_arguments().find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))),
        _ => None,
    };
    // A refused value of a secret setting (the database URL, the keys: those whose variables'
    // values are hidden in `--help`) is not echoed: the error goes to container logs and journals.
    match (arg, e.get(ContextKind::InvalidValue)) {
        (Some(arg), Some(ContextValue::String(value))) if arg.is_hide_env_values_set() && !value.is_empty() => {
            let shown = if arg.get_long() == Some("database-url") {
                actionsd::database_url_shown(value)
            } else {
                "(not shown)".to_string()
            };
            eprint!("{}", e.render().to_string().replace(value.as_str(), &shown));
        }
        _ => {
            let _ = e.print();
        }
    }
    let given_as_flag =
        |long: &str| std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    if let Some((long, env)) = arg.and_then(|a| Some((a.get_long()?, a.get_env()?))) {
        if !given_as_flag(long) && std::env::var_os(env).is_some() {
            if exported.contains(env) {
                eprintln!("(the value comes from the variable {})", env.to_string_lossy());
            } else {
                eprintln!("(the value comes from {} in .env)", env.to_string_lossy());
            }
        }
    }
    std::process::exit(e.exit_code())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: not into files, journald or container logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A log line that cannot be written (stderr a pipe whose reader is gone) is dropped: reporting
    // the failure would write to the same stderr, and a panic there would take the request (or
    // the whole start) with it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .log_internal_errors(false);
    if format.eq_ignore_ascii_case("json") {
        builder.json().flatten_event(true).with_current_span(true).init();
    } else {
        builder.init();
    }
}

/// The first SIGTERM or ctrl-c starts the graceful shutdown; a second one ends the process at
/// once (its sandbox workers end with it: their input pipe closes).
async fn shutdown_signal() {
    one_signal().await;
    tracing::info!("shutting down: finishing in-flight requests (a second signal stops at once)");
    tokio::spawn(async {
        one_signal().await;
        tracing::warn!("second signal: stopping now");
        std::process::exit(1);
    });
}

async fn one_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> std::process::ExitCode {
    // Sandbox workers never start an async runtime: they only run scripts.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sandbox-worker") {
        let cli = Cli::parse();
        if let Some(Command::SandboxWorker { memory_limit, log_dir }) = cli.command {
            return actionsd::runtime::worker::main(actionsd::runtime::WorkerSettings {
                memory_limit,
                log_dir,
                deny_list: cli.config.http_deny_list,
                allow_list: cli.config.http_allow_list,
            });
        }
    }
    match server_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "actionsd: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once: database errors repeat their cause in their own text.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[tokio::main]
async fn server_main() -> anyhow::Result<()> {
    // A `.env` that cannot be read in full would leave every setting after the bad line unset
    // without a word: refused instead (a missing file is fine).
    // A `.env` that is there but is not a file (a directory a bind mount made in its place) is
    // refused too rather than starting on defaults.
    if std::fs::metadata(".env").is_ok_and(|m| !m.is_file()) {
        anyhow::bail!(".env: not a file");
    }
    // What was exported before `.env` adds its lines: a refused value is traced to one or the other.
    let exported: std::collections::HashSet<std::ffi::OsString> =
        std::env::vars_os().map(|(k, _)| k).filter(|k| k.to_string_lossy().starts_with("ACTIONSD_")).collect();
    if let Err(e) = dotenvy::dotenv() {
        if let dotenvy::Error::LineParse(line, at) = &e {
            // Named by its variable, never quoted: the line may hold a key or a token.
            // The parser gives the text it failed on (a whole line, or only its value): the file's
            // line holding it says which variable it is.
            let first = line.lines().next().unwrap_or("").trim();
            let text = std::fs::read_to_string(".env").unwrap_or_default();
            let found = text.lines().enumerate().find(|(_, l)| !first.is_empty() && l.contains(first));
            let name = found
                .and_then(|(_, l)| l.split_once('='))
                .map(|(name, _)| name.trim().trim_start_matches("export ").trim())
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            let which = match (found, name) {
                (Some((n, _)), Some(name)) => format!("the line of {name} (line {})", n + 1),
                (Some((n, _)), None) => format!("line {}", n + 1),
                _ => "a line".to_string(),
            };
            anyhow::bail!(
                ".env: {which} does not parse at character {at} (a value with spaces needs quotes, and a quote must be closed)"
            );
        }
        if !e.not_found() {
            anyhow::bail!(".env: {e}");
        }
    }
    let cli = parse_cli(&exported);
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::SandboxWorker { .. } => anyhow::bail!("sandbox-worker is started by the server"),
        Command::BenchRuntime { iterations } => {
            actionsd::runtime::bench::run(iterations, std::env::current_exe()?).await;
        }
        Command::BenchDelivery { events, latency_events, requests } => {
            actionsd::v2::bench::run(config, events, latency_events, requests).await?;
        }
        Command::Openapi => {
            print!("{}", actionsd::api::openapi::json());
        }
        Command::Migrate => {
            init_logging(&config.log_format);
            // In its turn on a SQLite file, and after the encryption key is checked.
            actionsd::migrate_database(config.clone()).await?;
            tracing::info!("migrations applied");
        }
        Command::Serve => {
            init_logging(&config.log_format);
            // The TLS pair and the address are checked (and the port taken) before the database
            // (and its lock file), the key and the token files are created: a typo there leaves nothing behind.
            if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) {
                actionsd::tls::acceptor(cert, key).map_err(|e| {
                    anyhow::anyhow!(
                        "--tls-cert-file/--tls-key-file (ACTIONSD_TLS_CERT_FILE, ACTIONSD_TLS_KEY_FILE): {e:#}"
                    )
                })?;
            }
            let listener = tokio::net::TcpListener::bind(&config.addr)
                .await
                .map_err(|e| anyhow::anyhow!("ACTIONSD_ADDR {:?}: {e}", config.addr))?;
            // Held until the process ends (the kernel releases it then, also after SIGKILL).
            let _serving = actionsd::claim_sqlite_file(&config.database_url)?;
            let state = actionsd::build_state(config.clone()).await?;
            tracing::info!(addr = %listener.local_addr()?, "actionsd listening");
            actionsd::serve(state, listener, shutdown_signal()).await?;
        }
        Command::Org { command: OrgCommand::Create { name } } => {
            // The API's rule, before anything is opened or created.
            let name = actionsd::api::management::checked_org_name(&name)
                .map_err(|e| anyhow::anyhow!("{}", e.full_message()))?
                .to_string();
            let state = actionsd::build_state_for_command(config).await?;
            let org = store::orgs::add_org(&state.store, name, 0)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.full_message()))?;
            println!("{}", org.id);
        }
        Command::Token { command: TokenCommand::Create { org, role, description } } => {
            // The arguments first: a typo creates no database, key file or bootstrap token.
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("unknown role {role:?}: use IAM_OWNER, ORG_OWNER, ORG_VIEWER or ORG_EXECUTOR")
            })?;
            let named = if org.eq_ignore_ascii_case("default") {
                None
            } else {
                Some(actionsd::domain::id::parse(&org).ok_or_else(|| anyhow::anyhow!("invalid org id {org:?}"))?)
            };
            let state = actionsd::build_state_for_command(config).await?;
            let org_id = named.unwrap_or(state.default_org);
            let new = store::tokens::NewToken { org_id, role, description, expires_at: None, is_bootstrap: false };
            let (_, secret) = store::tokens::add_token(&state.store, new, 0)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.full_message()))?;
            println!("{secret}");
        }
    }
    Ok(())
}
