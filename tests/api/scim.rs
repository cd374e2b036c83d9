//! SCIM 2.0 under `/scim/v2`, so far its discovery: what an identity provider reads
//! before it provisions anything, every answer in the SCIM media type and every refusal
//! in the SCIM error form.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::Value;

use crate::helpers::{ANONYMOUS, Answer, Auth, Backend, TestApp, backends};

const SCIM: &str = "/scim/v2";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

async fn scim<'a>(app: &TestApp, method: Method, path: &str, auth: impl Into<Auth<'a>>) -> Answer {
    app.request(method, &format!("{SCIM}{path}"), auth).await
}

/// A 200 in the SCIM media type; its body.
#[track_caller]
fn scim_body(answer: &Answer) -> Value {
    answer.assert_status(200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/scim+json"),
        "{:?}",
        answer.headers
    );
    answer.json()
}

/// A SCIM error: the status (also as a string in the body), the `scimType` if any.
#[track_caller]
fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    answer.assert_status(status);
    assert_eq!(answer.header("content-type"), Some("application/scim+json"));
    let body = answer.json();
    assert_eq!(body["schemas"], serde_json::json!([ERROR_URN]), "{body}");
    assert_eq!(body["status"], status.to_string(), "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn the_service_provider_config_says_what_is_supported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = scim(
        &app,
        Method::GET,
        "/ServiceProviderConfig",
        &app.admin_token,
    )
    .await;
    let config = scim_body(&answer);
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["filter"]["supported"], true);
    assert_eq!(config["filter"]["maxResults"], 100);
    assert_eq!(config["sort"]["supported"], false);
    assert_eq!(config["changePassword"]["supported"], false);
    assert_eq!(config["etag"]["supported"], true);
    assert_eq!(
        config["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );
    let location = config["meta"]["location"].as_str().unwrap();
    assert!(
        location.ends_with("/scim/v2/ServiceProviderConfig"),
        "{location}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn resource_types_and_schemas_describe_users_and_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = &app.admin_token;
    let types = scim_body(&scim(&app, Method::GET, "/ResourceTypes", token).await);
    assert_eq!(types["totalResults"], 2);
    let endpoints: Vec<&str> = (types["Resources"].as_array().unwrap().iter())
        .map(|t| t["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints, ["/Users", "/Groups"]);
    let user_type = scim_body(&scim(&app, Method::GET, "/ResourceTypes/User", token).await);
    assert_eq!(user_type["schema"], USER_URN);

    let schemas = scim_body(&scim(&app, Method::GET, "/Schemas", token).await);
    assert_eq!(schemas["totalResults"], 2);
    let user = scim_body(&scim(&app, Method::GET, &format!("/Schemas/{USER_URN}"), token).await);
    let attributes: Vec<&str> = (user["attributes"].as_array().unwrap().iter())
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for expected in [
        "userName",
        "name",
        "displayName",
        "emails",
        "active",
        "groups",
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} in {attributes:?}"
        );
    }
    let user_name = &user["attributes"][0];
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    let group = scim_body(&scim(&app, Method::GET, &format!("/Schemas/{GROUP_URN}"), token).await);
    assert_eq!(group["attributes"][1]["name"], "members");
}

#[apply(backends)]
#[tokio::test]
async fn scim_refusals_come_in_the_scim_error_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let outsider = app.user_with_token("outsider").await;
    let token = &app.admin_token;
    app.appends_nothing(async {
        let anonymous = scim(&app, Method::GET, "/ServiceProviderConfig", ANONYMOUS).await;
        assert_scim_error(&anonymous, 401, None);
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
        let forged = scim(&app, Method::GET, "/Schemas", "not.a.token").await;
        assert_scim_error(&forged, 401, None);
        let forbidden = scim(&app, Method::GET, "/Schemas", &outsider).await;
        assert_scim_error(&forbidden, 403, None);
        let filtered = scim(&app, Method::GET, "/Schemas?filter=id%20pr", token).await;
        assert_scim_error(&filtered, 403, Some("sensitive"));
        let unknown = scim(&app, Method::GET, "/Schemas/urn:no:such:schema", token).await;
        assert_scim_error(&unknown, 404, None);
        let nowhere = scim(&app, Method::GET, "/NoSuchThing", token).await;
        assert_scim_error(&nowhere, 404, None);
        let bulk = scim(&app, Method::POST, "/Bulk", token).await;
        assert_scim_error(&bulk, 501, None);
    })
    .await;
}
