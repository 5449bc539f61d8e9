//! Byte-level MySQL tokenizer for the classifier's fast path.
//!
//! Why hand-written: sqlparser costs 1–77 µs per statement, while routing
//! only needs keywords outside strings and comments. This lexer works on raw
//! bytes (COM_QUERY may be non-UTF-8), never allocates and never panics: every
//! index is checked, unterminated constructs just set `broken`.

use super::classify::Hint;

/// Token class. A flat, payload-free enum on purpose: the classifier's loop
/// keeps the whole token in registers (an enum carrying slices was spilled
/// to the stack and reloaded, costing a store-forwarding stall per token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum T {
    /// Bare identifier or keyword.
    Word,
    /// Numeric literal, including hex `0x..` and exponents.
    Num,
    /// String literal `'..'` / `".."`.
    Str,
    /// Backtick-quoted identifier.
    Quoted,
    /// `@name` / `@'name'` / `` @`name` ``.
    UserVar,
    /// `@@[scope.]name`.
    SysVar,
    /// `:=`
    Assign,
    /// Any other single byte.
    Punct(u8),
}

/// One significant token; trivia (whitespace, comments) is never returned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub t: T,
    pub start: usize,
    pub end: usize,
    /// Word: the word; Str/Quoted: the content between the quotes (escapes
    /// as written); UserVar/SysVar: the name.
    pub inner: (usize, usize),
    /// SysVar only: the scope prefix (`global` in `@@global.x`).
    pub scope: (usize, usize),
}

impl Token {
    pub fn inner<'a>(&self, src: &'a [u8]) -> &'a [u8] {
        src.get(self.inner.0..self.inner.1).unwrap_or(&[])
    }

    pub fn scope<'a>(&self, src: &'a [u8]) -> &'a [u8] {
        src.get(self.scope.0..self.scope.1).unwrap_or(&[])
    }
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

const WORD: u8 = 1;
const SPACE: u8 = 2;

/// Byte classes by table lookup: the hot loops test one bit per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            t[i] = WORD;
        }
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            t[i] = SPACE;
        }
        i += 1;
    }
    t
};

