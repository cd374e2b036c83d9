#!/usr/bin/env python3
"""Writes schemas/openapi.json, the OpenAPI 3.1 description of every call the service
answers, from the definitions below: each Contensis operation is written once here and
served under both prefixes (src/http/mod.rs, PREFIXES), so the two copies in the JSON
cannot differ.

    python3 schemas/openapi.py           # writes schemas/openapi.json
    python3 schemas/openapi.py --check   # exits 1 if schemas/openapi.json is not what it writes

tests/tidy.rs runs the check, and compares the document's (method, path) pairs with the
router's; tests/api/openapi.rs validates it as OpenAPI 3.1 and runs schemathesis against
the server with it. Python 3.11, standard library only.
"""

import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("openapi.json")

PREFIXES = [
    ("/api/management/security", "", "The documentation's prefix."),
    ("/api/security", "security.", "The prefix the official JavaScript client calls."),
]


def schema(name):
    return {"$ref": f"#/components/schemas/{name}"}


def response(name):
    return {"$ref": f"#/components/responses/{name}"}


def parameter(name):
    return {"$ref": f"#/components/parameters/{name}"}


def json_body(name, description, media="application/json"):
    return {"description": description, "content": {media: {"schema": schema(name)}}}


def json_request(name, description, media="application/json"):
    return {"required": True, "description": description, "content": {media: {"schema": schema(name)}}}


def error_response(description, headers=None):
    answer = {"description": description, "content": {"application/json": {"schema": schema("Error")}}}
    if headers:
        answer["headers"] = headers
    return answer


def retry_after(description):
    return {"Retry-After": {"description": description, "schema": {"type": "integer", "minimum": 0}}}


# -- The Contensis API --------------------------------------------------------------------

ERROR_CODES = [
    "Unauthorized", "InvalidIdentifier", "BadRequest", "ValidationFailed", "Forbidden", "NotFound",
    "MethodNotAllowed", "UnsupportedMediaType", "PayloadTooLarge", "NotMember",
    "ExistingPasswordInvalid", "TooManyRequests", "PreconditionFailed", "IdempotencyKeyReused",
    "ConcurrentModification", "Unavailable", "TooManyStreams", "Stopping", "Starting", "ServerError",
    # The domain's refusals (src/domain/error.rs).
    "GroupNotFound", "UserNotFound", "UserNotInGroup", "AlreadyMember", "GroupCycle", "GroupNotChild",
    "LastAdministrator", "UsernameTaken", "EmailTaken", "GroupNameTaken", "IdTaken", "SystemGroup",
    "MembershipsRemain", "TooManyLinks", "VersionMismatch", "DuplicateRequest", "StatusUnchanged",
    "OwnStatus",
]

GUID = {"type": "string", "format": "uuid"}
# An identifier as the path carries it: 1 to 254 characters, none of them a control character.
IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 254, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"}
TIME = {"type": "string", "description": "RFC 3339, UTC."}
CUSTOM = {
    "type": ["object", "null"],
    "description": "Custom properties: at most 64, each named with 1 to 64 characters, each a "
    "string of at most 1,024 characters.",
    "maxProperties": 64,
    "additionalProperties": {"type": "string", "maxLength": 1024},
}
FREE_TEXT = {
    "type": ["string", "null"],
    "maxLength": 256,
    "description": "At most 256 printable characters; null or absent: none.",
}


def paged(item):
    return {
        "type": "object",
        "description": "The Contensis paged list; each page is read from one snapshot.",
        "required": ["pageIndex", "pageSize", "totalCount", "pageCount", "items"],
        "properties": {
            "pageIndex": {"type": "integer", "minimum": 0},
            "pageSize": {"type": "integer", "minimum": 1},
            "totalCount": {"type": "integer", "minimum": 0},
            "pageCount": {"type": "integer", "minimum": 0},
            "items": {"type": "array", "items": schema(item)},
        },
    }


