//! The process's open-file limit. Every TFTP transfer holds a socket and a file, every
//! HTTP connection a socket (and a file while it sends): under the usual soft limit of
//! 1,024 one TFTP flood (512 transfers × 2) made HTTP fail and TFTP unable to open files.
//! The soft limit is raised to the hard one at start, which needs no privilege.

/// What the start did with the open-file limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFileLimit {
    Raised {
        from: u64,
        to: u64,
    },
    /// The soft limit already was the hard one.
    AlreadyAtMost(u64),
    /// It could not be read or raised (the words say why).
    Unchanged(String),
    /// This system has no such per-process limit to raise (Windows).
    NotApplicable,
}

impl std::fmt::Display for OpenFileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Raised { from, to } => write!(f, "open-file limit raised from {from} to {to}"),
            Self::AlreadyAtMost(limit) => write!(f, "open-file limit {limit}"),
            Self::Unchanged(why) => write!(
                f,
                "cannot raise the open-file limit ({why}): under a flood of requests TFTP and HTTP may run out of files"
            ),
            Self::NotApplicable => write!(f, "no open-file limit to raise on this system"),
        }
    }
}

/// The open-file soft limit now (what the services size their caps by), or 1,024 where
/// it cannot be read or there is none (Windows has no such per-process limit).
pub fn open_file_soft_limit() -> u64 {
    #[cfg(unix)]
    {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise_open_file_limit() -> OpenFileLimit {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok(limits) => limits,
            Err(err) => return OpenFileLimit::Unchanged(err.to_string()),
        };
        if soft >= hard {
            return OpenFileLimit::AlreadyAtMost(soft);
        }
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => OpenFileLimit::Raised { from: soft, to: hard },
            Err(err) => OpenFileLimit::Unchanged(err.to_string()),
        }
    }
    #[cfg(not(unix))]
    {
        OpenFileLimit::NotApplicable
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Start where most systems start a program (lowering needs no privilege).
        let start = hard.min(1024);
        setrlimit(Resource::RLIMIT_NOFILE, start, hard).unwrap();
        let result = raise_open_file_limit();
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard, "{result}");
        if start < hard {
            assert_eq!(result, OpenFileLimit::Raised { from: start, to: hard });
        }
        assert_eq!(raise_open_file_limit(), OpenFileLimit::AlreadyAtMost(hard));
    }
}
