//! Operator actions: register-user, promote-user-admin, anonymize-user.
//!
//! They talk to Synapse's APIs on localhost:8008 (the pod shares one network).
//! Failures become action failures with a clear message; the unit status is not touched.
//! A generated password never goes into argv or logs: `action-set` only takes argv,
//! so the password is handed over in a Juju secret whose ID the results name.

pub mod backup;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::juju::tools::{SecretOwner, SecretRead};
use crate::juju::{HookContext, HookTools, RelationId, ToolErrorKind};
use crate::peers::ENDPOINT as PEER_ENDPOINT;
use crate::synapse::admin::{encode_path, ApiError, SynapseApi};
use crate::util::random;

/// Label of the application secret holding the charm's own admin account.
pub const ADMIN_SECRET_LABEL: &str = "synapse-admin";
/// Peer application databag key with the admin secret's URI (for non-leader units).
pub const ADMIN_SECRET_KEY: &str = "admin-secret-id";

/// An action failure: the message the operator sees.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

type ActionResult = Result<BTreeMap<String, String>, Failure>;

/// Checks a Matrix user localpart (or a full `@user:server` ID on this server) and
/// returns the full user ID.
pub fn user_id(username: &str, server_name: &str) -> Result<String, Failure> {
    let local = match username.strip_prefix('@') {
        Some(full) => match full.split_once(':') {
            Some((l, s)) if s == server_name => l,
            Some((_, s)) => {
                return Err(Failure(format!(
                    "{username:?} belongs to server {s:?}, not {server_name:?}"
                )))
            }
            None => {
                return Err(Failure(format!(
                    "{username:?} is not a user ID of the form @user:{server_name}"
                )))
            }
        },
        None => username,
    };
    if local.is_empty() {
        return Err(Failure("username must not be empty".into()));
    }
    if let Some(bad) = local
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-/+".contains(*c)))
    {
        return Err(Failure(format!(
            "invalid username {username:?}: {bad:?} is not allowed (use lowercase letters, digits and . _ = - / +)"
        )));
    }
    if local.starts_with('_') {
        return Err(Failure(format!(
            "invalid username {username:?}: names starting with _ are reserved"
        )));
    }
    let id = format!("@{local}:{server_name}");
    if id.len() > 255 {
        return Err(Failure(format!(
            "invalid username {username:?}: the user ID would be longer than 255 characters"
        )));
    }
    Ok(id)
}

fn api_failure(what: &str, e: ApiError) -> Failure {
    Failure(format!("{what}: {e}"))
}

fn param_str(params: &serde_json::Map<String, Value>, key: &str) -> Result<String, Failure> {
    params
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Failure(format!("missing parameter {key:?}")))
}

fn peer(tools: &dyn HookTools) -> Result<Option<RelationId>, Failure> {
    Ok(tools.relation_ids(PEER_ENDPOINT)?.into_iter().next())
}

/// Label of a unit's own admin account secret (a unit that runs Synapse but does not
/// lead, before the leader made the application's one).
fn unit_admin_label(unit: &str) -> String {
    format!("{ADMIN_SECRET_LABEL}-{}", unit.replace('/', "-"))
}

/// Where the admin account comes from, and whether this unit may update it.
enum AdminSource {
    /// The application's secret, owned (leader) or shared through the peer relation.
    App { content: Databag, owned: bool },
    /// This unit's own secret.
    Unit { content: Databag },
    /// None yet: this unit creates one (application-wide on the leader, else its own).
    None,
}

type Databag = BTreeMap<String, String>;

