//! Who and where this dispatch runs: unit, application, model and the event.

use crate::event::{parse_event, ContextError, Env, Event};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookContext {
    pub unit_name: String,
    pub app_name: String,
    pub unit_number: u32,
    pub model_name: String,
    pub model_uuid: String,
    pub juju_version: Option<String>,
    pub event: Event,
    /// Model proxy settings (`JUJU_CHARM_HTTP_PROXY` ...), passed to workloads.
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl HookContext {
    pub fn from_env(env: &dyn Env) -> Result<Self, ContextError> {
        let unit_name = env
            .var("JUJU_UNIT_NAME")
            .ok_or(ContextError::Missing("JUJU_UNIT_NAME"))?;
        let (app, num) = split_unit(&unit_name)?;
        Ok(Self {
            app_name: app,
            unit_number: num,
            model_name: env.var("JUJU_MODEL_NAME").unwrap_or_default(),
            model_uuid: env.var("JUJU_MODEL_UUID").unwrap_or_default(),
            juju_version: env.var("JUJU_VERSION"),
            event: parse_event(env)?,
            http_proxy: env.var("JUJU_CHARM_HTTP_PROXY"),
            https_proxy: env.var("JUJU_CHARM_HTTPS_PROXY"),
            no_proxy: env.var("JUJU_CHARM_NO_PROXY"),
            unit_name,
        })
    }
}

impl HookContext {
    /// The context of `event` for `unit_name` (`app/N`) in a model, with no proxies.
    pub fn new(
        unit_name: &str,
        model_name: &str,
        model_uuid: &str,
        juju_version: Option<&str>,
        event: Event,
    ) -> Result<Self, ContextError> {
        let (app_name, unit_number) = split_unit(unit_name)?;
        Ok(Self {
            unit_name: unit_name.to_string(),
            app_name,
            unit_number,
            model_name: model_name.to_string(),
            model_uuid: model_uuid.to_string(),
            juju_version: juju_version.map(str::to_string),
            event,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        })
    }

    /// The `JUJU_*` variables Juju sets for this context and its event; `from_env` of
    /// them gives this context back. Unset values are exported as empty strings.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut env = vec![
            ("JUJU_UNIT_NAME".to_string(), self.unit_name.clone()),
            ("JUJU_MODEL_NAME".to_string(), self.model_name.clone()),
            ("JUJU_MODEL_UUID".to_string(), self.model_uuid.clone()),
            ("JUJU_VERSION".to_string(), opt(&self.juju_version)),
            ("JUJU_CHARM_HTTP_PROXY".to_string(), opt(&self.http_proxy)),
            ("JUJU_CHARM_HTTPS_PROXY".to_string(), opt(&self.https_proxy)),
            ("JUJU_CHARM_NO_PROXY".to_string(), opt(&self.no_proxy)),
        ];
        env.extend(self.event.to_env());
        env
    }
}

