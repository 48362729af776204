//! Timestamps on the wire and in logs: the `Date` header and the access log's CLF time.
//!
//! The `Date` value changes once a second, so each thread formats it once per second and
//! copies the cached bytes into every response. The CLF time (`26/Nov/2026:02:11:18 +0000`) is
//! computed from the Unix day count with Howard Hinnant's civil-from-days algorithm, so no
//! calendar crate is needed.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// (Unix second, formatted IMF-fixdate) for this thread's last response.
    static HTTP_DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to `out`.
pub(crate) fn append_http_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = unix_seconds(now);
    HTTP_DATE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            *cache = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}

fn unix_seconds(t: SystemTime) -> u64 {
    // A clock before 1970 is a misconfigured host; logging the epoch is the least surprise.
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A time displayed in Common Log Format, always in UTC: `26/Nov/2026:02:11:18 +0000`.
pub(crate) struct ClfTime(pub SystemTime);

impl std::fmt::Display for ClfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = unix_seconds(self.0);
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let in_day = secs % 86_400;
        let month_name = MONTHS[(month as usize - 1) % 12];
        write!(
            f,
            "{day:02}/{month_name}/{year}:{:02}:{:02}:{:02} +0000",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60
        )
    }
}

/// The proleptic Gregorian (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
///
/// Public because the binary's log lines and the blog's dates need the same calendar, and a
/// date crate for one function would be more than the problem (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
    }

    #[test]
    fn clf_time_formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_659_078);
        assert_eq!(ClfTime(t).to_string(), "26/Nov/2026:02:11:18 +0000");
        assert_eq!(
            ClfTime(UNIX_EPOCH).to_string(),
            "01/Jan/1970:00:00:00 +0000"
        );
    }

    #[test]
    fn clf_agrees_with_httpdate_over_many_days() {
        for day in (0..40_000u64).step_by(97) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 3_661);
            let http = httpdate::fmt_http_date(t); // "Thu, 01 Jan 1970 01:01:01 GMT"
            let clf = ClfTime(t).to_string(); // "01/Jan/1970:01:01:01 +0000"
            let expected = format!(
                "{}/{}/{}:{}",
                &http[5..7],
                &http[8..11],
                &http[12..16],
                &http[17..25]
            );
            assert_eq!(clf, format!("{expected} +0000"));
        }
    }

    #[test]
    fn http_date_is_cached_and_well_formed() {
        let mut a = Vec::new();
        append_http_date(&mut a);
        assert_eq!(a.len(), 29);
        assert!(a.ends_with(b" GMT"));
        assert!(httpdate::parse_http_date(std::str::from_utf8(&a).unwrap()).is_ok());
    }
}
