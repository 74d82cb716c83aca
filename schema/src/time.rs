//! Timestamps: parsing what clients send, formatting what we write, and Segment's clock-skew fix.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Parses an ISO-8601 timestamp: RFC 3339 with any offset, a date-time without offset (taken
/// as UTC, as several SDKs send), or a bare date.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Formats a timestamp the way every clickstream topic carries it: UTC, milliseconds, `Z`.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The four times the edge settles for an event, following Segment's semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeTimes {
    /// When the gateway received the request.
    pub received_at: DateTime<Utc>,
    /// Device time of the event: the client's `originalTimestamp`, else its `timestamp`.
    pub original_timestamp: Option<DateTime<Utc>>,
    /// Device time at send: the event's `sentAt`, else the batch's.
    pub sent_at: Option<DateTime<Utc>>,
    /// Best estimate of when the event happened, in server time.
    pub timestamp: DateTime<Utc>,
}

impl EdgeTimes {
    /// Settles the times. With a `sentAt`, the device clock's skew (`sentAt - receivedAt`) is
    /// removed from the device time, which keeps historical imports historical while fixing
    /// phones whose clocks are off.
    pub fn settle(
        received_at: DateTime<Utc>,
        client_timestamp: Option<DateTime<Utc>>,
        client_original_timestamp: Option<DateTime<Utc>>,
        sent_at: Option<DateTime<Utc>>,
    ) -> Self {
        let original_timestamp = client_original_timestamp.or(client_timestamp);
        let timestamp = match (sent_at, original_timestamp) {
            (Some(sent), Some(original)) => received_at - (sent - original),
            _ => client_timestamp.unwrap_or(received_at),
        };
        Self { received_at, original_timestamp, sent_at, timestamp }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("valid timestamp")
    }

    #[test]
    fn skewed_device_clock_is_corrected() {
        // Device clock runs 1 h fast; the event happened 10 s before it was sent.
        let times = EdgeTimes::settle(
            at("2026-01-01T12:00:00Z"),
            Some(at("2026-01-01T12:59:50Z")),
            None,
            Some(at("2026-01-01T13:00:00Z")),
        );
        assert_eq!(times.timestamp, at("2026-01-01T11:59:50Z"));
        assert_eq!(times.original_timestamp, Some(at("2026-01-01T12:59:50Z")));
    }

    #[test]
    fn without_sent_at_the_client_timestamp_stands() {
        let times = EdgeTimes::settle(at("2026-01-01T12:00:00Z"), Some(at("2020-05-05T00:00:00Z")), None, None);
        assert_eq!(times.timestamp, at("2020-05-05T00:00:00Z"));
    }

    #[test]
    fn without_any_client_time_received_at_is_used() {
        let received = at("2026-01-01T12:00:00Z");
        let times = EdgeTimes::settle(received, None, None, Some(at("2026-01-01T12:00:05Z")));
        assert_eq!(times.timestamp, received);
        assert_eq!(times.original_timestamp, None);
    }

    #[test]
    fn original_timestamp_wins_over_timestamp() {
        let times = EdgeTimes::settle(
            at("2026-01-01T12:00:00Z"),
            Some(at("2026-01-01T11:00:00Z")),
            Some(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-01T10:00:30Z")),
        );
        assert_eq!(times.timestamp, at("2026-01-01T11:59:30Z"));
    }

    #[test]
    fn accepts_offsets_naive_and_dates() {
        assert_eq!(at("2026-01-01T13:00:00+01:00"), at("2026-01-01T12:00:00Z"));
        assert_eq!(at("2026-01-01T12:00:00.250"), at("2026-01-01T12:00:00.250Z"));
        assert_eq!(at("2026-01-01"), at("2026-01-01T00:00:00Z"));
        assert!(parse_timestamp("yesterday").is_none());
        assert_eq!(format_timestamp(at("2026-01-01T12:00:00.5+00:00")), "2026-01-01T12:00:00.500Z");
    }
}
