//! The one immutable configuration, resolved from flags, environment, `.env` and defaults.
//!
//! Precedence is CLI flag > environment variable > `.env` file > default, per setting. Each
//! setting has its gunicorn flag name, the environment names operators already use (`PORT`,
//! `WEB_CONCURRENCY`, `MODE`, `DATABASE_URI`, `SITE_URL`) or `PYBLOGD_<FLAG>` otherwise, and a
//! default that lives only here. Resolution is two steps, raw strings first, then validation,
//! so every error names the setting and where its value came from. HUP resolves it again.

use crate::cli::Cli;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the binary needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<prefork::BindAddress>,
    pub backlog: i32,
    pub single_process: bool,
    pub supervisor: prefork::Settings,
    pub server: http::ServerConfig,
    pub blog: blog::Config,
    pub log: LogConfig,
}

/// Where log lines go and which are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub level: log::LevelFilter,
    /// `None`: no access log; `Some("-")`: stdout; else a file path.
    pub access_logfile: Option<String>,
    /// `"-"`: stderr; else a file path.
    pub error_logfile: String,
}

/// The raw value of a setting and where it came from, for error messages.
struct Raw {
    value: String,
    origin: String,
}

/// Looks settings up in the environment, then in the `.env` file.
struct Sources {
    dotenv: HashMap<String, String>,
    dotenv_path: PathBuf,
}

impl Sources {
    fn load(cli: &Cli) -> Result<Sources, String> {
        let explicit = cli
            .env_file
            .clone()
            .or_else(|| std::env::var_os("PYBLOGD_ENV_FILE").map(PathBuf::from));
        let path = explicit.clone().unwrap_or_else(|| PathBuf::from(".env"));
        let mut dotenv = HashMap::new();
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) =
                        item.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    dotenv.insert(key, value);
                }
            }
            // A missing default `.env` is normal; a missing file the operator named is not.
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                if explicit.is_some() {
                    return Err(format!("env file {} does not exist", path.display()));
                }
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        Ok(Sources {
            dotenv,
            dotenv_path: path,
        })
    }

    /// The first of `keys` set in the environment, else in `.env`.
    fn lookup(&self, keys: &[&str]) -> Option<Raw> {
        for key in keys {
            if let Ok(value) = std::env::var(key) {
                return Some(Raw {
                    value,
                    origin: format!("environment variable {key}"),
                });
            }
        }
        for key in keys {
            if let Some(value) = self.dotenv.get(*key) {
                return Some(Raw {
                    value: value.clone(),
                    origin: format!("{key} in {}", self.dotenv_path.display()),
                });
            }
        }
        None
    }

    /// The flag's value if given, else the environment / `.env` value.
    fn setting(&self, flag: &Option<String>, name: &str, keys: &[&str]) -> Option<Raw> {
        match flag {
            Some(value) => Some(Raw {
                value: value.clone(),
                origin: format!("--{name}"),
            }),
            None => self.lookup(keys),
        }
    }
}

fn parse_num<T: std::str::FromStr>(raw: Option<Raw>, default: T, what: &str) -> Result<T, String> {
    match raw {
        None => Ok(default),
        Some(raw) => raw.value.trim().parse::<T>().map_err(|_| {
            format!(
                "{} = {:?}: {what} must be a whole number",
                raw.origin, raw.value
            )
        }),
    }
}

fn parse_seconds(raw: Option<Raw>, default: u64) -> Result<Duration, String> {
    match raw {
        None => Ok(Duration::from_secs(default)),
        Some(raw) => {
            let secs: f64 = raw
                .value
                .trim()
                .parse()
                .map_err(|_| format!("{} = {:?}: expected seconds", raw.origin, raw.value))?;
            if !(0.0..=86_400.0 * 365.0).contains(&secs) {
                return Err(format!("{} = {:?}: out of range", raw.origin, raw.value));
            }
            Ok(Duration::from_secs_f64(secs))
        }
    }
}

