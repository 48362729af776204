//! Where posts live: the [`Store`] trait the handlers use, and the records it returns.
//!
//! The trait is small on purpose: SQLite (`sqlite.rs`, schema in `schema.rs`) and PostgreSQL
//! (`postgres.rs`, `postgres_schema.rs`) implement it alike. Write failures are classified here ([`StoreError`]) so
//! handlers can answer 503 with `Retry-After` for a busy or unwritable database and keep reads
//! working, without knowing which database is behind the trait.

mod checkpoint;
mod legacy;
mod postgres;
mod postgres_schema;
mod schema;
mod sqlite;
mod upkeep;
mod views;

pub(crate) use postgres::PostgresStore;
pub(crate) use sqlite::SqliteStore;

use crate::security::Digest256;
use serde::Serialize;
use std::time::Duration;

/// A post as lists show it: no Markdown, no HTML (they can be large).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PostSummary {
    pub id: i64,
    pub title: String,
    pub name: String,
    /// Plain text of the post's start, for listings and meta descriptions.
    pub description: String,
    /// Unix seconds, UTC.
    pub created_at: i64,
    /// Unix seconds, UTC; equal to `created_at` until the first edit.
    pub updated_at: i64,
    pub view_count: i64,
}

/// A whole post: the summary plus the Markdown source and its sanitised HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Post {
    #[serde(flatten)]
    pub summary: PostSummary,
    /// Only the edit form needs the source; pages are built from `html`.
    #[serde(skip_serializing)]
    pub markdown: String,
    /// Rendered, highlighted and sanitised when the post was saved.
    pub html: String,
}

/// What a create or an edit writes: validated input plus what was rendered from it.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub title: String,
    pub name: String,
    pub markdown: String,
    pub html: String,
    pub description: String,
}

/// Cheap facts about the whole table, kept up to date by the database itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Number of posts.
    pub total: u64,
    /// Bumped by every create, edit and delete (not by views): a cache stamp.
    pub generation: u64,
}

/// A post's view count and the change generation, read from one database snapshot: enough to
/// show a post whose page was already rendered at that generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewCount {
    pub views: i64,
    pub generation: u64,
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database stayed locked by other writers past the busy timeout: try again soon.
    #[error("database busy: {0}")]
    Busy(String),
    /// The database refuses writes (read-only file or filesystem, disk full); reads still work.
    #[error("database not writable: {0}")]
    Unwritable(String),
    /// Anything else (corruption, I/O errors, bugs).
    #[error("database error: {0}")]
    Failed(String),
}

impl StoreError {
    /// `true` when the failure is temporary or write-only, so a page may still be served.
    pub fn is_write_refusal(&self) -> bool {
        matches!(self, StoreError::Busy(_) | StoreError::Unwritable(_))
    }
}

/// The operations the blog needs. Implementations are shared by all handler threads.
pub(crate) trait Store: Send + Sync {
    /// Inserts a post created at `now` (unix seconds) with the hash of its edit key (`None`:
    /// only the admin may change it), in one transaction, and returns its id.
    fn create(
        &self,
        draft: &Draft,
        now: i64,
        key_hash: Option<&Digest256>,
    ) -> Result<i64, StoreError>;
    /// Replaces a post's content, keeping `created_at`; `false` when there is no such post.
    fn update(&self, id: i64, draft: &Draft, now: i64) -> Result<bool, StoreError>;
    /// Deletes a post; `false` when there was none.
    fn delete(&self, id: i64) -> Result<bool, StoreError>;
    /// Reads a post without counting a view.
    fn find(&self, id: i64) -> Result<Option<Post>, StoreError>;
    /// Counts one view (journaled before it returns, so it survives the process dying) and
    /// returns the post's count with this view included; a missing post counts nothing.
    /// Reads neither the Markdown nor the HTML: a page cache holds those.
    fn count_view(&self, id: i64) -> Result<Option<ViewCount>, StoreError>;
    /// The post's committed count and the generation, without counting a view.
    fn view_count(&self, id: i64) -> Result<Option<ViewCount>, StoreError>;
    /// Newest first, skipping `offset` posts.
    fn latest(&self, offset: u64, limit: u32) -> Result<Vec<PostSummary>, StoreError>;
    /// The most viewed posts created after `since` (unix seconds), most viewed first.
    fn popular_since(&self, since: i64, limit: u32) -> Result<Vec<PostSummary>, StoreError>;
    /// Post count and change generation, in O(1).
    fn stats(&self) -> Result<Stats, StoreError>;
    /// Up to `limit` posts stored without HTML (adopted from the original PyProject),
    /// as (id, Markdown).
    fn unrendered(&self, limit: u32) -> Result<Vec<(i64, String)>, StoreError>;
    /// Stores the HTML rendered for such a post, unless another worker already did.
    fn set_rendered(&self, id: i64, html: &str, description: &str) -> Result<(), StoreError>;
    /// The hash of a post's edit key: `None` when there is no such post, `Some(None)` when the
    /// post has no key (only the admin may change it).
    fn edit_key(&self, id: i64) -> Result<Option<Option<Digest256>>, StoreError>;
    /// Stores `hash` as post `id`'s edit-key hash, or removes its key when `None` (how
    /// `pyblogd migrate` carries authors' rights from one database to another).
    fn set_edit_key(&self, id: i64, hash: Option<&Digest256>) -> Result<(), StoreError>;
    /// Takes one POST token from `client`'s bucket at `now` (unix seconds), `per_minute`
    /// tokens a minute: `Err(wait)` when the bucket is empty (nothing else is written).
    fn take_post_token(
        &self,
        client: &str,
        now: f64,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, StoreError>;
    /// Answers when the database does: one round trip (for `/healthz`).
    fn ping(&self) -> Result<(), StoreError>;
    /// Up to `limit` whole posts with ids above `after_id`, by id: a page of an export.
    fn export(&self, after_id: i64, limit: u32) -> Result<Vec<Post>, StoreError>;
    /// Writes posts exactly as given (ids, times, view counts), replacing posts with the same
    /// id, in one transaction: the import side of `pyblogd migrate`.
    fn import(&self, posts: &[Post]) -> Result<(), StoreError>;
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod contract_tests;
