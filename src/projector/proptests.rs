//! Property tests of the projector. Random requests over a small world of users and
//! groups (some with `If-Match` or an idempotency key, some decided on the same state
//! before any of their events is applied: races), with some events delivered twice, are
//! folded by `apply_batch` into a SQLite read model and by `MemoryState` in memory. The two
//! folds must agree event by event and in what they end with; a replay in other batches,
//! or reading one stream before the other, must build the same read model; and the
//! invariants must hold after every event.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use rusqlite::Connection;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use super::{apply_batch, apply_mirrored, decode, finish_mirrored};
use crate::domain::memory::MemoryState;
use crate::domain::{
    Actor, Command, Custom, DomainError, Email, Event, EventData, ExpectedVersion, GroupIdentifier,
    GroupName, GroupType, IDEMPOTENCY_KEY_TTL, MemberChange, Metadata, NewGroup, NewUser, Outcome,
    Profile, Refusal, Removal, Set, State, UserIdentifier, Username, apply_event, decide,
    expect_version, key_events,
};
use crate::log::{Entry, Position, Stream};
use crate::read_model::{self, Mirror, SqliteState};

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
/// Idempotency keys are used by the first users (by slot), each from a few keys.
const KEY_ACTORS: usize = 2;
const KEYS: u8 = 3;
/// The slots the prelude fills, of groups and of users alike.
const STARTING_SLOTS: usize = 3;

fn group_id(slot: usize) -> Uuid {
    Uuid::from_u128(0x6000 + slot as u128)
}

fn user_id(slot: usize) -> Uuid {
    Uuid::from_u128(0x7000 + slot as u128)
}

fn key_name(key: u8) -> String {
    format!("key-{key}")
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
        suspended: Option<bool>,
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
    /// A SCIM PATCH or PUT of members: adds and removes, or a replacement.
    ChangeMembers {
        group: GroupSpec,
        add: Vec<UserSpec>,
        remove: Vec<UserSpec>,
        replace: bool,
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
                    scopes: Vec::new(),
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
                    external_id: None,
                },
                members: Vec::new(),
            },
            Self::UpdateUser {
                user,
                username: name,
                email: address,
                firstname,
                suspended,
            } => Command::UpdateUser {
                user: user.identifier(),
                username: username(name),
                email: email(address),
                profile: Profile {
                    firstname: firstname.map(|n| format!("First {n}")),
                    ..Profile::default()
                },
                provisioned: Set::Keep,
                suspended,
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
                    external_id: None,
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
            Self::ChangeMembers {
                group,
                add,
                remove,
                replace,
            } => {
                let add: Vec<_> = add.into_iter().map(UserSpec::identifier).collect();
                let remove = remove.into_iter().map(UserSpec::identifier).collect();
                Command::ChangeGroup {
                    group: group.identifier(),
                    name: Set::Keep,
                    external_id: Set::Keep,
                    members: match replace {
                        true => MemberChange::Replace(add),
                        false => MemberChange::Edit { add, remove },
                    },
                }
            }
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

/// A command as a client sends it: perhaps with `If-Match` naming the version its group
/// has when the command is decided, perhaps with an `Idempotency-Key` (an actor's key).
#[derive(Debug, Clone)]
struct Request {
    op: Op,
    if_match: bool,
    /// The actor (a user slot) and the key's number.
    key: Option<(usize, u8)>,
}

impl Request {
    fn plain(op: Op) -> Self {
        Self {
            op,
            if_match: false,
            key: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A request decided on the state and applied before the next step.
    One(Request),
    /// Requests decided on the same state before any of their events is applied. The log
    /// interleaves their events as `picks` says (each pick takes the next event of one
    /// request, by index among those with events left); each request's own events keep
    /// their order.
    Race(Vec<Request>, Vec<usize>),
    /// An entry already in the log delivered again, at a new position.
    Redeliver(Index),
    /// Time passes, this many seconds: idempotency keys expire.
    Later(i64),
}

/// What every sequence starts with: System Administrators with two members, and two more
/// groups, one inside the other, and users with a few memberships. The last slots are
/// left for the sequence to fill.
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
    for (group, user) in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)] {
        ops.push(Op::AddMember {
            group: GroupSpec::Id(group),
            user: UserSpec::Id(user),
        });
    }
    ops.push(Op::AddChildGroup {
        group: GroupSpec::Id(1),
        child: GroupSpec::Id(2),
    });
    ops.into_iter()
        .map(|op| Step::One(Request::plain(op)))
        .collect()
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
            proptest::option::of(proptest::bool::ANY),
        )
            .prop_map(
                |(user, username, email, firstname, suspended)| Op::UpdateUser {
                    user,
                    username,
                    email,
                    firstname,
                    suspended,
                }
            ),
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
        2 => (
            group_spec(),
            proptest::collection::vec(user_spec(), 0..3),
            proptest::collection::vec(user_spec(), 0..3),
            proptest::bool::ANY,
        )
            .prop_map(|(group, add, remove, replace)| Op::ChangeMembers {
                group,
                add,
                remove,
                replace,
            }),
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

