//! Byte-level MySQL tokenizer for the classifier's fast path.
//!
//! Why hand-written: sqlparser costs 1–77 µs per statement, while routing
//! only needs keywords outside strings and comments. This lexer works on raw
//! bytes (COM_QUERY may be non-UTF-8), never allocates and never panics: every
//! index is checked, unterminated constructs just set `broken`.

use super::classify::Hint;

/// One significant token; trivia (whitespace, comments) is never returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// Bare identifier or keyword.
    Word(&'a [u8]),
    /// Numeric literal, including hex `0x..` and exponents.
    Num,
    /// String literal; inner bytes, escapes left as written.
    Str(&'a [u8]),
    /// Backtick-quoted identifier; inner bytes, doubled backticks as written.
    Quoted(&'a [u8]),
    /// `@name` / `@'name'` / `` @`name` ``: the name bytes.
    UserVar(&'a [u8]),
    /// `@@[scope.]name`: scope prefix (may be empty) and name bytes.
    SysVar(&'a [u8], &'a [u8]),
    /// `:=`
    Assign,
    /// Any other single byte.
    Punct(u8),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Inside `/*! ... */`: the content is code, its closing `*/` is trivia.
    in_exec: bool,
    /// Strongest hint seen in a comment (Primary beats Replica).
    pub hint: Option<Hint>,
    /// An unterminated string, identifier or comment was met.
    pub broken: bool,
    /// Byte ranges of executable-comment markers (`/*!50100`, `*/`), only
    /// recorded when asked: the slow path blanks them before sqlparser.
    pub markers: Option<Vec<(usize, usize)>>,
}

#[inline]
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            in_exec: false,
            hint: None,
            broken: false,
            markers: None,
        }
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    /// Next significant token, or None at the end of the input.
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let start = self.pos;
        let b = *self.src.get(start)?;
        let tok = match b {
            b'\'' | b'"' => Tok::Str(self.quoted(b)),
            b'`' => Tok::Quoted(self.quoted(b'`')),
            b'@' => self.variable(),
            b':' if self.at(start + 1) == b'=' => {
                self.pos += 2;
                Tok::Assign
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.at(start + 1).is_ascii_digit() => self.number(),
            _ if is_word_byte(b) => Tok::Word(self.word()),
            _ => {
                self.pos += 1;
                Tok::Punct(b)
            }
        };
        Some(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn skip_trivia(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => self.line_comment(self.pos + 1),
                // MySQL: `--` starts a comment only when followed by a space
                // or control character (`1--1` is arithmetic).
                b'-' if self.at(self.pos + 1) == b'-' && self.at(self.pos + 2) <= b' ' => {
                    self.line_comment(self.pos + 2)
                }
                b'/' if self.at(self.pos + 1) == b'*' => self.block_comment(),
                b'*' if self.in_exec && self.at(self.pos + 1) == b'/' => {
                    self.mark(self.pos, self.pos + 2);
                    self.in_exec = false;
                    self.pos += 2;
                }
                _ => return,
            }
        }
    }

    fn line_comment(&mut self, body: usize) {
        let rest = self.src.get(body..).unwrap_or(&[]);
        let len = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
        self.note_hint(&rest[..len]);
        self.pos = body + len;
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        // `/*!` (MySQL) and `/*M!` (MariaDB) hold code, optionally versioned.
        let bang = match (self.at(start + 2), self.at(start + 3)) {
            (b'!', _) => Some(start + 3),
            (b'M', b'!') => Some(start + 4),
            _ => None,
        };
        if let Some(mut p) = bang {
            let digits_end = p + 6;
            while p < digits_end && self.at(p).is_ascii_digit() {
                p += 1;
            }
            self.mark(start, p);
            self.in_exec = true;
            self.pos = p;
            return;
        }
        let body = start + 2;
        let rest = self.src.get(body..).unwrap_or(&[]);
        match rest.windows(2).position(|w| w == b"*/") {
            Some(len) => {
                self.note_hint(&rest[..len]);
                self.pos = body + len + 2;
            }
            None => {
                self.broken = true;
                self.pos = self.src.len();
            }
        }
    }

    fn mark(&mut self, a: usize, b: usize) {
        if let Some(m) = self.markers.as_mut() {
            m.push((a, b));
        }
    }

    /// Atlas `/*master*/` and Gantry `/* gantry:primary|replica */`.
    fn note_hint(&mut self, body: &[u8]) {
        let t = body.trim_ascii();
        let found = if t.eq_ignore_ascii_case(b"master") {
            Some(Hint::Primary)
        } else if t.len() > 7 && t[..7].eq_ignore_ascii_case(b"gantry:") {
            let v = t[7..].trim_ascii();
            if v.eq_ignore_ascii_case(b"primary") || v.eq_ignore_ascii_case(b"master") {
                Some(Hint::Primary)
            } else if v.eq_ignore_ascii_case(b"replica") || v.eq_ignore_ascii_case(b"slave") {
                Some(Hint::Replica)
            } else {
                None
            }
        } else {
            None
        };
        if found.is_some() && self.hint != Some(Hint::Primary) {
            self.hint = found;
        }
    }

    /// Skips a quoted run starting at `self.pos` (the opening quote) and
    /// returns the inner bytes. Backslash escapes apply to strings only;
    /// a doubled quote continues the run.
    fn quoted(&mut self, q: u8) -> &'a [u8] {
        let src = self.src;
        let inner = self.pos + 1;
        let mut i = inner;
        loop {
            let rest = src.get(i..).unwrap_or(&[]);
            let hit = rest
                .iter()
                .position(|&c| c == q || (c == b'\\' && q != b'`'));
            let Some(off) = hit else {
                self.broken = true;
                self.pos = src.len();
                return src.get(inner..).unwrap_or(&[]);
            };
            i += off;
            // A backslash escape or a doubled quote: the run goes on.
            if src[i] == b'\\' || self.at(i + 1) == q {
                i += 2;
            } else {
                self.pos = i + 1;
                return &src[inner..i];
            }
        }
    }

    fn word(&mut self) -> &'a [u8] {
        let start = self.pos;
        let rest = &self.src[start..];
        let len = rest
            .iter()
            .position(|&c| !is_word_byte(c))
            .unwrap_or(rest.len());
        self.pos = start + len;
        &self.src[start..self.pos]
    }

    fn number(&mut self) -> Tok<'a> {
        let src = self.src;
        let mut i = self.pos;
        while i < src.len() {
            let c = src[i];
            if is_word_byte(c) || c == b'.' {
                i += 1;
            } else if (c == b'+' || c == b'-')
                && matches!(src[i - 1], b'e' | b'E')
                && self.at(i + 1).is_ascii_digit()
                && !src[self.pos..i].starts_with(b"0x")
            {
                i += 2;
            } else {
                break;
            }
        }
        self.pos = i;
        Tok::Num
    }

    fn variable(&mut self) -> Tok<'a> {
        let src = self.src;
        if self.at(self.pos + 1) != b'@' {
            self.pos += 1;
            return match self.at(self.pos) {
                q @ (b'\'' | b'"' | b'`') => Tok::UserVar(self.quoted(q)),
                _ => {
                    // User variable names may also contain `.`.
                    let start = self.pos;
                    let rest = &src[start..];
                    let len = rest
                        .iter()
                        .position(|&c| !(is_word_byte(c) || c == b'.'))
                        .unwrap_or(rest.len());
                    self.pos += len;
                    Tok::UserVar(&src[start..self.pos])
                }
            };
        }
        self.pos += 2;
        let first = self.sysvar_part();
        let is_scope = [
            &b"global"[..],
            b"session",
            b"local",
            b"persist",
            b"persist_only",
        ]
        .iter()
        .any(|s| first.eq_ignore_ascii_case(s));
        if is_scope && self.at(self.pos) == b'.' {
            self.pos += 1;
            let name = self.sysvar_part();
            return Tok::SysVar(first, name);
        }
        Tok::SysVar(&[], first)
    }

    fn sysvar_part(&mut self) -> &'a [u8] {
        match self.at(self.pos) {
            b'`' => self.quoted(b'`'),
            c if is_word_byte(c) => self.word(),
            _ => &[],
        }
    }
}

