//! Cross-site request forgery: every state-changing POST must come from one of our own pages.
//!
//! Two independent checks, both required. (1) `Origin` (or, when a browser omits it, the
//! origin of `Referer`) must be the site's own: `SITE_URL`'s origin when set, else the
//! request's own `Host` over http or https. (2) A double-submit token: a random value in an
//! HttpOnly, SameSite=Strict cookie (`__Host-` prefixed on https, so a sibling subdomain cannot
//! plant one) that the form repeats in a hidden field; they are compared in constant time.
//! The double-submit scheme needs no server secret, so it holds across workers, restarts and
//! USR2 upgrades without sharing or storing one.

use super::cookies::{self, CookieScope};
use super::secrets;
use http::Request;

/// The hidden form field that repeats the cookie.
pub(crate) const FIELD: &str = "csrf_token";

/// Why a POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forgery {
    /// Neither `Origin` nor `Referer` was sent.
    NoOrigin,
    /// They name another site.
    ForeignOrigin,
    /// No token cookie, no token field, or the two differ.
    BadToken,
}

impl Forgery {
    /// What the 403 page says.
    pub fn message(self) -> &'static str {
        match self {
            Forgery::NoOrigin | Forgery::ForeignOrigin => {
                "This form was not sent from a page of this blog, so nothing was changed."
            }
            Forgery::BadToken => {
                "This form has expired or was not sent from a page of this blog, so nothing \
                 was changed. Go back, reload the page and submit it again."
            }
        }
    }
}

/// The site's CSRF settings.
#[derive(Debug, Clone)]
pub(crate) struct CsrfGuard {
    /// `SITE_URL`'s origin (`https://blog.example`), lower-case; `None`: use `Host`.
    site_origin: Option<String>,
    /// The site is served over https: `__Host-` cookie with `Secure`.
    secure: bool,
}

impl CsrfGuard {
    pub fn new(site_url: Option<&str>) -> CsrfGuard {
        let site_origin = site_url.and_then(origin_of).map(str::to_ascii_lowercase);
        let secure = site_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"));
        CsrfGuard {
            site_origin,
            secure,
        }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-pyblogd_csrf"
        } else {
            "pyblogd_csrf"
        }
    }

    /// Checks a POST whose form carried `field` as its token.
    pub fn check(&self, req: &Request, field: Option<&str>) -> Result<(), Forgery> {
        let claimed = match req.header("Origin") {
            Some(origin) => origin.trim(),
            None => req
                .header("Referer")
                .and_then(origin_of)
                .ok_or(Forgery::NoOrigin)?,
        };
        if !self.is_own_origin(claimed, req.header("Host")) {
            return Err(Forgery::ForeignOrigin);
        }
        let cookie = cookies::read(req, self.cookie_name()).filter(|c| secrets::is_token(c));
        match (cookie, field) {
            (Some(cookie), Some(field)) if secrets::same_secret(field, cookie) => Ok(()),
            _ => Err(Forgery::BadToken),
        }
    }

    /// Whether `origin` is this site: SITE_URL's origin, or without one the Host the
    /// browser addressed, over either scheme (a proxy may terminate TLS in front of us).
    fn is_own_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        if let Some(site) = &self.site_origin {
            return origin == *site;
        }
        let Some(host) = host.map(|h| h.trim().to_ascii_lowercase()) else {
            return false;
        };
        if host.is_empty() {
            return false;
        }
        origin == format!("http://{host}") || origin == format!("https://{host}")
    }

    /// The token a form on this response carries, and the `Set-Cookie` to send when the
    /// browser has none yet. `None` when the OS gives no randomness.
    pub fn token_for(&self, req: &Request) -> Option<(String, Option<String>)> {
        if let Some(token) = cookies::read(req, self.cookie_name()).filter(|c| secrets::is_token(c))
        {
            return Some((token.to_string(), None));
        }
        let token = secrets::random_token()?;
        let scope = CookieScope {
            path: "/",
            max_age: None,
            secure: self.secure,
        };
        let set = cookies::set(self.cookie_name(), &token, scope);
        Some((token, Some(set)))
    }
}

