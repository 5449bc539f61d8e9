//! `failover = "follow" | "auto" | "off"`, and the older boolean
//! `auto-failover` that it replaces.

use std::fmt;
use std::str::FromStr;

/// Who changes roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailoverMode {
    /// Follow what an external tool (keepalived, orchestrator, an operator)
    /// did; Gantry promotes nothing by itself (admin `FAILOVER` still can).
    #[default]
    Follow,
    /// Gantry detects a failed primary and promotes a replica.
    Auto,
    /// Roles never change, not even followed.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeError {
    #[error("failover = {0:?}: expected \"follow\", \"auto\" or \"off\"")]
    Unknown(String),
    #[error("failover = \"{mode}\" contradicts auto-failover = {legacy}")]
    Contradicts { mode: FailoverMode, legacy: bool },
}

impl FromStr for FailoverMode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<FailoverMode, ModeError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "follow" => Ok(FailoverMode::Follow),
            "auto" => Ok(FailoverMode::Auto),
            "off" => Ok(FailoverMode::Off),
            _ => Err(ModeError::Unknown(s.to_string())),
        }
    }
}

impl fmt::Display for FailoverMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverMode::Follow => "follow",
            FailoverMode::Auto => "auto",
            FailoverMode::Off => "off",
        })
    }
}

impl FailoverMode {
    /// The mode from both options as given (`None`: not set).
    /// `auto-failover = true` alone means `auto`, `false` alone means the
    /// default. `failover` decides when both are set, except that `true`
    /// with another mode is refused: silently preferring one would surprise
    /// whoever wrote the other (`false`, the old default, says nothing).
    pub fn from_options(
        failover: Option<&str>,
        auto_failover: Option<bool>,
    ) -> Result<FailoverMode, ModeError> {
        let mode = failover.map(str::parse).transpose()?;
        match (mode, auto_failover) {
            (None, Some(true)) => Ok(FailoverMode::Auto),
            (None, _) => Ok(FailoverMode::default()),
            (Some(mode), None) => Ok(mode),
            (Some(mode), Some(false)) => Ok(mode),
            (Some(FailoverMode::Auto), Some(true)) => Ok(FailoverMode::Auto),
            (Some(mode), Some(legacy)) => Err(ModeError::Contradicts { mode, legacy }),
        }
    }

    /// Whether Gantry itself may promote a replica automatically.
    pub fn promotes(self) -> bool {
        self == FailoverMode::Auto
    }

    /// Whether role changes made by others are followed (`auto` follows
    /// them too: an operator may still move the primary by hand).
    pub fn follows(self) -> bool {
        self != FailoverMode::Off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively() {
        assert_eq!("follow".parse(), Ok(FailoverMode::Follow));
        assert_eq!("AUTO".parse(), Ok(FailoverMode::Auto));
        assert_eq!(" Off ".parse(), Ok(FailoverMode::Off));
        for bad in ["", "on", "true", "automatic", "auto-failover"] {
            assert_eq!(
                bad.parse::<FailoverMode>(),
                Err(ModeError::Unknown(bad.to_string()))
            );
        }
    }

    #[test]
    fn display_round_trips_and_default_is_follow() {
        for m in [FailoverMode::Follow, FailoverMode::Auto, FailoverMode::Off] {
            assert_eq!(m.to_string().parse(), Ok(m));
        }
        assert_eq!(FailoverMode::default(), FailoverMode::Follow);
    }

    #[test]
    fn legacy_auto_failover_true_means_auto() {
        use FailoverMode::*;
        assert_eq!(FailoverMode::from_options(None, None), Ok(Follow));
        assert_eq!(FailoverMode::from_options(None, Some(true)), Ok(Auto));
        assert_eq!(FailoverMode::from_options(None, Some(false)), Ok(Follow));
        assert_eq!(FailoverMode::from_options(Some("off"), None), Ok(Off));
        assert_eq!(
            FailoverMode::from_options(Some("auto"), Some(true)),
            Ok(Auto)
        );
        assert_eq!(
            FailoverMode::from_options(Some("off"), Some(false)),
            Ok(Off)
        );
        assert_eq!(
            FailoverMode::from_options(Some("off"), Some(true)),
            Err(ModeError::Contradicts {
                mode: Off,
                legacy: true
            })
        );
        assert_eq!(
            FailoverMode::from_options(Some("auto"), Some(false)),
            Ok(Auto)
        );
        assert!(FailoverMode::from_options(Some("sometimes"), Some(true)).is_err());
        let msg = FailoverMode::from_options(Some("follow"), Some(true))
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "failover = \"follow\" contradicts auto-failover = true"
        );
    }

    #[test]
    fn what_each_mode_allows() {
        assert!(FailoverMode::Auto.promotes() && FailoverMode::Auto.follows());
        assert!(!FailoverMode::Follow.promotes() && FailoverMode::Follow.follows());
        assert!(!FailoverMode::Off.promotes() && !FailoverMode::Off.follows());
    }
}
