//! The boundaries of ARCHITECTURE.md, checked on the source: a module that names what it
//! may not know fails this test, with the file and line. Comments are not code and are
//! not checked; names are matched as whole words, so `librdkafka` in a setting's doc is
//! not `rdkafka`.

use std::path::{Path, PathBuf};

/// One boundary: the files under `under` (minus `except`) may not name any of `names`.
struct Rule {
    under: &'static str,
    except: &'static [&'static str],
    names: &'static [&'static str],
    why: &'static str,
}

/// What a protocol may not name: it reaches the read model and the log through the service.
const STORAGE: &[&str] = &[
    "rusqlite",
    "rdkafka",
    "Connection",
    "SqliteState",
    "ReadModel",
];

const RULES: &[Rule] = &[
    Rule {
        under: "src/domain",
        except: &[],
        names: &[
            "actix_web",
            "rusqlite",
            "rdkafka",
            "tokio",
            "SystemTime",
            "Instant",
            "now_utc",
            "now_v7",
            "new_v4",
        ],
        why: "the domain is pure and synchronous: no I/O, no executor, no clock or randomness",
    },
    Rule {
        under: "src/http",
        except: &[],
        names: STORAGE,
        why: "handlers parse input and call the service; they never touch SQLite or the log",
    },
    Rule {
        under: "src/scim",
        except: &[],
        names: STORAGE,
        why: "SCIM is a protocol over the service; it never touches SQLite or the log",
    },
    Rule {
        under: "src",
        except: &["src/log/kafka.rs"],
        names: &["rdkafka"],
        why: "only the Kafka log knows rdkafka",
    },
    Rule {
        under: "src/service",
        except: &[],
        names: &["actix_web", "http", "StatusCode"],
        why: "the service knows no protocol",
    },
    Rule {
        under: "src/read_model",
        except: &[],
        names: &["http", "actix_web"],
        why: "the read model knows no protocol",
    },
    Rule {
        under: "src/projector.rs",
        except: &[],
        names: &["http", "actix_web"],
        why: "the projector knows no protocol",
    },
    Rule {
        under: "src/projector",
        except: &[],
        names: &["http", "actix_web"],
        why: "the projector knows no protocol",
    },
    Rule {
        under: "src/log",
        except: &[],
        names: &["http", "actix_web"],
        why: "the log knows no protocol",
    },
    Rule {
        under: "src/domain",
        except: &[],
        names: &["http"],
        why: "the domain knows no protocol",
    },
];

#[test]
fn no_module_names_what_its_boundary_keeps_out() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = violations(root);
    assert!(
        found.is_empty(),
        "boundaries of ARCHITECTURE.md crossed:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_crossing_is_reported_with_its_file_line_and_reason() {
    let root = tempfile::tempdir().expect("a temp dir");
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "src/domain/decide.rs",
        "//! Knows no tokio.\nuse tokio::sync::Mutex;\n",
    );
    write(
        "src/http/users.rs",
        "fn f(conn: &rusqlite::Connection) {}\n",
    );
    write(
        "src/log/kafka.rs",
        "use rdkafka::producer::FutureProducer;\n",
    );
    write(
        "src/settings.rs",
        "/// librdkafka's timeout.\nconst A: u8 = 1;\n",
    );
    write("src/service/mod.rs", "use crate::http::ApiError;\n");

    let found = violations(root.path());

    let expected = [
        "src/domain/decide.rs:2: tokio",
        "src/http/users.rs:1: rusqlite",
        "src/http/users.rs:1: Connection",
        "src/service/mod.rs:1: http",
    ];
    for line in expected {
        assert!(
            found.iter().any(|f| f.starts_with(line)),
            "{line} not in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

/// Every crossing under `root`, as `path:line: name (why)`.
fn violations(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(&root.join("src")) {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for rule in RULES {
            let applies = (relative == rule.under
                || relative.starts_with(&format!("{}/", rule.under)))
                && !rule.except.contains(&relative.as_str());
            if !applies {
                continue;
            }
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for name in rule.names {
                    if names(code, name) {
                        found.push(format!("{relative}:{}: {name} ({})", number + 1, rule.why));
                    }
                }
            }
        }
    }
    found
}

/// Whether `code` has `name` as a whole word (an identifier or path segment).
fn names(code: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}
