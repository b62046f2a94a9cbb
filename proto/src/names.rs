//! Names in the served namespace that the generated menus use and the engine serves.

/// Where a booting machine asks what it boots this time (`<its MAC, dashed>.ipxe` from
/// iPXE, `.cfg` from GRUB): the first thing every generated menu does. The answer is
/// made on request (the engine's `next_boot`): a planned one-off boot, imaging, or nothing.
pub const NEXT_BOOT_DIR: &str = "portapxe/next";
