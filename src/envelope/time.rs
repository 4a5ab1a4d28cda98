//! Event times as CloudTrail writes them, for whoever needs an instant (the state stage's
//! replay clock, `where` age tests, absence checks).

/// An event time as CloudTrail writes it: RFC 3339 (`2020-07-10T23:06:42Z`), or CloudTrail
/// Lake's form (`2025-03-26 16:43:57.000000000`), which has no offset and is UTC. Any other
/// text is `None`.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(time) = text.parse::<jiff::Timestamp>() {
        return Some(time);
    }
    // Only the Lake form: jiff also reads a bare date, which no event time is.
    if text.as_bytes().get(10) != Some(&b' ') {
        return None;
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok()?;
    jiff::tz::Offset::UTC.to_timestamp(civil).ok()
}
