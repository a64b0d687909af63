// EWS implementation: the SOAP framing every operation shares, envelope checks, RequestServerVersion,
// dispatch, and the item operations (FindItem, GetItem, GetAttachment). Folder, sync, id and directory operations live in
// ews_folders.cpp, ews_sync.cpp, ews_ids.cpp and ews_directory.cpp.
#include "fake_exchange/ews.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "common/base64.hpp"
#include "common/xml.hpp"
#include "fake_exchange/ews_internal.hpp"

namespace exbridge::fake_exchange {

std::string envelope(const version_profile& v, const std::string& body) {
  return std::string("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                     "<soap:Envelope xmlns:soap=\"") +
         ns_soap +
         "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
         "<soap:Header><t:ServerVersionInfo MajorVersion=\"" +
         std::to_string(v.major) + "\" MinorVersion=\"" + std::to_string(v.minor) + "\" MajorBuildNumber=\"" +
         std::to_string(v.build) + "\" MinorBuildNumber=\"" + std::to_string(v.revision) + "\" xmlns:t=\"" + ns_types +
         "\" /></soap:Header><soap:Body>" + body + "</soap:Body></soap:Envelope>";
}

ews_result fault(std::string operation, std::string_view code, std::string_view message) {
  std::string body = std::string("<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"") + ns_soap +
                     "\"><s:Body><s:Fault><faultcode xmlns:a=\"" + ns_types + "\">a:" + std::string(code) +
                     "</faultcode><faultstring xml:lang=\"en-US\">" + xml_escape(message) +
                     "</faultstring><detail><e:ResponseCode xmlns:e=\"" + ns_errors + "\">" + std::string(code) +
                     "</e:ResponseCode><e:Message xmlns:e=\"" + ns_errors + "\">" + xml_escape(message) +
                     "</e:Message></detail></s:Fault></s:Body></s:Envelope>";
  return {500, std::move(body), std::move(operation)};
}

ews_result schema_fault(std::string operation, const std::string& detail) {
  return fault(std::move(operation), "ErrorSchemaValidation", "The request failed schema validation: " + detail);
}

namespace {

/// <GetItemResponse xmlns:m=... xmlns:t=... xmlns=...><m:ResponseMessages>: how 2007 opens every answer.
std::string response_open(const std::string& operation) {
  return "<" + operation + "Response xmlns:m=\"" + ns_messages + "\" xmlns:t=\"" + ns_types + "\" xmlns=\"" +
         ns_messages + "\"><m:ResponseMessages>";
}

std::string response_close(const std::string& operation) {
  return "</m:ResponseMessages></" + operation + "Response>";
}

}  // namespace

ews_result response(const std::string& operation, const std::string& messages, const version_profile& v) {
  return {200, envelope(v, response_open(operation) + messages + response_close(operation)), operation};
}

std::string success_message(std::string_view operation, std::string_view content) {
  const std::string element = "m:" + std::string(operation) + "ResponseMessage";
  return "<" + element + " ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>" + std::string(content) +
         "</" + element + ">";
}

std::string error_message(std::string_view operation, std::string_view response_class, std::string_view code,
                          std::string_view text, std::string_view content) {
  const std::string element = "m:" + std::string(operation) + "ResponseMessage";
  return "<" + element + " ResponseClass=\"" + std::string(response_class) + "\"><m:MessageText>" + xml_escape(text) +
         "</m:MessageText><m:ResponseCode>" + std::string(code) +
         "</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>" + std::string(content) + "</" + element + ">";
}

bool xs_boolean(std::string_view text) { return text == "true" || text == "1"; }

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string item_id_xml(const item_meta& m) {
  // ChangeKeys never change: the synthetic mailbox is never modified.
  return "<t:ItemId Id=\"" + m.id + "\" ChangeKey=\"CQAAABYAAAB8Jdcz2ZFRTJ1QfIyd+B0XAAAAAAEC\" />";
}

std::string file_attachment_xml(const attachment_meta& a, bool with_content) {
  return "<t:FileAttachment><t:AttachmentId Id=\"" + a.id + "\" /><t:Name>" + xml_escape(a.name) +
         "</t:Name><t:ContentType>" + a.content_type + "</t:ContentType>" +
         (with_content ? "<t:Content>" + base64_encode(a.content) + "</t:Content>" : "") + "</t:FileAttachment>";
}

namespace {

/// FindItem with IndexedPageItemView: the paging attributes exchangelib and the migration service key on.
ews_result find_item(const pugi::xml_node& op, const mailbox& box, const version_profile& v) {
  pugi::xml_node parent;
  for (const auto& id : child_local(op, "ParentFolderIds").children()) {
    if (id.type() == pugi::node_element) {
      parent = id;
      break;
    }
  }
  const folder_lookup found = parent ? lookup_folder(parent, box.owner()) : folder_lookup{};
  if (!child_local(op, "ItemShape") || !parent || !found.schema_error.empty()) {
    return schema_fault("FindItem", "FindItem needs ItemShape and a ParentFolderIds/DistinguishedFolderId of the "
                                    "Exchange 2007 schema.");
  }
  if (found.folder == nullptr) return response("FindItem", error_message("FindItem", "Error", found.code, found.text), v);
  const folder_info* f = found.folder;
  // Restriction and SortOrder: a path they cannot use is a per-message error (HTTP 200), as on Exchange.
  item_query query;
  if (const auto bad = query.parse(child_local(op, "Restriction"), child_local(op, "SortOrder"))) {
    if (bad->schema) return schema_fault("FindItem", bad->text);
    const std::string path = "<m:MessageXml><t:FieldURI FieldURI=\"" + xml_escape(bad->path) + "\" /></m:MessageXml>";
    return response("FindItem", error_message("FindItem", "Error", bad->code, bad->text, path), v);
  }
  const item_shape shape = parse_item_shape(child_local(op, "ItemShape"));
  // The view (TotalItemsInView, paging) is over the restricted, sorted set.
  const std::vector<unsigned> selected = query.select(box, f->key);
  const auto total = static_cast<unsigned>(selected.size());
  unsigned offset = 0, max_entries = total;
  bool from_end = false;
  if (const pugi::xml_node view = child_local(op, "IndexedPageItemView")) {
    const long long requested_max = view.attribute("MaxEntriesReturned").as_llong(-1);
    const long long requested_offset = view.attribute("Offset").as_llong(-1);
    const std::string base = view.attribute("BasePoint").as_string("Beginning");
    if (requested_offset < 0 || (base != "Beginning" && base != "End") ||
        (view.attribute("MaxEntriesReturned") && requested_max < 1)) {
      return schema_fault("FindItem", "The IndexedPageItemView element is invalid.");
    }
    offset = static_cast<unsigned>(std::min<long long>(requested_offset, total));
    if (view.attribute("MaxEntriesReturned")) max_entries = static_cast<unsigned>(std::min<long long>(requested_max, total));
    from_end = base == "End";
  }
  const unsigned count = std::min(max_entries, total - offset);
  std::string items;
  for (unsigned k = 0; k < count; ++k) {
    const unsigned position = from_end ? total - offset - count + k : offset + k;
    const item_properties p = message_properties(box.item(f->key, selected[position]), box, shape, true);
    items += "<t:Message>" + p.before_body + p.after_body + "</t:Message>";
  }
  const bool last = offset + count >= total;
  const std::string root = "<m:RootFolder IndexedPagingOffset=\"" + std::to_string(offset + count) +
                           "\" TotalItemsInView=\"" + std::to_string(total) + "\" IncludesLastItemInRange=\"" +
                           (last ? "true" : "false") + "\"><t:Items>" + items + "</t:Items></m:RootFolder>";
  return response("FindItem", success_message("FindItem", root), v);
}

/// GetItem; with MimeContent requested, each item's MIME is streamed as base64 while the answer is sent.
ews_result get_item(const pugi::xml_node& op, std::shared_ptr<const mailbox> box, const version_profile& v) {
  const pugi::xml_node shape = child_local(op, "ItemShape");
  const pugi::xml_node ids = child_local(op, "ItemIds");
  if (!shape || !ids) return schema_fault("GetItem", "GetItem needs ItemShape and ItemIds.");
  const item_shape wanted = parse_item_shape(shape);
  auto stream = std::make_shared<streamed_body>(box);
  const std::string head = envelope(v, response_open("GetItem"));
  // envelope() closes Body and Envelope; split it around the messages.
  const std::string tail_marker = "</soap:Body>";
  const auto cut = head.rfind(tail_marker);
  stream->text(head.substr(0, cut));
  for (const auto& id : ids.children()) {
    if (id.type() != pugi::node_element) continue;
    const auto item = box->find(id.attribute("Id").value());
    if (!item) {
      const bool malformed = !base64_decode(id.attribute("Id").value());
      stream->text(malformed ? error_message("GetItem", "Error", "ErrorInvalidIdMalformed", "Id is malformed.", "<m:Items />")
                             : error_message("GetItem", "Error", "ErrorItemNotFound",
                                             "The specified object was not found in the store.", "<m:Items />"));
      continue;
    }
    stream->text("<m:GetItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode><m:Items>"
                 "<t:Message>");
    if (wanted.mime) {
      stream->text("<t:MimeContent CharacterSet=\"UTF-8\">");
      stream->mime_base64(*item);
      stream->text("</t:MimeContent>");
    }
    const item_properties p = message_properties(*item, *box, wanted, false);
    stream->text(p.before_body);
    if (p.body) {
      // The Body is the MIME's text part, streamed like MimeContent (a 35 MB item's body is 35 MB).
      stream->text(p.body_html ? "<t:Body BodyType=\"HTML\">" : "<t:Body BodyType=\"Text\">");
      stream->body_text(*item, p.body_html);
      stream->text("</t:Body>");
    }
    stream->text(p.after_body + "</t:Message></m:Items></m:GetItemResponseMessage>");
  }
  stream->text(response_close("GetItem") + head.substr(cut));
  return {200, "", "GetItem", std::move(stream)};
}

/// GetAttachment: the attachments are small, so the answer is built whole (Content is base64 of the same
/// bytes the item's MIME carries in its attachment part).
ews_result get_attachment(const pugi::xml_node& op, const mailbox& box, const version_profile& v) {
  const pugi::xml_node ids = child_local(op, "AttachmentIds");
  if (!ids) {
    return schema_fault("GetAttachment", "The element 'GetAttachment' has incomplete content. List of possible "
                                         "elements expected: 'AttachmentIds' in namespace '" +
                                             std::string(ns_messages) + "'.");
  }
  std::string messages;
  for (const auto& id : ids.children()) {
    if (id.type() != pugi::node_element) continue;
    const std::string value = id.attribute("Id").value();
    const auto a = box.find_attachment(value);
    if (!a) {
      messages += parse_store_id(value)
                      ? error_message("GetAttachment", "Error", "ErrorItemNotFound",
                                      "The specified object was not found in the store.", "<m:Attachments />")
                      : error_message("GetAttachment", "Error", "ErrorInvalidIdMalformed", "Id is malformed.",
                                      "<m:Attachments />");
      continue;
    }
    messages += success_message("GetAttachment", "<m:Attachments>" + file_attachment_xml(*a, true) + "</m:Attachments>");
  }
  return response("GetAttachment", messages, v);
}

}  // namespace

ews_result answer_ews(std::string_view request_body, const user& owner, const version_profile& version,
                      const mailbox_spec& mailboxes, const organisation& org) {
  pugi::xml_document doc;
  const pugi::xml_parse_result parsed = doc.load_buffer(request_body.data(), request_body.size());
  if (!parsed) {
    return fault("", "ErrorSchemaValidation",
                 std::string("The request failed schema validation: ") + parsed.description() + " at offset " +
                     std::to_string(parsed.offset) + ".");
  }
  // EWS messages nest about 15 deep; search expressions (And/Or/Not) are compiled recursively, so a request
  // nested without bound is refused before anything walks it.
  if (deeper_than(doc, 256)) {
    return schema_fault("", "The request nests elements deeper than 256 levels.");
  }
  const pugi::xml_node env = doc.document_element();
  if (local_name(env) != "Envelope") {
    return schema_fault("", "The root element must be a SOAP 1.1 Envelope.");
  }
  const pugi::xml_node body = child_local(env, "Body");
  pugi::xml_node op;
  for (const auto& child : body.children()) {
    if (child.type() == pugi::node_element) {
      op = child;
      break;
    }
  }
  if (!op) return schema_fault("", "The SOAP Body holds no operation.");
  const std::string operation(local_name(op));

  // RequestServerVersion: optional against 2007; only the two 2007 schema values exist.
  if (const pugi::xml_node rsv = descendant_local(child_local(env, "Header"), "RequestServerVersion")) {
    const std::string requested = rsv.attribute("Version").value();
    if (requested != "Exchange2007" && requested != "Exchange2007_SP1") {
      return fault(operation, "ErrorInvalidServerVersion", "The specified server version is invalid.");
    }
  }
  auto box = std::make_shared<const mailbox>(owner, mailboxes);
  const ews_context context{*box, org, version};
  if (operation == "GetFolder") return get_folder(op, context);
  if (operation == "FindFolder") return find_folder(op, context);
  if (operation == "FindItem") return find_item(op, *box, version);
  if (operation == "GetItem") return get_item(op, std::move(box), version);
  if (operation == "GetAttachment") return get_attachment(op, *box, version);
  if (operation == "SyncFolderHierarchy") return sync_folder_hierarchy(op, context);
  if (operation == "SyncFolderItems") return sync_folder_items(op, context);
  if (operation == "ResolveNames") return resolve_names(op, context);
  if (operation == "ExpandDL") return expand_dl(op, context);
  // ConvertId arrived with SP1; an RTM server's schema does not have it.
  if (operation == "ConvertId" && !(version.major == 8 && version.minor == 0)) return convert_id(op, context);
  return schema_fault(operation, "The element '" + operation + "' in namespace '" + ns_messages +
                                     "' is not supported by this server.");
}

}  // namespace exbridge::fake_exchange
