//! Child groups: membership through them counts for checks, for authorization and for
//! the last-administrator rule, lists take in the groups below, and no group may end up
//! inside itself.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::json;

use crate::helpers::{
    ADMINISTRATORS, Backend, JS_PREFIX, PREFIX, PREFIXES, SEED_GROUP, SEED_USERNAME,
    SERVICE_ACCOUNT, TestApp, backends, column, counts, encode, group_path, members_path,
    membership_path, nesting_path, user_path,
};

const MONKEYS: &str = "Space Monkeys";

#[apply(backends)]
#[tokio::test]
async fn a_member_of_a_child_group_is_a_member_of_the_parent_but_cannot_be_removed_from_it(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group(MONKEYS).await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.add_member(&encode(MONKEYS), "marla").await;
    app.nest(SEED_GROUP, MONKEYS).await;
    assert_eq!(app.count_of("ChildGroupAdded"), 1);

    assert_eq!(app.head_member(&encode(SEED_GROUP), "marla").await, 204);
    let answer = app
        .appends_nothing(app.remove_member(&encode(SEED_GROUP), "marla"))
        .await;
    let data = answer.assert_error(409, "UserNotInGroup");
    assert_eq!(data["inheritedThrough"], MONKEYS, "{data}");

    // The direct members are listed, not the inherited ones.
    let members = app.list_members(&encode(SEED_GROUP)).await;
    assert_eq!(members["totalCount"], 1, "{members}");
    assert_eq!(members["items"][0]["username"], SEED_USERNAME);
}

#[apply(backends)]
#[tokio::test]
async fn a_member_of_a_child_group_of_system_administrators_is_an_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("Operators").await;
    let bob = app.user_with_token("bob").await;
    let path = membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME);

    app.request(Method::HEAD, &path, &bob)
        .await
        .assert_status(403);
    app.add_member("Operators", "bob").await;
    app.nest(ADMINISTRATORS, "Operators").await;

    app.delete(&path, &bob).await.assert_no_content();
    // With bob an administrator through Operators, the service account is no longer the
    // last one, so it may go.
    app.remove_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
        .await
        .assert_no_content();
    // The service account's own token no longer administers anything; bob's does.
    let admins = encode(ADMINISTRATORS);
    let check = |user: &str| membership_path(PREFIX, &admins, user);
    app.request(Method::HEAD, &check(SERVICE_ACCOUNT), &app.admin_token)
        .await
        .assert_status(403);
    app.request(Method::HEAD, &check(SERVICE_ACCOUNT), &bob)
        .await
        .assert_status(404);
    app.request(Method::HEAD, &check("bob"), &bob)
        .await
        .assert_no_content();
}

#[apply(backends)]
#[tokio::test]
async fn a_group_cannot_be_placed_inside_itself_at_any_depth(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group(MONKEYS).await;
    app.create_group("Committee").await;
    app.nest(SEED_GROUP, MONKEYS).await;
    app.nest(MONKEYS, "Committee").await;
    app.appends_nothing(async {
        for (group, child) in [
            (SEED_GROUP, SEED_GROUP),
            (MONKEYS, SEED_GROUP),
            ("Committee", SEED_GROUP),
        ] {
            let answer = app.try_nest(group, child).await;
            answer.assert_error(409, "GroupCycle");
        }
        // Nesting again is a no-op, and an unknown group is not found.
        app.nest(SEED_GROUP, MONKEYS).await;
        app.try_nest(SEED_GROUP, "Nobody")
            .await
            .assert_error(404, "GroupNotFound");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_child_group_is_listed_and_can_be_taken_out_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group(MONKEYS).await;
    app.create_group("Committee").await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.add_member(&encode(MONKEYS), "marla").await;
    app.nest(SEED_GROUP, MONKEYS).await;
    app.nest(SEED_GROUP, "Committee").await;

    let children = format!("{PREFIX}/groups/{}/groups", encode(SEED_GROUP));
    let listed = app.get(&children).await;
    listed.assert_status(200);
    let body = listed.json();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Committee", MONKEYS], "{body}");
    assert_eq!(body["totalCount"], 2);

    let path = nesting_path(PREFIX, SEED_GROUP, MONKEYS);
    app.delete(&path, &app.admin_token)
        .await
        .assert_no_content();
    assert_eq!(app.count_of("ChildGroupRemoved"), 1);
    assert_eq!(app.head_member(&encode(SEED_GROUP), "marla").await, 404);

    app.appends_nothing(app.delete(&path, &app.admin_token))
        .await
        .assert_error(409, "GroupNotChild");
}

#[apply(backends)]
#[tokio::test]
async fn the_child_group_holding_the_only_administrators_cannot_be_taken_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("Operators").await;
    let bob = app.user_with_token("bob").await;
    app.add_member("Operators", "bob").await;
    app.nest(ADMINISTRATORS, "Operators").await;
    app.remove_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
        .await
        .assert_no_content();

    let path = nesting_path(PREFIX, ADMINISTRATORS, "Operators");
    app.appends_nothing(app.delete(&path, &bob))
        .await
        .assert_error(409, "LastAdministrator");
}

/// The chain Committee ⊂ Space Monkeys ⊂ Paper Street Soap Company, with marla in the
/// committee only.
async fn chain(app: &TestApp) {
    app.seed().await;
    app.create_group(MONKEYS).await;
    app.create_group("Committee").await;
    app.create_group("Lou's Tavern").await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.add_member("Committee", "marla").await;
    app.nest(SEED_GROUP, MONKEYS).await;
    app.nest(MONKEYS, "Committee").await;
}

#[apply(backends)]
#[tokio::test]
async fn a_users_groups_are_listed_directly_or_with_those_inherited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    chain(&app).await;
    let groups = |query: &str| {
        let path = format!("{PREFIX}/users/marla@fightclub.com/groups{query}");
        let app = &app;
        async move {
            let answer = app.get(&path).await;
            answer.assert_status(200);
            let body = answer.json();
            let names: Vec<String> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_owned())
                .collect();
            (body["totalCount"].as_u64(), names)
        }
    };
    assert_eq!(groups("").await, (Some(1), vec!["Committee".to_owned()]));
    assert_eq!(
        groups("?includeInherited=true").await,
        (
            Some(3),
            vec![
                "Committee".to_owned(),
                SEED_GROUP.to_owned(),
                MONKEYS.to_owned()
            ]
        )
    );
    let path = format!("{PREFIX}/users/nobody/groups");
    app.get(&path).await.assert_error(404, "UserNotFound");
}

