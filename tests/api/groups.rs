//! Groups beyond membership: updating one (System Administrators keeps its name and type),
//! and deleting one, which empties it and takes it out of the tree first. Every new event
//! is checked against its JSON Schema.

use std::collections::BTreeSet;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::json;

use crate::helpers::{
    ADMINISTRATORS, Backend, JS_PREFIX, PREFIX, PREFIXES, SERVICE_ACCOUNT, TestApp, assert_valid,
    backends, column, counts, encode, group_path, membership_path, types, user_path,
};

// ---- PUT .../groups/{g} -----------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn an_administrator_updates_a_group_by_id_or_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.new_group("Space Monkeys").await;
    let before = app.public_events().len();

    let body = json!({
        "name": "Space Monkeys",
        "Description": "the documentation's capital D",
        "type": "external",
        "custom": { "rule": "you do not talk about it" },
    });
    let answer = app
        .put(
            &group_path(PREFIX, "space monkeys"),
            &app.admin_token,
            &body,
        )
        .await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(stored["id"], id, "{stored}");
    assert_eq!(stored["name"], "Space Monkeys");
    assert_eq!(stored["description"], "the documentation's capital D");
    assert_eq!(stored["type"], "external");
    assert_eq!(
        stored["custom"],
        json!({ "rule": "you do not talk about it" })
    );
    assert_eq!(app.get_json(&group_path(PREFIX, &id)).await, stored);
    let appended = app.appended_since(before);
    assert_eq!(types(&appended), ["GroupUpdated"]);
    let data = &appended[0].payload["data"];
    assert_eq!(data["groupId"], id, "{data}");
    assert_eq!(data["name"], "Space Monkeys");
    assert_eq!(data["description"], "the documentation's capital D");
    assert_eq!(data["type"], "external");
    assert_eq!(
        data["custom"],
        json!({ "rule": "you do not talk about it" })
    );

    // Renamed by id under the other prefix; without a type it keeps the one it has.
    let body = json!({ "name": "Project Mayhem", "description": "renamed" });
    let answer = app
        .put(&group_path(JS_PREFIX, &id), &app.admin_token, &body)
        .await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(
        (&stored["name"], &stored["type"]),
        (&json!("Project Mayhem"), &json!("external")),
        "{stored}"
    );
    assert_eq!(
        app.get_json(&group_path(PREFIX, "Project Mayhem")).await["id"],
        id
    );
    app.get(&group_path(PREFIX, "Space Monkeys"))
        .await
        .assert_error(404, "GroupNotFound");

    let body = json!({ "name": "Project Mayhem", "type": "contensis" });
    let answer = app
        .put(
            &group_path(PREFIX, "Project Mayhem"),
            &app.admin_token,
            &body,
        )
        .await;
    answer.assert_status(200);
    assert_eq!(answer.json()["type"], "contensis");

    let appended = app.appended_since(before);
    assert_eq!(types(&appended), ["GroupUpdated"; 3]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_cannot_take_another_groups_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    app.new_group("Committee").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            for name in ["Space Monkeys", "SPACE MONKEYS", "system administrators"] {
                app.put(
                    &group_path(prefix, "Committee"),
                    &app.admin_token,
                    &json!({ "name": name }),
                )
                .await
                .assert_error(409, "GroupNameTaken");
            }
        }
    })
    .await;

    // Keeping its own name is no conflict.
    let events_before = app.public_events().len();
    let body = json!({ "name": "Committee", "description": "the inner circle" });
    let answer = app
        .put(&group_path(PREFIX, "Committee"), &app.admin_token, &body)
        .await;
    answer.assert_status(200);
    assert_eq!(answer.json()["description"], "the inner circle");
    let appended = app.appended_since(events_before);
    assert_eq!(types(&appended), ["GroupUpdated"]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_update_with_an_empty_name_or_an_unknown_type_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Committee").await;
    app.appends_nothing(async {
        for (prefix, body, field) in [
            (PREFIX, json!({ "name": "" }), "name"),
            (JS_PREFIX, json!({ "description": "no name" }), "name"),
            (
                PREFIX,
                json!({ "name": "Committee", "type": "other" }),
                "type",
            ),
            (
                JS_PREFIX,
                json!({ "name": "Committee", "type": "other" }),
                "type",
            ),
        ] {
            let answer = app
                .put(&group_path(prefix, "Committee"), &app.admin_token, &body)
                .await;
            let data = answer.assert_error(422, "ValidationFailed");
            assert_eq!(data["field"], field, "{body}: {data}");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn updating_a_group_needs_an_administrator_and_an_existing_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Committee").await;
    let bob = app.user_with_token("bob").await;
    let body = json!({ "name": "Committee", "description": "bob's now" });
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.put(&group_path(prefix, "Committee"), &bob, &body)
                .await
                .assert_error(403, "Forbidden");
            app.put(
                &group_path(prefix, "Project Mayhem"),
                &app.admin_token,
                &body,
            )
            .await
            .assert_error(404, "GroupNotFound");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn system_administrators_keeps_its_name_and_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = group_path(PREFIX, ADMINISTRATORS);
    let id = app.get_json(&path).await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.appends_nothing(async {
        for (prefix, body) in [
            (PREFIX, json!({ "name": "Administrators" })),
            (
                JS_PREFIX,
                json!({ "name": "Administrators", "type": "sys" }),
            ),
            (
                PREFIX,
                json!({ "name": ADMINISTRATORS, "type": "contensis" }),
            ),
            (
                JS_PREFIX,
                json!({ "name": ADMINISTRATORS, "type": "external" }),
            ),
        ] {
            app.put(&group_path(prefix, ADMINISTRATORS), &app.admin_token, &body)
                .await
                .assert_error(403, "SystemGroup");
        }
    })
    .await;

    // Its description may change, with the type left out or given as it is.
    let events_before = app.public_events().len();
    for (prefix, body) in [
        (
            PREFIX,
            json!({ "name": ADMINISTRATORS, "description": "they run the place" }),
        ),
        (
            JS_PREFIX,
            json!({ "name": ADMINISTRATORS, "description": "still", "type": "sys" }),
        ),
    ] {
        let answer = app
            .put(&group_path(prefix, ADMINISTRATORS), &app.admin_token, &body)
            .await;
        answer.assert_status(200);
        let stored = answer.json();
        assert_eq!(stored["id"], id.as_str(), "{stored}");
        assert_eq!(stored["name"], ADMINISTRATORS);
        assert_eq!(stored["type"], "sys");
        assert_eq!(stored["description"], body["description"]);
    }
    let appended = app.appended_since(events_before);
    assert_eq!(types(&appended), ["GroupUpdated"; 2]);
    assert_valid(&appended);
    assert_eq!(
        app.head_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
            .await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn an_ordinary_group_cannot_be_made_a_system_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Committee").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            let body = json!({ "name": "Committee", "type": "sys" });
            app.put(&group_path(prefix, "Committee"), &app.admin_token, &body)
                .await
                .assert_error(403, "SystemGroup");
        }
    })
    .await;
    assert_eq!(
        app.get_json(&group_path(PREFIX, "Committee")).await["type"],
        "contensis"
    );
}

// ---- DELETE .../groups/{g} --------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn deleting_a_group_empties_it_and_takes_it_out_of_the_tree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let monkeys = app.new_group("Space Monkeys").await;
    let mayhem = app.new_group("Project Mayhem").await;
    let paper = app.new_group("Paper Street").await;
    let committee = app.new_group("Committee").await;
    let assault = app.new_group("Assault Team").await;
    let marla = app.new_user("marla").await;
    let bob = app.new_user("bob").await;
    app.new_user("chloe").await;
    app.add_member("Space%20Monkeys", "marla").await;
    app.add_member("Space%20Monkeys", "bob").await;
    app.add_member("Committee", "chloe").await;
    app.nest("Project Mayhem", "Space Monkeys").await;
    app.nest("Paper Street", "Space Monkeys").await;
    app.nest("Space Monkeys", "Committee").await;
    app.nest("Space Monkeys", "Assault Team").await;
    assert_eq!(app.head_member("Project%20Mayhem", "chloe").await, 204);
    let before = app.public_events().len();

    app.delete(&group_path(JS_PREFIX, "Space Monkeys"), &app.admin_token)
        .await
        .assert_no_content();

    let appended = app.appended_since(before);
    let (deleted, ended) = appended.split_last().expect("events were appended");
    assert_eq!(deleted.event_type, "GroupDeleted", "{appended:#?}");
    assert_eq!(deleted.payload["data"]["groupId"], monkeys);
    assert_eq!(deleted.payload["data"]["name"], "Space Monkeys");
    let mut removed = BTreeSet::new();
    let mut unnested = BTreeSet::new();
    for event in ended {
        let data = &event.payload["data"];
        let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
        match event.event_type.as_str() {
            "MemberRemoved" => {
                assert_eq!(field("groupId"), monkeys, "{event:?}");
                removed.insert(field("userId"));
            }
            "ChildGroupRemoved" => {
                unnested.insert((field("groupId"), field("childGroupId")));
            }
            _ => panic!("unexpected before GroupDeleted: {event:?}"),
        }
    }
    assert_eq!(types(ended).len(), 6, "{appended:#?}");
    assert_eq!(removed, BTreeSet::from([marla, bob]));
    assert_eq!(
        unnested,
        BTreeSet::from([
            (monkeys.clone(), committee),
            (monkeys.clone(), assault),
            (mayhem, monkeys.clone()),
            (paper, monkeys.clone()),
        ])
    );
    assert_valid(&appended);

    for prefix in PREFIXES {
        for identifier in [monkeys.as_str(), "Space Monkeys"] {
            app.get(&group_path(prefix, identifier))
                .await
                .assert_error(404, "GroupNotFound");
        }
    }
    // The former children and members are still there, on their own.
    for name in ["Committee", "Assault Team"] {
        app.get_json(&group_path(PREFIX, name)).await;
    }
    for parent in ["Project Mayhem", "Paper Street"] {
        let below = app
            .get_json(&format!(
                "{}/groups?includeInherited=true",
                group_path(PREFIX, parent)
            ))
            .await;
        assert_eq!(counts(&below), (Some(0), Some(0)), "{below}");
    }
    assert_eq!(app.head_member("Project%20Mayhem", "chloe").await, 404);
    let chloes = app
        .get_json(&format!(
            "{}/groups?includeInherited=true",
            user_path(PREFIX, "chloe")
        ))
        .await;
    assert_eq!(column(&chloes, "name"), ["Committee"], "{chloes}");
    for username in ["marla", "bob"] {
        app.get_json(&user_path(PREFIX, username)).await;
        let groups = app
            .get_json(&format!("{}/groups", user_path(PREFIX, username)))
            .await;
        assert_eq!(groups["totalCount"], 0, "{groups}");
    }
}

