//! [`error_chain`]: an error and its causes on one line.

/// An error and its causes, `a: b: c`, leaving out a cause whose text is already there (many errors
/// repeat their source in their own message). reqwest's own message alone ("error sending request")
/// says little; the causes say why.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
