//! Reading the `Cookie` request header and writing `Set-Cookie` values.
//!
//! Every cookie the blog sets is HttpOnly (no script ever reads one) and SameSite=Strict (a
//! cross-site page cannot make the browser send it), and Secure when the site is served over
//! https. Parsing is lenient about spacing and skips malformed pairs instead of failing.

use http::Request;
use std::time::Duration;

/// The value of the cookie `name` in the request's `Cookie` header(s), if sent.
/// When a name appears twice the first wins, as RFC 6265 §5.4 orders the longest path first.
pub(crate) fn read<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .find_map(|header| find_in(header, name))
}

/// `name`'s value in one `Cookie` header value (`a=1; b=2`).
pub(crate) fn find_in<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// How a cookie is scoped and how long it lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CookieScope<'a> {
    /// The path the browser sends it to (and below).
    pub path: &'a str,
    /// `None`: until the browser closes; `Some(ZERO)` deletes it.
    pub max_age: Option<Duration>,
    /// Add `Secure`: the site is served over https.
    pub secure: bool,
}

/// A `Set-Cookie` value; `value` must be a cookie-safe token (the blog only sets hex and digits).
pub(crate) fn set(name: &str, value: &str, scope: CookieScope<'_>) -> String {
    let mut cookie = format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Strict",
        scope.path
    );
    if let Some(age) = scope.max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if scope.secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_others_whatever_the_spacing() {
        let header = "a=1;pyblogd_csrf=abc ; b = 2; empty=";
        assert_eq!(find_in(header, "pyblogd_csrf"), Some("abc"));
        assert_eq!(find_in(header, "b"), Some("2"));
        assert_eq!(find_in(header, "empty"), Some(""));
        assert_eq!(find_in(header, "pyblogd"), None, "no prefix match");
        assert_eq!(find_in(header, "csrf"), None, "no suffix match");
        assert_eq!(find_in("junk; noequals", "junk"), None);
        assert_eq!(find_in("q=\"quoted\"", "q"), Some("quoted"));
    }

    #[test]
    fn the_first_of_two_same_named_cookies_wins() {
        assert_eq!(find_in("k=first; k=second", "k"), Some("first"));
    }

    #[test]
    fn set_cookie_is_http_only_strict_and_secure_on_https() {
        let scope = CookieScope {
            path: "/posts/7",
            max_age: Some(Duration::from_secs(60)),
            secure: true,
        };
        assert_eq!(
            set("k", "v", scope),
            "k=v; Path=/posts/7; HttpOnly; SameSite=Strict; Max-Age=60; Secure"
        );
        let plain = CookieScope {
            path: "/",
            max_age: None,
            secure: false,
        };
        assert_eq!(
            set("k", "v", plain),
            "k=v; Path=/; HttpOnly; SameSite=Strict"
        );
    }
}
