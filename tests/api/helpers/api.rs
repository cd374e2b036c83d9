//! Typed calls of the service's API. `try_*` and the plain requests give the `Answer`;
//! the others assert the status a success answers and give what the test needs from the
//! body. Each of those is `#[track_caller]` and names the test's line when it fails; its
//! `*_at` twin takes the line from an async helper that calls it on a test's behalf.

use std::future::Future;
use std::panic::Location;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Caller, PREFIX, TestApp, TestUser, membership_path, nesting_path};

/// Who a request is sent as: a bearer token (a `&str`, a `&String`, a `&TestUser`), or
/// [`ANONYMOUS`], without an Authorization header.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    Bearer(&'a str),
}

/// No Authorization header.
pub const ANONYMOUS: Auth<'static> = Auth::Anonymous;

impl<'a> From<&'a str> for Auth<'a> {
    fn from(token: &'a str) -> Self {
        Self::Bearer(token)
    }
}

impl<'a> From<&'a String> for Auth<'a> {
    fn from(token: &'a String) -> Self {
        Self::Bearer(token)
    }
}

impl<'a> From<Option<&'a str>> for Auth<'a> {
    fn from(token: Option<&'a str>) -> Self {
        token.map_or(Self::Anonymous, Self::Bearer)
    }
}

impl<'a> From<&'a TestUser> for Auth<'a> {
    fn from(user: &'a TestUser) -> Self {
        Self::Bearer(&user.token)
    }
}

impl TestApp {
    fn builder<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match auth.into() {
            Auth::Anonymous => request,
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }

    // ---- raw requests -----------------------------------------------------------------

