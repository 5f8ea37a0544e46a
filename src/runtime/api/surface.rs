//! What a v1 action script can see, per trigger, as one table: the members of `ctx` and `api`
//! that the runtime builds (bindings.rs), the modules of `require` and the global `console`. The
//! editor documents of authoring.md §3 are rendered from it: TypeScript declarations
//! ([`declarations`]) and JSON Schemas of `_execute`'s `context` and `effects`
//! ([`context_schema`], [`effects_schema`]). The tests below run the real sandbox and compare
//! what it builds with the table, so the two cannot drift apart silently.
//!
//! Checking the declarations against the TypeScript corpus in `tests/types` (needs Node.js;
//! every `ok/<flow>-<trigger>/*.js` must pass, every `bad/<flow>-<trigger>/*.js` must fail with
//! the error codes named on its first line):
//!
//! ```text
//! ACTIONSD_TYPES_OUT=/tmp/actionsd-types cargo test --lib surface::tests::write_declarations -- --ignored
//! cd tests/types && npm ci && sh check.sh /tmp/actionsd-types
//! ```
//!
//! `check.sh` runs, for each script on its own (one action per program):
//!
//! ```text
//! node_modules/.bin/tsc --noEmit --checkJs --allowJs --strict false --lib es2022 \
//!     /tmp/actionsd-types/<flow>-<trigger>.d.ts <ok|bad>/<flow>-<trigger>/<script>.js
//! ```
//!
//! In a JavaScript file the parameters of `function name(ctx, api)` are untyped unless
//! annotated, so scripts opt in with `/** @param {Ctx} ctx @param {Api} api */` or (not for an
//! `async` function) `/** @type {ActionFunction} */`; code that uses the globals `ctx` and `api`
//! is checked as is.

use crate::domain::flow::Lang;
use crate::domain::Trigger;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------
// The table's vocabulary.

/// A named TypeScript type: an interface of members, or an alias of a type expression.
struct Shape {
    name: &'static str,
    doc: &'static str,
    body: Body,
}

