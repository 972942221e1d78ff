"""Rig hosts: where rig runs happen (`local` plus `ssh://user@host[:port]` entries).

config.py  the home's host list (<home>/hosts.json) and each host's drain state
links.py   one OpenSSH forward per remote host and process (<home>/run/<name>.<pid>.sock), kept alive
check.py   preflight: Docker reachable, engine facts, rig image (pushed when missing), clock
pool.py    the engine's slots across hosts, infrastructure failures and draining
cli.py     `cambrian hosts add|list|check|remove`
"""
