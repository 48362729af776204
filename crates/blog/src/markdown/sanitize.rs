//! The HTML allowlist every post passes through before it is stored (ammonia).
//!
//! Markdown allows raw HTML, so the rendered post is untrusted: only the tags and attributes
//! Markdown produces survive. No script, event handler, `style`, or URL other than http(s),
//! mailto, relative or fragment can reach a page; links get `rel="nofollow noopener ugc"`.
//! Classes survive only when they are highlighting (`hl-…`) or one of ours (footnotes,
//! table alignment), and ids are prefixed so a post cannot clobber the page's own ids.

use super::highlight::CLASS_PREFIX;
use ammonia::Builder;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// The prefix given to every id in a post (footnote targets), and to `#fragment` links.
const ID_PREFIX: &str = "fn-";

/// Classes the renderer itself writes, besides the highlighting ones.
const OWN_CLASSES: &[&str] = &[
    "footnotes",
    "footnote-definition",
    "footnote-definition-label",
    "footnote-reference",
    "align-left",
    "align-center",
    "align-right",
];

const TAGS: &[&str] = &[
    "ul",
    "ol",
    "li",
    "p",
    "pre",
    "code",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "br",
    "strong",
    "em",
    "a",
    "img",
    "div",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "abbr",
    "del",
    "sup",
    "input",
    "section",
];

/// Elements dropped together with everything inside them (not just unwrapped).
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
    "textarea", "select", "title", "noembed", "noframes", "xmp",
];

/// Cleans rendered post HTML. Built once per worker.
pub(crate) struct Sanitizer {
    builder: Builder<'static>,
}

impl Sanitizer {
    pub fn new() -> Sanitizer {
        let mut builder = Builder::empty();
        let mut attributes: HashMap<&'static str, HashSet<&'static str>> = HashMap::new();
        for (tag, names) in [
            ("a", &["href", "title"][..]),
            ("img", &["src", "alt", "title"]),
            ("abbr", &["title"]),
            ("input", &["type", "checked", "disabled"]),
            ("span", &["class"]),
            ("code", &["class"]),
            ("pre", &["class"]),
            ("div", &["class", "id"]),
            ("sup", &["class"]),
            ("section", &["class"]),
            ("th", &["class"]),
            ("td", &["class"]),
            ("ol", &["start"]),
        ] {
            attributes.insert(tag, names.iter().copied().collect());
        }
        builder
            .tags(TAGS.iter().copied().collect())
            .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
            .tag_attributes(attributes)
            .url_schemes(["http", "https", "mailto"].into_iter().collect())
            .url_relative(ammonia::UrlRelative::PassThrough)
            .link_rel(Some("nofollow noopener ugc"))
            .strip_comments(true)
            // Task-list markers only: whatever `<input>` a post writes becomes a disabled
            // checkbox, so it can neither submit nor collect anything.
            .set_tag_attribute_value("input", "type", "checkbox")
            .set_tag_attribute_value("input", "disabled", "")
            .attribute_filter(filter_attribute);
        Sanitizer { builder }
    }

    pub fn clean(&self, html: &str) -> String {
        self.builder.clean(html).to_string()
    }
}

fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match attribute {
        "class" => {
            let kept: Vec<&str> = value
                .split_ascii_whitespace()
                .filter(|c| c.starts_with(CLASS_PREFIX) || OWN_CLASSES.contains(c))
                .collect();
            (!kept.is_empty()).then(|| Cow::Owned(kept.join(" ")))
        }
        "id" => Some(Cow::Owned(format!("{ID_PREFIX}{value}"))),
        "href" if element == "a" => match value.strip_prefix('#') {
            Some(fragment) if !fragment.is_empty() => {
                Some(Cow::Owned(format!("#{ID_PREFIX}{fragment}")))
            }
            _ => Some(Cow::Borrowed(value)),
        },
        "start" => value.parse::<u32>().ok().map(|n| Cow::Owned(n.to_string())),
        _ => Some(Cow::Borrowed(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_markdown_output_and_drops_the_rest() {
        let s = Sanitizer::new();
        let out = s.clean(
            "<p onclick=\"x()\" style=\"color:red\">Hi <a href=\"https://e.com\" \
             target=_blank>e</a><script>alert(1)</script></p>",
        );
        assert_eq!(
            out,
            "<p>Hi <a href=\"https://e.com\" rel=\"nofollow noopener ugc\">e</a></p>"
        );
    }

    #[test]
    fn classes_are_filtered_to_highlighting_and_our_own() {
        let s = Sanitizer::new();
        let out =
            s.clean("<span class=\"hl-keyword evil footnotes\">k</span><p class=\"hl-x\">p</p>");
        assert_eq!(out, "<span class=\"hl-keyword footnotes\">k</span><p>p</p>");
    }

    #[test]
    fn footnote_ids_and_fragment_links_share_a_prefix() {
        let s = Sanitizer::new();
        let out = s
            .clean("<a href=\"#note\">1</a><div class=\"footnote-definition\" id=\"note\">x</div>");
        assert!(out.contains("href=\"#fn-note\""), "{out}");
        assert!(out.contains("id=\"fn-note\""), "{out}");
    }

    #[test]
    fn inputs_become_disabled_checkboxes() {
        let s = Sanitizer::new();
        let out = s.clean("<input type=\"text\" name=\"password\" value=\"x\">");
        assert!(out.contains("type=\"checkbox\""), "{out}");
        assert!(out.contains("disabled"), "{out}");
        assert!(!out.contains("password") && !out.contains("value"), "{out}");
    }
}
