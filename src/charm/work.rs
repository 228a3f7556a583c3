//! Which event calls for which work: the one table of the charm.
//!
//! Synapse and NGINX are reconciled on every event: their steady state is checked
//! against the Pebble plan, which costs no hook-tool call. Everything else acts only
//! on the events after which its inputs can differ, so that a steady-state
//! `update-status` costs two hook-tool calls (config-get, and relation-get of the peer
//! application databag).
//!
//! | Event | port | database | observability |
//! |---|---|---|---|
//! | `install` | open 8080 | look up the relation; answer may change | |
//! | `start` | open 8080 | look up the relation; answer may change | everything |
//! | `upgrade-charm` | open 8080 | look up; leader re-sends the request; answer may change | everything |
//! | `leader-elected` | | leader re-sends the request | everything |
//! | `synapse`/`synapse-nginx-pebble-ready` | | | everything (Pebble lost its log targets) |
//! | `database-relation-*` | | look up; leader sends the request; answer may change | leader: `scrape_jobs` |
//! | `secret-*` | | answer may change | leader: `scrape_jobs` |
//! | `metrics-endpoint-relation-*` | | | that relation (all if broken): app and unit keys |
//! | `grafana-dashboard-relation-*` | | | that relation (all if broken): leader `dashboards` |
//! | `logging-relation-*` | | | log targets of both containers; leader `metadata` |
//! | anything else (`update-status`, `config-changed`, …) | | | |
//!
//! The exposure column ([`ingress`]): `install`, `start` and `upgrade-charm` look both
//! relations up again and publish; `leader-elected` publishes both; `config-changed`
//! has the leader re-publish the route (its host name follows the configuration);
//! `ingress-relation-*` reads the provider's URL again and publishes this unit's
//! address (and the leader's request); `nginx-route-relation-*` looks the relation up
//! and publishes the route. Everything else uses the remembered relation ids and URL.
//!
//! The smtp column ([`smtp`]): `install`, `start`, `upgrade-charm` and `smtp-relation-*`
//! look the relation up again and read its data; `secret-*` reads it again (the
//! password secret may have a new revision). Everything else uses the remembered
//! relation id and whether its data was usable: a steady hook reads nothing.
//!
//! The media column ([`media`]): `install` and `start` look the relation up and read
//! the provider's answer; `upgrade-charm` and `media-relation-*` also have the leader
//! publish the bucket request; `leader-elected` publishes it. Everything else uses the
//! remembered relation id and status, and the plan says whether Synapse uses a bucket.
//!
//! The backup column ([`backup`]): `install`, `start`, `upgrade-charm` and
//! `backup-relation-*` read the relation and the provider's data and check the bucket
//! (`upgrade-charm` and the relation's events also have the leader publish the bucket
//! request; `leader-elected` publishes it). Everything else uses the remembered
//! verdict.
//!
//! The matrix-auth column ([`matrix_auth`]): `install`, `start` and `upgrade-charm`
//! look the relations up and read the registrations again (`upgrade-charm` also has the
//! leader publish); `matrix-auth-relation-*` does all of that, and on `-broken` the
//! leader revokes that relation's secret grants; `leader-elected`, `config-changed`
//! and `ingress-relation-*` have the leader publish the homeserver URL again (to the
//! remembered relations). Everything else uses the remembered relation ids and status.
//!
//! Adding an integration: one module under [`crate::relations`], one field here, one
//! arm in [`Work::for_event`] for its endpoint, one line in [`super::reconcile`].

use crate::juju::Event;
use crate::relations::ingress::{self, nginx_route, traefik};
use crate::relations::observability::{self, grafana, loki, prometheus};
use crate::relations::{backup, database, matrix_auth, media, smtp, Scope};

/// The work one event calls for, per concern.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    /// Expose NGINX on the application's Kubernetes service.
    pub open_port: bool,
    pub database: database::Work,
    pub observability: observability::Work,
    /// The `ingress` and `nginx-route` relations.
    pub exposure: ingress::Work,
    /// The `smtp` relation.
    pub smtp: smtp::Work,
    /// The `media` relation (s3).
    pub media: media::Work,
    /// The `backup` relation (s3).
    pub backup: backup::Work,
    /// The `matrix-auth` relations (bridges and bots).
    pub matrix_auth: matrix_auth::Work,
}

