//! The documented prefix and the JavaScript client's answer the same calls, over the same
//! data; and the membership calls around the seed behave as a client expects.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{
    ADMINISTRATORS, ANONYMOUS, Backend, JS_PREFIX, PREFIX, PREFIXES, SEED_GROUP, SEED_USERNAME,
    TestApp, backends, encode, membership_path,
};

/// One round of every call under `prefix`; returns each call's status and error code.
async fn round_trip(app: &TestApp, prefix: &str, n: usize) -> Vec<(String, u16, Value)> {
    let token = Some(app.admin_token.as_str());
    let group_name = format!("Group {n}");
    let (username, email) = (format!("user{n}"), format!("user{n}@example.com"));
    let group = encode(&group_name);
    let member = membership_path(prefix, &group, &username);
    let list = format!("{prefix}/groups/{group}/users");
    let mut seen = Vec::new();
    let mut record = |call: &str, status: u16, body: &str| {
        let code = serde_json::from_str::<Value>(body)
            .map(|b| b["data"]["code"].clone())
            .unwrap_or(Value::Null);
        seen.push((call.to_owned(), status, code));
    };

    let answer = app
        .post_json(
            &format!("{prefix}/groups"),
            token,
            &json!({ "name": group_name }),
        )
        .await;
    record("create group", answer.status.as_u16(), "");
    let body = json!({ "username": username, "email": email });
    let answer = app
        .post_json(&format!("{prefix}/users"), token, &body)
        .await;
    record("create user", answer.status.as_u16(), "");
    let answer = app
        .post_json(&format!("{prefix}/users"), token, &body)
        .await;
    record(
        "create the user again",
        answer.status.as_u16(),
        &answer.text,
    );
    for (call, method, path) in [
        ("head before", Method::HEAD, &member),
        ("put", Method::PUT, &member),
        ("put again", Method::PUT, &member),
        ("head", Method::HEAD, &member),
        ("list", Method::GET, &list),
        ("delete", Method::DELETE, &member),
        ("delete again", Method::DELETE, &member),
        ("head after", Method::HEAD, &member),
    ] {
        let answer = app.request(method, path, token).await;
        record(call, answer.status.as_u16(), &answer.text);
    }
    seen
}

#[apply(backends)]
#[tokio::test]
async fn both_prefixes_answer_the_same_calls_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let documented = round_trip(&app, PREFIX, 1).await;
    let javascript = round_trip(&app, JS_PREFIX, 2).await;

    assert_eq!(documented, javascript);
    let statuses: Vec<u16> = documented.iter().map(|(_, status, _)| *status).collect();
    assert_eq!(
        statuses,
        [201, 201, 409, 404, 204, 204, 204, 200, 204, 409, 404]
    );
    assert_eq!(app.count_of("MemberRemoved"), 2);
}

#[apply(backends)]
#[tokio::test]
async fn what_one_prefix_writes_the_other_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    let lists: Vec<Value> = {
        let mut lists = Vec::new();
        for prefix in PREFIXES {
            let path = format!("{prefix}/groups/{group}/users");
            let answer = app.get(&path).await;
            answer.assert_status(200);
            lists.push(answer.json());
        }
        lists
    };
    assert_eq!(lists[0], lists[1]);

    app.remove_member_at(JS_PREFIX, &group, SEED_USERNAME)
        .await
        .assert_no_content();
    let answer = app.remove_member_at(PREFIX, &group, SEED_USERNAME).await;
    answer.assert_error(409, "UserNotInGroup");
    for prefix in PREFIXES {
        let path = membership_path(prefix, &group, SEED_USERNAME);
        let answer = app.request(Method::HEAD, &path, &app.admin_token).await;
        answer.assert_status(404);
    }
}

