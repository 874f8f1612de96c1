"""core.adapters.imap against a real Dovecot on 127.0.0.1 (started by the tests, throw-away
configuration): implicit TLS, STARTTLS and plain login, listing, fetching without \\Seen, moving
with MOVE and with COPY+EXPUNGE, creating the processed folder, error texts."""

from __future__ import annotations

import ssl

import pytest

from core.adapters.imap import ImapConfig, ImapError, open_mailbox
from tests.support.dovecot import dovecot, dovecot_server  # noqa: F401 - fixtures
from tests.support.dovecot import free_port, start_or_skip


def mail(n: int, *, size: int = 0) -> bytes:
    body = ("Hallo %d\r\n" % n) + ("x" * 76 + "\r\n") * (size // 78)
    return (f"From: praxis{n}@example.org\r\nTo: vermittlung@example.de\r\nSubject: AW: Ref. A{n}\r\n"
            f"Message-ID: <m{n}@example.org>\r\n\r\n{body}").encode()


def config(server, **kw) -> ImapConfig:
    values = dict(host="127.0.0.1", port=server.port, security="plain", user=server.user, password=server.password,
                  folder="INBOX", processed_folder="Verarbeitet", timeout_s=10)
    values.update(kw)
    return ImapConfig(**values)


def test_list_fetch_and_move_plain(dovecot):
    dovecot.append("INBOX", mail(1), mail(2), mail(3))
    with open_mailbox(config(dovecot)) as box:
        uids = box.new_uids()
        assert len(uids) == 3
        fetched = list(box.fetch(uids))
        assert [f.raw for f in fetched] == [mail(1), mail(2), mail(3)]
        assert all(f.size == len(f.raw) and not f.truncated for f in fetched)
        assert fetched[0].internal_date is not None
        box.move_to_processed(uids[:2])
        assert box.new_uids() == uids[2:]
        box.move_to_processed(uids[:2])  # again: nothing left to move, no error
    assert dovecot.messages("Verarbeitet") == [mail(1), mail(2)]
    assert dovecot.messages("INBOX") == [mail(3)]


def test_fetch_does_not_mark_seen(dovecot):
    dovecot.append("INBOX", mail(1))
    with open_mailbox(config(dovecot)) as box:
        list(box.fetch(box.new_uids()))
    client = dovecot.connect()
    try:
        client.select_folder("INBOX", readonly=True)
        assert client.search("UNSEEN")
    finally:
        client.logout()


def test_move_without_move_capability_uses_copy_and_expunge(dovecot):
    dovecot.append("INBOX", mail(1), mail(2))
    with open_mailbox(config(dovecot, processed_folder="Archiv/Posteingang erledigt"), use_move=False) as box:
        assert box.can_move is False
        uids = box.new_uids()
        box.move_to_processed(uids[:1])
        assert box.new_uids() == uids[1:]
    assert dovecot.messages("Archiv/Posteingang erledigt") == [mail(1)]
    assert dovecot.messages("INBOX") == [mail(2)]


def test_processed_folder_with_umlauts_is_created(dovecot):
    dovecot.append("INBOX", mail(1))
    with open_mailbox(config(dovecot, processed_folder="Erledigt-Rückläufer")) as box:
        box.move_to_processed(box.new_uids())
    assert dovecot.messages("Erledigt-Rückläufer") == [mail(1)]


def test_large_message_comes_with_header_only(dovecot):
    dovecot.append("INBOX", mail(1), mail(2, size=20_000))
    with open_mailbox(config(dovecot)) as box:
        fetched = list(box.fetch(box.new_uids(), max_bytes=10_000))
    assert not fetched[0].truncated
    assert fetched[1].truncated and fetched[1].size > 20_000
    assert fetched[1].raw.startswith(b"From: praxis2@example.org") and b"Hallo" not in fetched[1].raw


def test_many_messages_in_batches(dovecot):
    dovecot.append_many("INBOX", (mail(i) for i in range(120)))
    with open_mailbox(config(dovecot)) as box:
        uids = box.new_uids()
        assert len(uids) == 120
        assert box.new_uids(limit=10) == uids[:10]
        assert len(list(box.fetch(uids, batch=25))) == 120
        box.move_to_processed(uids)
        assert box.new_uids() == []
    assert len(dovecot.uids("Verarbeitet")) == 120


def test_implicit_tls(dovecot):
    dovecot.append("INBOX", mail(1))
    cfg = config(dovecot, port=dovecot.tls_port, security="ssl", ssl_context=dovecot.client_ssl_context())
    with open_mailbox(cfg) as box:
        assert [f.raw for f in box.fetch(box.new_uids())] == [mail(1)]


def test_starttls(dovecot):
    dovecot.append("INBOX", mail(1))
    cfg = config(dovecot, security="starttls", ssl_context=dovecot.client_ssl_context())
    with open_mailbox(cfg) as box:
        assert len(box.new_uids()) == 1


def test_tls_with_untrusted_certificate_is_refused(dovecot):
    cfg = config(dovecot, port=dovecot.tls_port, security="ssl", ssl_context=ssl.create_default_context())
    with pytest.raises(ImapError, match="TLS-Fehler"):
        with open_mailbox(cfg):
            pass


def test_wrong_password():
    # Its own server: Dovecot slows down further logins from an address after a failure.
    with start_or_skip(tls=False) as server:
        with pytest.raises(ImapError, match="Anmeldung") as err:
            with open_mailbox(config(server, password="falsch")):
                pass
    assert err.value.temporary is False
    assert "falsch" not in err.value.text  # never the password in a message


def test_missing_source_folder(dovecot):
    with pytest.raises(ImapError, match="IMAP-Fehler"):
        with open_mailbox(config(dovecot, folder="GibtEsNicht")):
            pass


def test_nobody_listening():
    cfg = ImapConfig(host="127.0.0.1", port=free_port(), security="plain", user="x", password="y", timeout_s=3)
    with pytest.raises(ImapError, match="nicht erreichbar"):
        with open_mailbox(cfg):
            pass


def test_unknown_security_mode(dovecot):
    with pytest.raises(ImapError, match="unbekannt"):
        with open_mailbox(config(dovecot, security="tls1")):
            pass


def test_missing_dovecot_skips_locally_and_fails_in_ci(monkeypatch):
    import tests.support.dovecot as support

    monkeypatch.setattr(support, "dovecot_binary", lambda: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        start_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        start_or_skip()