CONTENSIS_SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "The Contensis Error body of every refusal (src/http/error.rs). The logId is "
        "also on the server's log line for the request.",
        "required": ["logId", "message", "data", "type"],
        "properties": {
            "logId": GUID,
            "message": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["code"],
                "properties": {
                    "code": {"type": "string", "enum": ERROR_CODES},
                    "parameter": {"type": "string", "description": "InvalidIdentifier: which identifier."},
                    "field": {"type": "string", "description": "ValidationFailed: which field."},
                    "inheritedThrough": {
                        "type": "string",
                        "description": "UserNotInGroup: the child group the user belongs through.",
                    },
                    "missing": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "UserNotFound, GroupNotFound of a bulk call: the identifiers, as given, that matched nothing.",
                    },
                    "eventId": {**GUID, "description": "The rejected event, or the event that may still land (503)."},
                    "reason": {"type": "string", "description": "ConcurrentModification: the code the event was rejected with."},
                    "applied": {"type": "integer", "minimum": 0, "description": "How many of the request's changes took effect."},
                    "events": {"type": "integer", "minimum": 0, "description": "How many changes the request made."},
                    "version": {"type": "integer", "minimum": 0, "description": "PreconditionFailed: the group's current version."},
                },
            },
            "type": {"const": "error"},
        },
    },
    "OAuthError": {
        "type": "object",
        "description": "An OAuth error (RFC 6749 section 5.2, RFC 7009).",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "string",
                "enum": [
                    "invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type",
                    "unsupported_token_type", "access_denied", "slow_down", "temporarily_unavailable",
                    "server_error",
                ],
            },
            "error_description": {"type": "string"},
        },
    },
    "TokenRequest": {
        "type": "object",
        "description": "client_credentials takes client_id and client_secret; password and "
        "contensis_classic take username (or email) and password.",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials", "password", "contensis_classic"]},
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "username": {"type": "string"},
            "password": {"type": "string"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 0, "description": "Seconds."},
        },
    },
    "RevocationRequest": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "description": "One of the caller's own tokens."},
            "token_type_hint": {"type": "string", "description": "Only access_token is taken."},
        },
    },
    "User": {
        "type": "object",
        "description": "The Contensis user model; the password is never shown.",
        "required": ["id", "username", "email", "custom", "credentials", "status", "created", "modified"],
        "properties": {
            "id": GUID,
            "username": {"type": "string"},
            "email": {"type": "string"},
            "firstname": {"type": "string"},
            "lastname": {"type": "string"},
            "timezone": {"type": "string"},
            "language": {"type": "string"},
            "custom": {"type": "object", "additionalProperties": {"type": "string"}},
            "externalId": {"type": "string", "description": "Set by an identity provider over SCIM."},
            "displayName": {"type": "string", "description": "Set by an identity provider over SCIM."},
            "emailType": {"type": "string", "description": "Set by an identity provider over SCIM."},
            "emailPrimary": {"type": "boolean", "description": "Set by an identity provider over SCIM."},
            "credentials": {
                "type": "object",
                "required": ["provider"],
                "properties": {
                    "provider": {
                        "type": "object",
                        "required": ["type", "name"],
                        "properties": {"type": {"type": "string"}, "name": {"type": "string"}},
                    }
                },
            },
            "status": {
                "type": "object",
                "required": ["suspended", "locked", "passwordResetRequired"],
                "properties": {
                    "suspended": {"type": "boolean"},
                    "locked": {"const": False},
                    "passwordResetRequired": {"const": False},
                },
            },
            "created": TIME,
            "modified": TIME,
        },
    },
    "UserInput": {
        "type": "object",
        "description": "A user as a client sends it. firstName and lastName (the JavaScript "
        "client's spelling) win over firstname and lastname. A username may not contain '@' "
        "nor parse as a GUID; an email must have '@' (422 otherwise).",
        "required": ["username", "email"],
        "properties": {
            "username": {"type": "string", "minLength": 1, "maxLength": 128},
            "email": {"type": "string", "minLength": 3, "maxLength": 254},
            "firstname": FREE_TEXT,
            "firstName": FREE_TEXT,
            "lastname": FREE_TEXT,
            "lastName": FREE_TEXT,
            "timezone": FREE_TEXT,
            "language": FREE_TEXT,
            "custom": CUSTOM,
            "credentials": {
                "type": ["object", "null"],
                "description": "Only on POST: a password there on PUT or PATCH is 422.",
                "properties": {
                    "password": {"type": ["string", "null"], "minLength": 8, "description": "8 characters to 1,024 bytes."}
                },
            },
            "status": {
                "type": ["object", "null"],
                "description": "suspended true suspends the user, false reinstates it (administrators "
                "only, never the caller itself: 403 OwnStatus); a user is created active.",
                "properties": {
                    "suspended": {"type": ["boolean", "null"]},
                    "locked": {"type": ["boolean", "null"], "description": "Only false."},
                    "passwordResetRequired": {"type": ["boolean", "null"], "description": "Only false."},
                },
            },
        },
    },
    "UserPatch": {
        "type": "object",
        "description": "A JSON merge patch (RFC 7396) over the user as shown: named fields change, "
        "null clears, the rest stays.",
    },
    "PasswordChange": {
        "type": "object",
        "required": ["new"],
        "properties": {
            "existing": {"type": ["string", "null"], "description": "Required unless the caller is an administrator."},
            "new": {"type": "string", "minLength": 8, "description": "8 characters to 1,024 bytes."},
        },
    },
    "Group": {
        "type": "object",
        "required": ["id", "name", "description", "type", "custom", "created"],
        "properties": {
            "id": GUID,
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "type": {"type": "string", "enum": ["sys", "contensis", "external"]},
            "custom": {"type": "object", "additionalProperties": {"type": "string"}},
            "created": TIME,
        },
    },
    "GroupInput": {
        "type": "object",
        "description": "A group as a client sends it (Description, capitalised as in the "
        "documentation's example, is taken too). A name may not parse as a GUID (422). Without "
        "a type: contensis on POST, the current one on PUT; sys is refused (422 on POST, 403 "
        "SystemGroup on PUT). A body with both description and Description is 400.",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 128},
            "description": FREE_TEXT,
            "Description": FREE_TEXT,
            "type": {"type": ["string", "null"], "enum": ["contensis", "external", None]},
            "custom": CUSTOM,
        },
    },
    "Identifiers": {
        "type": "array",
        "description": "Identifiers of users (id, username or email) or of groups (id or name); "
        "at most 1,000 (400 beyond).",
        "maxItems": 1000,
        "items": {"type": "string"},
    },
    "HistoryItem": {
        "type": "object",
        "description": "One change to a group, from its event.",
        "required": ["eventId", "type", "time", "actor", "logId", "data"],
        "properties": {
            "eventId": GUID,
            "type": {"type": "string"},
            "time": TIME,
            "actor": {
                "type": "object",
                "required": ["userId", "username"],
                "properties": {"userId": GUID, "username": {"type": "string"}},
            },
            "logId": GUID,
            "data": {"type": "object"},
        },
    },
    "UserList": paged("User"),
    "GroupList": paged("Group"),
    "HistoryList": paged("HistoryItem"),
    "FeedItem": {
        "type": "object",
        "description": "One event of the feed: its position (opaque text, the same on every "
        "instance reading one log), its outcome on this instance, and the event as the log holds "
        "it (see schemas/*.json).",
        "required": ["position", "outcome", "event"],
        "properties": {
            "position": {"type": "string", "pattern": "^[0-9]+$"},
            "outcome": {"type": "string", "enum": ["applied", "rejected"]},
            "code": {"type": "string", "description": "A rejected event's refusal."},
            "event": {"type": "object"},
        },
    },
    "FeedPage": {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": schema("FeedItem")},
            "next": {
                "type": ["string", "null"],
                "description": "The after of the next page; null while the feed is empty.",
            },
        },
    },
    "NewClient": {
        "type": "object",
        "required": ["clientId", "scopes"],
        "properties": {
            "clientId": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
            "scopes": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": ["scim", "events:read"]},
            },
        },
    },
    "Client": {
        "type": "object",
        "required": ["clientId", "userId", "username", "scopes", "created"],
        "properties": {
            "clientId": {"type": "string"},
            "userId": GUID,
            "username": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string", "enum": ["scim", "events:read"]}},
            "created": TIME,
        },
    },
    "MadeClient": {
        "description": "The client, its secret (shown once) and, for a scim client, a long-lived token.",
        "allOf": [
            schema("Client"),
            {
                "type": "object",
                "required": ["clientSecret"],
                "properties": {
                    "clientSecret": {"type": "string"},
                    "token": {
                        "type": "object",
                        "required": ["accessToken", "tokenType", "expiresIn"],
                        "properties": {
                            "accessToken": {"type": "string"},
                            "tokenType": {"const": "Bearer"},
                            "expiresIn": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        ],
    },
    "ClientList": {"type": "array", "items": schema("Client")},
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok", "live"]}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": {
                "type": "object",
                "required": ["caughtUp", "log", "running"],
                "properties": {
                    "caughtUp": {"type": "boolean"},
                    "log": {"type": "boolean"},
                    "running": {"type": "boolean"},
                },
            },
        },
    },
}

CONTENSIS_RESPONSES = {
    "BadRequest": error_response(
        "BadRequest (a query, body or header that is not valid), or InvalidIdentifier (an "
        "identifier empty, longer than 254 characters, with control characters or broken "
        "percent-encoding; data.parameter says which)."
    ),
    "Unauthorized": error_response(
        "Unauthorized: no, malformed, expired or forged token, or one that no longer stands.",
        {"WWW-Authenticate": {"schema": {"const": "Bearer"}}},
    ),
    "Forbidden": error_response("Forbidden: the caller may not do this."),
    "NotFound": error_response("GroupNotFound, UserNotFound."),
    "Conflict": error_response("A refusal of the domain, or ConcurrentModification (data.eventId is the rejected event)."),
    "PreconditionFailed": error_response("PreconditionFailed: the group is not at a version If-Match names (data.version is the current one)."),
    "PayloadTooLarge": error_response("PayloadTooLarge: the body is over http.body_max_bytes."),
    "UnsupportedMediaType": error_response("UnsupportedMediaType: the body is not application/json."),
    "Unprocessable": error_response("ValidationFailed (data.field names the field), or IdempotencyKeyReused."),
    "TooManyRequests": error_response("TooManyRequests: too many failed attempts.", retry_after("Seconds.")),
    "Unavailable": error_response(
        "Unavailable (the log is unavailable, or the outcome is not known in time; data.eventId "
        "when the event may still land), Starting (the log is being replayed), Stopping.",
        retry_after("Seconds."),
    ),
}

CONTENSIS_PARAMETERS = {
    "group": {
        "name": "group", "in": "path", "required": True,
        "description": "A group's id (GUID) or name, in any case.",
        "schema": IDENTIFIER,
    },
    "child": {
        "name": "child", "in": "path", "required": True,
        "description": "The child group's id (GUID) or name, in any case.",
        "schema": IDENTIFIER,
    },
    "user": {
        "name": "user", "in": "path", "required": True,
        "description": "A user's id (GUID), username or email (any identifier with '@'), in any case.",
        "schema": IDENTIFIER,
    },
    "userOrCurrent": {
        "name": "user", "in": "path", "required": True,
        "description": "A user's id (GUID), username or email, or @current for the caller.",
        "schema": IDENTIFIER,
    },
    "groups": {
        "name": "groups", "in": "path", "required": True,
        "description": "At most 20 group identifiers, comma-separated (a comma inside a name is %2C).",
        "schema": {"type": "string", "minLength": 1},
    },
    "client": {
        "name": "client", "in": "path", "required": True,
        "description": "An API client's id.",
        "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,63}$"},
    },
    "pageIndex": {"name": "pageIndex", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
    "pageSize": {
        "name": "pageSize", "in": "query",
        "description": "1 to page_size_max (100 by default).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
    },
    "q": {
        "name": "q", "in": "query",
        "description": "A search: at most 256 printable characters.",
        "schema": {"type": "string", "maxLength": 256},
    },
    "includeInherited": {"name": "includeInherited", "in": "query", "schema": {"type": "boolean", "default": False}},
    "includeSelf": {"name": "includeSelf", "in": "query", "schema": {"type": "boolean", "default": False}},
    "IfMatch": {
        "name": "If-Match", "in": "header",
        "description": "* (the group must exist), or entity tags of the group's version (\"7\"), compared strongly.",
        "schema": {"type": "string", "pattern": "^(\\*|(W/)?\"[^\"]*\"( *, *(W/)?\"[^\"]*\")*)$"},
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header",
        "description": "A retry with the same key and request gets the first answer (for 24 hours).",
        "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
    },
    "after": {
        "name": "after", "in": "query",
        "description": "A position this feed gave (next); from the start without it.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "feedPageSize": {
        "name": "pageSize", "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    "waitMs": {
        "name": "waitMs", "in": "query",
        "description": "A long poll: wait up to this long for an event after `after`.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 30000, "default": 0},
    },
    "types": {
        "name": "types", "in": "query",
        "description": "A comma list of event types (MemberRemoved, ...).",
        "schema": {"type": "string"},
    },
    "feedGroup": {"name": "group", "in": "query", "description": "Only events about this group (its id).", "schema": GUID},
    "feedUser": {"name": "user", "in": "query", "description": "Only events about this user (its id).", "schema": GUID},
    "includeRejected": {"name": "includeRejected", "in": "query", "schema": {"type": "boolean", "default": False}},
    "LastEventId": {
        "name": "Last-Event-ID", "in": "header",
        "description": "Resume after this position (the last id: read).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}

NO_CONTENT = {"204": {"description": "Done."}}


def errors(*statuses):
    """The Contensis Error responses of an operation, by status. Every call may be 503
    (Starting, Stopping, Unavailable)."""
    names = {
        400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
        412: "PreconditionFailed", 413: "PayloadTooLarge", 415: "UnsupportedMediaType",
        422: "Unprocessable", 429: "TooManyRequests", 503: "Unavailable",
    }
    return {str(s): response(names[s]) for s in sorted(set(statuses) | {503})}


READ = (400, 401, 403, 404)
# Refusals of any write with a JSON body: its shape and size, an Idempotency-Key reused.
BODY = (400, 413, 415, 422)
LIST_PARAMETERS = ["pageIndex", "pageSize", "q"]


def op(operation_id, summary, responses, parameters=(), body=None, tags=("Contensis"), description=None):
    shown = {"operationId": operation_id, "summary": summary, "tags": [tags] if isinstance(tags, str) else list(tags)}
    if description:
        shown["description"] = description
    if parameters:
        shown["parameters"] = [parameter(p) for p in parameters]
    if body:
        shown["requestBody"] = body
    shown["responses"] = responses
    shown["security"] = [{"bearer": []}]
    return shown


def head_responses(found):
    """A HEAD answers with no body; its refusals carry only their status."""
    return {
        "204": {"description": found},
        "400": {"description": "InvalidIdentifier, or BadRequest."},
        "401": {"description": "Unauthorized.", "headers": {"WWW-Authenticate": {"schema": {"const": "Bearer"}}}},
        "403": {"description": "Forbidden."},
        "404": {"description": "NotMember: not a member (unknown users and groups count as none)."},
        "503": {"description": "Unavailable, Starting, Stopping.", "headers": retry_after("Seconds.")},
    }


def created(name, location):
    answer = json_body(name, "Made; the stored resource.")
    answer["headers"] = {"Location": {"description": location, "schema": {"type": "string"}}}
    return answer


def with_etag(answer):
    answer = dict(answer)
    answer["headers"] = {**answer.get("headers", {}), "ETag": {"description": "The group's version, for If-Match.", "schema": {"type": "string"}}}
    return answer


REPLAYED_GONE = (
    "A retry with the Idempotency-Key of an earlier request answers with what that request "
    "made, as it now stands: 404 if it has been deleted since."
)

# Each resource under a prefix: path -> method -> (operationId, operation without the id).
CONTENSIS = {
    "/users": {
        "post": op("users.create", "Create a user", {
            "201": created("User", "users/{id}"),
            **errors(*BODY, 401, 403, 404, 409, 429),
        }, ["IdempotencyKey"], json_request("UserInput", "The user; credentials.password, if any, is its password."),
            description=REPLAYED_GONE),
        "get": op("users.list", "List users", {
            "200": json_body("UserList", "A page of users."),
            **errors(400, 401, 403),
        }, LIST_PARAMETERS + ["order"]),
    },
    "/users/{user}": {
        "get": op("users.get", "A user", {
            "200": json_body("User", "The user."),
            **errors(*READ),
        }, ["userOrCurrent"], description="Open to the user itself, as to administrators."),
        "put": op("users.replace", "Replace a user's details", {
            "200": json_body("User", "The user as stored."),
            **errors(*BODY, 401, 403, 404, 409),
        }, ["userOrCurrent", "IdempotencyKey"], json_request("UserInput", "The user's details, whole.")),
        "patch": op("users.patch", "Change a user's details", {
            "200": json_body("User", "The user as stored."),
            **errors(*BODY, 401, 403, 404, 409),
        }, ["userOrCurrent", "IdempotencyKey"], json_request("UserPatch", "A JSON merge patch.")),
        "delete": op("users.delete", "Delete a user", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 422),
        }, ["user", "IdempotencyKey"], description="One MemberRemoved per group the user was directly in, then UserDeleted."),
    },
    "/users/{user}/credentials/password": {
        "post": op("users.setPassword", "Change a user's password", {
            "200": {"description": "Changed; its earlier tokens stop standing."},
            **errors(*BODY, 401, 403, 404, 409, 429),
        }, ["userOrCurrent"], json_request("PasswordChange", "The existing password and the new one."),
            description="Takes no Idempotency-Key (400)."),
    },
    "/users/{user}/groups": {
        "get": op("users.groups", "The groups of a user", {
            "200": json_body("GroupList", "A page of groups, by name."),
            **errors(*READ),
        }, ["user", "includeInherited", "pageIndex", "pageSize", "q", "groupOrder"]),
    },
    "/users/{user}/groups/{groups}": {
        "head": op("users.inAnyGroup", "Whether a user belongs to any of the groups", head_responses(
            "The user belongs to one of the groups, directly or through child groups."), ["user", "groups"]),
    },
    "/groups": {
        "post": op("groups.create", "Create a group", {
            "201": with_etag(created("Group", "groups/{id}")),
            **errors(*BODY, 401, 403, 404, 409),
        }, ["IdempotencyKey"], json_request("GroupInput", "The group."), description=REPLAYED_GONE),
        "get": op("groups.list", "List groups", {
            "200": json_body("GroupList", "A page of groups."),
            **errors(400, 401, 403),
        }, LIST_PARAMETERS + ["groupOrder"]),
    },
    "/groups/{group}": {
        "get": op("groups.get", "A group", {
            "200": with_etag(json_body("Group", "The group.")),
            **errors(*READ),
        }, ["group"]),
        "put": op("groups.replace", "Replace a group's details", {
            "200": with_etag(json_body("Group", "The group as stored.")),
            **errors(*BODY, 401, 403, 404, 409, 412),
        }, ["group", "IfMatch", "IdempotencyKey"], json_request("GroupInput", "The group's details.")),
        "delete": op("groups.delete", "Delete a group", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 412, 422),
        }, ["group", "IfMatch", "IdempotencyKey"],
            description="One MemberRemoved per member, one ChildGroupRemoved per child and parent, then GroupDeleted."),
    },
    "/groups/{group}/users": {
        "get": op("members.list", "The members of a group", {
            "200": json_body("UserList", "A page of members, by username."),
            **errors(*READ),
        }, ["group", "includeInherited", "pageIndex", "pageSize", "q", "order"]),
        "post": op("members.addMany", "Add users to a group", {
            **NO_CONTENT,
            **errors(*BODY, 401, 403, 404, 409, 412),
        }, ["group", "IfMatch", "IdempotencyKey"], json_request("Identifiers", "The users; all are added or none (404 UserNotFound with data.missing).")),
    },
    "/groups/{group}/users/{user}": {
        "put": op("members.add", "Add a user to a group", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 412, 422),
        }, ["group", "user", "IfMatch", "IdempotencyKey"], description="204 also when the user is a member already."),
        "delete": op("members.remove", "Remove a user from a group", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 412, 422),
        }, ["group", "user", "IfMatch", "IdempotencyKey"],
            description="409 UserNotInGroup (data.inheritedThrough when only through a child group), LastAdministrator, ConcurrentModification."),
        "head": op("members.check", "Whether a user is a member of a group", head_responses(
            "A member, directly or through a child group."), ["group", "user"]),
    },
    "/groups/{group}/groups": {
        "get": op("groups.children", "The child groups of a group", {
            "200": json_body("GroupList", "A page of groups, by name."),
            **errors(*READ),
        }, ["group", "includeInherited", "includeSelf", "pageIndex", "pageSize", "q", "groupOrder"]),
        "post": op("groups.addChildren", "Add child groups to a group", {
            **NO_CONTENT,
            **errors(*BODY, 401, 403, 404, 409, 412),
        }, ["group", "IfMatch", "IdempotencyKey"], json_request("Identifiers", "The groups; all are added or none (404 GroupNotFound with data.missing, 409 GroupCycle).")),
    },
    "/groups/{group}/groups/{child}": {
        "put": op("groups.addChild", "Make a group a child of a group", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 412, 422),
        }, ["group", "child", "IfMatch", "IdempotencyKey"]),
        "delete": op("groups.removeChild", "Remove a child group", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 409, 412, 422),
        }, ["group", "child", "IfMatch", "IdempotencyKey"]),
    },
    "/groups/{group}/history": {
        "get": op("groups.history", "A group's changes, newest first", {
            "200": json_body("HistoryList", "A page of the group's changes."),
            **errors(*READ),
        }, ["group", "pageIndex", "pageSize"]),
    },
    "/events": {
        "get": op("events.page", "A page of the event feed", {
            "200": json_body("FeedPage", "The events applied after `after`, in log order."),
            **errors(400, 401, 403),
        }, ["after", "feedPageSize", "waitMs", "types", "feedGroup", "feedUser", "includeRejected"], tags="Feed",
            description="Administrators and events:read clients. A long poll holds one of the places "
            "streams have (503 TooManyStreams when none is free)."),
    },
    "/events/stream": {
        "get": op("events.stream", "The event feed as Server-Sent Events", {
            "200": {
                "description": "Each event a message: `id:` its position, `event:` its type, `data:` "
                "the item (FeedItem); a comment on every heartbeat. It never ends on its own.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **errors(400, 401, 403),
        }, ["LastEventId", "after", "feedPageSize", "types", "feedGroup", "feedUser", "includeRejected"], tags="Feed",
            description="503 TooManyStreams when feed.streams_max are open; waitMs is refused (400)."),
    },
    "/clients": {
        "post": op("clients.create", "Make an API client", {
            "201": {**json_body("MadeClient", "The client, with its secret (and token) shown once."),
                    "headers": {"Cache-Control": {"schema": {"const": "no-store"}}}},
            **errors(*BODY, 401, 403, 409),
        }, [], json_request("NewClient", "Its id and scopes."), tags="Clients",
            description="400 for the bootstrap client's id, or with an Idempotency-Key (a retry could not be given the secret)."),
        "get": op("clients.list", "The API clients", {
            "200": json_body("ClientList", "Every API client, the bootstrap client's included; never a secret."),
            **errors(401, 403),
        }, tags="Clients"),
    },
    "/clients/{client}": {
        "delete": op("clients.revoke", "Revoke an API client", {
            **NO_CONTENT,
            **errors(400, 401, 403, 404, 422),
        }, ["client", "IdempotencyKey"], tags="Clients", description="400 for the bootstrap client."),
    },
}

