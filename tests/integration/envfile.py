"""Read a Ferry envelope file (lib/envelope.h) for the tests: records in order,
values percent-decoded. No checksum check here: the daemon's own parser does that.
And a queued message's file (lib/msgfile.h): format 2 holds the message, then its
envelope, then a trailer naming where the envelope starts."""
import os
import re

TRAILER_LEN = 56
_TRAILER = re.compile(rb"FERRY-ENV-AT ([0-9a-f]{16}) ([0-9a-f]{8}) ([0-9A-V]{16})\n\Z")


def split_msg(data):
    """(message, envelope) of a queue file's bytes; envelope None when the file
    has no trailer (format 1: the message alone, its envelope in ID.env)."""
    m = _TRAILER.match(data[-TRAILER_LEN:]) if len(data) >= TRAILER_LEN else None
    if not m:
        return data, None
    off, length = int(m.group(1), 16), int(m.group(2), 16)
    if off + length + TRAILER_LEN != len(data):
        return data, None
    return data[:off], data[off:off + length]


def message_bytes(path):
    """The message octets of a queue file (what every reader of it may see)."""
    with open(path, "rb") as f:
        return split_msg(f.read())[0]


def envelope_bytes(path):
    """The envelope of queue/ID given the path of its ID.env: that file when it
    exists, else the envelope inside ID.msg."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    with open(path[:-4] + ".msg", "rb") as f:
        env = split_msg(f.read())[1]
    if env is None:
        raise FileNotFoundError(path)
    return env


def _dec(v):
    if v == "-":
        return ""
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), v.encode()).decode("utf-8")


def read_env(path):
    """The envelope of queue/ID by its ID.env path (or the one inside ID.msg):
    {'records': {keyword: raw value}, 'rcpts': [{'addr', 'state', 'notify', 'orcpt'}]}"""
    recs, rcpts = {}, []
    lines = envelope_bytes(path).decode("utf-8").split("\n")
    for line in lines[1:]:
        if not line:
            continue
        tok = line.split(" ")
        k = tok[0]
        if k == "rcpt":
            rcpts.append({"state": tok[1], "attempts": int(tok[2]), "addr": _dec(tok[3]),
                          "result": _dec(tok[4]), "notify": None, "orcpt": None})
        elif k == "notify":
            rcpts[-1]["notify"] = tok[1]
        elif k == "orcpt":
            rcpts[-1]["orcpt"] = (tok[1], _dec(tok[2]))
        else:
            recs[k] = _dec(tok[1]) if k in ("envid", "sender", "helo", "client", "protocol") else tok[1]
    return {"records": recs, "rcpts": rcpts}
