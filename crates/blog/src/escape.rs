//! HTML escaping for the few places that write markup by hand: abbreviation titles and the
//! plain fallback pages used when a template cannot render. Templates escape by themselves.

/// Escapes `&`, `<`, `>`, `"` and `'` so `text` is safe in element content and quoted
/// attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text);
    out
}

/// [`escape_html`] straight into a writer: runs without special characters are copied whole.
pub(crate) fn write_escaped<W: std::fmt::Write>(out: &mut W, text: &str) -> std::fmt::Result {
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&text[plain_from..at])?;
        out.write_str(entity)?;
        plain_from = at + 1;
    }
    out.write_str(&text[plain_from..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            super::escape_html(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(super::escape_html("héllo 漢字"), "héllo 漢字");
    }
}
