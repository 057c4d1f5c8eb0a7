#!/usr/bin/env bash
# Runs molecule scenarios in parallel lanes:
#   molecule.sh LANES SCENARIO...
# Each lane has a lab of its own (prefix $SNF_LAB_PREFIX-N, default
# snf-lab-N) and takes the next scenario from one queue until it is empty,
# the longest scenarios first (ORDER below, from the suite's own timings;
# scenarios not listed there go first, as their cost is unknown). Every
# line of output is prefixed with its scenario's name; every scenario runs
# even after another failed; each one's time and result are printed at
# the end. Each lane's lab is removed when the script ends, also on failure
# or interrupt.
set -u
lanes=$1
shift
[ "$#" -gt 0 ] || { echo "molecule.sh: no scenario" >&2; exit 2; }
[ "$lanes" -gt "$#" ] && lanes=$#
base=${SNF_LAB_PREFIX:-snf-lab}
here=$(cd "$(dirname "$0")" && pwd)
# Longest first (seconds measured on the 2-core machine, one lane).
ORDER="fleet gateway reliability firewall trixie nat_nft nat_legacy nat_nftables bullseye conntrack boot snat"

work=$(mktemp -d)
cleanup() {
  for lane in $(seq 1 "$lanes"); do bash "$here/lab/clean.sh" "$base-$lane"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM HUP PIPE

# The queue: unknown scenarios, then the known ones in ORDER.
for scenario in "$@"; do
  case " $ORDER " in *" $scenario "*) ;; *) echo "$scenario" >> "$work/queue" ;; esac
done
for scenario in $ORDER; do
  case " $* " in *" $scenario "*) echo "$scenario" >> "$work/queue" ;; esac
done

next() {
  flock "$work/lock" bash -c 'head -n 1 "$1"; sed -i 1d "$1"' _ "$work/queue"
}

lane() {
  local prefix=$1 scenario start rc
  while scenario=$(next) && [ -n "$scenario" ]; do
    start=$(date +%s)
    echo "=== molecule scenario $scenario (lab $prefix)"
    ( cd "$here" && SNF_LAB_PREFIX=$prefix molecule --base-config lab/molecule-base.yml test -s "$scenario" ) 2>&1 \
      | sed -u "s/^/[$scenario] /"
    rc=${PIPESTATUS[0]}
    printf '%-14s %-7s %5ds  (lab %s)\n' "$scenario" "$([ "$rc" -eq 0 ] && echo passed || echo FAILED)" \
      "$(( $(date +%s) - start ))" "$prefix" >> "$work/results"
    echo "=== molecule scenario $scenario: rc $rc in $(( $(date +%s) - start ))s"
  done
}

for n in $(seq 1 "$lanes"); do
  lane "$base-$n" &
done
wait
echo "=== molecule scenarios ($lanes lanes)"
cat "$work/results"
! grep -q ' FAILED ' "$work/results" && [ "$(wc -l < "$work/results")" -eq "$#" ]
