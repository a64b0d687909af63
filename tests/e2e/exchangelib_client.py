#!/usr/bin/env python3
# A real, unmodified third-party EWS client against fake-exchange through exbridge (issue 3): Debian 12's
# python3-exchangelib (4.9.0) logs on with NTLM and with Basic, walks the folder tree, counts every folder's
# items, fetches every item's MIME content and checks it byte for byte (SHA-256) against fake-exchange's
# manifest; then it finds the EWS URL by exchangelib's own POX Autodiscover. Any mismatch is a failure:
# fake-exchange must answer the way Exchange 2007 does, or it proves nothing about the real migration.
#
# Only exchangelib's public API is used and the library is not patched. Two things point it at the lab,
# as a deployment's DNS and CA would:
#   * name resolution: socket.getaddrinfo in this process maps *.contoso.example port 443 to exbridge's
#     loopback port, and exchangelib's Autodiscover DNS checks (dnspython, its A-record check before each
#     Autodiscover URL and its SRV lookup) go to a tiny DNS responder in this process, through exchangelib's
#     BaseAutodiscovery.DNS_RESOLVER_KWARGS / DNS_RESOLVER_ATTRS knobs;
#   * trust: the lab CA (made here with the openssl command) is the CA bundle, through
#     BaseProtocol.HTTP_ADAPTER_CLS, the hook exchangelib documents for custom CAs.
#
# With NTLM it also checks FindItem's Restriction and SortOrder and GetItem's properties through the
# QuerySet API, against answers computed from the items' own MIME: filter() on subject (contains,
# icontains, startswith, exact), size, is_read, datetime_received and a Q-expression with ~ and |;
# order_by('-datetime_received') and order_by('size'); sender, author, to_recipients, message_id, subject,
# datetime_sent, item_class, importance and the text body of 40 items against their MIME headers and text.
#
# Not checked here, because fake-exchange does not do them yet (a real 2007 SP1+ server does):
# GetUserOofSettings and GetDelegate (refused as schema errors); folder EffectiveRights/PermissionSet;
# restrictions on fields fake-exchange does not model (Body, recipients, extended properties: answered
# ErrorUnsupportedPathForQuery, where a real server would search them).
#
# It starts fake-exchange and exbridge itself, waits for their readiness lines (never sleeps), and kills
# them on exit. Prints "SKIPPED (python3-exchangelib not installed)" when the module is missing.
#
# usage: exchangelib_client.py --bin-dir BUILD/bin [--items N] [--work DIR]
import argparse
import email
import email.policy
import email.utils
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

try:
    import exchangelib
    import requests.adapters
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
except ImportError:
    print("SKIPPED (python3-exchangelib not installed)")
    sys.exit(0)

from lab import make_pki, processes, start, stop_all
from exchangelib import BASIC, DELEGATE, NTLM, Account, Build, Configuration, Credentials, Version
from exchangelib.autodiscover import Autodiscovery, clear_cache
from exchangelib.protocol import BaseProtocol, close_connections

EMAIL = "alex.wilber@contoso.example"
PASSWORD = "Exbridge-Demo-2007"
DOMAIN = "contoso.example"
# The bridge's public names (its certificate carries them); contoso.example itself has no A record, so
# Autodiscover's first URL (https://contoso.example/...) fails as it does for most real domains.
BRIDGE_NAMES = ["mail.contoso.example", "autodiscover.contoso.example"]
EWS_URL = "https://mail.contoso.example/EWS/Exchange.asmx"

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("MISMATCH: " + what, flush=True)
    return ok


# --- name resolution pointed at the lab ---------------------------------------------------------------------

bridge_port = None
_getaddrinfo = socket.getaddrinfo


def lab_getaddrinfo(host, port, *args, **kwargs):
    # urllib3 connects to what getaddrinfo returns: the bridge's public names on 443 become its loopback port.
    if isinstance(host, str) and host.lower() in BRIDGE_NAMES and str(port) == "443":
        return _getaddrinfo("127.0.0.1", bridge_port, *args, **kwargs)
    return _getaddrinfo(host, port, *args, **kwargs)


