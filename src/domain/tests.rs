//! Given events, when a command, then events or a refusal.

use uuid::Uuid;

use super::memory::MemoryState;
use super::*;

const ADMINS: u128 = 1;
const SOAP: u128 = 2;
const TYLER: u128 = 10;
const MARLA: u128 = 11;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn group_created(n: u128, name: &str, group_type: GroupType) -> EventData {
    EventData::GroupCreated(GroupDetails {
        group_id: id(n),
        name: GroupName::parse(name).unwrap(),
        description: None,
        group_type,
        custom: Custom::new(),
        external_id: None,
    })
}

fn user_created(n: u128, username: &str) -> EventData {
    EventData::UserCreated(UserCreated {
        user_id: id(n),
        username: Username::parse(username).unwrap(),
        email: Email::parse(format!("{username}@fightclub.com")).unwrap(),
        profile: Profile::default(),
        client_id: None,
        scopes: Vec::new(),
    })
}

fn membership(group: u128, group_name: &str, user: u128, username: &str) -> Membership {
    Membership {
        group_id: id(group),
        group_name: GroupName::parse(group_name).unwrap(),
        user_id: id(user),
        username: Username::parse(username).unwrap(),
        email: Email::parse(format!("{username}@fightclub.com")).unwrap(),
    }
}

fn added(group: u128, group_name: &str, user: u128, username: &str) -> EventData {
    EventData::MemberAdded(membership(group, group_name, user, username))
}

fn nested(group: u128, group_name: &str, child: u128, child_name: &str) -> EventData {
    EventData::ChildGroupAdded(Nesting {
        group_id: id(group),
        group_name: GroupName::parse(group_name).unwrap(),
        child_group_id: id(child),
        child_group_name: GroupName::parse(child_name).unwrap(),
    })
}

fn add_child(group: &str, child: &str) -> Command {
    Command::AddChildGroup {
        group: GroupIdentifier::parse(group).unwrap(),
        child: GroupIdentifier::parse(child).unwrap(),
    }
}

/// The world most tests start from: Tyler is in the soap company, Marla is not.
fn soap_company() -> Vec<EventData> {
    vec![
        group_created(SOAP, "Paper Street Soap Company", GroupType::Contensis),
        user_created(TYLER, "tdurden"),
        user_created(MARLA, "msinger"),
        added(SOAP, "Paper Street Soap Company", TYLER, "tdurden"),
    ]
}

fn remove(group: &str, user: &str) -> Command {
    Command::RemoveMember {
        group: GroupIdentifier::parse(group).unwrap(),
        user: UserIdentifier::parse(user).unwrap(),
    }
}

fn refusal(result: Result<Vec<EventData>, Refusal>) -> DomainError {
    match result {
        Err(Refusal::Domain(e)) => e,
        other => panic!("expected a domain refusal, got {other:?}"),
    }
}

#[test]
fn removing_a_direct_member_by_any_identifier_emits_member_removed() {
    let state = MemoryState::given(soap_company());
    let expected = vec![EventData::MemberRemoved(membership(
        SOAP,
        "Paper Street Soap Company",
        TYLER,
        "tdurden",
    ))];
    for (group, user) in [
        (id(SOAP).to_string(), id(TYLER).to_string()),
        ("paper street soap company".into(), "TDURDEN".into()),
        (
            "Paper Street Soap Company".into(),
            "TDurden@FightClub.com".into(),
        ),
    ] {
        assert_eq!(decide(&state, remove(&group, &user)).unwrap(), expected);
    }
}

#[test]
fn removing_from_an_unknown_group_is_group_not_found() {
    let state = MemoryState::given(soap_company());
    let err = refusal(decide(&state, remove("Project Mayhem", "tdurden")));
    assert_eq!(err, DomainError::GroupNotFound);
}

