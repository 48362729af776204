//! One headless Chromium per test module and the pages it opens, watched for trouble.
//!
//! A [`Page`] records every console error, uncaught exception, failed load and CSP violation
//! from the moment its tab exists (CDP events, plus a `securitypolicyviolation` listener
//! installed before any document runs); [`Page::assert_clean`] fails the test on any of them.
//! Navigation is awaited by polling the DOM, never by sleeping.

use crate::support::{wait_until, PATIENCE};

use base64::Engine as _;
use headless_chrome::protocol::cdp::types::{Event, Method};
use headless_chrome::protocol::cdp::{Emulation, Input, Log, Network, Page as Cdp, Runtime};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reports CSP violations as console errors, so one collector sees them with everything else.
const CSP_WATCH: &str = "document.addEventListener('securitypolicyviolation', (e) => \
    console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI), true);";

/// A headless Chromium with a fresh profile, killed when dropped.
pub struct Chrome {
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub fn launch(chromium: &Path) -> Chrome {
        let profile = tempfile::tempdir().expect("chromium profile dir");
        // As root Chromium needs --no-sandbox; without the background-networking and
        // component flags it reaches for the internet, which this closed network refuses.
        let args: Vec<&OsStr> = [
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions {
            path: Some(chromium.to_path_buf()),
            headless: true,
            sandbox: false,
            user_data_dir: Some(profile.path().to_path_buf()),
            window_size: Some((1280, 900)),
            args,
            idle_browser_timeout: Duration::from_secs(300),
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options).expect("launch headless chromium");
        Chrome {
            browser,
            _profile: profile,
        }
    }

    /// A new tab whose pages resolve paths against `origin` (`http://127.0.0.1:PORT`).
    pub fn page(&self, origin: String) -> Page {
        let tab = self.browser.new_tab().expect("new tab");
        tab.set_default_timeout(PATIENCE);
        let problems = Arc::new(Mutex::new(Vec::new()));
        let urls: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let (sink, requests) = (problems.clone(), urls.clone());
        tab.add_event_listener(Arc::new(move |event: &Event| {
            if let Some(problem) = describe(event, &requests) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(problem);
            }
        }))
        .expect("listen to CDP events");
        tab.enable_runtime().expect("Runtime.enable");
        tab.enable_log().expect("Log.enable");
        cdp::<Network::Enable>(&tab, json!({}));
        cdp::<Cdp::AddScriptToEvaluateOnNewDocument>(&tab, json!({ "source": CSP_WATCH }));
        Page {
            tab,
            origin,
            problems,
        }
    }
}

/// Turns the events that mean "something on the page went wrong" into one line each.
fn describe(event: &Event, requests: &Mutex<HashMap<String, String>>) -> Option<String> {
    match event {
        Event::NetworkRequestWillBeSent(e) => {
            let mut urls = requests.lock().unwrap_or_else(|e| e.into_inner());
            urls.insert(e.params.request_id.clone(), e.params.request.url.clone());
            None
        }
        Event::NetworkLoadingFailed(e) => {
            let urls = requests.lock().unwrap_or_else(|e| e.into_inner());
            let url = urls.get(&e.params.request_id).map_or("?", String::as_str);
            Some(format!("load failed: {url}: {}", e.params.error_text))
        }
        Event::LogEntryAdded(e) if e.params.entry.level == Log::LogEntryLevel::Error => {
            let entry = &e.params.entry;
            Some(format!(
                "log error: {} ({})",
                entry.text,
                entry.url.as_deref().unwrap_or("")
            ))
        }
        Event::RuntimeConsoleAPICalled(e)
            if matches!(
                e.params.Type,
                Runtime::ConsoleAPICalledEventTypeOption::Error
                    | Runtime::ConsoleAPICalledEventTypeOption::Assert
            ) =>
        {
            let args: Vec<String> = e
                .params
                .args
                .iter()
                .map(|a| match &a.value {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => a.description.clone().unwrap_or_default(),
                })
                .collect();
            Some(format!("console error: {}", args.join(" ")))
        }
        Event::RuntimeExceptionThrown(e) => {
            let details = &e.params.exception_details;
            let what = details
                .exception
                .as_ref()
                .and_then(|x| x.description.clone())
                .unwrap_or_else(|| details.text.clone());
            Some(format!("uncaught exception: {what}"))
        }
        _ => None,
    }
}