#[apply(backends)]
#[tokio::test]
async fn a_user_is_checked_against_a_list_of_groups_any_of_which_will_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    chain(&app).await;
    let check = |groups: &str| {
        let path = format!("{PREFIX}/users/marla/groups/{groups}");
        let app = &app;
        async move {
            app.request(Method::HEAD, &path, &app.admin_token)
                .await
                .status
                .as_u16()
        }
    };
    // Through two levels of child groups.
    assert_eq!(check(&encode(SEED_GROUP)).await, 204);
    // Any one of the list is enough; an unknown one does not spoil the rest.
    assert_eq!(check("Lou%27s%20Tavern,Nobody,Committee").await, 204);
    assert_eq!(check("Lou%27s%20Tavern,Nobody").await, 404);
    // A comma inside a name is written %2C.
    assert_eq!(check("Lou%27s%20Tavern%2CCommittee").await, 404);
    assert_eq!(check("%zz,Committee").await, 400);
    let many = vec!["Committee"; 21].join(",");
    assert_eq!(check(&many).await, 400);
}

// ---- listing through the groups below -------------------------------------------------

/// Project Mayhem ⊃ {Space Monkeys, Assault Team}, both ⊃ Committee (reached twice).
/// angel is in Project Mayhem and in Committee, bob in Space Monkeys, zed in Assault Team,
/// marla in Committee, chloe in Committee and Assault Team.
async fn tree(app: &TestApp) {
    for name in [
        "Committee",
        "Space Monkeys",
        "Project Mayhem",
        "Assault Team",
    ] {
        app.new_group(name).await;
    }
    for username in ["zed", "marla", "chloe", "bob", "angel"] {
        app.new_user(username).await;
    }
    for (group, username) in [
        ("Project%20Mayhem", "angel"),
        ("Committee", "angel"),
        ("Space%20Monkeys", "bob"),
        ("Assault%20Team", "zed"),
        ("Committee", "marla"),
        ("Committee", "chloe"),
        ("Assault%20Team", "chloe"),
    ] {
        app.add_member(group, username).await;
    }
    app.nest("Project Mayhem", "Space Monkeys").await;
    app.nest("Project Mayhem", "Assault Team").await;
    app.nest("Space Monkeys", "Committee").await;
    app.nest("Assault Team", "Committee").await;
}

