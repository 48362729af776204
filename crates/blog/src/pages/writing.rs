//! The writing side: new and edit forms, create, update, and delete with its confirmation.
//!
//! A valid submission is rendered to HTML here, once, and stored with its source; it answers
//! 303 to the post. An invalid one comes back as 422 with every field as typed and a message
//! beside each bad one; a busy or read-only database gives 503 and a rate-limited address 429,
//! with the same form kept. Only the post's author (its edit key) or the admin may see the
//! edit and delete pages or send them; a create hands the author the key as a cookie.

use super::access::{private_page, NOT_THE_AUTHOR_YET};
use super::ser;
use super::Meta;
use crate::failure::Failure;
use crate::post_form::{FieldErrors, PostForm, ValidPost, CONTENT_MAX, NAME_MAX, TITLE_MAX};
use crate::store::{Draft, StoreError};
use crate::{clock, App};
use http::{Request, Response};
use minijinja::context;

/// Which form is on the page.
#[derive(Debug, Clone, Copy)]
enum Editing {
    New,
    Existing(i64),
}

impl App {
    pub(super) fn new_form(&self, req: &Request) -> Result<Response, Failure> {
        let (token, set_cookie) = self.form_token(req)?;
        let page = self.form_page(
            200,
            Editing::New,
            &PostForm::default(),
            &FieldErrors::default(),
            None,
            &token,
        )?;
        Ok(private_page(page, set_cookie))
    }

    /// The edit form for the author or the admin; with `?key=…` (the link shown after a
    /// create) it checks the key, stores it in the post's cookie and redirects to drop the
    /// key from the address bar, history and any `Referer`.
    pub(super) fn edit_form(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        if let Some(key) = key_in_query(req)? {
            return self.open_with_key(id, &key);
        }
        self.authority(id, req).map_err(|failure| match failure {
            Failure::Forbidden(_) => Failure::Forbidden(NOT_THE_AUTHOR_YET),
            other => other,
        })?;
        let post = self.store.find(id)?.ok_or(Failure::NotFound)?;
        let form = PostForm::from_post(&post);
        let (token, set_cookie) = self.form_token(req)?;
        let page = self.form_page(
            200,
            Editing::Existing(id),
            &form,
            &FieldErrors::default(),
            None,
            &token,
        )?;
        Ok(private_page(page, set_cookie))
    }

    fn open_with_key(&self, id: i64, key: &str) -> Result<Response, Failure> {
        let stored = self.store.edit_key(id)?.ok_or(Failure::NotFound)?;
        if !self.guard.key_opens(key, stored.as_ref()) {
            log::warn!("post {id}: an edit link with a wrong key was refused");
            return Err(Failure::Forbidden(
                "This edit link does not belong to this post. Nothing was changed.",
            ));
        }
        let edit = format!("/posts/{id}/edit");
        let response = Response::redirect(303, &edit)
            .with_header("Set-Cookie", self.guard.set_key_cookie(id, key))
            .with_header("Cache-Control", "no-store")
            .with_header("Referrer-Policy", "no-referrer");
        Ok(response)
    }

    pub(super) fn create(&self, req: &Request) -> Result<Response, Failure> {
        let form = PostForm::from_pairs(&self.unforged_form(req)?);
        let token = self
            .guard
            .csrf
            .token_for(req)
            .map(|t| t.0)
            .unwrap_or_default();
        if let Some(after) = self.rate_limited(req)? {
            return self.too_many(Editing::New, &form, after, &token);
        }
        let valid = match form.validate() {
            Ok(valid) => valid,
            Err(errors) => return self.form_page(422, Editing::New, &form, &errors, None, &token),
        };
        let Some((key, key_hash)) = self.guard.new_edit_key() else {
            return Err(Failure::Unavailable("no randomness for an edit key".into()));
        };
        match self
            .store
            .create(&self.draft(&valid), clock::now(), Some(&key_hash))
        {
            Ok(id) => {
                log::info!("post {id} created");
                Ok(Response::redirect(303, &format!("/posts/{id}"))
                    .with_header("Set-Cookie", self.guard.set_key_cookie(id, &key))
                    .with_header("Set-Cookie", self.guard.set_show_key(id))
                    .with_header("Cache-Control", "no-store"))
            }
            Err(err) => self.save_failed(Editing::New, &form, err, &token),
        }
    }

    pub(super) fn update(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        let form = PostForm::from_pairs(&self.unforged_form(req)?);
        let authority = self.authority(id, req)?;
        let token = self
            .guard
            .csrf
            .token_for(req)
            .map(|t| t.0)
            .unwrap_or_default();
        let editing = Editing::Existing(id);
        if let Some(after) = self.rate_limited(req)? {
            return self.too_many(editing, &form, after, &token);
        }
        let valid = match form.validate() {
            Ok(valid) => valid,
            Err(errors) => return self.form_page(422, editing, &form, &errors, None, &token),
        };
        match self.store.update(id, &self.draft(&valid), clock::now()) {
            Ok(true) => {
                log::info!("post {id} updated by its {authority:?}");
                Ok(Response::redirect(303, &format!("/posts/{id}")))
            }
            Ok(false) => Err(Failure::NotFound),
            Err(err) => self.save_failed(editing, &form, err, &token),
        }
    }

