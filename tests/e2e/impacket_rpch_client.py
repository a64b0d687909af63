#!/usr/bin/env python3
# A real, unmodified third-party RPC over HTTP v2 client against fake-exchange through exbridge (issue 19):
# Debian 12's python3-impacket (0.10.0, impacket.dcerpc.v5.rpch) opens Outlook Anywhere virtual connections with
# Basic and with NTLM, as Exchange Online's migration client reaches a 2007 server:
#   * HTTP authentication on both channels (NTLM on each channel's own connection), "Expect: 100-continue";
#   * CONN/A1 and CONN/B1 answered with CONN/A3 and CONN/C2, which impacket reads by position;
#   * a DCE/RPC bind to NSPI (port 6004) and to EMSMDB (port 6001), accepted; EMSMDB on 6004 rejected as Windows
#     rejects an interface a port does not serve (provider_rejection, abstract_syntax_not_supported);
#   * RPC-level NTLM on top (the bind's NEGOTIATE, the bind_ack's CHALLENGE, rpc_auth_3), at PKT_PRIVACY as
#     impacket's exchanger uses it, at PKT_INTEGRITY and at CONNECT: NspiBind answered with a context handle and
#     the server's GUID through signed and sealed fragments, NspiUnbind answered UnbindSuccess;
#   * EMSMDB on :6001 at PKT_PRIVACY: EcDoConnectEx with the user's legacy DN answered ecNone with the display name
#     and 2007 SP3's version (8.3.83.6); EcDoRpcExt2 carrying RopLogon to the own mailbox answered with its special
#     folders; EcDoDisconnect answered ecNone;
#   * what a secure-only interface refuses: a call on an association without RPC authentication, and one whose
#     rpc_auth_3 carried a wrong password, both get the fault rpc_s_access_denied.
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
import struct
import sys
import tempfile