class LabDns:
    """A UDP DNS responder for contoso.example: A 127.0.0.1 for the bridge's names, NXDOMAIN for the rest."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            data, peer = self.sock.recvfrom(4096)
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            question = q.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.queries.append((name, dns.rdatatype.to_text(question.rdtype)))
            if name in BRIDGE_NAMES and question.rdtype == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "127.0.0.1"))
            elif name not in BRIDGE_NAMES:
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(r.to_wire(), peer)


def trust_lab_ca(ca_file):
    class LabCaAdapter(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn, url, verify, cert):
            super().cert_verify(conn=conn, url=url, verify=ca_file, cert=cert)

    BaseProtocol.HTTP_ADAPTER_CLS = LabCaAdapter


# --- the checks ---------------------------------------------------------------------------------------------

# Folder display names of the manifest's folder ids (what a 2007 mailbox calls them in English).
MANIFEST_FOLDERS = {"inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items"}


def check_account(label, account, manifest, fetch_mime):
    """Walks the tree, counts items in every folder, and (fetch_mime) checks every manifest item's MIME."""
    want = {MANIFEST_FOLDERS[f["id"]]: {i["id"]: i for i in f["items"]} for f in manifest}
    t0 = time.monotonic()
    tree = list(account.root.walk())
    names = {f.name for f in tree}
    for needed in ["Top of Information Store", "Inbox", "Sent Items", "Deleted Items", "Calendar", "Contacts"]:
        check(needed in names, f"{label}: folder {needed!r} missing from account.root.walk()")
    msg_tree = list(account.msg_folder_root.walk())
    check({f.name for f in msg_tree} <= names, f"{label}: msg_folder_root.walk() has folders root.walk() lacks")
    stats = {"folders": len(tree), "items": 0, "mime_items": 0, "mime_bytes": 0}
    for folder in msg_tree:
        # What FindItem lists must be what the folder's TotalCount says (Exchange counts the same items).
        ids = [i.id for i in folder.all().only("id")]
        stats["items"] += len(ids)
        check(len(ids) == folder.total_count,
              f"{label}: {folder.name}: TotalCount {folder.total_count} but FindItem listed {len(ids)} items")
        if folder.name in want:
            w = want[folder.name]
            check(len(ids) == len(w), f"{label}: {folder.name}: {len(ids)} items, manifest has {len(w)}")
            check(set(ids) == set(w), f"{label}: {folder.name}: item ids differ from the manifest")
            if not fetch_mime:
                continue
            seen = unread = 0
            for item in folder.all().only("mime_content", "size", "is_read"):
                seen += 1
                unread += item.is_read is False
                m = w.get(item.id)
                if not check(m is not None, f"{label}: {folder.name}: item {item.id} not in the manifest"):
                    continue
                mime = item.mime_content or b""
                stats["mime_items"] += 1
                stats["mime_bytes"] += len(mime)
                check(len(mime) == m["size"], f"{label}: {folder.name}: {item.id}: MIME {len(mime)} bytes, "
                                              f"manifest {m['size']}")
                check(hashlib.sha256(mime).hexdigest() == m["sha256"],
                      f"{label}: {folder.name}: {item.id}: MIME SHA-256 differs from the manifest")
                check(item.size == m["size"], f"{label}: {folder.name}: {item.id}: Size {item.size}, "
                                              f"manifest {m['size']}")
            check(seen == len(w), f"{label}: {folder.name}: GetItem returned {seen} items of {len(w)}")
            # The folder's UnreadCount is the number of its items whose IsRead is false.
            check(unread == folder.unread_count,
                  f"{label}: {folder.name}: UnreadCount {folder.unread_count} but {unread} items have IsRead false")
    stats["seconds"] = round(time.monotonic() - t0, 2)
    print(f"{label}: {stats}", flush=True)
    return stats