ORDERS = {
    "order": ("A comma list of at most 4 of username, email, firstname, lastname, created, "
              "modified, each with - for descending.", "username"),
    "groupOrder": ("A comma list of at most 4 of name, type, created, each with - for descending.", "name"),
}
for name, (description, default) in ORDERS.items():
    CONTENSIS_PARAMETERS[name] = {
        "name": "order", "in": "query", "description": description,
        "schema": {"type": "string", "default": default},
    }

UNPREFIXED = {
    "/authenticate/connect/token": {
        "post": {
            "operationId": "token.issue",
            "summary": "A token (OAuth 2.0 client credentials or password grant)",
            "tags": ["Authentication"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": schema("TokenRequest")}},
            },
            "responses": {
                "200": json_body("Token", "A bearer token."),
                "400": json_body("OAuthError", "invalid_request, invalid_client, invalid_grant (a suspended user too), unsupported_grant_type."),
                "429": {**json_body("OAuthError", "slow_down: too many failed attempts."), "headers": retry_after("Seconds.")},
                "503": {**json_body("OAuthError", "temporarily_unavailable."), "headers": retry_after("Seconds.")},
            },
            "security": [],
        }
    },
    "/authenticate/connect/revocation": {
        "post": {
            "operationId": "token.revoke",
            "summary": "Revoke one of the caller's own tokens (RFC 7009)",
            "tags": ["Authentication"],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": schema("RevocationRequest")}},
            },
            "responses": {
                "200": {"description": "Revoked (or revoked already): the token answers 401 from now on."},
                "400": json_body("OAuthError", "invalid_request (a token this service did not issue, or that expired), unsupported_token_type."),
                "401": response("Unauthorized"),
                "403": json_body("OAuthError", "access_denied: another user's token."),
                "503": response("Unavailable"),
            },
            "security": [{"bearer": []}],
        }
    },
    "/health": {"get": {
        "operationId": "health", "summary": "Up", "tags": ["Operations"],
        "responses": {"200": json_body("Health", "The process is up.")}, "security": [],
    }},
    "/health/live": {"get": {
        "operationId": "health.live", "summary": "Live", "tags": ["Operations"],
        "responses": {"200": json_body("Health", "The process answers (during the log's replay too).")},
        "security": [],
    }},
    "/health/ready": {"get": {
        "operationId": "health.ready", "summary": "Ready", "tags": ["Operations"],
        "responses": {
            "200": json_body("Readiness", "Caught up with the log, the log takes appends, not stopping."),
            "503": json_body("Readiness", "Not ready, with the checks."),
        },
        "security": [],
    }},
    "/metrics": {"get": {
        "operationId": "metrics", "summary": "Prometheus metrics", "tags": ["Operations"],
        "responses": {"200": {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }},
        "security": [],
    }},
    "/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This document", "tags": ["Operations"],
        "responses": {"200": {
            "description": "The OpenAPI 3.1 description of the service.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }},
        "security": [],
    }},
}

