//! Search over the columns a store indexes at queue time. The query is data; each backend turns its
//! [`filters`](SearchQuery::filters) into its own SQL, with the same column names.

use custos_audit::MicroTime;

use crate::EntryId;

/// The most entries one search returns; page on with [`SearchQuery::after`].
pub const MAX_SEARCH_LIMIT: usize = 10_000;

/// Which records to find. Every field that is set must match; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// `user.username`, exactly.
    pub user: Option<String>,
    /// `custos.session.id`, exactly.
    pub session: Option<String>,
    /// `verb`, exactly.
    pub verb: Option<String>,
    /// `objectRef.resource`, exactly.
    pub resource: Option<String>,
    /// `objectRef.namespace`, exactly.
    pub namespace: Option<String>,
    /// `auditID`, exactly.
    pub audit_id: Option<String>,
    /// `custos.recordKind`, exactly.
    pub kind: Option<String>,
    /// Received at or after (the record's `requestReceivedTimestamp`, else `stageTimestamp`).
    pub since: Option<MicroTime>,
    /// Received strictly before.
    pub until: Option<MicroTime>,
    /// Continue after this entry (in the query's order): the last id of the previous page.
    pub after: Option<EntryId>,
    /// Newest (highest id) first instead of oldest first.
    pub newest_first: bool,
    /// At most this many (capped at [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
}

impl Default for SearchQuery {
    fn default() -> SearchQuery {
        SearchQuery {
            user: None,
            session: None,
            verb: None,
            resource: None,
            namespace: None,
            audit_id: None,
            kind: None,
            since: None,
            until: None,
            after: None,
            newest_first: false,
            limit: 100,
        }
    }
}

/// A value a filter compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// A text column.
    Text(String),
    /// An integer column (ids, microseconds).
    Int(i64),
}

/// One condition: `column op value`, ready for a backend to write as SQL with a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The column (`username`, `session`, `verb`, `resource`, `namespace`, `audit_id`, `kind`, `ts`,
    /// `id`), the same in every backend's schema.
    pub column: &'static str,
    /// `=`, `>=`, `<` or `>`.
    pub op: &'static str,
    /// What to compare with.
    pub value: FilterValue,
}

impl SearchQuery {
    /// The conditions this query sets, ANDed.
    pub fn filters(&self) -> Vec<Filter> {
        let mut out = Vec::new();
        let texts = [
            ("username", &self.user),
            ("session", &self.session),
            ("verb", &self.verb),
            ("resource", &self.resource),
            ("namespace", &self.namespace),
            ("audit_id", &self.audit_id),
            ("kind", &self.kind),
        ];
        for (column, value) in texts {
            if let Some(v) = value {
                out.push(Filter {
                    column,
                    op: "=",
                    value: FilterValue::Text(v.clone()),
                });
            }
        }
        let micros = |t: &MicroTime| FilterValue::Int(to_i64(t.unix_micros()));
        if let Some(t) = &self.since {
            out.push(Filter {
                column: "ts",
                op: ">=",
                value: micros(t),
            });
        }
        if let Some(t) = &self.until {
            out.push(Filter {
                column: "ts",
                op: "<",
                value: micros(t),
            });
        }
        if let Some(after) = self.after {
            out.push(Filter {
                column: "id",
                op: if self.newest_first { "<" } else { ">" },
                value: FilterValue::Int(to_i64(after.0)),
            });
        }
        out
    }

    /// The effective limit: at least 1, at most [`MAX_SEARCH_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_SEARCH_LIMIT)
    }
}

/// Store integers are signed 64-bit; ids, indexes and microseconds stay far below 2^63.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_query() {
        let q = SearchQuery {
            user: Some("alice".into()),
            since: Some(MicroTime::from_unix_micros(5).expect("t")),
            after: Some(EntryId(9)),
            newest_first: true,
            limit: 0,
            ..SearchQuery::default()
        };
        let f = q.filters();
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].column, f[0].op), ("username", "="));
        assert_eq!(f[1].value, FilterValue::Int(5));
        assert_eq!((f[2].column, f[2].op), ("id", "<"));
        assert_eq!(q.effective_limit(), 1);
        assert!(SearchQuery::default().filters().is_empty());
    }
}
