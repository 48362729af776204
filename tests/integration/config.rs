//! Configuration through the real binary: `--check-config`, precedence of flags > environment >
//! `.env` > defaults, and one clear line with exit status 2 for every kind of bad value.

use crate::support;

use std::process::{Command, Output};

fn check_config(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(support::binary());
    cmd.current_dir(dir)
        .arg("--check-config")
        .args(args)
        .env_remove("PORT")
        .env_remove("WEB_CONCURRENCY")
        .env_remove("MODE")
        .env_remove("DATABASE_URI")
        .env_remove("SITE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pyblogd --check-config")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn defaults_are_gunicorns() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("127.0.0.1:8000"), "{text}");
    assert!(text.contains("workers: 1\n"), "{text}");
    assert!(text.contains("threads: 4\n"), "{text}");
    assert!(text.contains("timeout: Some(30s)"), "{text}");
    assert!(text.contains("keep-alive: 5s"), "{text}");
    assert!(text.contains("mode: Production"), "{text}");
    assert!(text.contains("database: sqlite blog.db"), "{text}");
    assert!(text.contains("configuration OK"), "{text}");
}

#[test]
fn dotenv_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "WEB_CONCURRENCY=3\nMODE=development\nPORT=9123\nDATABASE_URI=sqlite:///data/posts.db\nPYBLOGD_THREADS=6\n",
    )
    .unwrap();

    let out = check_config(dir.path(), &[], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("workers: 3\n"), ".env applies: {text}");
    assert!(text.contains("mode: Development"), "{text}");
    assert!(
        text.contains("0.0.0.0:9123"),
        "PORT binds all interfaces: {text}"
    );
    assert!(text.contains("database: sqlite data/posts.db"), "{text}");
    assert!(text.contains("threads: 6\n"), "{text}");

    let out = check_config(
        dir.path(),
        &[],
        &[("WEB_CONCURRENCY", "2"), ("MODE", "production")],
    );
    let text = stdout(&out);
    assert!(
        text.contains("workers: 2\n"),
        "environment beats .env: {text}"
    );
    assert!(text.contains("mode: Production"), "{text}");
    assert!(
        text.contains("threads: 6\n"),
        "untouched keys still come from .env: {text}"
    );

    let out = check_config(
        dir.path(),
        &[
            "-w",
            "5",
            "--bind",
            "127.0.0.1:7001",
            "--mode",
            "development",
        ],
        &[("WEB_CONCURRENCY", "2"), ("MODE", "production")],
    );
    let text = stdout(&out);
    assert!(
        text.contains("workers: 5\n"),
        "flags beat environment: {text}"
    );
    assert!(text.contains("127.0.0.1:7001"), "{text}");
    assert!(!text.contains("9123"), "--bind replaces PORT: {text}");
    assert!(text.contains("mode: Development"), "{text}");
}

#[test]
fn absolute_sqlite_uri_uses_four_slashes() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(
        dir.path(),
        &["--database-uri", "sqlite:////var/tmp/blog.db"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains("database: sqlite /var/tmp/blog.db"),
        "{}",
        stdout(&out)
    );
}

/// Flags, environment, and a word the error line must contain.
type BadCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_bad_value_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[BadCase] = &[
        (&["-w", "0"], &[], "workers"),
        (&["-w", "many"], &[], "workers"),
        (&["--bind", "nonsense"], &[], "nonsense"),
        (&["--bind", "127.0.0.1:99999"], &[], "99999"),
        (&["--timeout", "soon"], &[], "timeout"),
        (&["--log-level", "loud"], &[], "log level"),
        (&[], &[("MODE", "staging")], "MODE"),
        (
            &[],
            &[("DATABASE_URI", "postgres://db/blog?sslmode=require")],
            "DATABASE_URI",
        ),
        (&[], &[("DATABASE_URI", "mysql://x")], "DATABASE_URI"),
        (&[], &[("SITE_URL", "example.com")], "SITE_URL"),
        (&[], &[("PORT", "eighty")], "PORT"),
        (&["--threads", "0"], &[], "threads"),
    ];
    for (args, env, needle) in cases {
        let out = check_config(dir.path(), args, env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line for {args:?} {env:?}: {err}"
        );
        assert!(err.contains("configuration error"), "{err}");
        assert!(
            err.contains(needle),
            "{args:?} {env:?} should name {needle}: {err}"
        );
        assert!(
            stdout(&out).is_empty(),
            "nothing started or printed: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_named_env_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(dir.path(), &["--env-file", "missing.env"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.env"), "{}", stderr(&out));
}

#[test]
fn version_flag() {
    let out = Command::new(support::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("pyblogd "), "{}", stdout(&out));
}

#[test]
fn a_bad_config_starts_nothing() {
    // Nothing listens, nothing forks: the process exits at once with status 2.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::binary())
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0", "-w", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("Listening at"), "{}", stderr(&out));
    assert!(!dir.path().join("blog.db").exists(), "no database touched");
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(support::binary())
        .current_dir(dir.path())
        .args(["--bind", &addr, "-w", "1"])
        .env_remove("DATABASE_URI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("pyblogd: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(&format!("cannot bind {addr}: ")), "{line}");
    assert_eq!(line.matches("in use").count(), 1, "the cause once: {line}");
    assert!(!dir.path().join("blog.db").exists(), "no database touched");
}
