//! `jujulocal`: the local Juju stand-in's CLI, and (under a hook tool's name) the hook tools.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use jujulocal::controller::agent::named_hook;
use jujulocal::controller::PodConfig;
use jujulocal::meta::Role;
use jujulocal::{Area, Controller, Error};

const USAGE: &str = "\
jujulocal: a strict local stand-in for Juju

Usage: jujulocal [--model-dir DIR] <command> [args]
  (DIR defaults to $JUJULOCAL_HOME, else ./.jujulocal)

Commands:
  bootstrap [--name NAME]                 create an empty model
  deploy CHARM_DIR [APP] [-n N] [--config k=v]... [--pods --pebble PATH
         [--mount CONTAINER:TARGET=SOURCE]... [--netns]]
                                          deploy a charm directory (pods: one real Pebble per container)
  config APP [k=v ...] [--reset k]        show or change configuration (fires config-changed)
  play APP --endpoint NAME:INTERFACE:provides|requires [...] [-n N]
                                          add an application played by jujulocal (remote side)
  integrate A[:EP] B[:EP]                 relate two applications
  remove-relation A[:EP] B[:EP]           remove a relation (departed, then broken)
  relation-set ID APP|UNIT k=v ...        write a played application's databag
  secret-add OWNER [--label L] k=v ...    add a secret owned by a played application
  secret-grant URI ID                     grant a played application's secret on relation ID
  secret-set URI k=v ...                  new revision of a played application's secret
  run UNIT ACTION [k=v ...]               run an action and print its results
  show-secret URI [--reveal]              a secret's owner, label, revisions (and content)
  update-status                           poll the pods, then fire update-status on every unit
  poll                                    poll every pod's Pebble once, as the unit agent does:
                                          <c>-pebble-ready on a new boot-id, <c>-pebble-check-failed
                                          / -recovered when a check went down / up
  inject-failure TOOL [--count N] [--kill | --kill-container C]
                                          the next N (default 1) calls of hook tool TOOL print
                                          `ERROR injected failure` and exit 1 (--kill: and SIGKILL
                                          the charm that called it; --kill-container: the call
                                          works and container C of the unit is killed, until
                                          restart-container); --count 0 clears
  fire UNIT HOOK                          deliver one hook by name (only its dispatch path set)
  restart-container UNIT CONTAINER        restart a container's Pebble (pod churn)
  set-leader UNIT                         move leadership
  add-unit APP [-n N]                     add N units (default 1), numbered after the last one
  remove-unit APP --num-units N           remove N units, highest-numbered first (Kubernetes)
  scale-application APP N                 add or remove units until APP has N
  status                                  show the model like `juju status`
  show-unit UNIT                          relation data, state and status history of a unit
  debug-log                               show the charm's logs
  hooks [--last N]                        dispatch records (hook, exit code, time, tool calls;
                                          Pebble requests and pushes with JUJULOCAL_COUNT_PEBBLE=1)
  destroy                                 stop all pods (the model stays on disk)
";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    if jujulocal::tools::is_tool(&name) {
        return ExitCode::from(jujulocal::tools::main(&name, args.split_off(1)) as u8);
    }
    if args.get(1).map(String::as_str)
        == Some(jujulocal::controller::providers::loki::RECORDER_COMMAND)
    {
        let Some(dir) = args.get(2) else {
            eprintln!("usage: jujulocal __loki-recorder DIR");
            return ExitCode::from(2);
        };
        let e = jujulocal::controller::providers::loki::serve(std::path::Path::new(dir));
        eprintln!("jujulocal loki recorder stopped: {e:?}");
        return ExitCode::from(1);
    }
    if args.get(1).map(String::as_str) == Some("__cluster-netns") {
        let e = jujulocal::cluster_net::holder_main();
        eprintln!("jujulocal cluster network failed: {e:?}");
        return ExitCode::from(1);
    }
    if args.get(1).map(String::as_str) == Some("__container-init") {
        let e = jujulocal::pod::container_init(&args[2..]);
        eprintln!("jujulocal container init failed: {e:?}");
        return ExitCode::from(1);
    }
    match cli(args.split_off(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn kv(items: &[String]) -> Result<BTreeMap<String, String>, Error> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::Usage(format!("expected key=value, got {s:?}")))
        })
        .collect()
}