#[apply(backends)]
#[tokio::test]
async fn deleting_a_group_needs_an_administrator_and_an_existing_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Committee").await;
    let bob = app.user_with_token("bob").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.delete(&group_path(prefix, "Committee"), &bob)
                .await
                .assert_error(403, "Forbidden");
            app.delete(&group_path(prefix, "Project Mayhem"), &app.admin_token)
                .await
                .assert_error(404, "GroupNotFound");
        }
    })
    .await;
    app.get_json(&group_path(PREFIX, "Committee")).await;
}

#[apply(backends)]
#[tokio::test]
async fn system_administrators_cannot_be_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = group_path(PREFIX, ADMINISTRATORS);
    let id = app.get_json(&path).await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.appends_nothing(async {
        for prefix in PREFIXES {
            for identifier in [ADMINISTRATORS, id.as_str()] {
                app.delete(&group_path(prefix, identifier), &app.admin_token)
                    .await
                    .assert_error(403, "SystemGroup");
            }
        }
    })
    .await;
    app.get_json(&path).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_group_and_the_user_holding_the_last_administrator_stay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Ops").await;
    app.nest(ADMINISTRATORS, "Ops").await;
    let alice = app.user_with_token("alice").await;
    app.add_member("Ops", "alice").await;
    // alice administers through Ops, so the service account may leave.
    let admins = encode(ADMINISTRATORS);
    app.delete(&membership_path(PREFIX, &admins, SERVICE_ACCOUNT), &alice)
        .await
        .assert_no_content();
    app.appends_nothing(async {
        for (prefix, path) in [
            (PREFIX, "groups/Ops"),
            (JS_PREFIX, "groups/Ops"),
            (PREFIX, "groups/Ops/users/alice"),
            (JS_PREFIX, "groups/Ops/users/alice"),
            (PREFIX, "users/alice"),
            (JS_PREFIX, "users/alice"),
        ] {
            let answer = app.delete(&format!("{prefix}/{path}"), &alice).await;
            answer.assert_error(409, "LastAdministrator");
        }
    })
    .await;
    let check = membership_path(PREFIX, &admins, "alice");
    app.request(Method::HEAD, &check, &alice)
        .await
        .assert_no_content();
}
