//! The new/edit post form: what was typed, and the original's rules for it.
//!
//! Title 1–100 characters, name 1–8, content 1–14000, counted in characters (not bytes) after
//! trimming surrounding whitespace. Browsers submit textarea line breaks as CRLF while their
//! `maxlength` counts one character per break, so content is normalised to LF first: a post
//! the browser accepted is never rejected for its line breaks. What was typed is kept as is
//! so an invalid form comes back exactly as the writer left it.

use crate::store::Post;
use serde::Serialize;

pub(crate) const TITLE_MAX: usize = 100;
pub(crate) const NAME_MAX: usize = 8;
pub(crate) const CONTENT_MAX: usize = 14_000;

/// The fields as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PostForm {
    pub title: String,
    pub name: String,
    pub content: String,
}

/// A message per invalid field, shown beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct FieldErrors {
    pub title: Option<String>,
    pub name: Option<String>,
    pub content: Option<String>,
}

/// The fields after validation: trimmed and within limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidPost {
    pub title: String,
    pub name: String,
    pub content: String,
}

impl PostForm {
    /// From decoded form pairs; the first of repeated fields wins, unknown fields are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> PostForm {
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        PostForm {
            title: field("title"),
            name: field("name"),
            content: field("content").replace("\r\n", "\n"),
        }
    }

    /// A form holding a stored post, for editing.
    pub fn from_post(post: &Post) -> PostForm {
        PostForm {
            title: post.summary.title.clone(),
            name: post.summary.name.clone(),
            content: post.markdown.clone(),
        }
    }

    pub fn validate(&self) -> Result<ValidPost, FieldErrors> {
        let errors = FieldErrors {
            title: check("Title", &self.title, TITLE_MAX),
            name: check("Name", &self.name, NAME_MAX),
            content: check("Content", &self.content, CONTENT_MAX),
        };
        if errors.title.is_some() || errors.name.is_some() || errors.content.is_some() {
            return Err(errors);
        }
        Ok(ValidPost {
            title: self.title.trim().to_string(),
            name: self.name.trim().to_string(),
            content: self.content.trim().to_string(),
        })
    }
}

fn check(label: &str, value: &str, max: usize) -> Option<String> {
    let count = value.trim().chars().count();
    if count == 0 {
        Some(format!("{label} is required."))
    } else if count > max {
        Some(format!(
            "{label} must be at most {max} characters; it has {count}."
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(title: &str, name: &str, content: &str) -> PostForm {
        PostForm {
            title: title.into(),
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        assert!(form(&"é".repeat(100), "名前名前名前名前", "x")
            .validate()
            .is_ok());
        assert!(form("t", "😀😀😀😀😀😀😀😀", "x").validate().is_ok());
        let errs = form(&"é".repeat(101), "😀😀😀😀😀😀😀😀😀", &"字".repeat(14_001))
            .validate()
            .unwrap_err();
        assert!(errs.title.unwrap().contains("at most 100"));
        assert!(errs.name.unwrap().contains("at most 8"));
        assert!(errs.content.unwrap().contains("at most 14000"));
        assert!(form("t", "n", &"字".repeat(14_000)).validate().is_ok());
    }

    #[test]
    fn surrounding_whitespace_does_not_count() {
        let ok = form("  Title  ", " ann\t", "\n body \n")
            .validate()
            .unwrap();
        assert_eq!(
            ok,
            ValidPost {
                title: "Title".into(),
                name: "ann".into(),
                content: "body".into()
            }
        );
        let errs = form("   ", "", "\n\n").validate().unwrap_err();
        assert_eq!(errs.title.as_deref(), Some("Title is required."));
        assert_eq!(errs.name.as_deref(), Some("Name is required."));
        assert_eq!(errs.content.as_deref(), Some("Content is required."));
        assert!(form(" ", &format!("  {}  ", "x".repeat(8)), "c")
            .validate()
            .unwrap_err()
            .name
            .is_none());
    }

    #[test]
    fn crlf_line_breaks_count_once() {
        let pairs = vec![
            ("title".to_string(), "t".to_string()),
            ("name".to_string(), "n".to_string()),
            ("content".to_string(), "a\r\n".repeat(4_000) + "end"),
            ("title".to_string(), "ignored".to_string()),
        ];
        let f = PostForm::from_pairs(&pairs);
        assert_eq!(f.title, "t");
        assert_eq!(f.content.chars().count(), 8_003);
        assert!(f.validate().is_ok());
    }
}
