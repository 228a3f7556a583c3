//! The smtp-integrator stand-in: a played application with an `smtp` endpoint
//! (interface `smtp`, provides) that describes an SMTP relay from its options, as the
//! real charm does with the `smtp` charm library. It starts no server: the relay is
//! whatever listens at `host:port` (a test starts a real one).
//!
//! - Options, set with `juju config smtp-integrator key=value ...` (or
//!   `juju deploy smtp-integrator --config key=value`), the real charm's: `host`,
//!   `port` (default 25), `user`, `password`, `auth_type` (`none`, `not_provided`,
//!   `plain`; default `none`), `transport_security` (`none`, `starttls`, `tls`; default
//!   `none`), `domain`, `skip_ssl_verify` (default false). An empty value unsets.
//! - React (any event reaching its unit, and after `juju config`): without `host` it is
//!   `blocked` and publishes nothing (an earlier answer is withdrawn); else, in the
//!   application databag of every `smtp` relation, plain strings: `host`, `port`,
//!   `auth_type`, `transport_security`, `skip_ssl_verify` (`True`/`False`), `user` and
//!   `domain` when set, and for a password `password_id`: the URI of one secret it
//!   owns, content `{password}`, granted to each relation. A new password is a new
//!   revision of that secret (its consumers get `secret-changed`); an unset password
//!   withdraws `password_id`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ProviderState;
use crate::controller::Controller;
use crate::error::Area;
use crate::meta::Role;
use crate::model::{Grant, Secret, SecretRevision};
use crate::Error;

pub const CHARM: &str = "smtp-integrator";
pub const ENDPOINT: &str = "smtp";

pub const OPTIONS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "auth_type",
    "transport_security",
    "domain",
    "skip_ssl_verify",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The password secret's URI, once a password was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
}

/// The application databag this configuration gives (pure), the password kept apart
/// (it goes in the secret). `Err`: the unit's blocked message.
pub fn relation_data(
    config: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, String>, Option<String>), String> {
    let get = |k: &str| config.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let host = get("host").ok_or("host must be set: juju config smtp-integrator host=...")?;
    let mut bag = BTreeMap::new();
    bag.insert("host".to_string(), host.to_string());
    bag.insert("port".into(), get("port").unwrap_or("25").to_string());
    bag.insert(
        "auth_type".into(),
        get("auth_type").unwrap_or("none").into(),
    );
    bag.insert(
        "transport_security".into(),
        get("transport_security").unwrap_or("none").into(),
    );
    let skip = get("skip_ssl_verify") == Some("true");
    bag.insert(
        "skip_ssl_verify".into(),
        if skip { "True" } else { "False" }.into(),
    );
    for k in ["user", "domain"] {
        if let Some(v) = get(k) {
            bag.insert(k.into(), v.into());
        }
    }
    Ok((bag, get("password").map(str::to_string)))
}

fn check(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let one_of = |allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(format!("{key} {value:?}: it has to be one of {allowed:?}"))
        }
    };
    match key {
        "port" => value
            .parse::<u16>()
            .map(|_| ())
            .map_err(|_| format!("port {value:?} is not an int")),
        "skip_ssl_verify" => one_of(&["true", "false"]),
        "auth_type" => one_of(&["none", "not_provided", "plain"]),
        "transport_security" => one_of(&["none", "starttls", "tls"]),
        _ => Ok(()),
    }
}

fn state(st: &ProviderState) -> Result<State, Error> {
    serde_json::from_value(st.data.clone())
        .map_err(|e| Error::invalid(Area::Model, format!("{CHARM} stand-in state: {e}")))
}

fn to_provider(st: &State) -> ProviderState {
    ProviderState {
        charm: CHARM.into(),
        data: serde_json::to_value(st).unwrap_or_default(),
    }
}

/// `juju deploy smtp-integrator [APP]`.
pub fn deploy(c: &mut Controller, app: &str) -> Result<(), Error> {
    super::save(c, app, &to_provider(&State::default()))?;
    let endpoints = [(ENDPOINT.into(), "smtp".into(), Role::Provides)];
    if let Err(e) = super::add_stand_in(c, app, CHARM, &endpoints) {
        let _ = super::remove(c, app);
        return Err(e);
    }
    react(c, app, &to_provider(&State::default()))
}

/// `juju config smtp-integrator key=value ...`: typed as the real charm's options.
pub fn configure(
    pst: &ProviderState,
    sets: &BTreeMap<String, String>,
) -> Result<ProviderState, Error> {
    let mut st = state(pst)?;
    for (k, v) in sets {
        if !OPTIONS.contains(&k.as_str()) {
            return Err(Error::Usage(format!(
                "{CHARM} stand-in: unknown option {k:?} (it knows {OPTIONS:?})"
            )));
        }
        check(k, v).map_err(Error::Usage)?;
        if v.is_empty() {
            st.config.remove(k);
        } else {
            st.config.insert(k.clone(), v.clone());
        }
    }
    Ok(to_provider(&st))
}

