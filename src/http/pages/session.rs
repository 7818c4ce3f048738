//! Who is signed in to the pages, and the checks every form passes.
//!
//! A page reads the access cookie. When it has expired but the refresh cookie is still
//! good, a navigation of the user's own (`Sec-Fetch-Site: same-origin` or `none`; the
//! refresh cookie is `SameSite=Strict` anyway) refreshes the session on the server and the
//! page answers with the new cookies, so "Remember me" means what it says. A revoked or
//! expired session gets the login page.

use super::super::cookies;
use super::super::csrf;
use super::super::state::AppState;
use crate::domain::User;
use crate::service::auth::Issued;
use crate::service::{Caller, Error, RequestContext};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// A signed-in visitor of the pages.
pub struct Visitor {
    pub caller: Caller,
    pub user: User,
    /// The session's CSRF token, for the forms' hidden field.
    pub csrf: String,
    /// New tokens when the page refreshed the session: they go out as cookies.
    refreshed: Option<Issued>,
}

impl Visitor {
    /// The same visitor, with the user as read again after a change.
    pub fn with_user(self, user: User) -> Self {
        Self { user, ..self }
    }

    /// Adds the refreshed session's cookies, if the page refreshed it.
    pub fn finish(&self, state: &AppState, mut res: Response) -> Response {
        if let Some(issued) = &self.refreshed {
            set_session_cookies(state, issued, false, res.headers_mut());
        }
        res
    }
}

/// The signed-in visitor, if any (see the module's note on refreshing).
pub async fn visitor(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Option<Visitor> {
    let service = &state.service;
    let names = state.cookies();
    let from_access = cookies::read(headers, names.access)
        .and_then(|token| service.check_access_token(token).ok());
    let (caller, refreshed) = match from_access {
        Some(caller) => (caller, None),
        None => {
            let own_navigation = matches!(
                headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
                Some("same-origin" | "none")
            );
            let token = cookies::read(headers, names.refresh).filter(|_| own_navigation)?;
            let issued = service.refresh(token, ctx).await.ok()?;
            let caller = service.check_access_token(&issued.access_token).ok()?;
            (caller, Some(issued))
        }
    };
    let session = caller.session_id()?;
    let user = service.me(&caller).await.ok()?;
    Some(Visitor {
        caller,
        user,
        csrf: service.csrf_token(session),
        refreshed,
    })
}

/// The cookies of a new or refreshed session (`with_csrf`: at sign-in).
pub(crate) use crate::http::auth::set_session_cookies;

/// A form of a signed-in visitor: the origin rule and the session's CSRF token.
pub fn check_form(
    state: &AppState,
    headers: &HeaderMap,
    visitor: &Visitor,
    csrf_token: Option<&str>,
) -> Result<(), Error> {
    csrf::check_origin(headers, &state.service)?;
    let session = visitor.caller.session_id().ok_or(Error::MissingToken)?;
    let mut with_token = HeaderMap::new();
    if let Some(value) = csrf_token.and_then(|t| HeaderValue::from_str(t).ok()) {
        with_token.insert(csrf::HEADER, value);
    }
    csrf::check_token(&with_token, session, &state.service)
}

/// `303 See Other` to `to` (post/redirect/get).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// To the login page, coming back to `here` after signing in.
pub fn to_login(here: &str) -> Response {
    see_other(&format!("/login?return_to={}", urlencoding::encode(here)))
}

/// `return_to` if it is a path on this origin, else `/account`. Anything that a browser
/// could read as another origin (`//host`, `/\host`, a scheme) or that holds control
/// characters is ignored.
pub fn safe_return_to(return_to: Option<&str>) -> String {
    match return_to {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_string()
        }
        _ => "/account".to_string(),
    }
}

/// The HTTP status of an error shown on a page.
pub fn status_of(error: &Error) -> StatusCode {
    super::super::error::status(error)
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_on_this_origin() {
        assert_eq!(safe_return_to(Some("/account?x=1#y")), "/account?x=1#y");
        assert_eq!(safe_return_to(Some("/admin")), "/admin");
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/\\/evil.example",
            "javascript:alert(1)",
            "account",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/account", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/account");
    }
}
