//! An in-memory Pebble for unit tests: plan, files, services; counts what the charm did.
//! Real-Pebble tests live in `crates/pebble/tests` and `tests/`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use pebble::{
    CheckInfo, CheckStatus, ExecOptions, ExecOutput, Layer, LogEntry, PushOptions, ServiceInfo,
    ServiceStatus, Startup,
};

use crate::workload::{PebbleResult, Workload, Workloads};

/// An in-memory Pebble: plan, files, services; counts what the charm did.
#[derive(Default)]
pub struct FakePebble {
    pub reachable: bool,
    pub plan: RefCell<Layer>,
    pub files: RefCell<BTreeMap<String, Vec<u8>>>,
    pub running: RefCell<BTreeMap<String, bool>>,
    pub ready: bool,
    pub pushes: RefCell<Vec<String>>,
    pub layers_added: RefCell<u32>,
    /// Services (re)started by replan because their spec changed.
    pub restarts: RefCell<u32>,
    /// Every request, in order (`plan`, `add-layer <label>`, `replan`, ...).
    pub calls: RefCell<Vec<String>>,
    /// Pebble goes away after answering this many requests (a container restart).
    pub vanish_after: Option<usize>,
    /// What every exec answers (exit 0 and no output by default).
    pub exec_reply: RefCell<Option<ExecOutput>>,
    /// The commands exec'd, in order.
    pub execs: RefCell<Vec<Vec<String>>>,
    /// What `logs` answers.
    pub log_lines: RefCell<Vec<String>>,
    /// Services Pebble keeps restarting (shown in backoff).
    pub backoff: RefCell<Vec<String>>,
    /// Checks that are down (never passed), whatever `ready` says.
    pub down_checks: RefCell<Vec<String>>,
    /// What an HTTP GET in the pod answers, by URL.
    pub http: RefCell<BTreeMap<String, Vec<u8>>>,
    pub started_specs: RefCell<BTreeMap<String, pebble::Service>>,
    /// URLs fetched (not in `calls`: not a Pebble request), in order.
    pub fetches: RefCell<Vec<String>>,
    /// Signals sent (`SIGHUP nginx`), in order.
    pub signals: RefCell<Vec<String>>,
    /// How many times each service started (the charm's starts and Pebble's own);
    /// a running service's `current-since` changes with it.
    pub starts: RefCell<BTreeMap<String, u32>>,
    /// Ready-check successes on top of the one `ready` gives.
    pub later_successes: RefCell<u64>,
    /// A Pebble too old to count check successes (no `successes` field).
    pub uncounted: bool,
    /// The checks have not passed yet (0 successes), though the service answers.
    pub unchecked: bool,
}

impl FakePebble {
    /// Reachable, ready, and exec answers like Synapse accepting a configuration.
    pub fn up() -> Self {
        Self {
            reachable: true,
            ready: true,
            exec_reply: RefCell::new(Some(ExecOutput {
                exit_code: 0,
                stdout: br#"{"ok": true}"#.to_vec(),
                stderr: vec![],
            })),
            ..Default::default()
        }
    }
    /// The requests since the last take.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    /// Pebble restarts `service` by itself (it exited): a new `current-since`, and
    /// the ready check has not run since.
    pub fn pebble_restart(&self, service: &str) {
        self.started(service);
    }

    fn started(&self, service: &str) {
        *self
            .starts
            .borrow_mut()
            .entry(service.to_string())
            .or_default() += 1;
    }

    fn call(&self, what: impl Into<String>) {
        self.calls.borrow_mut().push(what.into());
    }