#[apply(backends)]
#[tokio::test]
async fn both_prefixes_refuse_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.appends_nothing(async {
        let mut codes = Vec::new();
        for prefix in PREFIXES {
            let mut answers = Vec::new();
            for (group, user) in [
                ("%zz", SEED_USERNAME),
                ("Nowhere", SEED_USERNAME),
                (SEED_GROUP, "nobody"),
                (ADMINISTRATORS, SEED_USERNAME),
            ] {
                let answer = app
                    .remove_member_at(prefix, &encode_once(group), user)
                    .await;
                answers.push((answer.status.as_u16(), answer.json()["data"].clone()));
            }
            let path = membership_path(prefix, "Nowhere", SEED_USERNAME);
            let answer = app.delete(&path, ANONYMOUS).await;
            answers.push((answer.status.as_u16(), answer.json()["data"].clone()));
            codes.push(answers);
        }
        assert_eq!(codes[0], codes[1]);
        let statuses: Vec<u16> = codes[0].iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, [400, 404, 404, 409, 401]);
    })
    .await;
}

/// Encodes spaces only, so that a deliberately broken escape goes through as written.
fn encode_once(identifier: &str) -> String {
    if identifier.contains('%') {
        identifier.to_owned()
    } else {
        encode(identifier)
    }
}

#[apply(backends)]
#[tokio::test]
async fn adding_a_member_twice_answers_no_content_and_appends_one_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_group("Project Mayhem").await;
    app.create_user("bob", "bob@fightclub.com", None).await;
    let added_before = app.count_of("MemberAdded");

    app.add_member("Project%20Mayhem", "bob").await;
    app.add_member("project%20mayhem", "BOB@fightclub.com")
        .await;

    assert_eq!(app.count_of("MemberAdded"), added_before + 1);
    assert_eq!(app.head_member("Project%20Mayhem", "bob").await, 204);
}

#[apply(backends)]
#[tokio::test]
async fn the_member_list_pages_through_direct_members_in_username_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_group("Project Mayhem").await;
    for name in ["carl", "Angel", "bob"] {
        app.create_user(name, &format!("{name}@fightclub.com"), None)
            .await;
        app.add_member("Project%20Mayhem", name).await;
    }

    let first = app
        .list_members_page("Project%20Mayhem", "?pageIndex=0&pageSize=2")
        .await;
    first.assert_status(200);
    let first = first.json();
    let second = app
        .list_members_page("Project%20Mayhem", "?pageIndex=1&pageSize=2")
        .await
        .json();
    let beyond = app
        .list_members_page("Project%20Mayhem", "?pageIndex=5&pageSize=2")
        .await
        .json();

    for page in [&first, &second, &beyond] {
        assert_eq!(page["totalCount"], 3, "{page}");
        assert_eq!(page["pageCount"], 2, "{page}");
        assert_eq!(page["pageSize"], 2, "{page}");
    }
    assert_eq!(first["pageIndex"], 0);
    assert_eq!(second["pageIndex"], 1);
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["Angel", "bob"]);
    assert_eq!(names(&second), ["carl"]);
    assert!(names(&beyond).is_empty());
    let default = app.list_members_page("Project%20Mayhem", "").await.json();
    assert_eq!(default["pageSize"], 25, "{default}");
    assert_eq!(names(&default), ["Angel", "bob", "carl"]);
}

#[apply(backends)]
#[tokio::test]
async fn collections_take_a_trailing_slash_as_the_documentation_writes_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = Some(app.admin_token.as_str());
    for prefix in PREFIXES {
        let n = prefix.len();
        let group = json!({ "name": format!("Slash {n}") });
        app.post_json(&format!("{prefix}/groups/"), token, &group)
            .await
            .assert_status(201);
        let user = json!({ "username": format!("slash{n}"), "email": format!("s{n}@x.com") });
        app.post_json(&format!("{prefix}/users/"), token, &user)
            .await
            .assert_status(201);
        let group = encode(&format!("Slash {n}"));
        app.add_member(&group, &format!("slash{n}")).await;
        let path = format!("{prefix}/groups/{group}/users/");
        let answer = app.request(Method::GET, &path, token).await;
        answer.assert_status(200);
        assert_eq!(answer.json()["totalCount"], 1, "{}", answer.text);
    }
}
