//! Tests of the Markdown pipeline: each extension renders, and hostile input never survives.

use super::*;
use proptest::prelude::*;

fn html(source: &str) -> String {
    Markdown::new().render(source).html
}

#[test]
fn tables_render_with_alignment_classes_not_styles() {
    let out = html("| a | b |\n|:--|--:|\n| 1 | 2 |\n");
    assert!(out.contains("<table>"), "{out}");
    assert!(out.contains("<th class=\"align-left\">a</th>"), "{out}");
    assert!(out.contains("<td class=\"align-right\">2</td>"), "{out}");
    assert!(!out.contains("style"), "{out}");
}

#[test]
fn fenced_code_is_highlighted_with_classes() {
    let out = html("```python\ndef f(x):\n    return x < 1\n```\n");
    assert!(out.contains("<pre class=\"hl-code\"><code>"), "{out}");
    assert!(out.contains("<span class=\"hl-"), "{out}");
    assert!(out.contains("&lt;"), "{out}");
    let plain = html("```nosuchlang\n<b>x</b>\n```\n");
    assert!(plain.contains("<pre><code>&lt;b&gt;x&lt;/b&gt;"), "{plain}");
}

#[test]
fn strikethrough_renders_as_del() {
    assert!(html("~~gone~~").contains("<del>gone</del>"));
}

#[test]
fn footnotes_link_to_a_section_at_the_end() {
    let out = html("Claim[^src] and more.\n\n[^src]: The source.\n\nLast paragraph.\n");
    assert!(
        out.contains("<sup class=\"footnote-reference\"><a href=\"#fn-src\""),
        "{out}"
    );
    assert!(out.contains("id=\"fn-src\""), "{out}");
    let section = out
        .find("<section class=\"footnotes\">")
        .expect("footnote section");
    assert!(
        out.find("Last paragraph").unwrap() < section,
        "definitions move to the end: {out}"
    );
}

#[test]
fn task_lists_render_disabled_checkboxes() {
    let out = html("- [x] done\n- [ ] todo\n");
    assert!(out.contains("checked"), "{out}");
    assert_eq!(out.matches("type=\"checkbox\"").count(), 2, "{out}");
    assert_eq!(out.matches("disabled").count(), 2, "{out}");
}

#[test]
fn abbreviations_mark_text_but_not_code() {
    let out = html(
        "HTML is great, `HTML` in code.\n\n```\nHTML\n```\n\n*[HTML]: HyperText Markup Language\n",
    );
    assert!(
        out.contains("<abbr title=\"HyperText Markup Language\">HTML</abbr> is great"),
        "{out}"
    );
    assert!(out.contains("<code>HTML</code>"), "{out}");
    assert!(
        !out.contains("*[HTML]"),
        "definition line must be removed: {out}"
    );
    assert_eq!(out.matches("<abbr").count(), 1, "{out}");
}

#[test]
fn abbreviation_titles_cannot_inject_markup() {
    let out = html("XSS here\n\n*[XSS]: \"><script>alert(1)</script>\n");
    assert!(!out.contains("<script"), "{out}");
    assert!(out.contains("<abbr title="), "{out}");
}

#[test]
fn description_is_plain_text_cut_near_160_chars() {
    let md = Markdown::new();
    let short = md.render("# Title\n\nSome *emphasis* and `code`.\n");
    assert_eq!(short.description, "Title. Some emphasis and code.");
    let long = md.render(&"word ".repeat(100));
    assert!(
        long.description.chars().count() <= 160,
        "{}",
        long.description
    );
    assert!(long.description.ends_with("word…"), "{}", long.description);
}

/// Payloads from the usual XSS cheat sheets, as raw HTML and as Markdown.
const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=\"javascript:alert(1)\">",
    "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"java\tscript:alert(1)\">x</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<div onmouseover=\"alert(1)\">hover</div>",
    "<p style=\"background:url(javascript:alert(1))\">x</p>",
    "<svg onload=alert(1)><script>alert(1)</script></svg>",
    "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<object data=\"javascript:alert(1)\"></object>",
    "<body onload=alert(1)>",
    "<input onfocus=alert(1) autofocus>",
    "<form action=\"javascript:alert(1)\"><button>x</button></form>",
    "<details open ontoggle=alert(1)>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<style>*{background:red}</style>",
    "<a href=x onclick=alert(1)//>x</a>",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=`x` onerror=`alert(1)`",
    "<p <script>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<template><script>alert(1)</script></template>",
    "[link](javascript:alert(1))",
    "[link](JAVASCRIPT:alert(1))",
    "[link](<javascript:alert(1)>)",
    "[link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    "![img](data:image/png;base64,AAAA)",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "[x](&#106;avascript:alert(1))",
    "```html\n<script>alert(1)</script>\n```",
    "| <script>alert(1)</script> | b |\n|---|---|\n| <img src=x onerror=alert(1)> | c |",
    "- [ ] <img src=x onerror=alert(1)>",
    "x[^n]\n\n[^n]: <script>alert(1)</script>",
];

