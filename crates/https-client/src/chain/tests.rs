use std::fmt;

use super::error_chain;

/// An error with a message and an optional cause.
#[derive(Debug)]
struct Layer(&'static str, Option<Box<Layer>>);

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|l| l as _)
    }
}

fn layers(texts: &[&'static str]) -> Layer {
    texts
        .iter()
        .rev()
        .fold(None, |cause, text| Some(Layer(text, cause.map(Box::new))))
        .expect("at least one layer")
}

#[test]
fn an_error_alone_is_its_message() {
    assert_eq!(error_chain(&layers(&["refused"])), "refused");
}

#[test]
fn causes_follow_with_colons() {
    let e = layers(&["error sending request", "client error (Connect)", "refused"]);
    assert_eq!(
        error_chain(&e),
        "error sending request: client error (Connect): refused"
    );
}

#[test]
fn a_cause_already_said_is_skipped() {
    let e = layers(&[
        "tls handshake: bad certificate",
        "bad certificate",
        "expired",
    ]);
    assert_eq!(error_chain(&e), "tls handshake: bad certificate: expired");
}
