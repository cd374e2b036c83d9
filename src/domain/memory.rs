//! An in-memory state: the reference the SQLite read model is checked against, and the
//! ground the domain's given / when / then tests stand on.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::decide::{Outcome, apply};
use super::event::{EventData, GroupDetails, GroupType, UserCreated};
use super::ids::{GroupIdentifier, UserIdentifier};
use super::state::{GroupRef, KeyUse, Reach, Removal, State, UserDetails, UserRef};

#[derive(Debug, Default)]
pub struct MemoryState {
    users: BTreeMap<Uuid, UserCreated>,
    groups: BTreeMap<Uuid, GroupDetails>,
    members: BTreeSet<(Uuid, Uuid)>,
    children: BTreeSet<(Uuid, Uuid)>,
    versions: BTreeMap<Uuid, u64>,
    last_changes: BTreeMap<Uuid, Uuid>,
    suspended: BTreeSet<Uuid>,
    revoked: BTreeSet<Uuid>,
}

impl MemoryState {
    /// Folds events in order, as the projector does.
    pub fn given(events: impl IntoIterator<Item = EventData>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.fold(&event);
        }
        state
    }

    /// Folds an event applied with its envelope: as [`Self::fold`], and notes which request
    /// last changed a group.
    pub fn fold_event(&mut self, event: &super::event::Event) -> Outcome {
        let outcome = self.fold(&event.data);
        if let (Outcome::Applied, Some(group)) = (&outcome, event.data.changed_group()) {
            self.last_changes.insert(group, event.correlation_id);
        }
        outcome
    }

    pub fn fold(&mut self, event: &EventData) -> Outcome {
        let outcome = apply(self, event).expect("memory never fails");
        if outcome == Outcome::Applied {
            if let Some(group) = event.changed_group() {
                *self.versions.entry(group).or_insert(0) += 1;
            }
            match event {
                EventData::UserCreated(e) => {
                    self.users.insert(e.user_id, e.clone());
                }
                EventData::UserUpdated(e) => {
                    let user = self.users.get_mut(&e.user_id).expect("applied");
                    user.username = e.username.clone();
                    user.email = e.email.clone();
                    user.profile = e.profile.clone();
                }
                EventData::UserDeleted(e) => {
                    self.users.remove(&e.user_id);
                    self.suspended.remove(&e.user_id);
                }
                EventData::UserSuspended(e) => {
                    self.suspended.insert(e.user_id);
                }
                EventData::UserReinstated(e) => {
                    self.suspended.remove(&e.user_id);
                }
                EventData::TokenRevoked(e) => {
                    self.revoked.insert(e.token_id);
                }
                EventData::GroupCreated(e) | EventData::GroupUpdated(e) => {
                    self.groups.insert(e.group_id, e.clone());
                }
                EventData::GroupDeleted(e) => {
                    self.groups.remove(&e.group_id);
                    self.versions.remove(&e.group_id);
                    self.last_changes.remove(&e.group_id);
                }
                EventData::MemberAdded(m) => {
                    self.members.insert((m.group_id, m.user_id));
                }
                EventData::MemberRemoved(m) => {
                    self.members.remove(&(m.group_id, m.user_id));
                }
                EventData::ChildGroupAdded(n) => {
                    self.children.insert((n.group_id, n.child_group_id));
                }
                EventData::ChildGroupRemoved(n) => {
                    self.children.remove(&(n.group_id, n.child_group_id));
                }
                EventData::PasswordSet(_) => {}
            }
        }
        outcome
    }

    /// The groups below `group`, not following the edge `skip` nor entering `skip_group`.
    fn descendants(
        &self,
        group: Uuid,
        skip: Option<(Uuid, Uuid)>,
        skip_group: Option<Uuid>,
    ) -> BTreeSet<Uuid> {
        let mut found = BTreeSet::new();
        let mut todo = vec![group];
        while let Some(parent) = todo.pop() {
            for &(p, child) in &self.children {
                if p == parent
                    && Some((p, child)) != skip
                    && Some(child) != skip_group
                    && found.insert(child)
                {
                    todo.push(child);
                }
            }
        }
        found
    }

    fn user_ref(&self, id: Uuid) -> UserRef {
        let u = &self.users[&id];
        UserRef {
            id: u.user_id,
            username: u.username.clone(),
            email: u.email.clone(),
        }
    }

    /// Group refs for ids, by name.
    fn by_name(&self, ids: impl Iterator<Item = Uuid>) -> Vec<GroupRef> {
        let mut groups: Vec<GroupRef> = ids.map(|id| self.group_ref(&self.groups[&id])).collect();
        groups.sort_by_key(|g| g.name.key());
        groups
    }

    fn group_ref(&self, g: &GroupDetails) -> GroupRef {
        GroupRef {
            id: g.group_id,
            name: g.name.clone(),
            group_type: g.group_type,
        }
    }
}

