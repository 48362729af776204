//! Time as the blog shows it: unix seconds in, ISO 8601 UTC and "3 hours ago" out.
//!
//! Posts store unix seconds; pages show a relative phrase inside
//! `<time datetime="2026-11-26T02:11:18Z">`. The calendar arithmetic is Howard Hinnant's
//! days-from-civil algorithm, a few lines that spare a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is a broken clock; the epoch is the least surprising answer.
        Err(_) => 0,
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn civil(ts: i64) -> Civil {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400) as u32;
    let (year, month, day) = http::civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: secs / 3_600,
        minute: secs % 3_600 / 60,
        second: secs % 60,
    }
}

/// `2026-11-26T02:11:18Z`, for `datetime` attributes and feeds.
pub(crate) fn iso(ts: i64) -> String {
    let c = civil(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `26 Nov 2026, 02:11 UTC`, the exact time shown on hover.
pub(crate) fn exact(ts: i64) -> String {
    let c = civil(ts);
    let month = MONTHS[(c.month as usize).saturating_sub(1).min(11)];
    format!(
        "{} {} {}, {:02}:{:02} UTC",
        c.day, month, c.year, c.hour, c.minute
    )
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago", "4 months ago", "1 year ago".
pub(crate) fn ago(ts: i64, now: i64) -> String {
    let diff = now.saturating_sub(ts);
    if diff < 0 {
        // Clock skew between workers or an imported post from the future.
        return "just now".to_string();
    }
    let (n, unit) = match diff {
        0..=9 => return "just now".to_string(),
        10..=59 => (diff, "second"),
        60..=3_599 => (diff / 60, "minute"),
        3_600..=86_399 => (diff / 3_600, "hour"),
        86_400..=604_799 => (diff / 86_400, "day"),
        604_800..=2_678_399 => (diff / 604_800, "week"),
        2_678_400..=31_535_999 => ((diff / 2_592_000).max(1), "month"),
        _ => (diff / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_known_instants() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso(1_795_659_078), "2026-11-26T02:11:18Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips_through_the_calendar() {
        // Consecutive days must advance the civil date by exactly one day.
        let mut previous = civil(-86_400 * 365 * 200);
        for day in 1..(146_097 * 2) {
            let c = civil(-86_400 * 365 * 200 + day * 86_400);
            let next_day = c.day == previous.day + 1 && c.month == previous.month;
            let next_month = c.day == 1 && (c.month == previous.month % 12 + 1);
            assert!(next_day || next_month, "{previous:?} -> {c:?}");
            previous = c;
        }
    }

    #[test]
    fn exact_reads_well() {
        assert_eq!(exact(1_795_659_078), "26 Nov 2026, 02:11 UTC");
    }

    #[test]
    fn relative_phrases() {
        let now = 1_000_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - 30, now), "30 seconds ago");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 3 * 3_600, now), "3 hours ago");
        assert_eq!(ago(now - 86_400, now), "1 day ago");
        assert_eq!(ago(now - 15 * 86_400, now), "2 weeks ago");
        assert_eq!(ago(now - 62 * 86_400, now), "2 months ago");
        assert_eq!(ago(now - 800 * 86_400, now), "2 years ago");
        assert_eq!(ago(now + 100, now), "just now");
    }
}
