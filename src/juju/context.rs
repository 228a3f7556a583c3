//! Who and where this dispatch runs: unit, application, model and the event.

use super::event::{parse_event, ContextError, Env, Event};

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
        let (app, num) = unit_name
            .split_once('/')
            .and_then(|(a, n)| Some((a.to_string(), n.parse::<u32>().ok()?)))
            .ok_or_else(|| ContextError::Invalid {
                var: "JUJU_UNIT_NAME",
                value: unit_name.clone(),
            })?;
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
