# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the pip bootstrap script that ansible-test downloads.

tests/setup.sh copies this file into ansible-test's cache, because the host
it would be downloaded from is unreachable here. ansible-test runs it in a new
virtual environment with pip's install arguments. ensurepip runs in a
subprocess: called in-process it points PIP_CONFIG_FILE at /dev/null, which
drops this machine's certificate settings for every later pip call.
"""

import subprocess
import sys

DROPPED = ('--no-setuptools', '--no-wheel')

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install']
                      + [arg for arg in sys.argv[1:] if arg not in DROPPED])