fn cli(mut args: Vec<String>) -> Result<(), Error> {
    let mut home = std::env::var("JUJULOCAL_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(".jujulocal"));
    if args.first().map(String::as_str) == Some("--model-dir") {
        if args.len() < 2 {
            return Err(Error::Usage("--model-dir needs a value".into()));
        }
        home = PathBuf::from(args.remove(1));
        args.remove(0);
    }
    let Some(cmd) = args.first().cloned() else {
        print!("{USAGE}");
        return Ok(());
    };
    let rest = &args[1..];
    let pos: Vec<String> = rest
        .iter()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .collect();
    let flag_values = |name: &str| -> Vec<String> {
        rest.windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    };
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "bootstrap" => {
            let name = flag_values("--name")
                .pop()
                .unwrap_or_else(|| "local".into());
            Controller::bootstrap(&home, &name)?;
            println!("model {name:?} created in {}", home.display());
            Ok(())
        }
        "deploy" => {
            let mut c = Controller::open(&home)?;
            let mut positional = vec![];
            let mut i = 0;
            let mut units = 1;
            let mut config = vec![];
            let mut pods = false;
            let mut pebble = None;
            let mut mounts: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
            let mut netns = false;
            while i < rest.len() {
                let a = &rest[i];
                let next = || {
                    rest.get(i + 1)
                        .cloned()
                        .ok_or_else(|| Error::Usage(format!("{a} needs a value")))
                };
                match a.as_str() {
                    "-n" => {
                        units = next()?
                            .parse()
                            .map_err(|_| Error::Usage("-n needs a number".into()))?;
                        i += 1;
                    }
                    "--config" => {
                        config.push(next()?);
                        i += 1;
                    }
                    "--pods" => pods = true,
                    "--netns" => netns = true,
                    "--pebble" => {
                        pebble = Some(PathBuf::from(next()?));
                        i += 1;
                    }
                    "--mount" => {
                        let m = next()?;
                        let (c, rest) = m.split_once(':').ok_or_else(|| {
                            Error::Usage(format!("--mount {m:?}: expected CONTAINER:TARGET=SOURCE"))
                        })?;
                        let (t, s) = rest.split_once('=').ok_or_else(|| {
                            Error::Usage(format!("--mount {m:?}: expected CONTAINER:TARGET=SOURCE"))
                        })?;
                        mounts
                            .entry(c.into())
                            .or_default()
                            .push((t.into(), s.into()));
                        i += 1;
                    }
                    x if x.starts_with('-') => {
                        return Err(Error::Usage(format!("unknown flag {x}")))
                    }
                    _ => positional.push(a.clone()),
                }
                i += 1;
            }
            let charm = positional
                .first()
                .ok_or_else(|| Error::Usage("deploy needs a charm directory".into()))?;
            if pods {
                let pebble_bin =
                    pebble.ok_or_else(|| Error::Usage("--pods needs --pebble PATH".into()))?;
                c.set_pod_config(PodConfig {
                    pebble_bin,
                    container_mounts: mounts,
                    netns,
                });
            }
            c.deploy(
                &PathBuf::from(charm),
                positional.get(1).map(String::as_str),
                units,
                &kv(&config)?,
                pods,
            )?;
            print!("{}", jujulocal::status::table(&c.model));
            Ok(())
        }
        "config" => {
            let mut c = Controller::open(&home)?;
            let app = pos
                .first()
                .ok_or_else(|| Error::Usage("config needs an application".into()))?;
            let reset = flag_values("--reset");
            let sets: Vec<String> = pos[1..]
                .iter()
                .filter(|a| !reset.contains(a))
                .cloned()
                .collect();
            if sets.is_empty() && reset.is_empty() {
                let a = c.model.app(app)?;
                for (k, o) in &a.meta.options {
                    let v = a.config.get(k).or(o.default.as_ref());
                    println!(
                        "{k}: {}",
                        v.map(|v| v.to_string()).unwrap_or_else(|| "(unset)".into())
                    );
                }
                return Ok(());
            }
            c.config(app, &kv(&sets)?, &reset)
        }
        "play" => {
            let mut c = Controller::open(&home)?;
            let app = pos
                .first()
                .ok_or_else(|| Error::Usage("play needs an application name".into()))?;
            let mut eps = vec![];
            for e in flag_values("--endpoint") {
                let parts: Vec<&str> = e.split(':').collect();
                let [n, i, r] = parts.as_slice() else {
                    return Err(Error::Usage(format!(
                        "--endpoint {e:?}: expected NAME:INTERFACE:provides|requires"
                    )));
                };
                let role = match *r {
                    "provides" => Role::Provides,
                    "requires" => Role::Requires,
                    _ => return Err(Error::Usage(format!("bad role {r:?}"))),
                };
                eps.push((n.to_string(), i.to_string(), role));
            }
            let n = rest
                .windows(2)
                .find(|w| w[0] == "-n")
                .and_then(|w| w[1].parse().ok())
                .unwrap_or(1);
            c.add_played(app, &eps, n)
        }
        "integrate" | "relate" => {
            let mut c = Controller::open(&home)?;
            let [a, b] = pos.as_slice() else {
                return Err(Error::Usage("integrate needs two endpoints".into()));
            };
            let id = c.integrate(a, b)?;
            println!("relation {id}");
            Ok(())
        }
        "remove-relation" => {
            let mut c = Controller::open(&home)?;
            let [a, b] = pos.as_slice() else {
                return Err(Error::Usage("remove-relation needs two endpoints".into()));
            };
            c.remove_relation(a, b)
        }
        "relation-set" => {
            let mut c = Controller::open(&home)?;
            let id: u64 = pos
                .first()
                .and_then(|s| s.rsplit(':').next()?.parse().ok())
                .ok_or_else(|| Error::Usage("relation-set ID WHO k=v...".into()))?;
            let who = pos
                .get(1)
                .ok_or_else(|| Error::Usage("relation-set ID WHO k=v...".into()))?;
            c.played_relation_set(id, who, &kv(&pos[2..])?)
        }
        "secret-add" => {
            let mut c = Controller::open(&home)?;
            let owner = pos
                .first()
                .ok_or_else(|| Error::Usage("secret-add OWNER k=v...".into()))?;
            let label = flag_values("--label").pop();
            let content: Vec<String> = pos[1..]
                .iter()
                .filter(|p| Some(*p) != label.as_ref())
                .cloned()
                .collect();
            let uri = c.played_secret_add(owner, &kv(&content)?, label.as_deref())?;
            println!("{uri}");
            Ok(())
        }
        "secret-grant" => {
            let mut c = Controller::open(&home)?;
            let [uri, id] = pos.as_slice() else {
                return Err(Error::Usage("secret-grant URI RELATION_ID".into()));
            };
            c.played_secret_grant(
                uri,
                id.parse()
                    .map_err(|_| Error::Usage("bad relation id".into()))?,
            )
        }
        "secret-set" => {
            let mut c = Controller::open(&home)?;
            let uri = pos
                .first()
                .ok_or_else(|| Error::Usage("secret-set URI k=v...".into()))?;
            c.played_secret_set(uri, &kv(&pos[1..])?)
        }
        "run" => {
            let mut c = Controller::open(&home)?;
            let [unit, action, params @ ..] = pos.as_slice() else {
                return Err(Error::Usage("run UNIT ACTION [k=v...]".into()));
            };
            let a = c.run_action(unit, action, &kv(params)?)?;
            let out = serde_json::json!({"id": a.id, "status": a.status, "message": a.message, "results": a.results, "log": a.log});
            println!(
                "{}",
                serde_saphyr::to_string(&out).map_err(|source| Error::YamlEncode {
                    area: Area::Model,
                    source: Box::new(source),
                })?
            );
            if a.status == "failed" {
                return Err(Error::Refused(format!(
                    "action {} failed: {}",
                    a.id,
                    a.message.unwrap_or_default()
                )));
            }
            Ok(())
        }
        "show-secret" => {
            let c = Controller::open(&home)?;
            let uri = pos
                .first()
                .ok_or_else(|| Error::Usage("show-secret URI [--reveal]".into()))?;
            let s = c
                .model
                .secret_by_uri(uri)
                .ok_or_else(|| Error::NotFound(format!("secret {uri:?} not found")))?;
            let mut out = serde_json::json!({"uri": s.uri(), "owner": s.owner, "label": s.label, "description": s.description,
                "revision": s.latest().map(|r| r.revision)});
            if rest.iter().any(|a| a == "--reveal") {
                out["content"] =
                    serde_json::json!(s.latest().map(|r| r.content.clone()).unwrap_or_default());
            }
            println!(
                "{}",
                serde_saphyr::to_string(&out).map_err(|source| Error::YamlEncode {
                    area: Area::Model,
                    source: Box::new(source),
                })?
            );
            Ok(())
        }
        "update-status" => Controller::open(&home)?.update_status(),
        "poll" => Controller::open(&home)?.poll_pods(),
        "inject-failure" => {
            let c = Controller::open(&home)?;
            let count: u32 = match flag_values("--count").pop() {
                Some(v) => v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--count {v:?}: expected a number")))?,
                None => 1,
            };
            let values = [flag_values("--count"), flag_values("--kill-container")].concat();
            let tools: Vec<&String> = pos.iter().filter(|p| !values.contains(p)).collect();
            let [tool] = tools.as_slice() else {
                return Err(Error::Usage(
                    "inject-failure TOOL [--count N] [--kill | --kill-container C]".into(),
                ));
            };
            if let Some(container) = flag_values("--kill-container").pop() {
                c.inject_container_kill(tool, &container, count)
            } else if rest.iter().any(|a| a == "--kill") {
                c.inject_charm_kill(tool, count)
            } else {
                c.inject_tool_failure(tool, count)
            }
        }
        "restart-container" => {
            let mut c = Controller::open(&home)?;
            let [u, ct] = pos.as_slice() else {
                return Err(Error::Usage("restart-container UNIT CONTAINER".into()));
            };
            c.restart_container(u, ct)
        }
        "set-leader" => {
            let mut c = Controller::open(&home)?;
            c.set_leader(
                pos.first()
                    .ok_or_else(|| Error::Usage("set-leader UNIT".into()))?,
            )
        }
        "add-unit" | "remove-unit" | "scale-application" => {
            let mut c = Controller::open(&home)?;
            let app = pos
                .first()
                .ok_or_else(|| Error::Usage(format!("{cmd} APP: no application specified")))?;
            let number = |s: &str| {
                s.parse::<usize>()
                    .map_err(|_| Error::Usage(format!("{cmd}: {s:?} is not a number of units")))
            };
            let n = match cmd.as_str() {
                "scale-application" => number(pos.get(1).map(String::as_str).unwrap_or(""))?,
                "add-unit" => {
                    let k = flag_values("-n").pop().or(flag_values("--num-units").pop());
                    c.model.app(app)?.units.len() + number(k.as_deref().unwrap_or("1"))?
                }
                _ => {
                    let k = flag_values("--num-units").pop().ok_or_else(|| {
                        Error::Usage(
                            "remove-unit APP --num-units N (units go by number, highest first)"
                                .into(),
                        )
                    })?;
                    let (k, have) = (number(&k)?, c.model.app(app)?.units.len());
                    if k == 0 || k > have {
                        return Err(Error::Usage(format!(
                            "cannot remove {k} units: {app} has {have}"
                        )));
                    }
                    have - k
                }
            };
            c.scale_application(app, n)
        }
        "fire" => {
            // Low-level: deliver one named hook to a unit (for experiments).
            let mut c = Controller::open(&home)?;
            let [u, h] = pos.as_slice() else {
                return Err(Error::Usage("fire UNIT HOOK".into()));
            };
            c.run(u, named_hook(h))
        }
        "status" => {
            print!(
                "{}",
                jujulocal::status::table(&Controller::open(&home)?.model)
            );
            Ok(())
        }
        "show-unit" => {
            let c = Controller::open(&home)?;
            let u = pos
                .first()
                .ok_or_else(|| Error::Usage("show-unit UNIT".into()))?;
            let app = c.model.app(jujulocal::model::app_of(u))?;
            let unit = app
                .units
                .get(u)
                .ok_or_else(|| Error::NotFound(format!("unit {u:?} not found")))?;
            let rels: Vec<serde_json::Value> = c.model.relations.iter().filter(|r| r.end_for(jujulocal::model::app_of(u)).is_some()).map(|r| serde_json::json!({"id": r.id, "interface": r.interface, "app-data": r.app_data, "unit-data": r.unit_data})).collect();
            let out = serde_json::json!({"unit": u, "leader": app.leader.as_deref() == Some(u.as_str()), "status": unit.status, "status-history": unit.status_history, "state": unit.state, "opened-ports": unit.opened_ports, "relations": rels});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        "debug-log" => {
            print!("{}", Controller::open(&home)?.debug_log());
            Ok(())
        }
        "hooks" => {
            let c = Controller::open(&home)?;
            let n: usize = flag_values("--last")
                .pop()
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX);
            let h = c.history();
            for r in h.iter().skip(h.len().saturating_sub(n)) {
                let pebble = r.pebble.as_ref().map(|p| {
                    let pushes = p.iter().filter(|c| c.push).count();
                    format!(" pebble={} pushes={pushes}", p.len())
                });
                println!(
                    "#{} {} {} exit={} {:.2}ms rss={}KiB calls={} tools={:.2}ms{}",
                    r.seq,
                    r.unit,
                    r.hook,
                    r.exit,
                    r.wall_ms,
                    r.max_rss_kib,
                    r.calls
                        .iter()
                        .map(|c| c.tool.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    r.calls.iter().map(|c| c.ms).sum::<f64>(),
                    pebble.unwrap_or_default()
                );
            }
            Ok(())
        }
        "destroy" => {
            Controller::open(&home)?.stop_pods();
            Ok(())
        }
        other => Err(Error::Usage(format!(
            "unknown command {other:?}; see `jujulocal help`"
        ))),
    }
}