#[test]
fn removing_an_unknown_user_is_user_not_found() {
    let state = MemoryState::given(soap_company());
    let err = refusal(decide(&state, remove("Paper Street Soap Company", "bob")));
    assert_eq!(err, DomainError::UserNotFound);
}

#[test]
fn removing_a_non_member_is_user_not_in_group() {
    let state = MemoryState::given(soap_company());
    let err = refusal(decide(
        &state,
        remove("Paper Street Soap Company", "msinger"),
    ));
    assert_eq!(
        err,
        DomainError::UserNotInGroup {
            inherited_through: None
        }
    );
}

#[test]
fn removing_an_inherited_member_names_the_child_group_it_comes_through() {
    let mut events = soap_company();
    events.push(group_created(3, "Space Monkeys", GroupType::Contensis));
    events.push(added(3, "Space Monkeys", MARLA, "msinger"));
    events.push(nested(
        SOAP,
        "Paper Street Soap Company",
        3,
        "Space Monkeys",
    ));
    let state = MemoryState::given(events);

    let err = refusal(decide(
        &state,
        remove("Paper Street Soap Company", "msinger"),
    ));
    assert_eq!(
        err,
        DomainError::UserNotInGroup {
            inherited_through: Some(GroupName::parse("Space Monkeys").unwrap())
        }
    );
}

#[test]
fn the_last_administrator_cannot_be_removed_but_one_of_two_can() {
    let mut events = vec![
        group_created(ADMINS, "System Administrators", GroupType::Sys),
        user_created(TYLER, "tdurden"),
        user_created(MARLA, "msinger"),
        added(ADMINS, "System Administrators", TYLER, "tdurden"),
    ];
    let state = MemoryState::given(events.clone());
    let err = refusal(decide(&state, remove("System Administrators", "tdurden")));
    assert_eq!(err, DomainError::LastAdministrator);

    events.push(added(ADMINS, "System Administrators", MARLA, "msinger"));
    let state = MemoryState::given(events);
    assert!(decide(&state, remove("System Administrators", "tdurden")).is_ok());
}

#[test]
fn of_two_racing_removals_the_second_is_rejected_when_applied() {
    let mut state = MemoryState::given(soap_company());
    let first = decide(&state, remove("Paper Street Soap Company", "tdurden")).unwrap();
    let second = decide(&state, remove("Paper Street Soap Company", "tdurden")).unwrap();

    assert_eq!(state.fold(&first[0]), Outcome::Applied);
    assert_eq!(
        state.fold(&second[0]),
        Outcome::Rejected(DomainError::UserNotInGroup {
            inherited_through: None
        })
    );
}

#[test]
fn two_racing_removals_of_the_last_two_administrators_leave_one() {
    let mut state = MemoryState::given(vec![
        group_created(ADMINS, "System Administrators", GroupType::Sys),
        user_created(TYLER, "tdurden"),
        user_created(MARLA, "msinger"),
        added(ADMINS, "System Administrators", TYLER, "tdurden"),
        added(ADMINS, "System Administrators", MARLA, "msinger"),
    ]);
    let tyler = decide(&state, remove("System Administrators", "tdurden")).unwrap();
    let marla = decide(&state, remove("System Administrators", "msinger")).unwrap();

    assert_eq!(state.fold(&tyler[0]), Outcome::Applied);
    assert_eq!(
        state.fold(&marla[0]),
        Outcome::Rejected(DomainError::LastAdministrator)
    );
}

#[test]
fn adding_an_existing_member_emits_nothing() {
    let state = MemoryState::given(soap_company());
    let command = Command::AddMember {
        group: GroupIdentifier::parse("Paper Street Soap Company").unwrap(),
        user: UserIdentifier::parse("tdurden").unwrap(),
    };
    assert_eq!(decide(&state, command).unwrap(), vec![]);
}

