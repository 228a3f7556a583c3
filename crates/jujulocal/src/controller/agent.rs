//! The unit agent room: the hook environment, dispatching the charm, committing its
//! journal, and the queue of events that changes cause (relation-changed,
//! secret-changed), run until it is empty.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use juju_hook::{HookContext, RelationHook, RelationId};
use serde_json::Value;

use super::logs::{self, append_log, HookRecord};
use super::{Controller, JUJU_VERSION};
use crate::error::Area;
use crate::journal::{self, HookCtx, Journal};
use crate::model::{app_of, Model};
use crate::{pebble_count, pod};
use crate::{Error, Event};

const HOOK_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_CASCADE: usize = 500;

/// A relation event for a unit whose side of relation `id` is `endpoint`.
pub fn relation_event(
    hook: RelationHook,
    endpoint: &str,
    id: u64,
    remote_app: impl Into<String>,
    remote_unit: Option<String>,
) -> Event {
    Event::Relation {
        hook,
        relation: RelationId {
            endpoint: endpoint.to_string(),
            id,
        },
        remote_app: Some(remote_app.into()),
        remote_unit,
        departing_unit: None,
    }
}

/// `<endpoint>-relation-departed` for `departing`, a unit of `remote_app`.
pub fn departed_event(endpoint: &str, id: u64, remote_app: &str, departing: &str) -> Event {
    Event::Relation {
        hook: RelationHook::Departed,
        relation: RelationId {
            endpoint: endpoint.to_string(),
            id,
        },
        remote_app: Some(remote_app.to_string()),
        remote_unit: Some(departing.to_string()),
        departing_unit: Some(departing.to_string()),
    }
}

/// `<endpoint>-relation-departed` on a leaving unit for `remote_unit`: Juju's uniter
/// names the local unit as the departing one when it is the one dying.
pub fn leaving_departed_event(
    endpoint: &str,
    id: u64,
    remote_app: &str,
    remote_unit: &str,
    leaving: &str,
) -> Event {
    Event::Relation {
        hook: RelationHook::Departed,
        relation: RelationId {
            endpoint: endpoint.to_string(),
            id,
        },
        remote_app: Some(remote_app.to_string()),
        remote_unit: Some(remote_unit.to_string()),
        departing_unit: Some(leaving.to_string()),
    }
}

/// The event for the hook `name` as `juju`'s low-level tools fire it: only the
/// dispatch path is set, so a hook that needs more is delivered as Juju would deliver
/// an unknown one.
pub fn named_hook(name: &str) -> Event {
    let path = format!("hooks/{name}");
    let env = |k: &str| (k == "JUJU_DISPATCH_PATH").then(|| path.clone());
    match juju_hook::parse_event(&env) {
        Ok(event) => event,
        Err(_) => Event::Unknown { path },
    }
}

impl Controller {
    pub(super) fn enqueue(&mut self, unit: &str, event: Event) {
        self.queue.push_back((unit.to_string(), event));
    }

    /// Runs one event now, then everything it causes.
    pub fn run(&mut self, unit: &str, event: Event) -> Result<(), Error> {
        self.enqueue(unit, event);
        self.drain()
    }

    pub(super) fn drain(&mut self) -> Result<(), Error> {
        let mut n = 0;
        while let Some((unit, event)) = self.queue.pop_front() {
            n += 1;
            if n > MAX_CASCADE {
                self.queue.clear();
                return Err(Error::Refused(format!("more than {MAX_CASCADE} events in one cascade: the charms keep changing relation data")));
            }
            // Units that are gone or played by the CLI get no hooks.
            let Ok(app) = self.model.app(app_of(&unit)) else {
                continue;
            };
            if app.is_played() || !app.units.contains_key(&unit) {
                // A stand-in provider answers what reached its unit.
                if app.units.contains_key(&unit) {
                    if let Err(e) = super::providers::react(self, app_of(&unit)) {
                        self.queue.clear();
                        self.save()?;
                        return Err(e);
                    }
                }
                continue;
            }
            if let Err(e) = self.dispatch(&unit, &event) {
                self.queue.clear();
                self.save()?;
                return Err(e);
            }
        }
        self.save()
    }

