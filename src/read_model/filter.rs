//! A filter over users or groups, as a list may ask for one, compiled to SQL: `eq` on an
//! indexed attribute (username, email, group name, external id, id) reads its index;
//! other comparisons read the rows the list already covers. Text compares in lower case
//! unless the attribute is case-exact (ids and external ids).

use rusqlite::types::Value as Sql;

/// The attributes a filter may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    Id,
    /// A user's username.
    Username,
    /// A user's email.
    Email,
    GivenName,
    FamilyName,
    /// A user who is not suspended.
    Active,
    /// A group's name.
    Name,
    /// A user's or a group's id in an identity provider.
    ExternalId,
    /// The name an identity provider shows for a user.
    DisplayName,
    Created,
    Modified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(Attribute, Op, Operand),
    Present(Attribute),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// What a filter cannot ask of the list it is for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unanswerable(pub String);

/// Which rows a filter runs over: users (`u`) or groups (`g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Users,
    Groups,
}

/// How a column compares text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// As stored: external ids, times.
    Exact,
    /// An id, stored as its 16 bytes and compared as its text (lower case, with hyphens).
    Id,
    /// A key stored in (Unicode) lower case: usernames, emails, group names.
    Key,
    /// Folded by SQLite's `lower`, which folds ASCII letters only: names in the profile.
    Ascii,
}

impl Case {
    fn fold(self, text: &str) -> String {
        match self {
            Self::Exact | Self::Id => text.to_owned(),
            Self::Key => text.to_lowercase(),
            Self::Ascii => text.to_ascii_lowercase(),
        }
    }
}

/// A user's external id, as the index `users_by_external_id` has it.
const USER_EXTERNAL_ID: &str = "json_extract(u.profile, '$.externalId')";

/// An attribute's column, and how it compares.
fn column(over: Over, attribute: Attribute) -> Result<(&'static str, Case), Unanswerable> {
    use Attribute as A;
    use Case::{Ascii, Exact, Id, Key};
    Ok(match (over, attribute) {
        (Over::Users, A::Id) => ("u.id", Id),
        (Over::Users, A::Username) => ("u.username_key", Key),
        (Over::Users, A::Email) => ("u.email_key", Key),
        (Over::Users, A::GivenName) => ("lower(json_extract(u.profile, '$.firstname'))", Ascii),
        (Over::Users, A::FamilyName) => ("lower(json_extract(u.profile, '$.lastname'))", Ascii),
        (Over::Users, A::ExternalId) => (USER_EXTERNAL_ID, Exact),
        (Over::Users, A::DisplayName) => ("lower(json_extract(u.profile, '$.displayName'))", Ascii),
        (Over::Users, A::Created) => ("u.created", Exact),
        (Over::Users, A::Modified) => ("u.modified", Exact),
        (Over::Groups, A::Id) => ("g.id", Id),
        (Over::Groups, A::Name) => ("g.name_key", Key),
        (Over::Groups, A::ExternalId) => ("g.external_id", Exact),
        (Over::Groups, A::Created) => ("g.created", Exact),
        (_, other) => {
            return Err(Unanswerable(format!(
                "{other:?} cannot be filtered on here"
            )));
        }
    })
}

/// The filter as an SQL condition whose parameters are numbered from `first`, and those
/// parameters, in order.
pub fn compile(
    filter: &Filter,
    over: Over,
    first: usize,
) -> Result<(String, Vec<Sql>), Unanswerable> {
    let mut params = Vec::new();
    let sql = condition(filter, over, first, &mut params)?;
    Ok((sql, params))
}