#[apply(backends)]
#[tokio::test]
async fn a_groups_members_are_listed_with_those_of_every_group_below(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tree(&app).await;
    app.appends_nothing(async {
        let members = |prefix: &str, group: &str, query: &str| {
            let path = format!("{}{query}", members_path(prefix, group));
            let app = &app;
            async move { app.get_json(&path).await }
        };

        let all = members(PREFIX, "Project Mayhem", "?includeInherited=true").await;
        assert_eq!(
            column(&all, "username"),
            ["angel", "bob", "chloe", "marla", "zed"],
            "{all}"
        );
        assert_eq!(counts(&all), (Some(5), Some(1)));

        let page = members(
            JS_PREFIX,
            "Project Mayhem",
            "?includeInherited=true&pageSize=2&pageIndex=1",
        )
        .await;
        assert_eq!(column(&page, "username"), ["chloe", "marla"], "{page}");
        assert_eq!(counts(&page), (Some(5), Some(3)));
        assert_eq!(
            (&page["pageIndex"], &page["pageSize"]),
            (&json!(1), &json!(2))
        );
        let last = members(
            PREFIX,
            "Project Mayhem",
            "?includeInherited=true&pageSize=2&pageIndex=2",
        )
        .await;
        assert_eq!(column(&last, "username"), ["zed"], "{last}");
        assert_eq!(counts(&last), (Some(5), Some(3)));

        // Without the flag, or with it off: the direct members only.
        for query in ["", "?includeInherited=false"] {
            let direct = members(JS_PREFIX, "Project Mayhem", query).await;
            assert_eq!(column(&direct, "username"), ["angel"], "{direct}");
            assert_eq!(counts(&direct), (Some(1), Some(1)));
        }

        let middle = members(JS_PREFIX, "Space Monkeys", "?includeInherited=true").await;
        assert_eq!(
            column(&middle, "username"),
            ["angel", "bob", "chloe", "marla"],
            "{middle}"
        );
        assert_eq!(counts(&middle), (Some(4), Some(1)));
        let leaf = members(PREFIX, "Committee", "?includeInherited=true").await;
        assert_eq!(
            column(&leaf, "username"),
            ["angel", "chloe", "marla"],
            "{leaf}"
        );
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_groups_child_groups_are_listed_at_any_depth_and_with_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tree(&app).await;
    let children = |prefix: &str, group: &str, query: &str| {
        let path = format!("{}/groups{query}", group_path(prefix, group));
        let app = &app;
        async move { app.get_json(&path).await }
    };

    for (prefix, query, expected) in [
        (PREFIX, "", &["Assault Team", "Space Monkeys"][..]),
        (
            JS_PREFIX,
            "?includeInherited=true",
            &["Assault Team", "Committee", "Space Monkeys"][..],
        ),
        (
            PREFIX,
            "?includeSelf=true",
            &["Assault Team", "Project Mayhem", "Space Monkeys"][..],
        ),
        (
            JS_PREFIX,
            "?includeInherited=true&includeSelf=true",
            &[
                "Assault Team",
                "Committee",
                "Project Mayhem",
                "Space Monkeys",
            ][..],
        ),
    ] {
        let listed = children(prefix, "Project Mayhem", query).await;
        assert_eq!(column(&listed, "name"), expected, "{query}: {listed}");
        assert_eq!(
            counts(&listed),
            (Some(expected.len() as u64), Some(1)),
            "{query}"
        );
    }

    let page = children(
        PREFIX,
        "Project Mayhem",
        "?includeInherited=true&includeSelf=true&pageSize=3&pageIndex=1",
    )
    .await;
    assert_eq!(column(&page, "name"), ["Space Monkeys"], "{page}");
    assert_eq!(counts(&page), (Some(4), Some(2)));

    let leaf = children(
        JS_PREFIX,
        "Committee",
        "?includeInherited=true&includeSelf=true",
    )
    .await;
    assert_eq!(column(&leaf, "name"), ["Committee"], "{leaf}");
    assert_eq!(counts(&leaf), (Some(1), Some(1)));
    let empty = children(PREFIX, "Committee", "?includeInherited=true").await;
    assert_eq!(counts(&empty), (Some(0), Some(0)), "{empty}");
}

#[apply(backends)]
#[tokio::test]
async fn membership_is_inherited_down_a_chain_and_the_chain_cannot_be_closed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["A", "B", "C"] {
        app.new_group(name).await;
    }
    app.new_user("u").await;
    app.add_member("C", "u").await;
    app.nest("A", "B").await;
    app.nest("B", "C").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.request(
                Method::HEAD,
                &membership_path(prefix, "A", "u"),
                &app.admin_token,
            )
            .await
            .assert_no_content();
            let groups = app
                .get_json(&format!(
                    "{}/groups?includeInherited=true",
                    user_path(prefix, "u")
                ))
                .await;
            assert_eq!(column(&groups, "name"), ["A", "B", "C"], "{groups}");
            assert_eq!(counts(&groups), (Some(3), Some(1)));

            for (group, child) in [("C", "A"), ("A", "A")] {
                let path = nesting_path(prefix, group, child);
                app.request(Method::PUT, &path, &app.admin_token)
                    .await
                    .assert_error(409, "GroupCycle");
            }
        }
    })
    .await;
}
