//! The admin command grammar: one statement of text → [`Command`].
//!
//! Atlas's commands are fixed phrases, so a keyword matcher is enough (no
//! SQL parser): keywords are case-insensitive, runs of whitespace count as
//! one space, and a trailing `;` (or `\G` left by a client) is ignored.
//! Arguments keep their case (host names, user names, passwords).

use crate::config::{BackendAddr, UserPassword};

/// A parsed admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SELECT * FROM <table>`.
    Select(Table),
    /// `SELECT VERSION` (Atlas) or `SELECT VERSION()`.
    Version,
    /// `SELECT @@a, @@b [LIMIT n]`: what clients ask on connect
    /// (`@@version_comment` from the CLI, `@@max_allowed_packet` ... from
    /// connectors). Names are lower-cased, without `@@`.
    Variables(Vec<String>),
    SetOffline(usize),
    SetOnline(usize),
    AddMaster(BackendAddr),
    AddSlave(BackendAddr),
    RemoveBackend(usize),
    AddClient(String),
    RemoveClient(String),
    /// `ADD PWD user:password`; `Debug` of `UserPassword` hides the password.
    AddPwd(UserPassword),
    RemovePwd(String),
    SaveConfig,
    ReloadConfig,
    /// `FAILOVER`: promote a replica in place of a primary that is down.
    Failover,
    /// `SWITCHOVER [TO backend_ndx]`: hand the primary role over.
    Switchover(Option<usize>),
    /// An empty statement (`;` alone): answered with OK.
    Empty,
}

/// The tables `SELECT * FROM` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Help,
    Backends,
    Clients,
    Pwds,
    Sessions,
    Pools,
    Stats,
    Config,
    Failovers,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Help,
        Table::Backends,
        Table::Clients,
        Table::Pwds,
        Table::Sessions,
        Table::Pools,
        Table::Stats,
        Table::Config,
        Table::Failovers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Help => "help",
            Table::Backends => "backends",
            Table::Clients => "clients",
            Table::Pwds => "pwds",
            Table::Sessions => "sessions",
            Table::Pools => "pools",
            Table::Stats => "stats",
            Table::Config => "config",
            Table::Failovers => "failovers",
        }
    }
}

/// Why a statement is not a command; the message goes to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "Unknown admin command '{0}'; use 'SELECT * FROM help' to list the supported commands"
    )]
    Unknown(String),
    #[error("{0}; use 'SELECT * FROM help' to see the syntax")]
    BadArgument(String),
}

/// Parses one statement.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    let stmt = strip_terminator(text);
    let words: Vec<&str> = stmt.split_whitespace().collect();
    let kw = |i: usize, k: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
    // The argument of `VERB NOUN <rest>`: the text after the second word,
    // so passwords with spaces survive.
    let rest = || after_words(stmt, 2);
    let unknown = || ParseError::Unknown(shorten(stmt));

    if words.is_empty() {
        return Ok(Command::Empty);
    }
    if kw(0, "select") {
        return parse_select(stmt, &words).ok_or_else(unknown);
    }
    match words.len() {
        1 if kw(0, "failover") => return Ok(Command::Failover),
        1 if kw(0, "switchover") => return Ok(Command::Switchover(None)),
        3 if kw(0, "switchover") && kw(1, "to") => {
            return index(words[2]).map(|n| Command::Switchover(Some(n)))
        }
        2 if kw(0, "save") && kw(1, "config") => return Ok(Command::SaveConfig),
        2 if kw(0, "reload") && kw(1, "config") => return Ok(Command::ReloadConfig),
        3 if kw(0, "set") && kw(1, "offline") => return index(words[2]).map(Command::SetOffline),
        3 if kw(0, "set") && kw(1, "online") => return index(words[2]).map(Command::SetOnline),
        3 if kw(0, "remove") && kw(1, "backend") => {
            return index(words[2]).map(Command::RemoveBackend)
        }
        3 if kw(0, "add") && kw(1, "master") => return master(words[2]).map(Command::AddMaster),
        3 if kw(0, "add") && kw(1, "slave") => return slave(words[2]).map(Command::AddSlave),
        3 if kw(0, "add") && kw(1, "client") => return Ok(Command::AddClient(words[2].into())),
        3 if kw(0, "remove") && kw(1, "client") => {
            return Ok(Command::RemoveClient(words[2].into()))
        }
        3 if kw(0, "remove") && kw(1, "pwd") => return Ok(Command::RemovePwd(words[2].into())),
        _ => {}
    }
    if words.len() >= 3 && kw(0, "add") && kw(1, "pwd") {
        // Never echo the argument: it holds a password.
        return UserPassword::parse(rest())
            .map(Command::AddPwd)
            .map_err(|why| {
                ParseError::BadArgument(format!("ADD PWD needs user:password ({why})"))
            });
    }
    Err(unknown())
}

