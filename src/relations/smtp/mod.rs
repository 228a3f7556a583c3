//! The `smtp` integration (requirer of smtp-integrator's `smtp` interface): Synapse
//! sends mail (password resets, email verification, notifications) through the relay
//! the provider describes.
//!
//! - [`server`] (pure): the provider's databag as a typed [`server::Offer`], its
//!   problems as [`server::SmtpError`] (each names the key and why), and Synapse's
//!   `email` section.
//! - This module (the shell): finds the relation (its id is remembered in the hints and
//!   looked up again only on the events that can change it), reads the databag and
//!   the password secret once, and remembers the outcome's problem, so that a steady
//!   `update-status` costs no call and still reports it.
//!
//! Without the relation the `email` section is left out: Synapse sends no mail.
//! The password goes only into `homeserver.yaml` (mode 0600, owned by `synapse`),
//! never into the plan, argv or the logs.

pub mod server;

use crate::error::CharmResult;
use crate::juju::hints::{SmtpHint, UnitHints};
use crate::juju::tools::SecretRead;
use crate::juju::{Event, HookContext, HookTools, RelationId, ToolErrorKind};
use crate::status::Progress;
pub use server::{SmtpError, SmtpServer};

pub const ENDPOINT: &str = "smtp";

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Look the relation id up again: the relation may have appeared or gone.
    pub lookup: bool,
    /// The provider's data or its password secret may differ from what Synapse runs with.
    pub answer_may_change: bool,
}

/// The `smtp` relation as this dispatch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub relation: Option<RelationId>,
    /// The relay's data must be read (it may have changed, or it was never read).
    pub must_read: bool,
}

impl Mail {
    pub fn off() -> Self {
        Self {
            relation: None,
            must_read: false,
        }
    }
}

/// Finds the relation: the remembered id, looked up again when `work` says so or when
/// nothing is remembered (a relation being broken counts as gone).
pub fn relation(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    hints: &mut UnitHints,
) -> CharmResult<Mail> {
    let mut must_read = work.answer_may_change;
    if work.lookup || hints.smtp.is_none() {
        let broken = crate::relations::Leaving::of(&ctx.event).broken;
        let id = tools
            .relation_ids(ENDPOINT)?
            .into_iter()
            .find(|r| Some(r) != broken)
            .map(|r| r.to_string())
            .unwrap_or_default();
        let known = hints.smtp.as_ref().map(|h| h.relation.as_str());
        if known != Some(id.as_str()) {
            must_read = true;
            hints.smtp = Some(SmtpHint {
                relation: id,
                problem: None,
            });
        }
    }
    let relation = hints
        .smtp
        .as_ref()
        .and_then(|h| RelationId::parse(&h.relation));
    if relation.is_none() {
        if let Some(h) = hints.smtp.as_mut() {
            h.problem = None;
        }
    }
    Ok(Mail {
        must_read: must_read && relation.is_some(),
        relation,
    })
}

/// Whether Synapse's files carry an `email` section as far as the hints know: the
/// relation is there and its data was usable when last read.
pub fn mail_on(hints: &UnitHints) -> bool {
    hints
        .smtp
        .as_ref()
        .is_some_and(|h| !h.relation.is_empty() && h.problem.is_none())
}

/// Reads the provider's data and the password (the secret at most once), and records
/// the outcome's problem in the hints. `None`: no usable relay, email stays off.
pub fn read(
    ctx: &HookContext,
    tools: &dyn HookTools,
    mail: &Mail,
    hints: &mut UnitHints,
) -> CharmResult<Option<SmtpServer>> {
    let Some(rel) = &mail.relation else {
        return Ok(None);
    };
    let outcome = read_server(ctx, tools, rel)?;
    let problem = match &outcome {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("the smtp integration cannot be used: {e}");
            Some(e.to_string())
        }
    };
    if let Some(h) = hints.smtp.as_mut() {
        h.problem = problem;
    }
    Ok(outcome.ok())
}

fn read_server(
    ctx: &HookContext,
    tools: &dyn HookTools,
    rel: &RelationId,
) -> CharmResult<Result<SmtpServer, SmtpError>> {
    let Some(remote) = tools.relation_remote_app(rel)? else {
        return Ok(Err(SmtpError::Pending));
    };
    let bag = tools.relation_get(rel, &remote, true)?;
    let offer = match server::parse(&bag) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let password = match &offer.password {
        server::PasswordSource::None => None,
        server::PasswordSource::Plain(p) => Some(p.clone()),
        server::PasswordSource::Secret(uri) => {
            // Follow the provider's new password when Juju says it changed.
            let refresh =
                matches!(&ctx.event, Event::Secret { id, .. } if crate::util::same_secret(id, uri));
            let mode = if refresh {
                SecretRead::Refresh
            } else {
                SecretRead::Pinned
            };
            match tools.secret_get(Some(uri), None, mode) {
                Ok(content) => content.get("password").cloned(),
                Err(e) if e.kind != ToolErrorKind::Spawn => {
                    return Ok(Err(SmtpError::Invalid(format!(
                        "the password secret cannot be read ({})",
                        crate::util::bounded(&e.message)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ))))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok(offer.with_password(password))
}

/// What the operator is told about email (pure, from the hints and the options):
/// a problem with the relation blocks; waiting while the provider has not sent its data.
pub fn progress(hints: &UnitHints) -> Progress {
    match hints.smtp.as_ref().and_then(|h| h.problem.as_ref()) {
        Some(p) if p == &SmtpError::Pending.to_string() => Progress::Waiting(p.clone()),
        Some(p) => Progress::Blocked(p.clone()),
        None => Progress::Ready,
    }
}

#[cfg(test)]
mod tests;