    fn check(&self) -> PebbleResult<()> {
        let gone = self
            .vanish_after
            .is_some_and(|n| self.calls.borrow().len() > n);
        if self.reachable && !gone {
            Ok(())
        } else {
            Err(pebble::Error::Connect {
                socket: "/fake".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    }
}

impl Workload for FakePebble {
    fn name(&self) -> &str {
        "fake"
    }
    fn plan(&self) -> PebbleResult<Layer> {
        self.call("plan");
        self.check()?;
        Ok(self.plan.borrow().clone())
    }
    fn add_layer(&self, label: &str, layer: &Layer) -> PebbleResult<()> {
        self.call(format!("add-layer {label}"));
        self.check()?;
        *self.layers_added.borrow_mut() += 1;
        let mut plan = self.plan.borrow_mut();
        plan.services.extend(layer.services.clone());
        plan.checks.extend(layer.checks.clone());
        plan.log_targets.extend(layer.log_targets.clone());
        Ok(())
    }
    fn replan(&self) -> PebbleResult<()> {
        self.call("replan");
        self.check()?;
        for (name, svc) in self.plan.borrow().services.iter() {
            let started = self.started_specs.borrow().get(name).cloned();
            let changed = started.as_ref() != Some(svc);
            let running = *self.running.borrow().get(name).unwrap_or(&false);
            // As Pebble: a service started before whose spec changed is (re)started
            // whatever its startup says.
            let ever_started = started.is_some();
            if (changed || !running) && svc.startup == Some(Startup::Enabled)
                || changed && ever_started
            {
                *self.restarts.borrow_mut() += 1;
                self.started(name);
                self.running.borrow_mut().insert(name.clone(), true);
                self.started_specs
                    .borrow_mut()
                    .insert(name.clone(), svc.clone());
            }
        }
        Ok(())
    }
    fn stop(&self, services: &[&str]) -> PebbleResult<()> {
        self.call("stop");
        for s in services {
            self.running.borrow_mut().insert(s.to_string(), false);
        }
        Ok(())
    }
    fn stop_checks(&self, checks: &[&str]) -> PebbleResult<()> {
        self.call(format!("stop-checks {}", checks.join(",")));
        self.check()
    }
    fn start(&self, services: &[&str]) -> PebbleResult<()> {
        self.call("start");
        self.check()?;
        for s in services {
            *self.restarts.borrow_mut() += 1;
            self.started(s);
            self.running.borrow_mut().insert(s.to_string(), true);
        }
        Ok(())
    }
    fn pull(&self, path: &str) -> PebbleResult<Option<Vec<u8>>> {
        self.call("pull");
        self.check()?;
        Ok(self.files.borrow().get(path).cloned())
    }
    fn push(&self, path: &str, content: &[u8], _: &PushOptions) -> PebbleResult<()> {
        self.call("push");
        self.check()?;
        self.pushes.borrow_mut().push(path.to_string());
        self.files
            .borrow_mut()
            .insert(path.to_string(), content.to_vec());
        Ok(())
    }
    fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
        self.call("services");
        self.check()?;
        Ok(self
            .plan
            .borrow()
            .services
            .iter()
            .map(|(n, svc)| {
                let current = if self.backoff.borrow().contains(n) {
                    ServiceStatus::Backoff
                } else if *self.running.borrow().get(n).unwrap_or(&false) {
                    ServiceStatus::Active
                } else {
                    ServiceStatus::Inactive
                };
                let starts = self.starts.borrow().get(n).copied().unwrap_or(0);
                ServiceInfo {
                    name: n.clone(),
                    startup: svc.startup.unwrap_or(Startup::Disabled),
                    current,
                    current_since: Some(format!("2026-01-01T00:00:{starts:02}Z")),
                }
            })
            .collect())
    }
    fn probe(&self, _: &str) -> bool {
        self.ready
    }
    fn exec(&self, opts: &ExecOptions) -> PebbleResult<ExecOutput> {
        self.call("exec");
        self.check()?;
        self.execs.borrow_mut().push(opts.command.clone());
        Ok(self.exec_reply.borrow().clone().unwrap_or(ExecOutput {
            exit_code: 0,
            stdout: vec![],
            stderr: vec![],
        }))
    }
    fn exec_streaming(
        &self,
        opts: &ExecOptions,
        stdin: &mut dyn std::io::Read,
        stdout: &mut (dyn std::io::Write + Send),
    ) -> PebbleResult<pebble::StreamedOutput> {
        // The command's input is consumed, its output is the configured stdout.
        let out = self.exec(opts)?;
        let mut sink = Vec::new();
        let stdin_error = stdin.read_to_end(&mut sink).err();
        let stdout_error = stdout.write_all(&out.stdout).err();
        Ok(pebble::StreamedOutput {
            exit_code: out.exit_code,
            stderr: out.stderr,
            stdin_error,
            stdout_error,
        })
    }
    fn logs(&self, service: &str, n: usize) -> PebbleResult<Vec<LogEntry>> {
        self.call("logs");
        self.check()?;
        let lines = self.log_lines.borrow();
        Ok(lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|m| LogEntry {
                time: String::new(),
                service: service.to_string(),
                message: m.clone(),
            })
            .collect())
    }
    fn fetch(&self, url: &str) -> Option<Vec<u8>> {
        self.fetches.borrow_mut().push(url.to_string());
        self.http.borrow().get(url).cloned()
    }
    fn signal(&self, services: &[&str], signal: &str) -> PebbleResult<()> {
        self.call(format!("signal {signal} {}", services.join(",")));
        self.check()?;
        self.signals
            .borrow_mut()
            .push(format!("{signal} {}", services.join(",")));
        Ok(())
    }
    fn remove(&self, path: &str) -> PebbleResult<()> {
        self.call("remove");
        self.check()?;
        self.files.borrow_mut().remove(path);
        Ok(())
    }
    fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
        self.call("checks");
        self.check()?;
        Ok(self
            .plan
            .borrow()
            .checks
            .keys()
            .map(|n| {
                let down = self.down_checks.borrow().contains(n);
                (n, down)
            })
            .map(|(n, down)| CheckInfo {
                name: n.clone(),
                level: None,
                startup: None,
                status: if down {
                    CheckStatus::Down
                } else {
                    CheckStatus::Up
                },
                successes: if self.uncounted {
                    None
                } else if down || self.unchecked {
                    Some(0)
                } else {
                    Some(u64::from(self.ready) + *self.later_successes.borrow())
                },
                failures: 0,
                threshold: 3,
                change_id: None,
                prev_change_id: None,
            })
            .collect())
    }
}