/// Sends one CDP command built from JSON (the generated structs have many optional fields).
fn cdp<C>(tab: &Tab, params: Value) -> C::ReturnObject
where
    C: Method + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let method: C = serde_json::from_value(params.clone())
        .unwrap_or_else(|e| panic!("{} params {params}: {e}", C::NAME));
    tab.call_method(method)
        .unwrap_or_else(|e| panic!("{} {params}: {e}", C::NAME))
}

/// A colour scheme the page is rendered in (`prefers-color-scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Light,
    Dark,
}

impl Scheme {
    pub const ALL: [Scheme; 2] = [Scheme::Light, Scheme::Dark];
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Light => "light",
            Scheme::Dark => "dark",
        }
    }
}

/// One browser tab on the blog.
pub struct Page {
    pub tab: Arc<Tab>,
    origin: String,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Page {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Opens `path` and waits until its document has loaded.
    pub fn goto(&self, path: &str) {
        self.mark_document();
        self.tab.navigate_to(&self.url(path)).expect("navigate");
        self.wait_new_document();
    }

    /// Clicks the element `selector` like a user (mouse press and release at its centre)
    /// and waits for the document it leads to.
    pub fn click_and_wait(&self, selector: &str) {
        self.mark_document();
        self.click(selector);
        self.wait_new_document();
    }

    /// Scrolls `selector` into view and clicks its centre with real mouse events.
    // headless_chrome's own Element::click costs a dozen CDP round trips, and each round
    // trip waits up to 100 ms for its socket reader: one evaluate and two input events here.
    pub fn click(&self, selector: &str) {
        let json = serde_json::to_string(selector).expect("selector as JSON");
        let centre = self.eval(&format!(
            "(() => {{ const el = document.querySelector({json}); if (!el) return null; \
             el.scrollIntoView({{ block: 'center', inline: 'center' }}); \
             const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (Some(x), Some(y)) = (centre[0].as_f64(), centre[1].as_f64()) else {
            panic!("no {selector} to click on {}", self.tab.get_url());
        };
        for kind in ["mousePressed", "mouseReleased"] {
            cdp::<Input::DispatchMouseEvent>(
                &self.tab,
                json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1 }),
            );
        }
    }

    fn mark_document(&self) {
        // A flag on the old document's window: a new document is one without it.
        let _ = self.tab.evaluate("window.__pyblogdOld = true", false);
    }

    fn wait_new_document(&self) {
        let arrived = wait_until(PATIENCE, || {
            matches!(
                self.tab.evaluate(
                    "!window.__pyblogdOld && document.readyState === 'complete'",
                    false
                ),
                Ok(result) if result.value == Some(Value::Bool(true))
            )
        });
        assert!(
            arrived,
            "no new document loaded (at {})",
            self.tab.get_url()
        );
    }

    /// Evaluates `expression`, awaiting it if it is a promise, and returns its JSON value.
    pub fn eval(&self, expression: &str) -> Value {
        let wrapped = format!("Promise.resolve(({expression})).then((v) => JSON.stringify(v === undefined ? null : v))");
        let result = self
            .tab
            .evaluate(&wrapped, true)
            .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"));
        match result.value {
            Some(Value::String(text)) => serde_json::from_str(&text).expect("JSON from page"),
            other => panic!(
                "evaluate {expression}: {other:?} / {:?}",
                result.description
            ),
        }
    }

    pub fn eval_string(&self, expression: &str) -> String {
        match self.eval(expression) {
            Value::String(s) => s,
            other => panic!("{expression} gave {other}, not a string"),
        }
    }

