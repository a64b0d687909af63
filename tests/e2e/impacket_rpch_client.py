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
#     folders; the IPM subtree's hierarchy; every message of Inbox, Sent Items and Deleted Items copied with
#     RopOpenMessage, RopFastTransferSourceCopyTo (BestBody, Unicode) and RopFastTransferSourceGetBuffer (0xBABE), its
#     FastTransfer stream parsed here and its MIME rebuilt and checked against fake-exchange's manifest (size and
#     SHA-256); EcDoDisconnect answered ecNone;
#   * what a secure-only interface refuses: a call on an association without RPC authentication, and one whose
#     rpc_auth_3 carried a wrong password, both get the fault rpc_s_access_denied.
#
# impacket only talks to an RPC proxy on port 80 or 443, so exbridge listens on port 443 of a random loopback
# address (127.x.y.z: no clash with anything else on the machine); that needs root (or CAP_NET_BIND_SERVICE).
# Prints "SKIPPED (...)" without python3-impacket, the openssl command, or the right to bind port 443.
#
# usage: impacket_rpch_client.py --bin-dir BUILD/bin [--work DIR]
import argparse
import base64
import hashlib
import json
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


# FastTransfer ([MS-OXCFXICS] 2.2.4), read here independently of fake-exchange's C++ codec: markers are bare
# tags; a property is its tag, for a named property (id >= 0x8000) a GUID, a kind and a LID or a UTF-16 name,
# then the value (fixed-size types by size, PtypBoolean 2 bytes; strings and binaries with a u32 length).
FX_MARKERS = {0x40000003: "NewAttach", 0x40010003: "StartEmbed", 0x40020003: "EndEmbed", 0x40030003: "StartRecip",
              0x40040003: "EndToRecip", 0x400E0003: "EndAttach"}
FX_FIXED = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 2, 0x0014: 8,
            0x0040: 8, 0x0048: 16}
FX_DEL_PROP = 0x40160003


def parse_message_stream(data):
    """messageContent as {"props": {tag: bytes}, "recipients": [...], "attachments": [...]}; raises on bad grammar."""
    message = {"props": {}, "recipients": [], "attachments": []}
    target, at = message["props"], 0
    while at < len(data):
        tag = struct.unpack_from("<I", data, at)[0]
        at += 4
        marker = FX_MARKERS.get(tag)
        if marker in ("StartRecip", "NewAttach"):
            target = {}
            message["recipients" if marker == "StartRecip" else "attachments"].append(target)
            continue
        if marker in ("EndToRecip", "EndAttach"):
            target = None  # nothing but another subobject (or the end) may follow
            continue
        if marker is not None:
            raise ValueError(f"marker {tag:#010x} in a plain message")
        ptype = tag & 0xFFFF
        if tag >> 16 >= 0x8000:
            kind = data[at + 16]
            at += 17
            if kind == 0:
                at += 4
            else:
                end = at
                while data[end:end + 2] != b"\0\0":
                    end += 2
                at = end + 2
        if ptype in FX_FIXED:
            value = data[at:at + FX_FIXED[ptype]]
            at += FX_FIXED[ptype]
        elif ptype in (0x001E, 0x001F, 0x0102, 0x00FB, 0x000D):
            size = struct.unpack_from("<I", data, at)[0]
            value = data[at + 4:at + 4 + size]
            at += 4 + size
        else:
            raise ValueError(f"property {tag:#010x}: a type this client does not read")
        if tag == FX_DEL_PROP:
            continue
        if target is None:
            raise ValueError(f"property {tag:#010x} outside any object")
        target[tag] = value
    return message


def fx_text(props, tag):
    value = props.get(tag)
    return None if value is None else value[:-2].decode("utf-16-le")


def rebuild_mime(message):
    """The item's MIME from its properties, by the lab's profile (docs/design/fasttransfer-mime.md)."""
    props = message["props"]
    headers = fx_text(props, 0x007D001F)
    body = fx_text(props, 0x1000001F)
    boundary_at = headers.find('multipart/mixed; boundary="')
    if boundary_at < 0:
        return (headers + "\r\n" + body).encode()
    boundary = headers[boundary_at + 27:headers.index('"', boundary_at + 27)]
    head = (headers + "\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + boundary + "\r\n" +
            'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n')
    tail = "\r\n--" + boundary
    for a in message["attachments"]:
        name = fx_text(a, 0x3707001F)
        encoded = base64.b64encode(a[0x37010102]).decode()
        lines = "".join(encoded[i:i + 76] + "\r\n" for i in range(0, len(encoded), 76))
        tail += (f"\r\nContent-Type: {fx_text(a, 0x370E001F)}; name=\"{name}\"\r\nContent-Disposition: attachment; "
                 f"filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{lines}\r\n--{boundary}")
    return (head + body + tail + "--\r\n").encode()