# -- SCIM 2.0 -----------------------------------------------------------------------------

SCIM = "/scim/v2"
SCIM_JSON = "application/scim+json"


def scim_body(name, description):
    return {"description": description, "content": {SCIM_JSON: {"schema": schema(name)}}}


def scim_request(name, description):
    media = {"schema": schema(name)}
    return {"required": True, "description": description, "content": {SCIM_JSON: media, "application/json": media}}


def scim_errors(*statuses):
    """SCIM error responses. A 503 before the log is replayed (Starting) or while stopping
    comes before routing, in the Contensis Error body."""
    shown = {}
    for status in sorted(statuses):
        shown[str(status)] = response(f"Scim{status}")
    shown["503"] = response("Scim503")
    return shown


SCIM_ERROR_DESCRIPTIONS = {
    400: "invalidFilter, invalidSyntax, invalidPath, noTarget, mutability, invalidValue, tooMany.",
    401: "No valid token.",
    403: "Not an administrator or scim client; a filter on a discovery document (sensitive).",
    404: "No such resource.",
    409: "uniqueness: a name that is taken; or a change that lost a race.",
    412: "The resource has moved on from the version If-Match names.",
    413: "The body is over 1 MiB.",
    415: "The body is not application/scim+json or application/json.",
    422: "The Idempotency-Key came with another request.",
    501: "Not implemented.",
}

