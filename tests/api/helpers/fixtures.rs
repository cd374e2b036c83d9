//! What tests set up again and again: the seed page's group and user, users of their own
//! with a password and a token, and new users and groups known by their ids.

use std::future::Future;
use std::panic::Location;

use uuid::Uuid;

use super::{Caller, SEED_EMAIL, SEED_GROUP, SEED_PASSWORD, SEED_USERNAME, TestApp, uuid_field};

/// The password of the users `user_with_token` makes.
pub const PASSWORD: &str = "his-name-was-robert";
/// A password to change theirs to.
pub const NEW_PASSWORD: &str = "a-copy-of-a-copy";

/// The seed page's group and user, the user a member of the group.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub group_id: Uuid,
    pub user_id: Uuid,
}

/// A user a test made, with the password [`PASSWORD`] and a token of its own: no administrator unless
/// the test makes it one. Pass it as the `auth` of a request to send it as that user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub token: String,
}

impl TestApp {
    /// The seed page's group and user, with the user a member of the group.
    #[track_caller]
    pub fn seed(&self) -> impl Future<Output = Seed> {
        self.seed_at(Location::caller())
    }

    pub async fn seed_at(&self, caller: Caller) -> Seed {
        let group = self.create_group_at(SEED_GROUP, caller).await;
        let user =
            (self.create_user_at(SEED_USERNAME, SEED_EMAIL, Some(SEED_PASSWORD), caller)).await;
        let seed = Seed {
            group_id: uuid_field(&group, "id"),
            user_id: uuid_field(&user, "id"),
        };
        let (group, user) = (seed.group_id.to_string(), seed.user_id.to_string());
        self.add_member_at(&group, &user, caller).await;
        seed
    }

    /// A user `username` (email `<username>@fightclub.com`, password [`PASSWORD`]) with a
    /// token it got by the password grant.
    #[track_caller]
    pub fn user_with_token(&self, username: &str) -> impl Future<Output = TestUser> {
        let email = format!("{username}@fightclub.com");
        let caller = Location::caller();
        async move {
            let user = self
                .create_user_at(username, &email, Some(PASSWORD), caller)
                .await;
            let token = self.token_for_at(username, PASSWORD, caller).await;
            TestUser {
                id: uuid_field(&user, "id"),
                username: username.to_owned(),
                email,
                token,
            }
        }
    }

    /// A new user without a password (email `<username>@fightclub.com`); its id, as text,
    /// as it goes in paths and JSON.
    #[track_caller]
    pub fn new_user(&self, username: &str) -> impl Future<Output = String> {
        let email = format!("{username}@fightclub.com");
        let caller = Location::caller();
        async move {
            let user = self.create_user_at(username, &email, None, caller).await;
            uuid_field(&user, "id").to_string()
        }
    }

    /// A new group; its id, as text.
    #[track_caller]
    pub fn new_group(&self, name: &str) -> impl Future<Output = String> {
        let caller = Location::caller();
        async move {
            let group = self.create_group_at(name, caller).await;
            uuid_field(&group, "id").to_string()
        }
    }
}
