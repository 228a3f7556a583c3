//! The Juju topology: who emits the metrics, rules, dashboards and logs. COS uses it to
//! label everything and to keep two deployments (or two applications) apart.

use serde::Serialize;

use crate::juju::HookContext;

/// The charm's name as COS shows it (`juju_charm`).
pub const CHARM_NAME: &str = "synapse";

/// Field order is the one of cos-lib's `JujuTopology.as_dict()`; serialised as is for
/// `scrape_metadata` (prometheus_scrape) and `metadata` (loki_push_api).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub model: String,
    pub model_uuid: String,
    pub application: String,
    pub unit: String,
    pub charm_name: String,
}

impl Topology {
    pub fn from_context(ctx: &HookContext) -> Self {
        Self {
            model: ctx.model_name.clone(),
            model_uuid: ctx.model_uuid.clone(),
            application: ctx.app_name.clone(),
            unit: ctx.unit_name.clone(),
            charm_name: CHARM_NAME.to_string(),
        }
    }

    /// `<model>_<model uuid>_<application>`: unique per deployment, used to prefix rule
    /// group names so that two applications' groups never collide in Prometheus.
    pub fn identifier(&self) -> String {
        format!("{}_{}_{}", self.model, self.model_uuid, self.application)
    }

    /// The JSON document written to the databags.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The unit's host name inside the cluster (sidecar pods are named `<app>-<n>` behind
    /// the headless service `<app>-endpoints`).
    pub fn fqdn(&self) -> String {
        let pod = self.unit.replace('/', "-");
        format!(
            "{pod}.{}-endpoints.{}.svc.cluster.local",
            self.application, self.model
        )
    }

    /// The topology labels every rule and log line carries (without the unit).
    pub fn rule_labels(&self) -> [(&'static str, &str); 4] {
        [
            ("juju_model", &self.model),
            ("juju_model_uuid", &self.model_uuid),
            ("juju_application", &self.application),
            ("juju_charm", &self.charm_name),
        ]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::juju::Event;

    pub fn ctx(event: Event) -> HookContext {
        HookContext {
            unit_name: "synapse/0".into(),
            app_name: "synapse".into(),
            unit_number: 0,
            model_name: "chat".into(),
            model_uuid: "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab".into(),
            juju_version: None,
            event,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }

    pub fn topology() -> Topology {
        Topology::from_context(&ctx(Event::UpdateStatus))
    }

    #[test]
    fn from_context_and_json() {
        let t = topology();
        assert_eq!(t.charm_name, "synapse");
        assert_eq!(t.unit, "synapse/0");
        assert_eq!(
            t.to_json(),
            r#"{"model":"chat","model_uuid":"0b5b5a54-1c2d-4e3f-8a9b-0123456789ab","application":"synapse","unit":"synapse/0","charm_name":"synapse"}"#
        );
        assert_eq!(
            t.identifier(),
            "chat_0b5b5a54-1c2d-4e3f-8a9b-0123456789ab_synapse"
        );
        assert_eq!(
            t.fqdn(),
            "synapse-0.synapse-endpoints.chat.svc.cluster.local"
        );
    }
}