/// Publishes the relay in every `smtp` relation, the password through its secret.
pub fn react(c: &mut Controller, app: &str, pst: &ProviderState) -> Result<(), Error> {
    let mut st = state(pst)?;
    let relations = super::live_relations(c, app, ENDPOINT);
    let (bag, password) = match relation_data(&st.config) {
        Ok(d) => d,
        Err(why) => {
            super::set_unit_status(c, app, "blocked", &why)?;
            let withdraw: BTreeMap<String, String> = [
                "host",
                "port",
                "auth_type",
                "transport_security",
                "skip_ssl_verify",
                "user",
                "domain",
                "password_id",
            ]
            .iter()
            .map(|k| (k.to_string(), String::new()))
            .collect();
            for rel in relations {
                if let Some(remote) = rel.remote_app(app).map(str::to_string) {
                    super::answer(c, app, rel.id, &remote, &withdraw)?;
                }
            }
            return c.save();
        }
    };
    let secret = match password {
        Some(p) => Some(password_secret(c, app, &mut st, &p)?),
        None => None,
    };
    super::save(c, app, &to_provider(&st))?;
    for rel in relations {
        let Some(remote) = rel.remote_app(app).map(str::to_string) else {
            continue;
        };
        let mut answer = bag.clone();
        answer.insert("password_id".into(), String::new());
        for k in ["user", "domain"] {
            answer.entry(k.into()).or_default();
        }
        if let Some(uri) = &secret {
            let id = crate::util::secret_id(uri).to_string();
            if let Some(s) = c.model.secrets.get_mut(&id) {
                if !s.grants.iter().any(|g| g.relation_id == rel.id) {
                    s.grants.push(Grant {
                        relation_id: rel.id,
                        app: remote.clone(),
                        unit: None,
                    });
                }
            }
            answer.insert("password_id".into(), uri.clone());
        }
        super::answer(c, app, rel.id, &remote, &answer)?;
    }
    super::set_unit_status(c, app, "active", "")
}

/// The password secret with `password` as its latest content: created once, a new
/// revision when the password changed (its consumers get `secret-changed`).
fn password_secret(
    c: &mut Controller,
    app: &str,
    st: &mut State,
    password: &str,
) -> Result<String, Error> {
    let content: BTreeMap<String, String> = [("password".to_string(), password.to_string())].into();
    let existing = st
        .password_secret
        .as_deref()
        .map(|u| crate::util::secret_id(u).to_string())
        .filter(|id| c.model.secrets.contains_key(id));
    let Some(id) = existing else {
        let id = crate::util::secret_xid()?;
        c.model
            .secrets
            .insert(id.clone(), Secret::new(&id, app, None, content));
        let uri = format!("secret:{id}");
        st.password_secret = Some(uri.clone());
        return Ok(uri);
    };
    if let Some(s) = c.model.secrets.get_mut(&id) {
        if s.latest().map(|r| &r.content) != Some(&content) {
            let revision = s.latest().map(|r| r.revision + 1).unwrap_or(1);
            s.revisions.push(SecretRevision { revision, content });
            c.notify_secret_consumers(&id);
        }
    }
    Ok(format!("secret:{id}"))
}

/// Nothing runs: only the state goes.
pub fn remove(_c: &Controller, _app: &str, _pst: &ProviderState) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_databag_is_written_as_the_smtp_library_writes_it() {
        let (bag, password) = relation_data(&config(&[
            ("host", "mail.example.com"),
            ("port", "587"),
            ("auth_type", "plain"),
            ("transport_security", "starttls"),
            ("user", "synapse"),
            ("password", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(
            bag,
            config(&[
                ("host", "mail.example.com"),
                ("port", "587"),
                ("auth_type", "plain"),
                ("transport_security", "starttls"),
                ("skip_ssl_verify", "False"),
                ("user", "synapse"),
            ])
        );
        assert_eq!(
            password.as_deref(),
            Some("s3cret"),
            "apart from the databag"
        );
        let (bag, password) =
            relation_data(&config(&[("host", "h"), ("skip_ssl_verify", "true")])).unwrap();
        assert_eq!(bag["port"], "25");
        assert_eq!(bag["auth_type"], "none");
        assert_eq!(bag["transport_security"], "none");
        assert_eq!(bag["skip_ssl_verify"], "True");
        assert_eq!(password, None);
        assert!(relation_data(&config(&[])).is_err(), "host is required");
    }

    #[test]
    fn options_are_typed_like_the_real_charm() {
        let st = to_provider(&State::default());
        let set = |k: &str, v: &str| configure(&st, &config(&[(k, v)]));
        assert!(set("port", "x").is_err());
        assert!(set("auth_type", "login").is_err());
        assert!(set("transport_security", "ssl").is_err());
        assert!(set("skip_ssl_verify", "maybe").is_err());
        assert!(set("colour", "blue").is_err());
        let ok = set("host", "mail.example.com").unwrap();
        assert_eq!(state(&ok).unwrap().config["host"], "mail.example.com");
        let unset = configure(&ok, &config(&[("host", "")])).unwrap();
        assert!(!state(&unset).unwrap().config.contains_key("host"));
    }
}