/// Commands that conflict when decided on the same state: each can pass alone, and
/// applying one may reject another.
fn contested() -> impl Strategy<Value = Vec<Op>> {
    let g = group_spec;
    let u = user_spec;
    let add_child = |group, child| Op::AddChildGroup { group, child };
    let sys = GroupSpec::Id(0);
    prop_oneof![
        // Nestings that would close a cycle together.
        (g(), g()).prop_map(move |(a, b)| vec![add_child(a, b), add_child(b, a)]),
        (g(), g(), g()).prop_map(move |(a, b, c)| vec![
            add_child(a, b),
            add_child(b, c),
            add_child(c, a)
        ]),
        // Taking away administrators by different paths.
        (u(), u()).prop_map(move |(a, b)| vec![
            Op::RemoveMember {
                group: sys,
                user: a
            },
            Op::RemoveMember {
                group: sys,
                user: b
            },
        ]),
        (g(), u(), u()).prop_map(move |(child, a, b)| vec![
            Op::RemoveMember {
                group: sys,
                user: a
            },
            Op::RemoveMember {
                group: child,
                user: b
            },
            Op::RemoveChildGroup { group: sys, child },
        ]),
        (u(), u()).prop_map(|(a, b)| vec![Op::DeleteUser { user: a }, Op::DeleteUser { user: b }]),
        (g(), u()).prop_map(move |(group, user)| vec![
            Op::DeleteGroup { group },
            Op::DeleteUser { user },
            Op::RemoveMember { group: sys, user },
        ]),
        // A deletion and a new link to what it deletes.
        (g(), u()).prop_map(|(group, user)| vec![
            Op::DeleteGroup { group },
            Op::AddMember { group, user },
        ]),
        (g(), g()).prop_map(move |(group, child)| vec![
            Op::DeleteGroup { group: child },
            add_child(group, child),
        ]),
        (g(), u())
            .prop_map(
                |(group, user)| vec![Op::DeleteUser { user }, Op::AddMember { group, user },]
            ),
        // Two claims on one name.
        (u(), u(), 0..USERNAMES.len(), 0..EMAILS.len()).prop_map(|(a, b, username, email)| {
            let update = |user| Op::UpdateUser {
                user,
                username,
                email,
                firstname: None,
                suspended: None,
            };
            vec![update(a), update(b)]
        }),
        (g(), 0..GROUP_NAMES.len()).prop_map(|(group, name)| vec![
            Op::CreateGroup {
                slot: STARTING_SLOTS,
                name,
                external: false,
            },
            Op::UpdateGroup {
                group,
                name,
                group_type: None,
                description: None,
            },
        ]),
    ]
}

