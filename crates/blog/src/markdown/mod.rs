//! Markdown to safe HTML, done once when a post is saved; views only read the stored result.
//!
//! pulldown-cmark parses with tables, fenced code, strikethrough, footnotes and task lists.
//! Between parsing and HTML writing the event stream is rewritten: fenced code is highlighted
//! (`highlight`), abbreviations are marked (`abbr`), table cells get alignment classes instead
//! of `style`, and footnote definitions move to a section at the end. Everything then goes
//! through the sanitiser (`sanitize`), which is the only line of defence that matters.

mod abbr;
mod highlight;
mod sanitize;

use crate::escape::escape_html;
use highlight::Highlighter;
use pulldown_cmark::{Alignment, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use sanitize::Sanitizer;

/// Longest plain-text description kept for listings and meta tags, in characters.
const DESCRIPTION_CHARS: usize = 160;

/// What a save stores besides the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// Sanitised HTML, ready to embed; never empty.
    pub html: String,
    /// The first ~160 characters of the post's plain text.
    pub description: String,
}

/// The renderer: highlighter and sanitiser, built once per worker.
pub(crate) struct Markdown {
    highlighter: Highlighter,
    sanitizer: Sanitizer,
}

impl Markdown {
    pub fn new() -> Markdown {
        Markdown {
            highlighter: Highlighter::default(),
            sanitizer: Sanitizer::new(),
        }
    }

    /// Calls `release` whenever the highlighter retires after idling and has freed its memory.
    pub fn set_memory_release(&self, release: highlight::ReleaseMemory) {
        self.highlighter.set_memory_release(release);
    }

    pub fn render(&self, source: &str) -> Rendered {
        let (body, abbreviations) = abbr::extract(source);
        let options = Options::ENABLE_TABLES
            | Options::ENABLE_FOOTNOTES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS;
        let mut events: Vec<Event<'_>> = Vec::new();
        let mut footnotes: Vec<Event<'_>> = Vec::new();
        let mut text = Description::default();
        let mut state = Walk::default();

        for event in Parser::new_ext(&body, options) {
            if let Some((lang, code)) = state.fence.as_mut() {
                match event {
                    Event::Text(t) => code.push_str(&t),
                    Event::End(TagEnd::CodeBlock) => {
                        let html = self.highlighter.block(lang, code);
                        state.fence = None;
                        state
                            .sink(&mut events, &mut footnotes)
                            .push(Event::Html(html.into()));
                    }
                    _ => {}
                }
                continue;
            }
            let in_prose = state.footnote_depth == 0 && state.image_depth == 0;
            if let Event::End(end) = &event {
                if matches!(end, TagEnd::Heading(_)) {
                    text.end_sentence();
                } else if ends_block(end) {
                    text.push(" ");
                }
            }
            let out = match event {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                    let lang = info.split_whitespace().next().unwrap_or("").to_string();
                    state.fence = Some((lang, String::new()));
                    continue;
                }
                Event::Start(Tag::CodeBlock(CodeBlockKind::Indented)) => {
                    state.in_code = true;
                    vec![event]
                }
                Event::End(TagEnd::CodeBlock) => {
                    state.in_code = false;
                    vec![event]
                }
                Event::Start(Tag::FootnoteDefinition(_)) => {
                    state.footnote_depth += 1;
                    footnotes.push(event);
                    continue;
                }
                Event::End(TagEnd::FootnoteDefinition) => {
                    footnotes.push(event);
                    state.footnote_depth = state.footnote_depth.saturating_sub(1);
                    continue;
                }
                Event::Start(Tag::Image { .. }) => {
                    state.image_depth += 1;
                    vec![event]
                }
                Event::End(TagEnd::Image) => {
                    state.image_depth = state.image_depth.saturating_sub(1);
                    vec![event]
                }
                Event::Start(Tag::Table(ref alignments)) => {
                    state.alignments = alignments.clone();
                    vec![event]
                }
                Event::Start(Tag::TableHead) => {
                    state.in_table_head = true;
                    vec![event]
                }
                Event::End(TagEnd::TableHead) => {
                    state.in_table_head = false;
                    vec![event]
                }
                Event::Start(Tag::TableRow) => {
                    state.cell = 0;
                    vec![event]
                }
                Event::Start(Tag::TableCell) => vec![state.cell_start()],
                Event::Text(t) if !state.in_code => {
                    if in_prose {
                        text.push(&t);
                    }
                    mark_abbreviations(t, &abbreviations, state.image_depth > 0)
                }
                Event::Code(ref c) => {
                    if in_prose {
                        text.push(c);
                    }
                    vec![event]
                }
                Event::SoftBreak | Event::HardBreak => {
                    text.push(" ");
                    vec![event]
                }
                other => vec![other],
            };
            state.sink(&mut events, &mut footnotes).extend(out);
        }