fn parse_select(stmt: &str, words: &[&str]) -> Option<Command> {
    let kw = |i: usize, k: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
    if words.len() == 4 && kw(1, "*") && kw(2, "from") {
        let name = words[3].trim_matches('`');
        return Table::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
            .map(Command::Select);
    }
    if words.len() == 2 && (kw(1, "version") || kw(1, "version()")) {
        return Some(Command::Version);
    }
    parse_variables(after_words(stmt, 1))
}

/// `@@a, @@session.b [LIMIT n]` → `["a", "b"]`.
fn parse_variables(list: &str) -> Option<Command> {
    let lower = list.to_ascii_lowercase();
    let list = match lower.rfind(" limit ") {
        Some(at) if lower[at + 7..].trim().bytes().all(|b| b.is_ascii_digit()) => &lower[..at],
        _ => &lower[..],
    };
    let mut names = Vec::new();
    for item in list.split(',') {
        let name = item.trim().strip_prefix("@@")?;
        let name = name
            .strip_prefix("session.")
            .or_else(|| name.strip_prefix("global."))
            .unwrap_or(name);
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return None;
        }
        names.push(name.to_string());
    }
    Some(Command::Variables(names))
}

/// Drops surrounding whitespace and trailing `;` / `\G` / `\g`.
fn strip_terminator(text: &str) -> &str {
    let mut s = text.trim();
    loop {
        let before = s.len();
        s = s.strip_suffix(';').unwrap_or(s);
        s = s.strip_suffix("\\G").unwrap_or(s);
        s = s.strip_suffix("\\g").unwrap_or(s);
        s = s.trim_end();
        if s.len() == before {
            return s;
        }
    }
}

/// The text after the first `n` whitespace-separated words, trimmed.
fn after_words(s: &str, n: usize) -> &str {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

/// A `backend_ndx`: 1-based.
fn index(word: &str) -> Result<usize, ParseError> {
    match word.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ParseError::BadArgument(format!(
            "'{}' is not a backend_ndx (a number from 1, as shown by SELECT * FROM backends)",
            shorten(word)
        ))),
    }
}

fn slave(word: &str) -> Result<BackendAddr, ParseError> {
    BackendAddr::parse(word).map_err(|why| {
        ParseError::BadArgument(format!(
            "'{}' is not host:port[@weight] ({why})",
            shorten(word)
        ))
    })
}

fn master(word: &str) -> Result<BackendAddr, ParseError> {
    if word.contains('@') {
        return Err(ParseError::BadArgument(
            "a weight is only allowed for read-only backends (ADD SLAVE)".into(),
        ));
    }
    BackendAddr::parse(word).map_err(|why| {
        ParseError::BadArgument(format!("'{}' is not host:port ({why})", shorten(word)))
    })
}

