//! The checks in front of every handler that changes something: forged forms, the POST rate
//! limit, and whether this request may change this post.
//!
//! Order, for every state-changing POST: CSRF (no database, so a forged flood is cheap to
//! refuse), then the post's authority where there is a post, then the rate limit, then the
//! write. A refusal at any step writes nothing.

use crate::failure::Failure;
use crate::security::rate_limit;
use crate::security::{csrf, Authority};
use crate::App;
use http::{Request, Response};
use std::time::{SystemTime, UNIX_EPOCH};

/// The 403 text for a request that holds neither the post's key nor the admin session.
pub(super) const NOT_THE_AUTHOR: &str = "Only the author of this post (with its edit key or \
    edit link) or the site's admin may change it. Nothing was changed.";

/// The 403 text of the edit form. Browsers do not send a SameSite=Strict cookie on the
/// redirect that follows a link opened from another site (a mail, a chat), so an author who
/// just opened their edit link from there lands here although the key is now stored.
pub(super) const NOT_THE_AUTHOR_YET: &str = "Only the author of this post (with its edit key \
    or edit link) or the site's admin may edit it. If you just opened your edit link from \
    another site or app, your browser now holds the key: open the post on this site and \
    choose Edit.";

impl App {
    /// Decodes a POST's form and refuses it unless it came from one of our pages.
    pub(super) fn unforged_form(&self, req: &Request) -> Result<Vec<(String, String)>, Failure> {
        let pairs = req
            .form()
            .map_err(|e| Failure::BadRequest(format!("form data: {e}")))?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == csrf::FIELD)
            .map(|(_, v)| v.as_str());
        match self.guard.csrf.check(req, token) {
            Ok(()) => Ok(pairs),
            Err(forgery) => {
                log::warn!(
                    "refused POST {} from {}: {forgery:?} (Origin {:?}, Referer {:?})",
                    req.path,
                    client_address(req),
                    req.header("Origin"),
                    req.header("Referer"),
                );
                Err(Failure::Forbidden(forgery.message()))
            }
        }
    }

    /// Takes a token from the client's POST bucket: `None` when admitted, else the seconds
    /// it must wait. A refusal is remembered in this worker, so repeats cost no write.
    pub(super) fn rate_limited(&self, req: &Request) -> Result<Option<u64>, Failure> {
        let per_minute = self.guard.post_rate_limit;
        if per_minute == 0 {
            return Ok(None);
        }
        let client = client_address(req);
        if let Some(wait) = self.guard.refusals.wait(&client) {
            return Ok(Some(rate_limit::retry_after(wait)));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        match self.store.take_post_token(&client, now, per_minute)? {
            Ok(()) => Ok(None),
            Err(wait) => {
                log::warn!("POST rate limit reached by {client}: refused for {wait:?}");
                self.guard.refusals.remember(&client, wait);
                Ok(Some(rate_limit::retry_after(wait)))
            }
        }
    }

    /// Whether this request may change post `id`: 404 when there is no such post, 403 when
    /// it holds neither the post's edit key nor the admin session.
    pub(super) fn authority(&self, id: i64, req: &Request) -> Result<Authority, Failure> {
        let stored = self.store.edit_key(id)?.ok_or(Failure::NotFound)?;
        if self.guard.is_admin(req) {
            return Ok(Authority::Admin);
        }
        match self.guard.key_cookie(req, id) {
            Some(key) if self.guard.key_opens(key, stored.as_ref()) => Ok(Authority::Author),
            _ => Err(Failure::Forbidden(NOT_THE_AUTHOR)),
        }
    }

    /// Like [`App::authority`] for a page that merely reads: `None` instead of 403, and no
    /// database read for a request with no key cookie and no admin session (every anonymous
    /// reader of a post).
    pub(super) fn reader_authority(
        &self,
        id: i64,
        req: &Request,
    ) -> Result<Option<Authority>, Failure> {
        if !self.guard.may_be_privileged(req, id) {
            return Ok(None);
        }
        match self.authority(id, req) {
            Ok(authority) => Ok(Some(authority)),
            Err(Failure::Forbidden(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The CSRF token for the forms on this page and the cookie to set when it is new.
    pub(super) fn form_token(&self, req: &Request) -> Result<(String, Option<String>), Failure> {
        self.guard
            .csrf
            .token_for(req)
            .ok_or_else(|| Failure::Unavailable("no randomness for a form token".into()))
    }
}

/// A page that holds a form token or anything else for one browser only: never stored by a
/// shared cache, nor kept by the browser's, and the token's cookie set when it is new.
pub(super) fn private_page(response: Response, set_cookie: Option<String>) -> Response {
    let response = crate::security::replace_header(response, "Cache-Control", "private, no-store");
    match set_cookie {
        Some(cookie) => response.with_header("Set-Cookie", cookie),
        None => response,
    }
}

/// The address the rate limit counts and logs name: the client as resolved by the server
/// (X-Forwarded-For from a trusted proxy), else the TCP peer, else `local` on a unix socket.
pub(crate) fn client_address(req: &Request) -> String {
    match req.client {
        Some(client) => client.to_string(),
        None => "local".to_string(),
    }
}
