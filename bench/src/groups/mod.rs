//! The six measurement groups, one module each, run in the order of [`crate::cli::GROUPS`].
//! Each round of a case starts every server in turn on the same files, measures, and
//! stops it again, so a load change on the machine hits all servers alike.

mod dhcp;
mod http;
mod many_clients;
mod one_client;
mod relay;
mod startup;

use anyhow::{Result, bail};

use crate::suite::Suite;

impl Suite {
    /// Run one group by its `--only` name.
    pub fn run_group(&mut self, group: &str) -> Result<()> {
        match group {
            "tftp1" => self.tftp_single(),
            "relay" => self.tftp_relay(),
            "multi" => self.tftp_multi(),
            "http" => self.http(),
            "dhcp" => self.dhcp(),
            "startup" => self.startup(),
            other => bail!("no group called {other:?}"),
        }
    }
}
