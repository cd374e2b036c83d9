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

/// A route: (method, template), the method in lower case as OpenAPI writes it.
type Route = (String, String);
/// A path's 405 for the methods it does not serve, with the methods `Allow` lists.
type Refusal = (String, Vec<String>);

/// The methods an OpenAPI path item may have.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Routes of the router that the document leaves out, by handler: each answers only a
/// refusal. `members::empty_user` is PUT, DELETE and HEAD on `.../groups/{group}/users/`,
/// which name a member with an empty identifier (400); without the slash they are 405, and
/// the document describes the form without the slash.
const UNDOCUMENTED_HANDLERS: [&str; 1] = ["members::empty_user"];

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn openapi(root: &Path) -> serde_json::Value {
    serde_json::from_str(&read(root, "schemas/openapi.json"))
        .expect("schemas/openapi.json is not JSON")
}

/// The code of a Rust file without its comments (`//` to the end of a line).
fn code_of(text: &str) -> String {
    let lines = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default());
    lines.collect::<Vec<_>>().join("\n")
}

/// A route template as the document writes it: `{user:[^/]*}` is `{user}`, and a
/// trailing slash `{slash:/?}` or `{slash:/}` goes.
fn template(pattern: &str) -> String {
    let mut shown = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        shown.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("a '}' closing each '{'");
        let name = rest[open + 1..close].split(':').next().unwrap_or_default();
        if name != "slash" {
            shown.push_str(&format!("{{{name}}}"));
        }
        rest = &rest[close + 1..];
    }
    shown.push_str(rest);
    shown
}

/// The string literal at the start of `text` (after white space), and what follows it.
fn literal(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start().strip_prefix('"')?;
    let end = text.find('"')?;
    Some((&text[..end], &text[end + 1..]))
}

/// The index just past the parenthesis that closes the one opening at `open`.
fn closing(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (at, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return open + at + 1;
        }
    }
    panic!("no parenthesis closes the one at {open}")
}

/// `.route(web::get().to(handler))` calls in `text`: (method, handler).
fn methods_of(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(".route(web::") {
        let rest = &text[at + ".route(web::".len()..];
        let method = rest.split('(').next().unwrap_or_default().to_owned();
        let handler = (rest.split(".to(").nth(1).and_then(|h| h.split(')').next()))
            .unwrap_or_default()
            .to_owned();
        found.push((method, handler));
    }
    found
}

/// The Contensis API's (method, template) pairs from src/http/mod.rs: each
/// `web::resource("...")` with the `.route(web::method()...)` calls that follow it, those
/// in `web::scope(prefix)` once under each of `PREFIXES`.
fn http_routes(source: &str) -> Vec<(String, String)> {
    let code = code_of(source);
    let prefixes_at = code
        .find("pub const PREFIXES")
        .expect("PREFIXES in src/http/mod.rs");
    let value_at = prefixes_at + code[prefixes_at..].find('=').expect("PREFIXES = [...]");
    let declared = &code[value_at..value_at + code[value_at..].find(';').unwrap()];
    let prefixes: Vec<&str> = declared.split('"').skip(1).step_by(2).collect();
    assert!(!prefixes.is_empty(), "no PREFIXES read from {declared}");
    let scope_at = code
        .find("web::scope(prefix)")
        .expect("web::scope(prefix) in src/http/mod.rs");
    // The scope's resources are chained after it, inside the `cfg.service(` around it.
    let service_at = code[..scope_at]
        .rfind("service(")
        .expect("cfg.service(web::scope(prefix)...)");
    let scope = scope_at..closing(&code, service_at + "service".len());
    let starts: Vec<usize> = code
        .match_indices("web::resource(")
        .map(|(at, _)| at)
        .collect();
    let mut routes = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(code.len());
        let (pattern, rest) = literal(&code[start + "web::resource(".len()..end])
            .expect("a web::resource with a literal path");
        let under: Vec<&str> = match scope.contains(&start) {
            true => prefixes.clone(),
            false => vec![""],
        };
        for (method, handler) in methods_of(rest) {
            if UNDOCUMENTED_HANDLERS.contains(&handler.as_str()) {
                continue;
            }
            for prefix in &under {
                routes.push((method.clone(), template(&format!("{prefix}{pattern}"))));
            }
        }
    }
    routes
}

/// SCIM's routes from src/scim/mod.rs: `.route("/Users", web::get()...)` under
/// `web::scope("/scim/v2")`, each (method, template); and apart, each path's
/// `not_allowed("GET, POST")`, the 405 for every other method, with the methods its
/// `Allow` header lists.
fn scim_routes(source: &str) -> (Vec<Route>, Vec<Refusal>) {
    let code = code_of(source);
    let (scope, _) = literal(&code[code.find("web::scope(").expect("a SCIM scope") + 11..])
        .expect("the SCIM scope's literal path");
    let (mut routes, mut refusals) = (Vec::new(), Vec::new());
    for (at, _) in code.match_indices(".route(") {
        let Some((path, rest)) = literal(&code[at + ".route(".len()..]) else {
            continue;
        };
        let target = rest.trim_start().trim_start_matches(',').trim_start();
        let path = template(&format!("{scope}{path}"));
        if let Some(method) = target.strip_prefix("web::") {
            let method = method.split('(').next().unwrap_or_default();
            assert_ne!(
                method, "route",
                "{path}: a catch-all web::route() in src/scim/mod.rs; use not_allowed(...) \
                 for the 405 of the other methods, or name the method"
            );
            routes.push((method.to_owned(), path));
        } else if let Some(allowed) = target.strip_prefix("not_allowed(") {
            let (allow, _) = literal(allowed).expect("not_allowed(\"...\") with a literal");
            let allow = allow.split(',').map(|m| m.trim().to_lowercase()).collect();
            refusals.push((path, allow));
        } else {
            panic!("{path}: a route in src/scim/mod.rs this test cannot read: {target:.40}");
        }
    }
    (routes, refusals)
}

