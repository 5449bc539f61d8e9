//! The command line: `--config FILE` plus one `--<option>` per entry of
//! [`OPTIONS`], built from that table so the names cannot drift.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{value_parser, Arg, ArgAction, Command};

use super::{split_list, ConfigError, Kind, Layer, Raw, OPTIONS};

/// The clap command for `gantry`.
pub(super) fn command() -> Command {
    let mut cmd = Command::new("gantry")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Gantry: a MySQL read/write-splitting proxy (Atlas-compatible options)")
        .after_help(
            "Every option can also be set in the --config TOML file under the same name; \
             the command line overrides the file. List options take comma-separated \
             values and may be repeated.",
        )
        .args_override_self(true)
        .arg(
            Arg::new("config")
                .short('c')
                .long("config")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("TOML configuration file"),
        );
    for o in OPTIONS {
        let default = match o.default {
            "(required)" => "[required]".to_string(),
            d => format!(
                "[default: {}]",
                d.trim_start_matches('(').trim_end_matches(')')
            ),
        };
        let arg = Arg::new(o.key)
            .long(o.key)
            .help(format!("{} {default}", o.help));
        let arg = match o.kind {
            Kind::Str => arg.value_name("VALUE").action(ArgAction::Set),
            Kind::Secret => arg
                .value_name("PASSWORD")
                .action(ArgAction::Set)
                .allow_hyphen_values(true),
            Kind::Int { .. } => arg.value_name("N").action(ArgAction::Set),
            Kind::Bool => arg
                .value_name("BOOL")
                .action(ArgAction::Set)
                .num_args(0..=1)
                .default_missing_value("true"),
            Kind::List => arg.value_name("LIST").action(ArgAction::Append),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses the command line into the `--config` path and the option layer.
pub(super) fn parse<I, T>(args: I) -> Result<(Option<PathBuf>, Layer), ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command()
        .try_get_matches_from(args)
        .map_err(convert_error)?;
    let config = matches.get_one::<PathBuf>("config").cloned();
    let mut layer = Layer::new();
    for o in OPTIONS {
        match o.kind {
            Kind::List => {
                if let Some(values) = matches.get_many::<String>(o.key) {
                    let items = values.flat_map(|v| split_list(v)).collect();
                    layer.insert(o.key, Raw::List(items));
                }
            }
            _ => {
                if let Some(v) = matches.get_one::<String>(o.key) {
                    layer.insert(o.key, Raw::Str(v.clone()));
                }
            }
        }
    }
    Ok((config, layer))
}

/// Turns a clap error into a [`ConfigError`]: help/version output becomes
/// [`ConfigError::Help`]; anything else a one-line [`ConfigError::Cli`]
/// (the first line of clap's message plus its tip, if any).
fn convert_error(err: clap::Error) -> ConfigError {
    let text = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ConfigError::Help(text),
        _ => {
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("invalid command line");
            let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
            if let Some(tip) = lines.find_map(|l| l.strip_prefix("tip: ")) {
                msg.push_str(&format!(" ({tip})"));
            }
            ConfigError::Cli(msg)
        }
    }
}
