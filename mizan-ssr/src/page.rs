//! The HTML page around a rendered component, with the props island the client hydrates from.

use std::fmt;

use serde::Serialize;

/// The `id` of the `<script type="application/json">` element that carries the props.
pub const PROPS_ID: &str = "mizan-props";

/// Markup rendered by a worker (or otherwise trusted): inserted into a page as is, never escaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// Wraps markup you trust; it is inserted into pages without escaping.
    pub fn from_trusted(markup: impl Into<String>) -> Self {
        Self(markup.into())
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup, as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Html {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Html> for String {
    fn from(html: Html) -> Self {
        html.0
    }
}

/// The HTML document around a component: head, a root element holding the server-rendered
/// markup (or nothing), the props island, and the client scripts.
///
/// ```
/// use mizan_ssr::{Html, PageShell};
///
/// let shell = PageShell::new("Alice's profile").with_script("/assets/profile.js");
/// let props = serde_json::json!({ "name": "</script><script>alert(1)</script>" });
///
/// // Server-rendered: the root holds the markup and the client hydrates it.
/// let page = shell.render(Some(&Html::from_trusted("<h1>Alice</h1>")), &props)?;
/// assert!(page.contains(r#"<div id="root" data-mizan-render="server"><h1>Alice</h1></div>"#));
///
/// // Fallback: the same page with an empty root; the client renders from the same props.
/// let page = shell.render(None, &props)?;
/// assert!(page.contains(r#"<div id="root" data-mizan-render="client"></div>"#));
/// assert!(page.contains(r#""\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e""#));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// The page is, in order: `<!doctype html>`, `<html lang>`, a head with `<meta charset="utf-8">`,
/// the viewport meta, the escaped `<title>` and your [`with_head`](Self::with_head) markup; then
/// a body with `<div id="root" data-mizan-render="server|client">`, the props island
/// (see [`props_island`]) and one `<script type="module" src>` per
/// [`with_script`](Self::with_script). `data-mizan-render` tells the client whether to hydrate
/// (`server`) or render from scratch (`client`).
#[derive(Clone, Debug)]
pub struct PageShell {
    title: String,
    lang: String,
    root_id: String,
    head: String,
    scripts: Vec<String>,
}

impl PageShell {
    /// A shell with this title (escaped), `lang="en"`, root id `root`, no extra head markup and
    /// no scripts.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lang: "en".to_owned(),
            root_id: "root".to_owned(),
            head: String::new(),
            scripts: Vec::new(),
        }
    }

    /// The document language (escaped).
    pub fn with_lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = lang.into();
        self
    }

    /// The `id` of the root element the component renders into (escaped).
    pub fn with_root_id(mut self, id: impl Into<String>) -> Self {
        self.root_id = id.into();
        self
    }

    /// Markup appended to the head as is, on its own line (stylesheets, preloads): trusted, never
    /// escaped.
    pub fn with_head(mut self, markup: impl AsRef<str>) -> Self {
        self.head.push_str(markup.as_ref());
        self.head.push('\n');
        self
    }

    /// A client module, loaded with `<script type="module" src>` (the URL is escaped) after the
    /// props island.
    pub fn with_script(mut self, src: impl Into<String>) -> Self {
        self.scripts.push(src.into());
        self
    }

    /// The whole page: `html` in the root (server-rendered) or an empty root when `None` (the
    /// client renders), and `props` in the island either way.
    ///
    /// Fails only when `props` cannot be serialized to JSON.
    pub fn render<P: Serialize + ?Sized>(
        &self,
        html: Option<&Html>,
        props: &P,
    ) -> Result<String, serde_json::Error> {
        let island = props_island(props)?;
        let body = html.map_or("", Html::as_str);
        let mut page = String::with_capacity(512 + self.head.len() + body.len() + island.len());
        page.push_str("<!doctype html>\n<html lang=\"");
        escape_html_into(&mut page, &self.lang);
        page.push_str(
            "\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
        );
        escape_html_into(&mut page, &self.title);
        page.push_str("</title>\n");
        page.push_str(&self.head);
        page.push_str("</head>\n<body>\n<div id=\"");
        escape_html_into(&mut page, &self.root_id);
        page.push_str("\" data-mizan-render=\"");
        page.push_str(if html.is_some() { "server" } else { "client" });
        page.push_str("\">");
        page.push_str(body);
        page.push_str("</div>\n");
        page.push_str(&island);
        page.push('\n');
        for src in &self.scripts {
            page.push_str("<script type=\"module\" src=\"");
            escape_html_into(&mut page, src);
            page.push_str("\"></script>\n");
        }
        page.push_str("</body>\n</html>\n");
        Ok(page)
    }
}

