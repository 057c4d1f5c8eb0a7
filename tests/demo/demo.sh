#!/usr/bin/env bash
# make demo: bring up the lab (lan - gw - wan), make gw a stateful NAT gateway
# with the collection, send TCP, UDP and ICMP from the lan host, and show what
# the wan peer saw, the NAT mapping conntrack_info finds on gw, the summary,
# a targeted flush and the table after it. Cleans up after itself, also on
# failure or Ctrl-C; exits non-zero when a step does not behave.
set -euo pipefail
cd "$(dirname "$0")"
export SNF_LAB_PREFIX=snf-demo
export SNF_LAB_IMAGE=${SNF_LAB_IMAGE:-$(../lab/image/tag.sh)}
export ANSIBLE_INVENTORY=$PWD/inventory.yml
log=$(mktemp /tmp/snf-demo.XXXXXX)
trap 'bash ../lab/clean.sh; rm -f "$log"' EXIT INT TERM HUP PIPE

LAN_HOST=192.168.1.100
WAN_HOST=203.0.113.8
GW_PUBLIC=203.0.113.1

say() { printf '\n== %s\n' "$*"; }
quiet() { "$@" >"$log" 2>&1 || { cat "$log"; echo "demo: failed: $*" >&2; exit 1; }; }
in_lab() { podman exec "$SNF_LAB_PREFIX.$1" "${@:2}"; }
module() { ansible gw -o -m "stateful.netfilter.$1" -a "$2" 2>/dev/null || true; }

start=$(date +%s)
say "Bringing up the lab: lan $LAN_HOST -> gw (192.168.1.1 | $GW_PUBLIC) -> wan $WAN_HOST"
quiet ansible-playbook ../lab/create.yml -e '{"lab_platforms": ["lan", "gw", "wan"]}'

say "Provisioning gw: ansible-playbook stateful.netfilter.gateway (SNAT 192.168.1.0/24 out of eth1 to $GW_PUBLIC, stateful firewall)"
ansible-playbook stateful.netfilter.gateway > "$log" 2>&1 || { cat "$log"; echo "demo: the gateway playbook failed" >&2; exit 1; }
# The playbook's own report (its table of gateways), then the NAT rule it wrote.
sed -n '/TASK \[Report the gateways\]/,/^$/p' "$log" | grep -E '^ *"' | grep -v '"msg"' | sed 's/^ *"//; s/",\{0,1\}$//; s/^/  /'
grep -E '^(gw|PLAY RECAP)' "$log" | tail -n 1 | sed 's/^/  /'
in_lab gw iptables -t nat -S | grep -- '-j SNAT' | sed 's/^/  gw# /'

say "Sending TCP, UDP and ICMP from the lan host $LAN_HOST to the wan host $WAN_HOST"
status=0
for proto in tcp udp icmp; do
  sent=$(in_lab lan snf-probe send "$proto" "$WAN_HOST")
  token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$sent")
  seen=$(in_lab wan snf-probe seen "$token")
  python3 - "$proto" "$sent" "$seen" "$GW_PUBLIC" <<'PY' || status=1
import json, sys
proto, sent, seen, public = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
if not sent['ok'] or not seen:
    print('  %-4s FAILED: sender %s, peer saw %s' % (proto, sent, seen))
    sys.exit(1)
port = ':%s' % seen[0]['sport'] if seen[0]['sport'] else ''
print('  %-4s the wan peer saw it come from %s%s' % (proto, seen[0]['src'], port))
sys.exit(0 if seen[0]['src'] == public else 1)
PY
done

say "conntrack_info on gw: the original tuple from $LAN_HOST, the reply tuple to $GW_PUBLIC"
module conntrack_info "{\"src\": \"$LAN_HOST\", \"family\": \"ipv4\"}" > "$log"
python3 show.py entries < "$log" || status=1
python3 - "$log" "$LAN_HOST" "$WAN_HOST" "$GW_PUBLIC" <<'PY' || { echo "  no SNAT'd entry with both tuples"; status=1; }
import json, sys
data = json.loads(open(sys.argv[1]).read().partition('=>')[2])
lan, wan, public = sys.argv[2:5]
ok = [e for e in data['entries'] if e['orig']['src'] == lan and e['orig']['dst'] == wan
      and e['reply']['src'] == wan and e['reply']['dst'] == public and e['nat'] == 'snat']
sys.exit(0 if len(ok) >= 3 else 1)
PY

say "The summary of the whole table"
module conntrack_info '{"summary_only": true}' > "$log"
python3 show.py summary < "$log" || status=1

say "A targeted flush: the UDP entries of $LAN_HOST (conntrack -D -s $LAN_HOST -p udp), first as a dry run"
flush_args="{\"src\": \"$LAN_HOST\", \"protocol\": \"udp\"}"
ansible gw -o --check -m stateful.netfilter.conntrack_flush -a "$flush_args" > "$log" 2>/dev/null || true
python3 show.py flush < "$log" | sed 's/deleted/would delete/g' || status=1
echo "  ... and for real:"
module conntrack_flush "$flush_args" > "$log"
python3 show.py flush < "$log" || status=1

say "The table after the flush"
module conntrack_info '{"family": "ipv4"}' > "$log"
python3 show.py entries < "$log" || status=1
python3 - "$log" <<'PY' || { echo "  UDP entries are still there"; status=1; }
import json, sys
data = json.loads(open(sys.argv[1]).read().partition('=>')[2])
sys.exit(1 if any(e['protocol'] == 'udp' for e in data['entries']) else 0)
PY

took=$(( $(date +%s) - start ))
if [ "$status" -eq 0 ]; then
  say "Demo finished in ${took}s: every flow was translated to $GW_PUBLIC; the flush removed exactly the UDP entry"
else
  say "Demo FAILED (${took}s)"
fi
exit "$status"