    pub(super) fn confirm_delete(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        self.authority(id, req)?;
        let post = self.store.find(id)?.ok_or(Failure::NotFound)?;
        let mut meta = Meta::website(
            &format!("Delete “{}”?", post.summary.title),
            "Confirm deleting this post.",
            &format!("/posts/{id}/delete"),
        );
        meta.noindex = true;
        let (token, set_cookie) = self.form_token(req)?;
        let ctx = context! { meta => ser(meta), post => ser(&post.summary), csrf_token => token };
        Ok(private_page(
            self.page(200, "confirm_delete.html", ctx)?,
            set_cookie,
        ))
    }

    pub(super) fn delete(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        self.unforged_form(req)?;
        let authority = self.authority(id, req)?;
        if let Some(after) = self.rate_limited(req)? {
            return Err(Failure::TooManyRequests(after));
        }
        if self.store.delete(id)? {
            log::info!("post {id} deleted by its {authority:?}");
            Ok(Response::redirect(303, "/posts"))
        } else {
            Err(Failure::NotFound)
        }
    }

    /// Renders, highlights and sanitises the post: the only Markdown work a post ever costs.
    fn draft(&self, valid: &ValidPost) -> Draft {
        let rendered = self.markdown.render(&valid.content);
        Draft {
            title: valid.title.clone(),
            name: valid.name.clone(),
            markdown: valid.content.clone(),
            html: rendered.html,
            description: rendered.description,
        }
    }

    /// A write the database refused: keep the form when the refusal is temporary.
    fn save_failed(
        &self,
        editing: Editing,
        form: &PostForm,
        err: StoreError,
        token: &str,
    ) -> Result<Response, Failure> {
        if !err.is_write_refusal() {
            return Err(err.into());
        }
        log::warn!("post not saved: {err}");
        let notice = "The blog could not save your post just now. Nothing was lost: \
                      your text is below, please submit it again in a moment.";
        let page = self.form_page(
            503,
            editing,
            form,
            &FieldErrors::default(),
            Some(notice),
            token,
        )?;
        Ok(page.with_header("Retry-After", "1"))
    }

    /// 429: the address posted too often; the form comes back as typed.
    fn too_many(
        &self,
        editing: Editing,
        form: &PostForm,
        after: u64,
        token: &str,
    ) -> Result<Response, Failure> {
        let notice = format!(
            "Too many posts from your address just now. Nothing was lost: your text is below, \
             please submit it again in {after} seconds."
        );
        let page = self.form_page(
            429,
            editing,
            form,
            &FieldErrors::default(),
            Some(&notice),
            token,
        )?;
        Ok(page.with_header("Retry-After", after.to_string()))
    }

    fn form_page(
        &self,
        status: u16,
        editing: Editing,
        form: &PostForm,
        errors: &FieldErrors,
        notice: Option<&str>,
        csrf_token: &str,
    ) -> Result<Response, Failure> {
        let (title, action, submit, cancel, post_id) = match editing {
            Editing::New => (
                "New post",
                "/posts".to_string(),
                "Publish",
                "/".to_string(),
                None,
            ),
            Editing::Existing(id) => (
                "Edit post",
                format!("/posts/{id}/edit"),
                "Save changes",
                format!("/posts/{id}"),
                Some(id),
            ),
        };
        let mut meta = Meta::website(title, "Write a post in Markdown and share it.", &action);
        if matches!(editing, Editing::New) {
            meta.path = "/new".to_string();
        }
        meta.noindex = true;
        let ctx = context! {
            meta => ser(meta),
            active => if post_id.is_none() { "new" } else { "posts" },
            heading => title,
            action,
            submit,
            cancel,
            post_id,
            notice,
            form => ser(form),
            errors => ser(errors),
            invalid => status == 422,
            csrf_token,
            limits => context! { title => TITLE_MAX, name => NAME_MAX, content => CONTENT_MAX },
        };
        Ok(private_page(self.page(status, "form.html", ctx)?, None))
    }
}

/// The `key` of an edit link (`/posts/ID/edit?key=…`), if the query has one.
fn key_in_query(req: &Request) -> Result<Option<String>, Failure> {
    if req.query.is_empty() {
        return Ok(None);
    }
    let pairs = req
        .query_pairs()
        .map_err(|e| Failure::BadRequest(format!("query string: {e}")))?;
    Ok(pairs.into_iter().find(|(k, _)| k == "key").map(|(_, v)| v))
}
