//! Validated inputs: e-mail addresses, passwords, names. No I/O.

use crate::error::AuthError;

/// A syntactically valid address, kept as typed, compared lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, AuthError> {
        let s = raw.trim();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            })
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',');
        if valid {
            Ok(Email(s.to_owned()))
        } else {
            Err(AuthError::field("email", "not a valid e-mail address"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form uniqueness and look-ups use.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Passwords: 8 to 128 characters, not one of the most common ones.
pub struct Password(String);

const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyui",
    "qwerty123",
    "11111111",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "admin123",
    "abc12345",
    "letmein1",
    "00000000",
    "87654321",
    "passw0rd",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "dragon12",
    "monkey12",
    "asdfghjk",
    "zxcvbnm1",
];

impl Password {
    pub fn parse(raw: &str) -> Result<Password, AuthError> {
        let len = raw.chars().count();
        if len < 8 {
            return Err(AuthError::field("password", "must be at least 8 characters"));
        }
        if len > 128 {
            return Err(AuthError::field("password", "must be at most 128 characters"));
        }
        if COMMON.contains(&raw.to_lowercase().as_str()) {
            return Err(AuthError::field("password", "is one of the most common passwords; choose another"));
        }
        Ok(Password(raw.to_owned()))
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A person's or shop's name: trimmed, 1 to 120 characters, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String, AuthError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 120 || s.chars().any(char::is_control) {
        return Err(AuthError::field(field, "must be 1 to 120 printable characters"));
    }
    Ok(s.to_owned())
}

/// Optional free text (address, phone, image key): trimmed, bounded, empty as none.
pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, AuthError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(AuthError::field(field, &format!("must be at most {max} printable characters")))
        }
        Some(s) => Ok(Some(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "First.Last+tag@Example.COM"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.co", "a@b..co", "a@-", "<a@b.co>", "a@b.co,c@d.co"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Email::parse(" X@Y.com ").unwrap().normalized(), "x@y.com");
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("Password123").is_err(), "common");
        assert!(Password::parse("correct horse battery").is_ok());
    }
}