#[test]
fn creating_a_user_whose_username_or_email_is_taken_in_other_case_is_refused() {
    let state = MemoryState::given(soap_company());
    let new_user = |username: &str, email: &str| Command::CreateUser {
        user_id: id(99),
        user: NewUser {
            username: Username::parse(username).unwrap(),
            email: Email::parse(email).unwrap(),
            profile: Profile::default(),
            client_id: None,
            scopes: Vec::new(),
        },
        password_hash: None,
    };
    let err = refusal(decide(&state, new_user("TDurden", "new@fightclub.com")));
    assert_eq!(err, DomainError::UsernameTaken);
    let err = refusal(decide(&state, new_user("new", "TDURDEN@fightclub.com")));
    assert_eq!(err, DomainError::EmailTaken);
}

#[test]
fn a_password_travels_as_its_own_event_beside_the_user() {
    let state = MemoryState::default();
    let events = decide(
        &state,
        Command::CreateUser {
            user_id: id(TYLER),
            user: NewUser {
                username: Username::parse("tdurden").unwrap(),
                email: Email::parse("t.durden@fightclub.com").unwrap(),
                profile: Profile::default(),
                client_id: None,
                scopes: Vec::new(),
            },
            password_hash: Some("$argon2id$...".into()),
        },
    )
    .unwrap();
    let secret: Vec<bool> = events.iter().map(EventData::is_secret).collect();
    assert_eq!(secret, vec![false, true]);
}

#[test]
fn creating_a_group_whose_name_is_taken_in_other_case_is_refused() {
    let state = MemoryState::given(soap_company());
    let err = refusal(decide(
        &state,
        Command::CreateGroup {
            group_id: id(99),
            group: NewGroup {
                name: GroupName::parse("PAPER STREET SOAP COMPANY").unwrap(),
                description: None,
                group_type: GroupType::Contensis,
                custom: Custom::new(),
                external_id: None,
            },
            members: Vec::new(),
        },
    ));
    assert_eq!(err, DomainError::GroupNameTaken);
}

#[test]
fn an_event_round_trips_through_its_wire_form() {
    let event = Event::new(
        Metadata {
            id: id(7),
            time: time::macros::datetime!(2026-11-29 12:00 UTC),
            actor: Actor {
                user_id: id(TYLER),
                username: Username::parse("tdurden").unwrap(),
            },
            correlation_id: id(8),
        },
        added(SOAP, "Paper Street Soap Company", MARLA, "msinger"),
    );
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "MemberAdded");
    assert_eq!(json["data"]["groupName"], "Paper Street Soap Company");
    assert_eq!(json["aggregateId"], id(SOAP).to_string());
    let back: Event = serde_json::from_value(json).unwrap();
    assert_eq!(back, event);
}

#[test]
fn a_group_cannot_contain_itself_at_any_depth() {
    let state = MemoryState::given(vec![
        group_created(1, "Project Mayhem", GroupType::Contensis),
        group_created(2, "Space Monkeys", GroupType::Contensis),
        group_created(3, "Committee", GroupType::Contensis),
        nested(1, "Project Mayhem", 2, "Space Monkeys"),
        nested(2, "Space Monkeys", 3, "Committee"),
    ]);
    for (group, child) in [
        ("Project Mayhem", "Project Mayhem"),
        ("Space Monkeys", "Project Mayhem"),
        ("Committee", "Project Mayhem"),
    ] {
        let err = refusal(decide(&state, add_child(group, child)));
        assert_eq!(err, DomainError::GroupCycle, "{group} <- {child}");
    }
    assert_eq!(
        decide(&state, add_child("Project Mayhem", "Space Monkeys")).unwrap(),
        vec![],
        "nesting again changes nothing"
    );
}

