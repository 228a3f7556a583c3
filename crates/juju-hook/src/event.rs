//! The typed Juju event for one dispatch, parsed from the hook environment.
//!
//! Juju sets `JUJU_DISPATCH_PATH` to `hooks/<name>` or `actions/<name>` and
//! exports unset variables as empty strings, so every lookup treats `""` as absent.
//! Names (endpoint, container, storage) come from their own variables, never from
//! cutting the hook name.

use std::fmt;

/// A relation id as Juju prints it: `endpoint:N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelationId {
    pub endpoint: String,
    pub id: u64,
}

impl RelationId {
    /// Parses `endpoint:N`.
    pub fn parse(s: &str) -> Option<Self> {
        let (endpoint, n) = s.rsplit_once(':')?;
        if endpoint.is_empty() {
            return None;
        }
        Some(Self {
            endpoint: endpoint.to_string(),
            id: n.parse().ok()?,
        })
    }
}

impl fmt::Display for RelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.endpoint, self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationHook {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretHook {
    Changed,
    Expired,
    Remove,
    Rotate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageHook {
    Attached,
    Detaching,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Install,
    Start,
    Stop,
    Remove,
    UpgradeCharm,
    ConfigChanged,
    LeaderElected,
    LeaderSettingsChanged,
    UpdateStatus,
    PebbleReady {
        container: String,
    },
    PebbleCustomNotice {
        container: String,
        notice_id: String,
        notice_type: String,
        notice_key: String,
    },
    PebbleCheckFailed {
        container: String,
        check: String,
    },
    PebbleCheckRecovered {
        container: String,
        check: String,
    },
    Relation {
        hook: RelationHook,
        relation: RelationId,
        remote_app: Option<String>,
        remote_unit: Option<String>,
        departing_unit: Option<String>,
    },
    Secret {
        hook: SecretHook,
        id: String,
        label: Option<String>,
        revision: Option<u64>,
    },
    Storage {
        hook: StorageHook,
        storage_id: String,
        location: Option<String>,
    },
    Action {
        name: String,
        id: Option<String>,
    },
    /// `juju exec` runs dispatch with an empty path.
    Exec,
    /// A hook this charm does not know; logged and ignored.
    Unknown {
        path: String,
    },
}

impl Event {
    /// The name Juju gives this event (for logs).
    pub fn name(&self) -> String {
        match self {
            Event::Install => "install".into(),
            Event::Start => "start".into(),
            Event::Stop => "stop".into(),
            Event::Remove => "remove".into(),
            Event::UpgradeCharm => "upgrade-charm".into(),
            Event::ConfigChanged => "config-changed".into(),
            Event::LeaderElected => "leader-elected".into(),
            Event::LeaderSettingsChanged => "leader-settings-changed".into(),
            Event::UpdateStatus => "update-status".into(),
            Event::PebbleReady { container } => format!("{container}-pebble-ready"),
            Event::PebbleCustomNotice { container, .. } => {
                format!("{container}-pebble-custom-notice")
            }
            Event::PebbleCheckFailed { container, .. } => {
                format!("{container}-pebble-check-failed")
            }
            Event::PebbleCheckRecovered { container, .. } => {
                format!("{container}-pebble-check-recovered")
            }
            Event::Relation { hook, relation, .. } => {
                let suffix = match hook {
                    RelationHook::Created => "created",
                    RelationHook::Joined => "joined",
                    RelationHook::Changed => "changed",
                    RelationHook::Departed => "departed",
                    RelationHook::Broken => "broken",
                };
                format!("{}-relation-{suffix}", relation.endpoint)
            }
            Event::Secret { hook, .. } => match hook {
                SecretHook::Changed => "secret-changed".into(),
                SecretHook::Expired => "secret-expired".into(),
                SecretHook::Remove => "secret-remove".into(),
                SecretHook::Rotate => "secret-rotate".into(),
            },
            Event::Storage {
                hook, storage_id, ..
            } => {
                let name = storage_id.split('/').next().unwrap_or(storage_id);
                match hook {
                    StorageHook::Attached => format!("{name}-storage-attached"),
                    StorageHook::Detaching => format!("{name}-storage-detaching"),
                }
            }
            Event::Action { name, .. } => format!("{name} action"),
            Event::Exec => "juju-exec".into(),
            Event::Unknown { path } => format!("unknown ({path})"),
        }
    }

