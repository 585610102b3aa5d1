//! Kubernetes `MicroTime` as a string: RFC 3339 in UTC with exactly six fractional digits
//! (`2025-01-31T23:59:59.123456Z`), so a timestamp has one spelling and no float ever carries it.
//! Nothing here reads a clock: callers pass the time in.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant with microsecond precision, between 1970-01-01 and 9999-12-31 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MicroTime(u64);

/// A timestamp that is not `YYYY-MM-DDTHH:MM:SS.ffffffZ` or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0:?} is not RFC 3339 UTC with six fractional digits (YYYY-MM-DDTHH:MM:SS.ffffffZ) in 1970..9999")]
pub struct MicroTimeError(pub String);

const MAX_MICROS: u64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z

impl MicroTime {
    /// From microseconds since the Unix epoch.
    pub fn from_unix_micros(micros: u64) -> Result<MicroTime, MicroTimeError> {
        if micros > MAX_MICROS {
            return Err(MicroTimeError(micros.to_string()));
        }
        Ok(MicroTime(micros))
    }

    /// From a `SystemTime` the caller read (truncated to microseconds).
    pub fn from_system_time(t: SystemTime) -> Result<MicroTime, MicroTimeError> {
        let since = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| MicroTimeError(format!("{t:?}")))?;
        let micros =
            u64::try_from(since.as_micros()).map_err(|_| MicroTimeError(format!("{t:?}")))?;
        MicroTime::from_unix_micros(micros)
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> u64 {
        self.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0)
    }

    /// Parses exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn parse(text: &str) -> Result<MicroTime, MicroTimeError> {
        let err = || MicroTimeError(text.to_owned());
        let b = text.as_bytes();
        if b.len() != 27
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(err());
        }
        if b[19] != b'.' || b[26] != b'Z' {
            return Err(err());
        }
        let num = |from: usize, to: usize| -> Result<u64, MicroTimeError> {
            let digits = &b[from..to];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(err());
            }
            Ok(digits
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second, micros) =
            (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?);
        if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month)
        {
            return Err(err());
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(err());
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        Ok(MicroTime(secs * 1_000_000 + micros))
    }
}

impl fmt::Display for MicroTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000;
        let micros = self.0 % 1_000_000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

impl Serialize for MicroTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MicroTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        MicroTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (year >= 1970); Howard Hinnant's algorithm.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
