// Writes the seed inputs that are binary or need live ids (not a fuzz target): NTLM Type 1/2/3 messages as
// common/ntlm.cpp builds them, RTS and DCE/RPC PDUs as common/ builds them, and fake-exchange requests carrying real folder and item ids from
// route_request's own answers. Run once, output committed: build-fuzz/bin/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "common/base64.hpp"
#include "common/dcerpc.hpp"
#include "common/le_bytes.hpp"
#include "common/ntlm.hpp"
#include "common/rop_buffer.hpp"
#include "common/rts.hpp"
#include "fake_exchange/fx_message.hpp"
#include "fake_exchange/router.hpp"
#include "fake_exchange/emsmdb.hpp"
#include "fake_exchange/store.hpp"
#include "rehearse/clients/emsmdb_codec.hpp"

namespace {

std::filesystem::path out_dir;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  const auto dir = out_dir / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string envelope(const std::string& body) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
         "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\" "
         "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">"
         "<soap:Header><t:RequestServerVersion Version=\"Exchange2007_SP1\" /></soap:Header><soap:Body>" +
         body + "</soap:Body></soap:Envelope>";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace exbridge;
  using namespace exbridge::fake_exchange;
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  out_dir = argv[1];

  // NTLM: a Windows-like exchange, and a Type 1 with OEM domain and workstation supplied.
  const std::array<std::uint8_t, 8> server_challenge{1, 2, 3, 4, 5, 6, 7, 8};
  const std::array<std::uint8_t, 8> client_challenge{9, 10, 11, 12, 13, 14, 15, 16};
  const std::string type1 = make_negotiate();
  const std::string type2 = make_challenge(*parse_negotiate(type1), server_challenge, ntlm_server_names{}, 133'000'000'000'000'000ULL);
  const std::string type3 = make_authenticate(type2, "alex.wilber", "CONTOSO", std::string(demo_password), "EXO-MRS",
                                              client_challenge, 133'000'000'000'000'000ULL);
  write("fuzz_ntlm", "type1", type1);
  write("fuzz_ntlm", "type2", type2);
  write("fuzz_ntlm", "type3", type3);
  write("fuzz_ntlm", "type1_http", http_token("NTLM", type1));
  write("fuzz_ntlm", "type2_http", http_token("Negotiate", type2));
  write("fuzz_ntlm", "type3_http", http_token("NTLM", type3));
  std::string oem = type1;
  oem[13] = static_cast<char>(oem[13] | 0x30);  // oem_domain_supplied | oem_workstation_supplied
  oem += "CONTOSOWS01";
  oem[16] = 7; oem[18] = 7; oem[20] = 40;   // DomainNameFields: 7 bytes at 40
  oem[24] = 4; oem[26] = 4; oem[28] = 47;   // WorkstationFields: 4 bytes at 47
  write("fuzz_ntlm", "type1_oem_names", oem);

  // RTS: a client's opening PDUs as channel bodies (CONN/B1 then a ping on the IN channel; CONN/A1 on the OUT
  // request), the proxy's answers on the OUT channel, a flow-control ack with a destination, and a PDU carrying
  // every command type once.
  {
    rts::cookie vc{}, in{}, out{}, group{};
    for (std::uint8_t i = 0; i < 16; ++i) vc[i] = i, in[i] = 0x20 + i, out[i] = 0x40 + i, group[i] = 0x60 + i;
    write("fuzz_rts", "in_channel", rts::encode(rts::conn_b1(vc, in, 1073741824, 300000, group)) + rts::encode(rts::ping_pdu()));
    write("fuzz_rts", "out_request", rts::encode(rts::conn_a1(vc, out, 65536)));
    write("fuzz_rts", "out_channel", rts::encode(rts::conn_a3(120000)) + rts::encode(rts::conn_c2(65536, 120000)) +
                                         rts::encode(rts::ping_pdu()));
    write("fuzz_rts", "echo", rts::encode(rts::echo_pdu()));
    write("fuzz_rts", "ack_to_out_proxy",
          rts::encode(rts::flow_control_ack_with_destination_pdu(rts::forward_destination::out_proxy, {65536, 131072, out})));
    rts::client_address v6;
    v6.ipv6 = true;
    v6.address[15] = 1;
    write("fuzz_rts", "every_command",
          rts::encode({rts::other_cmd,
                       {rts::receive_window_size{65536}, rts::flow_control_ack{1, 2, in}, rts::connection_timeout{120000},
                        rts::cookie_command{vc}, rts::channel_lifetime{1073741824}, rts::client_keepalive{300000},
                        rts::version{1}, rts::empty{}, rts::padding{8}, rts::negative_ance{}, rts::ance{},
                        rts::client_address{}, v6, rts::association_group_id{group},
                        rts::destination{rts::forward_destination::server}, rts::ping_traffic_sent_notify{4096}}}));
  }

  // DCE/RPC on an open virtual connection, as a client's IN channel carries it after CONN/B1.
  {
    using namespace dcerpc;
    const syntax_id emsmdb{parse_uuid("a4f1db00-ca47-1067-b31f-00dd010662da"), 0, 81};
    const syntax_id features{parse_uuid("6cb71c2c-9812-4540-0300-000000000000"), 1, 0};
    const auto bind_of = [&](std::vector<context_element> contexts, std::optional<auth_verifier> auth) {
      pdu p;
      p.type = ptype::bind;
      p.call_id = 1;
      p.content = bind_body{4280, 4280, 0, std::move(contexts)};
      p.auth = std::move(auth);
      return encode(p);
    };
    const auto request_of = [](std::uint32_t id, std::uint16_t context, std::uint8_t flags, std::string stub) {
      pdu p;
      p.type = ptype::request;
      p.flags = flags;
      p.call_id = id;
      p.content = request_body{static_cast<std::uint32_t>(stub.size()), context, 10, std::nullopt, std::move(stub)};
      return encode(p);
    };
    const std::string bind = bind_of({{0, emsmdb, {ndr20()}}}, std::nullopt);
    write("fuzz_dcerpc", "bind_and_call", bind + request_of(2, 0, first_frag | last_frag, std::string(64, 'a')));
    write("fuzz_dcerpc", "fragmented_call", bind + request_of(2, 0, first_frag, std::string(100, 'b')) +
                                                request_of(2, 0, 0, std::string(100, 'c')) +
                                                request_of(2, 0, last_frag, "d"));
    write("fuzz_dcerpc", "features_and_ndr64",
          bind_of({{0, emsmdb, {{parse_uuid("71710533-beba-4937-8319-b5dbef9ccc36"), 1, 0}}}, {1, emsmdb, {features}}},
                  std::nullopt));
    write("fuzz_dcerpc", "ntlm_bind", bind_of({{0, emsmdb, {ndr20()}}}, auth_verifier{10, 6, 0, 79231, std::string(40, 'N')}));
    pdu alter;
    alter.type = ptype::alter_context;
    alter.call_id = 3;
    alter.content = bind_body{4280, 4280, 0, {{1, emsmdb, {ndr20()}}}};
    // Both channels recycled, with the harness's cookies (VC 0, IN 1…, OUT 2…): 520 unauthenticated calls
    // answered by 32-byte faults fill a 16 KiB OUT channel (OUT_R2/A2); then OUT_R1/A3, OUT_R2/C1, OUT_R2/A7;
    // IN_R1/A1 and IN_R1/A5; and calls again, answered on the new OUT channel.
    {
      rts::cookie vc_id{}, in{}, out{}, next_in{}, next_out{};
      in[0] = 1, out[0] = 2, next_in[0] = 4, next_out[0] = 5;
      std::string seq = bind;
      for (std::uint32_t id = 2; id < 522; ++id) seq += request_of(id, 0, first_frag | last_frag, "");
      seq += rts::encode(rts::out_r1_a3(vc_id, out, next_out, 65536)) + rts::encode(rts::out_r2_c1()) +
             rts::encode(rts::out_r2_a7(next_out)) + rts::encode(rts::in_r1_a1(vc_id, in, next_in)) +
             rts::encode(rts::in_r1_a5(next_in));
      for (std::uint32_t id = 522; id < 530; ++id) seq += request_of(id, 0, first_frag | last_frag, "");
      write("fuzz_dcerpc", "recycle_both_channels", seq);
    }
    write("fuzz_dcerpc", "alter_context_and_acks",
          bind + encode(alter) + rts::encode(rts::ping_pdu()) +
              rts::encode(rts::flow_control_ack_with_destination_pdu(rts::forward_destination::out_proxy, {100, 65536, {}})) +
              request_of(4, 1, first_frag | last_frag, ""));
  }

  // Calls on an NTLM-authenticated association: the level byte, then [kind][opnum][length u16][bytes] records.
  {
    const auto record = [](std::uint8_t kind, std::uint8_t opnum, const std::string& bytes) {
      le_writer w;
      w.u8(kind), w.u8(opnum), w.u16(static_cast<std::uint16_t>(bytes.size()));
      w.bytes(bytes);
      return std::move(w.text());
    };
    le_writer bind_stub;  // NspiBind: dwFlags, STAT (CodePage 1252), a non-NULL pServerGuid
    bind_stub.u32(0);
    for (int i = 0; i < 9; ++i) bind_stub.u32(i == 6 ? 1252 : 0);
    bind_stub.u32(0x20000);
    bind_stub.zeros(16);
    write("fuzz_rpc_call", "nspi_bind_unbind_privacy",
          std::string(1, '\x04') + record(1, 0, bind_stub.text()) + record(1, 1, std::string(24, '\0')));
    write("fuzz_rpc_call", "nspi_bind_integrity", std::string(1, '\x03') + record(1, 0, bind_stub.text()));
    write("fuzz_rpc_call", "large_call_small_fragments", std::string(1, '\x04') + record(3, 5, std::string(3000, 'x')));
    dcerpc::pdu plain;
    plain.type = dcerpc::ptype::request;
    plain.call_id = 7;
    plain.content = dcerpc::request_body{4, 0, 0, std::nullopt, "abcd"};
    write("fuzz_rpc_call", "unprotected_fragment", std::string(1, '\x04') + record(0, 0, dcerpc::encode(plain)));
    write("fuzz_rpc_call", "connect_level_call", std::string(1, '\x00') + record(1, 0, bind_stub.text()));
    le_writer connect;  // EcDoConnectEx on EMSMDB (first byte 9: PKT_PRIVACY, port 6001), then EcDoDisconnect
    const std::string dn = "/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alex.wilber";
    connect.u32(static_cast<std::uint32_t>(dn.size() + 1)), connect.u32(0), connect.u32(static_cast<std::uint32_t>(dn.size() + 1));
    connect.bytes(dn), connect.u8(0), connect.align(4);
    for (const std::uint32_t v : {0u, 0u, 0u, 1252u, 0x409u, 0x409u, 0xFFFFFFFFu}) connect.u32(v);
    connect.u16(1), connect.u16(12), connect.u16(0x1773), connect.u16(0);
    connect.u32(0), connect.u32(0), connect.u32(0), connect.u32(0x1008);
    write("fuzz_rpc_call", "emsmdb_connect_disconnect",
          std::string(1, '\x09') + record(1, 10, connect.text()) + record(3, 1, std::string(20, '\0')));
    // EcDoRpcExt2 carrying RopLogon to the own mailbox and RopRelease; the harness puts the session's CXH first.
    le_writer rops;
    rops.u8(0xFE), rops.u8(0), rops.u8(0), rops.u8(1), rops.u32(0x01000000), rops.u32(0);
    rops.u16(static_cast<std::uint16_t>(dn.size() + 1)), rops.bytes(dn), rops.u8(0);
    rops.u8(0x01), rops.u8(0), rops.u8(0);
    // An EcDoRpcExt2 stub (a zero handle the harness replaces, pulFlags NoCompression|NoXorMagic, one extended
    // buffer around the ROPs and a handle table of `slots` empty slots, pcbOut 0x40000, no auxiliary buffers).
    const auto ext2_stub = [](le_writer& rop_list, int slots) {
      std::string buffer;
      append_le16(buffer, static_cast<std::uint16_t>(2 + rop_list.size()));
      buffer += rop_list.text();
      for (int i = 0; i < slots; ++i) append_le32(buffer, 0xFFFFFFFF);
      const std::string rgb_in = rop::write_extended(buffer);
      le_writer stub;
      stub.zeros(20), stub.u32(3), stub.u32(static_cast<std::uint32_t>(rgb_in.size())), stub.bytes(rgb_in), stub.align(4);
      stub.u32(static_cast<std::uint32_t>(rgb_in.size())), stub.u32(0x40000), stub.u32(0), stub.u32(0), stub.u32(0x1008);
      return std::move(stub.text());
    };
    write("fuzz_rpc_call", "emsmdb_logon_release",
          std::string(1, '\x09') + record(1, 10, connect.text()) + record(3, 11, ext2_stub(rops, 1)));
    // A folder walk in one buffer: logon (slot 0), the IPM subtree (1), its hierarchy table (2), SetColumns,
    // QueryRows; the Inbox (3), its contents table (2 again), SetColumns, QueryRows.
    le_writer walk;
    walk.u8(0xFE), walk.u8(0), walk.u8(0), walk.u8(1), walk.u32(0x01000000), walk.u32(0);
    walk.u16(static_cast<std::uint16_t>(dn.size() + 1)), walk.bytes(dn), walk.u8(0);
    walk.u8(0x02), walk.u8(0), walk.u8(0), walk.u8(1), walk.u32(0x00000001), walk.u32(0x02000000), walk.u8(0);
    walk.u8(0x04), walk.u8(0), walk.u8(1), walk.u8(2), walk.u8(0x04);
    walk.u8(0x12), walk.u8(0), walk.u8(2), walk.u8(0), walk.u16(3), walk.u32(0x3001001F), walk.u32(0x67480014), walk.u32(0x3613001F);
    walk.u8(0x15), walk.u8(0), walk.u8(2), walk.u8(0), walk.u8(1), walk.u16(50);
    walk.u8(0x02), walk.u8(0), walk.u8(0), walk.u8(3), walk.u32(0x00000001), walk.u32(0x07000000), walk.u8(0);
    walk.u8(0x05), walk.u8(0), walk.u8(3), walk.u8(2), walk.u8(0);
    walk.u8(0x12), walk.u8(0), walk.u8(2), walk.u8(0), walk.u16(2), walk.u32(0x674A0014), walk.u32(0x0037001F);
    walk.u8(0x15), walk.u8(0), walk.u8(2), walk.u8(0), walk.u8(1), walk.u16(5);
    write("fuzz_rpc_call", "emsmdb_folder_walk",
          std::string(1, '\x09') + record(1, 10, connect.text()) + record(3, 11, ext2_stub(walk, 4)));
    // A message copy: logon (slot 0), the Inbox (1), its second message (2, one with an attachment),
    // RopFastTransferSourceCopyTo (3: Level 0, BestBody, Unicode), two RopFastTransferSourceGetBuffer (0xBABE).
    const std::uint64_t inbox = folder_id(*folder_by_key("inbox")), mid = message_id(*folder_by_key("inbox"), 1);
    le_writer copy;
    copy.u8(0xFE), copy.u8(0), copy.u8(0), copy.u8(1), copy.u32(0x01000000), copy.u32(0);
    copy.u16(static_cast<std::uint16_t>(dn.size() + 1)), copy.bytes(dn), copy.u8(0);
    copy.u8(0x02), copy.u8(0), copy.u8(0), copy.u8(1), copy.u64(inbox), copy.u8(0);
    copy.u8(0x03), copy.u8(0), copy.u8(1), copy.u8(2), copy.u16(1252), copy.u64(inbox), copy.u8(0), copy.u64(mid);
    copy.u8(0x4D), copy.u8(0), copy.u8(2), copy.u8(3), copy.u8(0), copy.u32(0x2000), copy.u8(0x01), copy.u16(0);
    for (int i = 0; i < 2; ++i) copy.u8(0x4E), copy.u8(0), copy.u8(3), copy.u16(0xBABE), copy.u16(0x1000);
    write("fuzz_rpc_call", "emsmdb_message_copy",
          std::string(1, '\x09') + record(1, 10, connect.text()) + record(3, 11, ext2_stub(copy, 4)));

    // FastTransfer: whole messages as fake-exchange streams them (one with an attachment), fed in 200-byte
    // pieces (first byte), and in 1-byte pieces.
    exchange_config small;
    small.mailboxes.small_min = 8300;  // every fourth item has room for an attachment
    small.mailboxes.small_max = 9000;
    const mailbox box(small.org.users.front(), small.mailboxes);
    for (const unsigned index : {0u, 1u}) {
      const auto item = box.item("inbox", index);
      message_stream fx(box, item, copy_options{});
      std::string bytes(static_cast<std::size_t>(fx.size()), '\0');
      bytes.resize(fx.read(bytes.data(), bytes.size()));
      write("fuzz_fasttransfer", "message_" + std::to_string(index), std::string(1, '\xC8') + bytes);
      if (index == 1) write("fuzz_fasttransfer", "message_bytewise", std::string(1, '\x01') + bytes.substr(0, 2000));
    }
    // The stream in the Open Specifications blog's "How to parse the FastTransfer Stream" (a folder change).
    const std::string blog =
        "030012400201E165000000000201E0651600000052F685EC7D432E4AA96034508853D90A0000000003F54000083000D0"
        "9EA88185D0010201E2651600000052F685EC7D432E4AA96034508853D90A00000000207C0201E365170000001652F685"
        "EC7D432E4AA96034508853D90A00000000207C1F0001300C00000049004E0042004F0058000000140049670100000000"
        "0003F403003966FB03000040000730803906A88185D0010B00F4100000";
    std::string blog_bytes(1, '\x10');
    for (std::size_t i = 0; i + 1 < blog.size(); i += 2) blog_bytes += static_cast<char>(std::stoi(blog.substr(i, 2), nullptr, 16));
    write("fuzz_fasttransfer", "blog_folder_change", blog_bytes);
  }

  // rehearse's Outlook Anywhere client: what fake-exchange's EMSMDB answers the migration's requests (selector
  // 0 with the ROP sequence, 1 for EcDoConnectEx), and FastTransfer streams for its item hasher (selector 2).
  {
    namespace em = rehearse::emsmdb;
    exchange_config server;
    server.mailboxes.inbox_items = 6;
    server.mailboxes.small_min = 8300;
    server.mailboxes.small_max = 9000;
    emsmdb_server store(&server);
    const auto& owner = server.org.users.front();
    const std::string dn = server.org.legacy_dn(owner);
    const std::string connected = std::get<std::string>(store.call(em::op_connect_ex, em::connect_ex_request(dn), owner));
    write("fuzz_emsmdb_reply", "connect_ex", std::string("\x01\x00", 2) + connected);
    em::context_handle handle{};
    std::copy(connected.begin(), connected.begin() + 20, handle.begin());
    const auto ext2 = [&](em::rop_request& r, const std::vector<std::uint32_t>& handles) {
      return std::get<std::string>(store.call(em::op_rpc_ext2, em::rpc_ext2_request(handle, r.finish(handles)), owner));
    };
    em::rop_request logon;
    logon.logon(0, dn);
    const std::string logged = ext2(logon, {0xFFFFFFFF});
    write("fuzz_emsmdb_reply", "logon", std::string("\x00\x00", 2) + logged);
    const std::uint32_t logon_handle = em::read_rpc_ext2(logged)->handles.at(0);
    const std::uint64_t inbox = folder_id(*folder_by_key("inbox"));
    em::rop_request walk;
    walk.open_folder(0, 1, folder_id(*folder_by_key("root")))
        .hierarchy_table(1, 2, true)
        .set_columns(2, {mapi::tag::folder_id, mapi::tag::display_name, mapi::tag::content_count})
        .query_rows(2, 50);
    write("fuzz_emsmdb_reply", "folder_walk", std::string("\x00\x01", 2) + ext2(walk, {logon_handle, 0xFFFFFFFF, 0xFFFFFFFF}));
    em::rop_request copy;
    copy.open_message(0, 1, inbox, message_id(*folder_by_key("inbox"), 1)).copy_to(1, 2).get_buffer(2, 3000);
    write("fuzz_emsmdb_reply", "message_copy", std::string("\x00\x03", 2) + ext2(copy, {logon_handle, 0xFFFFFFFF, 0xFFFFFFFF}));
    const mailbox box(owner, server.mailboxes);
    message_stream fx(box, box.item("inbox", 1), copy_options{});
    std::string bytes(static_cast<std::size_t>(fx.size()), '\0');
    bytes.resize(fx.read(bytes.data(), bytes.size()));
    write("fuzz_emsmdb_reply", "item_stream", std::string("\x02\x21", 2) + bytes);
  }

  // fake-exchange: selector byte (see fuzz_ews_request.cpp), then the body.
  exchange_config config;
  config.public_host = "mail.contoso.example";
  config.mailboxes.inbox_items = 12;
  config.mailboxes.small_min = 256;
  config.mailboxes.small_max = 4096;
  const std::string auth = "Basic " + base64_encode(std::string(demo_email) + ":" + std::string(demo_password));
  auto ask = [&](const std::string& body) {
    http::request<http::string_body> req{http::verb::post, "/EWS/Exchange.asmx", 11};
    req.set(http::field::host, "mail.contoso.example");
    req.set(http::field::authorization, auth);
    req.body() = body;
    req.prepare_payload();
    connection_auth conn;
    return route_request(req, config, conn).response.body();
  };
  auto first_id = [](const std::string& xml, const std::string& element) {
    std::smatch m;
    std::regex_search(xml, m, std::regex("<t:" + element + " Id=\"([^\"]+)\""));
    return m.size() > 1 ? m[1].str() : std::string();
  };
  auto ews = [&](const std::string& name, const std::string& body) { write("fuzz_ews_request", name, "\x01" + envelope(body)); };
  write("fuzz_ews_request", "autodiscover",
        std::string("\x00", 1) + "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
        "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">"
        "<Request><EMailAddress>alex.wilber@contoso.example</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>");
  const std::string get_folder = "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
                                 "<m:FolderIds><t:DistinguishedFolderId Id=\"inbox\" /></m:FolderIds></m:GetFolder>";
  ews("get_folder", get_folder);
  const std::string folder_id = first_id(ask(envelope(get_folder)), "FolderId");
  const std::string find_item = "<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
                                "<t:AdditionalProperties><t:FieldURI FieldURI=\"item:Size\" /></t:AdditionalProperties>"
                                "</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned=\"5\" Offset=\"2\" BasePoint=\"Beginning\" />"
                                "<m:ParentFolderIds><t:FolderId Id=\"" + folder_id + "\" /></m:ParentFolderIds></m:FindItem>";
  ews("find_item", find_item);
  const std::string item_id = first_id(ask(envelope(find_item)), "ItemId");
  ews("get_item_mime", "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent>"
                       "</m:ItemShape><m:ItemIds><t:ItemId Id=\"" + item_id + "\" /></m:ItemIds></m:GetItem>");
  ews("find_folder", "<m:FindFolder Traversal=\"Deep\"><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
                     "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"msgfolderroot\" /></m:ParentFolderIds></m:FindFolder>");
  ews("sync_folder_items", "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:SyncFolderId>"
                           "<t:DistinguishedFolderId Id=\"inbox\" /></m:SyncFolderId><m:MaxChangesReturned>4</m:MaxChangesReturned>"
                           "</m:SyncFolderItems>");
  ews("sync_folder_hierarchy", "<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
                               "</m:SyncFolderHierarchy>");
  ews("resolve_names", "<m:ResolveNames ReturnFullContactData=\"true\"><m:UnresolvedEntry>alex</m:UnresolvedEntry></m:ResolveNames>");
  ews("expand_dl", "<m:ExpandDL><m:Mailbox><t:EmailAddress>allusers@contoso.example</t:EmailAddress></m:Mailbox></m:ExpandDL>");
  ews("convert_id", "<m:ConvertId DestinationFormat=\"EwsLegacyId\"><m:SourceIds><t:AlternateId Format=\"EwsId\" Id=\"" +
                        item_id + "\" Mailbox=\"alex.wilber@contoso.example\" /></m:SourceIds></m:ConvertId>");
  ews("get_attachment", "<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id=\"" + item_id +
                            "\" /></m:AttachmentIds></m:GetAttachment>");
  std::printf("seeds written to %s (folder %s, item %s)\n", argv[1], folder_id.c_str(), item_id.c_str());
  return 0;
}