try:
    from impacket.dcerpc.v5 import nspi, transport
    from impacket.dcerpc.v5.rpcrt import (DCERPCException, RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_AUTHN_LEVEL_NONE,
                                          RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    from impacket.http import AUTH_BASIC, AUTH_NTLM
    from impacket.uuid import uuidtup_to_bin
except ImportError:
    print("SKIPPED (python3-impacket not installed)")
    sys.exit(0)

from lab import make_pki, processes, start, stop_all

EMAIL = "alex.wilber@contoso.example"
PASSWORD = "Exbridge-Demo-2007"
EMSMDB = uuidtup_to_bin(("A4F1DB00-CA47-1067-B31F-00DD010662DA", "0.81"))
USER_DN = "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alex.wilber"

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


LEVELS = {RPC_C_AUTHN_LEVEL_CONNECT: "CONNECT", RPC_C_AUTHN_LEVEL_PKT_INTEGRITY: "PKT_INTEGRITY",
          RPC_C_AUTHN_LEVEL_PKT_PRIVACY: "PKT_PRIVACY"}


def connect(proxy, port, auth, level=RPC_C_AUTHN_LEVEL_NONE, rpc_password=PASSWORD):
    binding = f"ncacn_http:ex2007.contoso.example[{port},RpcProxy={proxy}:443]"
    t = transport.DCERPCTransportFactory(binding)
    if auth == AUTH_NTLM:
        t.set_credentials("alex.wilber", PASSWORD, "CONTOSO")
    else:
        t.set_credentials(EMAIL, PASSWORD, "")
    t.set_auth_type(auth)
    dce = t.get_dce_rpc()
    if level != RPC_C_AUTHN_LEVEL_NONE:  # RPC-level NTLM, as exchanger.py sets it up
        dce.set_credentials("alex.wilber", rpc_password, "CONTOSO")
        dce.set_auth_level(level)
    dce.connect()  # HTTP auth, 100 Continue, CONN/A1..CONN/C2: raises on any deviation
    return dce


def refused(what, call):
    try:
        call()
    except DCERPCException as e:
        return check("rpc_s_access_denied" in str(e), f"{what}: refused ({e})")
    return check(False, f"{what}: answered, though this association has no valid RPC authentication")


def nspi_session(proxy, auth, level):
    """NspiBind then NspiUnbind over an association authenticated at `level`."""
    name = f"{auth} + RPC NTLM at {LEVELS[level]}"
    dce = connect(proxy, 6004, auth, level)
    dce.bind(nspi.MSRPC_UUID_NSPI)
    check(True, f"{name}: bind to NSPI v56.0 accepted (NTLM CHALLENGE in bind_ack, rpc_auth_3)")
    resp = nspi.hNspiBind(dce)  # raises unless ErrorCode is Success
    handle = resp["contextHandle"].getData()
    check(len(handle) == 20 and handle[4:] != b"\0" * 16, f"{name}: NspiBind answered Success with a context handle")
    guid = bytes(resp["pServerGuid"])  # impacket passes a non-NULL pointer, so the server fills it in
    check(len(guid) == 16 and guid != b"\0" * 16, f"{name}: NspiBind returned the server's GUID {guid.hex()}")
    resp = nspi.hNspiUnbind(dce, resp["contextHandle"])
    check(resp["ErrorCode"] == 1, f"{name}: NspiUnbind answered {resp['ErrorCode']} (UnbindSuccess is 1)")
    dce.disconnect()


def ndr_string(text):
    """A conformant varying 8-bit string ([string] char*), NUL included, padded to 4 bytes."""
    data = text.encode() + b"\0"
    out = struct.pack("<III", len(data), 0, len(data)) + data
    return out + b"\0" * (-len(out) % 4)


def ec_do_connect_ex_stub(user_dn):
    # [MS-OXCRPC] EcDoConnectEx: szUserDN, ulFlags, ulConMod, cbLimit, ulCpid, ulLcidString, ulLcidSort,
    # ulIcxrLink, usFCanConvertCodePages, rgwClientVersion[3], pulTimeStamp, rgbAuxIn (empty), cbAuxIn, pcbAuxOut.
    return (ndr_string(user_dn) + struct.pack("<7I", 0, 0, 0, 1252, 0x409, 0x409, 0xFFFFFFFF) +
            struct.pack("<H3H", 1, 0x000C, 0x1773, 0) + struct.pack("<IIII", 0, 0, 0, 0x1008))


def ec_do_rpc_ext2_stub(handle, rops, handles):
    # [MS-OXCRPC] EcDoRpcExt2: pcxh, pulFlags (NoCompression | NoXorMagic), rgbIn = one RPC_HEADER_EXT (Last) around
    # the ROP buffer (RopSize, ROPs, handle table), cbIn, pcbOut, rgbAuxIn (empty), cbAuxIn, pcbAuxOut.
    buffer = struct.pack("<H", 2 + len(rops)) + rops + b"".join(struct.pack("<I", h) for h in handles)
    rgb_in = struct.pack("<HHHH", 0, 0x0004, len(buffer), len(buffer)) + buffer
    stub = handle + struct.pack("<II", 0x3, len(rgb_in)) + rgb_in
    stub += b"\0" * (-len(stub) % 4)
    return stub + struct.pack("<IIIII", len(rgb_in), 0x40000, 0, 0, 0x1008)


def rop_logon(user_dn):
    # [MS-OXCROPS] RopLogon: RopId 0xFE, LogonId, OutputHandleIndex, LogonFlags Private, OpenFlags, StoreState,
    # EssdnSize, Essdn with its NUL.
    essdn = user_dn.encode() + b"\0"
    return struct.pack("<BBBBIIH", 0xFE, 0, 0, 0x01, 0x01000000, 0, len(essdn)) + essdn


def rops_of(reply):
    """The ROP responses in an EcDoRpcExt2 reply stub, its return value, and the server object handle table."""
    n = struct.unpack("<I", reply[24:28])[0]
    rgb_out = reply[36:36 + n]
    error = struct.unpack("<I", reply[-4:])[0]
    if n < 10:
        return b"", error, []
    rop_size = struct.unpack("<H", rgb_out[8:10])[0]
    table = rgb_out[8 + rop_size:]
    return rgb_out[10:8 + rop_size], error, [h for (h,) in struct.iter_unpack("<I", table[:len(table) // 4 * 4])]


def emsmdb_session(proxy, auth):
    name = f"{auth} + RPC NTLM at PKT_PRIVACY"
    dce = connect(proxy, 6001, auth, RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    dce.bind(EMSMDB)
    check(True, f"{name}: bind to EMSMDB v0.81 on :6001 accepted")
    dce.call(10, ec_do_connect_ex_stub(USER_DN))
    out = dce.recv()
    handle, error = out[:20], struct.unpack("<I", out[-4:])[0]
    check(error == 0 and handle[4:] != b"\0" * 16, f"{name}: EcDoConnectEx answered ecNone ({error:#x}) with a session")
    check(b"Alex Wilber\0" in out, f"{name}: EcDoConnectEx named the mailbox's display name")
    check(struct.pack("<3H", 0x0803, 0x8053, 0x0006) in out, f"{name}: EcDoConnectEx reported 2007 SP3, 8.3.83.6")
    dce.call(11, ec_do_rpc_ext2_stub(handle, rop_logon(USER_DN), [0xFFFFFFFF]))
    rops, error, handles = rops_of(dce.recv())
    logon_ok = error == 0 and len(rops) >= 7 + 13 * 8 and rops[0] == 0xFE and rops[2:6] == b"\0\0\0\0"
    inbox = rops[7 + 4 * 8:7 + 5 * 8] if logon_ok else b""
    check(logon_ok and inbox == bytes.fromhex("0100000000000007"),
          f"{name}: EcDoRpcExt2 RopLogon answered ecNone with the Inbox's folder ID ({inbox.hex()})")
    if logon_ok:
        # The IPM subtree's whole hierarchy: RopOpenFolder, RopGetHierarchyTable (Depth), RopSetColumns
        # (PidTagDisplayName), RopQueryRows -- in one buffer, handles in slots 0 (logon), 1 (folder), 2 (table).
        logon_handle = handles[0]
        ipm_subtree = rops[7 + 3 * 8:7 + 4 * 8]
        walk = (struct.pack("<BBBB", 0x02, 0, 0, 1) + ipm_subtree + b"\0" +
                struct.pack("<BBBBB", 0x04, 0, 1, 2, 0x04) +
                struct.pack("<BBBBHI", 0x12, 0, 2, 0, 1, 0x3001001F) +
                struct.pack("<BBBBBH", 0x15, 0, 2, 0, 1, 100))
        dce.call(11, ec_do_rpc_ext2_stub(handle, walk, [logon_handle, 0xFFFFFFFF, 0xFFFFFFFF]))
        rops, error, _ = rops_of(dce.recv())
        names = [n for n in ("Inbox", "Sent Items", "Deleted Items", "Calendar") if (n + "\0").encode("utf-16-le") in rops]
        check(error == 0 and len(names) == 4,
              f"{name}: the IPM subtree's hierarchy table lists {', '.join(names) or 'nothing'}")
    dce.call(1, handle)
    out = dce.recv()
    check(out == b"\0" * 24, f"{name}: EcDoDisconnect answered ecNone with the handle cleared")
    dce.disconnect()


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
            for level in LEVELS:
                nspi_session(proxy, auth, level)
            emsmdb_session(proxy, auth)

            dce = connect(proxy, 6004, auth)
            check(True, f"{auth}: virtual connection to :6004 open (CONN/A3, CONN/C2)")
            dce.bind(nspi.MSRPC_UUID_NSPI)
            refused(f"{auth}: NspiBind without RPC authentication", lambda: nspi.hNspiBind(dce))
            dce.disconnect()

            dce = connect(proxy, 6004, auth, RPC_C_AUTHN_LEVEL_PKT_PRIVACY, rpc_password="not-the-password")
            dce.bind(nspi.MSRPC_UUID_NSPI)
            refused(f"{auth}: NspiBind after rpc_auth_3 with a wrong password", lambda: nspi.hNspiBind(dce))
            dce.disconnect()

            dce = connect(proxy, 6001, auth)
            dce.bind(EMSMDB)
            check(True, f"{auth}: bind to EMSMDB v0.81 on :6001 accepted")

            def ec_do_connect_ex():
                dce.call(10, b"\0" * 64)  # EcDoConnectEx; the stub does not matter before authentication
                dce.recv()
            refused(f"{auth}: EcDoConnectEx without RPC authentication", ec_do_connect_ex)
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