#[test]
fn of_two_racing_nestings_that_would_close_a_cycle_the_second_is_rejected() {
    let mut state = MemoryState::given(vec![
        group_created(1, "Project Mayhem", GroupType::Contensis),
        group_created(2, "Space Monkeys", GroupType::Contensis),
    ]);
    let down = decide(&state, add_child("Project Mayhem", "Space Monkeys")).unwrap();
    let up = decide(&state, add_child("Space Monkeys", "Project Mayhem")).unwrap();
    assert_eq!(state.fold(&down[0]), Outcome::Applied);
    assert_eq!(
        state.fold(&up[0]),
        Outcome::Rejected(DomainError::GroupCycle)
    );
}

#[test]
fn an_administrator_through_a_child_group_keeps_the_last_direct_one_removable() {
    let mut state = MemoryState::given(vec![
        group_created(ADMINS, "System Administrators", GroupType::Sys),
        group_created(3, "Operators", GroupType::Contensis),
        user_created(TYLER, "tdurden"),
        user_created(MARLA, "msinger"),
        added(ADMINS, "System Administrators", TYLER, "tdurden"),
    ]);
    let err = refusal(decide(&state, remove("System Administrators", "tdurden")));
    assert_eq!(err, DomainError::LastAdministrator);

    state.fold(&added(3, "Operators", MARLA, "msinger"));
    state.fold(&nested(ADMINS, "System Administrators", 3, "Operators"));
    assert!(decide(&state, remove("System Administrators", "tdurden")).is_ok());
}

#[test]
fn a_child_group_leaves_only_a_group_it_is_directly_in() {
    let mut state = MemoryState::given(vec![
        group_created(1, "Project Mayhem", GroupType::Contensis),
        group_created(2, "Space Monkeys", GroupType::Contensis),
        group_created(3, "Committee", GroupType::Contensis),
        nested(1, "Project Mayhem", 2, "Space Monkeys"),
        nested(2, "Space Monkeys", 3, "Committee"),
    ]);
    let remove_child = |group: &str, child: &str| Command::RemoveChildGroup {
        group: GroupIdentifier::parse(group).unwrap(),
        child: GroupIdentifier::parse(child).unwrap(),
    };
    let err = refusal(decide(&state, remove_child("Project Mayhem", "Committee")));
    assert_eq!(err, DomainError::GroupNotChild);

    let first = decide(&state, remove_child("Project Mayhem", "Space Monkeys")).unwrap();
    let second = decide(&state, remove_child("Project Mayhem", "Space Monkeys")).unwrap();
    assert_eq!(state.fold(&first[0]), Outcome::Applied);
    assert_eq!(
        state.fold(&second[0]),
        Outcome::Rejected(DomainError::GroupNotChild)
    );
}

#[test]
fn the_child_group_that_holds_the_last_administrators_cannot_leave_system_administrators() {
    let mut state = MemoryState::given(vec![
        group_created(ADMINS, "System Administrators", GroupType::Sys),
        group_created(3, "Operators", GroupType::Contensis),
        user_created(MARLA, "msinger"),
        added(3, "Operators", MARLA, "msinger"),
        nested(ADMINS, "System Administrators", 3, "Operators"),
    ]);
    let command = || Command::RemoveChildGroup {
        group: GroupIdentifier::parse("System Administrators").unwrap(),
        child: GroupIdentifier::parse("Operators").unwrap(),
    };
    assert_eq!(
        refusal(decide(&state, command())),
        DomainError::LastAdministrator
    );

    state.fold(&user_created(TYLER, "tdurden"));
    state.fold(&added(ADMINS, "System Administrators", TYLER, "tdurden"));
    assert!(decide(&state, command()).is_ok());
}

/// Marla administers the service only through Operators, a child of System Administrators.
fn operators_hold_the_administrators() -> Vec<EventData> {
    vec![
        group_created(ADMINS, "System Administrators", GroupType::Sys),
        group_created(3, "Operators", GroupType::Contensis),
        user_created(MARLA, "msinger"),
        added(3, "Operators", MARLA, "msinger"),
        nested(ADMINS, "System Administrators", 3, "Operators"),
    ]
}

