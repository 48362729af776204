//! `pyblogd migrate --from URI --to URI`: copies every post between two databases.
//!
//! Posts keep their ids, times, view counts and edit-key hashes (so authors keep their rights), so links and counts survive a move from one
//! SQLite box to a PostgreSQL shared by many hosts (or back). Posts are copied by id in
//! batches, each batch an upsert in one transaction, so running it again is harmless; at the
//! end both sides are read again and must match post for post.

use crate::config::DatabaseTarget;
use crate::error::Error;
use crate::store::{Post, Store};

/// Posts per transaction: a batch of posts with their HTML stays a few megabytes.
const BATCH: u32 = 200;

/// What a finished copy found, for the command to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    pub posts: u64,
    pub views: i64,
}

/// Copies every post of `from` into `to` (creating `to`'s schema when needed) and verifies.
pub fn copy_posts(from: &DatabaseTarget, to: &DatabaseTarget) -> Result<CopyReport, Error> {
    if from == to {
        return Err(Error::Database(
            "--from and --to name the same database".to_string(),
        ));
    }
    let source = crate::open_store(from)?;
    let target = crate::open_store(to)?;
    let failed = |side: &'static str| move |e| Error::Database(format!("{side}: {e}"));
    let mut after = 0;
    loop {
        let batch = source
            .export(after, BATCH)
            .map_err(failed("reading --from"))?;
        let Some(last) = batch.last() else { break };
        after = last.summary.id;
        target.import(&batch).map_err(failed("writing --to"))?;
        for post in &batch {
            let id = post.summary.id;
            let key = source
                .edit_key(id)
                .map_err(failed("reading --from"))?
                .flatten();
            target
                .set_edit_key(id, key.as_ref())
                .map_err(failed("writing --to"))?;
        }
    }
    verify(source.as_ref(), target.as_ref())
}

/// Reads both sides again by id: every post must be equal, and `to` must hold no others.
fn verify(source: &dyn Store, target: &dyn Store) -> Result<CopyReport, Error> {
    let failed = |e| Error::Database(format!("verifying: {e}"));
    let mut report = CopyReport { posts: 0, views: 0 };
    let mut after = 0;
    loop {
        let ours = source.export(after, BATCH).map_err(failed)?;
        let theirs = target.export(after, BATCH).map_err(failed)?;
        if let Some(id) = first_difference(&ours, &theirs) {
            return Err(Error::Database(format!(
                "verifying: post {id} differs between --from and --to after the copy \
                 (was a post written during it?)"
            )));
        }
        for post in &ours {
            let id = post.summary.id;
            if source.edit_key(id).map_err(failed)? != target.edit_key(id).map_err(failed)? {
                return Err(Error::Database(format!(
                    "verifying: post {id}'s edit key differs between --from and --to"
                )));
            }
        }
        let Some(last) = ours.last() else { break };
        after = last.summary.id;
        report.posts += ours.len() as u64;
        report.views += ours.iter().map(|p| p.summary.view_count).sum::<i64>();
    }
    let total = target.stats().map_err(failed)?.total;
    if total != report.posts {
        return Err(Error::Database(format!(
            "verifying: --to holds {total} posts, --from {}; it held posts of its own before",
            report.posts
        )));
    }
    Ok(report)
}

/// The id of the first post that is not the same on both sides, if any.
fn first_difference(ours: &[Post], theirs: &[Post]) -> Option<i64> {
    for (index, post) in ours.iter().enumerate() {
        if theirs.get(index) != Some(post) {
            return Some(post.summary.id);
        }
    }
    theirs.get(ours.len()).map(|p| p.summary.id)
}