/// Each request with `If-Match` now and then, and now and then with one of a few keys.
fn requests(ops: impl Strategy<Value = Vec<Op>>) -> impl Strategy<Value = Vec<Request>> {
    let headers = (
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.15, (0..KEY_ACTORS, 0..KEYS)),
    );
    (ops, proptest::collection::vec(headers, 4)).prop_map(|(ops, headers)| {
        ops.into_iter()
            .zip(headers.into_iter().cycle())
            .map(|(op, (if_match, key))| Request { op, if_match, key })
            .collect()
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => requests(op().prop_map(|op| vec![op]))
            .prop_map(|mut one| Step::One(one.remove(0))),
        2 => (requests(proptest::collection::vec(op(), 2..=4)), picks())
            .prop_map(|(requests, picks)| Step::Race(requests, picks)),
        3 => (requests(contested()), picks())
            .prop_map(|(requests, picks)| Step::Race(requests, picks)),
        // The same request several times at once, as from a client retrying.
        2 => (requests(op().prop_map(|op| vec![op])), 2..=4usize, picks()).prop_map(
            |(one, copies, picks)| Step::Race(vec![one[0].clone(); copies], picks)
        ),
        1 => any::<Index>().prop_map(Step::Redeliver),
        // Half a key's time; just short of it since the request before (the next one is
        // when that one's key expires); more than it.
        2 => prop_oneof![Just(12 * HOUR), Just(KEY_TTL_S - 1), Just(KEY_TTL_S + HOUR)]
            .prop_map(Step::Later),
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
const HOUR: i64 = 3600;
/// How long an idempotency key stands, in seconds.
const KEY_TTL_S: i64 = IDEMPOTENCY_KEY_TTL.whole_seconds();

/// The first use of an idempotency key, as the log tells it: the request and its time.
type KeyUses = BTreeMap<(Uuid, String), (Uuid, OffsetDateTime)>;

/// What a request was decided into, on both states alike.
type Decided = Result<(Vec<EventData>, Option<(Uuid, u64)>), DomainError>;

/// A log, the read model the projector folds it into, and the memory state folded alike.
struct Run {
    memory: MemoryState,
    /// Event ids the memory fold has seen: a redelivery has no second effect.
    seen: HashSet<Uuid>,
    /// The idempotency rule beside the memory state, which folds events without envelopes.
    keys: KeyUses,
    log: Vec<Logged>,
    next_offset: BTreeMap<String, i64>,
    events_made: u128,
    requests_made: u128,
    /// The time of the next request.
    clock: OffsetDateTime,
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
            keys: KeyUses::new(),
            log: Vec::new(),
            next_offset: BTreeMap::new(),
            events_made: 0,
            requests_made: 0,
            clock: EPOCH,
            read_model,
            outcomes: Vec::new(),
            administered_in_memory: BTreeSet::new(),
            administered_in_sqlite: BTreeSet::new(),
            dir,
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::One(request) => {
                let events = self.decide(request)?;
                let from = self.log.len();
                self.append(events);
                self.apply(from)
            }
            Step::Race(requests, picks) => {
                let mut queues = Vec::new();
                for request in requests {
                    queues.push(self.decide(request)?.into_iter());
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
                let from = self.log.len();
                self.append(events);
                self.apply(from)
            }
            Step::Redeliver(index) => {
                if self.log.is_empty() {
                    return Ok(());
                }
                let again = self.log[index.index(self.log.len())].clone();
                let at = self.appended(&again.partition, again.payload);
                self.apply(at)
            }
            Step::Later(seconds) => {
                self.clock += time::Duration::seconds(*seconds);
                Ok(())
            }
        }
    }

    /// Decides on both states, which must decide alike: the request's events, as the
    /// service makes them.
    fn decide(&mut self, request: &Request) -> Result<Vec<Event>, TestCaseError> {
        let in_memory = decided(&self.memory, request);
        let in_sqlite = decided(&SqliteState::new(&self.read_model), request);
        prop_assert_eq!(&in_memory, &in_sqlite, "decisions on {:?}", request);
        let Ok((decided, expected)) = in_memory else {
            return Ok(Vec::new());
        };
        let correlation_id = Uuid::from_u128(0xC000_0000 + self.requests_made);
        self.requests_made += 1;
        let time = self.clock;
        self.clock += time::Duration::seconds(1);
        let (actor, key) = match request.key {
            Some((actor, key)) => (actor, Some(key_name(key))),
            None => (0, None),
        };
        let mut events: Vec<Event> = decided
            .into_iter()
            .map(|data| {
                let id = Uuid::from_u128(0xE000_0000 + self.events_made);
                self.events_made += 1;
                let meta = Metadata {
                    id,
                    time,
                    actor: Actor {
                        user_id: user_id(actor),
                        username: username(actor),
                    },
                    correlation_id,
                };
                Event::new(meta, data)
            })
            .collect();
        // As the service does: no key on the credentials stream.
        if let Some(key) = &key {
            key_events(&mut events, key, &format!("{:?}", request.op));
        }
        if let Some((group, version)) = expected {
            expect_version(
                &mut events,
                ExpectedVersion {
                    group_id: group,
                    version,
                },
            );
        }
        Ok(events)
    }

    fn append(&mut self, events: Vec<Event>) {
        for event in events {
            let partition = format!("{}/0", Stream::of(&event).name());
            let payload = serde_json::to_vec(&event).expect("an event serializes");
            self.appended(&partition, payload);
        }
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
        if from == self.log.len() {
            return Ok(());
        }
        let mut expected = Vec::new();
        for logged in &self.log[from..] {
            let event: Event = serde_json::from_slice(&logged.payload).expect("an event");
            if self.seen.insert(event.id) {
                let outcome = fold_in_memory(&mut self.memory, &mut self.keys, &event);
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
            &SqliteState::new(&self.read_model),
            &mut self.administered_in_sqlite,
        )
        .map_err(|e| fail(format!("in the read model: {e}")))?;
        Ok(())
    }

    /// Replays the whole log into a fresh read model, `size` entries a batch, mirrored as
    /// a rebuild does if `mirrored`; its dump.
    fn replay(&self, name: &str, size: usize, mirrored: bool) -> Result<String, TestCaseError> {
        let order = self.log.iter().collect();
        let (decided, dump) = self.replay_in_order(name, order, size, mirrored);
        prop_assert_eq!(&decided, &self.outcomes, "outcomes of a replay by {}", size);
        Ok(dump)
    }

    /// Replays the entries in the given order into a fresh read model, `size` entries a
    /// batch; the outcomes and the dump. `mirrored`: as a rebuild does, with a [`Mirror`]
    /// of what `apply` reads, which must end holding what the model holds.
    fn replay_in_order(
        &self,
        name: &str,
        order: Vec<&Logged>,
        size: usize,
        mirrored: bool,
    ) -> (Vec<(Uuid, Outcome)>, String) {
        let mut conn =
            read_model::open_for_writing(&self.dir.path().join(name)).expect("a second read model");
        let mut mirror = mirrored.then(Mirror::default);
        let mut decided = Vec::new();
        for chunk in order.chunks(size) {
            let entries: Vec<Entry> = chunk.iter().map(|logged| logged.entry()).collect();
            let outcomes = match &mut mirror {
                Some(mirror) => {
                    let decoded = decode(&entries).expect("decoding a batch");
                    apply_mirrored(&mut conn, &decoded, mirror)
                        .expect("replaying a batch")
                        .0
                }
                None => apply_batch(&mut conn, &entries).expect("replaying a batch"),
            };
            decided.extend(outcomes);
        }
        if let Some(mirror) = mirror {
            finish_mirrored(&mut conn, &mirror).expect("the rebuild's end");
            let held = Mirror::of(&conn).expect("what the model holds");
            assert_eq!(
                mirror, held,
                "the mirror kept beside the replay and the model"
            );
        }
        (decided, read_model::dump(&conn).expect("a dump"))
    }

    /// The log as a reader that takes the whole of `first` before the other stream sees
    /// it: each stream in its own order, none between them.
    fn stream_first(&self, first: Stream) -> Vec<&Logged> {
        let first = format!("{}/0", first.name());
        let (mut ordered, rest): (Vec<&Logged>, Vec<&Logged>) = self
            .log
            .iter()
            .partition(|logged| logged.partition == first);
        ordered.extend(rest);
        ordered
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

/// The request decided as the service decides it: with `If-Match`, on the version its
/// group has now (no such group is a refusal).
fn decided(state: &impl State, request: &Request) -> Decided {
    let refusal = |refusal| match refusal {
        Refusal::Domain(reason) => reason,
        Refusal::Store(error) => panic!("the store failed: {error:#}"),
    };
    let command = request.op.command();
    let expected = match command.group().filter(|_| request.if_match) {
        Some(group) => {
            let group = state.require_group(group).map_err(refusal)?;
            let version = state.group_version(group.id).expect("reading a version");
            Some((group.id, version.ok_or(DomainError::GroupNotFound)?))
        }
        None => None,
    };
    let events = decide(state, command).map_err(refusal)?;
    Ok((events, expected))
}

/// The outcome of `event` in the memory model, folding it there when applied. Memory
/// folds bare event data, so the envelope's rules are checked here: a key another
/// request used first within a day makes a duplicate; a version is checked on memory.
fn fold_in_memory(memory: &mut MemoryState, keys: &mut KeyUses, event: &Event) -> Outcome {
    let key = event
        .idempotency
        .as_ref()
        .map(|idempotency| (event.actor.user_id, idempotency.key.clone()));
    if let Some(key) = &key
        && let Some(&(correlation_id, time)) = keys.get(key)
        && correlation_id != event.correlation_id
        && event.time < time + IDEMPOTENCY_KEY_TTL
    {
        return Outcome::Rejected(DomainError::DuplicateRequest);
    }
    let outcome = apply_event(memory, event).expect("memory never fails");
    if outcome == Outcome::Applied {
        assert_eq!(memory.fold_event(event), Outcome::Applied);
    }
    if let Some(key) = key {
        // Kept for twice their life, and taken over once expired.
        keys.retain(|_, (_, time)| *time > event.time - IDEMPOTENCY_KEY_TTL * 2);
        let first = keys
            .entry(key)
            .or_insert((event.correlation_id, event.time));
        if first.1 <= event.time - IDEMPOTENCY_KEY_TTL {
            *first = (event.correlation_id, event.time);
        }
    }
    outcome
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
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
            format!("group_version({group})"),
            format!("{:?}", state.group_version(group)),
        );
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

/// The rows two dumps do not share, or `None` when they are equal.
fn dump_difference(expected: &str, found: &str) -> Option<String> {
    if expected == found {
        return None;
    }
    let expected: BTreeSet<&str> = expected.lines().collect();
    let found: BTreeSet<&str> = found.lines().collect();
    let only = |a: &BTreeSet<&str>, b: &BTreeSet<&str>| {
        a.difference(b).copied().collect::<Vec<_>>().join("\n  ")
    };
    Some(format!(
        "only in the first:\n  {}\nonly in the second:\n  {}",
        only(&expected, &found),
        only(&found, &expected)
    ))
}

/// Runs the steps after the prelude, checking outcomes and invariants on the way.
fn run(steps: &[Step]) -> Result<Run, TestCaseError> {
    let mut run = Run::new();
    for step in prelude().iter().chain(steps) {
        run.step(step)?;
    }
    Ok(run)
}

fn check(steps: &[Step], replay_size: usize) -> Result<(), TestCaseError> {
    let run = run(steps)?;
    let differ = differences(&run.memory, &SqliteState::new(&run.read_model));
    prop_assert!(
        differ.is_empty(),
        "the states differ:\n{}",
        differ.join("\n")
    );
    prop_assert_eq!(run.positions(), run.expected_positions());
    for actor in (0..KEY_ACTORS).map(user_id) {
        for key in (0..KEYS).map(key_name) {
            let held = SqliteState::new(&run.read_model)
                .idempotent_request(actor, &key)
                .expect("reading a key")
                .map(|first| (first.correlation_id, first.time));
            let modelled = run.keys.get(&(actor, key.clone())).copied();
            prop_assert_eq!(held, modelled, "the first use of {} by {}", key, actor);
        }
    }

    let dump = read_model::dump(&run.read_model).expect("a dump");
    let replays = [
        ("by-size.db", replay_size, false),
        ("at-once.db", run.log.len(), false),
        ("mirrored.db", replay_size, true),
    ];
    for (name, size, mirrored) in replays {
        let replayed = run.replay(name, size.max(1), mirrored)?;
        if let Some(difference) = dump_difference(&dump, &replayed) {
            prop_assert!(false, "{} by {} differs: {}", name, size, difference);
        }
    }
    Ok(())
}

/// The two streams have no order between them, and a reader may take either first: the
/// read model must not depend on it.
fn check_stream_orders(steps: &[Step], replay_size: usize) -> Result<(), TestCaseError> {
    let run = run(steps)?;
    let dump = read_model::dump(&run.read_model).expect("a dump");
    for first in [Stream::Events, Stream::Credentials] {
        for mirrored in [false, true] {
            let name = format!("{}-first-{mirrored}.db", first.name());
            let order = run.stream_first(first);
            let (_, replayed) = run.replay_in_order(&name, order, replay_size, mirrored);
            if let Some(difference) = dump_difference(&dump, &replayed) {
                prop_assert!(false, "{} read first: {}", first.name(), difference);
            }
        }
    }
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
        steps in proptest::collection::vec(step(), 0..40),
        replay_size in 1..8usize,
    ) {
        check(&steps, replay_size)?;
    }

    #[test]
    fn the_order_the_two_streams_are_read_in_changes_nothing(
        steps in proptest::collection::vec(step(), 0..40),
        replay_size in 1..8usize,
    ) {
        check_stream_orders(&steps, replay_size)?;
    }
}

/// A client's retry racing its first try on another instance: two requests under one
/// idempotency key, each creating the user (with a new id) and its password, written as
/// the service writes them. The two streams are written independently (on Kafka, two
/// topics), so the requests' events can be in one order on the events stream and in the
/// other on the credentials stream. Whichever stream an instance reads first, it must end
/// in the same state.
#[test]
fn a_retry_racing_its_first_try_ends_alike_whichever_stream_is_read_first() {
    let mut run = Run::new();
    let create = |slot| Request {
        op: Op::CreateUser {
            slot,
            username: 0,
            email: 0,
            password: true,
        },
        if_match: false,
        key: Some((0, 0)),
    };
    let first = run.decide(&create(0)).expect("decided");
    let retry = run.decide(&create(1)).expect("decided");
    let [created, password] = <[Event; 2]>::try_from(first).expect("UserCreated, PasswordSet");
    let [created_again, password_again] =
        <[Event; 2]>::try_from(retry).expect("UserCreated, PasswordSet");
    run.append(vec![created, created_again, password_again, password]);

    let (_, events_first) = run.replay_in_order(
        "events-first.db",
        run.stream_first(Stream::Events),
        1,
        false,
    );
    let (_, credentials_first) = run.replay_in_order(
        "credentials-first.db",
        run.stream_first(Stream::Credentials),
        1,
        false,
    );
    if let Some(difference) = dump_difference(&events_first, &credentials_first) {
        panic!("events read first vs credentials read first: {difference}");
    }
}

/// A batch longer than a statement's worth of appended rows (`outcomes`, `feed`) writes
/// them as batches of one do.
#[test]
fn a_long_batch_appends_what_short_ones_do() {
    let membership = || (GroupSpec::Id(1), UserSpec::Id(2));
    let steps: Vec<Step> = (0..crate::sqlite::ROWS_PER_INSERT * 3)
        .map(|n| {
            let (group, user) = membership();
            Step::One(Request::plain(if n % 2 == 0 {
                Op::AddMember { group, user }
            } else {
                Op::RemoveMember { group, user }
            }))
        })
        .collect();
    let run = run(&steps).expect("the steps run");
    assert!(
        run.log.len() > 2 * crate::sqlite::ROWS_PER_INSERT,
        "a log of {} entries",
        run.log.len()
    );
    check(&steps, 1).expect("batches of one and the whole log at once alike");
}

/// Removals decided together that would leave System Administrators' tree empty: the
/// last one applied is refused, by a rebuild's mirror too, though its group is two levels
/// below the system group.
#[test]
fn a_removal_that_would_empty_the_system_tree_from_below_is_refused_on_replay() {
    let remove = |group, user| {
        Request::plain(Op::RemoveMember {
            group: GroupSpec::Id(group),
            user: UserSpec::Id(user),
        })
    };
    let steps = vec![
        Step::One(Request::plain(Op::AddChildGroup {
            group: GroupSpec::Id(0),
            child: GroupSpec::Id(1),
        })),
        Step::One(remove(0, 0)),
        Step::One(remove(0, 1)),
        // Each alone keeps someone in the tree; together they do not.
        Step::Race(
            vec![remove(1, 1), remove(1, 2), remove(2, 2)],
            vec![0, 0, 0],
        ),
    ];
    let run = run(&steps).expect("the steps run");
    let last = run.outcomes.last().map(|(_, outcome)| outcome.clone());
    assert_eq!(
        last,
        Some(Outcome::Rejected(DomainError::LastAdministrator)),
        "the last removal"
    );
    check(&steps, 1).expect("a replay decides alike");
}
