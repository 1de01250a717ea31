//! What may be uploaded where: folders, their allowed content types (decided from the
//! bytes, never from the name), and sanitised sub-folders.

use serde::Deserialize;

/// Upload folders, as the first system's clients name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    Images,
    Documents,
    Avatars,
    Products,
    Categories,
    Receipts,
}

impl Folder {
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Images => "images",
            Folder::Documents => "documents",
            Folder::Avatars => "avatars",
            Folder::Products => "products",
            Folder::Categories => "categories",
            Folder::Receipts => "receipts",
        }
    }

    pub fn allows(self, kind: FileKind) -> bool {
        match self {
            Folder::Documents | Folder::Receipts => true,
            _ => kind != FileKind::Pdf,
        }
    }
}

/// A content type recognised from magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Png,
    Jpeg,
    Webp,
    Gif,
    Pdf,
}

impl FileKind {
    /// Bytes needed to recognise every kind.
    pub const SNIFF_LEN: usize = 12;

    pub fn sniff(head: &[u8]) -> Option<FileKind> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileKind::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileKind::Jpeg)
        } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(FileKind::Webp)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(FileKind::Gif)
        } else if head.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Webp => "image/webp",
            FileKind::Gif => "image/gif",
            FileKind::Pdf => "application/pdf",
        }
    }

    pub fn from_content_type(ct: &str) -> Option<FileKind> {
        match ct.trim().to_ascii_lowercase().as_str() {
            "image/png" => Some(FileKind::Png),
            "image/jpeg" | "image/jpg" => Some(FileKind::Jpeg),
            "image/webp" => Some(FileKind::Webp),
            "image/gif" => Some(FileKind::Gif),
            "application/pdf" => Some(FileKind::Pdf),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Png => "png",
            FileKind::Jpeg => "jpg",
            FileKind::Webp => "webp",
            FileKind::Gif => "gif",
            FileKind::Pdf => "pdf",
        }
    }

    /// Whether a client file name's extension agrees with the content (a name without an
    /// extension agrees with anything).
    pub fn matches_name(self, name: &str) -> bool {
        let Some((_, ext)) = name.rsplit_once('.') else { return true };
        let ext = ext.to_ascii_lowercase();
        match self {
            FileKind::Jpeg => ext == "jpg" || ext == "jpeg",
            other => ext == other.extension(),
        }
    }
}

/// A sub-folder the client chose: up to 3 segments of `[A-Za-z0-9._-]`, no `..`, no
/// absolute path, no control characters, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubFolder(String);

impl SubFolder {
    pub fn parse(raw: &str) -> Result<Option<SubFolder>, &'static str> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if trimmed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if trimmed.starts_with('/') || trimmed.starts_with('\\') {
            return Err("must be a relative path");
        }
        if trimmed.len() > 100 {
            return Err("must be at most 100 characters");
        }
        let segments: Vec<&str> = trimmed.trim_end_matches('/').split('/').collect();
        if segments.len() > 3 {
            return Err("must have at most 3 segments");
        }
        for seg in &segments {
            if seg.is_empty() || *seg == "." || *seg == ".." {
                return Err("must not contain empty, '.' or '..' segments");
            }
            if !seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                return Err("may contain only letters, digits, '-', '_' and '.'");
            }
        }
        Ok(Some(SubFolder(segments.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `shops/{shopId}/{folder}/{subFolder?}/{uuid}.{ext}`
pub fn object_key(shop: uuid::Uuid, folder: Folder, sub: Option<&SubFolder>, kind: FileKind) -> String {
    let id = uuid::Uuid::now_v7();
    match sub {
        Some(s) => format!("shops/{shop}/{}/{}/{id}.{}", folder.as_str(), s.as_str(), kind.extension()),
        None => format!("shops/{shop}/{}/{id}.{}", folder.as_str(), kind.extension()),
    }
}

/// The shop a key belongs to, if it is a well-formed shop key.
pub fn shop_of_key(key: &str) -> Option<uuid::Uuid> {
    let rest = key.strip_prefix("shops/")?;
    let (shop, tail) = rest.split_once('/')?;
    if tail.is_empty() || key.contains("..") || key.chars().any(char::is_control) {
        return None;
    }
    uuid::Uuid::parse_str(shop).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(FileKind::sniff(b"\x89PNG\r\n\x1a\n0000"), Some(FileKind::Png));
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n"), Some(FileKind::Pdf));
        assert_eq!(FileKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(FileKind::Webp));
        assert_eq!(FileKind::sniff(b"GIF89a"), Some(FileKind::Gif));
        assert_eq!(FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(FileKind::Jpeg));
        assert_eq!(FileKind::sniff(b"<html>"), None);
        assert_eq!(FileKind::sniff(b""), None);
    }

    #[test]
    fn names_must_agree_with_content() {
        assert!(FileKind::Pdf.matches_name("invoice.PDF"));
        assert!(!FileKind::Pdf.matches_name("photo.png"));
        assert!(FileKind::Jpeg.matches_name("a.jpeg"));
        assert!(FileKind::Png.matches_name("noext"));
    }

    #[test]
    fn pdf_only_in_document_folders() {
        assert!(Folder::Documents.allows(FileKind::Pdf));
        assert!(!Folder::Products.allows(FileKind::Pdf));
        assert!(Folder::Products.allows(FileKind::Webp));
    }

    #[test]
    fn sub_folders_are_sanitised() {
        assert_eq!(SubFolder::parse("").unwrap(), None);
        assert_eq!(SubFolder::parse("a/b-c/d_e.1").unwrap().unwrap().as_str(), "a/b-c/d_e.1");
        for bad in ["../x", "a/../b", "/etc", "\\\\server", "a\nb", "a\u{0}b", "a//b", "a/b/c/d", "sp ace", "ü"] {
            assert!(SubFolder::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn keys_are_scoped_to_shops() {
        let shop = uuid::Uuid::new_v4();
        let key = object_key(shop, Folder::Products, SubFolder::parse("x").unwrap().as_ref(), FileKind::Png);
        assert!(key.starts_with(&format!("shops/{shop}/products/x/")), "{key}");
        assert_eq!(shop_of_key(&key), Some(shop));
        assert_eq!(shop_of_key("shops/not-a-uuid/x"), None);
        assert_eq!(shop_of_key(&format!("shops/{shop}/../other")), None);
        assert_eq!(shop_of_key("elsewhere/x"), None);
    }
}