SCIM_RESPONSES = {}
for status, description in SCIM_ERROR_DESCRIPTIONS.items():
    answer = scim_body("ScimError", description)
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"const": "Bearer"}}}
    SCIM_RESPONSES[f"Scim{status}"] = answer
SCIM_RESPONSES["Scim503"] = {
    "description": "The change cannot be confirmed in time (SCIM form); or the service is starting or stopping (the Contensis Error body).",
    "headers": retry_after("Seconds."),
    "content": {SCIM_JSON: {"schema": schema("ScimError")}, "application/json": {"schema": schema("Error")}},
}

META = {
    "type": "object",
    "required": ["resourceType", "location"],
    "properties": {
        "resourceType": {"type": "string"},
        "created": TIME,
        "lastModified": TIME,
        "location": {"type": "string"},
        "version": {"type": "string"},
    },
}

SCIM_USER_INPUT_NOTE = (
    "Attributes of the core and enterprise schemas that are not kept are accepted and ignored."
)

SCIM_SCHEMAS = {
    "ScimError": {
        "type": "object",
        "required": ["schemas", "status"],
        "properties": {
            "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:Error"}},
            "status": {"type": "string", "pattern": "^[45][0-9][0-9]$"},
            "scimType": {
                "type": "string",
                "enum": ["invalidFilter", "tooMany", "uniqueness", "mutability", "invalidSyntax",
                         "invalidPath", "noTarget", "invalidValue", "invalidVers", "sensitive"],
            },
            "detail": {"type": "string"},
        },
    },
    "ScimUser": {
        "type": "object",
        "description": "A user as SCIM shows it (read-only attributes: id, groups, meta); attributes "
        "and excludedAttributes choose what is shown, besides id and schemas.",
        "required": ["schemas", "id"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": GUID,
            "externalId": {"type": "string"},
            "userName": {"type": "string"},
            "name": {
                "type": "object",
                "properties": {"givenName": {"type": "string"}, "familyName": {"type": "string"}},
            },
            "displayName": {"type": "string"},
            "emails": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"value": {"type": "string"}, "type": {"type": "string"}, "primary": {"type": "boolean"}},
                },
            },
            "active": {"type": "boolean"},
            "preferredLanguage": {"type": "string"},
            "timezone": {"type": "string"},
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "string"}, "$ref": {"type": "string"},
                        "display": {"type": "string"}, "type": {"type": "string"},
                    },
                },
            },
            "meta": META,
        },
    },
    "ScimUserInput": {
        "type": "object",
        "description": "userName and emails are required; the primary email, else the first work "
        "one, else the first, is the user's email. active may be a boolean or \"True\" / \"False\". "
        + SCIM_USER_INPUT_NOTE,
        "required": ["userName", "emails"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "userName": {"type": "string", "minLength": 1},
            "externalId": {"type": "string"},
            "name": {
                "type": "object",
                "properties": {"givenName": {"type": "string"}, "familyName": {"type": "string"}},
            },
            "displayName": {"type": "string"},
            "emails": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {"value": {"type": "string"}, "type": {"type": "string"}, "primary": {"type": "boolean"}},
                },
            },
            "active": {"type": ["boolean", "string"]},
            "password": {"type": "string", "description": "Only on POST."},
            "preferredLanguage": {"type": "string"},
            "timezone": {"type": "string"},
        },
    },
    "ScimGroup": {
        "type": "object",
        "description": "A group as SCIM shows it; attributes and excludedAttributes choose what is shown, "
        "besides id and schemas.",
        "required": ["schemas", "id"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "id": GUID,
            "displayName": {"type": "string"},
            "externalId": {"type": "string"},
            "members": {
                "type": "array",
                "description": "Not shown in lists for a group of more than 1,000 members.",
                "items": {
                    "type": "object",
                    "properties": {"value": {"type": "string"}, "$ref": {"type": "string"}, "type": {"type": "string"}},
                },
            },
            "meta": META,
        },
    },
    "ScimGroupInput": {
        "type": "object",
        "required": ["displayName"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}},
            "displayName": {"type": "string", "minLength": 1},
            "externalId": {"type": "string"},
            "members": {
                "type": "array",
                "items": {"type": "object", "required": ["value"], "properties": {"value": GUID}},
            },
        },
    },
    "ScimPatch": {
        "type": "object",
        "required": ["Operations"],
        "properties": {
            "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
            "Operations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["op"],
                    "properties": {
                        "op": {"type": "string", "description": "add, remove or replace, in any case."},
                        "path": {"type": "string"},
                        "value": {},
                    },
                },
            },
        },
    },
    "ScimListResponse": {
        "type": "object",
        "required": ["schemas", "totalResults", "startIndex", "itemsPerPage", "Resources"],
        "properties": {
            "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:ListResponse"}},
            "totalResults": {"type": "integer", "minimum": 0},
            "startIndex": {"type": "integer", "minimum": 1},
            "itemsPerPage": {"type": "integer", "minimum": 0},
            "Resources": {"type": "array", "items": {"type": "object"}},
        },
    },
    "ScimDocument": {
        "type": "object",
        "description": "A discovery document (RFC 7643 sections 5 to 7).",
        "required": ["schemas"],
        "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "id": {"type": "string"}},
    },
}