fn at_least<T: PartialOrd + std::fmt::Display>(value: T, min: T, what: &str) -> Result<T, String> {
    if value < min {
        return Err(format!("{what} must be at least {min}, got {value}"));
    }
    Ok(value)
}

fn parse_level(raw: Option<Raw>) -> Result<log::LevelFilter, String> {
    let Some(raw) = raw else {
        return Ok(log::LevelFilter::Info);
    };
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "debug" => Ok(log::LevelFilter::Debug),
        "info" => Ok(log::LevelFilter::Info),
        "warning" | "warn" => Ok(log::LevelFilter::Warn),
        "error" | "critical" => Ok(log::LevelFilter::Error),
        _ => Err(format!(
            "{} = {:?}: log level must be debug, info, warning, error or critical",
            raw.origin, raw.value
        )),
    }
}

fn parse_mode(raw: Option<Raw>) -> Result<blog::Mode, String> {
    let Some(raw) = raw else {
        return Ok(blog::Mode::Production);
    };
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "development" | "dev" => Ok(blog::Mode::Development),
        "production" | "prod" | "" => Ok(blog::Mode::Production),
        _ => Err(format!(
            "{} = {:?}: MODE must be development or production",
            raw.origin, raw.value
        )),
    }
}

fn parse_site_url(raw: Option<Raw>) -> Result<Option<String>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let url = raw.value.trim().trim_end_matches('/');
    if url.is_empty() {
        return Ok(None);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c == '"') => {
            Ok(Some(url.to_string()))
        }
        _ => Err(format!(
            "{} = {:?}: SITE_URL must be an absolute http:// or https:// URL",
            raw.origin, raw.value
        )),
    }
}

fn parse_binds(cli: &Cli, sources: &Sources) -> Result<Vec<prefork::BindAddress>, String> {
    let texts: Vec<(String, String)> = if !cli.bind.is_empty() {
        cli.bind
            .iter()
            .map(|b| (b.clone(), "--bind".to_string()))
            .collect()
    } else if let Some(raw) = sources.lookup(&["PYBLOGD_BIND"]) {
        raw.value
            .split(',')
            .map(|b| (b.trim().to_string(), raw.origin.clone()))
            .collect()
    } else if let Some(raw) = sources.lookup(&["PORT"]) {
        let port: u16 = raw.value.trim().parse().map_err(|_| {
            format!(
                "{} = {:?}: PORT must be a port number",
                raw.origin, raw.value
            )
        })?;
        vec![(format!("0.0.0.0:{port}"), raw.origin)]
    } else {
        vec![("127.0.0.1:8000".to_string(), "default".to_string())]
    };
    texts
        .into_iter()
        .map(|(text, origin)| {
            prefork::BindAddress::parse(&text).map_err(|e| format!("{origin} = {text:?}: {e}"))
        })
        .collect()
}

fn flag_env(name: &str) -> String {
    format!("PYBLOGD_{}", name.replace('-', "_").to_ascii_uppercase())
}