def check_queries(label, account):
    """FindItem's Restriction and SortOrder, and GetItem's properties, through exchangelib's QuerySet API.

    The expected answers come from the items' own MIME (fetched here too), never from fake-exchange's EWS
    properties: what filter(), order_by() and the properties say must agree with the bytes the item is."""
    t0 = time.monotonic()
    inbox = account.inbox
    truth = {}  # id -> (MIME headers, text body, Size, IsRead, DateTimeReceived)
    for item in inbox.all().only("mime_content", "size", "is_read", "datetime_received"):
        msg = email.message_from_bytes(item.mime_content, policy=email.policy.compat32)
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        text = part.get_payload(decode=True).decode("ascii").replace("\r\n", "\n")
        truth[item.id] = (msg, text, item.size, item.is_read, item.datetime_received)

    def ids(qs):
        return [i.id for i in qs.only("id")]

    def expect_filter(what, qs, keep):
        want = {k for k, v in truth.items() if keep(*v)}
        got = ids(qs)
        check(qs.count() == len(want), f"{label}: {what}: count() {qs.count()}, the MIME says {len(want)}")
        check(set(got) == want and len(got) == len(want),
              f"{label}: {what}: {len(got)} items listed, {len(want & set(got))} of the {len(want)} expected")
        return len(want)

    counts = {}
    counts["subject__contains"] = expect_filter("subject__contains='report 0'", inbox.filter(subject__contains="report 0"),
                                                lambda m, *_: "report 0" in m["Subject"])
    check(0 < counts["subject__contains"] < len(truth), f"{label}: subject__contains matched {counts['subject__contains']}")
    expect_filter("subject__contains='REPORT 0' (case-sensitive)", inbox.filter(subject__contains="REPORT 0"),
                  lambda m, *_: "REPORT 0" in m["Subject"])
    expect_filter("subject__icontains='REPORT 0'", inbox.filter(subject__icontains="REPORT 0"),
                  lambda m, *_: "report 0" in m["Subject"].lower())
    expect_filter("subject__startswith='Re 1'", inbox.filter(subject__startswith="Re 1"),
                  lambda m, *_: m["Subject"].startswith("Re 1"))
    one = next(iter(truth.values()))[0]["Subject"]
    expect_filter("subject=<one subject>", inbox.filter(subject=one), lambda m, *_: m["Subject"].lower() == one.lower())
    counts["size__gt"] = expect_filter("size__gt=20000", inbox.filter(size__gt=20000), lambda m, t, size, *_: size > 20000)
    counts["unread"] = expect_filter("is_read=False", inbox.filter(is_read=False), lambda m, t, s, read, *_: not read)
    check(counts["unread"] == inbox.unread_count, f"{label}: filter(is_read=False) {counts['unread']}, UnreadCount "
                                                   f"{inbox.unread_count}")
    dates = sorted(v[4] for v in truth.values())
    middle = dates[len(dates) // 2]
    counts["datetime_received__lt"] = expect_filter(
        "datetime_received__lt=<median>", inbox.filter(datetime_received__lt=middle), lambda *v: v[4] < middle)
    expect_filter("~Q(is_read=True) | Q(size__lt=3000)",
                  inbox.filter(~exchangelib.Q(is_read=True) | exchangelib.Q(size__lt=3000)),
                  lambda m, t, size, read, *_: not read or size < 3000)

    # order_by: the whole listing in the requested order (paged by exchangelib, 100 a page).
    received = [i.datetime_received for i in inbox.all().order_by("-datetime_received").only("datetime_received")]
    check(len(received) == len(truth) and received == sorted(received, reverse=True),
          f"{label}: order_by('-datetime_received') is not descending over all {len(truth)} items")
    sizes = [i.size for i in inbox.filter(is_read=True).order_by("size").only("size")]
    check(sizes == sorted(v[2] for v in truth.values() if v[3]),
          f"{label}: filter(is_read=True).order_by('size') is not the read items by ascending size")

    # Properties: GetItem's values are the MIME's headers and text body.
    checked = 0
    for item in inbox.all().only("subject", "sender", "author", "to_recipients", "message_id", "datetime_sent",
                                 "item_class", "importance", "body")[:40]:
        msg, text = truth[item.id][0], truth[item.id][1]
        name, address = email.utils.parseaddr(msg["From"])
        to_name, to_address = email.utils.parseaddr(msg["To"])
        for what, mbx in (("sender", item.sender), ("author", item.author)):
            check(mbx is not None and (mbx.name, mbx.email_address, mbx.routing_type) == (name, address, "SMTP"),
                  f"{label}: {item.id}: {what} {mbx}, MIME From {msg['From']!r}")
        to = item.to_recipients or []
        check([(r.name, r.email_address) for r in to] == [(to_name, to_address)],
              f"{label}: {item.id}: to_recipients {to}, MIME To {msg['To']!r}")
        check(item.message_id == msg["Message-ID"], f"{label}: {item.id}: message_id {item.message_id!r}, "
                                                    f"MIME {msg['Message-ID']!r}")
        check(item.subject == msg["Subject"], f"{label}: {item.id}: subject {item.subject!r}, MIME {msg['Subject']!r}")
        sent = item.datetime_sent.strftime("%Y-%m-%dT%H:%M:%SZ") if item.datetime_sent else None
        check(sent == msg["Date"], f"{label}: {item.id}: datetime_sent {sent}, MIME Date {msg['Date']!r}")
        check((item.item_class, item.importance) == ("IPM.Note", "Normal"),
              f"{label}: {item.id}: item_class {item.item_class!r}, importance {item.importance!r}")
        check(isinstance(item.body, str) and not isinstance(item.body, exchangelib.HTMLBody) and item.body == text,
              f"{label}: {item.id}: body ({len(item.body or '')} chars) is not the MIME's text part ({len(text)})")
        checked += 1
    check(checked == min(40, len(truth)), f"{label}: property check saw {checked} items")
    counts["property_items"] = checked
    counts["seconds"] = round(time.monotonic() - t0, 2)
    print(f"{label} queries: {counts}", flush=True)
    return counts


def run_case(label, fn):
    # exchangelib caches one Protocol (version, auth type, sessions) per (endpoint, credentials): start each
    # case from nothing, so that a case's version guess or Autodiscover result is its own.
    close_connections()
    clear_cache()
    try:
        return fn()
    except Exception as e:  # an exchangelib exception is a failed check, with its reason
        check(False, f"{label}: {type(e).__name__}: {e}")
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="folder with fake-exchange and exbridge")
    ap.add_argument("--items", type=int, default=2000, help="Inbox items (Sent Items get 1/4, Deleted Items 1/10)")
    ap.add_argument("--work", help="folder for PKI, logs and manifest (default: a temporary folder)")
    args = ap.parse_args()
    if shutil.which("openssl") is None:
        print("SKIPPED (openssl command not installed)")
        return 0
    work = args.work or tempfile.mkdtemp(prefix="exbridge-exchangelib-")
    os.makedirs(work, exist_ok=True)
    make_pki(work, {"bridge": BRIDGE_NAMES, "exchange": ["ex2007.contoso.example"]})
    manifest_path = f"{work}/manifest.json"
    exchange = start([f"{args.bin_dir}/fake-exchange", "--listen", "127.0.0.1:0", "--cert", f"{work}/exchange.crt",
                      "--key", f"{work}/exchange.key", "--public-host", "mail.contoso.example",
                      "--mailbox-items", str(args.items), "--manifest", manifest_path], f"{work}/fake-exchange.log")
    bridge = start([f"{args.bin_dir}/exbridge", "--listen", "127.0.0.1:0", "--cert", f"{work}/bridge.crt",
                    "--key", f"{work}/bridge.key", "--upstream", exchange, "--upstream-verify", f"ca:{work}/ca.crt",
                    "--upstream-sni", "ex2007.contoso.example", "--threads", "2"], f"{work}/exbridge.log")
    global bridge_port
    bridge_port = int(bridge.rsplit(":", 1)[1])
    print(f"fake-exchange {exchange}, exbridge {bridge}, work folder {work}", flush=True)
    socket.getaddrinfo = lab_getaddrinfo
    trust_lab_ca(f"{work}/ca.crt")
    lab_dns = LabDns()
    Autodiscovery.DNS_RESOLVER_KWARGS = {"configure": False}  # no /etc/resolv.conf needed
    Autodiscovery.DNS_RESOLVER_ATTRS = {"nameservers": ["127.0.0.1"], "port": lab_dns.port, "timeout": 5}

    with open(manifest_path) as f:
        manifest = next(u for u in json.load(f)["users"] if u["email"] == EMAIL)["folders"]
    manifest_items = sum(len(f["items"]) for f in manifest)
    print(f"manifest: {manifest_items} items in {[f['id'] for f in manifest]}", flush=True)

    exchange_2007_sp1 = Version(build=Build(8, 1), api_version="Exchange2007_SP1")
    results = {}

    # 1. NTLM (CONTOSO\alex.wilber), the version given as Exchange 2007 SP1: every item's MIME.
    def ntlm():
        cfg = Configuration(service_endpoint=EWS_URL, credentials=Credentials("CONTOSO\\alex.wilber", PASSWORD),
                            auth_type=NTLM, version=exchange_2007_sp1)
        account = Account(EMAIL, config=cfg, autodiscover=False, access_type=DELEGATE)
        stats = check_account("ntlm", account, manifest, fetch_mime=True)
        stats["queries"] = check_queries("ntlm", account)
        return stats
    results["ntlm"] = run_case("ntlm", ntlm)

    # 2. Basic (UPN), no version given: exchangelib guesses it from ServerVersionInfo. Every item's MIME.
    def basic():
        cfg = Configuration(service_endpoint=EWS_URL, credentials=Credentials(EMAIL, PASSWORD), auth_type=BASIC)
        account = Account(EMAIL, config=cfg, autodiscover=False, access_type=DELEGATE)
        build = account.version.build
        check((build.major_version, build.minor_version) == (8, 3),
              f"basic: guessed build {build}, fake-exchange runs 8.3 (Exchange 2007 SP3)")
        check(account.version.api_version == "Exchange2007_SP1",
              f"basic: guessed API version {account.version.api_version}, expected Exchange2007_SP1")
        return check_account("basic", account, manifest, fetch_mime=True)
    results["basic"] = run_case("basic", basic)

    # 3. POX Autodiscover from the e-mail address alone, then the tree and the counts (no MIME again).
    def autodiscover():
        t0 = time.monotonic()
        account = Account(EMAIL, credentials=Credentials("CONTOSO\\alex.wilber", PASSWORD), autodiscover=True,
                          access_type=DELEGATE)
        seconds = round(time.monotonic() - t0, 2)
        endpoint = account.protocol.service_endpoint
        print(f"autodiscover: EWS URL {endpoint}, auth {account.protocol.auth_type}, version {account.version} "
              f"in {seconds} s; DNS queries {lab_dns.queries}", flush=True)
        check(endpoint.lower() == EWS_URL.lower(), f"autodiscover: EWS URL {endpoint}, expected {EWS_URL}")
        return check_account("autodiscover", account, manifest, fetch_mime=False)
    results["autodiscover"] = run_case("autodiscover", autodiscover)

    close_connections()
    for p in processes:
        check(p.poll() is None, f"{p.args[0]} exited with {p.returncode} during the run")
    if failures:
        print(f"FAILED: {len(failures)} mismatch(es); logs in {work}")
        return 1
    print("PASSED: exchangelib " + exchangelib.__version__ + " " + json.dumps(results))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
