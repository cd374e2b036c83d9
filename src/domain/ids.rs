//! Validated names and identifiers. Each type has one fallible constructor; once a value
//! exists it is known to be well formed, so nothing downstream checks strings again.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest identifier accepted anywhere, in characters. Emails may be 254 long (RFC 5321).
pub const IDENTIFIER_MAX_CHARS: usize = 254;
/// Longest group name or username, in characters.
pub const NAME_MAX_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters long")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not start or end with white space")]
    OuterWhiteSpace,
    #[error("must not be a GUID, so that it never shadows an id")]
    LooksLikeGuid,
    #[error("must not contain '@', so that it never shadows an email")]
    ContainsAt,
    #[error("must be an address of the form local@domain")]
    NotAnEmail,
    #[error("must be valid UTF-8 text with well-formed percent-encoding")]
    BrokenEncoding,
}

/// The checks every piece of identifying text passes: not empty, bounded, printable.
/// Enough to look something up; whatever else a name must be is checked at creation, and
/// a lookup by a name nothing could be created with simply finds nothing.
fn check_text(text: &str, max_chars: usize) -> Result<(), InvalidName> {
    if text.is_empty() {
        return Err(InvalidName::Empty);
    }
    if text.chars().count() > max_chars {
        return Err(InvalidName::TooLong(max_chars));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidName::ControlCharacter);
    }
    Ok(())
}

/// Longest free-text field kept as given (first and last names, a display name, a time
/// zone, a language), in characters.
pub const TEXT_MAX_CHARS: usize = 256;

/// Free text kept as given: bounded and printable (it may be empty). Every protocol that
/// takes such a field checks it here.
pub fn check_free_text(text: &str) -> Result<(), InvalidName> {
    if text.chars().count() > TEXT_MAX_CHARS {
        return Err(InvalidName::TooLong(TEXT_MAX_CHARS));
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidName::ControlCharacter);
    }
    Ok(())
}

/// The checks a new name passes on top of [`check_text`].
fn check_new_name(text: &str, max_chars: usize) -> Result<(), InvalidName> {
    check_text(text, max_chars)?;
    if text.trim() != text {
        return Err(InvalidName::OuterWhiteSpace);
    }
    Ok(())
}

/// The Contensis API's names: no GUID, since there an identifier that parses as a GUID is
/// an id. Identity providers may name things anything (a GUID too): such a name is found
/// by id and by its other identifiers, never as a name.
fn check_plain_name(text: &str) -> Result<(), InvalidName> {
    if is_guid(text) {
        return Err(InvalidName::LooksLikeGuid);
    }
    Ok(())
}

fn is_guid(text: &str) -> bool {
    Uuid::try_parse(text).is_ok()
}

/// Names, usernames and emails are unique and matched case-insensitively through this key.
fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

macro_rules! text_newtype {
    ($name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The case-folded form under which the value is unique.
            pub fn key(&self) -> String {
                fold_case(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                Self::parse(value)
            }
        }
    };
}

text_newtype!(GroupName);
text_newtype!(Username);
text_newtype!(Email);

impl GroupName {
    /// Any name within the limits, a GUID included (see [`check_plain_name`]).
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidName> {
        let text = text.into();
        check_new_name(&text, NAME_MAX_CHARS)?;
        Ok(Self(text))
    }

    /// A name the Contensis API sets: not a GUID.
    pub fn parse_plain(text: impl Into<String>) -> Result<Self, InvalidName> {
        let name = Self::parse(text)?;
        check_plain_name(&name.0)?;
        Ok(name)
    }

    /// Whether only an identity provider may set this name: valid, but not plain.
    pub fn is_provider_only(text: &str) -> bool {
        Self::parse(text).is_ok() && Self::parse_plain(text).is_err()
    }
}

impl Username {
    /// Any name within the limits, '@' and GUIDs included: an identity provider's
    /// usernames are often addresses (Entra ID's `userPrincipalName`). A user identifier
    /// with '@' is looked up as an email first, then as a username (see
    /// [`UserIdentifier`]); the decisions keep the two from naming different users. A
    /// GUID is always looked up as an id (see [`check_plain_name`]).
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidName> {
        let text = text.into();
        check_new_name(&text, NAME_MAX_CHARS)?;
        Ok(Self(text))
    }

    /// The Contensis API's usernames: as [`Username::parse`], but no GUID and no '@', so
    /// that on that API an identifier with '@' is an email.
    pub fn parse_plain(text: impl Into<String>) -> Result<Self, InvalidName> {
        let username = Self::parse(text)?;
        check_plain_name(&username.0)?;
        if username.0.contains('@') {
            return Err(InvalidName::ContainsAt);
        }
        Ok(username)
    }

    /// Whether only an identity provider may set this username: valid, but not plain.
    pub fn is_provider_only(text: &str) -> bool {
        Self::parse(text).is_ok() && Self::parse_plain(text).is_err()
    }

    /// Whether an identifier with '@' could name this user by its username.
    pub fn looks_like_email(&self) -> bool {
        self.0.contains('@')
    }
}