impl State for MemoryState {
    fn user_details(&self, user: Uuid) -> anyhow::Result<Option<UserDetails>> {
        Ok(self.users.get(&user).map(|u| UserDetails {
            username: u.username.clone(),
            email: u.email.clone(),
            profile: u.profile.clone(),
            suspended: self.suspended.contains(&user),
        }))
    }

    fn group_details(&self, group: Uuid) -> anyhow::Result<Option<GroupDetails>> {
        Ok(self.groups.get(&group).cloned())
    }

    fn is_token_revoked(&self, token: Uuid) -> anyhow::Result<bool> {
        Ok(self.revoked.contains(&token))
    }

    fn group(&self, id: &GroupIdentifier) -> anyhow::Result<Option<GroupRef>> {
        let found = self.groups.values().find(|g| match id {
            GroupIdentifier::Id(id) => g.group_id == *id,
            GroupIdentifier::Name(name) => g.name.key() == name.key(),
        });
        Ok(found.map(|g| self.group_ref(g)))
    }

    fn user(&self, id: &UserIdentifier) -> anyhow::Result<Option<UserRef>> {
        let found = self.users.values().find(|u| match id {
            UserIdentifier::Id(id) => u.user_id == *id,
            UserIdentifier::Username(name) => u.username.key() == name.key(),
            UserIdentifier::Email(email) => u.email.key() == email.key(),
        });
        // An email, else a username that looks like one.
        let found = found.or_else(|| match id {
            UserIdentifier::Email(email) => {
                (self.users.values()).find(|u| u.username.key() == email.key())
            }
            _ => None,
        });
        Ok(found.map(|u| self.user_ref(u.user_id)))
    }

    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        Ok(self.members.contains(&(group, user)))
    }

    /// Memory folds bare event data, without envelopes: it has no keys.
    fn idempotent_request(&self, _: Uuid, _: &str) -> anyhow::Result<Option<KeyUse>> {
        Ok(None)
    }

    fn group_version(&self, group: Uuid) -> anyhow::Result<Option<u64>> {
        Ok(self.versions.get(&group).copied())
    }

    fn last_change(&self, group: Uuid) -> anyhow::Result<Option<Uuid>> {
        Ok(self.last_changes.get(&group).copied())
    }

    fn member_through(&self, group: Uuid, user: Uuid) -> anyhow::Result<Option<GroupRef>> {
        let through = self
            .descendants(group, None, None)
            .into_iter()
            .filter(|child| self.members.contains(&(*child, user)))
            .map(|id| &self.groups[&id])
            .min_by_key(|g| g.name.key());
        Ok(through.map(|g| self.group_ref(g)))
    }

    fn is_direct_child(&self, parent: Uuid, child: Uuid) -> anyhow::Result<bool> {
        Ok(self.children.contains(&(parent, child)))
    }

    fn is_below(&self, group: Uuid, ancestor: Uuid) -> anyhow::Result<bool> {
        Ok(self.descendants(ancestor, None, None).contains(&group))
    }

    fn groups_of(&self, user: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        Ok(self.by_name(
            self.members
                .iter()
                .filter(|(_, u)| *u == user)
                .map(|(g, _)| *g),
        ))
    }

    fn members_of(&self, group: Uuid) -> anyhow::Result<Vec<UserRef>> {
        let mut users: Vec<UserRef> = self
            .members
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, u)| self.user_ref(*u))
            .collect();
        users.sort_by_key(|u| u.username.key());
        Ok(users)
    }

    fn children_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        Ok(self.by_name(
            self.children
                .iter()
                .filter(|(p, _)| *p == group)
                .map(|(_, c)| *c),
        ))
    }

    fn parents_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>> {
        Ok(self.by_name(
            self.children
                .iter()
                .filter(|(_, c)| *c == group)
                .map(|(p, _)| *p),
        ))
    }

    fn left_empty(&self, removal: &Removal) -> anyhow::Result<Option<GroupRef>> {
        let skipped = removal.skipped();
        let system = self.by_name(
            self.groups
                .values()
                .filter(|g| g.group_type == GroupType::Sys)
                .map(|g| g.group_id),
        );
        let reaches = |sys: Uuid| {
            let mut tree = self.descendants(sys, None, None);
            tree.insert(sys);
            match removal.reach() {
                Reach::Everywhere => true,
                Reach::Group(group) => tree.contains(&group),
                Reach::GroupsOf(user) => self
                    .members
                    .iter()
                    .any(|&(g, u)| u == user && tree.contains(&g)),
            }
        };
        Ok(system
            .into_iter()
            .filter(|sys| reaches(sys.id))
            .find(|sys| {
                let mut tree = self.descendants(sys.id, skipped.edge, skipped.group);
                tree.insert(sys.id);
                !self.members.iter().any(|&(g, u)| {
                    tree.contains(&g)
                        && !self.suspended.contains(&u)
                        && Some(u) != skipped.user
                        && Some((g, u)) != skipped.membership
                })
            }))
    }
}