impl Config {
    /// Resolves and validates the configuration; the error is one readable line.
    pub fn resolve(cli: &Cli) -> Result<Config, String> {
        let src = Sources::load(cli)?;
        let get = |flag: &Option<String>, name: &str| src.setting(flag, name, &[&flag_env(name)]);

        let workers = parse_num(
            src.setting(
                &cli.workers,
                "workers",
                &["WEB_CONCURRENCY", "PYBLOGD_WORKERS"],
            ),
            1usize,
            "workers",
        )?;
        let workers = at_least(workers, 1, "workers")?;
        let threads = at_least(
            parse_num(get(&cli.threads, "threads"), 4usize, "threads")?,
            1,
            "threads",
        )?;
        if threads > 1024 {
            return Err(format!("threads must be at most 1024, got {threads}"));
        }
        let timeout = parse_seconds(get(&cli.timeout, "timeout"), 30)?;
        let graceful_timeout = parse_seconds(get(&cli.graceful_timeout, "graceful-timeout"), 30)?;
        // 5 s rather than gunicorn's 2 s: load balancers commonly keep idle upstream
        // connections for longer, and a server closing first races them into 502s.
        let keep_alive = parse_seconds(get(&cli.keep_alive, "keep-alive"), 5)?;
        let header_timeout = parse_seconds(get(&cli.header_timeout, "header-timeout"), 10)?;
        if header_timeout < Duration::from_millis(100) {
            return Err("header-timeout must be at least 0.1 seconds".to_string());
        }
        let max_requests: u64 =
            parse_num(get(&cli.max_requests, "max-requests"), 0, "max-requests")?;
        let max_requests_jitter: u64 = parse_num(
            get(&cli.max_requests_jitter, "max-requests-jitter"),
            0,
            "max-requests-jitter",
        )?;
        let limits = http::Limits {
            request_line: parse_num(
                get(&cli.limit_request_line, "limit-request-line"),
                4094,
                "limit-request-line",
            )?,
            request_fields: parse_num(
                get(&cli.limit_request_fields, "limit-request-fields"),
                100,
                "limit-request-fields",
            )?,
            request_field_size: parse_num(
                get(&cli.limit_request_field_size, "limit-request-field_size"),
                8190,
                "limit-request-field_size",
            )?,
            request_body: parse_num(
                get(&cli.limit_request_body, "limit-request-body"),
                1024 * 1024,
                "limit-request-body",
            )?,
        };
        if limits.request_field_size == 0 || limits.request_fields == 0 {
            return Err(
                "limit-request-fields and limit-request-field_size must be positive".into(),
            );
        }
        let backlog: i32 = at_least(
            parse_num(get(&cli.backlog, "backlog"), 2048, "backlog")?,
            1,
            "backlog",
        )?;

        let access_logfile = get(&cli.access_logfile, "access-logfile").map(|r| r.value);
        let error_logfile = get(&cli.error_logfile, "error-logfile")
            .map(|r| r.value)
            .unwrap_or_else(|| "-".to_string());
        let level = parse_level(get(&cli.log_level, "log-level"))?;

        let mode = parse_mode(src.setting(&cli.mode, "mode", &["MODE", "PYBLOGD_MODE"]))?;
        let database = match src.setting(&cli.database_uri, "database-uri", &["DATABASE_URI"]) {
            Some(raw) if !raw.value.trim().is_empty() => {
                blog::DatabaseTarget::parse(raw.value.trim())
                    .map_err(|e| format!("{} = {:?}: {e}", raw.origin, raw.value))?
            }
            _ => blog::DatabaseTarget::Sqlite(PathBuf::from("blog.db")),
        };
        let site_url = parse_site_url(src.setting(&cli.site_url, "site-url", &["SITE_URL"]))?;
        let fault_routes = src
            .lookup(&["PYBLOGD_FAULT_ROUTES"])
            .is_some_and(|r| matches!(r.value.trim(), "1" | "true" | "yes"));

        // The admin token comes from the environment or `.env` only: a flag would show it to
        // every user of the machine in `ps`.
        let admin_token = src
            .lookup(&["ADMIN_TOKEN"])
            .map(|r| r.value.trim().to_string())
            .filter(|t| !t.is_empty());
        if let Some(token) = &admin_token {
            if token.len() < 16 {
                return Err(format!(
                    "ADMIN_TOKEN is {} characters long: use at least 16 (e.g. `openssl rand -hex 16`)",
                    token.len()
                ));
            }
        }
        // 10 a minute per address: more than a person writes, few enough that a script
        // filling the blog with junk is slowed to a trickle.
        let post_rate_limit: u32 = parse_num(
            src.setting(
                &cli.post_rate_limit,
                "post-rate-limit",
                &["POST_RATE_LIMIT", "PYBLOGD_POST_RATE_LIMIT"],
            ),
            10,
            "post-rate-limit",
        )?;

        let forwarded_allow_ips = match src.setting(
            &cli.forwarded_allow_ips,
            "forwarded-allow-ips",
            &["FORWARDED_ALLOW_IPS", "PYBLOGD_FORWARDED_ALLOW_IPS"],
        ) {
            None => http::ForwardedAllow::default(),
            Some(raw) => http::ForwardedAllow::parse(&raw.value)
                .map_err(|e| format!("{} = {:?}: {e}", raw.origin, raw.value))?,
        };

        let binds = parse_binds(cli, &src)?;
        let non_zero = |d: Duration| (!d.is_zero()).then_some(d);
        // A slow query is cancelled by the server well before the master would kill its
        // worker for it: a third of `--timeout` is left for rendering and writing the page.
        let database = match database {
            blog::DatabaseTarget::Postgres(mut pg) => {
                if let Some(limit) = non_zero(timeout) {
                    pg.statement_timeout = pg.statement_timeout.min(limit * 2 / 3);
                }
                blog::DatabaseTarget::Postgres(pg)
            }
            other => other,
        };

        Ok(Config {
            binds,
            backlog,
            single_process: cli.single_process,
            supervisor: prefork::Settings {
                workers,
                threads,
                timeout: non_zero(timeout),
                graceful_timeout,
                max_requests: (max_requests > 0).then_some(max_requests),
                max_requests_jitter,
                pidfile: cli
                    .pidfile
                    .clone()
                    .or_else(|| src.lookup(&["PYBLOGD_PID"]).map(|r| PathBuf::from(r.value))),
                proc_name: "pyblogd".to_string(),
            },
            server: http::ServerConfig {
                threads,
                keep_alive,
                header_timeout,
                limits,
                graceful_timeout,
                forwarded_allow_ips,
                ..http::ServerConfig::default()
            },
            blog: blog::Config {
                database,
                mode,
                site_url,
                templates_dir: PathBuf::from("templates"),
                static_dir: PathBuf::from("static"),
                fault_routes,
                admin_token,
                post_rate_limit,
            },
            log: LogConfig {
                level,
                access_logfile,
                error_logfile,
            },
        })
    }

