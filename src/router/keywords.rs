//! Keywords the classifier reacts to, with an allocation-free lookup.
//!
//! Why a sorted table plus a per-letter length mask: most words in a query
//! are identifiers, and the mask rejects nearly all of them with one load.

use super::lexer::{Token, T};

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
    Backup,
    Do,
    Get,
    Admin, // ANALYZE/OPTIMIZE/REPAIR/CHECK/FLUSH/...: Primary, Other
    Kill,
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
    ConnectionIdFn,
    // Functions that pin a statement to the primary
    UserLockFn, // GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_FREE_LOCK, IS_USED_LOCK
    PreviousFn, // LAST_INSERT_ID, FOUND_ROWS, ROW_COUNT, LASTVAL
    SequenceFn, // NEXTVAL, SETVAL
}

use Kw::*;

/// Sorted (checked by a test), upper case, grouped by first letter.
const KEYWORDS: &[(&[u8], Kw)] = &[
    (b"ALTER", Alter),
    (b"ANALYZE", Analyze),
    (b"ATOMIC", Atomic),
    (b"BACKUP", Backup),
    (b"BEGIN", Begin),
    (b"BINLOG", Admin),
    (b"CACHE", Admin),
    (b"CALL", Call),
    (b"CASE", Case),
    (b"CHANGE", Admin),
    (b"CHARACTER", Character),
    (b"CHARSET", Charset),
    (b"CHECK", Admin),
    (b"CHECKSUM", Admin),
    (b"CLONE", Admin),
    (b"COMMIT", Commit),
    (b"CONNECTION_ID", ConnectionIdFn),
    (b"COUNT", Count),
    (b"CREATE", Create),
    (b"CURRENT_DATE", Niladic),
    (b"CURRENT_TIME", Niladic),
    (b"CURRENT_TIMESTAMP", Niladic),
    (b"CURRENT_USER", Niladic),
    (b"DATA", Data),
    (b"DATABASE", Database),
    (b"DEALLOCATE", Deallocate),
    (b"DEFAULT", Default),
    (b"DELETE", Delete),
    (b"DESC", Desc),
    (b"DESCRIBE", Describe),
    (b"DIAGNOSTICS", Diagnostics),
    (b"DO", Do),
    (b"DROP", Drop),
    (b"END", End),
    (b"ERRORS", Errors),
    (b"EVENT", Event),
    (b"EXECUTE", Execute),
    (b"EXPLAIN", Explain),
    (b"EXTENDED", Extended),
    (b"FALSE", False),
    (b"FLUSH", Admin),
    (b"FOR", For),
    (b"FORMAT", Format),
    (b"FOUND_ROWS", PreviousFn),
    (b"FUNCTION", Function),
    (b"GET", Get),
    (b"GET_LOCK", UserLockFn),
    (b"GLOBAL", Global),
    (b"GRANT", Grant),
    (b"HANDLER", Handler),
    (b"HELP", Help),
    (b"IF", If),
    (b"IMPORT", Admin),
    (b"IN", In),
    (b"INDEX", Index),
    (b"INSERT", Insert),
    (b"INSTALL", Admin),
    (b"INTO", Into),
    (b"IS_FREE_LOCK", UserLockFn),
    (b"IS_USED_LOCK", UserLockFn),
    (b"KILL", Kill),
    (b"LASTVAL", PreviousFn),
    (b"LAST_INSERT_ID", PreviousFn),
    (b"LOAD", Load),
    (b"LOCAL", Local),
    (b"LOCALTIME", Niladic),
    (b"LOCALTIMESTAMP", Niladic),
    (b"LOCK", Lock),
    (b"LOOP", Loop),
    (b"MODE", Mode),
    (b"NAMES", Names),
    (b"NEXT", Next),
    (b"NEXTVAL", SequenceFn),
    (b"NOT", Not),
    (b"NULL", Null),
    (b"OFF", Off),
    (b"ON", On),
    (b"OPTIMIZE", Admin),
    (b"OR", Or),
    (b"PARTITIONS", Partitions),
    (b"PASSWORD", Password),
    (b"PERSIST", Persist),
    (b"PERSIST_ONLY", Persist),
    (b"PREPARE", Prepare),
    (b"PREVIOUS", Previous),
    (b"PROCEDURE", Procedure),
    (b"PROFILE", Profile),
    (b"PROFILES", Profile),
    (b"PURGE", Admin),
    (b"RELEASE", Release),
    (b"RELEASE_ALL_LOCKS", UserLockFn),
    (b"RELEASE_LOCK", UserLockFn),
    (b"RENAME", Rename),
    (b"REPAIR", Admin),
    (b"REPEAT", Repeat),
    (b"REPLACE", Replace),
    (b"RESET", Admin),
    (b"RESIGNAL", Admin),
    (b"RESTART", Admin),
    (b"REVOKE", Revoke),
    (b"ROLLBACK", Rollback),
    (b"ROW_COUNT", PreviousFn),
    (b"SAVEPOINT", Savepoint),
    (b"SCHEMA", Database),
    (b"SELECT", Select),
    (b"SESSION", Session),
    (b"SET", Set),
    (b"SETVAL", SequenceFn),
    (b"SHARE", Share),
    (b"SHOW", Show),
    (b"SHUTDOWN", Admin),
    (b"SIGNAL", Admin),
    (b"SQL_CALC_FOUND_ROWS", CalcFoundRows),
    (b"START", Start),
    (b"STOP", Admin),
    (b"TABLE", Table),
    (b"TEMPORARY", Temporary),
    (b"TO", To),
    (b"TRANSACTION", Transaction),
    (b"TRIGGER", Trigger),
    (b"TRUE", True),
    (b"TRUNCATE", Truncate),
    (b"UNINSTALL", Admin),
    (b"UNLOCK", Unlock),
    (b"UPDATE", Update),
    (b"USE", Use),
    (b"UTC_DATE", Niladic),
    (b"UTC_TIME", Niladic),
    (b"UTC_TIMESTAMP", Niladic),
    (b"VALUE", Value),
    (b"VALUES", Values),
    (b"VIEW", View),
    (b"WARNINGS", Warnings),
    (b"WHILE", While),
    (b"WITH", With),
    (b"WORK", Work),
    (b"XA", Xa),
    (b"XML", Xml),
];