#[test]
fn the_last_administrator_cannot_leave_by_any_path() {
    let state = MemoryState::given(operators_hold_the_administrators());
    let commands = [
        remove("Operators", "msinger"),
        Command::DeleteUser {
            user: UserIdentifier::parse("msinger").unwrap(),
        },
        Command::DeleteGroup {
            group: GroupIdentifier::parse("Operators").unwrap(),
        },
    ];
    for command in commands {
        assert_eq!(
            refusal(decide(&state, command.clone())),
            DomainError::LastAdministrator,
            "{command:?}"
        );
    }
}

#[test]
fn deleting_a_user_removes_each_membership_first_then_the_user() {
    let mut state = MemoryState::given(soap_company());
    state.fold(&group_created(3, "Space Monkeys", GroupType::Contensis));
    state.fold(&added(3, "Space Monkeys", TYLER, "tdurden"));
    let command = Command::DeleteUser {
        user: UserIdentifier::parse("tdurden").unwrap(),
    };
    let events = decide(&state, command).unwrap();
    let tyler = membership(SOAP, "Paper Street Soap Company", TYLER, "tdurden");
    assert_eq!(
        events[..2],
        [
            EventData::MemberRemoved(tyler),
            EventData::MemberRemoved(membership(3, "Space Monkeys", TYLER, "tdurden")),
        ]
    );
    assert!(matches!(&events[2], EventData::UserDeleted(d) if d.user_id == id(TYLER)));
    for event in &events {
        assert_eq!(state.fold(event), Outcome::Applied);
    }
    assert_eq!(state.user(&UserIdentifier::Id(id(TYLER))).unwrap(), None);
}

#[test]
fn a_deletion_is_rejected_while_a_racing_membership_remains() {
    let mut state = MemoryState::given(soap_company());
    let events = decide(
        &state,
        Command::DeleteUser {
            user: UserIdentifier::parse("msinger").unwrap(),
        },
    )
    .unwrap();
    // Marla joins between the decision and the deletion.
    state.fold(&added(SOAP, "Paper Street Soap Company", MARLA, "msinger"));
    assert_eq!(
        state.fold(&events[0]),
        Outcome::Rejected(DomainError::MembershipsRemain)
    );
}

#[test]
fn deleting_a_group_empties_it_and_takes_it_out_of_its_parents() {
    let mut state = MemoryState::given(soap_company());
    state.fold(&group_created(3, "Space Monkeys", GroupType::Contensis));
    state.fold(&group_created(4, "Project Mayhem", GroupType::Contensis));
    state.fold(&nested(
        SOAP,
        "Paper Street Soap Company",
        3,
        "Space Monkeys",
    ));
    state.fold(&nested(3, "Space Monkeys", 4, "Project Mayhem"));
    state.fold(&added(3, "Space Monkeys", MARLA, "msinger"));
    let command = Command::DeleteGroup {
        group: GroupIdentifier::parse("Space Monkeys").unwrap(),
    };
    let events = decide(&state, command).unwrap();
    let types: Vec<_> = events.iter().map(EventData::type_name).collect();
    assert_eq!(
        types,
        [
            "MemberRemoved",
            "ChildGroupRemoved",
            "ChildGroupRemoved",
            "GroupDeleted"
        ]
    );
    for event in &events {
        assert_eq!(state.fold(event), Outcome::Applied);
    }
    assert!(!state.is_direct_child(id(SOAP), id(3)).unwrap());
    assert!(state.group(&GroupIdentifier::Id(id(4))).unwrap().is_some());
}