impl FakePod {
    /// Both containers up and ready, with an empty data volume.
    pub fn up() -> Self {
        Self {
            synapse: FakePebble::up(),
            nginx: FakePebble::up(),
            data: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    /// The requests to both containers since the last take, synapse's first.
    pub fn take_calls(&self) -> Vec<String> {
        let mut c = self.synapse.take_calls();
        c.extend(self.nginx.take_calls());
        c
    }
}

pub struct FakePod {
    pub synapse: FakePebble,
    pub nginx: FakePebble,
    /// The data volume as the charm container sees it.
    pub data: tempfile::TempDir,
}

impl Workloads for FakePod {
    fn container(&self, name: &str) -> Box<dyn Workload + '_> {
        struct Ref<'a>(&'a FakePebble);
        impl Workload for Ref<'_> {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn plan(&self) -> PebbleResult<Layer> {
                self.0.plan()
            }
            fn add_layer(&self, l: &str, layer: &Layer) -> PebbleResult<()> {
                self.0.add_layer(l, layer)
            }
            fn replan(&self) -> PebbleResult<()> {
                self.0.replan()
            }
            fn stop(&self, s: &[&str]) -> PebbleResult<()> {
                self.0.stop(s)
            }
            fn stop_checks(&self, c: &[&str]) -> PebbleResult<()> {
                self.0.stop_checks(c)
            }
            fn start(&self, s: &[&str]) -> PebbleResult<()> {
                self.0.start(s)
            }
            fn pull(&self, p: &str) -> PebbleResult<Option<Vec<u8>>> {
                self.0.pull(p)
            }
            fn push(&self, p: &str, c: &[u8], o: &PushOptions) -> PebbleResult<()> {
                self.0.push(p, c, o)
            }
            fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
                self.0.services()
            }
            fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
                self.0.checks()
            }
            fn probe(&self, u: &str) -> bool {
                self.0.probe(u)
            }
            fn exec(&self, o: &ExecOptions) -> PebbleResult<ExecOutput> {
                self.0.exec(o)
            }
            fn exec_streaming(
                &self,
                o: &ExecOptions,
                i: &mut dyn std::io::Read,
                w: &mut (dyn std::io::Write + Send),
            ) -> PebbleResult<pebble::StreamedOutput> {
                self.0.exec_streaming(o, i, w)
            }
            fn logs(&self, s: &str, n: usize) -> PebbleResult<Vec<LogEntry>> {
                self.0.logs(s, n)
            }
            fn remove(&self, p: &str) -> PebbleResult<()> {
                self.0.remove(p)
            }
            fn fetch(&self, u: &str) -> Option<Vec<u8>> {
                self.0.fetch(u)
            }
            fn signal(&self, s: &[&str], sig: &str) -> PebbleResult<()> {
                self.0.signal(s, sig)
            }
        }
        Box::new(Ref(if name == crate::nginx::CONTAINER {
            &self.nginx
        } else {
            &self.synapse
        }))
    }
    fn own_data_dir(&self, _: u32) -> std::io::Result<()> {
        Ok(())
    }
    fn data_dir(&self) -> std::path::PathBuf {
        self.data.path().to_path_buf()
    }
}