enum Body {
    /// Exactly these members (the `ctx`/`api` objects: a misspelled member is an error).
    Members(&'static [Member]),
    /// These members, and whatever else the host passed (data handed through as given).
    Open(&'static [Member]),
    /// A type expression.
    Alias(&'static str),
}

struct Member {
    name: &'static str,
    doc: &'static str,
    optional: bool,
    kind: Kind,
}

enum Kind {
    /// A plain value of this TypeScript type (a snapshot: not walked for functions).
    Data(&'static str),
    /// A function: its parameters and its return type.
    Func(&'static [Param], &'static str),
    /// A nested object, declared as an interface of its own.
    Object(&'static Shape),
    /// An array whose items have this shape (its functions are listed as `path[].name`).
    List(&'static Shape),
}

struct Param {
    name: &'static str,
    ty: &'static str,
    mode: Mode,
}

#[derive(PartialEq)]
enum Mode {
    Required,
    Optional,
    Rest,
}

const fn data(name: &'static str, ty: &'static str, doc: &'static str) -> Member {
    Member { name, doc, optional: false, kind: Kind::Data(ty) }
}

const fn maybe(name: &'static str, ty: &'static str, doc: &'static str) -> Member {
    Member { name, doc, optional: true, kind: Kind::Data(ty) }
}

const fn func(name: &'static str, params: &'static [Param], ret: &'static str, doc: &'static str) -> Member {
    Member { name, doc, optional: false, kind: Kind::Func(params, ret) }
}

const fn object(name: &'static str, shape: &'static Shape, doc: &'static str) -> Member {
    Member { name, doc, optional: false, kind: Kind::Object(shape) }
}

const fn list(name: &'static str, shape: &'static Shape, doc: &'static str) -> Member {
    Member { name, doc, optional: false, kind: Kind::List(shape) }
}

const fn arg(name: &'static str, ty: &'static str) -> Param {
    Param { name, ty, mode: Mode::Required }
}

const fn opt(name: &'static str, ty: &'static str) -> Param {
    Param { name, ty, mode: Mode::Optional }
}

const fn rest(name: &'static str, ty: &'static str) -> Param {
    Param { name, ty, mode: Mode::Rest }
}

// ---------------------------------------------------------------------------------------------
// Data shapes shared by several triggers (runtime-v1.md §4.5).

static HUMAN: Shape = Shape {
    name: "Human",
    doc: "Profile, e-mail and phone of a human user.",
    body: Body::Members(&[
        data("firstName", "string", "Given name."),
        data("lastName", "string", "Family name."),
        data("nickName", "string", "Nickname."),
        data("displayName", "string", "Name shown in user interfaces."),
        data("avatarKey", "string", "Storage key of the avatar image, if any."),
        data("preferredLanguage", "string", "BCP-47 language tag as the host sent it (\"\" when it sent none; a setter given a tag that is not one writes \"und\")."),
        data("gender", "number", "0 unspecified, 1 female, 2 male, 3 diverse."),
        data("email", "string", "E-mail address."),
        data("isEmailVerified", "boolean", "Whether the e-mail address is verified."),
        data("phone", "string", "Phone number."),
        data("isPhoneVerified", "boolean", "Whether the phone number is verified."),
    ]),
};

static MACHINE: Shape = Shape {
    name: "Machine",
    doc: "A machine (service) user.",
    body: Body::Members(&[
        data("name", "string", "Name of the machine user."),
        data("description", "string", "Free text about the machine user."),
    ]),
};

static USER: Shape = Shape {
    name: "User",
    doc: "A ZITADEL user.",
    body: Body::Members(&[
        data("id", "string", "The user's id."),
        data("creationDate", "string", "When the user was created (RFC 3339)."),
        data("changeDate", "string", "When the user last changed (RFC 3339)."),
        data("resourceOwner", "string", "Id of the organization that owns the user."),
        data(
            "sequence",
            "number",
            "Sequence of the user's last event (a string of digits from the host is a number here).",
        ),
        data("state", "number", "0 unspecified, 1 active, 2 inactive, 3 deleted, 4 locked, 5 suspended, 6 initial."),
        data("username", "string", "The username."),
        data("loginNames", "string[]", "Every login name of the user."),
        data("preferredLoginName", "string", "The login name shown by default."),
        maybe("human", "Human", "Present for human users."),
        maybe("machine", "Machine", "Present for machine users."),
    ]),
};

static EXTERNAL_HUMAN: Shape = Shape {
    name: "ExternalHuman",
    doc: "Profile of a user as the external identity provider describes it.",
    body: Body::Members(&[
        data("firstName", "string", "Given name."),
        data("lastName", "string", "Family name."),
        data("nickName", "string", "Nickname."),
        data("displayName", "string", "Name shown in user interfaces."),
        data("preferredLanguage", "string", "BCP-47 language tag."),
        data("email", "string", "E-mail address."),
        data("isEmailVerified", "boolean", "Whether the e-mail address is verified."),
        data("phone", "string", "Phone number."),
        data("isPhoneVerified", "boolean", "Whether the phone number is verified."),
    ]),
};

static EXTERNAL_USER: Shape = Shape {
    name: "ExternalUser",
    doc: "The user an external identity provider returned, with the changes of the setters made so far.",
    body: Body::Members(&[
        data("externalId", "string", "The user's id at the identity provider."),
        data("externalIdpId", "string", "Id of the identity provider in ZITADEL."),
        data("preferredUsername", "string", "Username proposed for the ZITADEL user."),
        data("human", "ExternalHuman", "Profile, e-mail and phone."),
        data(
            "metadata",
            "MetadataEntry[]",
            "A copy of the metadata `api.metadata` starts with (values decoded); change it through `api.metadata`.",
        ),
    ]),
};

static METADATA_ENTRY: Shape = Shape {
    name: "MetadataEntry",
    doc: "One metadata entry to store. `value` is stored JSON-encoded.",
    body: Body::Members(&[
        data("key", "string", "Metadata key."),
        data("value", "any", "Any JSON value; entries pre-filled by the runtime hold the decoded stored value."),
    ]),
};

static METADATA_ITEM: Shape = Shape {
    name: "MetadataItem",
    doc: "One stored metadata entry.",
    body: Body::Members(&[
        data("key", "string", "Metadata key."),
        data("value", "any", "The stored bytes: parsed when they are JSON, else a string."),
        data("creationDate", "string", "When the entry was created (\"\" when the host did not say)."),
        data("changeDate", "string", "When the entry last changed (\"\" when the host did not say)."),
        data("resourceOwner", "string", "Organization that owns the entry."),
        data("sequence", "number", "Sequence of the entry's last event (0 when the host did not say)."),
    ]),
};

static METADATA_LIST: Shape = Shape {
    name: "MetadataList",
    doc: "Result of the `getMetadata()` functions.",
    body: Body::Members(&[
        data("count", "number", "Number of entries."),
        data("metadata", "MetadataItem[]", "The entries."),
    ]),
};

static USER_GRANT: Shape = Shape {
    name: "UserGrant",
    doc: "A grant of the user (an item of `ctx.v1.user.grants.grants`), as the host passed it.",
    body: Body::Open(&[
        maybe("id", "string", "Id of the grant."),
        data("projectId", "string", "Project the grant is for."),
        maybe("projectGrantId", "string", "Project grant, when the project was granted to another organization."),
        maybe("projectName", "string", "Name of the project."),
        data("roles", "string[]", "Role keys of the grant."),
        maybe("state", "any", "State of the grant."),
        func(
            "getOrgMetadata",
            &[],
            "MetadataList",
            "Metadata of the organization that owns the grant (empty when the host passed none).",
        ),
    ]),
};

static USER_GRANT_INPUT: Shape = Shape {
    name: "UserGrantInput",
    doc: "A grant to add to the new user; both spellings of the id fields are accepted.",
    body: Body::Members(&[
        maybe("projectID", "string", "Project to grant."),
        maybe("projectId", "string", "Project to grant."),
        maybe("projectGrantID", "string", "Project grant, for a project granted to the organization."),
        maybe("projectGrantId", "string", "Project grant, for a project granted to the organization."),
        data("roles", "string[]", "Role keys to grant."),
    ]),
};

static NEW_USER_GRANT: Shape = Shape {
    name: "NewUserGrant",
    doc: "Argument of `api.v1.appendUserGrant`: the project in either spelling (without one the call throws a TypeError), the project grant for a project granted to the organization, and the role keys.",
    body: Body::Alias(
        "{ projectId: string; projectGrantId?: string; roles: string[] } | { projectID: string; projectGrantID?: string; roles: string[] }",
    ),
};

static GENDER_NAME: Shape = Shape {
    name: "GenderName",
    doc: "Names `setGender` accepts besides the numbers.",
    body: Body::Alias("\"GENDER_UNSPECIFIED\" | \"GENDER_FEMALE\" | \"GENDER_MALE\" | \"GENDER_DIVERSE\""),
};

static CLAIMS: Shape = Shape {
    name: "Claims",
    doc: "Claims of the token or userinfo, by name.",
    body: Body::Alias("{ [claim: string]: any }"),
};

static AUTH_REQUEST: Shape = Shape {
    name: "AuthRequest",
    doc: "The login's auth request, as the host passed it.",
    body: Body::Alias("{ [field: string]: any }"),
};

static HTTP_REQUEST: Shape = Shape {
    name: "HttpRequest",
    doc: "The HTTP request of the login (method, url, headers …), as the host passed it.",
    body: Body::Alias("{ [field: string]: any }"),
};

static PROVIDER_INFO: Shape = Shape {
    name: "ProviderInfo",
    doc: "The external identity provider, as the host passed it.",
    body: Body::Alias("{ [field: string]: any }"),
};

static ACTOR: Shape = Shape {
    name: "Actor",
    doc: "Who acts for the user (impersonation, token exchange), as the host passed it.",
    body: Body::Alias("{ [field: string]: any }"),
};

static FETCH_OPTIONS: Shape = Shape {
    name: "FetchOptions",
    doc: "Options of `fetch`.",
    body: Body::Members(&[
        maybe("method", "string", "HTTP method (default GET)."),
        maybe(
            "headers",
            "{ [name: string]: string | string[] }",
            "Request headers; replace the default JSON Content-Type and Accept headers entirely.\nA string value is split on commas.",
        ),
        maybe("body", "unknown", "Request body, always sent JSON-serialized (a string becomes a JSON string)."),
    ]),
};

static FETCH_RESPONSE: Shape = Shape {
    name: "FetchResponse",
    doc: "The answer of `fetch` (a non-2xx status is not an error).",
    body: Body::Members(&[
        data("status", "number", "HTTP status code."),
        data("body", "string", "Response body as text."),
        data("headers", "{ [name: string]: string }", "Response headers, names in lower case."),
        func("json", &[], "any", "The body parsed as JSON; throws an Error when it is not JSON."),
        func("text", &[], "string", "The body as text."),
    ]),
};

/// Shapes that type expressions refer to by name; declared in a trigger's file when used there.
static SHARED: &[&Shape] = &[
    &USER,
    &HUMAN,
    &MACHINE,
    &EXTERNAL_USER,
    &EXTERNAL_HUMAN,
    &METADATA_ENTRY,
    &METADATA_LIST,
    &METADATA_ITEM,
    &USER_GRANT,
    &USER_GRANT_INPUT,
    &NEW_USER_GRANT,
    &GENDER_NAME,
    &CLAIMS,
    &AUTH_REQUEST,
    &HTTP_REQUEST,
    &PROVIDER_INFO,
    &ACTOR,
    &FETCH_OPTIONS,
    &FETCH_RESPONSE,
];

// ---------------------------------------------------------------------------------------------
// Members shared by several triggers.

const AUTH_REQUEST_MEMBER: Member =
    data("authRequest", "AuthRequest | null", "The auth request of the login, or null when the context has none.");
const HTTP_REQUEST_MEMBER: Member =
    data("httpRequest", "HttpRequest | null", "The HTTP request of the login, or null when the context has none.");
const AUTH_ERROR: Member = data("authError", "string", "Why the authentication failed, or \"none\" when it succeeded.");
const GET_USER: Member = func("getUser", &[], "User", "The user.");
const METADATA: Member = list(
    "metadata",
    &METADATA_ENTRY,
    "Metadata to store on the user: push `{key, value}` items (values are stored JSON-encoded).",
);

const SET_FIRST_NAME: Member = func("setFirstName", &[arg("firstName", "string")], "void", "Sets the given name.");
const SET_LAST_NAME: Member = func("setLastName", &[arg("lastName", "string")], "void", "Sets the family name.");
const SET_NICK_NAME: Member = func("setNickName", &[arg("nickName", "string")], "void", "Sets the nickname.");
const SET_DISPLAY_NAME: Member =
    func("setDisplayName", &[arg("displayName", "string")], "void", "Sets the name shown in user interfaces.");
const SET_PREFERRED_LANGUAGE: Member = func(
    "setPreferredLanguage",
    &[arg("language", "string")],
    "void",
    "Sets the preferred language (a BCP-47 tag; anything else becomes \"und\").",
);
const SET_EMAIL: Member = func("setEmail", &[arg("email", "string")], "void", "Sets the e-mail address.");
const SET_PHONE: Member = func("setPhone", &[arg("phone", "string")], "void", "Sets the phone number.");

static ORG: Shape = Shape {
    name: "CtxV1Org",
    doc: "The organization.",
    body: Body::Members(&[func("getMetadata", &[], "MetadataList", "The organization's metadata.")]),
};

static API_V1_USER_APPEND: Shape = Shape {
    name: "ApiV1User",
    doc: "Changes to the user.",
    body: Body::Members(&[func(
        "appendMetadata",
        &[arg("key", "string"), arg("value", "unknown")],
        "void",
        "Adds `{key, value}` to `api.metadata` (the value is stored JSON-encoded).",
    )]),
};

static API_V1_APPEND: Shape = Shape {
    name: "ApiV1",
    doc: "Version 1 of the api.",
    body: Body::Members(&[object("user", &API_V1_USER_APPEND, "Changes to the user.")]),
};

// ---------------------------------------------------------------------------------------------
// External Authentication / Post Authentication (1/1).

static EXT_AUTH_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[
        data("externalUser", "ExternalUser", "The external user with the changes made so far."),
        AUTH_ERROR,
        AUTH_REQUEST_MEMBER,
        HTTP_REQUEST_MEMBER,
        data(
            "providerInfo",
            "ProviderInfo | null",
            "The identity provider the user came from, or null when the context has none.",
        ),
        object("org", &ORG, "The organization."),
    ]),
};

static EXT_AUTH_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (External Authentication / Post Authentication).",
    body: Body::Members(&[
        data("accessToken", "string", "Access token of the identity provider (\"\" if none)."),
        data("idToken", "string", "ID token of the identity provider (\"\" if none)."),
        data("refreshToken", "string", "Refresh token of the identity provider (\"\" if none)."),
        func("getClaim", &[arg("name", "string")], "any", "A claim of the ID token, or null when it is absent."),
        func("claimsJSON", &[], "string", "Every claim of the ID token as a JSON text."),
        object("v1", &EXT_AUTH_CTX_V1, "Version 1 of the context."),
    ]),
};

static EXT_AUTH_API: Shape = Shape {
    name: "Api",
    doc: "What the action changes (External Authentication / Post Authentication).",
    body: Body::Members(&[
        SET_FIRST_NAME,
        SET_LAST_NAME,
        SET_NICK_NAME,
        SET_DISPLAY_NAME,
        SET_PREFERRED_LANGUAGE,
        func(
            "setPreferredUsername",
            &[arg("username", "string")],
            "void",
            "Sets the username proposed for the ZITADEL user.",
        ),
        SET_EMAIL,
        func(
            "setEmailVerified",
            &[arg("verified", "boolean")],
            "void",
            "Marks the e-mail address as verified or not.",
        ),
        SET_PHONE,
        func("setPhoneVerified", &[arg("verified", "boolean")], "void", "Marks the phone number as verified or not."),
        list(
            "metadata",
            &METADATA_ENTRY,
            "Metadata to store on the user, pre-filled with the external user's metadata (values decoded).\nPush `{key, value}` items or change existing ones.",
        ),
        object("v1", &API_V1_APPEND, "Version 1 of the api."),
    ]),
};

// ---------------------------------------------------------------------------------------------
// Pre Creation (1/2, 3/2).

static PRE_CREATION_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[
        data("user", "User", "The user about to be created, with the changes made so far."),
        AUTH_REQUEST_MEMBER,
        HTTP_REQUEST_MEMBER,
    ]),
};

static PRE_CREATION_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (Pre Creation).",
    body: Body::Members(&[object("v1", &PRE_CREATION_CTX_V1, "Version 1 of the context.")]),
};

