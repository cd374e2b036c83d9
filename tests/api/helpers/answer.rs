//! One HTTP answer, read whole, and the checks of what the service answers: statuses, the
//! Contensis Error body, OAuth answers.
//!
//! Each check comes twice: `assert_*`, for a test, names the test's line by
//! `#[track_caller]`; `expect_*` takes the caller's location, for the async helpers, and
//! names it in the message.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use super::Caller;

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

/// ` (called from ...)` for a check made on a test's behalf, else nothing.
fn called_from(caller: Option<Caller>) -> String {
    caller
        .map(|caller| format!(" (called from {caller})"))
        .unwrap_or_default()
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading a response body");
        Self {
            status,
            headers,
            text,
        }
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.text) {
            Ok(body) => body,
            Err(e) => panic!(
                "the body of a {} is not JSON ({e}): {:?}",
                self.status, self.text
            ),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    fn check_status(&self, status: u16, caller: Option<Caller>) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status{}; body: {}",
            called_from(caller),
            self.text
        );
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        self.check_status(status, None);
    }

    #[track_caller]
    pub fn expect_status(&self, status: u16, caller: Caller) {
        self.check_status(status, Some(caller));
    }

    #[track_caller]
    fn check_no_content(&self, caller: Option<Caller>) {
        self.check_status(204, caller);
        assert!(
            self.text.is_empty(),
            "a 204 with a body{}: {:?}",
            called_from(caller),
            self.text
        );
    }

    /// A 204 with nothing in the body.
    #[track_caller]
    pub fn assert_no_content(&self) {
        self.check_no_content(None);
    }

    #[track_caller]
    pub fn expect_no_content(&self, caller: Caller) {
        self.check_no_content(Some(caller));
    }

    /// Asserts the status and the Contensis Error body; returns its `data`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        self.check_error(status, code, None)
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str, caller: Caller) -> Value {
        self.check_error(status, code, Some(caller))
    }

    #[track_caller]
    fn check_error(&self, status: u16, code: &str, caller: Option<Caller>) -> Value {
        self.check_status(status, caller);
        let body = self.json();
        assert_eq!(
            body["data"]["code"],
            code,
            "unexpected code{} in {body}",
            called_from(caller)
        );
        assert_error_shape(&body);
        body["data"].clone()
    }

    /// A 401 `Unauthorized` that asks for a bearer token.
    #[track_caller]
    pub fn assert_unauthorized(&self) {
        self.assert_error(401, "Unauthorized");
        assert_eq!(self.header("www-authenticate"), Some("Bearer"));
    }

    /// The `access_token` of a 200 from the token endpoint.
    #[track_caller]
    pub fn access_token(&self) -> String {
        self.check_access_token(None)
    }

    #[track_caller]
    pub fn expect_access_token(&self, caller: Caller) -> String {
        self.check_access_token(Some(caller))
    }

    #[track_caller]
    fn check_access_token(&self, caller: Option<Caller>) -> String {
        self.check_status(200, caller);
        let body = self.json();
        let from = called_from(caller);
        assert_eq!(body["token_type"], "Bearer", "{body}{from}");
        assert!(
            body["expires_in"].as_u64().is_some_and(|s| s > 0),
            "{body}{from}"
        );
        let Some(token) = body["access_token"].as_str() else {
            panic!("no access_token in {body}{from}")
        };
        token.to_owned()
    }

    /// The `error` of an OAuth error answer (400).
    #[track_caller]
    pub fn oauth_error(&self) -> String {
        self.assert_status(400);
        let body = self.json();
        let Some(error) = body["error"].as_str() else {
            panic!("no `error` in {body}")
        };
        error.to_owned()
    }

    /// An OAuth answer of `status` whose `error` is `error`.
    #[track_caller]
    pub fn assert_oauth_error(&self, status: u16, error: &str) {
        self.assert_status(status);
        assert_eq!(self.json()["error"], error, "{}", self.text);
    }
}

/// `{"logId": uuid, "message": "...", "data": {"code": ...}, "type": "error"}`, nothing else.
#[track_caller]
pub fn assert_error_shape(body: &Value) {
    let Some(object) = body.as_object() else {
        panic!("not an object: {body}")
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "logId", "message", "type"], "{body}");
    assert_uuid(&body["logId"]);
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    assert!(body["data"]["code"].is_string(), "no data.code in {body}");
    assert_eq!(body["type"], "error", "{body}");
}

#[track_caller]
pub fn assert_uuid(value: &Value) -> Uuid {
    match value.as_str().map(Uuid::try_parse) {
        Some(Ok(uuid)) => uuid,
        _ => panic!("not a UUID: {value}"),
    }
}

#[track_caller]
pub fn uuid_field(value: &Value, field: &str) -> Uuid {
    assert_uuid(&value[field])
}
