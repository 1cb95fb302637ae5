//! The batch schedule: a cron expression read in an IANA timezone, and the business date of
//! each fire instant.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expression:?}: {message}")]
    Cron { expression: String, message: String },
    #[error("unknown timezone {0:?}: expected an IANA name such as `Europe/Berlin`")]
    Timezone(String),
    #[error(
        "cron expression {0:?} never fires; check its day of month and month, or use one such as `0 2 * * *`"
    )]
    NeverFires(String),
    #[error(
        "cron expression {expression:?} fires more than once a day (on {date} at {first} and {second}), but a batch runs once per business date and the later fires would do nothing; use one fire a day, such as `0 2 * * *`"
    )]
    SeveralADay {
        expression: String,
        date: NaiveDate,
        first: String,
        second: String,
    },
}

/// Fires checked for a second fire on one business date: a year of a daily schedule.
const FIRES_CHECKED: usize = 400;

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    expression: String,
    timezone: Tz,
}

/// One instant at which the schedule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireInstant {
    pub at: DateTime<Utc>,
    pub local: DateTime<Tz>,
    /// The local calendar date of the fire instant: the batch is keyed by it.
    pub business_date: NaiveDate,
}

impl Schedule {
    pub fn new(expression: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let timezone = parse_timezone(timezone)?;
        // Five fields only: croner would also take six or seven, reading the first as seconds
        // and the last as a year, so `0 2 * * * *`, one `*` too many, would fire at minute 2 of
        // every hour.
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expression).map_err(|e| ScheduleError::Cron {
            expression: expression.to_owned(),
            message: cron_problem(expression, &e.to_string()),
        })?;
        let schedule = Schedule {
            cron,
            expression: expression.to_owned(),
            timezone,
        };
        schedule.check_once_a_day()?;
        Ok(schedule)
    }

    /// Parses the schedule as [`Schedule::new`] does, but with an unknown timezone also checks
    /// the expression, in UTC, so that one run names the problems of both.
    pub fn parse_reporting_all(
        expression: &str,
        timezone: &str,
    ) -> Result<Schedule, Vec<ScheduleError>> {
        match Schedule::new(expression, timezone) {
            Ok(schedule) => Ok(schedule),
            Err(error @ ScheduleError::Timezone(_)) => {
                let mut errors = vec![error];
                if let Err(expression_error) = Schedule::new(expression, "UTC") {
                    errors.push(expression_error);
                }
                Err(errors)
            }
            Err(error) => Err(vec![error]),
        }
    }

    /// Rejects an expression that fires twice on one local date within `FIRES_CHECKED` fires
    /// from the local start of 2026, because only the first fire of a date opens its batch.
    fn check_once_a_day(&self) -> Result<(), ScheduleError> {
        // One second before local midnight, so that a fire at 00:00 counts and the error
        // names the first two fires of the day. In a zone whose clocks skipped that midnight,
        // UTC midnight serves as well.
        let start = NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|midnight| {
                let instant = match self.timezone.from_local_datetime(&midnight).earliest() {
                    Some(local) => local.with_timezone(&Utc),
                    None => midnight.and_utc(),
                };
                instant - chrono::Duration::seconds(1)
            })
            .unwrap_or_default();
        let mut last: Option<FireInstant> = None;
        let mut cursor = start;
        for _ in 0..FIRES_CHECKED {
            // An expression that never fires, such as one for 30 February, would stop the
            // scheduler at start. Later, croner stops searching in the year 5000.
            let Ok(fire) = self.next_after(cursor) else {
                return match last {
                    None => Err(ScheduleError::NeverFires(self.expression.clone())),
                    Some(_) => Ok(()),
                };
            };
            if let Some(previous) = last
                && previous.business_date == fire.business_date
            {
                return Err(ScheduleError::SeveralADay {
                    expression: self.expression.clone(),
                    date: fire.business_date,
                    first: previous.local.format("%H:%M").to_string(),
                    second: fire.local.format("%H:%M").to_string(),
                });
            }
            cursor = fire.at;
            last = Some(fire);
        }
        Ok(())
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Returns the first fire instant strictly after `after`. A local time inside a
    /// spring-forward gap fires at the first valid instant after the gap. A local time inside a
    /// repeated fall-back hour fires at its first occurrence only, as croner 4.0 does; the tests
    /// below pin both.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<FireInstant, ScheduleError> {
        let local = after.with_timezone(&self.timezone);
        let next = self
            .cron
            .find_next_occurrence(&local, false)
            .map_err(|_| ScheduleError::NeverFires(self.expression.clone()))?;
        Ok(self.fire_instant(next))
    }

    /// Returns the last fire instant at or before `at`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>) -> Result<FireInstant, ScheduleError> {
        let local = at.with_timezone(&self.timezone);
        let previous = self
            .cron
            .find_previous_occurrence(&local, true)
            .map_err(|_| ScheduleError::NeverFires(self.expression.clone()))?;
        Ok(self.fire_instant(previous))
    }

    /// Returns the next `count` fire instants after `after`.
    pub fn upcoming(
        &self,
        after: DateTime<Utc>,
        count: usize,
    ) -> Result<Vec<FireInstant>, ScheduleError> {
        let mut instants = Vec::with_capacity(count);
        let mut cursor = after;
        for _ in 0..count {
            let next = self.next_after(cursor)?;
            cursor = next.at;
            instants.push(next);
        }
        Ok(instants)
    }

    /// Returns the fire instant whose business date is `date`: the first one on that local day.
    pub fn fire_on(&self, date: NaiveDate) -> Result<Option<FireInstant>, ScheduleError> {
        let day_start = date
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(self.timezone).earliest());
        let Some(day_start) = day_start else {
            return Ok(None);
        };
        // Inclusive, so a schedule firing at local midnight counts for that date.
        let first = self
            .cron
            .find_next_occurrence(&day_start, true)
            .map_err(|_| ScheduleError::NeverFires(self.expression.clone()))?;
        let fire = self.fire_instant(first);
        Ok((fire.business_date == date).then_some(fire))
    }

    fn fire_instant(&self, local: DateTime<Tz>) -> FireInstant {
        FireInstant {
            at: local.with_timezone(&Utc),
            local,
            business_date: local.date_naive(),
        }
    }
}