#[test]
fn a_system_group_keeps_its_name_and_type_and_is_never_deleted() {
    let state = MemoryState::given(operators_hold_the_administrators());
    let update = |name: &str, group_type| Command::UpdateGroup {
        group: GroupIdentifier::parse("System Administrators").unwrap(),
        details: NewGroup {
            name: GroupName::parse(name).unwrap(),
            description: Some("who runs the place".into()),
            group_type,
            custom: Custom::new(),
            external_id: None,
        },
        keep_type: false,
    };
    let renamed = decide(&state, update("Admins", GroupType::Sys));
    assert_eq!(refusal(renamed), DomainError::SystemGroup);
    let retyped = decide(
        &state,
        update("System Administrators", GroupType::Contensis),
    );
    assert_eq!(refusal(retyped), DomainError::SystemGroup);
    assert!(decide(&state, update("system administrators", GroupType::Sys)).is_ok());
    let delete = Command::DeleteGroup {
        group: GroupIdentifier::parse("System Administrators").unwrap(),
    };
    assert_eq!(refusal(decide(&state, delete)), DomainError::SystemGroup);
}

#[test]
fn updating_a_user_to_another_users_name_is_refused_but_its_own_is_fine() {
    let state = MemoryState::given(soap_company());
    let update = |username: &str, email: &str| Command::UpdateUser {
        user: UserIdentifier::parse("tdurden").unwrap(),
        username: Username::parse(username).unwrap(),
        email: Email::parse(email).unwrap(),
        profile: Profile::default(),
        provisioned: Set::Keep,
        suspended: None,
    };
    let taken = decide(&state, update("MSinger", "tyler@fightclub.com"));
    assert_eq!(refusal(taken), DomainError::UsernameTaken);
    let taken = decide(&state, update("tyler", "msinger@FIGHTCLUB.com"));
    assert_eq!(refusal(taken), DomainError::EmailTaken);
    assert!(decide(&state, update("TDurden", "tdurden@fightclub.com")).is_ok());
}

#[test]
fn a_bulk_add_names_every_missing_user_and_adds_nobody() {
    let state = MemoryState::given(soap_company());
    let add = |users: &[&str]| Command::AddMembers {
        group: GroupIdentifier::parse("Paper Street Soap Company").unwrap(),
        users: users
            .iter()
            .map(|u| UserIdentifier::parse(u).unwrap())
            .collect(),
    };
    let missing = decide(
        &state,
        add(&["msinger", "bob", "tdurden", "robert@paulson.com"]),
    );
    assert_eq!(
        refusal(missing),
        DomainError::UsersNotFound {
            missing: vec!["bob".into(), "robert@paulson.com".into()]
        }
    );
    let added_only_marla = decide(&state, add(&["msinger", "tdurden", "MSINGER"])).unwrap();
    assert_eq!(
        added_only_marla,
        [added(SOAP, "Paper Street Soap Company", MARLA, "msinger")]
    );
}

#[test]
fn a_deletion_ends_at_most_so_many_links_at_once() {
    let removal = EventData::MemberRemoved(membership(
        SOAP,
        "Paper Street Soap Company",
        TYLER,
        "tdurden",
    ));
    let at_most = vec![removal.clone(); LINKS_PER_DELETION_MAX];
    assert!(super::decide::check_links(&at_most).is_ok());
    let one_more = vec![removal; LINKS_PER_DELETION_MAX + 1];
    assert!(matches!(
        super::decide::check_links(&one_more),
        Err(Refusal::Domain(DomainError::TooManyLinks))
    ));
}

/// Tyler and Marla both administer, in the soap company's world.
fn two_administrators() -> Vec<EventData> {
    let mut events = soap_company();
    events.push(group_created(
        ADMINS,
        "System Administrators",
        GroupType::Sys,
    ));
    events.push(added(ADMINS, "System Administrators", TYLER, "tdurden"));
    events.push(added(ADMINS, "System Administrators", MARLA, "msinger"));
    events
}

fn set_suspended(user: &str, suspended: Option<bool>) -> Command {
    Command::UpdateUser {
        user: UserIdentifier::parse(user).unwrap(),
        username: Username::parse(user).unwrap(),
        email: Email::parse(format!("{user}@fightclub.com")).unwrap(),
        profile: Profile::default(),
        provisioned: Set::Keep,
        suspended,
    }
}