impl Work {
    pub fn for_event(event: &Event) -> Self {
        match event {
            Event::Install => Self {
                open_port: true,
                database: database::Work {
                    lookup: true,
                    request: false,
                    answer_may_change: true,
                },
                exposure: ingress::Work::everything(),
                smtp: smtp_everything(),
                media: media::Work {
                    lookup: true,
                    request: false,
                    answer_may_change: true,
                },
                backup: backup::Work {
                    check: true,
                    request: false,
                },
                matrix_auth: matrix_auth::Work {
                    lookup: true,
                    publish: false,
                    answer_may_change: true,
                    revoke: None,
                },
                ..Default::default()
            },
            Event::Start => Self {
                open_port: true,
                database: database::Work {
                    lookup: true,
                    request: false,
                    answer_may_change: true,
                },
                observability: observability::Work::everything(),
                exposure: ingress::Work::everything(),
                smtp: smtp_everything(),
                media: media::Work {
                    lookup: true,
                    request: false,
                    answer_may_change: true,
                },
                backup: backup::Work {
                    check: true,
                    request: false,
                },
                matrix_auth: matrix_auth::Work {
                    lookup: true,
                    publish: false,
                    answer_may_change: true,
                    revoke: None,
                },
            },
            Event::UpgradeCharm => Self {
                open_port: true,
                database: database::Work {
                    lookup: true,
                    request: true,
                    answer_may_change: true,
                },
                observability: observability::Work::everything(),
                exposure: ingress::Work::everything(),
                smtp: smtp_everything(),
                media: media::Work {
                    lookup: true,
                    request: true,
                    answer_may_change: true,
                },
                backup: backup::Work {
                    check: true,
                    request: true,
                },
                matrix_auth: matrix_auth::Work {
                    lookup: true,
                    publish: true,
                    answer_may_change: true,
                    revoke: None,
                },
            },
            Event::LeaderElected => Self {
                database: database::Work {
                    request: true,
                    ..Default::default()
                },
                observability: observability::Work::everything(),
                exposure: ingress::Work {
                    ingress_publish: true,
                    route_publish: true,
                    ..Default::default()
                },
                media: media::Work {
                    request: true,
                    ..Default::default()
                },
                backup: backup::Work {
                    check: false,
                    request: true,
                },
                matrix_auth: publish_homeserver(),
                ..Default::default()
            },
            Event::ConfigChanged => Self {
                exposure: ingress::Work {
                    route_publish: true,
                    ..Default::default()
                },
                // The homeserver URL follows public_baseurl.
                matrix_auth: publish_homeserver(),
                ..Default::default()
            },
            Event::PebbleReady { container }
                if container == crate::synapse::layer::CONTAINER
                    || container == crate::nginx::CONTAINER =>
            {
                Self {
                    observability: observability::Work::everything(),
                    ..Default::default()
                }
            }
            Event::Secret { .. } => Self {
                database: database::Work {
                    answer_may_change: true,
                    ..Default::default()
                },
                observability: scrape_jobs(),
                smtp: smtp::Work {
                    answer_may_change: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            Event::Relation { hook, relation, .. } => {
                let scope = Scope::of(*hook, relation);
                match relation.endpoint.as_str() {
                    database::ENDPOINT => Self {
                        database: database::Work {
                            lookup: true,
                            request: true,
                            answer_may_change: true,
                        },
                        observability: scrape_jobs(),
                        ..Default::default()
                    },
                    prometheus::ENDPOINT => Self {
                        observability: observability::Work {
                            metrics: Some(scope),
                            metrics_unit: true,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    grafana::ENDPOINT => Self {
                        observability: observability::Work {
                            dashboards: Some(scope),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    loki::ENDPOINT => Self {
                        observability: observability::Work {
                            logging: true,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    traefik::ENDPOINT => Self {
                        exposure: ingress::Work {
                            ingress_lookup: true,
                            ingress_publish: true,
                            ..Default::default()
                        },
                        // The ingress URL is the default homeserver URL.
                        matrix_auth: publish_homeserver(),
                        ..Default::default()
                    },
                    nginx_route::ENDPOINT => Self {
                        exposure: ingress::Work {
                            route_lookup: true,
                            route_publish: true,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    smtp::ENDPOINT => Self {
                        smtp: smtp_everything(),
                        ..Default::default()
                    },
                    media::ENDPOINT => Self {
                        media: media::Work {
                            lookup: true,
                            request: true,
                            answer_may_change: true,
                        },
                        ..Default::default()
                    },
                    backup::ENDPOINT => Self {
                        backup: backup::Work {
                            check: true,
                            request: true,
                        },
                        ..Default::default()
                    },
                    matrix_auth::ENDPOINT => Self {
                        matrix_auth: matrix_auth::Work {
                            lookup: true,
                            publish: true,
                            answer_may_change: true,
                            revoke: (*hook == crate::juju::RelationHook::Broken)
                                .then(|| relation.clone()),
                        },
                        ..Default::default()
                    },
                    _ => Self::default(),
                }
            }
            _ => Self::default(),
        }
    }
}

/// Look the `smtp` relation up and read its data again.
fn smtp_everything() -> smtp::Work {
    smtp::Work {
        lookup: true,
        answer_may_change: true,
    }
}

/// The leader re-publishes the homeserver URL to the bridges (with the relation ids
/// remembered: no call without a `matrix-auth` relation).
fn publish_homeserver() -> matrix_auth::Work {
    matrix_auth::Work {
        publish: true,
        ..Default::default()
    }
}

/// The leader's scrape jobs: the exporter may have started or stopped.
fn scrape_jobs() -> observability::Work {
    observability::Work {
        metrics: Some(Scope::All),
        ..Default::default()
    }
}