/// Keywords the classifier cares about, plus token classes for the
/// look-back window. Everything else is `Ident`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kw {
    // Token classes
    Ident,
    Num,
    Str,
    Var,
    LParen,
    RParen,
    Eq,
    Comma,
    Semi,
    Dot,
    Punct,
    // Statement leaders
    Select,
    With,
    Table,
    Values,
    Insert,
    Update,
    Delete,
    Replace,
    Create,
    Alter,
    Drop,
    Truncate,
    Rename,
    Grant,
    Revoke,
    Begin,
    Start,
    Commit,
    Rollback,
    Savepoint,
    Release,
    Xa,
    Set,
    Use,
    Show,
    Desc,
    Describe,
    Explain,
    Help,
    Call,
    Load,
    Lock,
    Unlock,
    Prepare,
    Execute,
    Deallocate,
    Handler,
    Do,
    Get,
    Admin, // ANALYZE/OPTIMIZE/REPAIR/CHECK/FLUSH/KILL/...: Primary, Other
    // Other words
    Transaction,
    Work,
    Temporary,
    Or,
    To,
    For,
    Share,
    In,
    Mode,
    Into,
    Next,
    Previous,
    Value,
    CalcFoundRows,
    Warnings,
    Errors,
    Count,
    Profile,
    Diagnostics,
    Procedure,
    Function,
    Trigger,
    Event,
    View,
    Index,
    Database,
    End,
    Case,
    If,
    Loop,
    While,
    Repeat,
    Not,
    Atomic,
    Data,
    Xml,
    Extended,
    Partitions,
    Format,
    Analyze,
    Names,
    Character,
    Charset,
    Global,
    Session,
    Local,
    Persist,
    Password,
    Default,
    Null,
    True,
    False,
    On,
    Off,
    Niladic, // CURRENT_TIMESTAMP & co: function calls without parentheses
    // Functions that pin a statement to the primary
    UserLockFn, // GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_FREE_LOCK, IS_USED_LOCK
    PreviousFn, // LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT, LASTVAL
    SequenceFn, // NEXTVAL, SETVAL
}