/// The props island: `<script type="application/json" id="mizan-props">JSON</script>`.
///
/// The JSON has `<`, `>`, `&`, U+2028 and U+2029 written as `\u003c`, `\u003e`, `\u0026`,
/// `\u2028` and `\u2029` (they can only occur inside JSON strings, where these escapes mean the
/// same characters). With no `<` in it, nothing in the props can close the script element
/// (`</script>`) or open an HTML comment (`<!--`), and the text stays valid JavaScript too. The
/// client reads it back with `JSON.parse(document.getElementById("mizan-props").textContent)`.
pub fn props_island<P: Serialize + ?Sized>(props: &P) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(props)?;
    let mut island = String::with_capacity(json.len() + 64);
    island.push_str("<script type=\"application/json\" id=\"");
    island.push_str(PROPS_ID);
    island.push_str("\">");
    escape_json_for_script_into(&mut island, &json);
    island.push_str("</script>");
    Ok(island)
}

fn escape_json_for_script_into(out: &mut String, json: &str) {
    let bytes = json.as_bytes();
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
        let escape = match bytes[at] {
            b'<' => Some(("\\u003c", 1)),
            b'>' => Some(("\\u003e", 1)),
            b'&' => Some(("\\u0026", 1)),
            0xE2 if bytes.get(at + 1) == Some(&0x80) => match bytes.get(at + 2) {
                Some(0xA8) => Some(("\\u2028", 3)),
                Some(0xA9) => Some(("\\u2029", 3)),
                _ => None,
            },
            _ => None,
        };
        match escape {
            Some((text, len)) => {
                // `at` starts a character (ASCII or a lead byte), so both slices are on
                // character boundaries.
                out.push_str(&json[copied..at]);
                out.push_str(text);
                at += len;
                copied = at;
            }
            None => at += 1,
        }
    }
    out.push_str(&json[copied..]);
}

fn escape_html_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// The text between the island's opening and closing tags.
    fn island_text(page: &str) -> &str {
        let open = format!("<script type=\"application/json\" id=\"{PROPS_ID}\">");
        let start = page.find(&open).expect("the island is present") + open.len();
        let end = start
            + page[start..]
                .find("</script>")
                .expect("the island is closed");
        &page[start..end]
    }

    fn hostile() -> Value {
        json!({
            "name": "</script><script>document.title='pwned'</script>",
            "comment": "<!-- <script>",
            "upper": "</SCRIPT >",
            "separators": "a\u{2028}b\u{2029}c",
            "neighbours": "\u{2027}\u{202a}€ (E2 80 A7, E2 80 AA, E2 82 AC stay as they are)",
            "amp": "&lt; & >",
            "nested": { "list": ["<", ">", "&"] }
        })
    }

    #[test]
    fn hostile_props_stay_inside_the_island_and_round_trip() {
        let props = hostile();
        for html in [None, Some(Html::from_trusted("<h1>x</h1>"))] {
            let page = PageShell::new("t").render(html.as_ref(), &props).unwrap();
            let text = island_text(&page);
            // The HTML tokenizer leaves script data only at `</script`, and enters the
            // escaped state only at `<!--`: both need a `<`, and the island has none.
            assert!(
                !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
                "{text}"
            );
            // The island ends exactly where the props end: one island, closed once.
            assert_eq!(page.matches("<script type=\"application/json\"").count(), 1);
            let parsed: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, props);
            assert!(text.contains("\u{2027}\u{202a}€"));
        }
    }

    #[test]
    fn the_fallback_is_the_same_page_with_an_empty_root() {
        let shell = PageShell::new("Profile").with_script("/app.js");
        let props = json!({ "id": 1 });
        let server = shell
            .render(Some(&Html::from_trusted("<p>hi</p>")), &props)
            .unwrap();
        let fallback = shell.render(None, &props).unwrap();
        assert_eq!(
            server.replace(
                "data-mizan-render=\"server\"><p>hi</p>",
                "data-mizan-render=\"client\">"
            ),
            fallback
        );
        assert!(fallback.contains("<div id=\"root\" data-mizan-render=\"client\"></div>"));
        assert!(fallback.contains("<script type=\"module\" src=\"/app.js\"></script>"));
    }

    #[test]
    fn title_attributes_and_script_urls_are_escaped() {
        let page = PageShell::new("<b>\"Tom & Jerry\"</b>")
            .with_lang("en\"><script>")
            .with_root_id("a\"b")
            .with_script("/x.js\"><script>alert(1)</script>")
            .with_head("<link rel=\"stylesheet\" href=\"/s.css\">")
            .render(None, &json!({}))
            .unwrap();
        assert!(page.contains("<title>&lt;b&gt;&quot;Tom &amp; Jerry&quot;&lt;/b&gt;</title>"));
        assert!(page.contains("<html lang=\"en&quot;&gt;&lt;script&gt;\">"));
        assert!(page.contains("<div id=\"a&quot;b\""));
        assert!(page.contains("src=\"/x.js&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(page.contains("<link rel=\"stylesheet\" href=\"/s.css\">\n</head>"));
        // Only the shell's own script elements: the island and the one module.
        assert_eq!(page.matches("<script").count(), 2);
    }

    #[test]
    fn props_that_do_not_serialize_are_an_error() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1);
        assert!(PageShell::new("t").render(None, &map).is_err());
    }
}