static PRE_CREATION_API: Shape = Shape {
    name: "Api",
    doc: "What the action changes on the user about to be created (Pre Creation).",
    body: Body::Members(&[
        SET_FIRST_NAME,
        SET_LAST_NAME,
        SET_NICK_NAME,
        SET_DISPLAY_NAME,
        SET_PREFERRED_LANGUAGE,
        func(
            "setGender",
            &[arg("gender", "number | GenderName")],
            "void",
            "Sets the gender: 0 unspecified, 1 female, 2 male, 3 diverse (any other value: 0).",
        ),
        func("setUsername", &[arg("username", "string")], "void", "Sets the username."),
        SET_EMAIL,
        func(
            "setEmailVerified",
            &[arg("verified", "boolean")],
            "void",
            "Marks the e-mail address as verified or not (ignored while the user has no e-mail address).",
        ),
        SET_PHONE,
        func(
            "setPhoneVerified",
            &[arg("verified", "boolean")],
            "void",
            "Marks the phone number as verified or not (ignored while the user has no phone number).",
        ),
        METADATA,
        object("v1", &API_V1_APPEND, "Version 1 of the api."),
    ]),
};

// ---------------------------------------------------------------------------------------------
// Post Creation (1/3, 3/3).

static POST_CREATION_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[GET_USER, AUTH_REQUEST_MEMBER, HTTP_REQUEST_MEMBER]),
};

static POST_CREATION_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (Post Creation).",
    body: Body::Members(&[object("v1", &POST_CREATION_CTX_V1, "Version 1 of the context.")]),
};

static POST_CREATION_API_V1: Shape = Shape {
    name: "ApiV1",
    doc: "Version 1 of the api.",
    body: Body::Members(&[func(
        "appendUserGrant",
        &[arg("grant", "NewUserGrant")],
        "void",
        "Adds a grant for the new user; throws a TypeError without `projectId`.",
    )]),
};

static POST_CREATION_API: Shape = Shape {
    name: "Api",
    doc: "What the action adds for the new user (Post Creation).",
    body: Body::Members(&[
        list("userGrants", &USER_GRANT_INPUT, "Grants to add to the new user: push `{projectID, roles}` items."),
        object("v1", &POST_CREATION_API_V1, "Version 1 of the api."),
    ]),
};

// ---------------------------------------------------------------------------------------------
// Internal Authentication / Post Authentication (3/1).

static INT_AUTH_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[
        data(
            "authMethod",
            "string",
            "How the user authenticated: \"password\", \"OTP\", \"OTP SMS\", \"OTP Email\", \"U2F\" or \"passwordless\".",
        ),
        AUTH_ERROR,
        AUTH_REQUEST_MEMBER,
        HTTP_REQUEST_MEMBER,
    ]),
};

static INT_AUTH_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (Internal Authentication / Post Authentication).",
    body: Body::Members(&[object("v1", &INT_AUTH_CTX_V1, "Version 1 of the context.")]),
};

static INT_AUTH_API: Shape = Shape {
    name: "Api",
    doc: "What the action changes (Internal Authentication / Post Authentication).",
    body: Body::Members(&[
        list("metadata", &METADATA_ENTRY, "Metadata to store on the user (starts empty): push `{key, value}` items."),
        object("v1", &API_V1_APPEND, "Version 1 of the api."),
    ]),
};

// ---------------------------------------------------------------------------------------------
// Complement Token (2/4, 2/5) and Complement SAMLResponse (4/6).

static USER_GRANTS: Shape = Shape {
    name: "CtxV1UserGrants",
    doc: "The user's grants.",
    body: Body::Members(&[data("count", "number", "Number of grants."), list("grants", &USER_GRANT, "The grants.")]),
};

static COMPLEMENT_USER: Shape = Shape {
    name: "CtxV1User",
    doc: "The user's metadata and grants.",
    body: Body::Members(&[
        func("getMetadata", &[], "MetadataList", "The user's metadata, with the changes of earlier actions."),
        object("grants", &USER_GRANTS, "The user's grants."),
    ]),
};

static APPLICATION: Shape = Shape {
    name: "CtxV1Application",
    doc: "The application the token is for.",
    body: Body::Members(&[func("getClientId", &[], "string", "The application's client id (\"\" if unknown).")]),
};

static TOKEN_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[
        data("claims", "Claims", "The claims so far, including those set by earlier actions."),
        GET_USER,
        object("user", &COMPLEMENT_USER, "The user's metadata and grants."),
        object("org", &ORG, "The organization."),
        object("application", &APPLICATION, "The application the token is for."),
        data("actor", "Actor | null", "Who acts for the user, or null."),
    ]),
};

static TOKEN_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (Complement Token).",
    body: Body::Members(&[object("v1", &TOKEN_CTX_V1, "Version 1 of the context.")]),
};

static API_V1_USER_SET: Shape = Shape {
    name: "ApiV1User",
    doc: "Changes to the user.",
    body: Body::Members(&[func(
        "setMetadata",
        &[arg("key", "string"), arg("value", "unknown")],
        "void",
        "Stores a metadata entry on the user (the value is stored JSON-encoded).",
    )]),
};

static CLAIMS_API: Shape = Shape {
    name: "ApiV1Claims",
    doc: "Claims to add.",
    body: Body::Members(&[
        func(
            "setClaim",
            &[arg("key", "string"), arg("value", "unknown")],
            "void",
            "Adds a claim. Keys starting with \"urn:zitadel:iam\" are ignored; an existing claim is kept\nand the action's log claim notes it.",
        ),
        func(
            "appendLogIntoClaims",
            &[arg("entry", "string")],
            "void",
            "Adds an entry to the action's log claim `urn:zitadel:iam:action:<name>:log`.",
        ),
    ]),
};

static TOKEN_API_V1: Shape = Shape {
    name: "ApiV1",
    doc: "Version 1 of the api.",
    body: Body::Members(&[
        object("claims", &CLAIMS_API, "Claims to add."),
        object("userinfo", &CLAIMS_API, "The same as `claims`."),
        object("user", &API_V1_USER_SET, "Changes to the user."),
    ]),
};

static TOKEN_API: Shape = Shape {
    name: "Api",
    doc: "What the action adds (Complement Token).",
    body: Body::Members(&[object("v1", &TOKEN_API_V1, "Version 1 of the api.")]),
};

static SAML_CTX_V1: Shape = Shape {
    name: "CtxV1",
    doc: "Version 1 of the context.",
    body: Body::Members(&[
        GET_USER,
        object("user", &COMPLEMENT_USER, "The user's metadata and grants."),
        object("org", &ORG, "The organization."),
    ]),
};

static SAML_CTX: Shape = Shape {
    name: "Ctx",
    doc: "What the action reads (Complement SAMLResponse).",
    body: Body::Members(&[object("v1", &SAML_CTX_V1, "Version 1 of the context.")]),
};