def skip_open_message(rops, at):
    """The offset after a successful RopOpenMessage response at `at` ([MS-OXCROPS] 2.2.6.1.2)."""
    at += 7  # RopId, OutputHandleIndex, ReturnValue, HasNamedProperties
    for _ in range(2):  # SubjectPrefix, NormalizedSubject: TypedStrings
        kind = rops[at]
        at += 1
        if kind in (2, 3):
            at = rops.index(b"\0", at) + 1
        elif kind == 4:
            while rops[at:at + 2] != b"\0\0":
                at += 2
            at += 2
    columns = struct.unpack_from("<H", rops, at + 2)[0]
    at += 4 + 4 * columns
    rows = rops[at]
    at += 1
    for _ in range(rows):
        at += 7 + struct.unpack_from("<H", rops, at + 5)[0]
    return at


def copy_folder(dce, handle, logon_handle, fid, items, name, label):
    """Every message of a folder by RopOpenMessage, RopFastTransferSourceCopyTo and RopFastTransferSourceGetBuffer,
    rebuilt to MIME and checked against the manifest's size and SHA-256 for the same position."""
    table = (struct.pack("<BBBB", 0x02, 0, 0, 1) + fid + b"\0" + struct.pack("<BBBBB", 0x05, 0, 1, 2, 0) +
             struct.pack("<BBBBHI", 0x12, 0, 2, 0, 1, 0x674A0014) + struct.pack("<BBBBBH", 0x15, 0, 2, 0, 1, 1000))
    dce.call(11, ec_do_rpc_ext2_stub(handle, table, [logon_handle] + [0xFFFFFFFF] * 4))
    rops, error, handles = rops_of(dce.recv())
    at = 8 + 10 + 7  # RopOpenFolder's, RopGetContentsTable's and RopSetColumns' responses
    count = struct.unpack_from("<H", rops, at + 7)[0] if error == 0 and len(rops) > at + 9 else 0
    mids = [rops[at + 9 + 9 * i + 1:at + 9 + 9 * i + 9] for i in range(count)]
    if not check(error == 0 and count == len(items), f"{label}: {name}: the contents table lists {count} messages, "
                                                     f"the manifest {len(items)}"):
        return
    good, calls, release = 0, 0, b""
    for mid, item in zip(mids, items):
        copy = (release + struct.pack("<BBBBH", 0x03, 0, 1, 3, 1252) + fid + b"\0" + mid +
                struct.pack("<BBBBBIBH", 0x4D, 0, 3, 4, 0, 0x2000, 0x01, 0))
        stream, status, first = b"", 1, True
        while status == 1:
            request = (copy if first else b"") + struct.pack("<BBBHH", 0x4E, 0, 4, 0xBABE, 0x7000)
            dce.call(11, ec_do_rpc_ext2_stub(handle, request, handles))
            rops, error, handles = rops_of(dce.recv())
            calls += 1
            at = skip_open_message(rops, 0) + 6 if first else 0  # and RopFastTransferSourceCopyTo's response
            first = False
            if error != 0 or rops[at] != 0x4E or rops[at + 2:at + 6] != b"\0\0\0\0":
                check(False, f"{label}: {name}: GetBuffer failed ({error:#x}, {rops[at:at + 6].hex()})")
                return
            status = struct.unpack_from("<H", rops, at + 6)[0]
            size = struct.unpack_from("<H", rops, at + 13)[0]
            stream += rops[at + 15:at + 15 + size]
        release = struct.pack("<BBBBBB", 0x01, 0, 4, 0x01, 0, 3)
        mime = rebuild_mime(parse_message_stream(stream))
        good += len(mime) == item["size"] and hashlib.sha256(mime).hexdigest() == item["sha256"]
    check(good == len(items), f"{label}: {name}: {good} of {len(items)} messages copied by FastTransfer rebuild the "
                              f"manifest's MIME byte for byte ({calls} EcDoRpcExt2 calls)")


def emsmdb_session(proxy, auth, manifest):
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
        logon_handle, logon_rops = handles[0], rops
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
        # Every message of Inbox, Sent Items and Deleted Items (special folders 4, 6 and 7), copied.
        for slot, folder in ((4, "inbox"), (6, "sentitems"), (7, "deleteditems")):
            items = next(f["items"] for f in manifest if f["id"] == folder)
            copy_folder(dce, handle, logon_handle, logon_rops[7 + slot * 8:7 + (slot + 1) * 8], items, folder, name)
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
                      "--key", f"{work}/exchange.key", "--public-host", "mail.contoso.example",
                      "--manifest", f"{work}/manifest.json"], f"{work}/fake-exchange.log")
    bridge = start([f"{args.bin_dir}/exbridge", "--listen", f"{proxy}:443", "--cert", f"{work}/bridge.crt",
                    "--key", f"{work}/bridge.key", "--upstream", exchange, "--upstream-verify", f"ca:{work}/ca.crt",
                    "--upstream-sni", "ex2007.contoso.example"], f"{work}/exbridge.log")
    print(f"fake-exchange {exchange}, exbridge {bridge}, work folder {work}", flush=True)
    with open(f"{work}/manifest.json") as f:
        manifest = next(u for u in json.load(f)["users"] if u["email"] == EMAIL)["folders"]

    for auth in (AUTH_BASIC, AUTH_NTLM):
        try:
            for level in LEVELS:
                nspi_session(proxy, auth, level)
            emsmdb_session(proxy, auth, manifest)

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
