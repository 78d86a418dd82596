//! The charts' SVG text ([`crate::chart`]) as a tree of elements, so that the page can hand it
//! to Yew as nodes: a redraw then changes the attributes and texts that differ (a path's `d`,
//! a tick's label) instead of parsing the whole chart again into new elements. Every element
//! a redraw throws away is garbage in the renderer's DOM heap, which keeps the memory it grew
//! to; a chart redrawn at every report grew it by ~10 MiB a minute. Only the subset of XML that
//! `chart.rs` writes is read: elements, attributes in double quotes, text, and the entities
//! `chart::escape` writes (and `&#39;`).

/// An element: its tag, its attributes in order, and its children.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The tag name (`svg`, `path`, ...).
    pub tag: String,
    /// `(name, value)` pairs, values unescaped.
    pub attributes: Vec<(String, String)>,
    /// Child elements and text, in order.
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A nested element.
    Element(Element),
    /// Text, unescaped.
    Text(String),
}

/// Reads one element (with its descendants) from `text`, or says where it is not the SVG
/// subset that `chart.rs` writes.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut at = 0;
    let element = element(text, &mut at)?;
    if at != text.len() {
        return Err(format!("text after the root element at byte {at}"));
    }
    Ok(element)
}

fn element(s: &str, at: &mut usize) -> Result<Element, String> {
    let rest = &s[*at..];
    if !rest.starts_with('<') {
        return Err(format!("expected '<' at byte {at}"));
    }
    let name_end = rest[1..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .ok_or(format!("an unfinished tag at byte {at}"))?
        + 1;
    let tag = rest[1..name_end].to_string();
    *at += name_end;
    let mut attributes = Vec::new();
    loop {
        let rest = &s[*at..];
        let trimmed = rest.trim_start();
        *at += rest.len() - trimmed.len();
        if let Some(after) = trimmed.strip_prefix("/>") {
            *at = s.len() - after.len();
            return Ok(Element {
                tag,
                attributes,
                children: Vec::new(),
            });
        }
        if trimmed.starts_with('>') {
            *at += 1;
            break;
        }
        let eq = trimmed
            .find("=\"")
            .ok_or(format!("an attribute without a quoted value at byte {at}"))?;
        let close = trimmed[eq + 2..]
            .find('"')
            .ok_or(format!("an unclosed attribute value at byte {at}"))?;
        attributes.push((
            trimmed[..eq].to_string(),
            unescape(&trimmed[eq + 2..eq + 2 + close]),
        ));
        *at += eq + 2 + close + 1;
    }
    let mut children = Vec::new();
    let end = format!("</{tag}>");
    loop {
        let rest = &s[*at..];
        if let Some(after) = rest.strip_prefix(end.as_str()) {
            *at = s.len() - after.len();
            return Ok(Element {
                tag,
                attributes,
                children,
            });
        }
        if rest.starts_with("</") || rest.is_empty() {
            return Err(format!("<{tag}> not closed at byte {at}"));
        }
        if rest.starts_with('<') {
            children.push(Node::Element(element(s, at)?));
        } else {
            let len = rest.find('<').unwrap_or(rest.len());
            children.push(Node::Text(unescape(&rest[..len])));
            *at += len;
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{Chart, PALETTE, Series, escape, heatmap_svg};

    /// Writes the tree back as `chart.rs` writes SVG (for the round trip).
    fn write(e: &Element) -> String {
        let mut s = format!("<{}", e.tag);
        for (k, v) in &e.attributes {
            s.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        if e.children.is_empty() {
            return s + "/>";
        }
        s.push('>');
        for c in &e.children {
            match c {
                Node::Element(e) => s.push_str(&write(e)),
                Node::Text(t) => s.push_str(&escape(t)),
            }
        }
        s + &format!("</{}>", e.tag)
    }

    #[test]
    fn a_chart_and_a_heatmap_read_back_to_the_same_text() {
        let chart = Chart {
            title: "Loss <&> \"quoted\"".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![Series {
                name: "a & b".into(),
                color: PALETTE[0].into(),
                points: (0..50).map(|i| (i as f64, 2.3 - i as f64 * 0.01)).collect(),
            }],
            y_range: None,
            reference: Some((2.3, "ln 10".into())),
            percent: false,
        };
        let rows = vec![
            ("step 0".to_string(), vec![0.1, 0.5]),
            ("step 20".into(), vec![0.2, 0.9]),
        ];
        for svg in [chart.to_svg(), heatmap_svg("Two clocks", &rows, 0.1)] {
            let tree = parse(&svg).unwrap();
            assert_eq!(tree.tag, "svg");
            assert_eq!(write(&tree), svg);
        }
        let tree = parse(&chart.to_svg()).unwrap();
        let Node::Element(title) = &tree.children[0] else {
            panic!("{tree:?}")
        };
        assert_eq!(title.children, [Node::Text("Loss <&> \"quoted\"".into())]);
    }

    #[test]
    fn text_that_is_not_the_subset_is_an_error() {
        for bad in [
            "",
            "svg",
            "<svg",
            "<svg><g></svg>",
            "<svg x=1/>",
            "<svg/>tail",
            "<svg x=\"1/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("<svg a=\"1\"><g/>hi</svg>").unwrap().children,
            [
                Node::Element(Element {
                    tag: "g".into(),
                    attributes: vec![],
                    children: vec![]
                }),
                Node::Text("hi".into())
            ]
        );
    }
}
