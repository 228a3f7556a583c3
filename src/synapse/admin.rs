//! Synapse's HTTP APIs as the charm uses them from inside the pod (Synapse listens on
//! localhost:8008): shared-secret registration, login, whoami and the admin API.
//! Every call has a timeout, and Synapse's own error message is passed on.

use std::net::SocketAddr;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use http1::{Request, TcpError};
use serde_json::{json, Value};

pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Synapse is not answering on {addr} ({source}); is it running?")]
    Unreachable {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from Synapse within {0:?}")]
    Timeout(Duration),
    #[error("Synapse answered {status}: {message}")]
    Http {
        status: u16,
        errcode: Option<String>,
        message: String,
    },
    #[error("unexpected answer from Synapse: {0}")]
    Protocol(String),
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn errcode(&self) -> Option<&str> {
        match self {
            ApiError::Http { errcode, .. } => errcode.as_deref(),
            _ => None,
        }
    }
}

pub struct SynapseApi {
    addr: SocketAddr,
    timeout: Duration,
}

impl SynapseApi {
    pub fn local() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8008)),
            timeout: TIMEOUT,
        }
    }

    pub fn at(addr: SocketAddr) -> Self {
        Self {
            addr,
            timeout: TIMEOUT,
        }
    }

    /// One JSON request. Non-2xx answers become [`ApiError::Http`] with Synapse's `error`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut req = Request::new(method, path).header("Accept", "application/json");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string().into_bytes());
        }
        let map_io = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                ApiError::Timeout(self.timeout)
            } else {
                ApiError::Protocol(e.to_string())
            }
        };
        let resp = http1::tcp_round_trip(self.addr, &req, self.timeout).map_err(|e| match e {
            TcpError::Connect { source, .. } => ApiError::Unreachable {
                addr: self.addr.to_string(),
                source,
            },
            TcpError::Exchange { source, .. } => map_io(source),
            other => ApiError::Protocol(other.to_string()),
        })?;
        let value: Value = if resp.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.body).map_err(|e| {
                ApiError::Protocol(format!("{e} in {}", String::from_utf8_lossy(&resp.body)))
            })?
        };
        if !(200..300).contains(&resp.status) {
            return Err(ApiError::Http {
                status: resp.status,
                errcode: value["errcode"].as_str().map(str::to_string),
                message: value["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).into_owned()),
            });
        }
        Ok(value)
    }

    /// Shared-secret registration (nonce, then the HMAC-SHA1-signed request).
    /// Returns `(user_id, access_token)`.
    pub fn register(
        &self,
        shared_secret: &str,
        username: &str,
        password: &str,
        admin: bool,
    ) -> Result<(String, String), ApiError> {
        let nonce = self.call("GET", "/_synapse/admin/v1/register", None, None)?;
        let nonce = nonce["nonce"]
            .as_str()
            .ok_or_else(|| ApiError::Protocol("no nonce".into()))?
            .to_string();
        let mac = registration_mac(shared_secret, &nonce, username, password, admin);
        let body = json!({"nonce": nonce, "username": username, "password": password, "admin": admin, "mac": mac});
        let resp = self.call("POST", "/_synapse/admin/v1/register", Some(&body), None)?;
        let user_id = resp["user_id"]
            .as_str()
            .ok_or_else(|| ApiError::Protocol("no user_id".into()))?;
        let token = resp["access_token"]
            .as_str()
            .ok_or_else(|| ApiError::Protocol("no access_token".into()))?;
        Ok((user_id.to_string(), token.to_string()))
    }

    /// Password login; returns an access token.
    pub fn login(&self, user: &str, password: &str) -> Result<String, ApiError> {
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password});
        let resp = self.call("POST", "/_matrix/client/v3/login", Some(&body), None)?;
        resp["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Protocol("no access_token".into()))
    }

    /// The server name Synapse actually runs with (from its key server endpoint).
    pub fn server_name(&self) -> Result<String, ApiError> {
        let resp = self.call("GET", "/_matrix/key/v2/server", None, None)?;
        resp["server_name"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Protocol("no server_name".into()))
    }

    pub fn whoami(&self, token: &str) -> Result<String, ApiError> {
        let resp = self.call(
            "GET",
            "/_matrix/client/v3/account/whoami",
            None,
            Some(token),
        )?;
        resp["user_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Protocol("no user_id".into()))
    }
}

/// Synapse's registration MAC: HMAC-SHA1 over `nonce\0user\0password\0admin|notadmin`, hex.
pub fn registration_mac(
    secret: &str,
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> String {
    // Any key length is valid for HMAC, so this cannot fail.
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!());
    mac.update(nonce.as_bytes());
    mac.update(b"\0");
    mac.update(user.as_bytes());
    mac.update(b"\0");
    mac.update(password.as_bytes());
    mac.update(b"\0");
    mac.update(if admin { b"admin" } else { b"notadmin" });
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// URL path segment encoding for user IDs (`@alice:example.com`).
pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_known_vectors() {
        // Computed independently with Python's hmac module, e.g.
        // hmac.new(b"secret", b"abc\x00alice\x00pw\x00notadmin", hashlib.sha1).hexdigest()
        assert_eq!(
            registration_mac("secret", "abc", "alice", "pw", false),
            "42e32623fe124933c326f9d2d67ff7c617915a10"
        );
        assert_eq!(
            registration_mac("secret", "abc", "alice", "pw", true),
            "dc5ed98b283077684552e3f72d67f26b3366bf58"
        );
    }

    #[test]
    fn path_encoding() {
        assert_eq!(encode_path("@alice:example.com"), "%40alice%3Aexample.com");
    }
}