/// Case-insensitive keyword lookup without allocation: dispatch on the
/// first letter so ordinary identifiers are rejected in a few compares.
pub(crate) fn keyword(w: &[u8]) -> Kw {
    let n = w.len();
    if !(2..=19).contains(&n) {
        return Kw::Ident;
    }
    let mut buf = [0u8; 19];
    for (d, s) in buf.iter_mut().zip(w) {
        *d = s.to_ascii_uppercase();
    }
    let u = &buf[..n];
    use Kw::*;
    match u[0] {
        b'A' => match u {
            b"ALTER" => Alter,
            b"ANALYZE" => Analyze,
            b"ATOMIC" => Atomic,
            _ => Ident,
        },
        b'B' => match u {
            b"BEGIN" => Begin,
            b"BINLOG" => Admin,
            _ => Ident,
        },
        b'C' => match u {
            b"CALL" => Call,
            b"CASE" => Case,
            b"CACHE" | b"CHANGE" | b"CHECK" | b"CHECKSUM" | b"CLONE" => Admin,
            b"CHARACTER" => Character,
            b"CHARSET" => Charset,
            b"COMMIT" => Commit,
            b"COUNT" => Count,
            b"CREATE" => Create,
            b"CURRENT_DATE" | b"CURRENT_TIME" | b"CURRENT_TIMESTAMP" | b"CURRENT_USER" => Niladic,
            _ => Ident,
        },
        b'D' => match u {
            b"DATA" => Data,
            b"DATABASE" => Database,
            b"DEALLOCATE" => Deallocate,
            b"DEFAULT" => Default,
            b"DELETE" => Delete,
            b"DESC" => Desc,
            b"DESCRIBE" => Describe,
            b"DIAGNOSTICS" => Diagnostics,
            b"DO" => Do,
            b"DROP" => Drop,
            _ => Ident,
        },
        b'E' => match u {
            b"END" => End,
            b"ERRORS" => Errors,
            b"EVENT" => Event,
            b"EXECUTE" => Execute,
            b"EXPLAIN" => Explain,
            b"EXTENDED" => Extended,
            _ => Ident,
        },
        b'F' => match u {
            b"FALSE" => False,
            b"FLUSH" => Admin,
            b"FOR" => For,
            b"FORMAT" => Format,
            b"FOUND_ROWS" => PreviousFn,
            b"FUNCTION" => Function,
            _ => Ident,
        },
        b'G' => match u {
            b"GET" => Get,
            b"GET_LOCK" => UserLockFn,
            b"GLOBAL" => Global,
            b"GRANT" => Grant,
            _ => Ident,
        },
        b'H' => match u {
            b"HANDLER" => Handler,
            b"HELP" => Help,
            _ => Ident,
        },
        b'I' => match u {
            b"IF" => If,
            b"IMPORT" | b"INSTALL" => Admin,
            b"IN" => In,
            b"INDEX" => Index,
            b"INSERT" => Insert,
            b"INTO" => Into,
            b"IS_FREE_LOCK" | b"IS_USED_LOCK" => UserLockFn,
            _ => Ident,
        },
        b'K' => match u {
            b"KILL" => Admin,
            _ => Ident,
        },
        b'L' => match u {
            b"LAST_INSERT_ID" | b"LASTVAL" => PreviousFn,
            b"LOAD" => Load,
            b"LOCAL" => Local,
            b"LOCALTIME" | b"LOCALTIMESTAMP" => Niladic,
            b"LOCK" => Lock,
            b"LOOP" => Loop,
            _ => Ident,
        },
        b'M' => match u {
            b"MODE" => Mode,
            _ => Ident,
        },
        b'N' => match u {
            b"NAMES" => Names,
            b"NEXT" => Next,
            b"NEXTVAL" => SequenceFn,
            b"NOT" => Not,
            b"NULL" => Null,
            _ => Ident,
        },
        b'O' => match u {
            b"OFF" => Off,
            b"ON" => On,
            b"OPTIMIZE" => Admin,
            b"OR" => Or,
            _ => Ident,
        },
        b'P' => match u {
            b"PARTITIONS" => Partitions,
            b"PASSWORD" => Password,
            b"PERSIST" | b"PERSIST_ONLY" => Persist,
            b"PREPARE" => Prepare,
            b"PREVIOUS" => Previous,
            b"PROCEDURE" => Procedure,
            b"PROFILE" | b"PROFILES" => Profile,
            b"PURGE" => Admin,
            _ => Ident,
        },
        b'R' => match u {
            b"RELEASE" => Release,
            b"RELEASE_LOCK" | b"RELEASE_ALL_LOCKS" => UserLockFn,
            b"RENAME" => Rename,
            b"REPAIR" | b"RESET" | b"RESIGNAL" | b"RESTART" => Admin,
            b"REPEAT" => Repeat,
            b"REPLACE" => Replace,
            b"REVOKE" => Revoke,
            b"ROLLBACK" => Rollback,
            b"ROW_COUNT" => PreviousFn,
            _ => Ident,
        },
        b'S' => match u {
            b"SAVEPOINT" => Savepoint,
            b"SCHEMA" => Database,
            b"SELECT" => Select,
            b"SESSION" => Session,
            b"SET" => Set,
            b"SETVAL" => SequenceFn,
            b"SHARE" => Share,
            b"SHOW" => Show,
            b"SHUTDOWN" | b"SIGNAL" | b"STOP" => Admin,
            b"SQL_CALC_FOUND_ROWS" => CalcFoundRows,
            b"START" => Start,
            _ => Ident,
        },
        b'T' => match u {
            b"TABLE" => Table,
            b"TEMPORARY" => Temporary,
            b"TO" => To,
            b"TRANSACTION" => Transaction,
            b"TRIGGER" => Trigger,
            b"TRUE" => True,
            b"TRUNCATE" => Truncate,
            _ => Ident,
        },
        b'U' => match u {
            b"UNINSTALL" => Admin,
            b"UNLOCK" => Unlock,
            b"UPDATE" => Update,
            b"USE" => Use,
            b"UTC_DATE" | b"UTC_TIME" | b"UTC_TIMESTAMP" => Niladic,
            _ => Ident,
        },
        b'V' => match u {
            b"VALUE" => Value,
            b"VALUES" => Values,
            b"VIEW" => View,
            _ => Ident,
        },
        b'W' => match u {
            b"WARNINGS" => Warnings,
            b"WHILE" => While,
            b"WITH" => With,
            b"WORK" => Work,
            _ => Ident,
        },
        b'X' => match u {
            b"XA" => Xa,
            b"XML" => Xml,
            _ => Ident,
        },
        _ => Ident,
    }
}