SCIM_PARAMETERS = {
    "scimId": {"name": "id", "in": "path", "required": True, "description": "The resource's id.", "schema": {"type": "string", "minLength": 1}},
    "resourceTypeName": {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}, "description": "User or Group."},
    "schemaUrn": {"name": "urn", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}, "description": "A schema's URN."},
    "attributes": {"name": "attributes", "in": "query", "description": "Top-level attribute names, comma-separated.", "schema": {"type": "string"}},
    "excludedAttributes": {"name": "excludedAttributes", "in": "query", "schema": {"type": "string"}},
    "filter": {"name": "filter", "in": "query", "description": "A SCIM filter (RFC 7644 section 3.4.2.2).", "schema": {"type": "string"}},
    "discoveryFilter": {"name": "filter", "in": "query", "description": "Refused: 403 sensitive.", "schema": {"type": "string"}},
    "startIndex": {"name": "startIndex", "in": "query", "description": "1-based; below 1 counts as 1.", "schema": {"type": "integer", "format": "int64"}},
    "count": {"name": "count", "in": "query", "description": "At most 100; 0 gives only totalResults.", "schema": {"type": "integer", "format": "int64"}},
    "scimIfMatch": {"name": "If-Match", "in": "header", "description": "The resource's meta.version.", "schema": {"type": "string"}},
}


