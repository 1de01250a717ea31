//! What may be uploaded where: folders, their allowed content types (decided from the
//! bytes, never from the name), and sanitised sub-folders.

use serde::Deserialize;

/// Upload folders, as the first system's clients name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    /// The default: the first system's clients send no folder.
    #[default]
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

    /// Bytes [`FileKind::verify`] reads.
    pub const VERIFY_LEN: usize = 64;

    /// Whether the first bytes are the real start of a file of this kind, decoded as far as
    /// its header goes (a magic number followed by HTML is not an image): PNG's IHDR chunk
    /// with its CRC, a JPEG marker segment, GIF's screen descriptor, a WebP image chunk, a
    /// PDF version.
    pub fn verify(self, head: &[u8]) -> bool {
        let u16be = |i: usize| head.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let u32be = |i: usize| head.get(i..i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match self {
            FileKind::Png => {
                let (Some(len), Some(w), Some(h), Some(crc)) = (u32be(8), u32be(16), u32be(20), u32be(29)) else {
                    return false;
                };
                len == 13
                    && head.get(12..16) == Some(b"IHDR")
                    && w > 0
                    && h > 0
                    && matches!(head[24], 1 | 2 | 4 | 8 | 16)
                    && matches!(head[25], 0 | 2 | 3 | 4 | 6)
                    && crc32(&head[12..29]) == crc
            }
            FileKind::Jpeg => {
                head.get(2) == Some(&0xFF)
                    && head.get(3).is_some_and(|m| (0xC0..=0xFE).contains(m))
                    && u16be(4).is_some_and(|len| len >= 2)
            }
            FileKind::Gif => {
                let dims =
                    head.get(6..10).map(|b| (u16::from_le_bytes([b[0], b[1]]), u16::from_le_bytes([b[2], b[3]])));
                let flags = head.get(10).copied().unwrap_or(0);
                // Without a global colour table the next block starts at once.
                let next_ok = flags & 0x80 != 0 || head.get(13).is_some_and(|b| matches!(b, 0x21 | 0x2C | 0x3B));
                dims.is_some_and(|(w, h)| w > 0 && h > 0) && next_ok
            }
            FileKind::Webp => {
                let size = head.get(4..8).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                size.is_some_and(|s| s >= 12)
                    && head.get(12..16).is_some_and(|c| matches!(c, b"VP8 " | b"VP8L" | b"VP8X"))
            }
            FileKind::Pdf => {
                head.get(5).is_some_and(u8::is_ascii_digit)
                    && head.get(6) == Some(&b'.')
                    && head.get(7).is_some_and(u8::is_ascii_digit)
            }
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

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
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

    /// The smallest real PNG header: 1x1, 8-bit RGBA, with IHDR's CRC.
    const PNG_1X1: &[u8] =
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

    #[test]
    fn files_are_decoded_far_enough_to_be_sure() {
        assert!(FileKind::Png.verify(PNG_1X1));
        let mut html = b"\x89PNG\r\n\x1a\n".to_vec();
        html.extend_from_slice(b"<html><script>alert(1)</script></html>");
        assert!(!FileKind::Png.verify(&html), "a PNG signature followed by HTML");
        let mut bad_crc = PNG_1X1.to_vec();
        bad_crc[32] ^= 1;
        assert!(!FileKind::Png.verify(&bad_crc));
        assert!(FileKind::Jpeg.verify(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F']));
        assert!(!FileKind::Jpeg.verify(b"\xff\xd8\xff<html>"));
        assert!(FileKind::Gif.verify(b"GIF89a\x01\x00\x01\x00\x80\x00\x00"));
        assert!(!FileKind::Gif.verify(b"GIF89a<html><body>"));
        assert!(FileKind::Webp.verify(b"RIFF\x24\x00\x00\x00WEBPVP8 "));
        assert!(!FileKind::Webp.verify(b"RIFF\x24\x00\x00\x00WEBP<htm"));
        assert!(FileKind::Pdf.verify(b"%PDF-1.7\n"));
        assert!(!FileKind::Pdf.verify(b"%PDF-<html>"));
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
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
