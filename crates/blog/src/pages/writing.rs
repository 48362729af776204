//! The writing side: new and edit forms, create, update, and delete with its confirmation.
//!
//! A valid submission is rendered to HTML here, once, and stored with its source; it answers
//! 303 to the post. An invalid one comes back as 422 with every field as typed and a message
//! beside each bad one; a busy or read-only database gives 503 with the same form kept.

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
    pub(super) fn new_form(&self) -> Result<Response, Failure> {
        self.form_page(
            200,
            Editing::New,
            &PostForm::default(),
            &FieldErrors::default(),
            None,
        )
    }

    pub(super) fn edit_form(&self, id: i64) -> Result<Response, Failure> {
        let post = self.store.find(id)?.ok_or(Failure::NotFound)?;
        let form = PostForm::from_post(&post);
        self.form_page(
            200,
            Editing::Existing(id),
            &form,
            &FieldErrors::default(),
            None,
        )
    }

    pub(super) fn create(&self, req: &Request) -> Result<Response, Failure> {
        let form = submitted(req)?;
        let valid = match form.validate() {
            Ok(valid) => valid,
            Err(errors) => return self.form_page(422, Editing::New, &form, &errors, None),
        };
        match self.store.create(&self.draft(&valid), clock::now()) {
            Ok(id) => {
                log::info!("post {id} created");
                Ok(Response::redirect(303, &format!("/posts/{id}")))
            }
            Err(err) => self.save_failed(Editing::New, &form, err),
        }
    }

    pub(super) fn update(&self, id: i64, req: &Request) -> Result<Response, Failure> {
        let form = submitted(req)?;
        let editing = Editing::Existing(id);
        let valid = match form.validate() {
            Ok(valid) => valid,
            Err(errors) => return self.form_page(422, editing, &form, &errors, None),
        };
        match self.store.update(id, &self.draft(&valid), clock::now()) {
            Ok(true) => {
                log::info!("post {id} updated");
                Ok(Response::redirect(303, &format!("/posts/{id}")))
            }
            Ok(false) => Err(Failure::NotFound),
            Err(err) => self.save_failed(editing, &form, err),
        }
    }

    pub(super) fn confirm_delete(&self, id: i64) -> Result<Response, Failure> {
        let post = self.store.find(id)?.ok_or(Failure::NotFound)?;
        let mut meta = Meta::website(
            &format!("Delete “{}”?", post.summary.title),
            "Confirm deleting this post.",
            &format!("/posts/{id}/delete"),
        );
        meta.noindex = true;
        let ctx = context! { meta => ser(meta), post => ser(&post.summary) };
        self.page(200, "confirm_delete.html", ctx)
    }

    pub(super) fn delete(&self, id: i64) -> Result<Response, Failure> {
        if self.store.delete(id)? {
            log::info!("post {id} deleted");
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
    ) -> Result<Response, Failure> {
        if !err.is_write_refusal() {
            return Err(err.into());
        }
        log::warn!("post not saved: {err}");
        let notice = "The blog could not save your post just now. Nothing was lost: \
                      your text is below, please submit it again in a moment.";
        let page = self.form_page(503, editing, form, &FieldErrors::default(), Some(notice))?;
        Ok(page.with_header("Retry-After", "1"))
    }

    fn form_page(
        &self,
        status: u16,
        editing: Editing,
        form: &PostForm,
        errors: &FieldErrors,
        notice: Option<&str>,
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
            limits => context! { title => TITLE_MAX, name => NAME_MAX, content => CONTENT_MAX },
        };
        self.page(status, "form.html", ctx)
    }
}

/// The submitted form; bad encoding is a 400, not a validation error.
fn submitted(req: &Request) -> Result<PostForm, Failure> {
    let pairs = req
        .form()
        .map_err(|e| Failure::BadRequest(format!("form data: {e}")))?;
    Ok(PostForm::from_pairs(&pairs))
}
