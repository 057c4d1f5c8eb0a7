#!/usr/bin/env bash
# make demo: bring up the lab (lan - gw - wan), make gw a stateful NAT gateway
# with the collection, send TCP, UDP and ICMP from the lan host, and show what
# the wan peer saw, the NAT mapping conntrack_info finds on gw, a long-lived
# TCP flow as `ESTABLISHED ... [ASSURED]` with both tuples (beside what
# conntrack -L prints on gw), the kernel's statistics, the summary with the
# top talkers, a targeted flush and the table after it. Cleans up after
# itself, also on failure or Ctrl-C; exits non-zero when a step does not
# behave. SNF_DEMO_PREFIX names the lab (default snf-demo).
set -euo pipefail
cd "$(dirname "$0")"
export SNF_LAB_PREFIX=${SNF_DEMO_PREFIX:-snf-demo}
export SNF_LAB_IMAGE=${SNF_LAB_IMAGE:-$(../lab/image/tag.sh)}
export ANSIBLE_INVENTORY=$PWD/inventory.yml
log=$(mktemp /tmp/snf-demo.XXXXXX)
trap 'bash ../lab/clean.sh; rm -f "$log"' EXIT INT TERM HUP PIPE

LAN_HOST=192.168.1.100
WAN_HOST=203.0.113.8
GW_PUBLIC=203.0.113.1
LONG_PORT=8080
LONG_SERVER='
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(1)
peer = server.accept()[0]
while peer.recv(65536):
    pass
'
LONG_CLIENT='
import socket, sys, time
peer = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
peer.sendall(b"x" * 65536)
time.sleep(600)
'

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

say "The summary of the whole table, with the top talkers (accounting is on: nat_gateway_conntrack_accounting, nf_conntrack_acct=1)"
module conntrack_info '{"summary_only": true, "summary_details": ["talkers"]}' > "$log"
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

say "A long-lived TCP flow: $LAN_HOST holds a connection to $WAN_HOST:$LONG_PORT through gw (as the seed shows it)"
# A server on wan that reads until the peer closes, a client on lan that sends 64 KiB and stays connected;
# both end with the lab.
in_lab wan python3 -c "$LONG_SERVER" "$LONG_PORT" &
sleep 0.5
in_lab lan python3 -c "$LONG_CLIENT" "$WAN_HOST" "$LONG_PORT" &
for _ in 1 2 3 4 5 6 7 8 9 10; do
  in_lab gw conntrack -L -p tcp --dport "$LONG_PORT" --state ESTABLISHED 2>/dev/null | grep -q ASSURED && break
  sleep 0.5
done
module conntrack_info "{\"src\": \"$LAN_HOST\", \"protocol\": \"tcp\", \"dport\": $LONG_PORT}" > "$log"
echo "  conntrack_info:"
python3 show.py conntrack < "$log" || status=1
echo "  conntrack -L on gw, for comparison:"
in_lab gw conntrack -L -p tcp --dport "$LONG_PORT" 2>/dev/null | sed 's/^/    /'
python3 - "$log" "$LAN_HOST" "$WAN_HOST" "$GW_PUBLIC" "$LONG_PORT" <<'PY' || { echo "  no ESTABLISHED [ASSURED] entry with both tuples"; status=1; }
import json, sys
data = json.loads(open(sys.argv[1]).read().partition('=>')[2])
lan, wan, public, port = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ok = [e for e in data['entries'] if e['state'] == 'ESTABLISHED' and 'ASSURED' in e['status']
      and e['orig']['src'] == lan and e['orig']['dst'] == wan and e['orig']['dport'] == port
      and e['reply']['src'] == wan and e['reply']['dst'] == public and e['reply']['sport'] == port]
sys.exit(0 if ok else 1)
PY

say "The kernel's statistics on gw: conntrack_stats, two samples a second apart (conntrack -S and -C)"
module conntrack_stats '{"interval": 1}' > "$log"
python3 show.py stats < "$log" || status=1

say "The top talkers now: $LAN_HOST's long flow carries the bytes"
module conntrack_info '{"summary_only": true, "summary_details": ["talkers"]}' > "$log"
python3 show.py talkers < "$log" || status=1
python3 - "$log" "$LAN_HOST" <<'PY' || { echo "  $LAN_HOST is not the top talker by bytes"; status=1; }
import json, sys
data = json.loads(open(sys.argv[1]).read().partition('=>')[2])
talkers = data['summary']['top_talkers_bytes']
sys.exit(0 if talkers and talkers[0]['address'] == sys.argv[2] and talkers[0]['bytes'] > 65536 else 1)
PY

took=$(( $(date +%s) - start ))
if [ "$status" -eq 0 ]; then
  say "Demo finished in ${took}s: every flow was translated to $GW_PUBLIC; the flush removed exactly the UDP entry"
else
  say "Demo FAILED (${took}s)"
fi
exit "$status"
