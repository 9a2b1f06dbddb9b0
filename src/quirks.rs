//! Where the test bed's AWS (moto) or S3 answers differently from what the SDK reads,
//! in one place:
//! - moto wraps IAM-enforcement errors in `<ErrorResponse><Errors><Error>`, which the
//!   SDK's STS and S3 error parsers do not read: the code and message come from the
//!   raw body ([`xml_field`], used by `sts`, `sink` and the doctor);
//! - moto answers GetBucketVersioning on a never-versioned bucket with a differently
//!   named empty document the SDK refuses: the doctor reads `Status` and `MfaDelete`
//!   from the raw answer ([`xml_field`]);
//! - moto checks a signature against its own re-encoding of a form body, in which a
//!   space is `+`, while the SDK writes `%20`: SNS messages are sent with `+`
//!   ([`FormSpaces`]); STS session tag values write spaces as `_`
//!   (`policy::tag_value`).
//!
//! Each is harmless against real AWS.

/// The text of the first `<name>` element of an XML document (an error body, say).
pub fn xml_field(body: &str, name: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if !inside && e.name().as_ref() == name.as_bytes() => {
                inside = true;
            }
            Ok(Event::Text(t)) if inside => text.push_str(&t.decode().ok()?),
            Ok(Event::End(e)) if inside && e.name().as_ref() == name.as_bytes() => {
                return Some(text.trim().to_string());
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

/// Writes spaces in a query-protocol form body as `+` instead of `%20`, before the
/// request is signed. Both are the same form to SNS; but STS/SNS-compatible servers
/// that check the signature against their own re-encoding of the form (moto, the test
/// bed's AWS) use `+`, and refuse every message with a space otherwise.
#[derive(Debug)]
pub struct FormSpaces;

impl aws_sdk_sns::config::Intercept for FormSpaces {
    fn name(&self) -> &'static str {
        "FormSpaces"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_sns::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_sdk_sns::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sns::config::ConfigBag,
    ) -> Result<(), aws_sdk_sns::error::BoxError> {
        let request = context.request_mut();
        let Some(body) = request.body().bytes() else {
            return Ok(());
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(());
        };
        if text.contains("%20") {
            let form = text.replace("%20", "+");
            let len = form.len();
            *request.body_mut() = aws_smithy_types::body::SdkBody::from(form);
            request
                .headers_mut()
                .insert("content-length", len.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_fields_are_found_or_not() {
        assert_eq!(
            xml_field("<a><Code> X </Code></a>", "Code").as_deref(),
            Some("X")
        );
        assert_eq!(xml_field("<a></a>", "Code"), None);
        let moto = "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            xml_field(moto, "Code").as_deref(),
            Some("InvalidClientTokenId")
        );
        assert_eq!(xml_field("<a><Code>x", "Code"), None);
    }
}
