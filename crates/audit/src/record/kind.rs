//! Open enumerations: a verifier built today must still read records a newer gateway writes, so an
//! unknown value is kept as [`RecordKind::Other`] / [`Outcome::Other`], never an error.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value this version does not know, kept as written.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            /// Parses the wire spelling; unknown values become `Other`.
            pub fn parse(text: &str) -> $name {
                match text {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Ok($name::parse(&text))
            }
        }
    };
}

open_enum! {
    /// What a record is about.
    RecordKind {
        /// A request as received, written before it is forwarded (fail-closed).
        Request = "request",
        /// A response as returned (masked), or how the request ended.
        Response = "response",
        /// A policy decision on its own (e.g. a denial that never became a request record).
        Decision = "decision",
        /// A review was opened.
        ApprovalRequested = "approval-requested",
        /// A reviewer approved.
        ApprovalGranted = "approval-granted",
        /// A reviewer rejected.
        ApprovalDenied = "approval-denied",
        /// A review lapsed unanswered.
        ApprovalExpired = "approval-expired",
        /// A just-in-time grant was created.
        GrantCreated = "grant-created",
        /// A grant was revoked.
        GrantRevoked = "grant-revoked",
        /// A grant lapsed.
        GrantExpired = "grant-expired",
        /// An agent session began, with its intent.
        SessionStarted = "session-started",
        /// An agent session ended.
        SessionEnded = "session-ended",
        /// An exec/attach stream opened.
        StreamOpened = "stream-opened",
        /// A chunk of a recorded stream (hash and size; bytes live in the recording).
        StreamChunk = "stream-chunk",
        /// An exec/attach stream closed.
        StreamClosed = "stream-closed",
        /// A port-forward opened.
        PortForwardOpened = "port-forward-opened",
        /// A port-forward closed, with byte counts.
        PortForwardClosed = "port-forward-closed",
        /// The gateway loaded a policy set.
        PolicyLoaded = "policy-loaded",
        /// A gateway instance started.
        GatewayStarted = "gateway-started",
    }
}

open_enum! {
    /// A policy decision's outcome.
    Outcome {
        /// Forward.
        Allow = "allow",
        /// Hold for review.
        Review = "review",
        /// Refuse.
        Deny = "deny",
    }
}