/// Bounds what is echoed back in an error message.
fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Command {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn atlas_commands_any_case_with_terminators() {
        assert_eq!(
            ok("SELECT * FROM backends"),
            Command::Select(Table::Backends)
        );
        assert_eq!(
            ok("select  *  from  BACKENDS ;"),
            Command::Select(Table::Backends)
        );
        assert_eq!(
            ok("select * from backends\\G"),
            Command::Select(Table::Backends)
        );
        assert_eq!(ok(" SELECT * FROM help;;"), Command::Select(Table::Help));
        assert_eq!(ok("select * from `pwds`"), Command::Select(Table::Pwds));
        assert_eq!(ok("SELECT VERSION"), Command::Version);
        assert_eq!(ok("select version();"), Command::Version);
        assert_eq!(ok("set offline 2"), Command::SetOffline(2));
        assert_eq!(ok("SET ONLINE 3;"), Command::SetOnline(3));
        assert_eq!(ok("REMOVE BACKEND 2;"), Command::RemoveBackend(2));
        assert_eq!(ok("save config"), Command::SaveConfig);
        assert_eq!(ok("Reload Config"), Command::ReloadConfig);
        assert_eq!(ok(";"), Command::Empty);
        assert_eq!(
            ok("add client 192.168.1."),
            Command::AddClient("192.168.1.".into())
        );
        assert_eq!(
            ok("remove client 10.0.0.1"),
            Command::RemoveClient("10.0.0.1".into())
        );
        assert_eq!(ok("REMOVE PWD Bob"), Command::RemovePwd("Bob".into()));
    }

    #[test]
    fn backend_addresses_hostnames_ipv6_and_weights() {
        let Command::AddSlave(a) = ok("add slave 192.168.1.100:3306;") else {
            panic!()
        };
        assert_eq!(
            (a.host.as_str(), a.port, a.weight),
            ("192.168.1.100", 3306, 1)
        );
        let Command::AddSlave(a) = ok("ADD SLAVE db-2.example.com:3307@5") else {
            panic!()
        };
        assert_eq!(
            (a.host.as_str(), a.port, a.weight),
            ("db-2.example.com", 3307, 5)
        );
        let Command::AddSlave(a) = ok("add slave [::1]:3306") else {
            panic!()
        };
        assert_eq!(
            (a.host.as_str(), a.to_string()),
            ("::1", "[::1]:3306".into())
        );
        let Command::AddMaster(a) = ok("ADD MASTER Db1") else {
            panic!()
        };
        assert_eq!((a.host.as_str(), a.port), ("Db1", 3306));
        assert!(matches!(
            parse("add master h:1@2"),
            Err(ParseError::BadArgument(_))
        ));
        assert!(matches!(
            parse("add slave h:99999"),
            Err(ParseError::BadArgument(_))
        ));
        assert!(matches!(
            parse("add slave ::1:3306"),
            Err(ParseError::BadArgument(_))
        ));
    }

    #[test]
    fn pwd_keeps_case_colons_and_spaces_and_never_echoes() {
        let Command::AddPwd(p) = ok("ADD PWD Bob:Se:cret pass;") else {
            panic!()
        };
        assert_eq!(
            (p.user.as_str(), p.password.as_str()),
            ("Bob", "Se:cret pass")
        );
        let err = parse("add pwd onlyasecret").unwrap_err().to_string();
        assert!(!err.contains("onlyasecret"), "{err}");
        assert!(!format!("{:?}", ok("add pwd u:hunter2")).contains("hunter2"));
    }

    #[test]
    fn variables_from_clients() {
        assert_eq!(
            ok("select @@version_comment limit 1"),
            Command::Variables(vec!["version_comment".into()])
        );
        assert_eq!(
            ok("SELECT @@max_allowed_packet,@@wait_timeout,@@socket"),
            Command::Variables(vec![
                "max_allowed_packet".into(),
                "wait_timeout".into(),
                "socket".into()
            ])
        );
        assert_eq!(
            ok("select @@session.autocommit"),
            Command::Variables(vec!["autocommit".into()])
        );
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        for s in [
            "drop table x",
            "select * from nowhere",
            "select 1",
            "set offline",
            "set offline two",
            "set offline 0",
            "set offline -1",
            "set offline 99999999999999999999999",
            "remove backend 1 2",
            "add slave",
            "add pwd",
            "select @@",
            "select @@a; drop",
            "\u{0}\u{ff}ä€",
            "add slave [::1",
            "add slave h:1@",
            "add slave h:1@0",
        ] {
            let e = parse(s).expect_err(s).to_string();
            assert!(e.contains("SELECT * FROM help"), "{s:?}: {e}");
        }
        let long = "x".repeat(10_000);
        assert!(parse(&long).unwrap_err().to_string().len() < 200);
    }
}
