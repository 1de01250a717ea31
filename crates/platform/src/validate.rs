//! Small checks every service makes the same way: dates inside a sane range, and fields a
//! request may repeat but not change.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::Problem;

/// Dates before this year or after [`LATEST_YEAR`] are typing mistakes, not business.
pub const EARLIEST_YEAR: i32 = 1900;
pub const LATEST_YEAR: i32 = 2200;

fn in_range(year: i32) -> bool {
    (EARLIEST_YEAR..=LATEST_YEAR).contains(&year)
}

fn out_of_range(field: &str) -> Problem {
    Problem::field(field, &format!("must be between {EARLIEST_YEAR} and {LATEST_YEAR}"))
}

/// A date between 1900 and 2200, or a 422 naming `field`.
pub fn date(field: &str, value: Option<NaiveDate>) -> Result<Option<NaiveDate>, Problem> {
    match value {
        Some(d) if !in_range(d.year()) => Err(out_of_range(field)),
        other => Ok(other),
    }
}

/// A moment between 1900 and 2200, or a 422 naming `field`.
pub fn moment(field: &str, value: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>, Problem> {
    match value {
        Some(t) if !in_range(t.year()) => Err(out_of_range(field)),
        other => Ok(other),
    }
}

/// A field that cannot change (a record's shop, a category's parent): repeating the current
/// value is fine, another value is a 422 instead of being silently ignored.
pub fn unchanged<T: PartialEq>(field: &str, given: Option<T>, current: Option<T>) -> Result<(), Problem> {
    match given {
        Some(g) if Some(&g) != current.as_ref() => Err(Problem::field(field, "cannot be changed")),
        _ => Ok(()),
    }
}

/// Optional free text (a name, a note, an address): trimmed, at most `max` characters, no
/// control characters; empty or absent is `None`. Anything else is a 422 naming `field`.
pub fn text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, Problem> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(Problem::field(field, &format!("at most {max} printable characters")))
        }
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// The `id` some clients repeat in a request body (the first Cashvio's PUT bodies). On a
/// create (`path` is `None`) ids are the server's to assign, so any `id` is a 422; on an edit
/// it must name the record of the path.
pub fn body_id(given: Option<uuid::Uuid>, path: Option<uuid::Uuid>) -> Result<(), Problem> {
    match (given, path) {
        (Some(_), None) => Err(Problem::field("id", "assigned by the server; leave it out")),
        (Some(g), Some(p)) if g != p => Err(Problem::field("id", "must be the id in the path")),
        _ => Ok(()),
    }
}

/// At most this many images on one record.
pub const MAX_IMAGES: usize = 10;

/// A stored upload of `shop`: its object key (`shops/{shop}/…`, as the mailer's upload
/// answers) or an http(s) URL whose path holds that key (clients prefix their bucket's
/// URL). The key must start at a path segment and use only letters, digits and `._-/`, with
/// no empty, `.` or `..` segment, so no encoding or relative trick can point elsewhere.
/// Another shop's key, a key outside any shop, or any other string is a 422 naming `field`.
/// (The URL's host is not checked here: services do not know the bucket's public address.)
pub fn shop_object(field: &str, shop: uuid::Uuid, value: &str) -> Result<String, Problem> {
    let refused = || Problem::field(field, "an uploaded file of this shop");
    let value = value.trim();
    if value.len() > 1_000 {
        return Err(refused());
    }
    let key = match value.split_once("://") {
        None => value,
        Some(("http" | "https", rest)) => {
            let (host, path) = rest.split_once('/').ok_or_else(refused)?;
            if host.is_empty() || host.contains(['@', '\\']) {
                return Err(refused());
            }
            let path = path.split(['?', '#']).next().unwrap_or_default();
            let prefix = format!("shops/{shop}/");
            let at = path.match_indices(&prefix).find(|(i, _)| *i == 0 || path.as_bytes()[i - 1] == b'/');
            at.map(|(i, _)| &path[i..]).ok_or_else(refused)?
        }
        Some(_) => return Err(refused()),
    };
    let rest = key.strip_prefix(&format!("shops/{shop}/")).ok_or_else(refused)?;
    let clean = !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && !rest.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if clean {
        Ok(value.to_owned())
    } else {
        Err(refused())
    }
}

/// [`shop_object`] for a list of images: at most [`MAX_IMAGES`].
pub fn shop_objects(field: &str, shop: uuid::Uuid, values: &[String]) -> Result<Vec<String>, Problem> {
    if values.len() > MAX_IMAGES {
        return Err(Problem::field(field, &format!("at most {MAX_IMAGES}")));
    }
    values.iter().map(|v| shop_object(field, shop, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_id_is_refused_on_create_and_must_match_the_path_on_edit() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert!(body_id(None, None).is_ok());
        assert!(body_id(None, Some(a)).is_ok());
        assert!(body_id(Some(a), Some(a)).is_ok());
        assert!(body_id(Some(b), Some(a)).is_err());
        assert!(body_id(Some(a), None).is_err());
    }

    #[test]
    fn images_are_this_shops_uploads_by_key_or_url_and_at_most_ten() {
        let (mine, theirs) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let key = format!("shops/{mine}/images/products/a.png");
        assert!(shop_object("imageUrls", mine, &key).is_ok());
        assert!(shop_object("imageUrls", mine, &format!("https://b.s3.amazonaws.com/{key}")).is_ok());
        assert!(shop_object("imageUrls", mine, &format!("http://127.0.0.1:5000/bucket/{key}?x=1")).is_ok());
        for bad in [
            format!("shops/{theirs}/images/a.png"),
            format!("https://b.s3.amazonaws.com/shops/{theirs}/images/a.png"),
            format!("https://evil.example/x/notshops/{mine}/a.png"),
            format!("shops/{mine}/"),
            format!("shops/{mine}/../{theirs}/a.png"),
            format!("shops/{mine}/%2e%2e/{theirs}/a.png"),
            format!("javascript://shops/{mine}/a.png"),
            format!("javascript:alert(1)//shops/{mine}/a.png"),
            format!("//evil.example/shops/{mine}/a.png"),
            format!("data:text/html,x/shops/{mine}/x"),
            format!("x/shops/{mine}/a.png"),
            "anything".to_owned(),
        ] {
            assert!(shop_object("imageUrls", mine, &bad).is_err(), "{bad}");
        }
        let many = vec![key.clone(); 11];
        assert!(shop_objects("imageUrls", mine, &many).is_err());
        assert_eq!(shop_objects("imageUrls", mine, &many[..10]).map(|v| v.len()).ok(), Some(10));
    }

    #[test]
    fn dates_outside_1900_to_2200_are_refused_and_the_rest_pass() {
        let d = |y| NaiveDate::from_ymd_opt(y, 6, 1);
        assert!(date("dob", d(1899)).is_err());
        assert!(date("dob", d(2201)).is_err());
        assert_eq!(date("dob", d(1990)).ok().flatten(), d(1990));
        assert_eq!(date("dob", None).ok().flatten(), None);
        assert!(moment("endsAt", "9999-01-01T00:00:00Z".parse().ok()).is_err());
    }

    #[test]
    fn an_unchangeable_field_may_be_repeated_but_not_changed() {
        assert!(unchanged("shopId", Some(1), Some(1)).is_ok());
        assert!(unchanged::<i32>("shopId", None, Some(1)).is_ok());
        let e = unchanged("shopId", Some(2), Some(1)).unwrap_err();
        assert_eq!(e.errors[0].field, "shopId");
        assert!(unchanged("parent", Some(1), None).is_err(), "a top-level category has no parent to set");
    }
}