static ATTRIBUTES_API: Shape = Shape {
    name: "ApiV1Attributes",
    doc: "SAML attributes to add.",
    body: Body::Members(&[func(
        "setCustomAttribute",
        &[arg("name", "string"), arg("nameFormat", "string"), rest("values", "string")],
        "void",
        "Adds an attribute with its values; the first call for a name wins, later ones are ignored.",
    )]),
};

static SAML_API_V1: Shape = Shape {
    name: "ApiV1",
    doc: "Version 1 of the api.",
    body: Body::Members(&[
        object("attributes", &ATTRIBUTES_API, "SAML attributes to add."),
        object("user", &API_V1_USER_SET, "Changes to the user."),
    ]),
};

static SAML_API: Shape = Shape {
    name: "Api",
    doc: "What the action adds (Complement SAMLResponse).",
    body: Body::Members(&[object("v1", &SAML_API_V1, "Version 1 of the api.")]),
};

/// `ctx` and `api` of a trigger.
fn surface(trigger: Trigger) -> (&'static Shape, &'static Shape) {
    use Trigger::*;
    match trigger {
        ExternalPostAuthentication => (&EXT_AUTH_CTX, &EXT_AUTH_API),
        ExternalPreCreation | InternalPreCreation => (&PRE_CREATION_CTX, &PRE_CREATION_API),
        ExternalPostCreation | InternalPostCreation => (&POST_CREATION_CTX, &POST_CREATION_API),
        InternalPostAuthentication => (&INT_AUTH_CTX, &INT_AUTH_API),
        PreUserinfoCreation | PreAccessTokenCreation => (&TOKEN_CTX, &TOKEN_API),
        PreSamlResponseCreation => (&SAML_CTX, &SAML_API),
    }
}

// ---------------------------------------------------------------------------------------------
// Modules and console (runtime-v1.md §5, authoring.md §1).

/// The note on formatting shared by the log functions' docs.
macro_rules! log_doc {
    ($first:literal) => {
        concat!(
            $first,
            "\nThe first argument may hold %s %d %i %f %j %o %% placeholders; further arguments are appended, space-separated."
        )
    };
}

static LOG_MEMBERS: &[Member] = &[
    func("log", &[rest("args", "any")], "void", log_doc!("Writes an info record to the run's log.")),
    func("info", &[rest("args", "any")], "void", log_doc!("Writes an info record to the run's log.")),
    func("debug", &[rest("args", "any")], "void", log_doc!("Writes a debug record to the run's log.")),
    func("warn", &[rest("args", "any")], "void", log_doc!("Writes a warn record to the run's log.")),
    func("error", &[rest("args", "any")], "void", log_doc!("Writes an error record to the run's log.")),
];

static HTTP_MODULE: Shape = Shape {
    name: "ZitadelHttp",
    doc: "The module `zitadel/http`.",
    body: Body::Members(&[func(
        "fetch",
        &[arg("url", "string"), opt("options", "FetchOptions")],
        "FetchResponse",
        "Calls a URL synchronously (no Promise). Network failures, denied hosts and oversized bodies\nthrow a catchable Error.",
    )]),
};

static LOG_MODULE: Shape = Shape {
    name: "ZitadelLog",
    doc: "The module `zitadel/log`: records in the run's log.",
    body: Body::Members(LOG_MEMBERS),
};

static UUID_MODULE: Shape = Shape {
    name: "ZitadelUuid",
    doc: "The module `zitadel/uuid`: UUIDs as strings.",
    body: Body::Members(&[
        func("v1", &[], "string", "A time-based UUID."),
        func("v4", &[], "string", "A random UUID."),
        func("v7", &[], "string", "A time-ordered random UUID."),
        func(
            "v3",
            &[arg("namespace", "string"), arg("name", "string")],
            "string",
            "The MD5 name-based UUID of `name` in `namespace` (a UUID string).",
        ),
        func(
            "v5",
            &[arg("namespace", "string"), arg("name", "string")],
            "string",
            "The SHA-1 name-based UUID of `name` in `namespace` (a UUID string).",
        ),
        data("namespaceDNS", "string", "Namespace for domain names."),
        data("namespaceURL", "string", "Namespace for URLs."),
        data("namespaceOID", "string", "Namespace for ISO object identifiers."),
        data("namespaceX500", "string", "Namespace for X.500 distinguished names."),
    ]),
};

static SECRETS_MODULE: Shape = Shape {
    name: "ZitadelSecrets",
    doc: "The module `zitadel/secrets`: the organization's action secrets.",
    body: Body::Members(&[func(
        "get",
        &[arg("name", "string")],
        "string | undefined",
        "The secret's value, or undefined when the organization has no secret of that name.",
    )]),
};

static CONSOLE: Shape = Shape {
    name: "Console",
    doc: "The global `console`: writes to the run's log like `zitadel/log`.",
    body: Body::Members(LOG_MEMBERS),
};

/// The modules `require` knows, with the local name used in their ambient declaration.
static MODULES: &[(&str, &str, &Shape)] = &[
    ("zitadel/http", "http", &HTTP_MODULE),
    ("zitadel/log", "log", &LOG_MODULE),
    ("zitadel/uuid", "uuid", &UUID_MODULE),
    ("zitadel/secrets", "secrets", &SECRETS_MODULE),
];

// ---------------------------------------------------------------------------------------------
// Rendering the declarations.

fn trigger_title(trigger: Trigger) -> String {
    format!(
        "{} / {} (flow {}, trigger {})",
        trigger.flow().name(Lang::En),
        trigger.trigger_type().name(Lang::En),
        trigger.flow().0,
        trigger.trigger_type().0
    )
}

fn doc_comment(out: &mut String, indent: &str, doc: &str) {
    let lines: Vec<&str> = doc.lines().collect();
    match lines.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(out, "{indent}/** {one} */");
        }
        many => {
            let _ = writeln!(out, "{indent}/**");
            for line in many {
                let _ = writeln!(out, "{indent} * {line}");
            }
            let _ = writeln!(out, "{indent} */");
        }
    }
}

fn param_text(p: &Param) -> String {
    match p.mode {
        Mode::Required => format!("{}: {}", p.name, p.ty),
        Mode::Optional => format!("{}?: {}", p.name, p.ty),
        Mode::Rest if p.ty.contains(' ') => format!("...{}: ({})[]", p.name, p.ty),
        Mode::Rest => format!("...{}: {}[]", p.name, p.ty),
    }
}

fn member_text(m: &Member) -> String {
    let optional = if m.optional { "?" } else { "" };
    match &m.kind {
        Kind::Data(ty) => format!("{}{optional}: {ty};", m.name),
        Kind::Func(params, ret) => {
            let params: Vec<String> = params.iter().map(param_text).collect();
            format!("{}({}): {ret};", m.name, params.join(", "))
        }
        Kind::Object(shape) => format!("{}{optional}: {};", m.name, shape.name),
        Kind::List(shape) => format!("{}{optional}: {}[];", m.name, shape.name),
    }
}

fn shape_text(shape: &Shape) -> String {
    let mut out = String::new();
    doc_comment(&mut out, "", shape.doc);
    match &shape.body {
        Body::Alias(ty) => {
            let _ = writeln!(out, "type {} = {ty};", shape.name);
        }
        Body::Members(members) | Body::Open(members) => {
            let _ = writeln!(out, "interface {} {{", shape.name);
            for m in members.iter() {
                doc_comment(&mut out, "  ", m.doc);
                let _ = writeln!(out, "  {}", member_text(m));
            }
            if matches!(shape.body, Body::Open(_)) {
                let _ = writeln!(out, "  /** Further fields, as the host passed them. */");
                let _ = writeln!(out, "  [field: string]: any;");
            }
            let _ = writeln!(out, "}}");
        }
    }
    out
}

/// Names of shared shapes a type expression refers to.
fn referenced(ty: &str) -> impl Iterator<Item = &'static Shape> + '_ {
    ty.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| SHARED.iter().copied().find(|s| s.name == word))
}

/// Adds `shape` and every shape it refers to (depth first), once per name. Two different shapes
/// of one name in one file would merge into a wrong interface: that is a bug of the table.
fn collect(shape: &'static Shape, out: &mut Vec<&'static Shape>) {
    if let Some(seen) = out.iter().find(|s| s.name == shape.name) {
        assert!(
            std::ptr::eq(*seen, shape) || shape_text(seen) == shape_text(shape),
            "two different shapes are named {}",
            shape.name
        );
        return;
    }
    out.push(shape);
    match &shape.body {
        Body::Alias(ty) => referenced(ty).for_each(|s| collect(s, out)),
        Body::Members(members) | Body::Open(members) => {
            for m in members.iter() {
                match &m.kind {
                    Kind::Data(ty) => referenced(ty).for_each(|s| collect(s, out)),
                    Kind::Func(params, ret) => {
                        for p in params.iter() {
                            referenced(p.ty).for_each(|s| collect(s, out));
                        }
                        referenced(ret).for_each(|s| collect(s, out));
                    }
                    Kind::Object(s) | Kind::List(s) => collect(s, out),
                }
            }
        }
    }
}

