"""Run by Debian's /usr/bin/python3 (where python3-spf lives): reads JSON
{"port": N, "cases": [[ip, sender, helo], ...]} on stdin, answers each case with
pyspf's check2() result word, one JSON list on stdout. pyspf asks the default
dnspython resolver; it is pointed at the test's nsd here."""
import json
import sys

import dns.resolver
import spf

req = json.load(sys.stdin)
res = dns.resolver.Resolver(configure=False)
res.nameservers = ["127.0.0.1"]
res.port = req["port"]
res.lifetime = 3
dns.resolver.default_resolver = res
out = []
for ip, sender, helo in req["cases"]:
    result, _exp = spf.check2(i=ip, s=sender, h=helo, querytime=20)
    out.append(result)
json.dump(out, sys.stdout)
