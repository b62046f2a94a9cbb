#!/usr/bin/env bash
# Multicast restore figures for BENCHMARKS.md: one image sent by `portapxe image restore`
# to 1 and 3 seats (Debian's udp-receiver), the same with udpcast's own udp-sender, and the
# same bytes fetched by 3 seats at once over unicast HTTP from `portapxe serve`.
#
# Usage (root): bench/multicast.sh PORTAPXE_BINARY [SIZE_MB] [RUNS]
# Everything runs in network namespaces this script makes (a bridge and three seats on
# veth pairs) and deletes; nothing touches the root namespace's network.
set -euo pipefail
bin=$(readlink -f "$1")
size_mb=${2:-256}
runs=${3:-3}
work=$(mktemp -d /tmp/portapxe-bench-mc.XXXXXX)
srv=pmb-srv
seats=(pmb-c1 pmb-c2 pmb-c3)
cleanup() {
    for ns in "$srv" "${seats[@]}"; do ip netns del "$ns" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$srv"
ip -n "$srv" link set lo up
ip -n "$srv" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$srv" addr add 10.99.0.1/24 brd + dev br0
ip -n "$srv" link set br0 up
for i in 0 1 2; do
    ns=${seats[$i]}
    ip netns add "$ns"
    ip -n "$srv" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$srv" link set "v$i" master br0
    ip -n "$srv" link set "v$i" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.99.0.1$i/24" brd + dev eth0
    ip -n "$ns" link set eth0 up
done

# The image: a partition table and one partition of incompressible bytes.
image="$work/images/bench"
mkdir -p "$image"
printf 'label: dos\n' > "$image/table.sfdisk"
head -c "$((size_mb << 20))" /dev/urandom > "$image/part1.img.zst"
part() { printf 'file = "%s"\nbytes = %s\nsha256 = "%s"\n' "$1" "$(stat -c %s "$image/$1")" "$(sha256sum "$image/$1" | cut -d' ' -f1)"; }
{
    printf 'format = 1\nname = "bench"\nid = "bench-0001"\ncreated = 0\ndisk_bytes = %s\n\n[table]\n' "$(((size_mb + 16) << 20))"
    part table.sfdisk
    printf '\n[[partitions]]\nnumber = 1\nfilesystem = "unknown"\nmethod = "raw"\npartition_bytes = %s\n' "$((size_mb << 20))"
    part part1.img.zst
} > "$image/image.toml"
# The same bytes as one file, for udp-sender and HTTP.
mkdir -p "$work/root"
tar -cf "$work/root/stream.tar" -C "$image" image.toml table.sfdisk part1.img.zst
stream_mb=$(($(stat -c %s "$work/root/stream.tar") / 1000000))

now() { date +%s.%N; }
receivers() {  # N: start N udp-receivers writing to $work/outK
    pids=()
    for ((k = 0; k < $1; k++)); do
        ip netns exec "${seats[$k]}" timeout 300 udp-receiver --nokbd --interface eth0 --file "$work/out$k" 2> /dev/null &
        pids+=($!)
    done
    sleep 0.5
}
check() {  # N: every seat has the partition, byte for byte
    for ((k = 0; k < $1; k++)); do
        tar -xOf "$work/out$k" part1.img.zst 2> /dev/null | cmp -s - "$image/part1.img.zst" \
            || echo "  seat $k: its copy of the partition differs"
        rm -f "$work/out$k"
    done
}
echo "stream: $stream_mb MB; runs: $runs"
run_all() {
    for n in 1 3; do
        for ((run = 1; run <= runs; run++)); do
            receivers "$n"
            start=$(now)
            line=$(ip netns exec "$srv" timeout 300 "$bin" image restore bench --interface br0 --images "$work/images" \
                --seats "$n" --wait 30 2> /dev/null | grep '^Sent ')
            end=$(now)
            wait "${pids[@]}" || true
            echo "portapxe multicast, $n seat(s), run $run: $line wall $(echo "$end - $start" | bc) s"
            check "$n"
        done
        for ((run = 1; run <= runs; run++)); do
            receivers "$n"
            start=$(now)
            ip netns exec "$srv" timeout 300 udp-sender --nokbd --interface br0 --file "$work/root/stream.tar" \
                --min-receivers "$n" > /dev/null 2>&1
            end=$(now)
            wait "${pids[@]}" || true
            echo "udp-sender, $n seat(s), run $run: wall $(echo "$end - $start" | bc) s (includes its 2 s start wait)"
            check "$n"
        done
    done
    # Unicast HTTP: three seats download the stream at once.
    ip netns exec "$srv" "$bin" serve --interface br0 --root "$work/root" --mode off --state-dir "$work/state" \
        > "$work/serve.log" 2>&1 &
    serve=$!
    sleep 2
    for ((run = 1; run <= runs; run++)); do
        start=$(now)
        cpids=()
        for k in 0 1 2; do
            ip netns exec "${seats[$k]}" curl -s -o "$work/out$k" "http://10.99.0.1/stream.tar" &
            cpids+=($!)
        done
        wait "${cpids[@]}"
        end=$(now)
        echo "portapxe HTTP unicast, 3 seats at once, run $run: wall $(echo "$end - $start" | bc) s"
        check 3
    done
    kill "$serve"
    wait "$serve" 2> /dev/null || true
}
echo "== link: the namespace's veth pairs (memory speed) =="
run_all
# A laptop's 1 Gbit/s link to the switch: what the server sends is shaped on its side.
ip netns exec "$srv" tc qdisc add dev br0 root tbf rate 1gbit burst 256k latency 50ms
echo "== link: 1 Gbit/s from the server (tbf on its bridge port) =="
run_all