/// Describes why croner rejected `expression`: the number of fields when it is not five, or
/// else croner's `message` with the range of each field.
fn cron_problem(expression: &str, message: &str) -> String {
    let fields = expression.split_whitespace().count();
    if fields != 5 && !expression.trim_start().starts_with('@') {
        return format!(
            "it has {fields} fields. Use five fields (minute hour day-of-month month day-of-week), such as `0 2 * * *`"
        );
    }
    format!(
        "{}. The fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT), such as `0 2 * * *`",
        message.trim_end_matches('.')
    )
}

pub(crate) fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::Timezone(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fires(expression: &str, zone: &str, after: &str, count: usize) -> Vec<(String, String)> {
        let schedule = Schedule::new(expression, zone).unwrap();
        schedule
            .upcoming(utc(after), count)
            .unwrap()
            .into_iter()
            .map(|f| (f.at.to_rfc3339(), f.business_date.to_string()))
            .collect()
    }

    fn pair(at: &str, date: &str) -> (String, String) {
        (utc(at).to_rfc3339(), date.to_owned())
    }

    #[test]
    fn berlin_spring_forward_fires_after_gap() {
        // 2025-03-30 02:30 does not exist in Berlin: clocks jump from 02:00 to 03:00 (CEST).
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z", 3),
            vec![
                pair("2025-03-29T01:30:00Z", "2025-03-29"),
                pair("2025-03-30T01:00:00Z", "2025-03-30"),
                pair("2025-03-31T00:30:00Z", "2025-03-31"),
            ]
        );
    }

    #[test]
    fn berlin_fall_back_fires_once() {
        // 2025-10-26 02:30 happens twice in Berlin; only the first (CEST, 00:30 UTC) fires.
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00Z", 3),
            vec![
                pair("2025-10-26T00:30:00Z", "2025-10-26"),
                pair("2025-10-27T01:30:00Z", "2025-10-27"),
                pair("2025-10-28T01:30:00Z", "2025-10-28"),
            ]
        );
    }

    #[test]
    fn new_york_across_november_change() {
        // DST ends on 2025-11-02 at 02:00 local; 06:00 moves from 10:00 UTC to 11:00 UTC.
        assert_eq!(
            fires("0 6 * * *", "America/New_York", "2025-11-01T00:00:00Z", 3),
            vec![
                pair("2025-11-01T10:00:00Z", "2025-11-01"),
                pair("2025-11-02T11:00:00Z", "2025-11-02"),
                pair("2025-11-03T11:00:00Z", "2025-11-03"),
            ]
        );
    }

    #[test]
    fn tokyo_business_date_is_local_date() {
        // 08:30 in Tokyo is 23:30 UTC of the day before: the business date is Tokyo's.
        assert_eq!(
            fires("30 8 * * *", "Asia/Tokyo", "2026-12-03T00:00:00Z", 1),
            vec![pair("2026-12-03T23:30:00Z", "2026-12-04")]
        );
    }

    #[test]
    fn previous_fire_at_or_before() {
        let schedule = Schedule::new("0 2 * * *", "UTC").unwrap();
        let previous = schedule
            .previous_at_or_before(utc("2026-12-04T01:59:00Z"))
            .unwrap();
        assert_eq!(previous.at, utc("2026-12-03T02:00:00Z"));
    }

    #[test]
    fn fire_on_date_inside_spring_gap() {
        let schedule = Schedule::new("30 2 * * *", "Europe/Berlin").unwrap();
        let date = NaiveDate::from_ymd_opt(2025, 3, 30).unwrap();
        let fire = schedule.fire_on(date).unwrap().unwrap();
        assert_eq!(fire.at, utc("2025-03-30T01:00:00Z"));
    }

    #[test]
    fn fire_on_date_without_fire_is_none() {
        let schedule = Schedule::new("0 2 * * MON", "UTC").unwrap();
        // 2026-12-04 is a Friday.
        assert_eq!(
            schedule
                .fire_on(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap())
                .unwrap(),
            None
        );
    }

    #[test]
    fn invalid_expression_names_it() {
        let error = Schedule::new("61 2 * * *", "UTC").unwrap_err();
        assert!(error.to_string().contains("\"61 2 * * *\""), "{error}");
    }

    #[test]
    fn unknown_timezone_does_not_hide_expression() {
        let errors = Schedule::parse_reporting_all("0 25 * * *", "Europe/Berlln").unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            matches!(errors[0], ScheduleError::Timezone(_)),
            "{errors:?}"
        );
        assert!(
            matches!(errors[1], ScheduleError::Cron { .. }),
            "{errors:?}"
        );
        let errors = Schedule::parse_reporting_all("0 2 * * *", "Europe/Berlln").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    /// An expression with five fields and a value out of range gets the range of each field,
    /// not the advice to use five fields.
    #[test]
    fn out_of_range_value_names_ranges() {
        let message = Schedule::new("0 25 * * *", "UTC").unwrap_err().to_string();
        assert!(message.contains("hour (0-23)"), "{message}");
        assert!(!message.contains(".."), "{message}");
        assert!(!message.contains("Use five fields"), "{message}");
        let message = Schedule::new("0 2 * *", "UTC").unwrap_err().to_string();
        assert!(
            message.contains("it has 4 fields. Use five fields"),
            "{message}"
        );
    }

    /// A sixth field would be read as seconds first or a year last, which moves the batch to
    /// another time than the operator meant, so only five fields (or a nickname) are taken.
    #[test]
    fn six_or_seven_fields_rejected() {
        for expression in ["0 2 * * * *", "0 0 2 * * *", "0 0 2 * * * 2027"] {
            let error = Schedule::new(expression, "UTC").unwrap_err();
            let message = error.to_string();
            assert!(message.contains(&format!("{expression:?}")), "{message}");
            assert!(message.contains("Use five fields"), "{message}");
        }
        assert_eq!(
            fires("@daily", "UTC", "2026-12-04T12:00:00Z", 1),
            vec![pair("2026-12-05T00:00:00Z", "2026-12-05")]
        );
    }

    #[test]
    fn never_firing_expression_rejected() {
        let error = Schedule::new("0 2 30 2 *", "Europe/Berlin").unwrap_err();
        assert!(
            matches!(error, ScheduleError::NeverFires(ref expression) if expression == "0 2 30 2 *"),
            "{error}"
        );
        // 29 February comes back every four years.
        assert!(Schedule::new("0 2 29 2 *", "Europe/Berlin").is_ok());
    }

    #[test]
    fn several_fires_a_day_rejected() {
        for expression in ["* * * * *", "@hourly", "*/30 2 * * *", "0 2,14 * * *"] {
            let error = Schedule::new(expression, "Europe/Berlin").unwrap_err();
            let message = error.to_string();
            assert!(message.contains("fires more than once a day"), "{message}");
            assert!(message.contains(&format!("{expression:?}")), "{message}");
        }
        // The first two fires of the day, midnight included.
        let message = Schedule::new("*/5 * * * *", "Europe/Berlin")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("(on 2026-01-01 at 00:00 and 00:05)"),
            "{message}"
        );
        for expression in ["0 2 * * *", "@daily", "30 2 * * MON-FRI", "0 0 1 * *"] {
            assert!(
                Schedule::new(expression, "Europe/Berlin").is_ok(),
                "{expression}"
            );
        }
    }

    #[test]
    fn unknown_timezone_names_it() {
        let error = Schedule::new("0 2 * * *", "Mars/Olympus").unwrap_err();
        assert!(error.to_string().contains("\"Mars/Olympus\""), "{error}");
    }
}
