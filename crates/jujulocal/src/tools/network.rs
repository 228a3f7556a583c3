//! Network and ports: `network-get`, `open-port`, `close-port`, `opened-ports`.

use super::{output, Env, FORMAT};
use crate::flags::{self, boolean, val};
use crate::journal::Op;
use crate::Error;
use serde_json::json;

pub(super) fn network_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            FORMAT,
            val(&["r", "relation"]),
            boolean(&["bind-address"]),
            boolean(&["ingress-address"]),
            boolean(&["egress-subnets"]),
            boolean(&["primary-address"]),
        ],
    )?;
    let [binding] = p.args.as_slice() else {
        return Err(Error::Usage("no arguments specified".into()));
    };
    let app = env.view.app(&env.app())?;
    if app.meta.endpoint(binding).is_none() {
        return Err(Error::NotFound(format!(
            "no network config found for binding {binding:?}"
        )));
    }
    let addr = app
        .units
        .get(&env.ctx.unit)
        .map(|u| u.address.clone())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    if p.bool("bind-address") {
        return output(&p, &json!(addr));
    }
    if p.bool("ingress-address") {
        return output(&p, &json!(addr));
    }
    if p.bool("egress-subnets") {
        return output(&p, &json!(format!("{addr}/32")));
    }
    output(
        &p,
        &json!({
            "bind-addresses": [{"mac-address": "", "interface-name": "eth0",
                "addresses": [{"hostname": "", "value": addr, "cidr": format!("{addr}/32")}]}],
            "egress-subnets": [format!("{addr}/32")],
            "ingress-addresses": [addr],
        }),
    )
}

pub(super) fn open_port(env: &mut Env, args: &[String]) -> Result<String, Error> {
    ports(env, args, true)
}

pub(super) fn close_port(env: &mut Env, args: &[String]) -> Result<String, Error> {
    ports(env, args, false)
}

/// `open-port` (`open`) or `close-port`.
pub(super) fn ports(env: &mut Env, args: &[String], open: bool) -> Result<String, Error> {
    let p = flags::parse(args, &[val(&["endpoints"]), FORMAT])?;
    let [port] = p.args.as_slice() else {
        return Err(Error::Usage("no port or range specified".into()));
    };
    let port = normalise_port(port)?;
    env.queue(if open {
        Op::OpenPort { port }
    } else {
        Op::ClosePort { port }
    });
    Ok(String::new())
}

pub(super) fn opened_ports(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[boolean(&["endpoints"]), FORMAT])?;
    let ports = env
        .view
        .app(&env.app())?
        .units
        .get(&env.ctx.unit)
        .map(|u| u.opened_ports.clone())
        .unwrap_or_default();
    output(&p, &json!(ports))
}

pub(super) fn normalise_port(p: &str) -> Result<String, Error> {
    if p == "icmp" {
        return Ok(p.into());
    }
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    if !["tcp", "udp"].contains(&proto) {
        return Err(Error::Usage(format!(
            "invalid protocol {proto:?}, expected \"tcp\", \"udp\", or \"icmp\""
        )));
    }
    let valid = |s: &str| s.parse::<u16>().map(|n| n > 0).unwrap_or(false);
    let ok = match num.split_once('-') {
        Some((a, b)) => valid(a) && valid(b),
        None => valid(num),
    };
    if !ok {
        return Err(Error::Usage(format!("invalid port {num:?}")));
    }
    Ok(format!("{num}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(normalise_port("8080").unwrap(), "8080/tcp");
        assert_eq!(normalise_port("53/udp").unwrap(), "53/udp");
        assert!(normalise_port("0").is_err());
        assert!(normalise_port("80/sctp").is_err());
    }
}
