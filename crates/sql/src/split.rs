//! Splits a simple-protocol query string into its statements' texts, at
//! the semicolons PostgreSQL's lexer would end a statement on: not inside
//! a string (`'..'`, `E'..'` with backslash escapes, `$tag$..$tag$`), a
//! quoted identifier, a comment (`-- ..`, nested `/* .. */`) or
//! parentheses. Each statement can then go through the recognizers that
//! look at a whole statement's text (SPLIT AT, SHOW RANGES, AS OF SYSTEM
//! TIME, COPY, VACUUM) before the SQL parser.

/// The statements of `sql`, trimmed, without their `;` or the comments
/// before them. Pieces holding only whitespace and comments are left
/// out, so `"SELECT 1; -- done"` is one statement and `""` none.
pub fn statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    // Whether the current piece has anything besides whitespace/comments.
    let mut content = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ends = c == b';' && depth == 0;
        if !content && !ends && !c.is_ascii_whitespace() && !starts_comment(b, i) {
            // The statement starts here, after any leading comments.
            content = true;
            start = i;
        }
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        nest += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(b[i - 2]));
                i = end_of_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = end_of_quoted(b, i, b'"', false),
            b'$' if i == 0 || !is_ident_byte(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag_len) => {
                    let tag = &b[i..i + tag_len];
                    let body = i + tag_len;
                    i = b[body..]
                        .windows(tag_len)
                        .position(|w| w == tag)
                        .map_or(b.len(), |p| body + p + tag_len);
                }
                None => i += 1,
            },
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b';' if ends => {
                if content {
                    out.push(sql[start..i].trim());
                }
                i += 1;
                content = false;
                continue;
            }
            _ => i += 1,
        }
    }
    if content {
        out.push(sql[start..].trim());
    }
    out
}

fn starts_comment(b: &[u8], i: usize) -> bool {
    matches!(
        (b[i], b.get(i + 1)),
        (b'-', Some(b'-')) | (b'/', Some(b'*'))
    )
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The index just past the quoted text opening at `open` (a doubled
/// quote is one quote; with `escapes`, a backslash escapes the next byte).
fn end_of_quoted(b: &[u8], open: usize, quote: u8, escapes: bool) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The length of the dollar-quote tag (`$$`, `$body$`) opening at `at`;
/// `None` if `$` starts something else (a parameter such as `$1`).
fn dollar_tag(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i < b.len() && b[i] != b'$' {
        let ok = b[i].is_ascii_alphabetic()
            || b[i] == b'_'
            || b[i] >= 0x80
            || (i > at + 1 && b[i].is_ascii_digit());
        if !ok {
            return None;
        }
        i += 1;
    }
    (i < b.len()).then_some(i + 1 - at)
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn splits_at_semicolons_outside_quotes_comments_and_parentheses() {
        assert_eq!(statements("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(statements("  ;; "), Vec::<&str>::new());
        assert_eq!(statements("SELECT 1; -- the end"), ["SELECT 1"]);
        assert_eq!(
            statements("SELECT 'a;b', \"c;\"\"d\"; SELECT 2"),
            ["SELECT 'a;b', \"c;\"\"d\"", "SELECT 2"]
        );
        assert_eq!(statements("SELECT 'it''s;'; x"), ["SELECT 'it''s;'", "x"]);
        assert_eq!(
            statements("-- one;\n/* two; */ SHOW x; /**/ -- three\n SELECT 1 -- four"),
            ["SHOW x", "SELECT 1 -- four"]
        );
        assert_eq!(statements(r"SELECT E'\';'; x"), [r"SELECT E'\';'", "x"]);
        // Without E, a backslash is an ordinary character.
        assert_eq!(statements(r"SELECT '\'; x"), [r"SELECT '\'", "x"]);
        assert_eq!(
            statements("SELECT 1 /* a; /* nested; */ b; */ ; SELECT 2 -- c;\n; SELECT 3"),
            [
                "SELECT 1 /* a; /* nested; */ b; */",
                "SELECT 2 -- c;",
                "SELECT 3"
            ]
        );
        assert_eq!(
            statements("SELECT $$a;b$$, $t$ $$; $t$; SELECT $1"),
            ["SELECT $$a;b$$, $t$ $$; $t$", "SELECT $1"]
        );
        assert_eq!(statements("SELECT a$b; c"), ["SELECT a$b", "c"]);
        assert_eq!(statements("SELECT (1; 2); x"), ["SELECT (1; 2)", "x"]);
        assert_eq!(
            statements("SELECT 'unterminated; x"),
            ["SELECT 'unterminated; x"]
        );
        assert_eq!(
            statements("ALTER TABLE t SPLIT AT VALUES (1); SHOW RANGES FROM TABLE t"),
            [
                "ALTER TABLE t SPLIT AT VALUES (1)",
                "SHOW RANGES FROM TABLE t"
            ]
        );
    }
}
