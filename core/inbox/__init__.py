"""Posteingang: replies and bounces received over IMAP (see docs/architecture.md).

`parse` reads one raw mail into plain values (pure), `sanitize` makes its HTML safe to show;
the adapter that talks IMAP is `core.adapters.imap`.
"""
