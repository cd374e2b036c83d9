//! SCIM 2.0 under `/scim/v2`, so far its discovery: what an identity provider reads
//! before it provisions anything, every answer in the SCIM media type and every refusal
//! in the SCIM error form.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::Value;

use crate::helpers::{ANONYMOUS, Answer, Auth, Backend, TestApp, backends};

pub const SCIM: &str = "/scim/v2";
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A SCIM request with a body, as an administrator.
pub async fn send(app: &TestApp, method: Method, path: &str, body: &Value) -> Answer {
    let response = app
        .client
        .request(method, app.url(&format!("{SCIM}{path}")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .expect("sending a SCIM request");
    Answer::read(response).await
}

pub async fn scim<'a>(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: impl Into<Auth<'a>>,
) -> Answer {
    app.request(method, &format!("{SCIM}{path}"), auth).await
}

/// A 200 in the SCIM media type; its body.
#[track_caller]
pub fn scim_body(answer: &Answer) -> Value {
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
pub fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
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

/// `path` with `filter` percent-encoded into its query.
pub fn filtered(path: &str, filter: &str) -> String {
    format!("{path}?filter={}", crate::helpers::encode(filter))
}

#[apply(backends)]
#[tokio::test]
async fn a_provider_finds_users_by_user_name_email_or_id_and_nothing_is_an_empty_list(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let token = &app.admin_token;

    // The connection test of Entra ID and Okta: a filter that matches nobody.
    let nobody = filtered("/Users", r#"userName eq "nobody-at-all""#);
    let empty = scim_body(&scim(&app, Method::GET, &nobody, token).await);
    assert_eq!(empty["totalResults"], 0);
    assert_eq!(empty["Resources"], serde_json::json!([]));

    let by_name = filtered("/Users", &format!(r#"userName eq "{}""#, "TDurden"));
    let listed = scim_body(&scim(&app, Method::GET, &by_name, token).await);
    assert_eq!(listed["totalResults"], 1, "{listed}");
    let user = &listed["Resources"][0];
    assert_eq!(user["id"], seed.user_id.to_string());
    assert_eq!(user["userName"], crate::helpers::SEED_USERNAME);
    assert_eq!(user["emails"][0]["value"], crate::helpers::SEED_EMAIL);
    assert_eq!(user["emails"][0]["primary"], true);
    assert_eq!(user["active"], true);
    assert_eq!(user["meta"]["resourceType"], "User");
    let location = user["meta"]["location"].as_str().unwrap();
    assert!(
        location.ends_with(&format!("/scim/v2/Users/{}", seed.user_id)),
        "{location}"
    );
    assert_eq!(user["groups"][0]["value"], seed.group_id.to_string());
    assert_eq!(user["groups"][0]["display"], crate::helpers::SEED_GROUP);

    for filter in [
        format!(
            r#"emails eq "{}""#,
            crate::helpers::SEED_EMAIL.to_uppercase()
        ),
        format!(r#"emails.value eq "{}""#, crate::helpers::SEED_EMAIL),
        format!(r#"id eq "{}""#, seed.user_id),
    ] {
        let listed = scim_body(&scim(&app, Method::GET, &filtered("/Users", &filter), token).await);
        assert_eq!(
            listed["Resources"][0]["id"],
            seed.user_id.to_string(),
            "{filter}"
        );
    }
    let by_id = scim(
        &app,
        Method::GET,
        &format!("/Users/{}", seed.user_id),
        token,
    )
    .await;
    assert_eq!(scim_body(&by_id)["userName"], crate::helpers::SEED_USERNAME);
    let only = format!("/Users/{}?attributes=userName", seed.user_id);
    let only = scim_body(&scim(&app, Method::GET, &only, token).await);
    assert!(
        only.get("emails").is_none() && only.get("userName").is_some(),
        "{only}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_suspended_user_reads_as_inactive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let path = format!("{}/users/{}", crate::helpers::PREFIX, seed.user_id);
    let suspend = serde_json::json!({ "status": { "suspended": true } });
    (app.request_json(Method::PATCH, &path, &app.admin_token, &suspend)
        .await)
        .assert_status(200);
    let user = scim(
        &app,
        Method::GET,
        &format!("/Users/{}", seed.user_id),
        &app.admin_token,
    )
    .await;
    assert_eq!(scim_body(&user)["active"], false);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_reads_with_its_members_version_and_etag(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let token = &app.admin_token;
    let name = crate::helpers::SEED_GROUP;
    let listed = filtered(
        "/Groups",
        &format!(r#"displayName eq "{}""#, name.to_lowercase()),
    );
    let listed = scim_body(&scim(&app, Method::GET, &listed, token).await);
    assert_eq!(listed["totalResults"], 1, "{listed}");
    let group = &listed["Resources"][0];
    assert_eq!(group["displayName"], name);
    assert_eq!(group["members"][0]["value"], seed.user_id.to_string());
    assert_eq!(group["members"][0]["type"], "User");

    let path = format!("/Groups/{}", seed.group_id);
    let answer = scim(&app, Method::GET, &path, token).await;
    let body = scim_body(&answer);
    assert_eq!(answer.header("etag"), body["meta"]["version"].as_str());
    assert_eq!(body["meta"]["version"], "\"2\"", "created, then one member");
    let lean = format!("{path}?excludedAttributes=members");
    let lean = scim_body(&scim(&app, Method::GET, &lean, token).await);
    assert!(
        lean.get("members").is_none() && lean["displayName"] == name,
        "{lean}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn lists_page_from_one_and_count_zero_gives_only_the_total(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["alpha", "bravo", "charlie"] {
        app.create_group(name).await;
    }
    let token = &app.admin_token;
    let total = scim_body(&scim(&app, Method::GET, "/Groups?count=0", token).await);
    let all = total["totalResults"].as_u64().unwrap();
    assert!(all >= 4, "three and System Administrators: {total}");
    assert_eq!(total["Resources"], serde_json::json!([]));
    let mut seen = Vec::new();
    for start in 0..=all {
        let page = format!("/Groups?startIndex={start}&count=1");
        let page = scim_body(&scim(&app, Method::GET, &page, token).await);
        assert_eq!(page["totalResults"], all);
        if let Some(group) = page["Resources"].get(0) {
            seen.push(group["id"].as_str().unwrap().to_owned());
        }
    }
    // startIndex 0 is 1: the first group twice, then each once, in one order.
    assert_eq!(seen.len() as u64, all + 1);
    assert_eq!(seen[0], seen[1]);
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len() as u64, all);
    let past = format!("/Groups?startIndex={}", all + 1);
    let past = scim_body(&scim(&app, Method::GET, &past, token).await);
    assert_eq!(past["Resources"], serde_json::json!([]));
}

#[apply(backends)]
#[tokio::test]
async fn a_filter_this_service_does_not_answer_is_an_invalid_filter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = &app.admin_token;
    for (path, filter) in [
        ("/Users", r#"userName eq"#),
        ("/Users", r#"nickName eq "x""#),
        ("/Users", r#"title eq "x""#),
        ("/Groups", r#"members eq "x""#),
        ("/Groups", r#"emails[type eq "work"]"#),
    ] {
        let answer = scim(&app, Method::GET, &filtered(path, filter), token).await;
        assert_scim_error(&answer, 400, Some("invalidFilter"));
    }
    for filter in ["userName eq true", r#"active eq "true""#, "active gt true"] {
        let answer = scim(&app, Method::GET, &filtered("/Users", filter), token).await;
        assert_scim_error(&answer, 400, Some("invalidFilter"));
    }
    let count = scim(&app, Method::GET, "/Users?count=many", token).await;
    assert_scim_error(&count, 400, Some("invalidValue"));
    let missing = scim(&app, Method::GET, "/Users/not-a-uuid", token).await;
    assert_scim_error(&missing, 404, None);
    let missing = format!("/Groups/{}", uuid::Uuid::new_v4());
    assert_scim_error(&scim(&app, Method::GET, &missing, token).await, 404, None);
}

#[apply(backends)]
#[tokio::test]
async fn filters_take_every_operator_and_combination_over_kept_attributes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let marla = app
        .create_user("msinger", "marla@fightclub.com", None)
        .await;
    let token = &app.admin_token;
    let ids = |answer: &Answer| -> Vec<String> {
        let body = scim_body(answer);
        let mut ids: Vec<String> = (body["Resources"].as_array().unwrap().iter())
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let tyler = seed.user_id.to_string();
    let marla = marla["id"].as_str().unwrap().to_owned();
    let mut both = vec![tyler.clone(), marla.clone()];
    both.sort();
    for (filter, expected) in [
        (r#"userName sw "TD""#, vec![tyler.clone()]),
        (r#"userName co "SING""#, vec![marla.clone()]),
        (r#"emails ew "@fightclub.com""#, both.clone()),
        (
            r#"userName eq "tdurden" or userName eq "msinger""#,
            both.clone(),
        ),
        (
            r#"emails ew "@fightclub.com" and not (userName eq "tdurden")"#,
            vec![marla.clone()],
        ),
        (
            r#"name.givenName eq "tyler" and userName ne "tdurden""#,
            vec![marla.clone()],
        ),
        (
            r#"emails[type eq "work" and value eq "MARLA@fightclub.com"]"#,
            vec![marla.clone()],
        ),
        (
            r#"emails[type eq "work"].value eq "marla@fightclub.com""#,
            vec![marla.clone()],
        ),
        (r#"active eq false"#, vec![]),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z" and emails ew "fightclub.com""#,
            both.clone(),
        ),
    ] {
        let answer = scim(&app, Method::GET, &filtered("/Users", filter), token).await;
        assert_eq!(ids(&answer), expected, "{filter}");
    }
    let groups = scim(
        &app,
        Method::GET,
        &filtered("/Groups", r#"displayName sw "paper""#),
        token,
    )
    .await;
    assert_eq!(ids(&groups), vec![seed.group_id.to_string()]);
    let none = scim(
        &app,
        Method::GET,
        &filtered("/Groups", "externalId pr"),
        token,
    )
    .await;
    assert_eq!(ids(&none), Vec::<String>::new());
}