    /// The charm's environment: Juju's variables for the context and event
    /// ([`HookContext::to_env`]) and the unit agent's own (tools, socket, charm dir).
    fn hook_env(
        &self,
        unit: &str,
        event: &Event,
        ctx_dir: &Path,
        seq: u64,
    ) -> Result<Vec<(String, String)>, Error> {
        let charm_dir = self.unit_charm_dir(unit);
        let name = event.hook_name();
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.tools_dir().display()
                ),
            ),
            ("LANG".into(), "C.UTF-8".into()),
            ("CHARM_DIR".into(), charm_dir.display().to_string()),
            ("JUJU_CHARM_DIR".into(), charm_dir.display().to_string()),
            ("JUJU_CONTEXT_ID".into(), format!("{unit}-{name}-{seq}")),
            (
                "JUJU_AGENT_SOCKET_ADDRESS".into(),
                ctx_dir.join("agent.socket").display().to_string(),
            ),
            ("JUJU_AGENT_SOCKET_NETWORK".into(), "unix".into()),
            ("JUJU_API_ADDRESSES".into(), "127.0.0.1:17070".into()),
            ("JUJU_MACHINE_ID".into(), String::new()),
            ("JUJU_PRINCIPAL_UNIT".into(), String::new()),
            ("JUJU_AVAILABILITY_ZONE".into(), String::new()),
            ("CLOUD_API_VERSION".into(), "1.31.0".into()),
            ("JUJU_CHARM_FTP_PROXY".into(), String::new()),
        ];
        let ctx = HookContext::new(
            unit,
            &self.model.name,
            &self.model.uuid,
            Some(JUJU_VERSION),
            event.clone(),
        )?;
        env.extend(ctx.to_env());
        match event {
            Event::Storage { .. } => env.push(("JUJU_STORAGE_KIND".into(), "filesystem".into())),
            Event::Action { id: Some(a), .. } => {
                env.push(("JUJU_ACTION_TAG".into(), format!("action-{a}")))
            }
            _ => {}
        }
        // Developer knobs that real Juju would not set, passed through when present.
        for k in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.into(), v));
            }
        }
        Ok(env)
    }

    fn dispatch(&mut self, unit: &str, event: &Event) -> Result<(), Error> {
        let seq = self.model.next_hook;
        self.model.next_hook += 1;
        let app_name = app_of(unit).to_string();
        let app = self.model.app(&app_name)?;
        if app.charm_dir.is_none() {
            return Err(Error::invalid(
                Area::Charm,
                format!("{app_name} has no charm"),
            ));
        }
        let charm_dir = self.unit_charm_dir(unit);
        let ctx_dir = self.home.join("hooks").join(seq.to_string());
        std::fs::create_dir_all(&ctx_dir).map_err(Error::io(Area::Model, &ctx_dir))?;
        let leader = app.leader.as_deref() == Some(unit);
        let ctx = HookCtx::for_event(&self.home, unit, leader, event);
        // Hook tools read the model from disk: it must be current.
        self.save()?;
        journal::write_json(&journal::ctx_path(&ctx_dir), &ctx)?;
        journal::write_json(&journal::journal_path(&ctx_dir), &Journal::default())?;
        let env = self.hook_env(unit, event, &ctx_dir, seq)?;
        let mut cmd = Command::new(charm_dir.join("dispatch"));
        cmd.env_clear()
            .envs(env)
            .current_dir(&charm_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The namespace files must stay open until the charm has been spawned.
        let _enter = match self.runtime.pods.get(unit) {
            Some(pod) => {
                let enter = pod::Enter::open(pod.charm_pid)?;
                enter.apply(&mut cmd, &charm_dir)?;
                Some(enter)
            }
            None => None,
        };
        let before = self.model.clone();
        let counter = self.pebble_counter(unit);
        let started = Instant::now();
        let ran = run_with_timeout(cmd, HOOK_TIMEOUT);
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let pebble = counter.map(pebble_count::Counter::finish);
        let (code, stdout, stderr, rss) = ran?;
        let journal: Journal =
            journal::read_json(&journal::journal_path(&ctx_dir)).unwrap_or_default();
        let hook_name = event.hook_name();
        for (level, text) in [("DEBUG", &stdout), ("WARNING", &stderr)] {
            if !text.trim().is_empty() {
                append_log(
                    &self.home,
                    unit,
                    level,
                    &format!("{hook_name}: {}", text.trim_end()),
                );
            }
        }
        // Juju's unit agent logs each hook it ran (what `juju debug-log` shows, and
        // what tests wait on, e.g. for the next update-status).
        if ctx.action_id.is_none() {
            let via = "(via hook dispatching script: dispatch)";
            let (level, line) = if code == 0 {
                ("INFO", format!("ran \"{hook_name}\" hook {via}"))
            } else {
                (
                    "ERROR",
                    format!("hook \"{hook_name}\" {via} failed: exit status {code}"),
                )
            };
            append_log(
                &self.home,
                unit,
                level,
                &format!("juju.worker.uniter.operation {line}"),
            );
        }
        let record = HookRecord {
            seq,
            unit: unit.into(),
            hook: hook_name.clone(),
            exit: code,
            wall_ms,
            max_rss_kib: rss,
            calls: journal.calls.clone(),
            pebble,
        };
        logs::record(&self.home, &record);
        self.records.push(record);
        let _ = std::fs::remove_dir_all(&ctx_dir);
        journal::commit(&mut self.model, &ctx, &journal, code == 0);
        if let Some(a) = ctx.action_id {
            if let Some(action) = self.model.actions.iter_mut().find(|x| x.id == a) {
                action
                    .results
                    .insert("return-code".into(), Value::from(code));
                if !stdout.is_empty() {
                    action
                        .results
                        .insert("stdout".into(), Value::String(stdout.clone()));
                }
                if !stderr.is_empty() {
                    action
                        .results
                        .insert("stderr".into(), Value::String(stderr.clone()));
                }
                if code != 0 {
                    action.status = "failed".into();
                    action
                        .message
                        .get_or_insert_with(|| format!("exit status {code}"));
                } else if action.status == "running" {
                    action.status = "completed".into();
                }
            }
            if code != 0 {
                return Ok(());
            }
        }
        if code != 0 {
            if let Some(u) = self.model.app_mut(&app_name)?.units.get_mut(unit) {
                u.error = Some(hook_name.clone());
            }
            return Err(Error::HookFailed {
                unit: unit.into(),
                hook: hook_name,
                reason: format!("exit status {code}: {}", last_line(&stderr)),
            });
        }
        if let Some(u) = self.model.app_mut(&app_name)?.units.get_mut(unit) {
            u.error = None;
        }
        self.deliver_changes(&before, unit, &journal);
        Ok(())
    }

    /// With `JUJULOCAL_COUNT_PEBBLE=1`, a proxy in front of each of the unit's Pebble
    /// sockets for this dispatch.
    fn pebble_counter(&self, unit: &str) -> Option<pebble_count::Counter> {
        if std::env::var(pebble_count::ENV).as_deref() != Ok("1") || self.pod(unit).is_none() {
            return None;
        }
        let app = self.model.app(app_of(unit)).ok()?;
        let sockets: Vec<(String, std::path::PathBuf)> = app
            .meta
            .containers
            .iter()
            .map(|c| (c.name.clone(), self.pebble_socket(unit, &c.name)))
            .filter(|(_, s)| s.exists())
            .collect();
        Some(pebble_count::Counter::start(&sockets))
    }

    /// Queues relation-changed / secret-changed for what a hook (or the CLI) changed.
    pub(super) fn deliver_changes(&mut self, before: &Model, writer: &str, journal: &Journal) {
        let writer_app = app_of(writer).to_string();
        for rel in self.model.relations.clone() {
            let Some(old) = before.relation(rel.id) else {
                continue;
            };
            let Some(end) = rel.end_for(&writer_app) else {
                continue;
            };
            let app_changed = old.app_data.get(&writer_app) != rel.app_data.get(&writer_app);
            let unit_changed = old.unit_data.get(writer) != rel.unit_data.get(writer);
            if !app_changed && !unit_changed {
                continue;
            }
            // The units on the other side (other peers for a peer relation) see the change.
            let (target_app, target_ep) = if rel.is_peer() {
                (writer_app.clone(), end.endpoint.clone())
            } else {
                match rel.ends.iter().find(|e| e.app != writer_app) {
                    Some(e) => (e.app.clone(), e.endpoint.clone()),
                    None => continue,
                }
            };
            let targets: Vec<String> = rel.joined.get(&target_app).cloned().unwrap_or_default();
            let writer_joined = rel
                .joined
                .get(&writer_app)
                .is_some_and(|u| u.iter().any(|x| x == writer))
                || writer.is_empty();
            for t in targets.iter().filter(|t| *t != writer) {
                if app_changed {
                    self.enqueue(
                        t,
                        relation_event(
                            RelationHook::Changed,
                            &target_ep,
                            rel.id,
                            &writer_app,
                            None,
                        ),
                    );
                }
                if unit_changed && writer_joined {
                    self.enqueue(
                        t,
                        relation_event(
                            RelationHook::Changed,
                            &target_ep,
                            rel.id,
                            &writer_app,
                            Some(writer.to_string()),
                        ),
                    );
                }
            }
        }
        for id in &journal.new_revisions {
            self.notify_secret_consumers(id);
        }
    }

    pub(super) fn notify_secret_consumers(&mut self, id: &str) {
        let Some(secret) = self.model.secrets.get(crate::util::secret_id(id)).cloned() else {
            return;
        };
        let latest = secret.latest().map(|r| r.revision).unwrap_or(0);
        for (unit, c) in &secret.consumers {
            if c.revision < latest {
                self.enqueue(
                    unit,
                    Event::Secret {
                        hook: juju_hook::SecretHook::Changed,
                        id: juju_hook::secret::secret_uri(&secret.id),
                        label: c.label.clone(),
                        revision: None,
                    },
                );
            }
        }
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// Runs the charm, capturing output, with a timeout; returns (exit code, stdout, stderr, max RSS KiB).
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(i32, String, String, i64), Error> {
    let mut child = cmd
        .spawn()
        .map_err(Error::os(Area::Charm, "cannot run the charm"))?;
    let pid = child.id() as i32;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let (code, rss) = loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child, non-blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            break (code, usage.ru_maxrss);
        }
        if r < 0 {
            return Err(Error::Os {
                area: Area::Charm,
                what: "waiting for the charm".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    Ok((code, stdout, stderr, rss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_hooks_need_nothing_but_their_name() {
        assert_eq!(named_hook("config-changed"), Event::ConfigChanged);
        assert_eq!(named_hook("update-status"), Event::UpdateStatus);
        // Hooks that need more than a name go out as Juju sends a hook it has no
        // variables for: the dispatch path alone.
        for name in ["db-relation-changed", "synapse-pebble-ready", "bogus"] {
            assert_eq!(
                named_hook(name),
                Event::Unknown {
                    path: format!("hooks/{name}")
                }
            );
        }
    }

    #[test]
    fn hook_ctx_takes_relation_and_action_from_the_event() {
        let home = Path::new("/m");
        let departed = departed_event("db", 3, "pg", "pg/1");
        let ctx = HookCtx::for_event(home, "synapse/0", true, &departed);
        assert_eq!(ctx.dispatch_path, "hooks/db-relation-departed");
        assert_eq!(ctx.relation_id, Some(3));
        assert_eq!(ctx.remote_app.as_deref(), Some("pg"));
        assert_eq!(ctx.departing_unit.as_deref(), Some("pg/1"));
        let action = Event::Action {
            name: "register-user".into(),
            id: Some("7".into()),
        };
        let ctx = HookCtx::for_event(home, "synapse/0", false, &action);
        assert_eq!(ctx.action_id, Some(7));
        assert_eq!(ctx.relation_id, None);
        assert_eq!(ctx.dispatch_path, "actions/register-user");
    }
}
