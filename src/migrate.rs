//! `pyblogd migrate --from URI --to URI`: the one-shot copy between databases.
//!
//! Both URIs take `DATABASE_URI`'s forms (SQLite or PostgreSQL). The copy itself lives in the
//! blog crate (`blog::copy_posts`); this file parses the flags and reports. Exit 0 when the
//! copy verified, 1 when it failed, 2 for bad flags.

use clap::Parser;

/// Copy every post (ids, times, view counts) from one database to another, then verify.
#[derive(Debug, Parser)]
#[command(name = "pyblogd migrate")]
struct MigrateArgs {
    /// The database to read, e.g. sqlite:////srv/blog.db
    #[arg(long, value_name = "URI")]
    from: String,
    /// The database to write (its schema is created when missing), e.g. postgres://u:p@db/blog
    #[arg(long, value_name = "URI")]
    to: String,
}

/// Runs the command; returns the exit status.
pub fn main() -> i32 {
    let args = MigrateArgs::parse_from(std::env::args_os().skip(1));
    let parse = |flag: &str, uri: &str| {
        blog::DatabaseTarget::parse(uri).map_err(|e| format!("--{flag}: {e}"))
    };
    let (from, to) = match (parse("from", &args.from), parse("to", &args.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pyblogd migrate: {e}");
            return 2;
        }
    };
    match blog::copy_posts(&from, &to) {
        Ok(report) => {
            println!(
                "copied {} posts ({} views); both databases verified equal",
                report.posts, report.views
            );
            0
        }
        Err(e) => {
            eprintln!("pyblogd migrate: {e}");
            1
        }
    }
}