    /// What Juju puts in `JUJU_DISPATCH_PATH`: `hooks/<name>` or `actions/<name>`
    /// (empty for `juju exec`, the raw path for an unknown hook).
    pub fn dispatch_path(&self) -> String {
        match self {
            Event::Action { name, .. } => format!("actions/{name}"),
            Event::Exec => String::new(),
            Event::Unknown { path } => path.clone(),
            hook => format!("hooks/{}", hook.name()),
        }
    }

    /// The last part of the dispatch path: the hook's or the action's name.
    pub fn hook_name(&self) -> String {
        let path = self.dispatch_path();
        match path.split_once('/') {
            Some((_, name)) => name.to_string(),
            None => path,
        }
    }

    /// The event's own variables as Juju sets them (`JUJU_DISPATCH_PATH`, `JUJU_HOOK_NAME`
    /// and those of its kind: relation, secret, workload, storage, action). Values
    /// Juju leaves unset are exported as empty strings, as Juju does.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str| env.push((k.to_string(), v.to_string()));
        let path = self.dispatch_path();
        let is_hook = path.starts_with("hooks/");
        set("JUJU_DISPATCH_PATH", &path);
        set(
            "JUJU_HOOK_NAME",
            if is_hook { &path["hooks/".len()..] } else { "" },
        );
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        match self {
            Event::PebbleReady { container } => set("JUJU_WORKLOAD_NAME", container),
            Event::PebbleCustomNotice {
                container,
                notice_id,
                notice_type,
                notice_key,
            } => {
                set("JUJU_WORKLOAD_NAME", container);
                set("JUJU_NOTICE_ID", notice_id);
                set("JUJU_NOTICE_TYPE", notice_type);
                set("JUJU_NOTICE_KEY", notice_key);
            }
            Event::PebbleCheckFailed { container, check }
            | Event::PebbleCheckRecovered { container, check } => {
                set("JUJU_WORKLOAD_NAME", container);
                set("JUJU_PEBBLE_CHECK_NAME", check);
            }
            Event::Relation {
                relation,
                remote_app,
                remote_unit,
                departing_unit,
                ..
            } => {
                set("JUJU_RELATION", &relation.endpoint);
                set("JUJU_RELATION_ID", &relation.to_string());
                set("JUJU_REMOTE_APP", &opt(remote_app));
                set("JUJU_REMOTE_UNIT", &opt(remote_unit));
                if let Some(d) = departing_unit {
                    set("JUJU_DEPARTING_UNIT", d);
                }
            }
            Event::Secret {
                id,
                label,
                revision,
                ..
            } => {
                set("JUJU_SECRET_ID", id);
                set("JUJU_SECRET_LABEL", &opt(label));
                if let Some(r) = revision {
                    set("JUJU_SECRET_REVISION", &r.to_string());
                }
            }
            Event::Storage {
                storage_id,
                location,
                ..
            } => {
                set("JUJU_STORAGE_ID", storage_id);
                set("JUJU_STORAGE_LOCATION", &opt(location));
            }
            Event::Action { name, id } => {
                set("JUJU_ACTION_NAME", name);
                set("JUJU_ACTION_UUID", &opt(id));
            }
            _ => {}
        }
        env
    }