/// What must never appear in a stored post. Text is escaped by the serialiser, so a literal
/// `<` always opens a real tag; only tags and their attributes are inspected.
fn assert_inert(source: &str, out: &str) {
    for (tag, attributes) in tags(out) {
        for banned in [
            "script", "svg", "math", "iframe", "style", "object", "embed", "form",
        ] {
            assert_ne!(tag, banned, "<{tag}> from {source:?}: {out}");
        }
        for (name, value) in attributes {
            assert!(
                !name.starts_with("on"),
                "event handler {name} from {source:?}: {out}"
            );
            assert_ne!(name, "style", "style attribute from {source:?}: {out}");
            let value = value.trim().to_ascii_lowercase();
            for scheme in ["javascript:", "vbscript:", "data:"] {
                assert!(
                    !value.starts_with(scheme),
                    "{scheme} URL from {source:?}: {out}"
                );
            }
        }
    }
}

/// Tags of serialised HTML with their attributes (names lower-cased, values raw).
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let inside = &rest[..end];
        rest = &rest[end..];
        let name_len = inside
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inside.len());
        let tag = inside[..name_len].to_ascii_lowercase();
        let mut attributes = Vec::new();
        let mut attrs = &inside[name_len..];
        while let Some(eq) = attrs.find("=\"") {
            let name = attrs[..eq]
                .trim()
                .trim_start_matches('/')
                .to_ascii_lowercase();
            let value_start = eq + 2;
            let value_end = attrs[value_start..]
                .find('"')
                .map_or(attrs.len(), |v| value_start + v);
            attributes.push((name, attrs[value_start..value_end].to_string()));
            attrs = &attrs[(value_end + 1).min(attrs.len())..];
        }
        // A bare attribute name after the last value (e.g. `disabled`) cannot be a handler.
        for bare in attrs.split_whitespace() {
            attributes.push((
                bare.trim_end_matches('/').to_ascii_lowercase(),
                String::new(),
            ));
        }
        found.push((tag, attributes));
    }
    found
}

#[test]
fn hostile_html_and_markdown_never_survive() {
    let md = Markdown::new();
    for source in HOSTILE {
        assert_inert(source, &md.render(source).html);
        // Wrapped in ordinary Markdown too, where block context differs.
        let wrapped = format!("# T\n\n> {source}\n\n* item {source}\n");
        assert_inert(&wrapped, &md.render(&wrapped).html);
    }
}

#[test]
#[should_panic(expected = "event handler")]
fn the_detector_catches_event_handlers() {
    assert_inert("", "<p>ok</p><img src=\"x\" onerror=\"alert(1)\">");
}

#[test]
#[should_panic(expected = "javascript: URL")]
fn the_detector_catches_javascript_urls() {
    assert_inert("", "<a href=\" JavaScript:alert(1)\">x</a>");
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<script>".to_string()),
        Just("</script>".to_string()),
        Just("<img src=x onerror=alert(1)>".to_string()),
        Just("<a href=\"javascript:alert(1)\">".to_string()),
        Just("[x](javascript:alert(1))".to_string()),
        Just("![y](data:text/html,x)".to_string()),
        Just("<svg onload=alert(1)>".to_string()),
        Just(" onclick=".to_string()),
        Just("style=\"x\"".to_string()),
        Just("```".to_string()),
        Just("`".to_string()),
        Just("*[A]: t\n".to_string()),
        Just("[^n]".to_string()),
        Just("[^n]: ".to_string()),
        Just("| a |\n|---|\n".to_string()),
        Just("- [ ] ".to_string()),
        Just("&#106;avascript:".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("\"".to_string()),
        Just("\n\n".to_string()),
        "[a-zA-Z0-9 :=/<>\"'&#;()\\[\\]!*`~|-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_markdown_never_yields_active_content(parts in prop::collection::vec(fragment(), 0..24)) {
        let source = parts.concat();
        let out = Markdown::new().render(&source).html;
        assert_inert(&source, &out);
    }
}
