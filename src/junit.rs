//! JUnit XML reports: one test suite of test cases, each passed (with an optional
//! system-out note), failed or skipped, written with quick-xml (which escapes). CI
//! systems (GitHub Actions reporters, GitLab's `artifacts:reports:junit`, Jenkins) read
//! this format; `breakglass doctor --format junit` is its user.

use std::time::{Duration, SystemTime};

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

/// How one test case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// `message` is the one-line summary; `text` the details.
    Failed {
        message: String,
        text: String,
    },
    Skipped {
        message: String,
    },
}

/// One test case.
#[derive(Debug, Clone)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
    /// A note shown with the case (`<system-out>`), if any.
    pub system_out: Option<String>,
}

/// One suite of cases, as a whole report.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub timestamp: SystemTime,
    pub time: Duration,
    /// `<properties>`: name, value.
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

/// Text XML 1.0 can hold: other control characters become U+FFFD (quick-xml escapes
/// markup, but no escape makes them legal).
fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

impl Suite {
    /// The report as an XML document (`<testsuites>` holding this one `<testsuite>`).
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail.
        let _ = self.write(&mut w);
        let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
        out.push('\n');
        out
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        let count = |f: fn(&Outcome) -> bool| {
            self.cases
                .iter()
                .filter(|c| f(&c.outcome))
                .count()
                .to_string()
        };
        let tests = self.cases.len().to_string();
        let failures = count(|o| matches!(o, Outcome::Failed { .. }));
        let skipped = count(|o| matches!(o, Outcome::Skipped { .. }));
        let time = format!("{:.3}", self.time.as_secs_f64());
        let timestamp = crate::clock::rfc3339(self.timestamp);
        let name = xml_text(&self.name);
        let totals = [
            ("name", name.as_str()),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("skipped", skipped.as_str()),
            ("time", time.as_str()),
        ];
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites")
            .with_attributes(totals)
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attributes(totals)
                    .with_attribute(("timestamp", timestamp.as_str()))
                    .write_inner_content(|w| {
                        if !self.properties.is_empty() {
                            w.create_element("properties").write_inner_content(|w| {
                                for (k, v) in &self.properties {
                                    w.create_element("property")
                                        .with_attribute(("name", xml_text(k).as_str()))
                                        .with_attribute(("value", xml_text(v).as_str()))
                                        .write_empty()?;
                                }
                                Ok(())
                            })?;
                        }
                        for case in &self.cases {
                            write_case(w, case)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    }
}

fn write_case(w: &mut Writer<Vec<u8>>, case: &Case) -> std::io::Result<()> {
    let el = w
        .create_element("testcase")
        .with_attribute(("classname", xml_text(&case.classname).as_str()))
        .with_attribute(("name", xml_text(&case.name).as_str()));
    if case.outcome == Outcome::Passed && case.system_out.is_none() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        match &case.outcome {
            Outcome::Passed => {}
            Outcome::Failed { message, text } => {
                w.create_element("failure")
                    .with_attribute(("message", xml_text(message).as_str()))
                    .with_attribute(("type", "failure"))
                    .write_text_content(BytesText::new(&xml_text(text)))?;
            }
            Outcome::Skipped { message } => {
                w.create_element("skipped")
                    .with_attribute(("message", xml_text(message).as_str()))
                    .write_empty()?;
            }
        }
        if let Some(out) = &case.system_out {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_text(out)))?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(cases: Vec<Case>) -> Suite {
        Suite {
            name: "s".into(),
            timestamp: SystemTime::UNIX_EPOCH,
            time: Duration::from_millis(1500),
            properties: vec![("project".into(), "/p & <q>".into())],
            cases,
        }
    }

    #[test]
    fn markup_in_text_and_attributes_is_escaped_and_control_characters_replaced() {
        let xml = suite(vec![Case {
            classname: "c".into(),
            name: "a.b".into(),
            outcome: Outcome::Failed {
                message: "bucket \"x\" <off> & \u{1b}[31mred".into(),
                text: "fix: a < b && c".into(),
            },
            system_out: None,
        }])
        .to_xml();
        assert!(
            xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{xml}"
        );
        assert!(xml.contains("value=\"/p &amp; &lt;q&gt;\""), "{xml}");
        assert!(
            xml.contains("message=\"bucket &quot;x&quot; &lt;off&gt; &amp; \u{FFFD}[31mred\""),
            "{xml}"
        );
        assert!(
            xml.contains(">fix: a &lt; b &amp;&amp; c</failure>"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'), "{xml}");
        assert!(
            xml.contains("tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.500\""),
            "{xml}"
        );
    }

    #[test]
    fn counts_follow_the_outcomes() {
        let case = |name: &str, outcome| Case {
            classname: "c".into(),
            name: name.into(),
            outcome,
            system_out: Some("note".into()),
        };
        let xml = suite(vec![
            case("p", Outcome::Passed),
            case(
                "s",
                Outcome::Skipped {
                    message: "m".into(),
                },
            ),
            case(
                "f",
                Outcome::Failed {
                    message: "m".into(),
                    text: "t".into(),
                },
            ),
        ])
        .to_xml();
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert_eq!(
            xml.matches("<system-out>note</system-out>").count(),
            3,
            "{xml}"
        );
    }
}