    pub async fn request<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
    ) -> Answer {
        let request = self.builder(method, path, auth);
        Answer::read(request.send().await.expect("sending a request")).await
    }

    /// A request with a JSON body.
    pub async fn request_json<'a>(
        &self,
        method: Method,
        path: &str,
        auth: impl Into<Auth<'a>>,
        body: &Value,
    ) -> Answer {
        let request = self.builder(method, path, auth).json(body);
        Answer::read(request.send().await.expect("sending a request")).await
    }

    pub async fn post_json<'a>(
        &self,
        path: &str,
        auth: impl Into<Auth<'a>>,
        body: &Value,
    ) -> Answer {
        self.request_json(Method::POST, path, auth, body).await
    }

    pub async fn put<'a>(&self, path: &str, auth: impl Into<Auth<'a>>, body: &Value) -> Answer {
        self.request_json(Method::PUT, path, auth, body).await
    }

    pub async fn delete<'a>(&self, path: &str, auth: impl Into<Auth<'a>>) -> Answer {
        self.request(Method::DELETE, path, auth).await
    }

    /// A GET as the administrator.
    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, &self.admin_token).await
    }

    /// An administrator's GET that must answer 200; its JSON body.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> impl Future<Output = Value> {
        self.get_json_at(path, Location::caller())
    }

    pub async fn get_json_at(&self, path: &str, caller: Caller) -> Value {
        let answer = self.get(path).await;
        answer.expect_status(200, caller);
        answer.json()
    }

    /// A request as the administrator with a body sent as is, with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let request = (self.builder(Method::POST, path, &self.admin_token))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        Answer::read(request.send().await.expect("sending a request")).await
    }

    // ---- tokens -----------------------------------------------------------------------

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .client
            .post(self.url("/authenticate/connect/token"))
            .form(form)
            .send()
            .await
            .expect("sending a token request");
        Answer::read(response).await
    }

    /// The password grant for `login` (a username or an email) and `password`.
    pub async fn password_grant(&self, login: &str, password: &str) -> Answer {
        self.token_request(&[
            ("grant_type", "password"),
            ("username", login),
            ("password", password),
        ])
        .await
    }

    /// A client-credentials token.
    #[track_caller]
    pub fn client_token(&self, client_id: &str, secret: &str) -> impl Future<Output = String> {
        self.client_token_at(client_id, secret, Location::caller())
    }

    pub async fn client_token_at(&self, client_id: &str, secret: &str, caller: Caller) -> String {
        let answer = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .await;
        answer.expect_access_token(caller)
    }

    /// A password-grant token for a user created with a password.
    #[track_caller]
    pub fn token_for(&self, login: &str, password: &str) -> impl Future<Output = String> {
        self.token_for_at(login, password, Location::caller())
    }

    pub async fn token_for_at(&self, login: &str, password: &str, caller: Caller) -> String {
        let answer = self.password_grant(login, password).await;
        answer.expect_access_token(caller)
    }

    // ---- users and groups -------------------------------------------------------------

    pub async fn try_create_group(&self, body: &Value) -> Answer {
        let path = format!("{PREFIX}/groups");
        self.post_json(&path, &self.admin_token, body).await
    }

    /// Creates a group and returns it as the service answered (201).
    #[track_caller]
    pub fn create_group(&self, name: &str) -> impl Future<Output = Value> {
        self.create_group_at(name, Location::caller())
    }

    pub async fn create_group_at(&self, name: &str, caller: Caller) -> Value {
        let body = json!({ "name": name, "description": "made by a test" });
        let answer = self.try_create_group(&body).await;
        answer.expect_status(201, caller);
        answer.json()
    }

    pub async fn try_create_user(&self, body: &Value) -> Answer {
        let path = format!("{PREFIX}/users");
        self.post_json(&path, &self.admin_token, body).await
    }

    /// Creates a user (with a password if given) and returns it as answered (201).
    #[track_caller]
    pub fn create_user(
        &self,
        username: &str,
        email: &str,
        password: Option<&str>,
    ) -> impl Future<Output = Value> {
        self.create_user_at(username, email, password, Location::caller())
    }

    pub async fn create_user_at(
        &self,
        username: &str,
        email: &str,
        password: Option<&str>,
        caller: Caller,
    ) -> Value {
        let mut body = json!({
            "username": username,
            "email": email,
            "firstname": "Tyler",
            "lastname": "Durden",
        });
        if let Some(password) = password {
            body["credentials"] = json!({ "password": password });
        }
        let answer = self.try_create_user(&body).await;
        answer.expect_status(201, caller);
        answer.json()
    }

    // ---- memberships (identifiers are passed as they go in the path) ------------------

    pub async fn put_member(&self, group: &str, user: &str) -> Answer {
        let path = membership_path(PREFIX, group, user);
        self.request(Method::PUT, &path, &self.admin_token).await
    }

    /// Adds `user` to `group` (204, whether or not it was a member already).
    #[track_caller]
    pub fn add_member(&self, group: &str, user: &str) -> impl Future<Output = ()> {
        self.add_member_at(group, user, Location::caller())
    }

    pub async fn add_member_at(&self, group: &str, user: &str, caller: Caller) {
        self.put_member(group, user)
            .await
            .expect_status(204, caller);
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> Answer {
        self.remove_member_at(PREFIX, group, user).await
    }

    pub async fn remove_member_at(&self, prefix: &str, group: &str, user: &str) -> Answer {
        let path = membership_path(prefix, group, user);
        self.delete(&path, &self.admin_token).await
    }

    /// The status of `HEAD .../groups/{g}/users/{u}`: 204 member, 404 not.
    pub async fn head_member(&self, group: &str, user: &str) -> u16 {
        let path = membership_path(PREFIX, group, user);
        let answer = self.request(Method::HEAD, &path, &self.admin_token).await;
        answer.status.as_u16()
    }

    pub async fn list_members_page(&self, group: &str, query: &str) -> Answer {
        let path = format!("{PREFIX}/groups/{group}/users{query}");
        self.get(&path).await
    }

    /// The first page (up to 100) of a group's direct members, as answered (200).
    #[track_caller]
    pub fn list_members(&self, group: &str) -> impl Future<Output = Value> {
        self.list_members_at(group, Location::caller())
    }

    pub async fn list_members_at(&self, group: &str, caller: Caller) -> Value {
        let answer = self.list_members_page(group, "?pageSize=100").await;
        answer.expect_status(200, caller);
        answer.json()
    }

    // ---- child groups (names encoded here) --------------------------------------------

    /// `PUT .../groups/{group}/groups/{child}` as the administrator.
    pub async fn try_nest(&self, group: &str, child: &str) -> Answer {
        let path = nesting_path(PREFIX, group, child);
        self.request(Method::PUT, &path, &self.admin_token).await
    }

    /// Places `child` inside `group` (204).
    #[track_caller]
    pub fn nest(&self, group: &str, child: &str) -> impl Future<Output = ()> {
        self.nest_at(group, child, Location::caller())
    }

    pub async fn nest_at(&self, group: &str, child: &str, caller: Caller) {
        self.try_nest(group, child).await.expect_no_content(caller);
    }
}