    pub fn eval_bool(&self, expression: &str) -> bool {
        self.eval(expression) == Value::Bool(true)
    }

    /// Waits until `expression` is true in the page.
    pub fn wait_for(&self, expression: &str) {
        let held = wait_until(
            PATIENCE,
            || matches!(self.tab.evaluate(expression, false), Ok(r) if r.value == Some(Value::Bool(true))),
        );
        assert!(held, "never true: {expression} (at {})", self.tab.get_url());
    }

    /// The text of the first element matching `selector`.
    pub fn text(&self, selector: &str) -> String {
        let selector = serde_json::to_string(selector).expect("selector as JSON");
        self.eval_string(&format!(
            "(document.querySelector({selector}) || {{ textContent: '<none>' }}).textContent.trim()"
        ))
    }

    /// Enters `text` into the field `selector` as a keyboard or a paste does (replacing what
    /// is there): focus and select it, then one text input event.
    pub fn type_into(&self, selector: &str, text: &str) {
        let json = serde_json::to_string(selector).expect("selector as JSON");
        let focused = self.eval(&format!(
            "(() => {{ const el = document.querySelector({json}); if (!el) return false; \
             el.focus(); el.select(); return document.activeElement === el; }})()"
        ));
        assert_eq!(focused, Value::Bool(true), "focus {selector}");
        cdp::<Input::InsertText>(&self.tab, json!({ "text": text }));
    }

    /// Renders in `scheme` (`prefers-color-scheme`) from now on.
    pub fn set_scheme(&self, scheme: Scheme) {
        cdp::<Emulation::SetEmulatedMedia>(
            &self.tab,
            json!({ "media": "", "features": [{ "name": "prefers-color-scheme", "value": scheme.name() }] }),
        );
    }

    /// Renders `width` CSS pixels wide, in a viewport 800 px tall (a phone's layout below 600).
    pub fn set_width(&self, width: u32) {
        cdp::<Emulation::SetDeviceMetricsOverride>(
            &self.tab,
            json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600 }),
        );
    }

    /// Renders at `width` in `scheme`.
    pub fn emulate(&self, width: u32, scheme: Scheme) {
        self.set_scheme(scheme);
        self.set_width(width);
    }

    /// How far the page scrolls sideways (0 when nothing overflows) and its full height.
    pub fn overflow_and_height(&self) -> (i64, u64) {
        let size = self.eval(
            "[document.documentElement.scrollWidth - document.documentElement.clientWidth, \
             document.documentElement.scrollHeight]",
        );
        (
            size[0].as_i64().expect("overflow"),
            size[1].as_u64().expect("page height"),
        )
    }

    /// A PNG of the whole page (`width` × `height`, the viewport and what lies below it).
    pub fn screenshot(&self, width: u32, height: u64, path: &Path) {
        let shot = cdp::<Cdp::CaptureScreenshot>(
            &self.tab,
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height.min(8000), "scale": 1 },
            }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.data)
            .expect("screenshot is base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Everything that went wrong since the last call.
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(&mut *self.problems.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fails on any console error, exception, failed load or CSP violation so far, except
    /// the browser's own note that the document at `expected_status_for` had an error status.
    pub fn assert_clean(&self, step: &str, expected_status_for: Option<&str>) {
        // Problems can arrive just after the load event (late sub-resources): let the
        // page settle on a round trip through the renderer first.
        let _ = self.eval("new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))");
        let problems: Vec<String> = self
            .take_problems()
            .into_iter()
            .filter(|p| {
                !expected_status_for.is_some_and(|url| {
                    p.starts_with(
                        "log error: Failed to load resource: the server responded with a status of",
                    ) && p.ends_with(&format!("({})", self.url(url)))
                })
            })
            .collect();
        assert!(
            problems.is_empty(),
            "{step}: the browser reported:\n{}",
            problems.join("\n")
        );
    }
}
