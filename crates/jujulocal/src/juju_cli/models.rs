//! Where the `juju` front end's models live, and what it keeps beside each model.
//!
//! The root is `$JUJULOCAL_HOME` (else `./.jujulocal`), as for the `jujulocal` CLI.
//! Model `NAME` is the directory `<root>/models/NAME`, a complete JujuLocal home
//! (`JUJULOCAL_HOME=<root>/models/NAME jujulocal status` shows it too). A model made
//! by `jujulocal bootstrap` in the root itself is found under its own name. The current
//! model is `--model`, else `$JUJU_MODEL`, else the one `add-model`/`switch` chose
//! (`<root>/current-model`), else the root's own model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::args::model_name;
use crate::controller::PodConfig;
use crate::error::Area;
use crate::model::Model;
use crate::Error;

pub struct Models {
    pub root: PathBuf,
}

impl Models {
    pub fn from_env() -> Self {
        let root = std::env::var_os("JUJULOCAL_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".jujulocal"));
        Self { root }
    }

    fn root_model(&self) -> Option<String> {
        Model::load(&self.root).ok().map(|m| m.name)
    }

    /// The directory of model `name` (which may not exist yet).
    pub fn dir(&self, reference: &str) -> PathBuf {
        let name = model_name(reference);
        if self.root_model().as_deref() == Some(name) {
            return self.root.clone();
        }
        self.root.join("models").join(name)
    }

    /// The directory of the model a command works on.
    pub fn current(&self, flag: Option<&str>) -> Result<PathBuf, Error> {
        let chosen = flag
            .map(str::to_string)
            .or_else(|| std::env::var("JUJU_MODEL").ok().filter(|s| !s.is_empty()))
            .or_else(|| {
                std::fs::read_to_string(self.root.join("current-model"))
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            });
        let dir = match &chosen {
            Some(name) => self.dir(name),
            None if self.root_model().is_some() => self.root.clone(),
            None => {
                return Err(Error::Usage(
                    "no current model; create one with `juju add-model NAME`".into(),
                ))
            }
        };
        if !Model::path(&dir).exists() {
            let name = chosen.as_deref().map(model_name).unwrap_or("");
            return Err(Error::NotFound(format!("model {name:?} not found")));
        }
        Ok(dir)
    }

    pub fn set_current(&self, name: &str) -> Result<(), Error> {
        let path = self.root.join("current-model");
        std::fs::create_dir_all(&self.root).map_err(Error::io(Area::Model, &self.root))?;
        std::fs::write(&path, format!("{name}\n")).map_err(Error::io(Area::Model, &path))
    }

    pub fn current_name(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join("current-model"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| self.root_model())
    }

    /// Every model: name and directory.
    pub fn list(&self) -> Vec<(Model, PathBuf)> {
        let mut out = vec![];
        if let Ok(m) = Model::load(&self.root) {
            out.push((m, self.root.clone()));
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join("models")) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for d in dirs {
                if let Ok(m) = Model::load(&d) {
                    out.push((m, d));
                }
            }
        }
        out
    }

    /// The pod configuration for deploys: `$JUJULOCAL_PODS`, else `<root>/pods.yaml`.
    pub fn pod_config(&self) -> Result<Option<PodConfig>, Error> {
        let path = std::env::var_os("JUJULOCAL_PODS")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("pods.yaml"));
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(Error::io(Area::Pod, &path))?;
        parse_pods(&text, path.parent().unwrap_or(Path::new("."))).map(Some)
    }
}

/// The pods file: where Pebble is, whether each pod gets its own network namespace, and
/// per container the paths of its image (`target: source`, or `tmpfs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodsFile {
    pebble: PathBuf,
    #[serde(default)]
    netns: bool,
    #[serde(default)]
    mounts: BTreeMap<String, BTreeMap<String, String>>,
}

/// Parses a pods file; relative sources are relative to the file's directory.
pub fn parse_pods(text: &str, base: &Path) -> Result<PodConfig, Error> {
    let f: PodsFile = serde_saphyr::from_str(text).map_err(|source| Error::InputYaml {
        what: "pods file".into(),
        source: Box::new(source),
    })?;
    let abs = |p: &str| -> String {
        if p == "tmpfs" || Path::new(p).is_absolute() {
            p.to_string()
        } else {
            base.join(p).display().to_string()
        }
    };
    Ok(PodConfig {
        pebble_bin: if f.pebble.is_absolute() {
            f.pebble
        } else {
            base.join(f.pebble)
        },
        container_mounts: f
            .mounts
            .into_iter()
            .map(|(c, m)| (c, m.into_iter().map(|(t, s)| (t, abs(&s))).collect()))
            .collect(),
        netns: f.netns,
    })
}

/// What the front end keeps beside a model (`<model>/juju-cli.json`): what Juju has
/// and JujuLocal's model does not (trust, resources), and when update-status last ran.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CliState {
    #[serde(default)]
    pub trust: BTreeMap<String, bool>,
    #[serde(default)]
    pub resources: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub last_update_status: Option<u64>,
    #[serde(default)]
    pub next_task: u64,
}

impl CliState {
    fn path(dir: &Path) -> PathBuf {
        dir.join("juju-cli.json")
    }
    pub fn load(dir: &Path) -> Self {
        crate::journal::read_json(&Self::path(dir)).unwrap_or_default()
    }
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        crate::journal::write_json(&Self::path(dir), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_file_resolves_relative_sources() {
        let c = parse_pods(
            "pebble: bin/pebble\nnetns: true\nmounts:\n  web:\n    /etc/nginx: etc/nginx\n    /var/log/nginx: tmpfs\n    /opt: /abs\n",
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(c.pebble_bin, PathBuf::from("/base/bin/pebble"));
        assert!(c.netns);
        let web = &c.container_mounts["web"];
        assert!(web.contains(&("/etc/nginx".into(), "/base/etc/nginx".into())));
        assert!(web.contains(&("/var/log/nginx".into(), "tmpfs".into())));
        assert!(web.contains(&("/opt".into(), "/abs".into())));
        assert!(parse_pods("pebble: x\nbogus: 1\n", Path::new("/")).is_err());
    }

    #[test]
    fn models_live_under_the_root_and_the_root_model_by_name() {
        let tmp = std::env::temp_dir().join(format!("jl-models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let models = Models { root: tmp.clone() };
        assert_eq!(models.dir("ctl:admin/m1"), tmp.join("models/m1"));
        Model::new("rootm").unwrap().save_to_new(&tmp);
        assert_eq!(models.dir("rootm"), tmp);
        assert_eq!(models.current(None).unwrap(), tmp);
        assert!(models.current(Some("nope")).is_err());
        assert_eq!(models.list().len(), 1);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    trait SaveNew {
        fn save_to_new(&self, dir: &Path);
    }
    impl SaveNew for Model {
        fn save_to_new(&self, dir: &Path) {
            std::fs::create_dir_all(dir).unwrap();
            self.save(dir).unwrap();
        }
    }
}
