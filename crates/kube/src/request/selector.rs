//! Just enough of the apimachinery selector parsers to know what `NewRequestInfo` knows: whether a
//! field or label selector parses, and which name a `metadata.name` field selector pins.
//!
//! A selector that fails to parse makes the apiserver drop the name it would otherwise take from
//! the field selector, so validity has to match `fields.ParseSelector` and `labels.Parse` exactly.

/// A selector the apiserver would refuse to parse.
pub(super) struct InvalidSelector;

/// `strconv.ParseInt(s, 10, 64)` succeeds: an optional sign, then decimal digits, in range.
pub(super) fn is_go_int64(value: &[u8]) -> bool {
    // Rust's `i64::from_str` takes exactly the same language (sign, digits, no `_`, no spaces).
    std::str::from_utf8(value).is_ok_and(|s| s.parse::<i64>().is_ok())
}

/// Parses like `fields.ParseSelector` and returns what `RequiresExactMatch("metadata.name")` would.
///
/// Terms are sorted as strings before parsing, so with two `metadata.name` terms the
/// alphabetically first one names the request.
pub(super) fn field_selector_exact_name(selector: &str) -> Result<Option<String>, InvalidSelector> {
    let mut terms = split_terms(selector);
    terms.sort_unstable();
    let mut name = None;
    for term in terms.into_iter().filter(|term| !term.is_empty()) {
        let (field, operator, value) = split_term(term).ok_or(InvalidSelector)?;
        let value = unescape_value(value)?;
        if name.is_none() && operator != "!=" && field == "metadata.name" {
            name = Some(value);
        }
    }
    Ok(name)
}

/// Splits on commas not escaped by a backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.extend(selector.get(start..i));
            start = i + 1;
        }
    }
    terms.extend(selector.get(start..));
    terms
}

/// The first operator occurrence, trying `!=`, `==` then `=` at each position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = term.get(i..)?;
        ["!=", "==", "="].into_iter().find_map(|operator| {
            let value = rest.strip_prefix(operator)?;
            Some((term.get(..i)?, operator, value))
        })
    })
}

/// Removes backslash escapes; `,` and `=` must be escaped and only `\`, `,`, `=` may be.
fn unescape_value(value: &str) -> Result<String, InvalidSelector> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        match (escaped, c) {
            (true, '\\' | ',' | '=') => {
                out.push(c);
                escaped = false;
            }
            (true, _) | (false, ',' | '=') => return Err(InvalidSelector),
            (false, '\\') => escaped = true,
            (false, _) => out.push(c),
        }
    }
    if escaped {
        return Err(InvalidSelector);
    }
    Ok(out)
}

