//! The settings as documented: `.env.example` reads in full as a `.env`, and it, the README's
//! configuration table and the server's own settings name the same variables. A `.env` that
//! cannot be read, and a refused value set by a variable, stop the start naming what to fix.

use std::collections::BTreeSet;
use std::path::Path;

/// Variables the server reads from the environment only (no flag).
const ENVIRONMENT_ONLY: [&str; 3] = ["RUST_LOG", "SSL_CERT_FILE", "SSL_CERT_DIR"];

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect(name)
}

/// Names that look like settings in `text`: `ACTIONSD_*`, `RUST_LOG`, `SSL_CERT_*`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (start, _) in text.match_indices(['A', 'R', 'S']) {
        let rest = &text[start..];
        if !(rest.starts_with("ACTIONSD_") || rest.starts_with("RUST_LOG") || rest.starts_with("SSL_CERT_")) {
            continue;
        }
        if start > 0 && text.as_bytes()[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let end =
            rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())).unwrap_or(rest.len());
        out.insert(rest[..end].trim_end_matches('_').to_string());
    }
    out
}

/// The variables of the server's settings that an operator sets (hidden ones are for tests).
fn server_settings() -> BTreeSet<String> {
    use clap::Args;
    let command = actionsd::config::Config::augment_args(clap::Command::new("actionsd"));
    let mut out: BTreeSet<String> = command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    out.extend(ENVIRONMENT_ONLY.iter().map(|s| s.to_string()));
    out
}

#[test]
fn env_example_reads_in_full() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.example");
    let mut read = 0;
    for item in dotenvy::from_path_iter(&path).expect(".env.example") {
        let (key, _) = item.unwrap_or_else(|e| panic!(".env.example does not read as a .env: {e}"));
        assert!(key.starts_with("ACTIONSD_") || ENVIRONMENT_ONLY.contains(&key.as_str()), "{key}");
        read += 1;
    }
    let set_lines = repo_file(".env.example").lines().filter(|l| !l.starts_with('#') && l.contains('=')).count();
    assert_eq!(read, set_lines, "every line that sets a variable is read");
}

#[test]
fn env_example_readme_and_server_name_the_same_settings() {
    let readme = repo_file("README.md");
    let start = readme.find("## Configuration").expect("README has a Configuration section");
    let end = start + readme[start..].find("\n## Running on PostgreSQL").expect("the section after it");
    let table: String = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            // The first cell only: the variables the row is about.
            l.split(" | ").next().unwrap_or("").to_string() + "\n"
        })
        .collect();
    let in_readme = names_in(&table);
    let in_example = names_in(&repo_file(".env.example"));
    let in_server = server_settings();
    assert_eq!(in_readme, in_server, "README configuration table vs the server's settings");
    assert_eq!(in_example, in_server, ".env.example vs the server's settings");
}

/// Runs `actionsd serve` in a fresh directory with `dotenv` as its `.env` and `env` set; returns
/// (exit code, stderr). Only for starts that are refused.
fn refused_start(dotenv: Option<&str>, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(text) = dotenv {
        std::fs::write(dir.path().join(".env"), text).expect(".env");
    }
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_actionsd"));
    command.arg("serve").current_dir(dir.path()).env("ACTIONSD_ADDR", "127.0.0.1:0");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run actionsd");
    let created: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert!(created.iter().all(|n| n == ".env"), "a refused start created {created:?}");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_env_file_or_value_stops_the_start_naming_it() {
    // An unquoted value with spaces: every later line would be lost.
    let (code, stderr) =
        refused_start(Some("ACTIONSD_HTTP_DENY_LIST=10.0.0.0/8, localhost\nACTIONSD_LOG_FORMAT=json\n"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(".env") && stderr.contains("quotes"), "{stderr}");
    // A line that does not parse is named by its variable, never quoted: it may hold a key.
    for line in [
        "ACTIONSD_ENCRYPTION_KEY=MyVerySecret EncryptionKey-0123\n",
        "ACTIONSD_ADMIN_TOKEN=\"MySecretAdminToken-0123\n",
    ] {
        let (code, stderr) = refused_start(Some(line), &[]);
        assert_eq!(code, Some(1), "{stderr}");
        let name = line.split('=').next().unwrap();
        assert!(stderr.contains(&format!(".env: the line of {name} (line 1) does not parse")), "{stderr}");
        assert!(
            !stderr.contains("MyVerySecret") && !stderr.contains("MySecretAdminToken"),
            "a secret echoed: {stderr}"
        );
    }
    // A database URL that is refused is shown without its password.
    for url in [
        "postgress://app:DbPassw0rd@db.example:5432/actionsd",
        "mysql://app:DbPassw0rd@db/x",
        "postgres:app:DbPassw0rd",
    ] {
        let (code, stderr) = refused_start(None, &[("ACTIONSD_DATABASE_URL", url)]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("unsupported database URL"), "{stderr}");
        assert!(!stderr.contains("DbPassw0rd"), "the password echoed: {stderr}");
    }
    // A refused value from a variable names the variable, from the environment and from `.env`.
    let (code, stderr) = refused_start(None, &[("ACTIONSD_SANDBOX_WORKERS", "0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ACTIONSD_SANDBOX_WORKERS"), "{stderr}");
    let (code, stderr) = refused_start(Some("ACTIONSD_MAX_ACTION_TIMEOUT=0s\n"), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ACTIONSD_MAX_ACTION_TIMEOUT") && stderr.contains(".env"), "{stderr}");
    // A retry step under 100ms would retry a failing delivery all but without pause; a SQLite
    // limit below what the schema takes could only fail after creating the files.
    for (variable, value, says) in [
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", "5s,0s", "at least 100ms"),
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", "0.000000001s", "at least 100ms"),
        ("ACTIONSD_SQLITE_MAX_SIZE", "1KiB", "at least 512KiB"),
    ] {
        let (code, stderr) = refused_start(None, &[(variable, value)]);
        assert_eq!(code, Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable) && stderr.contains(says), "{variable}: {stderr}");
    }
}
