//! What the client's connection adds to every event of a request: `context.ip` and
//! `context.userAgent`, with optional IP anonymization. Both event paths apply it the same way.

use std::net::IpAddr;

use serde_json::Value;

use crate::event::Event;
use crate::privacy::{anonymize_ip, ip_text};

/// The connection facts the edge writes into `context`.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// The client's address: a trusted proxy's forwarded one, else the socket's.
    pub ip: IpAddr,
    pub user_agent: Option<&'a str>,
    /// Whether to anonymize `context.ip` (see [`anonymize_ip`]).
    pub anonymize_ip: bool,
}

impl Connection<'_> {
    /// The IP text written when the event has no string `context.ip`.
    pub(crate) fn own_ip(&self) -> String {
        self.written_ip(self.ip)
    }

    /// The text a client-sent `context.ip` is written as when anonymizing. An address that
    /// cannot be parsed cannot be anonymized, so the connection's replaces it.
    pub(crate) fn anonymized(&self, sent: &str) -> String {
        ip_text(anonymize_ip(sent.parse().unwrap_or(self.ip)))
    }

    /// `ip` as written: anonymized when configured.
    fn written_ip(&self, ip: IpAddr) -> String {
        if self.anonymize_ip {
            ip_text(anonymize_ip(ip))
        } else {
            ip_text(ip)
        }
    }
}

impl Event {
    /// Fills `context.ip` and `context.userAgent` where the event has none (a server SDK may
    /// send its end user's), then anonymizes the IP if configured.
    pub fn apply_connection(&mut self, connection: &Connection<'_>) {
        let context = self.context_mut();
        if !context.get("ip").is_some_and(Value::is_string) {
            context.insert("ip".into(), Value::String(ip_text(connection.ip)));
        }
        if let Some(agent) = connection.user_agent {
            context.entry("userAgent").or_insert_with(|| Value::String(agent.to_owned()));
        }
        if connection.anonymize_ip {
            if let Some(Value::String(ip)) = context.get_mut("ip") {
                *ip = connection.anonymized(ip);
            }
        }
    }
}
