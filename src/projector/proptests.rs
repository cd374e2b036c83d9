//! Property tests of the projector. Random commands over a small world of users and
//! groups, some decided on the same state before any of their events is applied (races),
//! some events delivered twice, are folded by `apply_batch` into a SQLite read model and by
//! `MemoryState` in memory. The two folds must agree event by event and in what they end
//! with; a replay in other batches must build the same read model; and the invariants must
//! hold after every event.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rusqlite::Connection;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use super::apply_batch;
use crate::domain::memory::MemoryState;
use crate::domain::{
    Actor, Command, Custom, DomainError, Email, Event, EventData, GroupIdentifier, GroupName,
    GroupType, Metadata, NewGroup, NewUser, Outcome, Profile, Refusal, Removal, State,
    UserIdentifier, Username, decide,
};
use crate::log::{Entry, Position, Stream};
use crate::read_model::{self, SqliteState};

// ---- the world -------------------------------------------------------------------------

/// Names a group may be created or renamed with. The first makes a system group; the last
/// is the second in another case, so that it is taken whenever the second is.
const GROUP_NAMES: [&str; 5] = [
    "System Administrators",
    "Paper Street Soap Company",
    "Lou's Tavern",
    "Project Mayhem",
    "paper street soap company",
];
/// Ids groups are created with. Identifiers also name the slot after these: no group.
const GROUP_SLOTS: usize = 4;
const USERNAMES: [&str; 5] = ["tdurden", "msinger", "rpaulson", "narrator", "TDurden"];
const EMAILS: [&str; 5] = [
    "tyler@fightclub.com",
    "marla@fightclub.com",
    "bob@fightclub.com",
    "jack@fightclub.com",
    "Tyler@FightClub.com",
];
const USER_SLOTS: usize = 4;
/// The slots the prelude fills, of groups and of users alike.
const STARTING_SLOTS: usize = 3;

fn group_id(slot: usize) -> Uuid {
    Uuid::from_u128(0x6000 + slot as u128)
}

fn user_id(slot: usize) -> Uuid {
    Uuid::from_u128(0x7000 + slot as u128)
}

fn group_name(index: usize) -> GroupName {
    GroupName::parse(GROUP_NAMES[index]).expect("a valid group name")
}

fn username(index: usize) -> Username {
    Username::parse(USERNAMES[index]).expect("a valid username")
}

fn email(index: usize) -> Email {
    Email::parse(EMAILS[index]).expect("a valid email")
}

/// Every id the world can mention, the unused slots included.
fn group_ids() -> impl Iterator<Item = Uuid> {
    (0..=GROUP_SLOTS).map(group_id)
}

fn user_ids() -> impl Iterator<Item = Uuid> {
    (0..=USER_SLOTS).map(user_id)
}

#[derive(Debug, Clone, Copy)]
enum GroupSpec {
    Id(usize),
    Name(usize),
}