/// `scheme://host[:port]` of an absolute URL, or `None` when it is not one (e.g. `null`).
pub(crate) fn origin_of(url: &str) -> Option<&str> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return None;
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if host_end == 0 || rest[..host_end].contains('@') {
        return None;
    }
    Some(&url[..scheme.len() + 3 + host_end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;

    fn post(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/posts".into(),
            query: String::new(),
            target: "/posts".into(),
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            peer: None,
            client: None,
        }
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://b.example/x?y"),
            Some("https://b.example")
        );
        assert_eq!(
            origin_of("http://b.example:8000"),
            Some("http://b.example:8000")
        );
        assert_eq!(origin_of("http://h:1?q"), Some("http://h:1"));
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("javascript://x"), None);
        assert_eq!(origin_of("http:///path"), None);
        assert_eq!(origin_of("http://user@evil.example/"), None);
    }

    #[test]
    fn without_site_url_the_origin_must_match_host() {
        let guard = CsrfGuard::new(None);
        let ok = |headers: &[(&str, &str)]| guard.check(&post(headers), Some("ab12"));
        let cookie = ("Cookie", "pyblogd_csrf=ab12");
        assert_eq!(
            ok(&[("Host", "b:8000"), ("Origin", "http://b:8000"), cookie]),
            Ok(())
        );
        assert_eq!(
            ok(&[("Host", "B:8000"), ("Origin", "https://b:8000"), cookie]),
            Ok(())
        );
        assert_eq!(
            ok(&[
                ("Host", "b:8000"),
                ("Origin", "http://evil.example"),
                cookie
            ]),
            Err(Forgery::ForeignOrigin)
        );
        assert_eq!(
            ok(&[("Host", "b:8000"), ("Origin", "http://b:8001"), cookie]),
            Err(Forgery::ForeignOrigin)
        );
        assert_eq!(
            ok(&[("Host", "b"), ("Origin", "null"), cookie]),
            Err(Forgery::ForeignOrigin)
        );
        assert_eq!(
            ok(&[("Host", "b"), ("Referer", "http://b/new"), cookie]),
            Ok(())
        );
        assert_eq!(
            ok(&[("Host", "b"), ("Referer", "http://evil/b"), cookie]),
            Err(Forgery::ForeignOrigin)
        );
        assert_eq!(ok(&[("Host", "b"), cookie]), Err(Forgery::NoOrigin));
        assert_eq!(
            ok(&[("Origin", "http://b"), cookie]),
            Err(Forgery::ForeignOrigin),
            "no Host, nothing to match"
        );
    }

    #[test]
    fn with_site_url_only_its_origin_counts() {
        let guard = CsrfGuard::new(Some("https://Blog.example/sub"));
        let cookie = ("Cookie", "__Host-pyblogd_csrf=ab12");
        let req = post(&[
            ("Host", "blog.example"),
            ("Origin", "https://blog.example"),
            cookie,
        ]);
        assert_eq!(guard.check(&req, Some("ab12")), Ok(()));
        let req = post(&[
            ("Host", "evil.example"),
            ("Origin", "http://evil.example"),
            cookie,
        ]);
        assert_eq!(guard.check(&req, Some("ab12")), Err(Forgery::ForeignOrigin));
        let plain_cookie = post(&[
            ("Origin", "https://blog.example"),
            ("Cookie", "pyblogd_csrf=ab12"),
        ]);
        assert_eq!(
            guard.check(&plain_cookie, Some("ab12")),
            Err(Forgery::BadToken),
            "on https only the __Host- cookie counts"
        );
    }

    #[test]
    fn the_token_field_must_repeat_the_cookie() {
        let guard = CsrfGuard::new(None);
        let req = post(&[
            ("Host", "b"),
            ("Origin", "http://b"),
            ("Cookie", "pyblogd_csrf=ab12"),
        ]);
        assert_eq!(guard.check(&req, Some("ab12")), Ok(()));
        assert_eq!(guard.check(&req, Some("ab13")), Err(Forgery::BadToken));
        assert_eq!(guard.check(&req, None), Err(Forgery::BadToken));
        let no_cookie = post(&[("Host", "b"), ("Origin", "http://b")]);
        assert_eq!(
            guard.check(&no_cookie, Some("ab12")),
            Err(Forgery::BadToken)
        );
    }

    #[test]
    fn a_form_reuses_the_browser_token_or_sets_one() {
        let guard = CsrfGuard::new(None);
        let (token, set) = guard
            .token_for(&post(&[("Cookie", "pyblogd_csrf=ab12")]))
            .unwrap();
        assert_eq!((token.as_str(), set), ("ab12", None));
        let (token, set) = guard.token_for(&post(&[])).unwrap();
        let set = set.unwrap();
        assert!(
            set.starts_with(&format!("pyblogd_csrf={token}; Path=/; HttpOnly")),
            "{set}"
        );
    }
}