    /// A human-readable summary, printed by `--check-config`.
    pub fn describe(&self) -> String {
        let binds: Vec<String> = self.binds.iter().map(|b| format!("{b:?}")).collect();
        let db = match &self.blog.database {
            blog::DatabaseTarget::Sqlite(p) => format!("sqlite {}", display(p)),
            blog::DatabaseTarget::Postgres(pg) => format!(
                "postgres {} (pool {} per worker, statement timeout {:?})",
                pg.redacted(),
                pg.pool_size,
                pg.statement_timeout
            ),
        };
        format!(
            "bind: {}\nworkers: {}\nthreads: {}\ntimeout: {:?}\nkeep-alive: {:?}\nmode: {:?}\ndatabase: {db}\nsite-url: {}\nadmin-token: {}\npost-rate-limit: {}\nforwarded-allow-ips: {}\n",
            binds.join(", "),
            self.supervisor.workers,
            self.supervisor.threads,
            self.supervisor.timeout,
            self.server.keep_alive,
            self.blog.mode,
            self.blog.site_url.as_deref().unwrap_or("(none)"),
            // Never the token itself: this output lands in terminals and CI logs.
            if self.blog.admin_token.is_some() { "set" } else { "unset (no admin)" },
            match self.blog.post_rate_limit {
                0 => "off".to_string(),
                n => format!("{n} per minute per address"),
            },
            match &self.server.forwarded_allow_ips {
                http::ForwardedAllow::Any => "*".to_string(),
                http::ForwardedAllow::Ips(ips) => ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            },
        )
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