/// Identifier byte: ASCII alphanumeric, `_`, `$`, or any non-ASCII byte.
#[inline]
pub(crate) fn is_word_byte(b: u8) -> bool {
    CLASS[b as usize] & WORD != 0
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

    /// Next significant token, or None at the end of the input. Inlined so
    /// the token stays in registers in the classifier's loop.
    #[inline(always)]
    pub fn next_token(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let b = *self.src.get(start)?;
        let mut inner = (start, start);
        let mut scope = (start, start);
        let t = match b {
            b'\'' | b'"' => {
                inner = self.quoted(b);
                T::Str
            }
            b'`' => {
                inner = self.quoted(b'`');
                T::Quoted
            }
            b'@' => self.variable(&mut inner, &mut scope),
            b':' if self.at(start + 1) == b'=' => {
                self.pos += 2;
                T::Assign
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.at(start + 1).is_ascii_digit() => self.number(),
            _ if is_word_byte(b) => {
                inner = self.word();
                T::Word
            }
            _ => {
                self.pos += 1;
                T::Punct(b)
            }
        };
        Some(Token {
            t,
            start,
            end: self.pos,
            inner,
            scope,
        })
    }

    #[inline(always)]
    fn skip_trivia(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            if CLASS[b as usize] & SPACE != 0 {
                self.pos += 1;
                continue;
            }
            match b {
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
    /// returns the inner range. Backslash escapes apply to strings only;
    /// a doubled quote continues the run.
    fn quoted(&mut self, q: u8) -> (usize, usize) {
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
                return (inner.min(src.len()), src.len());
            };
            i += off;
            // A backslash escape or a doubled quote: the run goes on.
            if src[i] == b'\\' || self.at(i + 1) == q {
                i += 2;
            } else {
                self.pos = i + 1;
                return (inner, i);
            }
        }
    }

    fn word(&mut self) -> (usize, usize) {
        let start = self.pos;
        let rest = &self.src[start..];
        let len = rest
            .iter()
            .position(|&c| !is_word_byte(c))
            .unwrap_or(rest.len());
        self.pos = start + len;
        (start, self.pos)
    }

    fn number(&mut self) -> T {
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
        T::Num
    }

    fn variable(&mut self, inner: &mut (usize, usize), scope: &mut (usize, usize)) -> T {
        let src = self.src;
        if self.at(self.pos + 1) != b'@' {
            self.pos += 1;
            *inner = match self.at(self.pos) {
                q @ (b'\'' | b'"' | b'`') => self.quoted(q),
                _ => {
                    // User variable names may also contain `.`.
                    let start = self.pos;
                    let rest = &src[start..];
                    let len = rest
                        .iter()
                        .position(|&c| !(is_word_byte(c) || c == b'.'))
                        .unwrap_or(rest.len());
                    self.pos += len;
                    (start, self.pos)
                }
            };
            return T::UserVar;
        }
        self.pos += 2;
        let first = self.sysvar_part();
        let word = &src[first.0..first.1];
        let is_scope = [
            &b"global"[..],
            b"session",
            b"local",
            b"persist",
            b"persist_only",
        ]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s));
        if is_scope && self.at(self.pos) == b'.' {
            self.pos += 1;
            *scope = first;
            *inner = self.sysvar_part();
        } else {
            *inner = first;
        }
        T::SysVar
    }

    fn sysvar_part(&mut self) -> (usize, usize) {
        match self.at(self.pos) {
            b'`' => self.quoted(b'`'),
            c if is_word_byte(c) => self.word(),
            _ => (self.pos, self.pos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (class, inner text) of every token, and whether the text was broken.
    fn toks(s: &[u8]) -> (Vec<(T, &[u8])>, bool) {
        let mut lx = Lexer::new(s);
        let mut v = Vec::new();
        while let Some(t) = lx.next_token() {
            v.push((t.t, t.inner(s)));
        }
        (v, lx.broken)
    }

    #[test]
    fn strings_comments_and_variables() {
        let sql = b"SELECT 'a''b\\'c', \"x\" -- c\n# d\n/* e */ `i``d` @u @@session.x := 1.5e-3";
        let (t, broken) = toks(sql);
        assert!(!broken);
        let e: &[u8] = b"";
        assert_eq!(
            t,
            vec![
                (T::Word, &b"SELECT"[..]),
                (T::Str, b"a''b\\'c"),
                (T::Punct(b','), e),
                (T::Str, b"x"),
                (T::Quoted, b"i``d"),
                (T::UserVar, b"u"),
                (T::SysVar, b"x"),
                (T::Assign, e),
                (T::Num, e),
            ]
        );
        let mut lx = Lexer::new(b"@@session.x @@y");
        let a = lx.next_token().unwrap();
        let b = lx.next_token().unwrap();
        assert_eq!(
            (a.scope(b"@@session.x"), b.scope(b"@@session.x @@y")),
            (&b"session"[..], &b""[..])
        );
    }

    #[test]
    fn executable_comments_are_code() {
        let (t, _) = toks(b"/*!40101 SET x */ /*M!100101 DO */ /*+ HINT */");
        let words: Vec<&[u8]> = t.iter().map(|x| x.1).collect();
        assert_eq!(words, vec![&b"SET"[..], b"x", b"DO"]);
    }

    #[test]
    fn double_dash_needs_whitespace() {
        let (t, _) = toks(b"1--1");
        let classes: Vec<T> = t.iter().map(|x| x.0).collect();
        assert_eq!(
            classes,
            vec![T::Num, T::Punct(b'-'), T::Punct(b'-'), T::Num]
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
            b"@@global.",
            b"'\\",
        ] {
            let _ = toks(s);
        }
        assert!(toks(b"SELECT 'x").1);
        assert!(toks(b"SELECT /* x").1);
    }
}
