#!/bin/sh
# certbot deploy hook for exbridge: makes a renewed certificate readable by exbridge's user and tells
# exbridge to load it now. exbridge also notices changed files by itself (listen.certificate_watch), so this
# hook only makes the switch immediate. A renewal that fails exbridge's checks (key mismatch, expired) is
# refused and the previous certificate keeps serving: see `journalctl -u exbridge`.
# Install: install -m 0755 proxy/packaging/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/exbridge
set -eu
group="${EXBRIDGE_GROUP:-exbridge}"
if [ -n "${RENEWED_LINEAGE:-}" ]; then
  # privkey.pem is root-only by default; exbridge runs as $group after binding :443.
  chgrp "$group" "$RENEWED_LINEAGE/privkey.pem" "$RENEWED_LINEAGE/fullchain.pem" 2>/dev/null || true
  chmod g+r "$RENEWED_LINEAGE/privkey.pem" "$RENEWED_LINEAGE/fullchain.pem" 2>/dev/null || true
  # certbot creates live/ and archive/ as 0700 root: let the group through (and only the group).
  base="$(dirname "$(dirname "$RENEWED_LINEAGE")")"
  archive="$base/archive/$(basename "$RENEWED_LINEAGE")"
  for d in "$base/live" "$base/archive" "$RENEWED_LINEAGE" "$archive"; do
    [ -d "$d" ] && chgrp "$group" "$d" && chmod 0750 "$d"
  done
  [ -d "$archive" ] && chgrp -R "$group" "$archive" && chmod -R g+r "$archive"
fi
systemctl reload exbridge
