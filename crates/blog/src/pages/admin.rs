//! `/admin/login` and `/admin/logout`: the admin session, which may edit and delete any post.
//!
//! They exist only when `ADMIN_TOKEN` is set. Signing in compares the submitted token in
//! constant time and sets a cookie derived from the token (never the token itself); a wrong
//! token is a 403. Both are POSTs behind the CSRF checks and the rate limit, which also bounds
//! how fast anyone can guess.

use super::access::private_page;
use super::{ser, Meta};
use crate::failure::Failure;
use crate::App;
use http::{Request, Response};
use minijinja::context;

impl App {
    pub(super) fn admin_form(&self, req: &Request) -> Result<Response, Failure> {
        if !self.guard.has_admin() {
            return Err(Failure::NotFound);
        }
        self.admin_page(200, req, None)
    }

    pub(super) fn admin_login(&self, req: &Request) -> Result<Response, Failure> {
        if !self.guard.has_admin() {
            return Err(Failure::NotFound);
        }
        let pairs = self.unforged_form(req)?;
        if let Some(after) = self.rate_limited(req)? {
            return Err(Failure::TooManyRequests(after));
        }
        let presented = pairs
            .iter()
            .find(|(k, _)| k == "token")
            .map_or("", |(_, v)| v.as_str());
        match self.guard.admin_login(presented) {
            Some(cookie) => {
                log::info!(
                    "admin signed in from {}",
                    super::access::client_address(req)
                );
                Ok(Response::redirect(303, "/admin/login")
                    .with_header("Set-Cookie", cookie)
                    .with_header("Cache-Control", "no-store"))
            }
            None => {
                log::warn!(
                    "wrong admin token from {}",
                    super::access::client_address(req)
                );
                let page = self.admin_page(403, req, Some("That is not the admin token."))?;
                Ok(page)
            }
        }
    }

    pub(super) fn admin_logout(&self, req: &Request) -> Result<Response, Failure> {
        if !self.guard.has_admin() {
            return Err(Failure::NotFound);
        }
        self.unforged_form(req)?;
        Ok(Response::redirect(303, "/")
            .with_header("Set-Cookie", self.guard.admin_logout())
            .with_header("Cache-Control", "no-store"))
    }

    fn admin_page(
        &self,
        status: u16,
        req: &Request,
        error: Option<&str>,
    ) -> Result<Response, Failure> {
        let mut meta = Meta::website("Admin", "Sign in as the site's admin.", "/admin/login");
        meta.noindex = true;
        let (token, set_cookie) = self.form_token(req)?;
        let ctx = context! {
            meta => ser(meta),
            signed_in => self.guard.is_admin(req),
            error,
            csrf_token => token,
        };
        Ok(private_page(
            self.page(status, "admin.html", ctx)?,
            set_cookie,
        ))
    }
}