fn fold(state: &mut MemoryState, events: Vec<EventData>) {
    for event in events {
        assert_eq!(state.fold(&event), Outcome::Applied, "{event:?}");
    }
}

#[test]
fn an_update_equal_to_what_is_stored_makes_no_event() {
    let state = MemoryState::given(soap_company());
    assert_eq!(
        decide(&state, set_suspended("tdurden", None)).unwrap(),
        vec![]
    );
    assert_eq!(
        decide(&state, set_suspended("tdurden", Some(false))).unwrap(),
        vec![]
    );
    let group = Command::UpdateGroup {
        group: GroupIdentifier::parse("Paper Street Soap Company").unwrap(),
        details: NewGroup {
            name: GroupName::parse("Paper Street Soap Company").unwrap(),
            description: None,
            group_type: GroupType::Contensis,
            custom: Custom::new(),
            external_id: None,
        },
        keep_type: true,
    };
    assert_eq!(decide(&state, group).unwrap(), vec![]);
}

#[test]
fn a_suspension_is_one_event_and_a_second_one_none() {
    let mut state = MemoryState::given(two_administrators());
    let events = decide(&state, set_suspended("msinger", Some(true))).unwrap();
    assert!(matches!(events.as_slice(), [EventData::UserSuspended(s)] if s.user_id == id(MARLA)));
    fold(&mut state, events);
    assert_eq!(
        decide(&state, set_suspended("msinger", Some(true))).unwrap(),
        vec![]
    );
    // Marla keeps her groups.
    assert!(state.is_direct_member(id(ADMINS), id(MARLA)).unwrap());
    let events = decide(&state, set_suspended("msinger", Some(false))).unwrap();
    assert!(matches!(events.as_slice(), [EventData::UserReinstated(_)]));
}

#[test]
fn the_last_administrator_who_is_not_suspended_stays() {
    let mut state = MemoryState::given(two_administrators());
    let events = decide(&state, set_suspended("msinger", Some(true))).unwrap();
    fold(&mut state, events);
    // Marla, suspended, no longer counts: Tyler is the last one.
    assert_eq!(
        refusal(decide(&state, set_suspended("tdurden", Some(true)))),
        DomainError::LastAdministrator
    );
    assert_eq!(
        refusal(decide(&state, remove("System Administrators", "tdurden"))),
        DomainError::LastAdministrator
    );
}

#[test]
fn a_suspension_that_lost_a_race_is_rejected_when_applied() {
    let mut state = MemoryState::given(two_administrators());
    let tyler = decide(&state, set_suspended("tdurden", Some(true))).unwrap();
    let marla = decide(&state, set_suspended("msinger", Some(true))).unwrap();
    fold(&mut state, tyler);
    assert_eq!(
        apply(&state, &marla[0]).unwrap(),
        Outcome::Rejected(DomainError::LastAdministrator)
    );
    let again = EventData::UserSuspended(UserStatus {
        user_id: id(TYLER),
        username: Username::parse("tdurden").unwrap(),
        email: Email::parse("tdurden@fightclub.com").unwrap(),
    });
    assert_eq!(
        apply(&state, &again).unwrap(),
        Outcome::Rejected(DomainError::StatusUnchanged)
    );
}

#[test]
fn a_token_is_revoked_once() {
    let mut state = MemoryState::given(soap_company());
    let revoke = || Command::RevokeToken {
        user: id(TYLER),
        token_id: id(99),
        expires: time::OffsetDateTime::UNIX_EPOCH,
    };
    let events = decide(&state, revoke()).unwrap();
    assert!(matches!(events.as_slice(), [EventData::TokenRevoked(t)] if t.token_id == id(99)));
    assert!(
        events[0].is_secret(),
        "revocations travel on the credentials stream"
    );
    fold(&mut state, events);
    assert_eq!(decide(&state, revoke()).unwrap(), vec![]);
}