/// The TypeScript declarations (`types.d.ts`) of a trigger: `ctx`, `api`, the modules of
/// `require` and `console`, with doc comments.
pub fn declarations(trigger: Trigger) -> String {
    let (ctx, api) = surface(trigger);
    let title = trigger_title(trigger);
    let mut out = String::new();
    let _ = writeln!(out, "// Declarations for actionsd v1 actions of {title}.");
    out.push_str(
        "// Generated by actionsd from its runtime's own description; do not edit.\n\
         //\n\
         // The action is a global function called as `name(ctx, api)`. Annotate it to have its\n\
         // parameters checked in a JavaScript file:\n\
         //   /** @param {Ctx} ctx @param {Api} api */\n\
         //   function name(ctx, api) { ... }\n\
         // or, for a function that is not `async`, `/** @type {ActionFunction} */` above it.\n\
         // Use no DOM library (e.g. `--lib es2022`): the sandbox has the ECMAScript built-ins\n\
         // only, plus what is declared here.\n\n",
    );
    doc_comment(&mut out, "", "The first argument of the action: what it reads.");
    out.push_str("declare const ctx: Ctx;\n");
    doc_comment(&mut out, "", "The second argument of the action: what it changes.");
    out.push_str("declare const api: Api;\n");
    doc_comment(&mut out, "", "The type of the action function.");
    out.push_str("type ActionFunction = (ctx: Ctx, api: Api) => any;\n\n");

    let mut shapes = Vec::new();
    collect(ctx, &mut shapes);
    collect(api, &mut shapes);
    for (_, _, module) in MODULES {
        collect(module, &mut shapes);
    }
    collect(&CONSOLE, &mut shapes);
    for shape in &shapes {
        out.push_str(&shape_text(shape));
        out.push('\n');
    }

    for (name, local, module) in MODULES {
        let _ = writeln!(out, "declare module \"{name}\" {{");
        let _ = writeln!(out, "  const {local}: {};", module.name);
        let _ = writeln!(out, "  export = {local};");
        let _ = writeln!(out, "}}");
    }
    out.push('\n');
    doc_comment(
        &mut out,
        "",
        "Loads one of the runtime's modules; any other name throws `Error: module \"<name>\" not found`.",
    );
    for (name, _, module) in MODULES {
        let _ = writeln!(out, "declare function require(name: \"{name}\"): {};", module.name);
    }
    out.push('\n');
    doc_comment(&mut out, "", CONSOLE.doc);
    out.push_str("declare var console: Console;\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Function paths.

fn function_paths_in(shape: &Shape, path: &str, out: &mut Vec<String>) {
    let (Body::Members(members) | Body::Open(members)) = &shape.body else { return };
    for m in members.iter() {
        let here = format!("{path}.{}", m.name);
        match &m.kind {
            Kind::Data(_) => {}
            Kind::Func(..) => out.push(here),
            Kind::Object(s) => function_paths_in(s, &here, out),
            Kind::List(s) => function_paths_in(s, &format!("{here}[]"), out),
        }
    }
}

/// Every function of `ctx` and `api` of a trigger as a dotted path rooted at `ctx`/`api`, sorted.
/// Functions of array items are written `path[].name`
/// (e.g. `ctx.v1.user.grants.grants[].getOrgMetadata`).
pub fn function_paths(trigger: Trigger) -> Vec<String> {
    let (ctx, api) = surface(trigger);
    let mut out = Vec::new();
    function_paths_in(ctx, "ctx", &mut out);
    function_paths_in(api, "api", &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// JSON Schemas.

const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The context keys `_execute` checks the type of, whatever the trigger (`check_context` in
/// src/api/execute.rs): a value of another type is a 400.
const CHECKED_KEYS: &[(&str, &str)] = &[
    ("externalUser", "object"),
    ("authRequest", "object"),
    ("httpRequest", "object"),
    ("providerInfo", "object"),
    ("idTokenClaims", "object"),
    ("org", "object"),
    ("user", "object"),
    ("claims", "object"),
    ("application", "object"),
    ("actor", "object"),
    ("authError", "string"),
    ("accessToken", "string"),
    ("idToken", "string"),
    ("refreshToken", "string"),
    ("authMethod", "string"),
    ("userMetadata", "array"),
    ("userGrants", "array"),
];

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn free_object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

fn string_array(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

/// A string of digits: a uint64 as protobuf's JSON writes it.
pub(crate) const DIGITS_PATTERN: &str = "^[0-9]+$";

/// Base64 as the server reads it (`domain::bytes::decode_base64`): the standard or the URL-safe
/// alphabet (not mixed), padding optional, and the unused bits of a last partial group zero, so
/// that a validator of the served schema refuses exactly what `_execute` refuses
/// (`contentEncoding` alone is an annotation validators do not check).
pub(crate) const BASE64_PATTERN: &str = "^(?:(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw](?:==?)?|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?)?|(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw](?:==?)?|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]=?)?)$";

/// `[{key, value}]` with base64 values, as in ZITADEL's APIs. In a context nothing is required:
/// protobuf's JSON leaves out an empty key or value, and the server reads such items.
fn metadata_schema(description: &str, closed: bool) -> Value {
    let mut item = json!({
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "value": {"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN,
                "description": "The stored bytes, base64-encoded."},
        },
    });
    if closed {
        item["additionalProperties"] = json!(false);
        item["required"] = json!(["key", "value"]);
    }
    json!({"type": "array", "items": item, "description": description})
}

/// An enum given as its number (or, in a context, by name).
fn enum_schema(names: &[&str], by_name: bool, description: &str) -> Value {
    if by_name {
        json!({"anyOf": [{"type": "integer"}, {"type": "string", "enum": names}], "description": description})
    } else {
        // Effects carry a context's number through unchanged (any integer the context schema
        // allows), so no bounds here.
        json!({"type": "integer", "description": description})
    }
}

fn human_schema(in_context: bool) -> Value {
    json!({
        "type": "object",
        "properties": {
            "firstName": {"type": "string"},
            "lastName": {"type": "string"},
            "nickName": {"type": "string"},
            "displayName": {"type": "string"},
            "avatarKey": {"type": "string"},
            "preferredLanguage": {"type": "string"},
            "gender": enum_schema(super::GENDERS, in_context, "0 unspecified, 1 female, 2 male, 3 diverse"),
            "email": {"type": "string"},
            "isEmailVerified": {"type": "boolean"},
            "phone": {"type": "string"},
            "isPhoneVerified": {"type": "boolean"},
        },
    })
}

fn user_schema(in_context: bool, description: &str) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": {
            "id": {"type": "string"},
            "creationDate": {"type": "string"},
            "changeDate": {"type": "string"},
            "resourceOwner": {"type": "string"},
            "sequence": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": DIGITS_PATTERN}],
                "description": "uint64: a number, or a string of digits as protobuf's JSON writes it."},
            "state": enum_schema(super::USER_STATES, in_context, "0 unspecified, 1 active, 2 inactive, 3 deleted, 4 locked, 5 suspended, 6 initial"),
            "username": {"type": "string"},
            "loginNames": {"type": "array", "items": {"type": "string"}},
            "preferredLoginName": {"type": "string"},
            "human": human_schema(in_context),
            "machine": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
            },
        },
    })
}

fn external_user_schema(in_context: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "properties": {
            "externalId": {"type": "string"},
            "externalIdpId": {"type": "string"},
            "preferredUsername": {"type": "string"},
            "human": {
                "type": "object",
                "properties": {
                    "firstName": {"type": "string"},
                    "lastName": {"type": "string"},
                    "nickName": {"type": "string"},
                    "displayName": {"type": "string"},
                    "preferredLanguage": {"type": "string"},
                    "email": {"type": "string"},
                    "isEmailVerified": {"type": "boolean"},
                    "phone": {"type": "string"},
                    "isPhoneVerified": {"type": "boolean"},
                },
            },
        },
    });
    if in_context {
        schema["description"] = json!("The user the external identity provider returned.");
        schema["properties"]["metadata"] =
            metadata_schema("The external user's metadata; pre-fills `api.metadata`.", false);
    } else {
        schema["description"] = json!("The external user after the actions' setters (its metadata is in `metadata`).");
    }
    schema
}

