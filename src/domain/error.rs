//! Why a command is refused, or an event rejected. One table gives each reason its message
//! and its stable code, the Error body's `data.code` and the outcome stored for a rejected
//! event; the enum, `code`, `from_code` and the list of every reason are made from it, so
//! a reason cannot have a code in one place and lack it in another.

use super::ids::GroupName;

/// The most memberships and nestings one deletion ends, each an event: enough for any
/// group people manage by hand, and few enough to append and apply within a request.
pub const LINKS_PER_DELETION_MAX: usize = 10_000;

/// `Variant { field: Type = its value in [`DomainError::every`] } => "Code", "message";`
macro_rules! domain_errors {
    ($(
        $(#[$meta:meta])*
        $variant:ident $({ $($(#[$field_meta:meta])* $field:ident: $type:ty = $empty:expr),+ $(,)? })?
            => $code:literal, $message:literal;
    )*) => {
        /// Why a command is refused, or an event rejected.
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum DomainError {
            $(
                $(#[$meta])*
                #[error($message)]
                $variant $({ $($(#[$field_meta])* $field: $type),+ })?,
            )*
        }

        impl DomainError {
            /// A stable name for the error: the Error body's `data.code`, and the outcome
            /// stored for a rejected event.
            pub fn code(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => $code, )*
                }
            }

            /// One of each reason, with empty details, in the table's order.
            pub fn every() -> Vec<Self> {
                vec![ $( Self::$variant $({ $($field: $empty),+ })?, )* ]
            }
        }
    };
}

domain_errors! {
    GroupNotFound => "GroupNotFound", "the group was not found";
    UserNotFound => "UserNotFound", "the user was not found";
    /// A bulk call's refusal; its code is the single one's.
    GroupsNotFound {
        /// The identifiers that matched no group, as given.
        missing: Vec<String> = Vec::new(),
    } => "GroupNotFound", "some of the groups were not found";
    UsersNotFound {
        /// The identifiers that matched no user, as given.
        missing: Vec<String> = Vec::new(),
    } => "UserNotFound", "some of the users were not found";
    UserNotInGroup {
        /// Set when the user belongs to the group only through this child group.
        inherited_through: Option<GroupName> = None,
    } => "UserNotInGroup", "the user is not a direct member of the group";
    AlreadyMember => "AlreadyMember", "the user is already a direct member of the group";
    GroupCycle => "GroupCycle", "the group would end up inside itself";
    GroupNotChild => "GroupNotChild", "the group is not a direct child of the group";
    LastAdministrator => "LastAdministrator", "the group would be left without a member";
    UsernameTaken => "UsernameTaken", "the username is taken";
    EmailTaken => "EmailTaken", "the email is taken";
    GroupNameTaken => "GroupNameTaken", "the group name is taken";
    IdTaken => "IdTaken", "the id is taken";
    SystemGroup => "SystemGroup", "a system group cannot be renamed, retyped or deleted";
    MembershipsRemain => "MembershipsRemain", "the user or group still has memberships";
    TooManyLinks => "TooManyLinks",
        "the deletion would end more than {LINKS_PER_DELETION_MAX} memberships and nestings at once: remove some first";
    VersionMismatch => "VersionMismatch",
        "the group changed since the version the request was made for";
    DuplicateRequest => "DuplicateRequest",
        "an earlier request with the same idempotency key got there first";
    StatusUnchanged => "StatusUnchanged", "the user already has that status";
    OwnStatus => "OwnStatus", "a user cannot suspend or reinstate itself";
}

impl DomainError {
    /// The error a stored outcome code names, with none of its details: the first of the
    /// table with that code (a bulk refusal shares its code with the single one).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::every().into_iter().find(|error| error.code() == code)
    }

    /// Whether an event rejected for this reason found the state it was to make: the
    /// member or child group already there, or already gone.
    pub fn is_already_so(&self) -> bool {
        matches!(
            self,
            Self::AlreadyMember
                | Self::UserNotInGroup { .. }
                | Self::GroupNotChild
                | Self::StatusUnchanged
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Outcome;

    #[test]
    fn every_code_names_its_reason_back() {
        for error in DomainError::every() {
            let code = error.code();
            let named = DomainError::from_code(code).unwrap_or_else(|| panic!("{code}"));
            assert_eq!(named.code(), code);
            let outcome = Outcome::Rejected(error.clone());
            assert_eq!(
                Outcome::from_code(outcome.code()),
                Some(Outcome::Rejected(named))
            );
        }
        assert_eq!(
            Outcome::from_code(Outcome::Applied.code()),
            Some(Outcome::Applied)
        );
        assert_eq!(DomainError::from_code("NoSuchReason"), None);
    }

    #[test]
    fn codes_are_shared_only_by_a_bulk_refusal_and_its_single_one() {
        let every = DomainError::every();
        for (i, error) in every.iter().enumerate() {
            let first = every.iter().position(|e| e.code() == error.code());
            if first != Some(i) {
                assert!(
                    matches!(
                        error,
                        DomainError::GroupsNotFound { .. } | DomainError::UsersNotFound { .. }
                    ),
                    "{error:?} shares its code"
                );
            }
        }
    }
}
