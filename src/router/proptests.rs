//! Property tests: comments, whitespace, case and literal changes never move
//! a statement that must run on the primary to a replica.
//!
//! Statements are written as templates of space-separated tokens: `?n` is a
//! number, `?s` a string, `~` a space inside one raw token (a comment that
//! is part of the statement). Every gap between tokens gets random
//! whitespace and comments (possibly a `gantry:replica` hint), every word
//! random case, every literal a random value, and the text may end in `;`.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{classify, Route};

/// Statements that must go to the primary (README "Routing", tests.rs).
const MUST_PRIMARY: &[&str] = &[
    "INSERT INTO t ( a , b ) VALUES ( ?n , ?s )",
    "INSERT INTO t SELECT * FROM u WHERE id = ?n",
    "UPDATE t SET c = ?s WHERE id = ?n",
    "DELETE FROM t WHERE id = ?n",
    "REPLACE INTO t VALUES ( ?n , ?s )",
    "CREATE TABLE t ( id INT )",
    "CREATE TEMPORARY TABLE tt ( id INT )",
    "DROP TABLE t",
    "TRUNCATE TABLE t",
    "ALTER TABLE t ADD COLUMN c INT DEFAULT ?n",
    "SELECT * FROM t WHERE id = ?n FOR UPDATE",
    "SELECT * FROM t WHERE id = ?n FOR UPDATE NOWAIT",
    "SELECT * FROM t WHERE id = ?n FOR SHARE",
    "SELECT * FROM t WHERE c = ?s LOCK IN SHARE MODE",
    "SELECT * FROM ( SELECT * FROM t FOR UPDATE ) x",
    "SELECT * FROM t WHERE id = ?n /*!50100~FOR~UPDATE~*/",
    "SELECT GET_LOCK ( ?s , ?n )",
    "SELECT RELEASE_LOCK ( ?s )",
    "SELECT RELEASE_ALL_LOCKS ( )",
    "SELECT IS_FREE_LOCK ( ?s )",
    "SELECT IS_USED_LOCK ( ?s )",
    "DO GET_LOCK ( ?s , ?n )",
    "SELECT LAST_INSERT_ID ( )",
    "SELECT * FROM t WHERE id = ( SELECT LAST_INSERT_ID ( ) )",
    "SELECT FOUND_ROWS ( )",
    "SELECT ROW_COUNT ( )",
    "SELECT @@identity",
    "SELECT @@last_insert_id",
    "SELECT @@warning_count",
    "SELECT @@session.error_count",
    "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT ?n",
    "SELECT @v := ?n",
    "SELECT @v := c FROM t WHERE id = ?n",
    "SELECT id INTO @v FROM t WHERE id = ?n",
    "SELECT * FROM t INTO OUTFILE ?s",
    "SELECT * INTO DUMPFILE ?s FROM t",
    "SELECT NEXT VALUE FOR s",
    "SELECT NEXTVAL ( s )",
    "SELECT SETVAL ( s , ?n )",
    "SELECT LASTVAL ( s )",
    "SHOW WARNINGS",
    "SHOW ERRORS LIMIT ?n",
    "SHOW COUNT ( * ) WARNINGS",
    "/*master*/ SELECT * FROM t WHERE id = ?n",
    "/*~gantry:primary~*/ SELECT ?s",
    "SELECT ?n ; SELECT ?n",
    "SELECT ?n ; UPDATE t SET a = ?n",
    "WITH x AS ( SELECT ?n ) UPDATE t SET a = ?n",
    "WITH x AS ( SELECT ?n ) DELETE FROM t WHERE id = ?n",
    "WITH x AS ( SELECT * FROM t FOR UPDATE ) SELECT * FROM x",
    "BEGIN",
    "START TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "SET autocommit = ?n",
    "SET NAMES utf8mb4",
    "SET @v = ?s",
    "USE db",
    "LOCK TABLES t READ",
    "UNLOCK TABLES",
    "CALL p ( ?n , ?s )",
    "PREPARE s FROM ?s",
    "EXECUTE s",
    "DEALLOCATE PREPARE s",
    "LOAD DATA INFILE ?s INTO TABLE t",
];

/// Plain reads: they must stay on replicas, which shows the variations
/// themselves do not make every statement look unsafe.
const READS: &[&str] = &[
    "SELECT a , b FROM t WHERE id = ?n",
    "SELECT COUNT ( * ) FROM t WHERE c = ?s AND id > ?n",
    "SELECT c FROM t WHERE id BETWEEN ?n AND ?n ORDER BY c",
    "SHOW TABLES",
];

