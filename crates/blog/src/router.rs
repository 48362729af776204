//! Method + path → [`Route`]. Pure: no I/O, no knowledge of the store or templates.
//!
//! A trailing slash is optional everywhere. An unknown path is 404; a known path with the
//! wrong method is 405 with the methods it does allow. Post ids are digits that fit an `i64`;
//! anything else (letters, signs, overflow) is simply a path that does not exist, so 404.

use crate::failure::Failure;

/// Every page and action the blog serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Home,
    NewPost,
    ListPosts,
    CreatePost,
    ShowPost(i64),
    EditPost(i64),
    UpdatePost(i64),
    ConfirmDelete(i64),
    DeletePost(i64),
    /// `/admin/login`: the form (GET) and signing in (POST); only with an admin token.
    AdminLoginForm,
    AdminLogin,
    AdminLogout,
    /// `GET /healthz`: 200 when the database answers, 503 otherwise (for load balancers).
    Health,
    /// The path below `/static/`, still to be checked by the assets module.
    Static(String),
    Fault(Fault),
}

/// Test routes that misbehave on purpose (only with `Config.fault_routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Panic,
    Hang,
    Abort,
    Slow,
}

const READ: &str = "GET, HEAD";
const READ_WRITE: &str = "GET, HEAD, POST";

/// Resolves a request. `fault_routes` decides whether `/__fault/*` exists at all.
pub(crate) fn route(method: &str, path: &str, fault_routes: bool) -> Result<Route, Failure> {
    let trimmed = match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    };
    let is_read = method == "GET" || method == "HEAD";
    let is_post = method == "POST";
    let refuse = |allow: &'static str| Err(Failure::MethodNotAllowed(allow));

    if let Some(rest) = trimmed.strip_prefix("/static/") {
        return if is_read {
            Ok(Route::Static(rest.to_string()))
        } else {
            refuse(READ)
        };
    }
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segments.as_slice() {
        [""] => {
            if is_read {
                Ok(Route::Home)
            } else {
                refuse(READ)
            }
        }
        ["healthz"] => {
            if is_read {
                Ok(Route::Health)
            } else {
                refuse(READ)
            }
        }
        ["new"] => {
            if is_read {
                Ok(Route::NewPost)
            } else {
                refuse(READ)
            }
        }
        ["posts"] => match () {
            _ if is_read => Ok(Route::ListPosts),
            _ if is_post => Ok(Route::CreatePost),
            _ => refuse(READ_WRITE),
        },
        ["posts", id] => {
            let id = post_id(id)?;
            if is_read {
                Ok(Route::ShowPost(id))
            } else {
                refuse(READ)
            }
        }
        ["posts", id, "edit"] => {
            let id = post_id(id)?;
            match () {
                _ if is_read => Ok(Route::EditPost(id)),
                _ if is_post => Ok(Route::UpdatePost(id)),
                _ => refuse(READ_WRITE),
            }
        }
        ["posts", id, "delete"] => {
            let id = post_id(id)?;
            match () {
                _ if is_read => Ok(Route::ConfirmDelete(id)),
                _ if is_post => Ok(Route::DeletePost(id)),
                _ => refuse(READ_WRITE),
            }
        }
        ["admin", "login"] => match () {
            _ if is_read => Ok(Route::AdminLoginForm),
            _ if is_post => Ok(Route::AdminLogin),
            _ => refuse(READ_WRITE),
        },
        ["admin", "logout"] => {
            if is_post {
                Ok(Route::AdminLogout)
            } else {
                refuse("POST")
            }
        }
        ["__fault", name] if fault_routes => {
            let fault = match *name {
                "panic" => Fault::Panic,
                "hang" => Fault::Hang,
                "abort" => Fault::Abort,
                "slow" => Fault::Slow,
                _ => return Err(Failure::NotFound),
            };
            if is_read || is_post {
                Ok(Route::Fault(fault))
            } else {
                refuse(READ_WRITE)
            }
        }
        _ => Err(Failure::NotFound),
    }
}

