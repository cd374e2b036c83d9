//! Reading one user or one group back, by any of its identifiers.

use reqwest::Method;
use rstest_reuse::apply;

use crate::helpers::{
    ANONYMOUS, Backend, JS_PREFIX, PREFIX, SEED_EMAIL, SEED_GROUP, SEED_USERNAME, TestApp,
    backends, column, encode,
};

#[apply(backends)]
#[tokio::test]
async fn a_user_is_read_back_by_id_username_or_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    app.appends_nothing(async {
        for prefix in [PREFIX, JS_PREFIX] {
            for user in [
                seed.user_id.to_string(),
                SEED_USERNAME.to_uppercase(),
                SEED_EMAIL.to_uppercase(),
            ] {
                let path = format!("{prefix}/users/{user}");
                let answer = app.get(&path).await;
                answer.assert_status(200);
                let body = answer.json();
                assert_eq!(body["id"], seed.user_id.to_string(), "{body}");
                assert_eq!(body["username"], SEED_USERNAME);
                assert_eq!(body["email"], SEED_EMAIL);
                assert!(
                    body.get("password").is_none() && body["credentials"].get("password").is_none()
                );
            }
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_group_is_read_back_by_id_or_name_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    for group in [
        seed.group_id.to_string(),
        encode(&SEED_GROUP.to_lowercase()),
    ] {
        let path = format!("{PREFIX}/groups/{group}");
        let answer = app.get(&path).await;
        answer.assert_status(200);
        let body = answer.json();
        assert_eq!(body["id"], seed.group_id.to_string(), "{body}");
        assert_eq!(body["name"], SEED_GROUP);
        assert_eq!(body["type"], "contensis");
    }
}

#[apply(backends)]
#[tokio::test]
async fn reading_what_does_not_exist_is_not_found_and_reading_others_needs_an_administrator(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.get(&format!("{PREFIX}/users/robert.paulson"))
        .await
        .assert_error(404, "UserNotFound");
    app.get(&format!("{PREFIX}/groups/Project%20Mayhem"))
        .await
        .assert_error(404, "GroupNotFound");
    let tyler = format!("{PREFIX}/users/{SEED_USERNAME}");
    (app.request(Method::GET, &tyler, ANONYMOUS).await).assert_error(401, "Unauthorized");
    app.get(&format!("{PREFIX}/groups/%zz"))
        .await
        .assert_error(400, "InvalidIdentifier");

    let outsider = app.user_with_token("marla").await;
    (app.request(Method::GET, &tyler, &outsider).await).assert_error(403, "Forbidden");
    let group = format!("{PREFIX}/groups/{}", encode(SEED_GROUP));
    (app.request(Method::GET, &group, &outsider).await).assert_error(403, "Forbidden");
    // A user may read itself, by any identifier or as `@current`.
    for me in ["marla", "MARLA@fightclub.com", "@current"] {
        let path = format!("{PREFIX}/users/{me}");
        let answer = app.request(Method::GET, &path, &outsider).await;
        answer.assert_status(200);
        assert_eq!(answer.json()["username"], "marla");
    }
}

#[apply(backends)]
#[tokio::test]
async fn users_are_listed_a_page_at_a_time_searched_and_ordered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (username, email) in [
        ("marla", "marla.singer@fightclub.com"),
        ("bob", "robert.paulson@fightclub.com"),
        ("angel", "angel.face@fightclub.com"),
    ] {
        app.create_user(username, email, None).await;
    }
    let list = |query: &str| {
        let path = format!("{PREFIX}/users{query}");
        let app = &app;
        async move { app.get(&path).await }
    };

    // Three users and the service account, by username.
    let all = list("").await;
    all.assert_status(200);
    let all = all.json();
    assert_eq!(all["totalCount"], 4, "{all}");
    assert_eq!(
        column(&all, "username"),
        ["angel", "bob", "marla", "svc.membership-tests"]
    );

    let page = list("?pageSize=3&pageIndex=1&order=-username").await.json();
    assert_eq!(
        (page["pageCount"].as_u64(), page["totalCount"].as_u64()),
        (Some(2), Some(4))
    );
    assert_eq!(column(&page, "username"), ["angel"]);

    // `q` looks in usernames and emails, case-insensitively, and takes wildcards literally.
    assert_eq!(
        column(&list("?q=PAULSON").await.json(), "username"),
        ["bob"]
    );
    assert_eq!(
        column(&list("?q=%25").await.json(), "username"),
        Vec::<String>::new()
    );
    // The default first name of the test users: everyone but the service account.
    assert_eq!(list("?q=tyler").await.json()["totalCount"], 3);

    list("?order=password")
        .await
        .assert_error(400, "BadRequest");
}

#[apply(backends)]
#[tokio::test]
async fn groups_are_listed_searched_and_ordered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in [
        "Project Mayhem",
        "Space Monkeys",
        "Paper Street Soap Company",
    ] {
        app.create_group(name).await;
    }
    let path = format!("{JS_PREFIX}/groups?q=pa&order=-name");
    let answer = app.get(&path).await;
    answer.assert_status(200);
    let body = answer.json();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    // "pa" is in "Paper Street Soap Company" and "Space Monkeys", in any case.
    assert_eq!(
        names,
        ["Space Monkeys", "Paper Street Soap Company"],
        "{body}"
    );
    assert_eq!(body["totalCount"], 2);
}

#[apply(backends)]
#[tokio::test]
async fn membership_lists_are_searched_and_ordered_like_the_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in [
        "Project Mayhem",
        "Space Monkeys",
        "Paper Street Soap Company",
    ] {
        app.create_group(name).await;
    }
    for (username, email) in [
        ("marla", "marla.singer@fightclub.com"),
        ("bob", "robert.paulson@fightclub.com"),
        ("angel", "angel.face@fightclub.com"),
    ] {
        app.create_user(username, email, None).await;
        app.add_member("Project%20Mayhem", username).await;
    }
    app.add_member("Space%20Monkeys", "bob").await;
    for child in ["Space Monkeys", "Paper Street Soap Company"] {
        app.nest("Project Mayhem", child).await;
    }
    let get = |path: String| {
        let app = &app;
        async move { app.get_json(&path).await }
    };

    let members = get(format!(
        "{JS_PREFIX}/groups/Project%20Mayhem/users?order=-username"
    ))
    .await;
    assert_eq!(column(&members, "username"), ["marla", "bob", "angel"]);
    let members = get(format!("{PREFIX}/groups/Project%20Mayhem/users?q=PAULSON")).await;
    assert_eq!(column(&members, "username"), ["bob"]);
    assert_eq!(members["totalCount"], 1);

    let children = get(format!(
        "{PREFIX}/groups/Project%20Mayhem/groups?order=-name"
    ))
    .await;
    assert_eq!(
        column(&children, "name"),
        ["Space Monkeys", "Paper Street Soap Company"]
    );
    let children = get(format!(
        "{PREFIX}/groups/Project%20Mayhem/groups?includeSelf=true&q=project"
    ))
    .await;
    assert_eq!(column(&children, "name"), ["Project Mayhem"]);

    let groups = get(format!(
        "{PREFIX}/users/bob/groups?includeInherited=true&order=-name"
    ))
    .await;
    assert_eq!(column(&groups, "name"), ["Space Monkeys", "Project Mayhem"]);

    let path = format!("{PREFIX}/groups/Project%20Mayhem/users?order=name");
    app.get(&path).await.assert_error(400, "BadRequest");
}
