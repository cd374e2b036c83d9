//! Child groups: membership through them counts for checks, for authorization and for
//! the last-administrator rule, and no group may end up inside itself.

use reqwest::Method;
use rstest_reuse::apply;

use crate::helpers::{
    ADMINISTRATORS, Backend, PREFIX, SEED_GROUP, SEED_USERNAME, SERVICE_ACCOUNT, TestApp, backends,
    encode, membership_path,
};

const MONKEYS: &str = "Space Monkeys";

fn nesting_path(group: &str, child: &str) -> String {
    format!("{PREFIX}/groups/{}/groups/{}", encode(group), encode(child))
}

async fn nest(app: &TestApp, group: &str, child: &str) {
    app.request(
        Method::PUT,
        &nesting_path(group, child),
        Some(&app.admin_token),
    )
    .await
    .assert_no_content();
}

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
    nest(&app, SEED_GROUP, MONKEYS).await;
    assert_eq!(app.count_of("ChildGroupAdded"), 1);

    assert_eq!(app.head_member(&encode(SEED_GROUP), "marla").await, 204);
    let before = app.log_len();
    let answer = app.remove_member(&encode(SEED_GROUP), "marla").await;
    let data = answer.assert_error(409, "UserNotInGroup");
    assert_eq!(data["inheritedThrough"], MONKEYS, "{data}");
    app.assert_nothing_appended(before);

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
    app.create_user("bob", "bob@fightclub.com", Some("his-name-was-robert"))
        .await;
    let token = app.token_for("bob", "his-name-was-robert").await;
    let path = membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME);

    app.request(Method::HEAD, &path, Some(&token))
        .await
        .assert_status(403);
    app.add_member("Operators", "bob").await;
    nest(&app, ADMINISTRATORS, "Operators").await;

    app.request(Method::DELETE, &path, Some(&token))
        .await
        .assert_no_content();
    // With bob an administrator through Operators, the service account is no longer the
    // last one, so it may go.
    app.remove_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
        .await
        .assert_no_content();
    // The service account's own token no longer administers anything; bob's does.
    let admins = encode(ADMINISTRATORS);
    let check = |user: &str| membership_path(PREFIX, &admins, user);
    app.request(
        Method::HEAD,
        &check(SERVICE_ACCOUNT),
        Some(&app.admin_token),
    )
    .await
    .assert_status(403);
    app.request(Method::HEAD, &check(SERVICE_ACCOUNT), Some(&token))
        .await
        .assert_status(404);
    app.request(Method::HEAD, &check("bob"), Some(&token))
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
    nest(&app, SEED_GROUP, MONKEYS).await;
    nest(&app, MONKEYS, "Committee").await;
    let before = app.log_len();

    for (group, child) in [
        (SEED_GROUP, SEED_GROUP),
        (MONKEYS, SEED_GROUP),
        ("Committee", SEED_GROUP),
    ] {
        let answer = app
            .request(
                Method::PUT,
                &nesting_path(group, child),
                Some(&app.admin_token),
            )
            .await;
        answer.assert_error(409, "GroupCycle");
    }
    // Nesting again is a no-op, and an unknown group is not found.
    nest(&app, SEED_GROUP, MONKEYS).await;
    app.request(
        Method::PUT,
        &nesting_path(SEED_GROUP, "Nobody"),
        Some(&app.admin_token),
    )
    .await
    .assert_error(404, "GroupNotFound");
    app.assert_nothing_appended(before);
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
    nest(&app, SEED_GROUP, MONKEYS).await;
    nest(&app, SEED_GROUP, "Committee").await;

    let children = format!("{PREFIX}/groups/{}/groups", encode(SEED_GROUP));
    let listed = app
        .request(Method::GET, &children, Some(&app.admin_token))
        .await;
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

    let path = nesting_path(SEED_GROUP, MONKEYS);
    app.request(Method::DELETE, &path, Some(&app.admin_token))
        .await
        .assert_no_content();
    assert_eq!(app.count_of("ChildGroupRemoved"), 1);
    assert_eq!(app.head_member(&encode(SEED_GROUP), "marla").await, 404);

    let before = app.log_len();
    app.request(Method::DELETE, &path, Some(&app.admin_token))
        .await
        .assert_error(409, "GroupNotChild");
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn the_child_group_holding_the_only_administrators_cannot_be_taken_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("Operators").await;
    app.create_user("bob", "bob@fightclub.com", Some("his-name-was-robert"))
        .await;
    app.add_member("Operators", "bob").await;
    nest(&app, ADMINISTRATORS, "Operators").await;
    app.remove_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
        .await
        .assert_no_content();
    let token = app.token_for("bob", "his-name-was-robert").await;

    let before = app.log_len();
    let path = nesting_path(ADMINISTRATORS, "Operators");
    app.request(Method::DELETE, &path, Some(&token))
        .await
        .assert_error(409, "LastAdministrator");
    app.assert_nothing_appended(before);
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
    nest(app, SEED_GROUP, MONKEYS).await;
    nest(app, MONKEYS, "Committee").await;
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
            let answer = app
                .request(Method::GET, &path, Some(&app.admin_token))
                .await;
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
    app.request(Method::GET, &path, Some(&app.admin_token))
        .await
        .assert_error(404, "UserNotFound");
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
            app.request(Method::HEAD, &path, Some(&app.admin_token))
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
