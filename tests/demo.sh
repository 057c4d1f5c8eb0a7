#!/usr/bin/env bash
# make demo: bring up the lab (lan - gw - wan), let gw SNAT the lan to its
# public address, send TCP, UDP and ICMP from the lan host, and show what the
# wan peer saw and the NAT mapping conntrack keeps on gw. Cleans up after
# itself, also on failure or Ctrl-C; exits non-zero if a step misbehaves.
set -euo pipefail
cd "$(dirname "$0")"
export SNF_LAB_IMAGE=${SNF_LAB_IMAGE:-$(lab/image/tag.sh)}
log=$(mktemp /tmp/snf-demo.XXXXXX.log)
trap 'molecule --base-config lab/molecule-base.yml destroy -s snat >/dev/null 2>&1; bash lab/clean.sh; rm -f "$log"' EXIT INT TERM

say() { printf '\n== %s\n' "$*"; }
quiet() { "$@" >"$log" 2>&1 || { cat "$log"; echo "demo: failed: $*" >&2; exit 1; }; }
lab() { podman exec "${SNF_LAB_PREFIX:-snf-lab}.$1" "${@:2}"; }

say "Bringing up the lab: lan 192.168.1.100 -> gw (192.168.1.1 | 203.0.113.1) -> wan 203.0.113.8"
quiet molecule --base-config lab/molecule-base.yml create -s snat
quiet molecule --base-config lab/molecule-base.yml converge -s snat
echo "gw's NAT rules:"
lab gw iptables -t nat -S POSTROUTING | sed 's/^/  /'

say "Sending TCP, UDP and ICMP from the lan host to the wan host 203.0.113.8"
status=0
for proto in tcp udp icmp; do
  sent=$(lab lan snf-probe send "$proto" 203.0.113.8)
  token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$sent")
  seen=$(lab wan snf-probe seen "$token")
  python3 - "$proto" "$sent" "$seen" <<'PY' || status=1
import json, sys
proto, sent, seen = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if not sent['ok'] or not seen:
    print('  %-4s FAILED: sender %s, peer saw %s' % (proto, sent, seen))
    sys.exit(1)
port = ':%s' % seen[0]['sport'] if seen[0]['sport'] else ''
print('  %-4s the wan peer saw the connection come from %s%s' % (proto, seen[0]['src'], port))
sys.exit(0 if seen[0]['src'] == '203.0.113.1' else 1)
PY
done

say "conntrack -L on gw: original tuple from the lan host, reply tuple to the gateway's public address"
lab gw conntrack -L -f ipv4 2>/dev/null | sed 's/^/  /'
lab gw conntrack -L -f ipv4 2>/dev/null | grep -q 'src=192.168.1.100 dst=203.0.113.8 .*src=203.0.113.8 dst=203.0.113.1 ' || status=1

if [ "$status" -eq 0 ]; then say "Demo finished: every flow was translated to 203.0.113.1"; else say "Demo FAILED"; fi
exit "$status"
