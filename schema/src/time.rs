//! Timestamps: parsing what clients send, formatting what we write, and Segment's clock-skew fix.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Parses an ISO-8601 timestamp: RFC 3339 with any offset, a date-time without offset (taken
/// as UTC, as several SDKs send), or a bare date.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_utc_fixed(text.as_bytes()) {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form every clickstream topic and most SDKs carry,
/// read digit by digit: chrono's RFC 3339 parser costs several times more, and a stored event
/// has four timestamps. `None` for any other form (offsets, leap seconds, more than nine
/// fraction digits), which the general parsers then read.
fn parse_utc_fixed(text: &[u8]) -> Option<DateTime<Utc>> {
    let (head, fraction) = match text {
        [head @ .., b'Z'] if head.len() == 19 => (head, &[][..]),
        [head @ .., b'Z'] if head.len() > 20 && head[19] == b'.' => (&head[..19], &head[20..]),
        _ => return None,
    };
    let number =
        |digits: &[u8]| digits.iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')));
    let digits = |range: std::ops::Range<usize>| number(&head[range]);
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, byte)| head[at] != byte) || fraction.len() > 9 {
        return None;
    }
    let second = digits(17..19).filter(|s| *s < 60)?;
    let nanos = number(fraction)? * 10u32.pow(9 - fraction.len() as u32);
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    Some(date.and_hms_nano_opt(digits(11..13)?, digits(14..16)?, second, nanos)?.and_utc())
}

/// Formats a timestamp the way every clickstream topic carries it: UTC, milliseconds, `Z`.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    match recently_formatted(t).and_then(|text| std::str::from_utf8(&text).map(str::to_owned).ok()) {
        Some(text) => text,
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// Appends `t` as a JSON string (quoted), formatted as [`format_timestamp`] does.
pub(crate) fn write_timestamp_json(buf: &mut Vec<u8>, t: DateTime<Utc>) {
    buf.push(b'"');
    match recently_formatted(t) {
        Some(text) => buf.extend_from_slice(&text),
        None => buf.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes()),
    }
    buf.push(b'"');
}

/// The last few times formatted on this thread, and the slot the next one replaces.
type FormattedTimes = ([Option<(DateTime<Utc>, [u8; TIMESTAMP_LEN])>; 4], usize);

thread_local! {
    static FORMATTED: std::cell::Cell<FormattedTimes> = const { std::cell::Cell::new(([None; 4], 0)) };
}

/// [`fixed_width`]'s text of `t`, from a small per-thread memory of the last times written:
/// every event of a request carries the same `receivedAt`, and a batch's events the same
/// `sentAt`, so two of an event's four times are usually the ones just written. Four slots
/// replaced in turn keep both across the two per-event times written between them.
fn recently_formatted(t: DateTime<Utc>) -> Option<[u8; TIMESTAMP_LEN]> {
    FORMATTED.with(|cell| {
        let (mut slots, next) = cell.get();
        if let Some((_, text)) = slots.iter().flatten().find(|(at, _)| *at == t) {
            return Some(*text);
        }
        let mut text = [0; TIMESTAMP_LEN];
        if !fixed_width(t, &mut text) {
            return None;
        }
        slots[next] = Some((t, text));
        cell.set((slots, (next + 1) % slots.len()));
        Some(text)
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const TIMESTAMP_LEN: usize = 24;

/// chrono's RFC 3339 text written digit by digit, the date found from the day number by
/// arithmetic: chrono's formatter costs about 800 instructions a call and its calendar
/// accessors about 400, and the edge writes up to four times per event. `false` for the
/// cases chrono words differently (years outside 0–9999, leap seconds), which then go to
/// chrono.
fn fixed_width(t: DateTime<Utc>, out: &mut [u8; TIMESTAMP_LEN]) -> bool {
    let nanos = t.timestamp_subsec_nanos();
    let seconds = t.timestamp();
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let Some(year) = u32::try_from(year).ok().filter(|y| *y <= 9999) else { return false };
    if nanos >= 1_000_000_000 {
        return false;
    }
    let second_of_day = second_of_day as u32;
    let mut two_digits = |at: usize, value: u32| {
        let pair = (value % 100) as usize * 2;
        out[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    };
    two_digits(0, year / 100);
    two_digits(2, year);
    two_digits(5, month);
    two_digits(8, day);
    two_digits(11, second_of_day / 3600);
    two_digits(14, second_of_day / 60 % 60);
    two_digits(17, second_of_day % 60);
    let millis = nanos / 1_000_000;
    two_digits(21, millis);
    out[20] = b'0' + (millis / 100) as u8;
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')] {
        out[at] = separator;
    }
    true
}

/// "00" to "99", so that a number below 100 is written with one lookup.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01, by
/// Howard Hinnant's `civil_from_days`: eras of 400 years, each year starting in March so
/// that the leap day comes last.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    use proptest::prelude::*;

    proptest! {
        /// The digit-by-digit reading agrees with chrono's on every text it takes, and takes
        /// the canonical form.
        #[test]
        fn fixed_form_reads_as_chrono_does(
            date in "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            time in "[0-9]{2}:[0-9]{2}:[0-9]{2}",
            fraction in prop::option::of("[0-9]{0,11}"),
            end in prop::sample::select(vec!["Z", "z", "+00:00", ""]),
            real in (0i64..4_102_444_800_000, 0u32..1000),
        ) {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{date}T{time}{fraction}{end}");
            if let Some(fast) = parse_utc_fixed(text.as_bytes()) {
                let chrono = DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).ok();
                prop_assert_eq!(Some(fast), chrono, "{}", text);
            }
            let t = DateTime::from_timestamp_millis(real.0).expect("in range");
            let canonical = format_timestamp(t);
            prop_assert_eq!(parse_utc_fixed(canonical.as_bytes()), Some(t), "{}", canonical);
        }
    }

    #[test]
    fn other_forms_take_the_general_parsers() {
        for text in [
            "2026-01-01T00:00:60Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01t00:00:00Z",
        ] {
            assert_eq!(parse_utc_fixed(text.as_bytes()), None, "{text}");
        }
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:60Z"),
            DateTime::parse_from_rfc3339("2026-01-01T00:00:60Z").ok().map(|t| t.with_timezone(&Utc))
        );
    }

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

    #[test]
    fn formats_as_chrono_does_including_the_edges() {
        let chrono = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut cases: Vec<DateTime<Utc>> =
            ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"]
                .into_iter()
                .map(at)
                .collect();
        cases.extend(DateTime::from_timestamp(1_483_228_799, 1_500_000_000)); // a leap second
        cases.extend(DateTime::from_timestamp(253_402_300_800, 0)); // year 10000
        cases.extend(NaiveDate::from_ymd_opt(-5, 3, 1).and_then(|d| d.and_hms_opt(1, 2, 3)).map(|t| t.and_utc()));
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let millis = (seed >> 20) as i64 % 400_000_000_000_000 - 100_000_000_000_000;
            cases.extend(DateTime::from_timestamp_millis(millis));
        }
        for t in cases {
            assert_eq!(format_timestamp(t), chrono(t), "{t:?}");
            // Twice: the second is read from the thread's recent times.
            for _ in 0..2 {
                let mut json = Vec::new();
                write_timestamp_json(&mut json, t);
                assert_eq!(json, format!("\"{}\"", chrono(t)).into_bytes());
            }
        }
    }
}