impl Email {
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidName> {
        let text = text.into();
        check_text(&text, IDENTIFIER_MAX_CHARS)?;
        if text.trim() != text {
            return Err(InvalidName::OuterWhiteSpace);
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(InvalidName::NotAnEmail);
        };
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !text.chars().any(char::is_whitespace);
        if !well_formed {
            return Err(InvalidName::NotAnEmail);
        }
        Ok(Self(text))
    }
}

/// A group named by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupIdentifier {
    Id(Uuid),
    Name(GroupName),
}

impl GroupIdentifier {
    /// A GUID is an id; any other valid text is a name.
    pub fn parse(text: &str) -> Result<Self, InvalidName> {
        check_text(text, IDENTIFIER_MAX_CHARS)?;
        Ok(match Uuid::try_parse(text) {
            Ok(id) => Self::Id(id),
            Err(_) => Self::Name(GroupName(text.to_owned())),
        })
    }
}

impl fmt::Display for GroupIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Name(name) => name.fmt(f),
        }
    }
}

/// A user named by id, username or email. `Email` is any text with '@': it finds the
/// user with that email or, if none has it, the user with that username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserIdentifier {
    Id(Uuid),
    Username(Username),
    Email(Email),
}

impl UserIdentifier {
    /// A GUID is an id; other text with '@' is an email; any other text is a username.
    pub fn parse(text: &str) -> Result<Self, InvalidName> {
        check_text(text, IDENTIFIER_MAX_CHARS)?;
        Ok(if let Ok(id) = Uuid::try_parse(text) {
            Self::Id(id)
        } else if text.contains('@') {
            Self::Email(Email(text.to_owned()))
        } else {
            Self::Username(Username(text.to_owned()))
        })
    }
}

impl fmt::Display for UserIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Username(name) => name.fmt(f),
            Self::Email(email) => email.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guid_identifies_a_group_by_id_and_anything_else_by_name() {
        let id = "6254736c-70e1-43b0-b769-f8e0f6359862";
        assert_eq!(
            GroupIdentifier::parse(id),
            Ok(GroupIdentifier::Id(id.parse().unwrap()))
        );
        assert!(matches!(
            GroupIdentifier::parse("Paper Street Soap Company"),
            Ok(GroupIdentifier::Name(_))
        ));
    }

    #[test]
    fn a_user_identifier_is_an_id_an_email_or_a_username() {
        assert!(matches!(
            UserIdentifier::parse("3d063773-2ca9-4baf-90e1-ed674fa68640"),
            Ok(UserIdentifier::Id(_))
        ));
        assert!(matches!(
            UserIdentifier::parse("t.durden@fightclub.com"),
            Ok(UserIdentifier::Email(_))
        ));
        assert!(matches!(
            UserIdentifier::parse("tdurden"),
            Ok(UserIdentifier::Username(_))
        ));
    }

    #[test]
    fn identifiers_that_are_empty_too_long_or_unprintable_are_refused() {
        assert_eq!(UserIdentifier::parse(""), Err(InvalidName::Empty));
        let long = "a".repeat(IDENTIFIER_MAX_CHARS + 1);
        assert!(matches!(
            GroupIdentifier::parse(&long),
            Err(InvalidName::TooLong(_))
        ));
        assert_eq!(
            UserIdentifier::parse("tdur\u{7}den"),
            Err(InvalidName::ControlCharacter)
        );
        assert!(matches!(
            UserIdentifier::parse(" tdurden@x.com "),
            Ok(UserIdentifier::Email(_))
        ));
    }

    #[test]
    fn names_that_would_shadow_another_identifier_are_refused() {
        let guid = "6254736c-70e1-43b0-b769-f8e0f6359862";
        assert_eq!(
            GroupName::parse_plain(guid),
            Err(InvalidName::LooksLikeGuid)
        );
        assert_eq!(Username::parse_plain(guid), Err(InvalidName::LooksLikeGuid));
        assert!(GroupName::parse(guid).is_ok());
        assert!(Username::parse(guid).is_ok());
        assert_eq!(Username::parse_plain("a@b"), Err(InvalidName::ContainsAt));
        assert!(Username::parse("a@b").unwrap().looks_like_email());
        assert_eq!(Email::parse("tdurden"), Err(InvalidName::NotAnEmail));
    }

    #[test]
    fn keys_fold_case_so_that_odd_case_still_matches() {
        let a = Email::parse("T.Durden@FightClub.com").unwrap();
        let b = Email::parse("t.durden@fightclub.com").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "T.Durden@FightClub.com");
    }
}

/// A password as a user chose it, within the policy: 8 characters to 1,024 bytes. Only
/// its hash is ever kept; Debug shows nothing of it.
#[derive(Clone)]
pub struct Password(String);

/// The policy a password breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {PASSWORD_MIN_CHARS} characters to {PASSWORD_MAX_BYTES} bytes long")]
pub struct InvalidPassword;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 1024;

impl Password {
    pub fn parse(text: impl Into<String>) -> Result<Self, InvalidPassword> {
        let text = text.into();
        if text.chars().count() < PASSWORD_MIN_CHARS || text.len() > PASSWORD_MAX_BYTES {
            return Err(InvalidPassword);
        }
        Ok(Self(text))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