    /// The relation this event is about, if it is a relation event.
    pub fn relation(&self) -> Option<&RelationId> {
        match self {
            Event::Relation { relation, .. } => Some(relation),
            _ => None,
        }
    }
}

/// Reads one variable, treating an empty string as absent (Juju exports unset values as "").
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name).filter(|v| !v.is_empty())
    }
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContextError {
    #[error("{0} is not set: this program must be run by Juju as the charm's dispatch")]
    Missing(&'static str),
    #[error("{var} has an unexpected value {value:?}")]
    Invalid { var: &'static str, value: String },
}

fn required(env: &dyn Env, name: &'static str) -> Result<String, ContextError> {
    env.var(name).ok_or(ContextError::Missing(name))
}

/// Parses the event from `JUJU_DISPATCH_PATH` and the hook-specific variables.
pub fn parse_event(env: &dyn Env) -> Result<Event, ContextError> {
    let Some(path) = env.var("JUJU_DISPATCH_PATH") else {
        return Ok(Event::Exec);
    };
    let Some((kind, name)) = path.split_once('/') else {
        return Ok(Event::Unknown { path });
    };
    match kind {
        "actions" => Ok(Event::Action {
            name: env
                .var("JUJU_ACTION_NAME")
                .unwrap_or_else(|| name.to_string()),
            id: env.var("JUJU_ACTION_UUID"),
        }),
        "hooks" => parse_hook(env, name, &path),
        _ => Ok(Event::Unknown { path }),
    }
}

fn parse_hook(env: &dyn Env, name: &str, path: &str) -> Result<Event, ContextError> {
    let simple = match name {
        "install" => Some(Event::Install),
        "start" => Some(Event::Start),
        "stop" => Some(Event::Stop),
        "remove" => Some(Event::Remove),
        "upgrade-charm" => Some(Event::UpgradeCharm),
        "config-changed" => Some(Event::ConfigChanged),
        "leader-elected" => Some(Event::LeaderElected),
        "leader-settings-changed" => Some(Event::LeaderSettingsChanged),
        "update-status" => Some(Event::UpdateStatus),
        _ => None,
    };
    if let Some(ev) = simple {
        return Ok(ev);
    }
    const RELATION: [(&str, RelationHook); 5] = [
        ("-relation-created", RelationHook::Created),
        ("-relation-joined", RelationHook::Joined),
        ("-relation-changed", RelationHook::Changed),
        ("-relation-departed", RelationHook::Departed),
        ("-relation-broken", RelationHook::Broken),
    ];
    for (suffix, hook) in RELATION {
        if name.ends_with(suffix) {
            return relation_event(env, hook);
        }
    }
    const SECRET: [(&str, SecretHook); 4] = [
        ("secret-changed", SecretHook::Changed),
        ("secret-expired", SecretHook::Expired),
        ("secret-remove", SecretHook::Remove),
        ("secret-rotate", SecretHook::Rotate),
    ];
    for (hook_name, hook) in SECRET {
        if name == hook_name {
            let revision = match env.var("JUJU_SECRET_REVISION") {
                None => None,
                Some(v) => Some(v.parse().map_err(|_| ContextError::Invalid {
                    var: "JUJU_SECRET_REVISION",
                    value: v.clone(),
                })?),
            };
            return Ok(Event::Secret {
                hook,
                id: required(env, "JUJU_SECRET_ID")?,
                label: env.var("JUJU_SECRET_LABEL"),
                revision,
            });
        }
    }
    if name.ends_with("-pebble-ready") {
        return Ok(Event::PebbleReady {
            container: required(env, "JUJU_WORKLOAD_NAME")?,
        });
    }
    if name.ends_with("-pebble-custom-notice") {
        return Ok(Event::PebbleCustomNotice {
            container: required(env, "JUJU_WORKLOAD_NAME")?,
            notice_id: env.var("JUJU_NOTICE_ID").unwrap_or_default(),
            notice_type: env.var("JUJU_NOTICE_TYPE").unwrap_or_default(),
            notice_key: env.var("JUJU_NOTICE_KEY").unwrap_or_default(),
        });
    }
    if name.ends_with("-pebble-check-failed") || name.ends_with("-pebble-check-recovered") {
        let container = required(env, "JUJU_WORKLOAD_NAME")?;
        let check = required(env, "JUJU_PEBBLE_CHECK_NAME")?;
        return Ok(if name.ends_with("-failed") {
            Event::PebbleCheckFailed { container, check }
        } else {
            Event::PebbleCheckRecovered { container, check }
        });
    }
    for (suffix, hook) in [
        ("-storage-attached", StorageHook::Attached),
        ("-storage-detaching", StorageHook::Detaching),
    ] {
        if name.ends_with(suffix) {
            return Ok(Event::Storage {
                hook,
                storage_id: required(env, "JUJU_STORAGE_ID")?,
                location: env.var("JUJU_STORAGE_LOCATION"),
            });
        }
    }
    Ok(Event::Unknown {
        path: path.to_string(),
    })
}

fn relation_event(env: &dyn Env, hook: RelationHook) -> Result<Event, ContextError> {
    let raw = required(env, "JUJU_RELATION_ID")?;
    let relation = RelationId::parse(&raw).ok_or(ContextError::Invalid {
        var: "JUJU_RELATION_ID",
        value: raw.clone(),
    })?;
    if let Some(endpoint) = env.var("JUJU_RELATION") {
        if endpoint != relation.endpoint {
            return Err(ContextError::Invalid {
                var: "JUJU_RELATION",
                value: endpoint,
            });
        }
    }
    let remote_unit = env.var("JUJU_REMOTE_UNIT");
    // Like ops: derive the remote app from the unit name when Juju leaves it empty.
    let remote_app = env.var("JUJU_REMOTE_APP").or_else(|| {
        remote_unit
            .as_deref()
            .and_then(|u| u.split_once('/'))
            .map(|(app, _)| app.to_string())
    });
    Ok(Event::Relation {
        hook,
        relation,
        remote_app,
        remote_unit,
        departing_unit: env.var("JUJU_DEPARTING_UNIT"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Event, ContextError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        parse_event(&env)
    }

    #[test]
    fn simple_hooks() {
        for (path, ev) in [
            ("hooks/install", Event::Install),
            ("hooks/start", Event::Start),
            ("hooks/stop", Event::Stop),
            ("hooks/remove", Event::Remove),
            ("hooks/upgrade-charm", Event::UpgradeCharm),
            ("hooks/config-changed", Event::ConfigChanged),
            ("hooks/leader-elected", Event::LeaderElected),
            (
                "hooks/leader-settings-changed",
                Event::LeaderSettingsChanged,
            ),
            ("hooks/update-status", Event::UpdateStatus),
        ] {
            assert_eq!(parse(&[("JUJU_DISPATCH_PATH", path)]), Ok(ev));
        }
    }

    #[test]
    fn relation_changed_takes_names_from_env() {
        let ev = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/database-relation-changed"),
            ("JUJU_RELATION", "database"),
            ("JUJU_RELATION_ID", "database:7"),
            ("JUJU_REMOTE_APP", ""),
            ("JUJU_REMOTE_UNIT", "postgresql-k8s/0"),
        ])
        .unwrap();
        assert_eq!(
            ev,
            Event::Relation {
                hook: RelationHook::Changed,
                relation: RelationId {
                    endpoint: "database".into(),
                    id: 7
                },
                remote_app: Some("postgresql-k8s".into()),
                remote_unit: Some("postgresql-k8s/0".into()),
                departing_unit: None,
            }
        );
    }

    #[test]
    fn relation_broken_has_no_remote_unit() {
        let ev = parse(&[
            (
                "JUJU_DISPATCH_PATH",
                "hooks/metrics-endpoint-relation-broken",
            ),
            ("JUJU_RELATION", "metrics-endpoint"),
            ("JUJU_RELATION_ID", "metrics-endpoint:3"),
            ("JUJU_REMOTE_APP", "prometheus-k8s"),
            ("JUJU_REMOTE_UNIT", ""),
        ])
        .unwrap();
        match ev {
            Event::Relation {
                hook: RelationHook::Broken,
                remote_unit: None,
                remote_app: Some(app),
                ..
            } => assert_eq!(app, "prometheus-k8s"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn departed_carries_departing_unit() {
        let ev = parse(&[
            (
                "JUJU_DISPATCH_PATH",
                "hooks/synapse-peers-relation-departed",
            ),
            ("JUJU_RELATION", "synapse-peers"),
            ("JUJU_RELATION_ID", "synapse-peers:0"),
            ("JUJU_REMOTE_UNIT", "synapse/1"),
            ("JUJU_DEPARTING_UNIT", "synapse/1"),
        ])
        .unwrap();
        assert!(
            matches!(ev, Event::Relation { hook: RelationHook::Departed, departing_unit: Some(ref u), .. } if u == "synapse/1")
        );
    }

    #[test]
    fn relation_endpoint_mismatch_is_an_error() {
        let err = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/database-relation-changed"),
            ("JUJU_RELATION", "redis"),
            ("JUJU_RELATION_ID", "database:7"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ContextError::Invalid {
                var: "JUJU_RELATION",
                ..
            }
        ));
    }

    #[test]
    fn endpoint_names_containing_hook_words_are_not_misparsed() {
        // "pebble-ready" inside an endpoint name must not make this a workload event.
        let ev = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/pebble-ready-relation-joined"),
            ("JUJU_RELATION_ID", "pebble-ready:1"),
            ("JUJU_REMOTE_UNIT", "x/0"),
        ])
        .unwrap();
        assert!(matches!(
            ev,
            Event::Relation {
                hook: RelationHook::Joined,
                ..
            }
        ));
    }

    #[test]
    fn workload_events() {
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/synapse-nginx-pebble-ready"),
                ("JUJU_WORKLOAD_NAME", "synapse-nginx"),
            ]),
            Ok(Event::PebbleReady {
                container: "synapse-nginx".into()
            })
        );
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/synapse-pebble-check-failed"),
                ("JUJU_WORKLOAD_NAME", "synapse"),
                ("JUJU_PEBBLE_CHECK_NAME", "synapse-ready"),
            ]),
            Ok(Event::PebbleCheckFailed {
                container: "synapse".into(),
                check: "synapse-ready".into()
            })
        );
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/synapse-pebble-check-recovered"),
                ("JUJU_WORKLOAD_NAME", "synapse"),
                ("JUJU_PEBBLE_CHECK_NAME", "synapse-ready"),
            ]),
            Ok(Event::PebbleCheckRecovered {
                container: "synapse".into(),
                check: "synapse-ready".into()
            })
        );
        let notice = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/synapse-pebble-custom-notice"),
            ("JUJU_WORKLOAD_NAME", "synapse"),
            ("JUJU_NOTICE_ID", "4"),
            ("JUJU_NOTICE_TYPE", "custom"),
            ("JUJU_NOTICE_KEY", "example.com/x"),
        ])
        .unwrap();
        assert!(
            matches!(notice, Event::PebbleCustomNotice { ref notice_key, .. } if notice_key == "example.com/x")
        );
    }

    #[test]
    fn pebble_ready_without_workload_name_is_an_error() {
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/synapse-pebble-ready"),
                ("JUJU_WORKLOAD_NAME", "")
            ]),
            Err(ContextError::Missing("JUJU_WORKLOAD_NAME"))
        );
    }

    #[test]
    fn secret_events() {
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/secret-changed"),
                ("JUJU_SECRET_ID", "secret:abc"),
                ("JUJU_SECRET_LABEL", ""),
                ("JUJU_SECRET_REVISION", ""),
            ]),
            Ok(Event::Secret {
                hook: SecretHook::Changed,
                id: "secret:abc".into(),
                label: None,
                revision: None
            })
        );
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "hooks/secret-remove"),
                ("JUJU_SECRET_ID", "secret:abc"),
                ("JUJU_SECRET_LABEL", "db"),
                ("JUJU_SECRET_REVISION", "3"),
            ]),
            Ok(Event::Secret {
                hook: SecretHook::Remove,
                id: "secret:abc".into(),
                label: Some("db".into()),
                revision: Some(3)
            })
        );
        for hook in ["secret-expired", "secret-rotate"] {
            let ev = parse(&[
                ("JUJU_DISPATCH_PATH", &format!("hooks/{hook}")),
                ("JUJU_SECRET_ID", "secret:x"),
            ])
            .unwrap();
            assert_eq!(ev.name(), hook);
        }
    }

    #[test]
    fn storage_events() {
        let ev = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/data-storage-attached"),
            ("JUJU_STORAGE_ID", "data/0"),
            ("JUJU_STORAGE_LOCATION", "/data"),
        ])
        .unwrap();
        assert_eq!(ev.name(), "data-storage-attached");
        let ev = parse(&[
            ("JUJU_DISPATCH_PATH", "hooks/data-storage-detaching"),
            ("JUJU_STORAGE_ID", "data/0"),
        ])
        .unwrap();
        assert!(matches!(
            ev,
            Event::Storage {
                hook: StorageHook::Detaching,
                ..
            }
        ));
    }

    #[test]
    fn actions() {
        assert_eq!(
            parse(&[
                ("JUJU_DISPATCH_PATH", "actions/register-user"),
                ("JUJU_ACTION_NAME", "register-user"),
                ("JUJU_ACTION_UUID", "42"),
                ("JUJU_HOOK_NAME", ""),
            ]),
            Ok(Event::Action {
                name: "register-user".into(),
                id: Some("42".into())
            })
        );
    }

    #[test]
    fn unknown_and_exec() {
        assert_eq!(parse(&[]), Ok(Event::Exec));
        assert_eq!(parse(&[("JUJU_DISPATCH_PATH", "")]), Ok(Event::Exec));
        assert_eq!(
            parse(&[("JUJU_DISPATCH_PATH", "hooks/collect-metrics")]),
            Ok(Event::Unknown {
                path: "hooks/collect-metrics".into()
            })
        );
        assert_eq!(
            parse(&[("JUJU_DISPATCH_PATH", "weird")]),
            Ok(Event::Unknown {
                path: "weird".into()
            })
        );
    }

    #[test]
    fn relation_id_parsing() {
        assert_eq!(
            RelationId::parse("synapse-peers:12"),
            Some(RelationId {
                endpoint: "synapse-peers".into(),
                id: 12
            })
        );
        assert_eq!(RelationId::parse("nope"), None);
        assert_eq!(RelationId::parse(":3"), None);
        assert_eq!(RelationId::parse("db:x"), None);
    }
}