/// A post id: ASCII digits only, fitting an `i64`, not zero.
fn post_id(text: &str) -> Result<i64, Failure> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::NotFound);
    }
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(Failure::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Route {
        route(method, path, true).unwrap_or_else(|f| panic!("{method} {path}: {f:?}"))
    }

    #[test]
    fn pages_with_and_without_trailing_slash() {
        assert_eq!(ok("GET", "/"), Route::Home);
        assert_eq!(ok("HEAD", "/"), Route::Home);
        assert_eq!(ok("GET", "/healthz"), Route::Health);
        assert_eq!(ok("GET", "/new"), Route::NewPost);
        assert_eq!(ok("GET", "/new/"), Route::NewPost);
        assert_eq!(ok("GET", "/posts"), Route::ListPosts);
        assert_eq!(ok("GET", "/posts/"), Route::ListPosts);
        assert_eq!(ok("POST", "/posts/"), Route::CreatePost);
        assert_eq!(ok("GET", "/posts/42"), Route::ShowPost(42));
        assert_eq!(ok("GET", "/posts/42/"), Route::ShowPost(42));
        assert_eq!(ok("GET", "/posts/42/edit"), Route::EditPost(42));
        assert_eq!(ok("POST", "/posts/42/edit/"), Route::UpdatePost(42));
        assert_eq!(ok("GET", "/posts/42/delete"), Route::ConfirmDelete(42));
        assert_eq!(ok("POST", "/posts/42/delete"), Route::DeletePost(42));
        assert_eq!(ok("GET", "/admin/login"), Route::AdminLoginForm);
        assert_eq!(ok("POST", "/admin/login/"), Route::AdminLogin);
        assert_eq!(ok("POST", "/admin/logout"), Route::AdminLogout);
        assert_eq!(
            ok("GET", "/static/css/x.css"),
            Route::Static("css/x.css".into())
        );
    }

    #[test]
    fn bad_ids_are_not_found() {
        for path in [
            "/posts/abc",
            "/posts/-1",
            "/posts/+1",
            "/posts/0",
            "/posts/1.5",
            "/posts/ 1",
            "/posts/99999999999999999999999",
            "/posts/9223372036854775808",
            "/posts/１２",
            "/posts/1/edit/x",
            "/posts//edit",
        ] {
            assert_eq!(route("GET", path, true), Err(Failure::NotFound), "{path}");
        }
        assert_eq!(
            ok("GET", "/posts/9223372036854775807"),
            Route::ShowPost(i64::MAX)
        );
    }

    #[test]
    fn unknown_paths_are_not_found_whatever_the_method() {
        for path in [
            "/nope",
            "/posts/1/comments",
            "/new/x",
            "/static",
            "/__fault/x",
        ] {
            assert_eq!(route("GET", path, true), Err(Failure::NotFound), "{path}");
            assert_eq!(
                route("DELETE", path, true),
                Err(Failure::NotFound),
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_methods_name_the_allowed_ones() {
        let allowed = |m: &str, p: &str| match route(m, p, false) {
            Err(Failure::MethodNotAllowed(allow)) => allow,
            other => panic!("{m} {p}: {other:?}"),
        };
        assert_eq!(allowed("POST", "/"), "GET, HEAD");
        assert_eq!(allowed("PUT", "/posts"), "GET, HEAD, POST");
        assert_eq!(allowed("POST", "/posts/1"), "GET, HEAD");
        assert_eq!(allowed("DELETE", "/posts/1/delete"), "GET, HEAD, POST");
        assert_eq!(allowed("POST", "/static/style.css"), "GET, HEAD");
        assert_eq!(
            allowed("GET", "/admin/logout"),
            "POST",
            "logging out changes state"
        );
        assert_eq!(
            allowed("get", "/"),
            "GET, HEAD",
            "methods are case-sensitive"
        );
    }

    #[test]
    fn fault_routes_exist_only_when_enabled() {
        assert_eq!(ok("GET", "/__fault/panic"), Route::Fault(Fault::Panic));
        assert_eq!(ok("GET", "/__fault/slow/"), Route::Fault(Fault::Slow));
        assert_eq!(
            route("GET", "/__fault/panic", false),
            Err(Failure::NotFound)
        );
        assert_eq!(
            route("GET", "/__fault/abort", false),
            Err(Failure::NotFound)
        );
    }
}
