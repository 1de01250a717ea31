//! Text documents (receipts) as PDF, generated in Rust with pdf-writer: one A4 page per 48
//! lines, the standard Helvetica font (WinAnsi; characters outside it print as '?').

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const LINES_PER_PAGE: usize = 48;

/// A line of a receipt document: text, its size, whether bold.
#[derive(Debug, Clone)]
pub struct TextLine {
    pub text: String,
    pub size: f32,
    pub bold: bool,
}

impl TextLine {
    pub fn normal(text: impl Into<String>) -> Self {
        Self { text: text.into(), size: 10.0, bold: false }
    }
    pub fn bold(text: impl Into<String>, size: f32) -> Self {
        Self { text: text.into(), size, bold: true }
    }
}

fn win_ansi(s: &str) -> Vec<u8> {
    s.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' }).collect()
}

/// Lays `lines` out top to bottom over as many pages as needed.
pub fn document(title: &str, lines: &[TextLine]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut next = 6;
    let chunks: Vec<&[TextLine]> =
        if lines.is_empty() { vec![&[][..]] } else { lines.chunks(LINES_PER_PAGE).collect() };
    let mut page_ids = Vec::new();
    for chunk in &chunks {
        let page = Ref::new(next);
        let content = Ref::new(next + 1);
        next += 2;
        page_ids.push(page);
        let mut c = Content::new();
        let mut y = HEIGHT - 56.0;
        for line in *chunk {
            c.begin_text();
            c.set_font(Name(if line.bold { b"F2" } else { b"F1" }), line.size);
            c.next_line(48.0, y);
            c.show(Str(&win_ansi(&line.text)));
            c.end_text();
            y -= line.size + 5.0;
        }
        pdf.stream(content, &c.finish());
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        p.parent(tree);
        p.contents(content);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
        fonts.finish();
        resources.finish();
    }
    pdf.catalog(catalog).pages(tree);
    let count = i32::try_from(page_ids.len()).unwrap_or(i32::MAX);
    pdf.pages(tree).kids(page_ids).count(count);
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info).title(pdf_writer::TextStr(title)).producer(pdf_writer::TextStr("Cashvio"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produces_a_pdf_with_pages() {
        let lines: Vec<TextLine> = (0..100).map(|i| TextLine::normal(format!("line {i} café"))).collect();
        let bytes = document("Receipt", &lines);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/Count 3"), "100 lines fill three pages");
        assert!(text.contains("(line 99 caf?)"), "non-WinAnsi characters are replaced");
    }
}
