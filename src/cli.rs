//! Command-line flags, named as gunicorn names them.
//!
//! Every flag is optional here: an absent flag falls through to the environment, then `.env`,
//! then the default in `config.rs`. Parsing values and applying defaults happen there, in one place.

use clap::Parser;
use std::path::PathBuf;

/// A gunicorn-shaped prefork HTTP/1.1 server and the blog it serves.
#[derive(Debug, Clone, Parser)]
#[command(name = "pyblogd", version, about, max_term_width = 100)]
pub struct Cli {
    /// Worker processes [env: WEB_CONCURRENCY] [default: 1].
    #[arg(short = 'w', long)]
    pub workers: Option<String>,

    /// Socket to bind: HOST:PORT, :PORT (all interfaces), [::1]:PORT, unix:PATH or fd://N.
    /// Repeatable. [default: 0.0.0.0:$PORT when PORT is set, else 127.0.0.1:8000]
    #[arg(short = 'b', long = "bind")]
    pub bind: Vec<String>,

    /// Handler threads per worker [env: PYBLOGD_THREADS] [default: 4].
    #[arg(long)]
    pub threads: Option<String>,

    /// Kill a worker silent or stuck on one request this many seconds (0 = never) [default: 30].
    #[arg(short = 't', long)]
    pub timeout: Option<String>,

    /// Seconds a stopping worker may spend finishing requests before it is killed [default: 30].
    #[arg(long = "graceful-timeout")]
    pub graceful_timeout: Option<String>,

    /// Seconds an idle keep-alive connection is kept open [default: 5].
    #[arg(long = "keep-alive")]
    pub keep_alive: Option<String>,

    /// Seconds a client may take to send a complete request head (then 408) [default: 10].
    #[arg(long = "header-timeout")]
    pub header_timeout: Option<String>,

    /// Recycle a worker after this many requests (0 = never) [default: 0].
    #[arg(long = "max-requests")]
    pub max_requests: Option<String>,

    /// Up to this many extra requests added at random to --max-requests per worker [default: 0].
    #[arg(long = "max-requests-jitter")]
    pub max_requests_jitter: Option<String>,

    /// Longest request line in bytes (0 = unlimited) [default: 4094].
    #[arg(long = "limit-request-line")]
    pub limit_request_line: Option<String>,

    /// Most header fields in a request [default: 100].
    #[arg(long = "limit-request-fields")]
    pub limit_request_fields: Option<String>,

    /// Longest header field (name and value) in bytes [default: 8190].
    #[arg(long = "limit-request-field_size", alias = "limit-request-field-size")]
    pub limit_request_field_size: Option<String>,

    /// Largest request body in bytes [default: 1048576].
    #[arg(long = "limit-request-body")]
    pub limit_request_body: Option<String>,

    /// Access log file; '-' is stdout [default: none].
    #[arg(long = "access-logfile")]
    pub access_logfile: Option<String>,

    /// Error log file; '-' is stderr [default: -].
    #[arg(long = "error-logfile", alias = "log-file")]
    pub error_logfile: Option<String>,

    /// debug, info, warning, error or critical [default: info].
    #[arg(long = "log-level")]
    pub log_level: Option<String>,

    /// Write the master's pid to this file.
    #[arg(short = 'p', long = "pid")]
    pub pidfile: Option<PathBuf>,

    /// Listen backlog [default: 2048].
    #[arg(long)]
    pub backlog: Option<String>,

    /// development or production [env: MODE] [default: production].
    #[arg(long)]
    pub mode: Option<String>,

    /// Where posts are stored, e.g. sqlite:///blog.db [env: DATABASE_URI] [default: blog.db].
    #[arg(long = "database-uri")]
    pub database_uri: Option<String>,

    /// Absolute base URL for canonical and Open Graph tags [env: SITE_URL].
    #[arg(long = "site-url")]
    pub site_url: Option<String>,

    /// POSTs a minute per client address, then 429 (0 = no limit) [env: POST_RATE_LIMIT]
    /// [default: 10].
    #[arg(long = "post-rate-limit")]
    pub post_rate_limit: Option<String>,

    /// Proxies whose X-Forwarded-For names the client: comma-separated IPs, or * for any
    /// [env: FORWARDED_ALLOW_IPS] [default: 127.0.0.1,::1].
    #[arg(long = "forwarded-allow-ips")]
    pub forwarded_allow_ips: Option<String>,

    /// File of KEY=VALUE defaults, read at start and on HUP [default: .env].
    #[arg(long = "env-file")]
    pub env_file: Option<PathBuf>,

    /// Validate the configuration, print it, and exit (0 when valid, 2 when not).
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Serve from this one process: no master, no fork (for debugging).
    #[arg(long = "single-process")]
    pub single_process: bool,
}