fn condition(
    filter: &Filter,
    over: Over,
    first: usize,
    params: &mut Vec<Sql>,
) -> Result<String, Unanswerable> {
    let joined = |items: &[Filter], with: &str, params: &mut Vec<Sql>| {
        let parts = (items.iter())
            .map(|item| condition(item, over, first, params))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, Unanswerable>(format!("({})", parts.join(with)))
    };
    match filter {
        Filter::And(items) => joined(items, " AND ", params),
        Filter::Or(items) => joined(items, " OR ", params),
        Filter::Not(inner) => Ok(format!("NOT ({})", condition(inner, over, first, params)?)),
        Filter::Present(Attribute::Active) if over == Over::Users => Ok("1".into()),
        Filter::Present(attribute) => match column(over, *attribute)? {
            (column, Case::Id) => Ok(format!("({column} IS NOT NULL)")),
            (column, _) => Ok(format!("({column} IS NOT NULL AND {column} <> '')")),
        },
        Filter::Compare(Attribute::Active, op, operand) if over == Over::Users => {
            active(*op, operand)
        }
        Filter::Compare(attribute, op, operand) => {
            let (column, case) = column(over, *attribute)?;
            let Operand::Text(text) = operand else {
                return Err(Unanswerable(format!("{attribute:?} is compared with text")));
            };
            let text = case.fold(text);
            let at = first + params.len();
            // An id's `eq` and `ne` compare its stored bytes, by key; the rest its text.
            let by_key = case == Case::Id && matches!(op, Op::Eq | Op::Ne);
            let column = match case {
                Case::Id if !by_key => id_text(column),
                _ => column.to_owned(),
            };
            let like = |pattern: String| (format!("{column} LIKE ?{at} ESCAPE '\\'"), pattern);
            // `LIKE` ignores ASCII case: a case-exact column matches its parts by position.
            let (sql, value) = match (op, case) {
                (Op::Co, Case::Exact | Case::Id) => (format!("instr({column}, ?{at}) > 0"), text),
                (Op::Sw, Case::Exact | Case::Id) => {
                    let sql = format!("substr({column}, 1, length(?{at})) = ?{at}");
                    (sql, text)
                }
                (Op::Ew, Case::Exact | Case::Id) => {
                    (format!("substr({column}, -length(?{at})) = ?{at}"), text)
                }
                (Op::Co, _) => like(format!("%{}%", escape(&text))),
                (Op::Sw, _) => like(format!("{}%", escape(&text))),
                (Op::Ew, _) => like(format!("%{}", escape(&text))),
                (Op::Eq, _) => (format!("{column} = ?{at}"), text),
                (Op::Ne, _) => (format!("{column} IS NOT ?{at}"), text),
                (Op::Gt, _) => (format!("{column} > ?{at}"), text),
                (Op::Ge, _) => (format!("{column} >= ?{at}"), text),
                (Op::Lt, _) => (format!("{column} < ?{at}"), text),
                (Op::Le, _) => (format!("{column} <= ?{at}"), text),
            };
            params.push(if by_key {
                id_value(value)
            } else {
                Sql::Text(value)
            });
            Ok(sql)
        }
    }
}

/// What an id compares with by key: its bytes, if `text` is an id as the service writes
/// one (lower case, with hyphens); otherwise the text, which equals no id.
fn id_value(text: String) -> Sql {
    match uuid::Uuid::try_parse(&text) {
        Ok(id) if id.to_string() == text => Sql::Blob(id.as_bytes().to_vec()),
        _ => Sql::Text(text),
    }
}

/// An id's column read as the text the service writes (lower case, with hyphens), for
/// the comparisons that are not by key.
fn id_text(column: &str) -> String {
    let hex = format!("lower(hex({column}))");
    format!(
        "(substr({hex}, 1, 8) || '-' || substr({hex}, 9, 4) || '-' || substr({hex}, 13, 4) \
         || '-' || substr({hex}, 17, 4) || '-' || substr({hex}, 21))"
    )
}

/// `active eq true` and the like: a user who is not suspended.
fn active(op: Op, operand: &Operand) -> Result<String, Unanswerable> {
    let Operand::Bool(wanted) = operand else {
        return Err(Unanswerable("active is compared with true or false".into()));
    };
    match op {
        Op::Eq => Ok(format!("(NOT u.suspended) = {}", i32::from(*wanted))),
        Op::Ne => Ok(format!("(NOT u.suspended) <> {}", i32::from(*wanted))),
        _ => Err(Unanswerable("active takes eq or ne".into())),
    }
}

/// `text` with `LIKE`'s wildcards and escape character escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_compiles_to_numbered_parameters_in_lower_case_where_not_exact() {
        let filter = Filter::Or(vec![
            Filter::Compare(Attribute::Username, Op::Eq, Operand::Text("TDurden".into())),
            Filter::Not(Box::new(Filter::Compare(
                Attribute::Email,
                Op::Sw,
                Operand::Text("T_".into()),
            ))),
        ]);
        let (sql, params) = compile(&filter, Over::Users, 3).unwrap();
        assert_eq!(
            sql,
            "(u.username_key = ?3 OR NOT (u.email_key LIKE ?4 ESCAPE '\\'))"
        );
        assert_eq!(
            params,
            [Sql::Text("tdurden".into()), Sql::Text("t\\_%".into())]
        );
    }

    #[test]
    fn an_attribute_the_rows_do_not_have_is_unanswerable() {
        let filter = Filter::Present(Attribute::DisplayName);
        assert!(compile(&filter, Over::Groups, 1).is_err());
        let filter = Filter::Compare(Attribute::Active, Op::Gt, Operand::Bool(true));
        assert!(compile(&filter, Over::Users, 1).is_err());
    }
}