def scim_op(operation_id, summary, responses, parameters=(), body=None, tag="SCIM"):
    shown = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        shown["parameters"] = [parameter(p) for p in parameters]
    if body:
        shown["requestBody"] = body
    shown["responses"] = responses
    shown["security"] = [{"bearer": []}]
    return shown


def discovery(operation_id, summary, name, path_parameter=None):
    """A discovery document: read-only (other methods are 405), and no filter (403)."""
    parameters = [path_parameter, "discoveryFilter"] if path_parameter else ["discoveryFilter"]
    refusals = (400, 401, 403, 404) if path_parameter else (400, 401, 403)
    responses = {"200": scim_body(name, summary + "."), **scim_errors(*refusals)}
    return {"get": scim_op(operation_id, summary, responses, parameters, tag="SCIM discovery")}


READS = ["attributes", "excludedAttributes"]
LISTS = ["filter", "startIndex", "count"] + READS
SCIM_WRITE = (400, 401, 403, 413, 415, 422)

SCIM_PATHS = {
    "/ServiceProviderConfig": discovery("scim.serviceProviderConfig", "The service provider's configuration", "ScimDocument"),
    "/ResourceTypes": discovery("scim.resourceTypes", "The resource types", "ScimListResponse"),
    "/ResourceTypes/{name}": discovery("scim.resourceTypeByName", "A resource type", "ScimDocument", "resourceTypeName"),
    "/Schemas": discovery("scim.schemas", "The schemas", "ScimListResponse"),
    "/Schemas/{urn}": discovery("scim.schemaByUrn", "A schema", "ScimDocument", "schemaUrn"),
    "/Users": {
        "get": scim_op("scim.users.list", "List users", {
            "200": scim_body("ScimListResponse", "A page of users, in the order they were made."),
            **scim_errors(400, 401, 403),
        }, LISTS),
        "post": scim_op("scim.users.create", "Create a user", {
            "201": {**scim_body("ScimUser", "The user."), "headers": {"Location": {"schema": {"type": "string"}}}},
            **scim_errors(*SCIM_WRITE, 409),
        }, [], scim_request("ScimUserInput", "The user.")),
    },
    "/Users/{id}": {
        "get": scim_op("scim.users.get", "A user", {
            "200": scim_body("ScimUser", "The user."),
            **scim_errors(400, 401, 403, 404),
        }, ["scimId"] + READS),
        "put": scim_op("scim.users.replace", "Replace a user", {
            "200": scim_body("ScimUser", "The user as stored."),
            **scim_errors(*SCIM_WRITE, 404, 409, 412),
        }, ["scimId", "scimIfMatch"], scim_request("ScimUserInput", "The user, whole.")),
        "patch": scim_op("scim.users.patch", "Change a user", {
            "200": scim_body("ScimUser", "The user as stored."),
            **scim_errors(*SCIM_WRITE, 404, 409, 412),
        }, ["scimId", "scimIfMatch"], scim_request("ScimPatch", "The operations.")),
        "delete": scim_op("scim.users.delete", "Delete a user", {
            "204": {"description": "Deleted."},
            **scim_errors(400, 401, 403, 404, 409, 422),
        }, ["scimId"]),
    },
    "/Groups": {
        "get": scim_op("scim.groups.list", "List groups", {
            "200": scim_body("ScimListResponse", "A page of groups, in the order they were made."),
            **scim_errors(400, 401, 403),
        }, LISTS),
        "post": scim_op("scim.groups.create", "Create a group", {
            "201": {**scim_body("ScimGroup", "The group."), "headers": {
                "Location": {"schema": {"type": "string"}},
                "ETag": {"schema": {"type": "string"}},
            }},
            **scim_errors(*SCIM_WRITE, 409),
        }, [], scim_request("ScimGroupInput", "The group.")),
    },
    "/Groups/{id}": {
        "get": scim_op("scim.groups.get", "A group", {
            "200": {**scim_body("ScimGroup", "The group."), "headers": {"ETag": {"schema": {"type": "string"}}}},
            **scim_errors(400, 401, 403, 404),
        }, ["scimId"] + READS),
        "put": scim_op("scim.groups.replace", "Replace a group", {
            "200": {**scim_body("ScimGroup", "The group as stored."), "headers": {"ETag": {"schema": {"type": "string"}}}},
            **scim_errors(*SCIM_WRITE, 404, 409, 412),
        }, ["scimId", "scimIfMatch"], scim_request("ScimGroupInput", "The group.")),
        "patch": scim_op("scim.groups.patch", "Change a group", {
            "204": {"description": "Changed."},
            **scim_errors(*SCIM_WRITE, 404, 409, 412),
        }, ["scimId", "scimIfMatch"], scim_request("ScimPatch", "The operations, folded in order into one change.")),
        "delete": scim_op("scim.groups.delete", "Delete a group", {
            "204": {"description": "Deleted."},
            **scim_errors(400, 401, 403, 404, 409, 412, 422),
        }, ["scimId", "scimIfMatch"]),
    },
    "/Bulk": {"post": scim_op("scim.bulk", "Bulk operations: not supported", scim_errors(401, 403, 501))},
    "/.search": {"post": scim_op("scim.search", "Searches by POST: not supported", scim_errors(401, 403, 501))},
}


