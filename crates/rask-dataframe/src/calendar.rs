//! Calendar arithmetic on the proleptic Gregorian calendar, for the CSV scanner's dates and
//! for partial date labels (`loc("2015-05")` is that month): days since 1970-01-01, and the
//! period a partial date string names, and the calendar months resampling steps through.

/// Days in a month of a year.
pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: `(year, month, day)` (the inverse of
/// [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The first day of the month `months` after the month that holds `days` (days since
/// 1970-01-01).
pub(crate) fn add_months(days: i64, months: i64) -> i64 {
    let (year, month, _) = civil_from_days(days);
    let index = year * 12 + (month - 1) + months;
    days_from_civil(index.div_euclid(12), index.rem_euclid(12) + 1, 1)
}

const SECOND_NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * SECOND_NS;

/// The period a partial date string names, as nanoseconds since 1970-01-01 (naive time):
/// `start..end`. `"2015"` is that year, `"2015-05"` that month, `"2015-05-05"` that day, and
/// `"2015-05-05 13"`, `"2015-05-05 13:30"`, `"2015-05-05 13:30:15"` (or with `T`) that hour,
/// minute or second. `None` if the text is not such a date.
pub(crate) fn period(text: &str) -> Option<(i64, i64)> {
    let text = text.trim();
    let number = |s: &str, digits: usize| -> Option<i64> {
        (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (date, time) = match text.find([' ', 'T']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = number(parts.next()?, 4)?;
    let month = parts.next().map(|m| number(m, 2).ok_or(())).transpose().ok()?;
    let day = parts.next().map(|d| number(d, 2).ok_or(())).transpose().ok()?;
    if parts.next().is_some() || month.is_some_and(|m| !(1..=12).contains(&m)) {
        return None;
    }
    if let (Some(m), Some(d)) = (month, day) {
        if d < 1 || d > days_in_month(year, m) {
            return None;
        }
    }
    let Some(time) = time else {
        return Some(match (month, day) {
            (None, _) => {
                (days_from_civil(year, 1, 1) * DAY_NS, days_from_civil(year + 1, 1, 1) * DAY_NS)
            }
            (Some(m), None) => {
                let (next_year, next_month) = if m == 12 { (year + 1, 1) } else { (year, m + 1) };
                (
                    days_from_civil(year, m, 1) * DAY_NS,
                    days_from_civil(next_year, next_month, 1) * DAY_NS,
                )
            }
            (Some(m), Some(d)) => {
                let start = days_from_civil(year, m, d) * DAY_NS;
                (start, start + DAY_NS)
            }
        });
    };
    let (Some(m), Some(d)) = (month, day) else { return None };
    let mut fields = time.split(':');
    let hour = number(fields.next()?, 2)?;
    let minute = fields.next().map(|f| number(f, 2).ok_or(())).transpose().ok()?;
    let second = fields.next().map(|f| number(f, 2).ok_or(())).transpose().ok()?;
    if fields.next().is_some()
        || hour > 23
        || minute.is_some_and(|v| v > 59)
        || second.is_some_and(|v| v > 59)
    {
        return None;
    }
    let start = days_from_civil(year, m, d) * DAY_NS
        + hour * 3600 * SECOND_NS
        + minute.unwrap_or(0) * 60 * SECOND_NS
        + second.unwrap_or(0) * SECOND_NS;
    let length = match (minute, second) {
        (None, _) => 3600 * SECOND_NS,
        (Some(_), None) => 60 * SECOND_NS,
        (Some(_), Some(_)) => SECOND_NS,
    };
    Some((start, start + length))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_NS;

    #[test]
    fn partial_dates_name_their_whole_period() {
        let may_5 = days_from_civil(2015, 5, 5) * DAY;
        assert_eq!(period("2015-05-05"), Some((may_5, may_5 + DAY)));
        assert_eq!(
            period("2015-05"),
            Some((days_from_civil(2015, 5, 1) * DAY, days_from_civil(2015, 6, 1) * DAY))
        );
        assert_eq!(period("2015-12").unwrap().1, days_from_civil(2016, 1, 1) * DAY);
        assert_eq!(period("2015").unwrap().1 - period("2015").unwrap().0, 365 * DAY);
        assert_eq!(period("2016").unwrap().1 - period("2016").unwrap().0, 366 * DAY);
        let hour = period("2015-05-05 13").unwrap();
        assert_eq!(hour, (may_5 + 13 * 3600 * SECOND_NS, may_5 + 14 * 3600 * SECOND_NS));
        assert_eq!(
            period("2015-05-05T13:30:15").unwrap().1 - period("2015-05-05T13:30:15").unwrap().0,
            SECOND_NS
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        for days in [-800_000, -1, 0, 59, 16_495, 16_860, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(civil_from_days(days_from_civil(2016, 2, 29)), (2016, 2, 29));
        let jan_31 = days_from_civil(2015, 1, 31);
        assert_eq!(add_months(jan_31, 1), days_from_civil(2015, 2, 1));
        assert_eq!(add_months(jan_31, 12), days_from_civil(2016, 1, 1));
        assert_eq!(add_months(jan_31, -1), days_from_civil(2014, 12, 1));
        for bad in
            ["2015-13", "2015-02-30", "15-05-05", "2015-05-05 25", "tomorrow", "2015-05-05 13:61"]
        {
            assert_eq!(period(bad), None, "{bad}");
        }
    }
}