/// The look-back class of a token.
#[inline]
pub(crate) fn kind_of(t: &Tok) -> Kw {
    match *t {
        Tok::Word(w) => keyword(w),
        Tok::Num => Kw::Num,
        Tok::Str(_) => Kw::Str,
        Tok::Quoted(_) => Kw::Ident,
        Tok::UserVar(_) | Tok::SysVar(..) => Kw::Var,
        Tok::Assign => Kw::Punct,
        Tok::Punct(b'(') => Kw::LParen,
        Tok::Punct(b')') => Kw::RParen,
        Tok::Punct(b'=') => Kw::Eq,
        Tok::Punct(b',') => Kw::Comma,
        Tok::Punct(b';') => Kw::Semi,
        Tok::Punct(b'.') => Kw::Dot,
        Tok::Punct(_) => Kw::Punct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[u8]) -> (Vec<Tok<'_>>, bool) {
        let mut lx = Lexer::new(s);
        let mut v = Vec::new();
        while let Some(t) = lx.next_token() {
            v.push(t.tok);
        }
        (v, lx.broken)
    }

    #[test]
    fn strings_comments_and_variables() {
        let (t, broken) =
            toks(b"SELECT 'a''b\\'c', \"x\" -- c\n# d\n/* e */ `i``d` @u @@session.x := 1.5e-3");
        assert!(!broken);
        assert_eq!(
            t,
            vec![
                Tok::Word(b"SELECT"),
                Tok::Str(b"a''b\\'c"),
                Tok::Punct(b','),
                Tok::Str(b"x"),
                Tok::Quoted(b"i``d"),
                Tok::UserVar(b"u"),
                Tok::SysVar(b"session", b"x"),
                Tok::Assign,
                Tok::Num,
            ]
        );
    }

    #[test]
    fn executable_comments_are_code() {
        let (t, _) = toks(b"/*!40101 SET x */ /*M!100101 DO */ /*+ HINT */");
        assert_eq!(
            t,
            vec![Tok::Word(b"SET"), Tok::Word(b"x"), Tok::Word(b"DO")]
        );
    }

    #[test]
    fn double_dash_needs_whitespace() {
        let (t, _) = toks(b"1--1");
        assert_eq!(
            t,
            vec![Tok::Num, Tok::Punct(b'-'), Tok::Punct(b'-'), Tok::Num]
        );
    }

    #[test]
    fn unterminated_is_broken_not_panic() {
        for s in [
            &b"'abc"[..],
            b"\"a\\",
            b"`x",
            b"/* x",
            b"@'",
            b"@@",
            b"/*!",
            b"x\\",
        ] {
            let (_, _) = toks(s);
        }
        assert!(toks(b"SELECT 'x").1);
        assert!(toks(b"SELECT /* x").1);
    }

    #[test]
    fn keywords_case_insensitive() {
        assert_eq!(keyword(b"sElEcT"), Kw::Select);
        assert_eq!(keyword(b"sql_calc_found_rows"), Kw::CalcFoundRows);
        assert_eq!(keyword(b"selects"), Kw::Ident);
        assert_eq!(keyword(b"a_very_long_identifier_name"), Kw::Ident);
        assert_eq!(keyword("séLECT".as_bytes()), Kw::Ident);
    }
}
