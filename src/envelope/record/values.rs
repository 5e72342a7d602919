//! Avro's logical types as our JSON writes them: dates, times, timestamps, decimals, uuids.

use super::{Fault, bad};

/// Avro's JSON encoding writes bytes as a string of code points 0–255, one per byte.
pub(super) fn latin1(s: &str) -> Result<Vec<u8>, Fault> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| bad("bytes with a code point above 255")))
        .collect()
}

pub(super) fn uuid_of(b: &[u8]) -> Result<String, Fault> {
    apache_avro::Uuid::from_slice(b)
        .map(|u| u.to_string())
        .map_err(|_| bad("a uuid that is not 16 bytes"))
}

pub(super) fn date(days: i64) -> Result<String, Fault> {
    // An Avro `date` is an int; beyond it (Avro JSON carries any number) is out of range,
    // and `Duration::days` would panic far beyond it.
    let days = i32::try_from(days).map_err(|_| bad("a date out of range"))?;
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).expect("valid");
    let d = epoch
        .checked_add(time::Duration::days(i64::from(days)))
        .ok_or_else(|| bad("a date out of range"))?;
    Ok(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

pub(super) fn time_of_day(micros: i64) -> Result<String, Fault> {
    if !(0..86_400_000_000).contains(&micros) {
        return Err(bad("a time of day out of range"));
    }
    let (s, us) = (micros / 1_000_000, micros % 1_000_000);
    Ok(format!(
        "{:02}:{:02}:{:02}.{us:06}",
        s / 3600,
        s / 60 % 60,
        s % 60
    ))
}

/// `value` in units of `unit` nanoseconds since the epoch, as RFC 3339.
pub(super) fn timestamp(value: i64, unit: i64, local: bool) -> Result<String, Fault> {
    let nanos = i128::from(value) * i128::from(unit);
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| bad("a timestamp out of range"))?;
    let mut s = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| bad("a timestamp out of range"))?;
    if local {
        s.pop(); // the `Z`: a local timestamp has no offset
    }
    Ok(s)
}

/// A decimal's exact value from its big-endian two's-complement unscaled bytes.
pub(super) fn decimal(b: &[u8], scale: u32) -> Result<String, Fault> {
    // A `fixed` wider than 16 bytes holds sign extension first: only the rest must fit.
    let extension = b
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
        .count();
    let b = &b[extension..];
    if b.len() > 16 {
        return Err(bad("a decimal beyond 128 bits"));
    }
    let mut v: i128 = if b.first().is_some_and(|x| x & 0x80 != 0) {
        -1
    } else {
        0
    };
    for x in b {
        v = (v << 8) | i128::from(*x);
    }
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    if scale > 76 {
        return Err(bad("a decimal scale above 76"));
    }
    let (int, frac) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("0", digits.as_str())
    };
    let sign = if v < 0 { "-" } else { "" };
    Ok(if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac:0>scale$}")
    })
}

/// An Avro `duration` (12 bytes: months, days, milliseconds, little-endian) as an object.
pub(super) fn duration(b: &[u8]) -> Result<String, Fault> {
    let part = |i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_le_bytes(x.try_into().expect("4 bytes")))
    };
    match (part(0), part(4), part(8), b.len()) {
        (Some(m), Some(d), Some(ms), 12) => Ok(format!(
            r#"{{"months":{m},"days":{d},"milliseconds":{ms}}}"#
        )),
        _ => Err(bad("a duration that is not 12 bytes")),
    }
}