/// What goes into the gap between two tokens.
#[derive(Debug, Clone)]
enum Gap {
    Space(&'static str),
    Block(String),
    Dash(String),
    Hash(String),
    ReplicaHint,
}

fn gap() -> impl Strategy<Value = Gap> {
    // No `!` or `+` first (executable comments, optimizer hints) and no `*/`.
    let body = "[a-zA-Z0-9 _:=.,@()'\"`;-]{0,12}";
    prop_oneof![
        4 => prop::sample::select(vec![" ", "  ", "\t", "\n", "\r\n", " \t\n "]).prop_map(Gap::Space),
        2 => body.prop_map(Gap::Block),
        1 => "[a-zA-Z0-9 _:=.,@()'\"`;*/-]{0,12}".prop_map(Gap::Dash),
        1 => "[a-zA-Z0-9 _:=.,@()'\"`;*/-]{0,12}".prop_map(Gap::Hash),
        1 => Just(Gap::ReplicaHint),
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        (0u32..100_000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        (0u32..1000).prop_map(|a| format!(".{a}")),
        (1u32..100, 0i32..30).prop_map(|(a, e)| format!("{a}e{e}")),
        any::<u32>().prop_map(|n| format!("0x{n:X}")),
    ]
}

fn string() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "key",
        " ",
        "'",
        "\"",
        "\\",
        "\\n",
        ";",
        "-- ",
        "#",
        "/*",
        "*/",
        "`",
        "\n",
        "é",
        "FOR UPDATE",
        "LAST_INSERT_ID()",
        "/* gantry:replica */",
    ]);
    (vec(piece, 0..6), 0u8..3).prop_map(|(pieces, style)| {
        let text: String = pieces.concat();
        match style {
            0 => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
            1 => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''")),
            _ => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    })
}

/// Random choices for one rendering of a template.
#[derive(Debug, Clone)]
struct Variation {
    gaps: Vec<Vec<Gap>>,
    cases: Vec<u64>,
    numbers: Vec<String>,
    strings: Vec<String>,
    semicolon: bool,
}

const MAX_TOKENS: usize = 24;

fn variation() -> impl Strategy<Value = Variation> {
    (
        vec(vec(gap(), 0..3), MAX_TOKENS + 1),
        vec(any::<u64>(), MAX_TOKENS),
        vec(number(), 4),
        vec(string(), 4),
        any::<bool>(),
    )
        .prop_map(|(gaps, cases, numbers, strings, semicolon)| Variation {
            gaps,
            cases,
            numbers,
            strings,
            semicolon,
        })
}

fn is_wordy(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '$' | '.'))
}

fn render(template: &str, v: &Variation) -> String {
    let mut out = String::new();
    let (mut n, mut s) = (0, 0);
    for (i, tok) in template.split(' ').enumerate() {
        let text = match tok {
            "?n" => {
                n += 1;
                v.numbers[(n - 1) % v.numbers.len()].clone()
            }
            "?s" => {
                s += 1;
                v.strings[(s - 1) % v.strings.len()].clone()
            }
            raw if raw.contains('~') || raw.starts_with("/*") => raw.replace('~', " "),
            word => word
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if v.cases[i % MAX_TOKENS] >> (j % 64) & 1 == 1 {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect(),
        };
        let literal = tok.starts_with('?') || tok.starts_with("/*");
        let before = out.len();
        put_gap(&mut out, &v.gaps[i.min(MAX_TOKENS)]);
        let glued = out.len() == before;
        if glued
            && i > 0
            && is_wordy(out.chars().last())
            && (literal || is_wordy(text.chars().next()))
        {
            out.push(' ');
        }
        out.push_str(&text);
    }
    if v.semicolon {
        out.push(';');
    }
    out
}

fn put_gap(out: &mut String, gap: &[Gap]) {
    for g in gap {
        let comment = !matches!(g, Gap::Space(_));
        // `*/*` or `-/*` would glue the comment to the punctuation before it.
        if comment && out.ends_with(['*', '/', '-']) {
            out.push(' ');
        }
        match g {
            Gap::Space(w) => out.push_str(w),
            Gap::Block(b) => {
                out.push_str("/* ");
                out.push_str(b);
                out.push_str(" */");
            }
            Gap::Dash(b) => {
                out.push_str("-- ");
                out.push_str(b);
                out.push('\n');
            }
            Gap::Hash(b) => {
                out.push('#');
                out.push_str(b);
                out.push('\n');
            }
            Gap::ReplicaHint => out.push_str("/* gantry:replica */"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn primary_statements_stay_on_the_primary(
        which in 0..MUST_PRIMARY.len(),
        v in variation(),
    ) {
        let sql = render(MUST_PRIMARY[which], &v);
        let c = classify(sql.as_bytes());
        prop_assert_eq!(c.route, Route::Primary, "{:?} → {:?}", sql, c);
    }

    #[test]
    fn plain_reads_stay_on_replicas(which in 0..READS.len(), v in variation()) {
        let sql = render(READS[which], &v);
        let c = classify(sql.as_bytes());
        prop_assert_eq!(c.route, Route::Replica, "{:?} → {:?}", sql, c);
    }
}

#[test]
fn templates_render_to_their_plain_text_without_variation() {
    let v = Variation {
        gaps: vec![vec![]; MAX_TOKENS + 1],
        cases: vec![u64::MAX; MAX_TOKENS],
        numbers: vec!["1".into()],
        strings: vec!["'k'".into()],
        semicolon: false,
    };
    assert_eq!(
        render("SELECT GET_LOCK ( ?s , ?n )", &v),
        "select get_lock('k',1)"
    );
    assert_eq!(
        render("SELECT * FROM t WHERE id = ?n /*!50100~FOR~UPDATE~*/", &v),
        "select*from t where id=1 /*!50100 FOR UPDATE */"
    );
    for t in MUST_PRIMARY.iter().chain(READS) {
        assert!(t.split(' ').count() <= MAX_TOKENS, "{t}");
    }
}