def document():
    paths = {}
    for prefix, id_prefix, _ in PREFIXES:
        for path, operations in CONTENSIS.items():
            paths[prefix + path] = {
                method: {**operation, "operationId": id_prefix + operation["operationId"]}
                for method, operation in operations.items()
            }
    paths.update(UNPREFIXED)
    for path, operations in SCIM_PATHS.items():
        paths[SCIM + path] = operations
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "membershipd",
            "version": "0.1.0",
            "description": "An event-sourced group-membership service: the users-and-groups calls of "
            "the Contensis Management API (under both /api/management/security and /api/security), "
            "SCIM 2.0 for identity providers, and the event feed. Written by schemas/openapi.py.",
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "Contensis", "description": "Users, groups and memberships."},
            {"name": "Feed", "description": "The events, in log order."},
            {"name": "Clients", "description": "API clients with scopes."},
            {"name": "Authentication"},
            {"name": "Operations"},
            {"name": "SCIM", "description": "SCIM 2.0 (RFC 7643, RFC 7644)."},
            {"name": "SCIM discovery"},
        ],
        "paths": paths,
        "components": {
            "schemas": {**CONTENSIS_SCHEMAS, **SCIM_SCHEMAS},
            "responses": {**CONTENSIS_RESPONSES, **SCIM_RESPONSES},
            "parameters": {**CONTENSIS_PARAMETERS, **SCIM_PARAMETERS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from POST /authenticate/connect/token: of a member of System "
                    "Administrators, or of an API client within its scopes.",
                }
            },
        },
    }


def text():
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    written = text()
    if sys.argv[1:] == ["--check"]:
        if OUT.read_text(encoding="utf-8") != written:
            sys.exit(f"{OUT} is not what {Path(__file__).name} writes: run python3 schemas/openapi.py")
    elif sys.argv[1:]:
        sys.exit(f"usage: {sys.argv[0]} [--check]")
    else:
        OUT.write_text(written, encoding="utf-8")
