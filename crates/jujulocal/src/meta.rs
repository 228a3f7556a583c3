//! A charm's metadata (`metadata.yaml`, `config.yaml`, `actions.yaml`), as far as
//! JujuLocal needs it: endpoints, containers, storage, option types, action schemas.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Area;
use crate::Error;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Role {
    Provides,
    Requires,
    Peers,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointMeta {
    pub role: Role,
    pub interface: String,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerMeta {
    pub name: String,
    /// (storage name, mount location)
    #[serde(default)]
    pub mounts: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptionMeta {
    #[serde(rename = "type")]
    pub kind: String,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CharmMeta {
    pub name: String,
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointMeta>,
    #[serde(default)]
    pub containers: Vec<ContainerMeta>,
    #[serde(default)]
    pub storage: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, OptionMeta>,
    /// Action name -> JSON schema of its params (`{"params":..., "required":..., ...}`).
    #[serde(default)]
    pub actions: BTreeMap<String, Value>,
}

fn read_yaml(path: &Path) -> Result<Option<Value>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_saphyr::from_str::<Value>(&text)
            .map(Some)
            .map_err(|source| Error::Yaml {
                area: Area::Charm,
                path: path.to_path_buf(),
                source: Box::new(source),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(Area::Charm, path)(e)),
    }
}

impl CharmMeta {
    pub fn load(charm_dir: &Path) -> Result<Self, Error> {
        let md = read_yaml(&charm_dir.join("metadata.yaml"))?.ok_or_else(|| {
            Error::invalid(
                Area::Charm,
                format!("{} has no metadata.yaml", charm_dir.display()),
            )
        })?;
        let name = md["name"]
            .as_str()
            .ok_or_else(|| Error::invalid(Area::Charm, "metadata.yaml has no name"))?
            .to_string();
        let mut meta = CharmMeta {
            name,
            ..Default::default()
        };
        for (key, role) in [
            ("provides", Role::Provides),
            ("requires", Role::Requires),
            ("peers", Role::Peers),
        ] {
            if let Some(map) = md[key].as_object() {
                for (ep, spec) in map {
                    let interface = spec["interface"].as_str().ok_or_else(|| {
                        Error::invalid(Area::Charm, format!("endpoint {ep:?} has no interface"))
                    })?;
                    meta.endpoints.insert(
                        ep.clone(),
                        EndpointMeta {
                            role: role.clone(),
                            interface: interface.into(),
                            limit: spec["limit"].as_u64().map(|l| l as u32),
                        },
                    );
                }
            }
        }
        if let Some(map) = md["storage"].as_object() {
            for (name, spec) in map {
                let loc = spec["location"].as_str().unwrap_or("").to_string();
                meta.storage.insert(name.clone(), loc);
            }
        }
        if let Some(map) = md["containers"].as_object() {
            for (name, spec) in map {
                let mounts = spec["mounts"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .filter_map(|m| {
                                Some((
                                    m["storage"].as_str()?.to_string(),
                                    m["location"].as_str()?.to_string(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                meta.containers.push(ContainerMeta {
                    name: name.clone(),
                    mounts,
                });
            }
        }
        if let Some(cfg) = read_yaml(&charm_dir.join("config.yaml"))? {
            if let Some(opts) = cfg["options"].as_object() {
                for (name, spec) in opts {
                    let kind = spec["type"].as_str().unwrap_or("string").to_string();
                    if !["string", "int", "float", "boolean", "secret"].contains(&kind.as_str()) {
                        return Err(Error::invalid(
                            Area::Charm,
                            format!("config.yaml: option {name:?} has unknown type {kind:?}"),
                        ));
                    }
                    meta.options.insert(
                        name.clone(),
                        OptionMeta {
                            kind,
                            default: spec.get("default").cloned().filter(|v| !v.is_null()),
                        },
                    );
                }
            }
        }
        if let Some(Value::Object(actions)) = read_yaml(&charm_dir.join("actions.yaml"))? {
            meta.actions = actions.into_iter().collect();
        }
        Ok(meta)
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointMeta> {
        self.endpoints.get(name)
    }

    pub fn peer_endpoints(&self) -> impl Iterator<Item = (&String, &EndpointMeta)> {
        self.endpoints.iter().filter(|(_, e)| e.role == Role::Peers)
    }

    /// Checks and converts a `juju config app key=value` string to the option's type.
    pub fn parse_option(&self, key: &str, raw: &str) -> Result<Value, Error> {
        let opt = self
            .options
            .get(key)
            .ok_or_else(|| Error::Usage(format!("unknown option {key:?}")))?;
        let bad = |what: &str| Error::Usage(format!("option {key:?} expected {what}, got {raw:?}"));
        Ok(match opt.kind.as_str() {
            "int" => Value::from(raw.trim().parse::<i64>().map_err(|_| bad("int"))?),
            "float" => {
                let f: f64 = raw.trim().parse().map_err(|_| bad("float"))?;
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| bad("float"))?
            }
            "boolean" => match raw.trim() {
                "true" | "True" | "TRUE" | "yes" | "on" => Value::Bool(true),
                "false" | "False" | "FALSE" | "no" | "off" => Value::Bool(false),
                _ => return Err(bad("boolean")),
            },
            "secret" => {
                if !raw.starts_with("secret:") {
                    return Err(bad("secret URI"));
                }
                Value::String(raw.into())
            }
            _ => Value::String(raw.into()),
        })
    }

    /// Validates action parameters against the action's schema and applies defaults.
    pub fn action_params(
        &self,
        action: &str,
        given: &BTreeMap<String, String>,
    ) -> Result<serde_json::Map<String, Value>, Error> {
        let schema = self
            .actions
            .get(action)
            .ok_or_else(|| Error::Usage(format!("action {action:?} not defined")))?;
        let params = schema["params"].as_object().cloned().unwrap_or_default();
        let mut out = serde_json::Map::new();
        for (k, raw) in given {
            let Some(spec) = params.get(k) else {
                if schema["additionalProperties"] == Value::Bool(false) {
                    return Err(Error::Usage(format!(
                        "validation failed: (root) : additional property {k:?} is not allowed"
                    )));
                }
                out.insert(k.clone(), Value::String(raw.clone()));
                continue;
            };
            let v = match spec["type"].as_str().unwrap_or("string") {
                "boolean" => match raw.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(Error::Usage(format!(
                            "validation failed: (root).{k} : expected boolean, given {raw:?}"
                        )))
                    }
                },
                "integer" => Value::from(raw.parse::<i64>().map_err(|_| {
                    Error::Usage(format!(
                        "validation failed: (root).{k} : expected integer, given {raw:?}"
                    ))
                })?),
                "number" => raw
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "validation failed: (root).{k} : expected number, given {raw:?}"
                        ))
                    })?,
                _ => Value::String(raw.clone()),
            };
            out.insert(k.clone(), v);
        }
        for (k, spec) in &params {
            if !out.contains_key(k) {
                if let Some(d) = spec.get("default") {
                    out.insert(k.clone(), d.clone());
                }
            }
        }
        if let Some(req) = schema["required"].as_array() {
            for r in req.iter().filter_map(Value::as_str) {
                if !out.contains_key(r) {
                    return Err(Error::Usage(format!(
                        "validation failed: (root) : {r:?} is required"
                    )));
                }
            }
        }
        Ok(out)
    }
}
