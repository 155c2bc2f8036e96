"""Read a Ferry envelope file (lib/envelope.h) for the tests: records in order,
values percent-decoded. No checksum check here: the daemon's own parser does that."""
import re


def _dec(v):
    if v == "-":
        return ""
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), v.encode()).decode("utf-8")


def read_env(path):
    """{'records': {keyword: raw value}, 'rcpts': [{'addr', 'state', 'notify', 'orcpt'}]}"""
    recs, rcpts = {}, []
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
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