        if !footnotes.is_empty() {
            events.push(Event::Html("<section class=\"footnotes\">\n".into()));
            events.append(&mut footnotes);
            events.push(Event::Html("</section>\n".into()));
        }
        let mut html = String::with_capacity(body.len() * 3 / 2);
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        let mut html = self.sanitizer.clean(&html);
        if html.trim().is_empty() {
            // Empty HTML marks a post still to render (see `Store::unrendered`).
            html = "<p></p>".to_string();
        }
        Rendered {
            html,
            description: text.finish(),
        }
    }
}

/// Where the walk over the event stream is.
#[derive(Default)]
struct Walk {
    /// Inside a fenced block: its language and the code collected so far.
    fence: Option<(String, String)>,
    in_code: bool,
    footnote_depth: usize,
    image_depth: usize,
    alignments: Vec<Alignment>,
    in_table_head: bool,
    cell: usize,
}

impl Walk {
    fn sink<'v, 'e>(
        &self,
        events: &'v mut Vec<Event<'e>>,
        footnotes: &'v mut Vec<Event<'e>>,
    ) -> &'v mut Vec<Event<'e>> {
        if self.footnote_depth > 0 {
            footnotes
        } else {
            events
        }
    }

    /// A table cell opened with an alignment class; pulldown-cmark would write `style`.
    /// Its writer still closes the cell, as it tracks head and body itself.
    fn cell_start(&mut self) -> Event<'static> {
        let tag = if self.in_table_head { "th" } else { "td" };
        let class = match self.alignments.get(self.cell) {
            Some(Alignment::Left) => " class=\"align-left\"",
            Some(Alignment::Center) => " class=\"align-center\"",
            Some(Alignment::Right) => " class=\"align-right\"",
            Some(Alignment::None) | None => "",
        };
        self.cell += 1;
        Event::Html(format!("<{tag}{class}>").into())
    }
}

/// Block ends separate words in the plain-text description.
fn ends_block(end: &TagEnd) -> bool {
    matches!(
        end,
        TagEnd::Paragraph
            | TagEnd::Item
            | TagEnd::TableCell
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
    )
}

/// Splits a text event at abbreviations. Inside image alt text only plain text is allowed.
fn mark_abbreviations<'e>(
    text: CowStr<'e>,
    abbreviations: &[abbr::Abbreviation],
    in_image: bool,
) -> Vec<Event<'e>> {
    if abbreviations.is_empty() || in_image {
        return vec![Event::Text(text)];
    }
    let segments = abbr::split(&text, abbreviations);
    if let [abbr::Segment::Plain(_)] = segments.as_slice() {
        return vec![Event::Text(text)];
    }
    segments
        .into_iter()
        .map(|segment| match segment {
            abbr::Segment::Plain(plain) => Event::Text(plain.to_string().into()),
            abbr::Segment::Abbr(word, title) => Event::InlineHtml(
                format!(
                    "<abbr title=\"{}\">{}</abbr>",
                    escape_html(title),
                    escape_html(word)
                )
                .into(),
            ),
        })
        .collect()
}

/// Collects the post's plain text until it has enough for a description.
#[derive(Default)]
struct Description {
    text: String,
    chars: usize,
}

impl Description {
    fn push(&mut self, piece: &str) {
        // Collect a little past the limit so `finish` can cut at a word boundary.
        if self.chars > DESCRIPTION_CHARS + 1 {
            return;
        }
        for c in piece.chars() {
            let c = if c.is_whitespace() { ' ' } else { c };
            if c == ' ' && (self.text.is_empty() || self.text.ends_with(' ')) {
                continue;
            }
            self.text.push(c);
            self.chars += 1;
        }
    }

    /// A heading runs into the next paragraph: close it like a sentence.
    fn end_sentence(&mut self) {
        let trimmed = self.text.trim_end();
        if !trimmed.is_empty() && !trimmed.ends_with(['.', '!', '?', ':', ';', '…']) {
            self.text.truncate(trimmed.len());
            self.text.push('.');
        }
        self.push(" ");
    }

    fn finish(self) -> String {
        let text = self.text.trim_end();
        if text.chars().count() <= DESCRIPTION_CHARS {
            return text.to_string();
        }
        let cut: String = text.chars().take(DESCRIPTION_CHARS - 1).collect();
        let cut = match cut.rfind(' ') {
            Some(space) if space > cut.len() / 2 => &cut[..space],
            _ => cut.as_str(),
        };
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests;
