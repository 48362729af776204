//! Who may do what, and the headers that keep browsers on our side.
//!
//! Anyone may read and create posts. Changing a post takes its edit key (a cookie scoped to
//! the post, or the key link) or the admin session; every state-changing POST must pass the
//! CSRF checks (`csrf`) and the per-address rate limit (`rate_limit`). [`Guard::harden`] adds
//! the security headers to every response the app sends, error pages and static files too.
//! Submodules: `cookies`, `secrets` (randomness, hashes, constant-time compare), `csrf`,
//! `rate_limit`.

mod cookies;
pub(crate) mod csrf;
pub(crate) mod rate_limit;
mod secrets;

pub(crate) use secrets::Digest256;

use cookies::CookieScope;
use csrf::CsrfGuard;
use http::{Request, Response};
use std::time::Duration;

/// Scripts, styles and fonts only from our own `/static`, no plugins, no `<base>`, forms only
/// to us, never framed. Images in posts may be remote. No `'unsafe-inline'` anywhere: the
/// templates carry no inline script, handler or style, and the sanitiser strips them from posts.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: http:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// How long an author's browser keeps a post's edit key: a year.
const KEY_COOKIE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// How long the "keep this link" notice waits for the post page after a create.
const SHOW_KEY_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long an admin session lasts in the browser: a week.
const ADMIN_COOKIE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The admin cookie's name.
const ADMIN_COOKIE: &str = "pyblogd_admin";
/// Marks a post page that should show the key link once, right after a create.
const SHOW_KEY_COOKIE: &str = "pyblogd_show_key";

/// Why a request may change a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authority {
    /// It holds the post's edit key.
    Author,
    /// It holds the admin session.
    Admin,
}

/// The site's security settings, built once per worker.
pub(crate) struct Guard {
    pub csrf: CsrfGuard,
    /// `SITE_URL` is https: cookies get `Secure`, responses get HSTS.
    is_https: bool,
    /// The admin token, when `ADMIN_TOKEN` is set.
    admin_token: Option<String>,
    /// The admin cookie's value: a hash of the token with a fixed label, never the token.
    admin_session: Option<String>,
    /// POSTs a minute per address; 0 = no limit.
    pub post_rate_limit: u32,
    pub refusals: rate_limit::Refusals,
}

impl Guard {
    pub fn new(site_url: Option<&str>, admin_token: Option<&str>, post_rate_limit: u32) -> Guard {
        let csrf = CsrfGuard::new(site_url);
        let is_https = site_url.is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
        let admin_token = admin_token.filter(|t| !t.is_empty()).map(str::to_string);
        let admin_session = admin_token
            .as_deref()
            .map(|t| secrets::hex(&secrets::digest("pyblogd admin session v1", t)));
        Guard {
            csrf,
            is_https,
            admin_token,
            admin_session,
            post_rate_limit,
            refusals: rate_limit::Refusals::default(),
        }
    }

    /// Adds the security headers every response carries (keeping any a handler already set).
    pub fn harden(&self, mut response: Response) -> Response {
        let mut add = |name: &str, value: &str| {
            if response.header(name).is_none() {
                response.headers.push((name.to_string(), value.to_string()));
            }
        };
        add("Content-Security-Policy", CONTENT_SECURITY_POLICY);
        add("X-Content-Type-Options", "nosniff");
        add("Referrer-Policy", "strict-origin-when-cross-origin");
        add("X-Frame-Options", "DENY");
        if self.is_https {
            add("Strict-Transport-Security", "max-age=31536000");
        }
        response
    }

    /// A new edit key and its hash; `None` when the OS has no randomness.
    pub fn new_edit_key(&self) -> Option<(String, Digest256)> {
        let key = secrets::random_token()?;
        let hash = key_hash(&key);
        Some((key, hash))
    }