struct Index {
    /// KEYWORDS[start[l]..start[l + 1]] begin with letter `l`.
    start: [u16; 27],
    /// Bit `n` set when some keyword of letter `l` has length `n`.
    lens: [u32; 26],
}

const INDEX: Index = build_index();

const fn build_index() -> Index {
    let mut ix = Index {
        start: [0; 27],
        lens: [0; 26],
    };
    let mut i = 0;
    while i < KEYWORDS.len() {
        let w = KEYWORDS[i].0;
        let l = (w[0] - b'A') as usize;
        ix.lens[l] |= 1 << w.len();
        ix.start[l + 1] += 1;
        i += 1;
    }
    let mut l = 0;
    while l < 26 {
        ix.start[l + 1] += ix.start[l];
        l += 1;
    }
    ix
}

/// Case-insensitive keyword lookup; anything else is `Ident`.
#[inline]
pub(crate) fn keyword(w: &[u8]) -> Kw {
    let n = w.len();
    if !(2..32).contains(&n) {
        return Ident;
    }
    let l = (w[0] | 0x20).wrapping_sub(b'a') as usize;
    if l >= 26 || INDEX.lens[l] & (1 << n) == 0 {
        return Ident;
    }
    let bucket = &KEYWORDS[INDEX.start[l] as usize..INDEX.start[l + 1] as usize];
    for &(k, kw) in bucket {
        if k.len() == n && k.eq_ignore_ascii_case(w) {
            return kw;
        }
    }
    Ident
}

/// The look-back class of a token (`src`: the text it was lexed from).
#[inline]
pub(crate) fn kind_of(src: &[u8], t: &Token) -> Kw {
    match t.t {
        T::Word => keyword(t.inner(src)),
        T::Num => Kw::Num,
        T::Str => Kw::Str,
        T::Quoted => Kw::Ident,
        T::UserVar | T::SysVar => Kw::Var,
        T::Assign => Kw::Punct,
        T::Punct(b'(') => Kw::LParen,
        T::Punct(b')') => Kw::RParen,
        T::Punct(b'=') => Kw::Eq,
        T::Punct(b',') => Kw::Comma,
        T::Punct(b';') => Kw::Semi,
        T::Punct(b'.') => Kw::Dot,
        T::Punct(_) => Kw::Punct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_upper_and_found() {
        assert!(KEYWORDS.windows(2).all(|p| p[0].0 < p[1].0));
        for &(k, kw) in KEYWORDS {
            assert!(k.iter().all(|b| b.is_ascii_uppercase() || *b == b'_'));
            assert_eq!(keyword(k), kw);
            assert_eq!(keyword(&k.to_ascii_lowercase()), kw);
        }
    }

    #[test]
    fn identifiers_are_not_keywords() {
        assert_eq!(keyword(b"sElEcT"), Select);
        assert_eq!(keyword(b"sql_calc_found_rows"), CalcFoundRows);
        for w in [
            &b"selects"[..],
            b"c",
            b"id",
            b"_x",
            b"1e5",
            b"a_very_long_identifier_name_over_32_bytes",
            "séLECT".as_bytes(),
            b"[x",
            b"@@",
        ] {
            assert_eq!(keyword(w), Ident, "{}", String::from_utf8_lossy(w));
        }
    }
}