fn org_schema(with_domain: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "description": "The organization.",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "metadata": metadata_schema("The organization's metadata (`ctx.v1.org.getMetadata()`).", false),
        },
    });
    if with_domain {
        schema["properties"]["primaryDomain"] = json!({"type": "string"});
    }
    schema
}

fn user_grants_context_schema() -> Value {
    json!({
        "type": "array",
        "description": "The user's grants (`ctx.v1.user.grants`).",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "projectId": {"type": "string"},
                "projectGrantId": {"type": "string"},
                "projectName": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string"}},
                "state": {},
                "orgMetadata": metadata_schema("Metadata of the organization that owns the grant (`getOrgMetadata()`).", false),
            },
        },
    })
}

/// The context keys a trigger reads (execute.md §1.1), with their schemas.
fn context_fields(trigger: Trigger) -> Vec<(&'static str, Value)> {
    use Trigger::*;
    let auth_request =
        || ("authRequest", free_object("The login's auth request, passed through to `ctx.v1.authRequest`."));
    let http_request =
        || ("httpRequest", free_object("The login's HTTP request, passed through to `ctx.v1.httpRequest`."));
    let auth_error = || {
        let mut s = string("Why the authentication failed; \"none\" (the default) when it succeeded.");
        s["default"] = json!("none");
        ("authError", s)
    };
    let complement = |token: bool| {
        let mut fields = Vec::new();
        if token {
            fields.push(("claims", free_object("The claims so far (`ctx.v1.claims`).")));
        }
        fields.push(("user", user_schema(true, "The user (`ctx.v1.getUser()`).")));
        fields.push(("userMetadata", metadata_schema("The user's metadata (`ctx.v1.user.getMetadata()`).", false)));
        fields.push(("userGrants", user_grants_context_schema()));
        fields.push(("org", org_schema(true)));
        if token {
            fields.push((
                "application",
                json!({
                    "type": "object",
                    "description": "The application the token is for.",
                    "properties": {"clientId": {"type": "string"}},
                }),
            ));
            fields
                .push(("actor", free_object("Who acts for the user (`ctx.v1.actor`); leave it out when nobody does.")));
        }
        fields
    };
    match trigger {
        ExternalPostAuthentication => vec![
            ("externalUser", external_user_schema(true)),
            auth_error(),
            auth_request(),
            http_request(),
            ("providerInfo", free_object("The identity provider, passed through to `ctx.v1.providerInfo`.")),
            ("accessToken", string("Access token of the identity provider.")),
            ("idToken", string("ID token of the identity provider.")),
            ("refreshToken", string("Refresh token of the identity provider.")),
            ("idTokenClaims", free_object("Claims of the ID token (`ctx.getClaim()`, `ctx.claimsJSON()`).")),
            ("org", org_schema(false)),
        ],
        ExternalPreCreation | InternalPreCreation => vec![
            ("user", user_schema(true, "The user about to be created (`ctx.v1.user`).")),
            auth_request(),
            http_request(),
            (
                "metadata",
                metadata_schema(
                    "Metadata of the registration (an actionsd extension); pre-fills `api.metadata`.",
                    false,
                ),
            ),
        ],
        ExternalPostCreation | InternalPostCreation => {
            vec![("user", user_schema(true, "The created user (`ctx.v1.getUser()`).")), auth_request(), http_request()]
        }
        InternalPostAuthentication => vec![
            (
                "authMethod",
                json!({
                    "type": "string",
                    "description": "How the user authenticated.",
                    "examples": ["password", "OTP", "OTP SMS", "OTP Email", "U2F", "passwordless"],
                }),
            ),
            auth_error(),
            auth_request(),
            http_request(),
        ],
        PreUserinfoCreation | PreAccessTokenCreation => complement(true),
        PreSamlResponseCreation => complement(false),
    }
}

/// The context schema the server checks `_execute`'s contexts against, built once per trigger
/// (it is constant).
pub fn checked_context_schema(trigger: Trigger) -> &'static Value {
    static SCHEMAS: std::sync::OnceLock<Vec<(Trigger, Value)>> = std::sync::OnceLock::new();
    let all = SCHEMAS.get_or_init(|| Trigger::ALL.iter().map(|t| (*t, context_schema(*t))).collect());
    &all.iter().find(|(t, _)| *t == trigger).expect("a schema for every trigger").1
}

/// A trigger's context without the members its shape does not name (execute.md: unknown fields
/// are ignored), whoever built it: `_execute`'s caller or the connector from ZITADEL's payload.
pub fn prune_context(trigger: Trigger, context: &mut Value) {
    prune(checked_context_schema(trigger), context);
}

/// Drops the members of an object that its schema does not name, where the schema names its
/// members (`properties`, with those of `allOf` at the top: keys other triggers read); objects
/// whose schema names none (free-form: claims, an auth request) keep every member.
pub fn prune(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if !names_members(schema) {
                return;
            }
            map.retain(|key, member| match member_schema(schema, key) {
                Some(sub) => {
                    prune(sub, member);
                    true
                }
                None => false,
            });
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    prune(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// The parts of an object's schema that name members: itself and, at a context's top, its
/// `allOf` (keys other triggers read).
fn schema_parts(schema: &Value) -> impl Iterator<Item = &Value> {
    std::iter::once(schema).chain(schema["allOf"].as_array().into_iter().flatten())
}

/// Whether an object's schema names its members (else the object is free-form).
pub fn names_members(schema: &Value) -> bool {
    schema_parts(schema).any(|part| part["properties"].as_object().is_some_and(|p| !p.is_empty()))
}

/// The schema of the member `key` of an object of `schema`; None for a member it does not name.
pub fn member_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema_parts(schema).find_map(|part| part["properties"].get(key))
}

/// The context schema as served (`context.schema.json`), which says what `_execute` takes: a
/// `null` member anywhere in the context is taken as absent (or, in the free-form members, as a
/// value), so every member's schema also admits `null`. (The server's own check reads the schema
/// without this: nulls are gone before it looks.)
pub fn served_context_schema(trigger: Trigger) -> Value {
    let mut schema = context_schema(trigger);
    fn member(s: &mut serde_json::Value) {
        use serde_json::Value;
        let Some(obj) = s.as_object_mut() else { return };
        match obj.get_mut("type") {
            Some(Value::String(ty)) => {
                let ty = std::mem::take(ty);
                obj.insert("type".into(), serde_json::json!([ty, "null"]));
            }
            Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => types.push("null".into()),
            Some(_) => {}
            None => {
                if let Some(Value::Array(branches)) = obj.get_mut("anyOf") {
                    branches.push(serde_json::json!({"type": "null"}));
                }
            }
        }
        if let Some(Value::Array(names)) = obj.get_mut("enum") {
            names.push(Value::Null);
        }
        within(s);
    }
    fn within(s: &mut serde_json::Value) {
        use serde_json::Value;
        let Some(obj) = s.as_object_mut() else { return };
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            props.values_mut().for_each(member);
        }
        // The items of a list are not nullable: `null` is taken for an absent member, and a
        // list has no absent items (`[null]` is refused, naming the item).
        if let Some(items) = obj.get_mut("items") {
            within(items);
        }
        for key in ["anyOf", "allOf"] {
            if let Some(Value::Array(branches)) = obj.get_mut(key) {
                branches.iter_mut().for_each(within);
            }
        }
    }
    within(&mut schema);
    schema
}

/// JSON Schema (2020-12) of `_execute`'s `context` for a trigger. Unknown keys are allowed (the
/// server ignores them); keys the server type-checks for every trigger keep that type here too.
pub fn context_schema(trigger: Trigger) -> Value {
    let fields = context_fields(trigger);
    let mut properties = Map::new();
    for (key, schema) in &fields {
        properties.insert((*key).to_string(), schema.clone());
    }
    let mut others = Map::new();
    for (key, ty) in CHECKED_KEYS {
        if !properties.contains_key(*key) {
            others.insert((*key).to_string(), json!({"type": ty}));
        }
    }
    let mut schema = json!({
        "$schema": SCHEMA_DIALECT,
        "title": format!("Context of {}", trigger_title(trigger)),
        "description": "The `context` of ExecuteFlowTrigger for this trigger (execute.md §1.1). Unknown keys are ignored.",
        "type": "object",
        "properties": properties,
        "additionalProperties": true,
    });
    if !others.is_empty() {
        schema["allOf"] = json!([{
            "description": "Keys other triggers read: not used here, but a value of another type is still rejected.",
            "properties": others,
        }]);
    }
    schema
}