fn admin_source(
    ctx: &HookContext,
    tools: &dyn HookTools,
    leader: bool,
) -> Result<AdminSource, Failure> {
    let by_label = |label: &str| -> Result<Option<Databag>, Failure> {
        match tools.secret_get(None, Some(label), SecretRead::Peek) {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.kind == ToolErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    if leader {
        return Ok(match by_label(ADMIN_SECRET_LABEL)? {
            Some(content) => AdminSource::App {
                content,
                owned: true,
            },
            None => AdminSource::None,
        });
    }
    let shared = match peer(tools)? {
        Some(rel) => tools
            .relation_get(&rel, &ctx.app_name, true)?
            .get(ADMIN_SECRET_KEY)
            .cloned(),
        None => None,
    };
    if let Some(uri) = shared {
        let content = tools.secret_get(Some(&uri), None, SecretRead::Refresh)?;
        return Ok(AdminSource::App {
            content,
            owned: false,
        });
    }
    Ok(match by_label(&unit_admin_label(&ctx.unit_name))? {
        Some(content) => AdminSource::Unit { content },
        None => AdminSource::None,
    })
}

/// The charm's admin access token, validated before use. The leader keeps the admin
/// account in an application secret; any unit that runs Synapse can use it, and
/// renews a rejected token by logging in again (storing it where it may). A unit that
/// runs Synapse before the leader made one creates its own, in a unit secret: an
/// action never dead-ends on who leads.
fn admin_token(
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
) -> Result<String, Failure> {
    let leader = tools.is_leader()?;
    let (content, owned_label) = match admin_source(ctx, tools, leader)? {
        AdminSource::App { content, owned } => {
            (Some(content), owned.then(|| ADMIN_SECRET_LABEL.to_string()))
        }
        AdminSource::Unit { content } => (Some(content), Some(unit_admin_label(&ctx.unit_name))),
        AdminSource::None => (None, None),
    };
    if let Some(content) = &content {
        let token = content.get("access-token").cloned().unwrap_or_default();
        match api.whoami(&token) {
            Ok(_) => return Ok(token),
            Err(e) if e.status() == Some(401) => {
                let user = content.get("user-id").cloned().unwrap_or_default();
                let password = content.get("password").cloned().unwrap_or_default();
                let token = api
                    .login(&user, &password)
                    .map_err(|e| api_failure("renewing the admin token", e))?;
                match owned_label {
                    Some(label) => {
                        let mut renewed = content.clone();
                        renewed.insert("access-token".into(), token.clone());
                        let info = tools
                            .secret_info_by_label(&label)?
                            .ok_or_else(|| Failure("the admin secret vanished".into()))?;
                        tools.secret_set(&info.id, &renewed)?;
                        tracing::info!("renewed the charm's admin token");
                    }
                    None => tracing::info!(
                        "logged in again for this action: only the leader can store the renewed token"
                    ),
                }
                return Ok(token);
            }
            Err(e) => return Err(api_failure("checking the admin token", e)),
        }
    }
    // First use: create a dedicated admin account.
    let keys = crate::keys::current(ctx, tools)?.ok_or_else(|| {
        Failure(
            "Synapse's keys do not exist yet; wait for the charm to finish configuring Synapse"
                .into(),
        )
    })?;
    let name = format!("charm-admin-{}", random::alphanumeric(8)?.to_lowercase());
    let password = random::alphanumeric(32)?;
    let (user_id, token) = api
        .register(&keys.registration_shared_secret, &name, &password, true)
        .map_err(|e| api_failure("creating the charm's admin account", e))?;
    let content = BTreeMap::from([
        ("user-id".to_string(), user_id.clone()),
        ("password".to_string(), password),
        ("access-token".to_string(), token.clone()),
    ]);
    if leader {
        let uri = tools.secret_add(
            &content,
            ADMIN_SECRET_LABEL,
            "Synapse admin account used by the charm's actions",
            SecretOwner::Application,
        )?;
        if let Some(rel) = peer(tools)? {
            tools.relation_set(
                &rel,
                true,
                &BTreeMap::from([(ADMIN_SECRET_KEY.to_string(), uri)]),
            )?;
        }
    } else {
        tools.secret_add(
            &content,
            &unit_admin_label(&ctx.unit_name),
            "Synapse admin account used by this unit's actions",
            SecretOwner::Unit,
        )?;
    }
    tracing::info!(%user_id, leader, "created the charm's admin account");
    Ok(token)
}

/// The user named by the `username` parameter, which must exist, with the admin token
/// to act on it and the admin API's view of the user.
fn existing_user(
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
    server_name: &str,
    params: &serde_json::Map<String, Value>,
) -> Result<(String, String, Value), Failure> {
    let user_id = user_id(&param_str(params, "username")?, server_name)?;
    let token = admin_token(ctx, tools, api)?;
    let user = user_exists(api, &token, &user_id)?;
    Ok((user_id, token, user))
}

fn user_exists(api: &SynapseApi, token: &str, user_id: &str) -> Result<Value, Failure> {
    match api.call(
        "GET",
        &format!("/_synapse/admin/v2/users/{}", encode_path(user_id)),
        None,
        Some(token),
    ) {
        Ok(v) => Ok(v),
        Err(e) if e.status() == Some(404) => Err(Failure(format!("user {user_id} not found"))),
        Err(e) => Err(api_failure("looking up the user", e)),
    }
}

fn register_user(
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
    server_name: &str,
    params: &serde_json::Map<String, Value>,
) -> ActionResult {
    let username = param_str(params, "username")?;
    let admin = params
        .get("admin")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user_id = user_id(&username, server_name)?;
    let local = user_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let keys = crate::keys::current(ctx, tools)?.ok_or_else(|| {
        Failure(
            "Synapse's keys do not exist yet; wait for the charm to finish configuring Synapse"
                .into(),
        )
    })?;
    let password = random::alphanumeric(24)?;
    match api.register(&keys.registration_shared_secret, &local, &password, admin) {
        Ok(_) => {}
        Err(e) if e.errcode() == Some("M_USER_IN_USE") => {
            return Err(Failure(format!("user {user_id} already exists")))
        }
        Err(e) => return Err(api_failure("registering the user", e)),
    }
    let content = BTreeMap::from([
        ("user-id".to_string(), user_id.clone()),
        ("password".to_string(), password),
    ]);
    let label = format!("register-user-{local}");
    let uri = tools.secret_add(
        &content,
        &label,
        &format!("Password of the Synapse user {user_id}"),
        SecretOwner::Unit,
    )?;
    Ok(BTreeMap::from([
        ("user-id".to_string(), user_id),
        ("admin".to_string(), admin.to_string()),
        ("password-secret-id".to_string(), uri.clone()),
        (
            "message".to_string(),
            format!("read the password with: juju show-secret --reveal {uri}"),
        ),
    ]))
}

fn promote_user_admin(
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
    server_name: &str,
    params: &serde_json::Map<String, Value>,
) -> ActionResult {
    let (user_id, token, _) = existing_user(ctx, tools, api, server_name, params)?;
    api.call(
        "PUT",
        &format!("/_synapse/admin/v1/users/{}/admin", encode_path(&user_id)),
        Some(&json!({"admin": true})),
        Some(&token),
    )
    .map_err(|e| api_failure("making the user an admin", e))?;
    Ok(BTreeMap::from([
        ("user-id".to_string(), user_id),
        ("admin".to_string(), "true".to_string()),
    ]))
}

fn anonymize_user(
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
    server_name: &str,
    params: &serde_json::Map<String, Value>,
) -> ActionResult {
    let (user_id, token, user) = existing_user(ctx, tools, api, server_name, params)?;
    if user["deactivated"].as_bool() == Some(true) && user["erased"].as_bool() == Some(true) {
        return Err(Failure(format!(
            "user {user_id} is already deactivated and erased"
        )));
    }
    api.call(
        "POST",
        &format!("/_synapse/admin/v1/deactivate/{}", encode_path(&user_id)),
        Some(&json!({"erase": true})),
        Some(&token),
    )
    .map_err(|e| api_failure("deactivating the user", e))?;
    Ok(BTreeMap::from([
        ("user-id".to_string(), user_id),
        ("deactivated".to_string(), "true".to_string()),
        ("erased".to_string(), "true".to_string()),
        (
            "message".to_string(),
            "the account is deactivated and its profile and messages are erased (GDPR erasure)"
                .to_string(),
        ),
    ]))
}

/// Runs one action; failures are reported with `action-fail`, never as a hook error.
pub fn run(
    name: &str,
    ctx: &HookContext,
    tools: &dyn HookTools,
    api: &SynapseApi,
) -> Result<(), crate::juju::ToolError> {
    let outcome = (|| -> ActionResult {
        // The actions talk to the Synapse of this unit: say where to run them instead.
        let peers = crate::peers::Peers::read(tools, &ctx.app_name, None)?;
        if let Some(main) = peers.main_unit().filter(|m| *m != ctx.unit_name) {
            return Err(Failure(format!(
                "Synapse runs on {main}, not on this unit: run the action there (`juju run {main} {name} ...`)"
            )));
        }
        let params = tools.action_get()?;
        // User IDs use the name Synapse really runs with (which a pending, refused
        // server_name change does not alter).
        let server_name = api
            .server_name()
            .map_err(|e| api_failure("asking Synapse for its server name", e))?;
        let server_name = server_name.as_str();
        match name {
            "register-user" => register_user(ctx, tools, api, server_name, &params),
            "promote-user-admin" => promote_user_admin(ctx, tools, api, server_name, &params),
            "anonymize-user" => anonymize_user(ctx, tools, api, server_name, &params),
            other => Err(Failure(format!("unknown action {other:?}"))),
        }
    })();
    match outcome {
        Ok(results) => tools.action_set(&results),
        Err(Failure(msg)) => {
            tracing::warn!(action = name, "failed: {msg}");
            tools.action_fail(&msg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            user_id("alice", "example.com").unwrap(),
            "@alice:example.com"
        );
        assert_eq!(
            user_id("@bob:example.com", "example.com").unwrap(),
            "@bob:example.com"
        );
        assert!(user_id("Alice", "example.com")
            .unwrap_err()
            .0
            .contains("'A' is not allowed"));
        assert!(user_id("a b", "example.com").is_err());
        assert!(user_id("", "example.com").is_err());
        assert!(user_id("_bridge", "example.com").is_err());
        assert!(user_id("@bob:other.org", "example.com")
            .unwrap_err()
            .0
            .contains("belongs to server"));
        assert!(user_id(&"x".repeat(260), "example.com")
            .unwrap_err()
            .0
            .contains("255"));
    }
}
