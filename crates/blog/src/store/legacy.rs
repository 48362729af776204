//! Adopting a database written by the original PyProject (Python, SQLAlchemy).
//!
//! Its `posts` table (id, created_at as `YYYY-MM-DD HH:MM:SS.ffffff`, view_count, title,
//! name, content as HTML, markdown) is renamed `legacy_posts` and kept as a backup; the rows
//! are copied into the new schema with their ids, so old links keep working. Their HTML is
//! left empty here, since the store knows no Markdown: the app renders those posts with the
//! current pipeline when it starts (see `Store::unrendered`).

use r2d2_sqlite::rusqlite::{Connection, OptionalExtension};

/// Renames an original `posts` table out of the way; `true` if there was one.
pub(super) fn set_aside(conn: &Connection) -> Result<bool, String> {
    let exists = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'posts'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .is_some();
    if exists {
        conn.execute_batch("ALTER TABLE posts RENAME TO legacy_posts")
            .map_err(|e| format!("cannot set the original posts table aside: {e}"))?;
    }
    Ok(exists)
}

/// Copies the set-aside rows into the new `posts` table.
pub(super) fn import(conn: &Connection) -> Result<usize, String> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('legacy_posts')")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|e| e.to_string())?;
    let has = |name: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(name));
    if !has("id") || !has("title") || !(has("markdown") || has("content")) {
        return Err(format!(
            "a `posts` table exists but is not the original PyProject's (columns: {})",
            columns.join(", ")
        ));
    }
    // The earliest versions had no `name`, and kept only HTML in `content`: HTML is valid
    // Markdown, and the sanitiser cleans it like any other post.
    let name = if has("name") {
        "COALESCE(name, 'anonymous')"
    } else {
        "'anonymous'"
    };
    let markdown = match (has("markdown"), has("content")) {
        (true, true) => "COALESCE(markdown, content, '')",
        (true, false) => "COALESCE(markdown, '')",
        _ => "COALESCE(content, '')",
    };
    let views = if has("view_count") {
        "COALESCE(view_count, 0)"
    } else {
        "0"
    };
    let created = if has("created_at") {
        "COALESCE(CAST(strftime('%s', created_at) AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER))"
    } else {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    };
    let sql = format!(
        "INSERT INTO posts (id, created_at, updated_at, view_count, title, name, description,
                            markdown, html)
         SELECT id, {created}, {created}, {views}, COALESCE(title, ''), {name}, '', {markdown}, ''
         FROM legacy_posts ORDER BY id"
    );
    let copied = conn
        .execute(&sql, [])
        .map_err(|e| format!("cannot copy the original posts: {e}"))?;
    log::info!(
        "adopted {copied} posts from the original PyProject database (kept as legacy_posts)"
    );
    Ok(copied)
}
