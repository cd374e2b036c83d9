//! An in-memory state: the reference the SQLite read model is checked against, and the
//! ground the domain's given / when / then tests stand on.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::decide::{Outcome, apply};
use super::event::{EventData, GroupCreated, UserCreated};
use super::ids::{GroupIdentifier, UserIdentifier};
use super::state::{GroupRef, State, UserRef};

#[derive(Debug, Default)]
pub struct MemoryState {
    users: BTreeMap<Uuid, UserCreated>,
    groups: BTreeMap<Uuid, GroupCreated>,
    members: BTreeSet<(Uuid, Uuid)>,
    children: BTreeSet<(Uuid, Uuid)>,
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

    pub fn fold(&mut self, event: &EventData) -> Outcome {
        let outcome = apply(self, event).expect("memory never fails");
        if outcome == Outcome::Applied {
            match event {
                EventData::UserCreated(e) => {
                    self.users.insert(e.user_id, e.clone());
                }
                EventData::GroupCreated(e) => {
                    self.groups.insert(e.group_id, e.clone());
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

    fn descendants(&self, group: Uuid) -> BTreeSet<Uuid> {
        self.descendants_without(group, None)
    }

    /// The groups below `group`, not following the edge `skip` (parent, child).
    fn descendants_without(&self, group: Uuid, skip: Option<(Uuid, Uuid)>) -> BTreeSet<Uuid> {
        let mut found = BTreeSet::new();
        let mut todo = vec![group];
        while let Some(parent) = todo.pop() {
            for &(p, child) in &self.children {
                if p == parent && Some((p, child)) != skip && found.insert(child) {
                    todo.push(child);
                }
            }
        }
        found
    }

    fn group_ref(&self, g: &GroupCreated) -> GroupRef {
        GroupRef {
            id: g.group_id,
            name: g.name.clone(),
            group_type: g.group_type,
        }
    }
}

impl State for MemoryState {
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
        Ok(found.map(|u| UserRef {
            id: u.user_id,
            username: u.username.clone(),
            email: u.email.clone(),
        }))
    }

    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        Ok(self.members.contains(&(group, user)))
    }

    fn member_through(&self, group: Uuid, user: Uuid) -> anyhow::Result<Option<GroupRef>> {
        let through = self
            .descendants(group)
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
        Ok(self.descendants(ancestor).contains(&group))
    }

    fn has_member_without_child(&self, group: Uuid, child: Uuid) -> anyhow::Result<bool> {
        let mut groups = self.descendants_without(group, Some((group, child)));
        groups.insert(group);
        Ok(self.members.iter().any(|(g, _)| groups.contains(g)))
    }

    fn has_member_other_than(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
        let mut groups = self.descendants(group);
        groups.insert(group);
        Ok(self
            .members
            .iter()
            .any(|(g, u)| groups.contains(g) && *u != user))
    }
}