    /// The edit key this request's cookie holds for post `id`, if any (not yet checked).
    pub fn key_cookie<'r>(&self, req: &'r Request, id: i64) -> Option<&'r str> {
        cookies::read(req, &key_cookie_name(id)).filter(|k| secrets::is_token(k))
    }

    /// Whether `key` opens post `id`, whose stored hash is `stored`.
    pub fn key_opens(&self, key: &str, stored: Option<&Digest256>) -> bool {
        stored.is_some_and(|hash| secrets::same_digest(&key_hash(key), hash))
    }

    /// `Set-Cookie` for post `id`'s edit key, scoped to the post's pages.
    pub fn set_key_cookie(&self, id: i64, key: &str) -> String {
        cookies::set(
            &key_cookie_name(id),
            key,
            self.scope(&format!("/posts/{id}"), Some(KEY_COOKIE_LIFETIME)),
        )
    }

    /// `Set-Cookie` asking post `id`'s next page view to show the key link once.
    pub fn set_show_key(&self, id: i64) -> String {
        cookies::set(
            SHOW_KEY_COOKIE,
            "1",
            self.scope(&format!("/posts/{id}"), Some(SHOW_KEY_LIFETIME)),
        )
    }

    /// Whether this request asks to see the key link, and the `Set-Cookie` that clears it.
    pub fn take_show_key(&self, req: &Request, id: i64) -> Option<String> {
        cookies::read(req, SHOW_KEY_COOKIE)?;
        Some(cookies::set(
            SHOW_KEY_COOKIE,
            "",
            self.scope(&format!("/posts/{id}"), Some(Duration::ZERO)),
        ))
    }

    /// Whether the request carries anything that could make it an author or the admin:
    /// the anonymous fast path skips the database when it does not.
    pub fn may_be_privileged(&self, req: &Request, id: i64) -> bool {
        self.key_cookie(req, id).is_some() || self.is_admin(req)
    }

    /// Whether `ADMIN_TOKEN` is set at all (else `/admin/*` does not exist).
    pub fn has_admin(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whether the request holds a valid admin session cookie.
    pub fn is_admin(&self, req: &Request) -> bool {
        let Some(session) = &self.admin_session else {
            return false;
        };
        cookies::read(req, ADMIN_COOKIE).is_some_and(|cookie| secrets::same_secret(cookie, session))
    }

    /// Checks a submitted admin token in constant time; `Some(Set-Cookie)` when it is right.
    pub fn admin_login(&self, presented: &str) -> Option<String> {
        let token = self.admin_token.as_deref()?;
        let session = self.admin_session.as_deref()?;
        secrets::same_secret(presented, token).then(|| {
            cookies::set(
                ADMIN_COOKIE,
                session,
                self.scope("/", Some(ADMIN_COOKIE_LIFETIME)),
            )
        })
    }

    /// `Set-Cookie` that ends the admin session.
    pub fn admin_logout(&self) -> String {
        cookies::set(ADMIN_COOKIE, "", self.scope("/", Some(Duration::ZERO)))
    }

    fn scope<'a>(&self, path: &'a str, max_age: Option<Duration>) -> CookieScope<'a> {
        CookieScope {
            path,
            max_age,
            secure: self.is_https,
        }
    }
}

/// One cookie per post, so an author of several posts holds each key separately.
fn key_cookie_name(id: i64) -> String {
    format!("pyblogd_key_{id}")
}

/// What the database keeps of an edit key.
fn key_hash(key: &str) -> Digest256 {
    secrets::digest("pyblogd edit key v1", key)
}

/// Replaces every `name` header of `response` with one `value`.
pub(crate) fn replace_header(mut response: Response, name: &str, value: &str) -> Response {
    response
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    response.headers.push((name.to_string(), value.to_string()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;

    fn get(cookie: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            target: "/".into(),
            version: Version::Http11,
            headers: vec![("Cookie".into(), cookie.as_bytes().to_vec())],
            body: Vec::new(),
            peer: None,
            client: None,
        }
    }

    #[test]
    fn the_admin_cookie_is_not_the_token() {
        let guard = Guard::new(None, Some("s3cret-token"), 10);
        let set = guard.admin_login("s3cret-token").unwrap();
        assert!(!set.contains("s3cret-token"), "{set}");
        let value = set.split(';').next().unwrap();
        assert!(guard.is_admin(&get(value)), "{value}");
        assert!(!guard.is_admin(&get("pyblogd_admin=s3cret-token")));
        assert!(guard.admin_login("s3cret-tokeN").is_none());
        assert!(guard.admin_login("").is_none());
    }

    #[test]
    fn no_admin_token_means_no_admin() {
        let guard = Guard::new(None, Some(""), 10);
        assert!(!guard.has_admin());
        assert!(guard.admin_login("").is_none());
        assert!(!guard.is_admin(&get("pyblogd_admin=")));
    }

    #[test]
    fn an_edit_key_opens_only_its_own_post() {
        let guard = Guard::new(None, None, 10);
        let (key, hash) = guard.new_edit_key().unwrap();
        let (_, other) = guard.new_edit_key().unwrap();
        assert!(guard.key_opens(&key, Some(&hash)));
        assert!(!guard.key_opens(&key, Some(&other)));
        assert!(
            !guard.key_opens(&key, None),
            "a post without a key: admin only"
        );
        let cookie = guard.set_key_cookie(7, &key);
        assert!(
            cookie.starts_with(&format!(
                "pyblogd_key_7={key}; Path=/posts/7; HttpOnly; SameSite=Strict"
            )),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"));
    }

    #[test]
    fn https_sites_get_secure_cookies_and_hsts() {
        let guard = Guard::new(Some("https://blog.example"), None, 10);
        assert!(guard.set_key_cookie(1, "ab").ends_with("; Secure"));
        let hardened = guard.harden(Response::new(200));
        assert!(hardened.header("Strict-Transport-Security").is_some());
        let plain = Guard::new(Some("http://blog.example"), None, 10).harden(Response::new(200));
        assert!(plain.header("Strict-Transport-Security").is_none());
        assert_eq!(plain.header("X-Frame-Options"), Some("DENY"));
    }
}