impl GroupSpec {
    fn identifier(self) -> GroupIdentifier {
        match self {
            Self::Id(slot) => GroupIdentifier::Id(group_id(slot)),
            Self::Name(index) => GroupIdentifier::Name(group_name(index)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum UserSpec {
    Id(usize),
    Username(usize),
    Email(usize),
}

impl UserSpec {
    fn identifier(self) -> UserIdentifier {
        match self {
            Self::Id(slot) => UserIdentifier::Id(user_id(slot)),
            Self::Username(index) => UserIdentifier::Username(username(index)),
            Self::Email(index) => UserIdentifier::Email(email(index)),
        }
    }
}

/// A command, as small numbers that shrink well.
#[derive(Debug, Clone)]
enum Op {
    CreateUser {
        slot: usize,
        username: usize,
        email: usize,
        password: bool,
    },
    CreateGroup {
        slot: usize,
        name: usize,
        external: bool,
    },
    UpdateUser {
        user: UserSpec,
        username: usize,
        email: usize,
        firstname: Option<u8>,
    },
    DeleteUser {
        user: UserSpec,
    },
    UpdateGroup {
        group: GroupSpec,
        name: usize,
        /// `None`: the request names no type, so the group keeps its own.
        group_type: Option<GroupType>,
        description: Option<u8>,
    },
    DeleteGroup {
        group: GroupSpec,
    },
    AddMember {
        group: GroupSpec,
        user: UserSpec,
    },
    AddMembers {
        group: GroupSpec,
        users: Vec<UserSpec>,
    },
    RemoveMember {
        group: GroupSpec,
        user: UserSpec,
    },
    AddChildGroup {
        group: GroupSpec,
        child: GroupSpec,
    },
    AddChildGroups {
        group: GroupSpec,
        children: Vec<GroupSpec>,
    },
    RemoveChildGroup {
        group: GroupSpec,
        child: GroupSpec,
    },
}

impl Op {
    fn command(&self) -> Command {
        match self.clone() {
            Self::CreateUser {
                slot,
                username: name,
                email: address,
                password,
            } => Command::CreateUser {
                user_id: user_id(slot),
                user: NewUser {
                    username: username(name),
                    email: email(address),
                    profile: Profile::default(),
                    client_id: None,
                },
                password_hash: password.then(|| format!("$argon2id$hash-of-user-{slot}")),
            },
            Self::CreateGroup {
                slot,
                name,
                external,
            } => Command::CreateGroup {
                group_id: group_id(slot),
                group: NewGroup {
                    name: group_name(name),
                    description: None,
                    group_type: match (name, external) {
                        (0, _) => GroupType::Sys,
                        (_, true) => GroupType::External,
                        (_, false) => GroupType::Contensis,
                    },
                    custom: Custom::new(),
                },
            },
            Self::UpdateUser {
                user,
                username: name,
                email: address,
                firstname,
            } => Command::UpdateUser {
                user: user.identifier(),
                username: username(name),
                email: email(address),
                profile: Profile {
                    firstname: firstname.map(|n| format!("First {n}")),
                    ..Profile::default()
                },
            },
            Self::DeleteUser { user } => Command::DeleteUser {
                user: user.identifier(),
            },
            Self::UpdateGroup {
                group,
                name,
                group_type,
                description,
            } => Command::UpdateGroup {
                group: group.identifier(),
                details: NewGroup {
                    name: group_name(name),
                    description: description.map(|n| format!("Description {n}")),
                    group_type: group_type.unwrap_or(GroupType::Contensis),
                    custom: Custom::new(),
                },
                keep_type: group_type.is_none(),
            },
            Self::DeleteGroup { group } => Command::DeleteGroup {
                group: group.identifier(),
            },
            Self::AddMember { group, user } => Command::AddMember {
                group: group.identifier(),
                user: user.identifier(),
            },
            Self::AddMembers { group, users } => Command::AddMembers {
                group: group.identifier(),
                users: users.into_iter().map(UserSpec::identifier).collect(),
            },
            Self::RemoveMember { group, user } => Command::RemoveMember {
                group: group.identifier(),
                user: user.identifier(),
            },
            Self::AddChildGroup { group, child } => Command::AddChildGroup {
                group: group.identifier(),
                child: child.identifier(),
            },
            Self::AddChildGroups { group, children } => Command::AddChildGroups {
                group: group.identifier(),
                children: children.into_iter().map(GroupSpec::identifier).collect(),
            },
            Self::RemoveChildGroup { group, child } => Command::RemoveChildGroup {
                group: group.identifier(),
                child: child.identifier(),
            },
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A command decided on the state and applied before the next step.
    One(Op),
    /// Commands decided on the same state before any of their events is applied. The log
    /// interleaves their events as `picks` says (each pick takes the next event of one
    /// command, by index among those with events left); each command's own events keep
    /// their order.
    Race(Vec<Op>, Vec<usize>),
    /// An entry already in the log delivered again, at a new position.
    Redeliver(Index),
}

/// What every sequence starts with: System Administrators with one member, as the
/// service's bootstrap makes it, and two more groups and users with a few memberships.
/// The last slots are left for the sequence to fill.
fn prelude() -> Vec<Step> {
    let mut ops = Vec::new();
    for slot in 0..STARTING_SLOTS {
        ops.push(Op::CreateGroup {
            slot,
            name: slot,
            external: slot == 2,
        });
        ops.push(Op::CreateUser {
            slot,
            username: slot,
            email: slot,
            password: slot == 0,
        });
    }
    for (group, user) in [(0, 0), (1, 1), (1, 2), (2, 2)] {
        ops.push(Op::AddMember {
            group: GroupSpec::Id(group),
            user: UserSpec::Id(user),
        });
    }
    ops.into_iter().map(Step::One).collect()
}

// ---- strategies ------------------------------------------------------------------------

/// A slot to create in: mostly one the prelude left free.
fn slot(slots: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => STARTING_SLOTS..slots,
        1 => 0..STARTING_SLOTS,
    ]
}

fn group_spec() -> impl Strategy<Value = GroupSpec> {
    prop_oneof![
        12 => (0..STARTING_SLOTS).prop_map(GroupSpec::Id),
        2 => (STARTING_SLOTS..=GROUP_SLOTS).prop_map(GroupSpec::Id),
        2 => (0..GROUP_NAMES.len()).prop_map(GroupSpec::Name),
    ]
}

fn user_spec() -> impl Strategy<Value = UserSpec> {
    prop_oneof![
        12 => (0..STARTING_SLOTS).prop_map(UserSpec::Id),
        2 => (STARTING_SLOTS..=USER_SLOTS).prop_map(UserSpec::Id),
        1 => (0..USERNAMES.len()).prop_map(UserSpec::Username),
        1 => (0..EMAILS.len()).prop_map(UserSpec::Email),
    ]
}

fn group_type() -> impl Strategy<Value = GroupType> {
    prop_oneof![
        Just(GroupType::Sys),
        Just(GroupType::Contensis),
        Just(GroupType::External),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (slot(USER_SLOTS), 0..USERNAMES.len(), 0..EMAILS.len(), any::<bool>()).prop_map(
            |(slot, username, email, password)| Op::CreateUser {
                slot,
                username,
                email,
                password,
            }
        ),
        2 => (slot(GROUP_SLOTS), 0..GROUP_NAMES.len(), any::<bool>()).prop_map(
            |(slot, name, external)| Op::CreateGroup {
                slot,
                name,
                external,
            }
        ),
        1 => (
            user_spec(),
            0..USERNAMES.len(),
            0..EMAILS.len(),
            proptest::option::of(0..3u8),
        )
            .prop_map(|(user, username, email, firstname)| Op::UpdateUser {
                user,
                username,
                email,
                firstname,
            }),
        1 => user_spec().prop_map(|user| Op::DeleteUser { user }),
        1 => (
            group_spec(),
            0..GROUP_NAMES.len(),
            proptest::option::of(group_type()),
            proptest::option::of(0..3u8),
        )
            .prop_map(|(group, name, group_type, description)| Op::UpdateGroup {
                group,
                name,
                group_type,
                description,
            }),
        1 => group_spec().prop_map(|group| Op::DeleteGroup { group }),
        5 => (group_spec(), user_spec()).prop_map(|(group, user)| Op::AddMember { group, user }),
        1 => (group_spec(), proptest::collection::vec(user_spec(), 0..4))
            .prop_map(|(group, users)| Op::AddMembers { group, users }),
        4 => (group_spec(), user_spec())
            .prop_map(|(group, user)| Op::RemoveMember { group, user }),
        3 => (group_spec(), group_spec())
            .prop_map(|(group, child)| Op::AddChildGroup { group, child }),
        1 => (group_spec(), proptest::collection::vec(group_spec(), 0..3))
            .prop_map(|(group, children)| Op::AddChildGroups { group, children }),
        2 => (group_spec(), group_spec())
            .prop_map(|(group, child)| Op::RemoveChildGroup { group, child }),
    ]
}

fn picks() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..4usize, 0..12)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => op().prop_map(Step::One),
        3 => (proptest::collection::vec(op(), 2..=4), picks())
            .prop_map(|(ops, picks)| Step::Race(ops, picks)),
        // The same request several times at once, as from clients retrying.
        2 => (op(), 2..=4usize, picks())
            .prop_map(|(op, copies, picks)| Step::Race(vec![op; copies], picks)),
        1 => any::<Index>().prop_map(Step::Redeliver),
    ]
}

// ---- folding both ways -----------------------------------------------------------------

/// One entry of the log as appended.
#[derive(Debug, Clone)]
struct Logged {
    partition: String,
    offset: i64,
    payload: Vec<u8>,
}

impl Logged {
    fn entry(&self) -> Entry {
        Entry {
            position: Position {
                partition: self.partition.clone(),
                offset: self.offset,
            },
            payload: self.payload.clone(),
        }
    }
}

const EPOCH: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// A log, the read model the projector folds it into, and the memory state folded alike.
struct Run {
    memory: MemoryState,
    /// Event ids the memory fold has seen: a redelivery has no second effect.
    seen: HashSet<Uuid>,
    log: Vec<Logged>,
    next_offset: BTreeMap<String, i64>,
    events_made: u128,
    read_model: Connection,
    /// Every outcome `apply_batch` reported, in log order.
    outcomes: Vec<(Uuid, Outcome)>,
    /// System groups that have had a member, in each fold.
    administered_in_memory: BTreeSet<Uuid>,
    administered_in_sqlite: BTreeSet<Uuid>,
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let read_model =
            read_model::open_for_writing(&dir.path().join("read.db")).expect("a read model");
        Self {
            memory: MemoryState::default(),
            seen: HashSet::new(),
            log: Vec::new(),
            next_offset: BTreeMap::new(),
            events_made: 0,
            read_model,
            outcomes: Vec::new(),
            administered_in_memory: BTreeSet::new(),
            administered_in_sqlite: BTreeSet::new(),
            dir,
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::One(op) => {
                let events = self.decide(op)?;
                self.append_and_apply(events)
            }
            Step::Race(ops, picks) => {
                let mut queues = Vec::new();
                for op in ops {
                    queues.push(self.decide(op)?.into_iter());
                }
                let mut picks = picks.iter();
                let mut events = Vec::new();
                loop {
                    let mut left: Vec<_> = queues
                        .iter_mut()
                        .filter(|q| !q.as_slice().is_empty())
                        .collect();
                    if left.is_empty() {
                        break;
                    }
                    let pick = picks.next().copied().unwrap_or(0) % left.len();
                    events.extend(left[pick].next());
                }
                self.append_and_apply(events)
            }
            Step::Redeliver(index) => {
                if self.log.is_empty() {
                    return Ok(());
                }
                let again = self.log[index.index(self.log.len())].clone();
                let at = self.appended(&again.partition, again.payload);
                self.apply(at)
            }
        }
    }

    /// Decides on both states, which must decide alike; the events of an accepted command.
    fn decide(&self, op: &Op) -> Result<Vec<EventData>, TestCaseError> {
        let in_memory = refused(decide(&self.memory, op.command()));
        let in_sqlite = refused(decide(&SqliteState(&self.read_model), op.command()));
        prop_assert_eq!(&in_memory, &in_sqlite, "decisions on {:?}", op);
        Ok(in_memory.unwrap_or_default())
    }

    fn append_and_apply(&mut self, events: Vec<EventData>) -> Result<(), TestCaseError> {
        if events.is_empty() {
            return Ok(());
        }
        let from = self.log.len();
        for data in events {
            let n = self.events_made;
            self.events_made += 1;
            let event = Event::new(
                Metadata {
                    id: Uuid::from_u128(0xE000_0000 + n),
                    time: EPOCH + time::Duration::seconds(n as i64),
                    actor: Actor {
                        user_id: user_id(0),
                        username: username(0),
                    },
                    correlation_id: Uuid::from_u128(0xC000_0000 + n),
                },
                data,
            );
            let partition = format!("{}/0", Stream::of(&event).name());
            let payload = serde_json::to_vec(&event).expect("an event serializes");
            self.appended(&partition, payload);
        }
        self.apply(from)
    }

    /// Appends at the next offset of the partition; returns the entry's index.
    fn appended(&mut self, partition: &str, payload: Vec<u8>) -> usize {
        let next = self.next_offset.entry(partition.to_owned()).or_insert(0);
        self.log.push(Logged {
            partition: partition.to_owned(),
            offset: *next,
            payload,
        });
        *next += 1;
        self.log.len() - 1
    }

    /// Applies the entries from index `from` on, as one batch and one event at a time.
    fn apply(&mut self, from: usize) -> Result<(), TestCaseError> {
        let mut expected = Vec::new();
        for logged in &self.log[from..] {
            let event: Event = serde_json::from_slice(&logged.payload).expect("an event");
            if self.seen.insert(event.id) {
                let outcome = self.memory.fold(&event.data);
                expected.push((event.id, outcome));
                invariants(&self.memory, &mut self.administered_in_memory)
                    .map_err(|e| fail(format!("in memory, after {:?}: {e}", event.data)))?;
            }
        }
        let entries: Vec<Entry> = self.log[from..].iter().map(Logged::entry).collect();
        let decided = apply_batch(&mut self.read_model, &entries).expect("applying a batch");
        prop_assert_eq!(&decided, &expected, "outcomes: projector vs memory");
        self.outcomes.extend(decided);
        invariants(
            &SqliteState(&self.read_model),
            &mut self.administered_in_sqlite,
        )
        .map_err(|e| fail(format!("in the read model: {e}")))?;
        Ok(())
    }

    /// Replays the whole log into a fresh read model, `size` entries a batch; its dump.
    fn replay(&self, name: &str, size: usize) -> Result<String, TestCaseError> {
        let mut conn =
            read_model::open_for_writing(&self.dir.path().join(name)).expect("a second read model");
        let mut decided = Vec::new();
        for chunk in self.log.chunks(size) {
            let entries: Vec<Entry> = chunk.iter().map(Logged::entry).collect();
            decided.extend(apply_batch(&mut conn, &entries).expect("replaying a batch"));
        }
        prop_assert_eq!(&decided, &self.outcomes, "outcomes of a replay by {}", size);
        Ok(read_model::dump(&conn).expect("a dump"))
    }

    /// The positions the read model stored: the last offset of each partition.
    fn positions(&self) -> BTreeMap<String, i64> {
        let mut statement = self
            .read_model
            .prepare("SELECT partition, offset FROM positions")
            .expect("a positions query");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("reading positions")
            .collect::<rusqlite::Result<_>>()
            .expect("reading positions")
    }

    fn expected_positions(&self) -> BTreeMap<String, i64> {
        self.log
            .iter()
            .map(|logged| (logged.partition.clone(), logged.offset))
            .collect()
    }
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

fn refused(result: Result<Vec<EventData>, Refusal>) -> Result<Vec<EventData>, DomainError> {
    result.map_err(|refusal| match refusal {
        Refusal::Domain(reason) => reason,
        Refusal::Store(error) => panic!("the store failed: {error:#}"),
    })
}

// ---- what must hold --------------------------------------------------------------------

/// No group is below itself, and a system group that has had a member (directly or
/// through its child groups) still has one. Walks the state itself, trusting no check.
fn invariants(state: &impl State, administered: &mut BTreeSet<Uuid>) -> Result<(), String> {
    let groups: Vec<_> = group_ids()
        .filter_map(|id| {
            state
                .group(&GroupIdentifier::Id(id))
                .expect("reading a group")
        })
        .collect();
    for group in &groups {
        let below = below(state, group.id);
        if below.contains(&group.id) {
            return Err(format!("{} is below itself", group.name));
        }
        if group.group_type != GroupType::Sys {
            continue;
        }
        let has_member = std::iter::once(group.id)
            .chain(below)
            .any(|id| !state.members_of(id).expect("reading members").is_empty());
        if has_member {
            administered.insert(group.id);
        } else if administered.contains(&group.id) {
            return Err(format!("{} was left without a member", group.name));
        }
    }
    Ok(())
}

/// The groups below `group` at any depth.
fn below(state: &impl State, group: Uuid) -> BTreeSet<Uuid> {
    let mut found = BTreeSet::new();
    let mut todo = vec![group];
    while let Some(parent) = todo.pop() {
        for child in state.children_of(parent).expect("reading child groups") {
            if found.insert(child.id) {
                todo.push(child.id);
            }
        }
    }
    found
}

/// Every question the `State` trait answers, over every id and name of the world, with
/// its answer.
fn observe(state: &impl State) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut ask = |question: String, answer: String| seen.push((question, answer));
    for index in 0..GROUP_NAMES.len() {
        let id = GroupIdentifier::Name(group_name(index));
        ask(format!("group({id})"), format!("{:?}", state.group(&id)));
    }
    for index in 0..USERNAMES.len() {
        let id = UserIdentifier::Username(username(index));
        ask(format!("user({id})"), format!("{:?}", state.user(&id)));
    }
    for index in 0..EMAILS.len() {
        let id = UserIdentifier::Email(email(index));
        ask(format!("user({id})"), format!("{:?}", state.user(&id)));
    }
    for user in user_ids() {
        let id = UserIdentifier::Id(user);
        ask(format!("user({id})"), format!("{:?}", state.user(&id)));
        ask(
            format!("groups_of({user})"),
            format!("{:?}", state.groups_of(user)),
        );
        ask(
            format!("left_empty(User({user}))"),
            format!("{:?}", state.left_empty(&Removal::User(user))),
        );
    }
    ask(
        "left_empty(Nothing)".into(),
        format!("{:?}", state.left_empty(&Removal::Nothing)),
    );
    for group in group_ids() {
        let id = GroupIdentifier::Id(group);
        ask(format!("group({id})"), format!("{:?}", state.group(&id)));
        ask(
            format!("members_of({group})"),
            format!("{:?}", state.members_of(group)),
        );
        ask(
            format!("children_of({group})"),
            format!("{:?}", state.children_of(group)),
        );
        ask(
            format!("parents_of({group})"),
            format!("{:?}", state.parents_of(group)),
        );
        ask(
            format!("left_empty(Group({group}))"),
            format!("{:?}", state.left_empty(&Removal::Group(group))),
        );
        for user in user_ids() {
            ask(
                format!("is_direct_member({group}, {user})"),
                format!("{:?}", state.is_direct_member(group, user)),
            );
            ask(
                format!("member_through({group}, {user})"),
                format!("{:?}", state.member_through(group, user)),
            );
            ask(
                format!("left_empty(Member({group}, {user}))"),
                format!("{:?}", state.left_empty(&Removal::Member { group, user })),
            );
        }
        for other in group_ids() {
            ask(
                format!("is_direct_child({group}, {other})"),
                format!("{:?}", state.is_direct_child(group, other)),
            );
            ask(
                format!("is_below({other}, {group})"),
                format!("{:?}", state.is_below(other, group)),
            );
            let removal = Removal::Child {
                parent: group,
                child: other,
            };
            ask(
                format!("left_empty(Child({group}, {other}))"),
                format!("{:?}", state.left_empty(&removal)),
            );
        }
    }
    seen
}

/// The questions two states answer differently, with both answers.
fn differences(memory: &impl State, sqlite: &impl State) -> Vec<String> {
    observe(memory)
        .into_iter()
        .zip(observe(sqlite))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((question, a), (_, b))| format!("{question}: memory {a}, read model {b}"))
        .collect()
}

fn check(steps: &[Step], replay_size: usize) -> Result<(), TestCaseError> {
    let mut run = Run::new();
    for step in prelude().iter().chain(steps) {
        run.step(step)?;
    }
    let differ = differences(&run.memory, &SqliteState(&run.read_model));
    prop_assert!(
        differ.is_empty(),
        "the states differ:\n{}",
        differ.join("\n")
    );
    prop_assert_eq!(run.positions(), run.expected_positions());

    let dump = read_model::dump(&run.read_model).expect("a dump");
    prop_assert_eq!(&run.replay("by-size.db", replay_size)?, &dump);
    prop_assert_eq!(&run.replay("at-once.db", run.log.len().max(1))?, &dump);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_projector_and_the_memory_model_fold_any_log_alike(
        steps in proptest::collection::vec(step(), 0..30),
        replay_size in 1..8usize,
    ) {
        check(&steps, replay_size)?;
    }
}
