#!/usr/bin/env python3
# A real, unmodified third-party RPC over HTTP v2 client against fake-exchange through exbridge (issue 19):
# Debian 12's python3-impacket (0.10.0, impacket.dcerpc.v5.rpch) opens Outlook Anywhere virtual connections with
# Basic and with NTLM, as Exchange Online's migration client reaches a 2007 server:
#   * HTTP authentication on both channels (NTLM on each channel's own connection), "Expect: 100-continue";
#   * CONN/A1 and CONN/B1 answered with CONN/A3 and CONN/C2, which impacket reads by position;
#   * a DCE/RPC bind to NSPI (port 6004) and to EMSMDB (port 6001), accepted; EMSMDB on 6004 rejected as Windows
#     rejects an interface a port does not serve (provider_rejection, abstract_syntax_not_supported);
#   * a call on each: fake-exchange does not do RPC-level authentication yet, so NspiBind and EcDoConnectEx are
#     answered with the fault a secure-only interface gives an unauthenticated call, rpc_s_access_denied. When
#     RPC-level NTLM lands, these checks become successful calls.
#
# impacket only talks to an RPC proxy on port 80 or 443, so exbridge listens on port 443 of a random loopback
# address (127.x.y.z: no clash with anything else on the machine); that needs root (or CAP_NET_BIND_SERVICE).
# Prints "SKIPPED (...)" without python3-impacket, the openssl command, or the right to bind port 443.
#
# usage: impacket_rpch_client.py --bin-dir BUILD/bin [--work DIR]
import argparse
import os
import random
import shutil
import socket
import sys
import tempfile

try:
    from impacket.dcerpc.v5 import nspi, transport
    from impacket.dcerpc.v5.rpcrt import DCERPCException
    from impacket.http import AUTH_BASIC, AUTH_NTLM
    from impacket.uuid import uuidtup_to_bin
except ImportError:
    print("SKIPPED (python3-impacket not installed)")
    sys.exit(0)

from lab import make_pki, processes, start, stop_all

EMAIL = "alex.wilber@contoso.example"
PASSWORD = "Exbridge-Demo-2007"
EMSMDB = uuidtup_to_bin(("A4F1DB00-CA47-1067-B31F-00DD010662DA", "0.81"))

failures = []


def check(ok, what):
    print(("ok        " if ok else "MISMATCH  ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def free_loopback_443():
    """A loopback address whose port 443 this process may bind, or None without the right to bind it."""
    for _ in range(20):
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
        s = socket.socket()
        try:
            s.bind((address, 443))
            return address
        except PermissionError:
            return None
        except OSError:
            continue
        finally:
            s.close()
    return None


def connect(proxy, port, auth):
    binding = f"ncacn_http:ex2007.contoso.example[{port},RpcProxy={proxy}:443]"
    t = transport.DCERPCTransportFactory(binding)
    if auth == AUTH_NTLM:
        t.set_credentials("alex.wilber", PASSWORD, "CONTOSO")
    else:
        t.set_credentials(EMAIL, PASSWORD, "")
    t.set_auth_type(auth)
    dce = t.get_dce_rpc()
    dce.connect()  # HTTP auth, 100 Continue, CONN/A1..CONN/C2: raises on any deviation
    return dce


def refused_unauthenticated(what, call):
    try:
        call()
    except DCERPCException as e:
        return check("rpc_s_access_denied" in str(e), f"{what}: answered {e}")
    return check(False, f"{what}: answered without a fault, though this association has no RPC authentication")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True, help="folder with fake-exchange and exbridge")
    ap.add_argument("--work", help="folder for PKI and logs (default: a temporary folder)")
    args = ap.parse_args()
    if shutil.which("openssl") is None:
        print("SKIPPED (openssl command not installed)")
        return 0
    proxy = free_loopback_443()
    if proxy is None:
        print("SKIPPED (binding port 443 needs root: impacket's RPC over HTTP client only uses an RPC proxy on "
              "port 80 or 443)")
        return 0
    work = args.work or tempfile.mkdtemp(prefix="exbridge-impacket-")
    os.makedirs(work, exist_ok=True)
    make_pki(work, {"bridge": ["mail.contoso.example"], "exchange": ["ex2007.contoso.example"]})
    exchange = start([f"{args.bin_dir}/fake-exchange", "--listen", "127.0.0.1:0", "--cert", f"{work}/exchange.crt",
                      "--key", f"{work}/exchange.key", "--public-host", "mail.contoso.example"],
                     f"{work}/fake-exchange.log")
    bridge = start([f"{args.bin_dir}/exbridge", "--listen", f"{proxy}:443", "--cert", f"{work}/bridge.crt",
                    "--key", f"{work}/bridge.key", "--upstream", exchange, "--upstream-verify", f"ca:{work}/ca.crt",
                    "--upstream-sni", "ex2007.contoso.example"], f"{work}/exbridge.log")
    print(f"fake-exchange {exchange}, exbridge {bridge}, work folder {work}", flush=True)

    for auth in (AUTH_BASIC, AUTH_NTLM):
        try:
            dce = connect(proxy, 6004, auth)
            check(True, f"{auth}: virtual connection to :6004 open (CONN/A3, CONN/C2)")
            dce.bind(nspi.MSRPC_UUID_NSPI)
            check(True, f"{auth}: bind to NSPI v56.0 accepted")
            refused_unauthenticated(f"{auth}: NspiBind", lambda: nspi.hNspiBind(dce))
            dce.disconnect()

            dce = connect(proxy, 6001, auth)
            dce.bind(EMSMDB)
            check(True, f"{auth}: bind to EMSMDB v0.81 on :6001 accepted")

            def ec_do_connect_ex():
                dce.call(10, b"\0" * 64)  # EcDoConnectEx; the stub does not matter before authentication
                dce.recv()
            refused_unauthenticated(f"{auth}: EcDoConnectEx", ec_do_connect_ex)
            dce.disconnect()

            dce = connect(proxy, 6004, auth)
            try:
                dce.bind(EMSMDB)
                check(False, f"{auth}: EMSMDB on :6004 was accepted; port 6004 serves NSPI and RFR only")
            except DCERPCException as e:
                check("abstract_syntax_not_supported" in str(e), f"{auth}: EMSMDB on :6004 rejected ({e})")
            dce.disconnect()
        except Exception as e:  # an impacket exception is a failed check, with its reason
            check(False, f"{auth}: {type(e).__name__}: {e}")

    for p in processes:
        check(p.poll() is None, f"{p.args[0]} still running after the run")
    if failures:
        print(f"FAILED: {len(failures)} mismatch(es); logs in {work}")
        return 1
    print("PASSED: impacket RPC over HTTP v2 through exbridge, Basic and NTLM")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