/// Each (method, path) of the document's paths.
fn documented(document: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    let paths = document["paths"]
        .as_object()
        .expect("paths in schemas/openapi.json");
    let mut found = std::collections::BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("each path item an object");
        for method in item.keys().filter(|key| METHODS.contains(&key.as_str())) {
            found.insert((method.clone(), path.clone()));
        }
    }
    found
}

#[test]
fn the_openapi_document_is_what_its_script_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("python3")
        .arg(root.join("schemas/openapi.py"))
        .arg("--check")
        .output()
        .expect("running python3 schemas/openapi.py --check (Python 3.11 or newer is needed)");
    assert!(
        output.status.success(),
        "schemas/openapi.json is not what schemas/openapi.py writes; run `python3 \
         schemas/openapi.py` and commit both:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_openapi_document_describes_every_route_and_no_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut router: std::collections::BTreeSet<(String, String)> =
        http_routes(&read(root, "src/http/mod.rs"))
            .into_iter()
            .collect();
    let (scim, refusals) = scim_routes(&read(root, "src/scim/mod.rs"));
    router.extend(scim);
    assert!(router.len() > 80, "too few routes read: {router:#?}");
    let document = documented(&openapi(root));

    let show = |pairs: Vec<&(String, String)>| {
        let lines: Vec<String> = (pairs.iter())
            .map(|(method, path)| format!("  {} {path}", method.to_uppercase()))
            .collect();
        lines.join("\n")
    };
    let missing: Vec<_> = router.difference(&document).collect();
    let extra: Vec<_> = document.difference(&router).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "schemas/openapi.json and the router disagree.\nServed, not documented:\n{}\n\
         Documented, not served:\n{}",
        show(missing),
        show(extra)
    );

    // A SCIM path's 405 lists in `Allow` the methods the document gives it.
    for (path, allow) in refusals {
        let mut served: Vec<String> = (document.iter())
            .filter(|(_, p)| *p == path)
            .map(|(method, _)| method.clone())
            .collect();
        let mut allow = allow;
        served.sort();
        allow.sort();
        assert_eq!(
            allow, served,
            "{path}: not_allowed(...) in src/scim/mod.rs lists {allow:?}"
        );
    }
}

#[test]
fn the_route_reader_reads_resources_scopes_and_refusals() {
    let http = r#"
        pub const PREFIXES: [&str; 2] = ["/a", "/b"];
        cfg.service(web::resource("/health").route(web::get().to(health)));
        for prefix in PREFIXES {
            cfg.service(
                web::scope(prefix)
                    // web::resource("/commented").route(web::get().to(x))
                    .service(web::resource("/users{slash:/?}").route(web::post().to(users::create)))
                    .service(
                        web::resource("/users/{user:[^/]*}")
                            .route(web::head().to(members::empty_user))
                            .route(web::delete().to(users::delete)),
                    ),
            );
        }
        cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
    "#;
    let routes: Vec<String> = (http_routes(http).into_iter())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert_eq!(
        routes,
        [
            "get /health",
            "post /a/users",
            "post /b/users",
            "delete /a/users/{user}",
            "delete /b/users/{user}",
            "get /metrics",
        ]
    );
    let scim = r#"
        cfg.service(
            web::scope("/scim/v2")
                .route(
                    "/Schemas/{urn}",
                    web::get().to(discovery::schema),
                )
                .route("/Schemas/{urn}", not_allowed("GET"))
        );
    "#;
    let (routes, refusals) = scim_routes(scim);
    assert_eq!(
        routes,
        [("get".to_owned(), "/scim/v2/Schemas/{urn}".to_owned())]
    );
    assert_eq!(
        refusals,
        [("/scim/v2/Schemas/{urn}".to_owned(), vec!["get".to_owned()])]
    );
}

#[test]
fn every_ref_in_the_openapi_document_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = openapi(root);
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(refs.len() > 100, "too few $refs found: {}", refs.len());
    let broken: Vec<&String> = (refs.iter())
        .filter(|target| {
            (target.strip_prefix('#')).is_none_or(|pointer| document.pointer(pointer).is_none())
        })
        .collect();
    assert!(
        broken.is_empty(),
        "$refs in schemas/openapi.json that resolve to nothing: {broken:#?}"
    );
}

fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("$ref", serde_json::Value::String(target)) => refs.push(target.clone()),
                    _ => collect_refs(field, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}
