//! pyblogd: a gunicorn-shaped prefork HTTP/1.1 server and the blog it serves, in one binary.
//!
//! This file only wires things: parse flags, resolve the configuration (exit 2 on any error,
//! nothing started), install the logger, bind, and hand over to the supervisor
//! (`prefork::run`) or, with `--single-process`, run one worker in this process.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod logging;
mod migrate;
mod service;

use anyhow::Context;
use clap::Parser;

/// Exit status for a configuration error, as gunicorn uses for usage errors.
const EXIT_CONFIG: i32 = 2;

fn main() {
    // `pyblogd migrate …` is a one-shot command beside the server, with its own flags.
    if std::env::args_os().nth(1).is_some_and(|a| a == "migrate") {
        std::process::exit(migrate::main());
    }
    let cli = cli::Cli::parse();
    let config = match config::Config::resolve(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("pyblogd: configuration error: {message}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        print!("{}", config.describe());
        println!("configuration OK");
        std::process::exit(0);
    }
    match run(cli, config) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("pyblogd: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: cli::Cli, config: config::Config) -> anyhow::Result<i32> {
    logging::init(&config.log).context("cannot start logging")?;
    log::info!("Starting pyblogd {}", env!("CARGO_PKG_VERSION"));
    raise_fd_limit();
    // Its errors say what could not be bound and why.
    let listeners = prefork::bind(&config.binds, config.backlog)?;
    let single = config.single_process;
    let service = service::BlogService::new(cli, config);
    let code = if single {
        prefork::run_single(service, listeners)
    } else {
        prefork::run(service, listeners)
    }
    .context("supervisor failed")?;
    Ok(code)
}

/// Many slow clients each hold a descriptor: allow as many as the hard limit permits.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the open-file limit: {e}"),
    }
}
