#!/usr/bin/env bash
# Makes a cluster CA and node certificates for syncmesh's peer mutual TLS
# (--tls-cert, --tls-key, --tls-ca) with the openssl CLI.
#
#   deploy/certs.sh ca DIR                 the cluster CA: DIR/ca.pem, DIR/ca.key
#   deploy/certs.sh node DIR NAME [ID]     a node: DIR/NAME.pem, DIR/NAME.key,
#                                          signed by DIR/ca.*, naming node ID
#                                          ID (hex; default: 15 random bytes,
#                                          or the ID in DIR/NAME.id)
#   deploy/certs.sh rotate DIR NAME        a new key and certificate for the
#                                          same ID (DIR/NAME.id): the node keeps
#                                          its ID and its leases
#   deploy/certs.sh show FILE              the subject, validity and node ID
#
# Idempotent: existing files are kept (`node` again prints what exists),
# except `rotate`, which replaces NAME.pem/NAME.key. The node ID goes in a
# URI SAN `urn:syncmesh:node:<hex>` that syncmesh checks against the hello
# (README, "Peer TLS"); a node started with `--data-dir` must get a
# certificate for the ID in <data-dir>/node-id (pass it as ID).
#
# Environment: SYNCMESH_CERT_DAYS (node certificates, default 825),
# SYNCMESH_CA_DAYS (default 3650). Keys are P-256; the CA key stays in DIR:
# keep it off the nodes.
set -euo pipefail

readonly prog="certs.sh"
readonly cert_days="${SYNCMESH_CERT_DAYS:-825}"
readonly ca_days="${SYNCMESH_CA_DAYS:-3650}"

say() { printf '%s: %s\n' "$prog" "$*"; }
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 1
}

usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

command -v openssl >/dev/null || die "openssl not found (Debian: apt-get install openssl)"

make_ca() {
  local dir="$1"
  mkdir -p "$dir"
  if [ -s "$dir/ca.pem" ] && [ -s "$dir/ca.key" ]; then
    say "CA exists: $dir/ca.pem"
    return
  fi
  [ -e "$dir/ca.pem" ] || [ -e "$dir/ca.key" ] \
    && die "$dir holds half a CA (ca.pem or ca.key): remove it or use another DIR"
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$dir/ca.key" 2>/dev/null)
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=syncmesh cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem" 2>/dev/null
  say "made the cluster CA: $dir/ca.pem (key $dir/ca.key)"
}

valid_id() {
  [[ "$1" =~ ^([0-9a-f]{2}){1,128}$ ]]
}

issue() {
  local dir="$1" name="$2" id="$3"
  local tmp
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$tmp/key" 2>/dev/null)
  openssl req -new -key "$tmp/key" -subj "/CN=syncmesh node $name" \
    -out "$tmp/csr" 2>/dev/null
  cat >"$tmp/ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=URI:urn:syncmesh:node:$id
EOF
  openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$cert_days" -sha256 -extfile "$tmp/ext" \
    -out "$tmp/pem" 2>/dev/null
  # Key first, then the certificate: a node never sees a new certificate
  # with an old key.
  mv "$tmp/key" "$dir/$name.key"
  mv "$tmp/pem" "$dir/$name.pem"
  printf '%s\n' "$id" >"$dir/$name.id"
}

make_node() {
  local dir="$1" name="$2" id="${3:-}"
  [ -s "$dir/ca.pem" ] && [ -s "$dir/ca.key" ] \
    || die "no CA in $dir: run '$prog ca $dir' first"
  [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "NAME must be letters, digits, . _ -"
  if [ -z "$id" ] && [ -s "$dir/$name.id" ]; then
    id="$(tr -d '[:space:]' <"$dir/$name.id")"
  fi
  if [ -z "$id" ]; then
    id="$(openssl rand -hex 15)"
  fi
  id="${id,,}"
  valid_id "$id" || die "ID must be 1 to 128 bytes of hex, got '$id'"
  if [ -s "$dir/$name.pem" ] && [ -s "$dir/$name.key" ]; then
    local have
    have="$(tr -d '[:space:]' <"$dir/$name.id" 2>/dev/null || true)"
    [ "$have" = "$id" ] \
      || die "$dir/$name.pem exists for node ID '$have', not '$id' (use rotate, or another NAME)"
    say "exists: $dir/$name.pem (node $id)"
    return
  fi
  issue "$dir" "$name" "$id"
  say "made $dir/$name.pem and $dir/$name.key for node $id"
}

rotate() {
  local dir="$1" name="$2" id
  [ -s "$dir/$name.id" ] || die "no $dir/$name.id: nothing to rotate"
  id="$(tr -d '[:space:]' <"$dir/$name.id")"
  valid_id "$id" || die "$dir/$name.id does not hold a hex node ID"
  issue "$dir" "$name" "$id"
  say "rotated $dir/$name.pem and $dir/$name.key (node $id kept): restart the node"
}

show() {
  local file="$1"
  [ -r "$file" ] || die "cannot read $file"
  openssl x509 -in "$file" -noout -subject -enddate -ext subjectAltName
}

case "${1:-help}" in
  ca)
    [ $# -eq 2 ] || die "usage: $prog ca DIR"
    make_ca "$2"
    ;;
  node)
    [ $# -ge 3 ] && [ $# -le 4 ] || die "usage: $prog node DIR NAME [ID]"
    make_node "$2" "$3" "${4:-}"
    ;;
  rotate)
    [ $# -eq 3 ] || die "usage: $prog rotate DIR NAME"
    rotate "$2" "$3"
    ;;
  show)
    [ $# -eq 2 ] || die "usage: $prog show FILE"
    show "$2"
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
