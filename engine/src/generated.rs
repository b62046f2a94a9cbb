//! Files the engine makes itself (the iPXE boot script) and serves over TFTP and
//! HTTP as if they lay in the boot root. A generated file shadows a real one of
//! the same name, so what the DHCP reply points at is always what gets served.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

/// Root-relative paths (`/` separators, no leading slash) to their content.
#[derive(Clone, Default, Debug)]
pub struct GeneratedFiles {
    files: Arc<HashMap<String, Bytes>>,
}

impl GeneratedFiles {
    pub fn new(files: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        Self { files: Arc::new(files.into_iter().collect()) }
    }

    /// These files and `more` (which win over a file of the same path).
    pub fn with(&self, more: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        let mut files = (*self.files).clone();
        files.extend(more);
        Self { files: Arc::new(files) }
    }

    /// `path` must already be normalised the way the TFTP and HTTP path rules do it.
    pub fn get(&self, path: &str) -> Option<Bytes> {
        self.files.get(path).cloned()
    }
}
