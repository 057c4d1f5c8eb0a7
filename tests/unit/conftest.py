# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the checkout importable as ansible_collections.stateful.netfilter."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, '.cache', 'collections')
LINK = os.path.join(COLLECTIONS, 'ansible_collections', 'stateful', 'netfilter')

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK))
    os.symlink(ROOT, LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
