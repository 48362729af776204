//! Abbreviations the way Python-Markdown's `abbr` extension does them.
//!
//! A line `*[HTML]: HyperText Markup Language` defines an abbreviation and is removed from the
//! document; every whole-word `HTML` in ordinary text (never in code) then becomes
//! `<abbr title="HyperText Markup Language">HTML</abbr>`. pulldown-cmark has no such extension,
//! so definitions are cut out before parsing and occurrences are split out of text events.

/// One `*[ABBR]: title` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Abbreviation {
    pub abbr: String,
    pub title: String,
}

/// A piece of a text run: plain text, or an abbreviation with its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment<'t> {
    Plain(&'t str),
    Abbr(&'t str, &'t str),
}

/// Removes definition lines (outside fenced code) and returns the remaining Markdown with the
/// definitions, longest abbreviation first so `HTML5` wins over `HTML` at the same spot.
pub(crate) fn extract(source: &str) -> (String, Vec<Abbreviation>) {
    let mut body = String::with_capacity(source.len());
    let mut found: Vec<Abbreviation> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for line in source.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(open) = fence {
            if closes_fence(bare, open) {
                fence = None;
            }
        } else if let Some(open) = opens_fence(bare) {
            fence = Some(open);
        } else if let Some(def) = definition(bare) {
            // A later definition of the same abbreviation replaces the earlier one.
            found.retain(|d| d.abbr != def.abbr);
            found.push(def);
            continue;
        }
        body.push_str(line);
    }
    found.sort_by_key(|d| std::cmp::Reverse(d.abbr.chars().count()));
    (body, found)
}

/// `*[ABBR]: title` at the start of a line; an empty title defines nothing.
fn definition(line: &str) -> Option<Abbreviation> {
    let rest = line.strip_prefix("*[")?;
    let close = rest.find(']')?;
    let abbr = rest[..close].trim();
    let after = rest[close + 1..]
        .strip_prefix(' ')
        .unwrap_or(&rest[close + 1..]);
    let title = after.strip_prefix(':')?.trim();
    if abbr.is_empty() || title.is_empty() {
        return None;
    }
    Some(Abbreviation {
        abbr: abbr.to_string(),
        title: title.to_string(),
    })
}

/// A fence opener: up to three spaces, then three or more backticks or tildes.
fn opens_fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let mark = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run = rest.len() - rest.trim_start_matches(mark).len();
    (run >= 3).then_some((mark, run))
}

fn closes_fence(line: &str, (mark, len): (char, usize)) -> bool {
    let trimmed = line.trim();
    trimmed.len() >= len && trimmed.chars().all(|c| c == mark)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text` at whole-word occurrences of the abbreviations.
pub(crate) fn split<'t>(text: &'t str, abbrs: &'t [Abbreviation]) -> Vec<Segment<'t>> {
    let mut segments = Vec::new();
    let mut plain_start = 0;
    let mut previous: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((at, c)) = iter.next() {
        let boundary_before = !previous.is_some_and(is_word_char);
        previous = Some(c);
        if !boundary_before && is_word_char(c) {
            continue;
        }
        let hit = abbrs.iter().find(|a| {
            let Some(tail) = text[at..].strip_prefix(a.abbr.as_str()) else {
                return false;
            };
            let ends_word = a.abbr.chars().last().is_some_and(is_word_char);
            !ends_word || !tail.chars().next().is_some_and(is_word_char)
        });
        let Some(hit) = hit else { continue };
        let starts_word = hit.abbr.chars().next().is_some_and(is_word_char);
        if starts_word && !boundary_before {
            continue;
        }
        if plain_start < at {
            segments.push(Segment::Plain(&text[plain_start..at]));
        }
        let end = at + hit.abbr.len();
        segments.push(Segment::Abbr(&text[at..end], &hit.title));
        plain_start = end;
        previous = text[..end].chars().last();
        while iter.peek().is_some_and(|(i, _)| *i < end) {
            iter.next();
        }
    }
    if plain_start < text.len() {
        segments.push(Segment::Plain(&text[plain_start..]));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_removed_and_collected() {
        let (body, abbrs) =
            extract("HTML and CSS.\n\n*[HTML]: HyperText Markup Language\n*[CSS] : Style\n");
        assert_eq!(body, "HTML and CSS.\n\n");
        assert_eq!(abbrs.len(), 2);
        assert_eq!(abbrs[0].abbr, "HTML");
        assert_eq!(abbrs[0].title, "HyperText Markup Language");
        assert_eq!(abbrs[1].title, "Style");
    }

    #[test]
    fn definitions_inside_fenced_code_stay() {
        let src = "```\n*[HTML]: kept\n```\n*[W3C]: World Wide Web Consortium\n";
        let (body, abbrs) = extract(src);
        assert_eq!(body, "```\n*[HTML]: kept\n```\n");
        assert_eq!(abbrs.len(), 1);
        assert_eq!(abbrs[0].abbr, "W3C");
    }

    #[test]
    fn only_whole_words_are_marked() {
        let abbrs = vec![
            Abbreviation {
                abbr: "HTML5".into(),
                title: "five".into(),
            },
            Abbreviation {
                abbr: "HTML".into(),
                title: "markup".into(),
            },
        ];
        let parts = split("HTML, XHTML, HTMLish, HTML5 and (HTML).", &abbrs);
        assert_eq!(
            parts,
            vec![
                Segment::Abbr("HTML", "markup"),
                Segment::Plain(", XHTML, HTMLish, "),
                Segment::Abbr("HTML5", "five"),
                Segment::Plain(" and ("),
                Segment::Abbr("HTML", "markup"),
                Segment::Plain(")."),
            ]
        );
    }

    #[test]
    fn unicode_text_around_abbreviations_is_kept_intact() {
        let abbrs = vec![Abbreviation {
            abbr: "API".into(),
            title: "interface".into(),
        }];
        let parts = split("日本のAPIと API。", &abbrs);
        assert_eq!(
            parts,
            vec![
                Segment::Plain("日本のAPIと "),
                Segment::Abbr("API", "interface"),
                Segment::Plain("。"),
            ]
        );
    }
}
