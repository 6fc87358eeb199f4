"""mailroom's development harness, shared by tests/ and bench/ (never in the mailroom wheel).

- ``realserver``: the Cyrus test server (``dev/cyrus/start.sh``) and throwaway accounts
  seen through raw JMAP, CardDAV, IMAP and LMTP.
- ``faultserver``: scripted hostile JMAP / EventSource servers on 127.0.0.1.
- ``triagebox``: an account prepared by `mailroom setup --apply`; act as the user, read
  the end state.
- ``servicebox``: a ``triagebox.Box`` served by a real `mailroom run`.
- ``benchkit``: what the bench scripts share (a Cyrus for a run, request counting,
  medians and tables).
- ``probes``: many concurrent connections to a health server.
- ``wait``: ``wait_until``, the one poll loop of tests and benches.

Installed editable by ``scripts/test.sh install`` (``dev/pyproject.toml``).
"""