fn effect_schema(key: &str) -> Value {
    match key {
        "externalUser" => external_user_schema(false),
        "user" => user_schema(false, "The user to create, after the actions' setters."),
        "metadata" => metadata_schema(
            "Metadata the actions wrote, one entry per key (the last write wins); values are the JSON-encoded value, base64-encoded.",
            true,
        ),
        "userGrants" => json!({
            "type": "array",
            "description": "Grants to add to the new user.",
            "items": {
                "type": "object",
                "description": "Zero values are omitted: an empty `projectId` or `roles` list is absent.",
                "properties": {
                    "projectId": {"type": "string"},
                    "projectGrantId": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                },
                "additionalProperties": false,
            },
        }),
        "claims" => json!({
            "type": "object",
            "description": "Claims the actions added (any JSON values), including their log claims.",
            "patternProperties": {
                "^urn:zitadel:iam:action:.+:log$": string_array("The log of one action (appendLogIntoClaims, refused claims)."),
            },
        }),
        "attributes" => json!({
            "type": "array",
            "description": "SAML attributes the actions added, one per name.",
            "items": {
                "type": "object",
                "description": "Zero values are omitted: an empty `name`, `nameFormat` or `values` list is absent.",
                "properties": {
                    "name": {"type": "string"},
                    "nameFormat": {"type": "string"},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
                "additionalProperties": false,
            },
        }),
        other => unreachable!("no schema for the effect {other}"),
    }
}

/// JSON Schema (2020-12) of the `effects` a trigger can produce: only its keys (each omitted
/// when empty).
pub fn effects_schema(trigger: Trigger) -> Value {
    let mut properties = Map::new();
    for key in crate::runtime::trigger::effect_keys(trigger) {
        properties.insert((*key).to_string(), effect_schema(key));
    }
    json!({
        "$schema": SCHEMA_DIALECT,
        "title": format!("Effects of {}", trigger_title(trigger)),
        "description": "The `effects` of ExecuteFlowTrigger for this trigger; keys with nothing in them are left out.",
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{worker, Job};
    use std::collections::{BTreeMap, BTreeSet};

    /// A context with something in every field any trigger reads, so that every member the
    /// runtime builds only for present data shows up.
    fn rich_context() -> Value {
        let meta = |k: &str, v: &str| json!({"key": k, "value": base64_of(v)});
        let user = json!({
            "id": "100", "creationDate": "2024-01-01T00:00:00Z", "changeDate": "2024-01-02T00:00:00Z",
            "resourceOwner": "1", "sequence": "3", "state": "USER_STATE_ACTIVE", "username": "alice",
            "loginNames": ["alice@example.com"], "preferredLoginName": "alice@example.com",
            "human": {"firstName": "Alice", "lastName": "A", "email": "alice@example.com", "phone": "+41000000000",
                "gender": "GENDER_FEMALE"},
        });
        json!({
            "externalUser": {
                "externalId": "ext-1", "externalIdpId": "idp-1", "preferredUsername": "alice",
                "human": {"firstName": "Alice", "email": "alice@example.com"},
                "metadata": [meta("from_idp", "\"yes\"")],
            },
            "authError": "none",
            "authMethod": "password",
            "authRequest": {"id": "ar-1", "clientId": "app"},
            "httpRequest": {"method": "POST", "url": "https://login.example.com/", "headers": {"x": ["1"]}},
            "providerInfo": {"id": "idp-1", "name": "Acme IdP"},
            "accessToken": "at", "idToken": "it", "refreshToken": "rt",
            "idTokenClaims": {"sub": "ext-1", "groups": ["a"]},
            "org": {"id": "1", "name": "Acme", "primaryDomain": "acme.example.com", "metadata": [meta("tier", "\"gold\"")]},
            "user": user,
            "metadata": [meta("signup", "\"web\"")],
            "claims": {"sub": "100"},
            "userMetadata": [meta("lang", "\"de\"")],
            "userGrants": [{"id": "g1", "projectId": "p1", "projectName": "Shop", "roles": ["admin"],
                "orgMetadata": [meta("plan", "\"pro\"")]}],
            "application": {"clientId": "client-1"},
            "actor": {"issuer": "https://issuer.example.com", "subject": "200"},
        })
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    }

    /// Walks `ctx` and `api` (own properties, plus those of a prototype that is not a built-in
    /// one; the first item of arrays as `path[]`) and logs two records: the sorted function
    /// paths, and every object's property names by path.
    const WALKER: &str = r#"
function walk(ctx, api) {
  var functions = [];
  var objects = {};
  var builtins = [Object.prototype, Array.prototype, Function.prototype];
  function visit(value, path, ancestors) {
    if (value === null || typeof value !== 'object' || ancestors.indexOf(value) >= 0) return;
    ancestors = ancestors.concat([value]);
    if (Array.isArray(value)) {
      if (value.length > 0) visit(value[0], path + '[]', ancestors);
      return;
    }
    var names = Object.getOwnPropertyNames(value);
    var proto = Object.getPrototypeOf(value);
    if (proto !== null && builtins.indexOf(proto) < 0) names = names.concat(Object.getOwnPropertyNames(proto));
    var unique = [];
    names.forEach(function (n) { if (unique.indexOf(n) < 0) unique.push(n); });
    unique.sort();
    objects[path] = unique;
    unique.forEach(function (name) {
      var member = value[name];
      if (typeof member === 'function') functions.push(path + '.' + name);
      else visit(member, path + '.' + name, ancestors);
    });
  }
  visit(ctx, 'ctx', []);
  visit(api, 'api', []);
  functions.sort();
  console.log(JSON.stringify(functions));
  console.log(JSON.stringify(objects));
}
"#;

    /// A job of `trigger` with the rich context; the other fields as the benchmark's job has them
    /// (no secrets, no deadline of its own).
    fn job(trigger: Trigger, name: &str, script: &str) -> Job {
        Job {
            script: script.into(),
            name: name.into(),
            flow: trigger.flow().0,
            trigger: trigger.trigger_type().0,
            context: rich_context(),
            state: json!({}),
            secrets: Default::default(),
            ..crate::runtime::bench::job()
        }
    }

    /// Property names of every object the table describes as an interface of its own, by path.
    fn object_members(shape: &Shape, path: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
        let Body::Members(members) = &shape.body else { return };
        out.insert(path.to_string(), members.iter().map(|m| m.name.to_string()).collect());
        for m in members.iter() {
            if let Kind::Object(s) = &m.kind {
                object_members(s, &format!("{path}.{}", m.name), out);
            }
        }
    }

    #[test]
    fn runtime_builds_exactly_the_declared_functions() {
        for trigger in Trigger::ALL {
            let result = worker::run_job(&job(trigger, "walk", WALKER));
            assert!(result.ok, "{trigger:?}: {:?}", result.error);
            assert_eq!(result.logs.len(), 2, "{trigger:?}");
            let found: Vec<String> = serde_json::from_str(&result.logs[0].message).expect("a JSON list");
            assert_eq!(found, function_paths(trigger), "{trigger:?}: runtime (left) vs table (right)");

            // Every object of ctx/api that the table spells out member by member has exactly
            // those members in the runtime (data members included).
            let objects: BTreeMap<String, BTreeSet<String>> =
                serde_json::from_str(&result.logs[1].message).expect("a JSON object");
            let (ctx, api) = surface(trigger);
            let mut expected = BTreeMap::new();
            object_members(ctx, "ctx", &mut expected);
            object_members(api, "api", &mut expected);
            for (path, names) in expected {
                assert_eq!(objects.get(&path), Some(&names), "{trigger:?}: members of {path}");
            }
        }
    }

    #[test]
    fn modules_and_console_match_the_table() {
        let script = r#"
function mods(ctx, api) {
  var out = {};
  function kinds(obj) {
    var k = {};
    Object.getOwnPropertyNames(obj).forEach(function (n) { k[n] = typeof obj[n] === 'function' ? 'function' : 'data'; });
    return k;
  }
  ['zitadel/http', 'zitadel/log', 'zitadel/uuid', 'zitadel/secrets'].forEach(function (m) { out[m] = kinds(require(m)); });
  out.console = kinds(console);
  var missing;
  try { require('zitadel/nope'); } catch (e) { missing = String(e); }
  out.missing = missing;
  console.log(JSON.stringify(out));
}
"#;
        let kinds = |shape: &Shape| -> Value {
            let Body::Members(members) = &shape.body else { panic!("{} has no members", shape.name) };
            let map: Map<String, Value> = members
                .iter()
                .map(|m| {
                    let kind = if matches!(m.kind, Kind::Func(..)) { "function" } else { "data" };
                    (m.name.to_string(), json!(kind))
                })
                .collect();
            Value::Object(map)
        };
        let mut expected = Map::new();
        for (name, _, shape) in MODULES {
            expected.insert((*name).to_string(), kinds(shape));
        }
        expected.insert("console".into(), kinds(&CONSOLE));
        expected.insert("missing".into(), json!("Error: module \"zitadel/nope\" not found"));
        for trigger in Trigger::ALL {
            let result = worker::run_job(&job(trigger, "mods", script));
            assert!(result.ok, "{trigger:?}: {:?}", result.error);
            let found: Value = serde_json::from_str(&result.logs[0].message).expect("JSON");
            assert_eq!(found, Value::Object(expected.clone()), "{trigger:?}");
        }
    }

    #[test]
    fn function_paths_per_trigger() {
        use Trigger::*;
        let paths = function_paths(PreAccessTokenCreation);
        for p in [
            "ctx.v1.getUser",
            "ctx.v1.user.getMetadata",
            "ctx.v1.user.grants.grants[].getOrgMetadata",
            "ctx.v1.org.getMetadata",
            "ctx.v1.application.getClientId",
            "api.v1.claims.setClaim",
            "api.v1.claims.appendLogIntoClaims",
            "api.v1.userinfo.setClaim",
            "api.v1.user.setMetadata",
        ] {
            assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
        }
        assert!(function_paths(ExternalPostAuthentication).contains(&"api.v1.user.appendMetadata".to_string()));
        assert!(function_paths(InternalPreCreation).contains(&"api.setGender".to_string()));
        assert!(!function_paths(ExternalPostAuthentication).contains(&"api.setGender".to_string()));
        for trigger in Trigger::ALL {
            let paths = function_paths(trigger);
            let mut sorted = paths.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(paths, sorted, "{trigger:?}: sorted, no duplicates");
            assert!(paths.iter().all(|p| p.starts_with("ctx.") || p.starts_with("api.")));
        }
    }

    /// `api` objects are closed: no index signatures, no free-form data, so that a misspelled
    /// member is an error in an editor.
    #[test]
    fn api_objects_are_closed() {
        fn check(shape: &Shape, path: &str) {
            let Body::Members(members) = &shape.body else { panic!("{path} ({}) is not closed", shape.name) };
            for m in members.iter() {
                match &m.kind {
                    Kind::Object(s) => check(s, &format!("{path}.{}", m.name)),
                    Kind::Data(ty) => panic!("{path}.{} is free data of type {ty}", m.name),
                    Kind::Func(..) | Kind::List(_) => {}
                }
            }
        }
        for trigger in Trigger::ALL {
            check(surface(trigger).1, "api");
        }
    }

    #[test]
    fn declarations_render_the_table() {
        for trigger in Trigger::ALL {
            let d = declarations(trigger);
            for needle in [
                "declare const ctx: Ctx;",
                "declare const api: Api;",
                "interface Ctx {",
                "interface Api {",
                "declare function require(name: \"zitadel/http\"): ZitadelHttp;",
                "declare function require(name: \"zitadel/log\"): ZitadelLog;",
                "declare function require(name: \"zitadel/uuid\"): ZitadelUuid;",
                "declare function require(name: \"zitadel/secrets\"): ZitadelSecrets;",
                "declare module \"zitadel/secrets\" {",
                "get(name: string): string | undefined;",
                "fetch(url: string, options?: FetchOptions): FetchResponse;",
                "declare var console: Console;",
            ] {
                assert!(d.contains(needle), "{trigger:?} lacks {needle}:\n{d}");
            }
            // Each interface or alias is declared once.
            let mut names = BTreeSet::new();
            for line in d.lines() {
                let name = line
                    .strip_prefix("interface ")
                    .or_else(|| line.strip_prefix("type "))
                    .and_then(|rest| rest.split([' ', '=']).next());
                if let Some(name) = name {
                    assert!(names.insert(name.to_string()), "{trigger:?}: {name} declared twice");
                }
            }
            // Every function path's last segment is declared.
            for path in function_paths(trigger) {
                let name = path.rsplit('.').next().expect("a name");
                assert!(d.contains(&format!("  {name}(")), "{trigger:?}: {path}");
            }
        }
        let token = declarations(Trigger::PreUserinfoCreation);
        assert!(token.contains("setClaim(key: string, value: unknown): void;"));
        assert!(token.contains("interface UserGrant {"));
        assert!(token.contains("getOrgMetadata(): MetadataList;"));
        assert!(!token.contains("setEmailVerified"));
        let ext = declarations(Trigger::ExternalPostAuthentication);
        assert!(ext.contains("setEmailVerified(verified: boolean): void;"));
        assert!(ext.contains("metadata: MetadataEntry[];"));
        assert!(!ext.contains("interface UserGrant "));
        let saml = declarations(Trigger::PreSamlResponseCreation);
        assert!(saml.contains("setCustomAttribute(name: string, nameFormat: string, ...values: string[]): void;"));
    }

    #[test]
    fn schemas_per_trigger() {
        use Trigger::*;
        for trigger in Trigger::ALL {
            for schema in [context_schema(trigger), effects_schema(trigger)] {
                let obj = schema.as_object().expect("an object");
                assert_eq!(obj["$schema"], SCHEMA_DIALECT);
                assert!(obj["title"].as_str().is_some_and(|t| !t.is_empty()));
                assert!(!obj.contains_key("$id"));
                assert_eq!(obj["type"], "object");
            }
            let context = context_schema(trigger);
            assert_eq!(context["additionalProperties"], true);
            // The server's type check holds for the trigger's own keys and for all others.
            for (key, ty) in CHECKED_KEYS {
                let own = &context["properties"][key];
                let checked = if own.is_null() { &context["allOf"][0]["properties"][key] } else { own };
                assert_eq!(checked["type"], *ty, "{trigger:?}: {key}");
            }
            let effects = effects_schema(trigger);
            assert_eq!(effects["additionalProperties"], false);
            let keys: Vec<&str> =
                effects["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
            let mut expected: Vec<&str> = crate::runtime::trigger::effect_keys(trigger).to_vec();
            expected.sort();
            let mut keys_sorted = keys.clone();
            keys_sorted.sort();
            assert_eq!(keys_sorted, expected, "{trigger:?}");
        }
        let keys = |t: Trigger| -> BTreeSet<String> {
            context_schema(t)["properties"].as_object().expect("properties").keys().cloned().collect()
        };
        let set = |k: &[&str]| -> BTreeSet<String> { k.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            keys(ExternalPostAuthentication),
            set(&[
                "externalUser",
                "authError",
                "authRequest",
                "httpRequest",
                "providerInfo",
                "accessToken",
                "idToken",
                "refreshToken",
                "idTokenClaims",
                "org"
            ])
        );
        assert_eq!(keys(ExternalPreCreation), set(&["user", "authRequest", "httpRequest", "metadata"]));
        assert_eq!(keys(InternalPostCreation), set(&["user", "authRequest", "httpRequest"]));
        assert_eq!(keys(InternalPostAuthentication), set(&["authMethod", "authError", "authRequest", "httpRequest"]));
        assert_eq!(
            keys(PreAccessTokenCreation),
            set(&["claims", "user", "userMetadata", "userGrants", "org", "application", "actor"])
        );
        assert_eq!(keys(PreSamlResponseCreation), set(&["user", "userMetadata", "userGrants", "org"]));
        let token = effects_schema(PreUserinfoCreation);
        assert!(token["properties"]["claims"]["patternProperties"].is_object());
        assert_eq!(token["properties"]["metadata"]["items"]["properties"]["value"]["contentEncoding"], "base64");
        // Typed effects omit zero values: nothing in them is required.
        let grants = effects_schema(ExternalPostCreation);
        assert!(grants["properties"]["userGrants"]["items"].get("required").is_none());
        let saml = effects_schema(PreSamlResponseCreation);
        assert!(saml["properties"]["attributes"]["items"].get("required").is_none());
    }

    /// Writes every trigger's declarations to `$ACTIONSD_TYPES_OUT/<flow>-<trigger>.d.ts` (for the
    /// TypeScript corpus in tests/types; see the top of this file).
    #[test]
    #[ignore]
    fn write_declarations() {
        let dir = std::env::var("ACTIONSD_TYPES_OUT").expect("ACTIONSD_TYPES_OUT names the output directory");
        std::fs::create_dir_all(&dir).expect("create the output directory");
        for trigger in Trigger::ALL {
            let path =
                std::path::Path::new(&dir).join(format!("{}-{}.d.ts", trigger.flow().0, trigger.trigger_type().0));
            std::fs::write(&path, declarations(trigger)).expect("write a declaration file");
        }
    }
}
