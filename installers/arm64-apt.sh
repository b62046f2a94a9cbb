# Sourced, not run. Apt for arm64 packages on an amd64 machine without touching it: a
# package list of its own in a scratch folder (APT::Architecture=arm64), so nothing is
# installed and dpkg's architectures stay as they are. Used by installers/signed-loaders.sh
# (shimaa64, grubaa64) and tests/lab/prepare-arm64.sh (the lab's ARM64 guest).
#
# arm64_apt_update DIR WHO: reads the arm64 package lists into DIR and sets $arm64 to the
# apt options that use them (`apt-get $arm64 download …`, `apt-cache $arm64 …`); WHO names
# the caller in the error. DIR/debs is made for the downloads.
arm64_apt_update() {
    arm64="-o Dir::State::Lists=$1/lists -o Dir::Cache=$1/cache -o APT::Architecture=arm64 -o APT::Architectures::=arm64"
    mkdir -p "$1/lists/partial" "$1/cache/archives/partial" "$1/debs"
    # apt-get download runs as _apt and must write here.
    chown -R _apt "$1" 2> /dev/null || chmod -R 777 "$1"
    # shellcheck disable=SC2086 # $arm64 is a list of apt options
    apt-get -q $arm64 update > "$1/update.log" 2>&1 || {
        cat "$1/update.log" >&2
        echo "$2: cannot read the arm64 package lists from the Debian mirror" >&2
        return 1
    }
}
