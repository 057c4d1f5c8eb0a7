# SPDX-License-Identifier: GPL-3.0-or-later
"""Sends several snf-probe probes in one process start of Ansible.

  python3 /usr/local/bin/snf_probe_many.py '[{"proto": "tcp", "dst": "203.0.113.8", "port": 5000, "sport": 41000}, ...]'

Runs `snf-probe send` for each probe in order (port defaults to 5000, sport
is optional) and prints the list of their JSON results. Waits a moment at
the end so that the peer's probe server has logged the last probe.
"""

import json
import subprocess
import sys
import time

results = []
for probe in json.loads(sys.argv[1]):
    cmd = ['snf-probe', 'send', probe['proto'], probe['dst'], '--port', str(probe.get('port', 5000))]
    if probe.get('sport'):
        cmd += ['--sport', str(probe['sport'])]
    results.append(json.loads(subprocess.check_output(cmd)))
time.sleep(0.3)
print(json.dumps(results))
