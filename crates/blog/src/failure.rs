//! Why a request could not be served, and the one place that maps that to a status.
//!
//! Handlers return `Result<Response, Failure>`; `App::failure_page` turns the error side into
//! an error page. Validation failures (422) and busy-database form posts (503 with the input
//! kept) are not `Failure`s: those handlers re-render their form themselves.

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 400: the request itself is malformed (e.g. bad form encoding).
    BadRequest(String),
    /// 403: not allowed (no edit key, no admin session, a forged form); says why.
    Forbidden(&'static str),
    /// 404: no such page or post.
    NotFound,
    /// 405: the path exists; these are the methods it allows.
    MethodNotAllowed(&'static str),
    /// 429: this address sent too many POSTs; it may retry after this many seconds.
    TooManyRequests(u64),
    /// 503: the database is busy or refuses writes; the client may retry in a second.
    Unavailable(String),
    /// 500: a bug or a broken database; the detail is logged, shown only in development.
    Internal(String),
}

impl Failure {
    pub fn status(&self) -> u16 {
        match self {
            Failure::BadRequest(_) => 400,
            Failure::Forbidden(_) => 403,
            Failure::NotFound => 404,
            Failure::MethodNotAllowed(_) => 405,
            Failure::TooManyRequests(_) => 429,
            Failure::Unavailable(_) => 503,
            Failure::Internal(_) => 500,
        }
    }

    /// The sentence shown to the visitor: never internals.
    pub fn message(&self) -> String {
        match self {
            Failure::BadRequest(why) => format!("The request could not be understood: {why}."),
            Failure::Forbidden(why) => why.to_string(),
            Failure::TooManyRequests(after) => format!(
                "Too many posts from your address. Please wait {after} seconds and try again."
            ),
            Failure::NotFound => "There is nothing at this address. The post may have been \
                                  deleted, or the link mistyped."
                .to_string(),
            Failure::MethodNotAllowed(allow) => {
                format!("This address does not accept that method (it allows {allow}).")
            }
            Failure::Unavailable(_) => "The blog is busy right now. Please try again in a \
                                        moment."
                .to_string(),
            Failure::Internal(_) => {
                "Something went wrong on our side. It has been logged.".to_string()
            }
        }
    }

    /// What a developer needs: the underlying error, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Failure::Unavailable(d) | Failure::Internal(d) => Some(d),
            _ => None,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Failure {
        if err.is_write_refusal() {
            Failure::Unavailable(err.to_string())
        } else {
            Failure::Internal(err.to_string())
        }
    }
}

impl From<minijinja::Error> for Failure {
    fn from(err: minijinja::Error) -> Failure {
        Failure::Internal(format!("template: {err:#}"))
    }
}
