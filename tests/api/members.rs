//! Adding users to a group in bulk (`POST .../groups/{g}/users`): by any identifier, all or
//! nobody, and racing a single add.

use std::collections::BTreeSet;

use rstest_reuse::apply;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    ADMINISTRATORS, Backend, JS_PREFIX, PREFIX, PREFIXES, TestApp, assert_error_shape,
    assert_valid, backends, column, encode, members_path, types,
};

// ---- POST .../groups/{g}/users ----------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn users_are_added_to_a_group_in_bulk_by_any_identifier(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let monkeys = app.new_group("Space Monkeys").await;
    let marla = app.new_user("marla").await;
    let bob = app.new_user("bob").await;
    let chloe = app.new_user("chloe").await;
    let angel = app.new_user("angel").await;
    app.add_member("Space%20Monkeys", "angel").await;
    let before = app.public_events().len();

    // Duplicates, under any identifier, and an existing member add nothing.
    let body = json!([marla, "bob", "Chloe@FightClub.com", marla, "MARLA", angel]);
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        &app.admin_token,
        &body,
    )
    .await
    .assert_no_content();
    let appended = app.appended_since(before);
    assert_eq!(types(&appended), ["MemberAdded"; 3], "{appended:#?}");
    let added: BTreeSet<String> = appended
        .iter()
        .map(|e| {
            assert_eq!(e.payload["data"]["groupId"], monkeys, "{e:?}");
            e.payload["data"]["userId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        added,
        BTreeSet::from([marla.clone(), bob.clone(), chloe.clone()])
    );
    assert_valid(&appended);
    let members = app.list_members("Space%20Monkeys").await;
    assert_eq!(
        column(&members, "username"),
        ["angel", "bob", "chloe", "marla"]
    );

    // With a trailing slash, by group id, under the other prefix: members already.
    app.appends_nothing(app.post_json(
        &format!("{}/", members_path(JS_PREFIX, &monkeys)),
        &app.admin_token,
        &json!([bob, chloe]),
    ))
    .await
    .assert_no_content();

    let zed = app.new_user("zed").await;
    let before = app.public_events().len();
    for prefix in PREFIXES {
        app.post_json(
            &format!("{}/", members_path(prefix, "space monkeys")),
            &app.admin_token,
            &json!([zed]),
        )
        .await
        .assert_no_content();
    }
    let appended = app.appended_since(before);
    assert_eq!(types(&appended), ["MemberAdded"]);
    assert_eq!(appended[0].payload["data"]["userId"], zed);
    assert_eq!(app.head_member(&monkeys, "zed").await, 204);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_naming_a_missing_user_adds_nobody(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    let marla = app.new_user("marla").await;
    app.new_user("bob").await;
    let ghost = Uuid::new_v4().to_string();
    let given = json!([
        marla,
        "Robert.Paulson",
        "bob",
        "Nobody@FightClub.com",
        ghost
    ]);
    app.appends_nothing(async {
        for path in [
            members_path(PREFIX, "Space Monkeys"),
            format!("{}/", members_path(JS_PREFIX, "Space Monkeys")),
        ] {
            let answer = app.post_json(&path, &app.admin_token, &given).await;
            let data = answer.assert_error(404, "UserNotFound");
            let missing: BTreeSet<&str> = data["missing"]
                .as_array()
                .unwrap_or_else(|| panic!("no missing array in {data}"))
                .iter()
                .map(|m| m.as_str().expect("a string"))
                .collect();
            assert_eq!(
                missing,
                BTreeSet::from(["Robert.Paulson", "Nobody@FightClub.com", ghost.as_str()]),
                "{data}"
            );
            assert_eq!(data["missing"].as_array().map(Vec::len), Some(3), "{data}");
        }
    })
    .await;
    assert_eq!(app.list_members("Space%20Monkeys").await["totalCount"], 0);
}

#[apply(backends)]
#[tokio::test]
async fn a_missing_user_id_is_named_as_it_was_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    app.new_user("marla").await;
    let ghost = Uuid::new_v4().to_string().to_uppercase();
    let answer = app
        .appends_nothing(app.post_json(
            &members_path(PREFIX, "Space Monkeys"),
            &app.admin_token,
            &json!(["marla", ghost]),
        ))
        .await;
    let data = answer.assert_error(404, "UserNotFound");
    assert_eq!(data["missing"], json!([ghost]), "{data}");
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_to_an_unknown_group_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_user("marla").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.post_json(
                &members_path(prefix, "Project Mayhem"),
                &app.admin_token,
                &json!(["marla"]),
            )
            .await
            .assert_error(404, "GroupNotFound");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn an_empty_bulk_add_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.post_json(
                &members_path(prefix, "Space Monkeys"),
                &app.admin_token,
                &json!([]),
            )
            .await
            .assert_no_content();
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_takes_at_most_a_thousand_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    app.new_user("marla").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            let answer = app
                .post_json(
                    &members_path(prefix, "Space Monkeys"),
                    &app.admin_token,
                    &json!(vec!["marla"; 1001]),
                )
                .await;
            answer.assert_status(400);
            assert_error_shape(&answer.json());
        }
    })
    .await;

    let events_before = app.public_events().len();
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        &app.admin_token,
        &json!(vec!["marla"; 1000]),
    )
    .await
    .assert_no_content();
    assert_eq!(types(&app.appended_since(events_before)), ["MemberAdded"]);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_takes_an_array_of_user_identifiers_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    app.new_user("marla").await;
    app.appends_nothing(async {
        for (prefix, body) in [
            (PREFIX, json!({ "users": ["marla"] })),
            (JS_PREFIX, json!("marla")),
            (PREFIX, json!(["marla", 7])),
            (JS_PREFIX, json!([null])),
            (PREFIX, json!([["marla"]])),
            (JS_PREFIX, json!([{ "id": "marla" }])),
            (PREFIX, json!([""])),
            (JS_PREFIX, json!(["marla", ""])),
        ] {
            let answer = app
                .post_json(
                    &members_path(prefix, "Space Monkeys"),
                    &app.admin_token,
                    &body,
                )
                .await;
            assert_eq!(answer.status.as_u16(), 400, "{body}: {}", answer.text);
            assert_error_shape(&answer.json());
        }
        let answer = app
            .post_raw(
                &members_path(PREFIX, "Space Monkeys"),
                "application/json",
                b"[\"marla\"".to_vec(),
            )
            .await;
        answer.assert_status(400);
        assert_error_shape(&answer.json());
    })
    .await;
    assert_eq!(app.head_member("Space%20Monkeys", "marla").await, 404);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_needs_an_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    let bob = app.user_with_token("bob").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            for group in ["Space Monkeys", ADMINISTRATORS] {
                app.post_json(&members_path(prefix, group), &bob, &json!(["bob"]))
                    .await
                    .assert_error(403, "Forbidden");
            }
        }
    })
    .await;
    assert_eq!(app.head_member(&encode(ADMINISTRATORS), "bob").await, 404);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_racing_a_single_add_of_one_of_its_users_answers_204(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    for round in 0..8 {
        let (first, second) = (format!("first{round}"), format!("second{round}"));
        app.new_user(&first).await;
        app.new_user(&second).await;
        let (path, body) = (
            members_path(PREFIX, "Space Monkeys"),
            json!([first, second]),
        );
        let single = app.put_member("Space%20Monkeys", &first);
        let bulk = app.post_json(&path, &app.admin_token, &body);
        let (single, bulk) = tokio::join!(single, bulk);
        assert!([204, 409].contains(&single.status.as_u16()), "{single:?}");
        bulk.assert_no_content();
        for username in [&first, &second] {
            assert_eq!(app.head_member("Space%20Monkeys", username).await, 204);
        }
    }
}