/// True when `labels.Parse` accepts the selector.
pub(super) fn is_valid_label_selector(selector: &str) -> bool {
    Parser::new(selector.as_bytes()).parse().is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    End,
    ClosePar,
    Comma,
    Not,
    DoubleEquals,
    Equals,
    Greater,
    Identifier,
    In,
    Less,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(literal: &[u8]) -> Option<Token> {
    Some(match literal {
        b")" => Token::ClosePar,
        b"," => Token::Comma,
        b"!" => Token::Not,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::Greater,
        b"in" => Token::In,
        b"<" => Token::Less,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// The label selector lexer. Like Go's, it reads a NUL byte as the end of input.
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Token, &'a [u8]) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::End, b"");
        }
        self.unread();
        if is_special(ch) {
            (self.scan_special(), b"")
        } else {
            self.scan_identifier_or_keyword()
        }
    }

    fn scan_identifier_or_keyword(&mut self) -> (Token, &'a [u8]) {
        let start = self.pos;
        let end = loop {
            let before = self.pos;
            let ch = self.read();
            if ch == 0 {
                break before;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break self.pos;
            }
        };
        let literal = self.s.get(start..end).unwrap_or_default();
        (keyword(literal).unwrap_or(Token::Identifier), literal)
    }

    /// The longest operator: extends while the longer spelling is still an operator.
    fn scan_special(&mut self) -> Token {
        let start = self.pos;
        let mut last = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            match keyword(self.s.get(start..self.pos).unwrap_or_default()) {
                Some(token) => last = Some(token),
                None if last.is_some() => {
                    self.unread();
                    break;
                }
                None => {}
            }
        }
        last.unwrap_or(Token::Error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
    Exists,
    DoesNotExist,
}

/// Whether `in` and `notin` are operators (after a key) or plain identifiers (values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// The recursive-descent parser of `labels.Parse`, answering only "does it parse".
struct Parser<'a> {
    items: Vec<(Token, &'a [u8])>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(selector: &'a [u8]) -> Self {
        let mut lexer = Lexer {
            s: selector,
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::End {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a [u8]) {
        let (token, literal) = self
            .items
            .get(self.position)
            .copied()
            .unwrap_or((Token::End, b""));
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'a [u8]) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Option<()> {
        loop {
            match self.lookahead(Context::Values).0 {
                Token::Identifier | Token::Not => {
                    self.requirement()?;
                    match self.consume(Context::Values).0 {
                        Token::End => return Some(()),
                        Token::Comma => {
                            let next = self.lookahead(Context::Values).0;
                            if !matches!(next, Token::Identifier | Token::Not) {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                Token::End => return Some(()),
                _ => return None,
            }
        }
    }

    fn requirement(&mut self) -> Option<()> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(operator) = inferred {
            return is_valid_requirement(key, operator, &[]).then_some(());
        }
        let operator = self.operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        is_valid_requirement(key, operator, &values).then_some(())
    }

    /// A key, with `!key` meaning does-not-exist and a bare `key` meaning exists.
    fn key_and_inferred_operator(&mut self) -> Option<(&'a [u8], Option<Operator>)> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::Not {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier || !is_qualified_name(literal) {
            return None;
        }
        let next = self.lookahead(Context::Values).0;
        if matches!(next, Token::End | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Some((literal, operator))
    }

    fn operator(&mut self) -> Option<Operator> {
        Some(match self.consume(Context::KeyAndOperator).0 {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::Greater => Operator::Greater,
            Token::Less => Operator::Less,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return None,
        })
    }

    /// `(a,b,c)`, where empty entries (`(,a)`, `()`) are the empty value.
    fn values(&mut self) -> Option<Vec<&'a [u8]>> {
        if self.consume(Context::Values).0 != Token::OpenPar {
            return None;
        }
        match self.lookahead(Context::Values).0 {
            Token::Identifier | Token::Comma => {
                let values = self.identifiers()?;
                (self.consume(Context::Values).0 == Token::ClosePar).then_some(values)
            }
            Token::ClosePar => {
                self.consume(Context::Values);
                Some(vec![b""])
            }
            _ => None,
        }
    }

    fn identifiers(&mut self) -> Option<Vec<&'a [u8]>> {
        let mut values: Vec<&'a [u8]> = Vec::new();
        loop {
            match self.consume(Context::Values) {
                (Token::Identifier, literal) => {
                    values.push(literal);
                    match self.lookahead(Context::Values).0 {
                        Token::Comma => {}
                        Token::ClosePar => return Some(values),
                        _ => return None,
                    }
                }
                (Token::Comma, _) => {
                    if values.is_empty() {
                        values.push(b"");
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosePar => {
                            values.push(b"");
                            return Some(values);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            values.push(b"");
                        }
                        _ => {}
                    }
                }
                _ => return None,
            }
        }
    }

    fn exact_value(&mut self) -> Option<Vec<&'a [u8]>> {
        if matches!(self.lookahead(Context::Values).0, Token::End | Token::Comma) {
            return Some(vec![b""]);
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Some(vec![literal]),
            _ => None,
        }
    }
}

/// `labels.NewRequirement`'s checks.
fn is_valid_requirement(key: &[u8], operator: Operator, values: &[&[u8]]) -> bool {
    let arity = match operator {
        Operator::In | Operator::NotIn => !values.is_empty(),
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => values.len() == 1,
        Operator::Exists | Operator::DoesNotExist => values.is_empty(),
        Operator::Greater | Operator::Less => {
            values.len() == 1 && values.iter().all(|v| is_go_int64(v))
        }
    };
    arity && is_qualified_name(key) && values.iter().all(|v| is_label_value(v))
}

/// `validation.IsQualifiedName`: `[dns-subdomain/]name`, name at most 63 characters.
fn is_qualified_name(s: &[u8]) -> bool {
    let mut parts = s.split(|b| *b == b'/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, None) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return false,
    };
    let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && is_dns1123_subdomain(p));
    prefix_ok && !name.is_empty() && name.len() <= 63 && is_qualified_name_part(name)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &[u8]) -> bool {
    let edges_ok = matches!((s.first(), s.last()), (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric());
    edges_ok
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `validation.IsValidLabelValue`: empty, or a qualified name part of at most 63 characters.
fn is_label_value(s: &[u8]) -> bool {
    s.len() <= 63 && (s.is_empty() || is_qualified_name_part(s))
}

/// `validation.IsDNS1123Subdomain`: dot-separated lowercase DNS labels, at most 253 characters.
fn is_dns1123_subdomain(s: &[u8]) -> bool {
    let is_label = |label: &[u8]| {
        let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        matches!((label.first(), label.last()), (Some(f), Some(l)) if lower_alnum(f) && lower_alnum(l))
            && label.iter().all(|b| lower_alnum(b) || *b == b'-')
    };
    s.len() <= 253 && s.split(|b| *b == b'.').all(is_label)
}

#[cfg(test)]
mod tests;