fn split_unit(unit_name: &str) -> Result<(String, u32), ContextError> {
    unit_name
        .split_once('/')
        .and_then(|(a, n)| Some((a.to_string(), n.parse::<u32>().ok()?)))
        .ok_or_else(|| ContextError::Invalid {
            var: "JUJU_UNIT_NAME",
            value: unit_name.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unit_and_model() {
        let env = |k: &str| -> Option<String> {
            match k {
                "JUJU_UNIT_NAME" => Some("synapse/3".into()),
                "JUJU_MODEL_NAME" => Some("chat".into()),
                "JUJU_MODEL_UUID" => Some("0b5b5a54-0000-4000-8000-000000000000".into()),
                "JUJU_DISPATCH_PATH" => Some("hooks/update-status".into()),
                _ => Some(String::new()),
            }
        };
        let ctx = HookContext::from_env(&env).unwrap();
        assert_eq!(ctx.app_name, "synapse");
        assert_eq!(ctx.unit_number, 3);
        assert_eq!(ctx.model_name, "chat");
        assert_eq!(ctx.event, Event::UpdateStatus);
        assert_eq!(ctx.http_proxy, None);
    }

    use crate::event::{RelationHook, RelationId, SecretHook, StorageHook};
    use std::collections::HashMap;

    /// One event of every kind, with every hook of the relation, secret and storage kinds.
    fn every_event() -> Vec<Event> {
        let mut events = vec![
            Event::Install,
            Event::Start,
            Event::Stop,
            Event::Remove,
            Event::UpgradeCharm,
            Event::ConfigChanged,
            Event::LeaderElected,
            Event::LeaderSettingsChanged,
            Event::UpdateStatus,
            Event::PebbleReady {
                container: "synapse-nginx".into(),
            },
            Event::PebbleCustomNotice {
                container: "synapse".into(),
                notice_id: "4".into(),
                notice_type: "custom".into(),
                notice_key: "example.com/x".into(),
            },
            Event::PebbleCheckFailed {
                container: "synapse".into(),
                check: "synapse-ready".into(),
            },
            Event::PebbleCheckRecovered {
                container: "synapse".into(),
                check: "synapse-ready".into(),
            },
            Event::Action {
                name: "register-user".into(),
                id: Some("42".into()),
            },
            Event::Action {
                name: "anonymize-user".into(),
                id: None,
            },
            Event::Exec,
            Event::Unknown {
                path: "hooks/collect-metrics".into(),
            },
        ];
        for hook in [
            RelationHook::Created,
            RelationHook::Joined,
            RelationHook::Changed,
            RelationHook::Departed,
            RelationHook::Broken,
        ] {
            let remote_unit = match hook {
                RelationHook::Created | RelationHook::Broken => None,
                _ => Some("postgresql-k8s/1".to_string()),
            };
            let departing_unit = match hook {
                RelationHook::Departed => remote_unit.clone(),
                _ => None,
            };
            events.push(Event::Relation {
                hook,
                relation: RelationId {
                    endpoint: "database".into(),
                    id: 7,
                },
                remote_app: Some("postgresql-k8s".into()),
                remote_unit,
                departing_unit,
            });
        }
        for (i, hook) in [
            SecretHook::Changed,
            SecretHook::Expired,
            SecretHook::Remove,
            SecretHook::Rotate,
        ]
        .into_iter()
        .enumerate()
        {
            events.push(Event::Secret {
                hook,
                id: "secret:cu1nqcfmp25c7a3t2m1g".into(),
                label: (i % 2 == 0).then(|| "signing-key".into()),
                revision: (i > 1).then_some(3),
            });
        }
        for hook in [StorageHook::Attached, StorageHook::Detaching] {
            events.push(Event::Storage {
                hook,
                storage_id: "data/0".into(),
                location: Some("/data".into()),
            });
        }
        events
    }

    #[test]
    fn to_env_then_from_env_gives_the_context_back() {
        for event in every_event() {
            let mut ctx = HookContext::new(
                "synapse/3",
                "chat",
                "0b5b5a54-0000-4000-8000-000000000000",
                Some("3.6.8"),
                event,
            )
            .unwrap();
            ctx.http_proxy = Some("http://proxy:3128".into());
            ctx.no_proxy = Some("localhost".into());
            let vars: HashMap<String, String> = ctx.to_env().into_iter().collect();
            let env = move |k: &str| vars.get(k).cloned();
            assert_eq!(HookContext::from_env(&env), Ok(ctx.clone()), "{ctx:?}");
        }
    }

    #[test]
    fn dispatch_paths() {
        assert_eq!(Event::Install.dispatch_path(), "hooks/install");
        assert_eq!(
            Event::Action {
                name: "register-user".into(),
                id: None
            }
            .dispatch_path(),
            "actions/register-user"
        );
        assert_eq!(Event::Exec.dispatch_path(), "");
        let storage = Event::Storage {
            hook: StorageHook::Detaching,
            storage_id: "data/0".into(),
            location: None,
        };
        assert_eq!(storage.dispatch_path(), "hooks/data-storage-detaching");
        assert_eq!(storage.hook_name(), "data-storage-detaching");
    }

    #[test]
    fn new_checks_the_unit_name() {
        assert!(HookContext::new("nounit", "m", "u", None, Event::Install).is_err());
    }

    #[test]
    fn missing_unit_name_is_reported() {
        let env = |_: &str| -> Option<String> { None };
        assert_eq!(
            HookContext::from_env(&env),
            Err(ContextError::Missing("JUJU_UNIT_NAME"))
        );
        let env = |k: &str| -> Option<String> { (k == "JUJU_UNIT_NAME").then(|| "nounit".into()) };
        assert!(matches!(
            HookContext::from_env(&env),
            Err(ContextError::Invalid { .. })
        ));
    }
}
